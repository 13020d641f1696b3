//! Walking one thread's stack: framehop's unwinder over the modules' call-frame information
//! (falling back to frame pointers), from the registers the thread had when stopped and
//! the stack bytes of the snapshot — plus the one thing framehop leaves out, signal frames:
//! a return into the kernel's signal trampoline (`__restore_rt`) continues from the
//! registers saved in the signal frame on the stack.

use framehop::{FrameAddress, Unwinder};

use super::go::GoFrame;
use super::memory::StackMemory;
use super::modules::{Bytes, Module};
use super::{cfi, FrameHow, StackEnd};
use pss_types::records::GeneralRegisters;

/// The most frames a stack is walked to.
pub(crate) const MAX_FRAMES: usize = 512;

/// What a register not known (of a thread read while blocked) is set to: a non-canonical
/// address, so that a frame computed from it reads nothing, or returns to nowhere, and the
/// walk can tell it needed that register.
const UNKNOWN: u64 = 0xdead_0000_0000_0000;

/// Whether `a` was computed from [`UNKNOWN`] (a small offset from it).
fn from_unknown(a: u64) -> bool {
    a.wrapping_sub(UNKNOWN).wrapping_add(1 << 20) < 1 << 21
}

#[cfg(target_arch = "x86_64")]
mod arch {
    pub use framehop::x86_64::{
        CacheX86_64 as Cache, UnwindRegsX86_64 as Regs, UnwinderX86_64 as Unwinder,
    };

    use super::StackMemory;
    use pss_types::records::GeneralRegisters;

    /// The instruction pointer and the unwinder's registers of a stopped thread; with
    /// `partial` registers (a thread read while blocked), the frame pointer is `unknown`.
    pub fn start(g: &GeneralRegisters, partial: bool, unknown: u64) -> (u64, Regs) {
        let bp = if partial { unknown } else { g.rbp };
        (g.rip, Regs::new(g.rip, g.rsp, bp))
    }

    /// The unwinder's registers of a frame at `ip` with stack pointer `sp`, frame pointer `bp`.
    pub fn at(ip: u64, sp: u64, bp: u64) -> Regs {
        Regs::new(ip, sp, bp)
    }

    /// `regs` with a frame pointer given later, as a function of it: the frame pointer is
    /// the one register a frame of a thread read while blocked may be missing here.
    pub fn with_frame_pointer(regs: &Regs) -> Option<impl Fn(u64) -> Regs + '_> {
        Some(move |bp: u64| {
            let mut r = *regs;
            r.set_bp(bp);
            r
        })
    }

    /// The stack pointer (`rsp`).
    pub fn stack_pointer(r: &Regs) -> u64 {
        r.sp()
    }

    /// The return address in the frame record the frame pointer points at, where a frame
    /// record may be read past a frame the unwinder refused: never needed on x86_64.
    pub fn frame_record_return(_regs: &Regs, _mem: &mut StackMemory<'_>) -> Option<u64> {
        None
    }

    /// Whether the 8 bytes of code before an address end with a call instruction: `call
    /// rel32` (`E8`), or `call r/m64` (`FF /2`) in any of its lengths.
    pub fn after_a_call(code: &[u8; 8]) -> bool {
        if code[3] == 0xe8 {
            return true;
        }
        (2..=7).any(|len| {
            let at = 8 - len;
            code[at] == 0xff && indirect_call_len(&code[at + 1..]) == Some(len)
        })
    }

    /// The length of a `call r/m64` (`FF /2`) whose ModRM byte starts `rest`, if it is one.
    fn indirect_call_len(rest: &[u8]) -> Option<usize> {
        let modrm = *rest.first()?;
        if (modrm >> 3) & 7 != 2 {
            return None;
        }
        let (md, rm) = (modrm >> 6, modrm & 7);
        let sib = md != 3 && rm == 4;
        let sib_base5 = sib && rest.get(1).is_some_and(|s| s & 7 == 5);
        let disp = match md {
            0 if rm == 5 || sib_base5 => 4,
            1 => 1,
            2 => 4,
            _ => 0,
        };
        Some(2 + usize::from(sib) + disp)
    }

    /// `mov $15, %rax; syscall`: `rt_sigreturn`, the whole of glibc's and musl's
    /// `__restore_rt`.
    pub const SIGRETURN: &[u8] = &[0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05];

    /// The registers a signal frame saved, read at the stack pointer the handler returned
    /// with (`struct rt_sigframe` less its return address: `ucontext`, whose `mcontext` is
    /// 40 bytes in; `rbp`, `rsp`, `rip` are its words 10, 15, 16).
    pub fn restore(regs: &mut Regs, mem: &mut StackMemory<'_>) -> Option<u64> {
        let mc = regs.sp().checked_add(40)?;
        let (bp, sp, ip) = (
            mem.word(mc + 80).ok()?,
            mem.word(mc + 120).ok()?,
            mem.word(mc + 128).ok()?,
        );
        regs.set_bp(bp);
        regs.set_sp(sp);
        regs.set_ip(ip);
        Some(ip)
    }
}

#[cfg(target_arch = "aarch64")]
mod arch {
    pub use framehop::aarch64::{
        CacheAarch64 as Cache, UnwindRegsAarch64 as Regs, UnwinderAarch64 as Unwinder,
    };

    use super::StackMemory;
    use pss_types::records::GeneralRegisters;

    /// The program counter and the unwinder's registers of a stopped thread; with
    /// `partial` registers (a thread read while blocked), the link register and the frame
    /// pointer are `unknown`.
    pub fn start(g: &GeneralRegisters, partial: bool, unknown: u64) -> (u64, Regs) {
        match partial {
            true => (g.pc, Regs::new(unknown, g.sp, unknown)),
            false => (g.pc, Regs::new(g.regs[30], g.sp, g.regs[29])),
        }
    }

    /// The unwinder's registers of a frame with link register `lr`, stack pointer `sp`,
    /// frame pointer `fp`.
    pub fn at(lr: u64, sp: u64, fp: u64) -> Regs {
        Regs::new(lr, sp, fp)
    }

    /// Never here: a thread read while blocked lacks the link register too, which no
    /// slot of the stack gives back.
    pub fn with_frame_pointer(_regs: &Regs) -> Option<fn(u64) -> Regs> {
        None
    }

    /// The stack pointer.
    pub fn stack_pointer(r: &Regs) -> u64 {
        r.sp()
    }

    /// The return address in the frame record `x29` points at (`[fp + 8]`, the saved `lr`).
    pub fn frame_record_return(regs: &Regs, mem: &mut StackMemory<'_>) -> Option<u64> {
        mem.word(regs.fp().checked_add(8)?).ok()
    }

    /// Whether the 4-byte instruction before an address (the last of `code`) is a call:
    /// `bl` or `blr`.
    pub fn after_a_call(code: &[u8; 8]) -> bool {
        let insn = u32::from_le_bytes([code[4], code[5], code[6], code[7]]);
        insn & 0xfc00_0000 == 0x9400_0000 || insn & 0xffff_fc1f == 0xd63f_0000
    }

    /// `mov x8, #139; svc #0`: `rt_sigreturn`, the vDSO's `__kernel_rt_sigreturn`.
    pub const SIGRETURN: &[u8] = &[0x68, 0x11, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4];

    /// The registers a signal frame saved (`struct rt_sigframe` at the stack pointer:
    /// `siginfo` (128 bytes), then `ucontext`, whose `mcontext` is 176 bytes in:
    /// `fault_address`, `regs[31]`, `sp`, `pc`).
    pub fn restore(regs: &mut Regs, mem: &mut StackMemory<'_>) -> Option<u64> {
        let mc = regs.sp().checked_add(128 + 176)?;
        let fp = mem.word(mc + 8 + 29 * 8).ok()?;
        let lr = mem.word(mc + 8 + 30 * 8).ok()?;
        let sp = mem.word(mc + 8 + 31 * 8).ok()?;
        let pc = mem.word(mc + 8 + 32 * 8).ok()?;
        regs.set_fp(fp);
        regs.set_lr(lr);
        regs.set_sp(sp);
        Some(pc)
    }
}

/// The unwinder of this machine's architecture over a set of modules.
pub(crate) struct Walk {
    unwinder: arch::Unwinder<Bytes>,
    cache: arch::Cache,
}

/// A frame as found: its address (the instruction pointer for the first frame and for one
/// restored from a signal frame; a return address otherwise), and how.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawFrame {
    pub address: u64,
    pub is_return: bool,
    pub how: FrameHow,
}

impl Walk {
    /// Over `modules` (those whose file was found).
    pub fn new(modules: &[Module]) -> Walk {
        let mut unwinder = arch::Unwinder::new();
        for m in modules {
            if let Some(image) = &m.image {
                unwinder.add_module(framehop::Module::new(
                    m.path.display().to_string(),
                    m.avma.clone(),
                    m.bias,
                    image.unwind.clone(),
                ));
            }
        }
        Walk {
            unwinder,
            cache: arch::Cache::new(),
        }
    }

    /// The frames of a thread stopped with registers `g`, and why the walk ended. With
    /// `partial` registers (only the instruction and stack pointers are known: a thread
    /// read while blocked), a frame that needs the frame pointer has it inferred
    /// ([`Walk::infer_frame_pointer`]); one that needs a register that cannot be inferred
    /// ends the walk with [`StackEnd::NeedsRegisters`].
    pub fn frames(
        &mut self,
        g: &GeneralRegisters,
        partial: bool,
        modules: &[Module],
        mem: &mut StackMemory<'_>,
    ) -> (Vec<RawFrame>, StackEnd) {
        let (pc, regs) = arch::start(g, partial, UNKNOWN);
        let mut frames = vec![RawFrame {
            address: pc,
            is_return: false,
            how: FrameHow::Context,
        }];
        let at = FrameAddress::from_instruction_pointer(pc);
        let end = self.walk_from(at, regs, partial, modules, mem, &mut frames);
        (frames, end)
    }

    /// Walks on from the frame at `at` with registers `regs`, appending to `frames`; why
    /// the walk ended.
    fn walk_from(
        &mut self,
        mut at: FrameAddress,
        mut regs: arch::Regs,
        partial: bool,
        modules: &[Module],
        mem: &mut StackMemory<'_>,
        frames: &mut Vec<RawFrame>,
    ) -> StackEnd {
        loop {
            if frames.len() >= MAX_FRAMES {
                return StackEnd::TooDeep { limit: MAX_FRAMES };
            }
            match go_frame(modules, at) {
                Some(GoFrame::Outermost) => return StackEnd::Complete,
                Some(GoFrame::SystemStack) => {
                    let Some(ret) = self.follow_systemstack(modules, &mut regs, mem) else {
                        let why = "runtime.systemstack's switch could not be followed back to the goroutine's stack";
                        return StackEnd::BadFrame(why.into());
                    };
                    frames.push(RawFrame {
                        address: ret,
                        is_return: true,
                        how: FrameHow::StackSwitch,
                    });
                    match FrameAddress::from_return_address(ret) {
                        Some(a) => at = a,
                        None => return StackEnd::BadFrame("a null return address".into()),
                    }
                    continue;
                }
                None => {}
            }
            let before = regs;
            let mut read = |a: u64| mem.word(a);
            let found = self
                .unwinder
                .unwind_frame(at, &mut regs, &mut self.cache, &mut read);
            let needs_registers = match &found {
                Ok(Some(ret)) => from_unknown(*ret),
                Err(framehop::Error::CouldNotReadStack(a)) => from_unknown(*a),
                // The call's own frame gave nothing to go on: the link register (aarch64)
                // or a frame pointer may be what it needs.
                Err(_) => partial && frames.len() == 1,
                Ok(None) => false,
            };
            if needs_registers {
                return match frames.len() >= 2 {
                    true => self.infer_frame_pointer(at, &before, modules, mem, frames),
                    false => StackEnd::NeedsRegisters,
                };
            }
            let ret = match found {
                Ok(Some(ret)) => ret,
                Ok(None) => return StackEnd::Complete,
                Err(framehop::Error::CouldNotReadStack(a)) => {
                    return StackEnd::StackCopyEnded { address: a };
                }
                Err(e) => {
                    return match goroutine_start(modules, &before, mem) {
                        Some(ret) => {
                            frames.push(RawFrame {
                                address: ret,
                                is_return: true,
                                how: FrameHow::FramePointer,
                            });
                            StackEnd::Complete
                        }
                        None => StackEnd::BadFrame(e.to_string()),
                    };
                }
            };
            let how = how_found(modules, at);
            if is_sigreturn(modules, ret) {
                // The handler returned into the trampoline: the frame below it is the one the
                // signal interrupted, with the registers saved on the stack.
                frames.push(RawFrame {
                    address: ret,
                    is_return: false,
                    how,
                });
                let Some(ip) = arch::restore(&mut regs, mem) else {
                    let address = mem.missed.unwrap_or(0);
                    return StackEnd::StackCopyEnded { address };
                };
                frames.push(RawFrame {
                    address: ip,
                    is_return: false,
                    how: FrameHow::SignalFrame,
                });
                at = FrameAddress::from_instruction_pointer(ip);
                continue;
            }
            frames.push(RawFrame {
                address: ret,
                is_return: true,
                how,
            });
            match FrameAddress::from_return_address(ret) {
                Some(a) => at = a,
                None => return StackEnd::BadFrame("a null return address".into()),
            }
        }
    }

    /// The frame at `at` (stack pointer in `regs`) of a thread read while blocked needs the
    /// frame pointer, which the syscall wrapper below it left as its caller set it: the
    /// address, in this frame, of the saved frame pointer with the return address above
    /// it. Tried from the stack pointer up, each slot whose next word points into a module's
    /// code: the first from which the walk reaches the thread's outermost frame is taken
    /// (its frames appended). None such (a stack deeper than its copy, a frame that needs
    /// another register): [`StackEnd::NeedsRegisters`], and the thread is read stopped.
    fn infer_frame_pointer(
        &mut self,
        at: FrameAddress,
        regs: &arch::Regs,
        modules: &[Module],
        mem: &mut StackMemory<'_>,
        frames: &mut Vec<RawFrame>,
    ) -> StackEnd {
        const SCAN: u64 = 64 << 10;
        let Some(with_bp) = arch::with_frame_pointer(regs) else {
            return StackEnd::NeedsRegisters;
        };
        let sp = arch::stack_pointer(regs);
        let missed = mem.missed;
        for slot in (sp..sp.saturating_add(SCAN)).step_by(8) {
            let Ok(ret) = mem.word(slot + 8) else { break };
            if !is_return_address(modules, ret) {
                continue;
            }
            let mut more = Vec::new();
            let end = self.walk_from(at, with_bp(slot), false, modules, mem, &mut more);
            if end == StackEnd::Complete {
                frames.extend(more);
                mem.missed = missed;
                return end;
            }
        }
        mem.missed = missed;
        StackEnd::NeedsRegisters
    }
}

/// Whether `addr` can be a return address: in the code of a module whose unwind tables
/// were read, just past a call instruction.
fn is_return_address(modules: &[Module], addr: u64) -> bool {
    let Some(m) = module_of(modules, addr) else {
        return false;
    };
    let Some(image) = &m.image else {
        return false;
    };
    let svma = addr.wrapping_sub(m.bias);
    let text = image.unwind.text_svma.as_ref();
    let mut before = [0u8; 8];
    text.is_some_and(|t| t.contains(&svma))
        && svma >= 8
        && image.read(svma - 8, &mut before)
        && arch::after_a_call(&before)
}

impl Walk {
    /// From a frame of Go's `runtime.systemstack` on `g0` back to the goroutine that
    /// called it. The function systemstack called saved the frame pointer it was called
    /// with — that of the goroutine's function `F`, systemstack's caller (nothing between
    /// touched it) — just below its return address, where Go's prologue puts it; `F`'s
    /// return address is the word below that frame that the unwind tables take to exactly
    /// it — found by trying the code addresses among the 4 KiB below. Sets `regs` to `F`'s
    /// frame; the return address into `F`.
    fn follow_systemstack(
        &mut self,
        modules: &[Module],
        regs: &mut arch::Regs,
        mem: &mut StackMemory<'_>,
    ) -> Option<u64> {
        if !cfg!(target_arch = "x86_64") {
            // arm64's Go keeps its frame record and link register otherwise: not followed.
            return None;
        }
        let bp = mem.word(arch::stack_pointer(regs).checked_sub(16)?).ok()?;
        let caller_ret = mem.word(bp.checked_add(8)?).ok()?;
        for slot in (1..=512u64).map(|i| bp.wrapping_sub(8 * i)) {
            let Ok(word) = mem.word(slot) else { break };
            if !calls_systemstack(modules, word) {
                continue;
            }
            let Some(at) = FrameAddress::from_return_address(word) else {
                continue;
            };
            let mut trial = arch::at(word, slot + 8, bp);
            let mut read = |a: u64| mem.word(a);
            let unwound = self
                .unwinder
                .unwind_frame(at, &mut trial, &mut self.cache, &mut read);
            let lands = matches!(unwound, Ok(Some(r)) if r == caller_ret)
                && arch::stack_pointer(&trial) == bp + 16;
            if lands {
                *regs = arch::at(word, slot + 8, bp);
                return Some(word);
            }
        }
        None
    }
}

/// Whether `ret` returns from a direct call of `runtime.systemstack` (`call rel32`, as Go
/// compiles every call of it): the goroutine's side of the switch.
fn calls_systemstack(modules: &[Module], ret: u64) -> bool {
    let Some(m) = module_of(modules, ret) else {
        return false;
    };
    let Some((image, go)) = m.image.as_ref().and_then(|i| Some((i, i.go.as_ref()?))) else {
        return false;
    };
    let mut call = [0u8; 5];
    let svma = ret.wrapping_sub(m.bias);
    if !image.read(svma.wrapping_sub(5), &mut call) || call[0] != 0xe8 {
        return false;
    }
    let rel = i32::from_le_bytes([call[1], call[2], call[3], call[4]]);
    let target = svma.wrapping_add_signed(i64::from(rel));
    go.at(target) == Some(GoFrame::SystemStack)
}

/// The return address into `runtime.goexit` in the frame record of a goroutine's first
/// function, which the unwinder refused. On arm64 the scheduler starts a goroutine with the
/// link register at `runtime.goexit` but no frame pointer of a caller, so that record may
/// hold a stale frame pointer ("moved backwards"); its return address still ends the walk
/// where every goroutine's does.
fn goroutine_start(
    modules: &[Module],
    regs: &arch::Regs,
    mem: &mut StackMemory<'_>,
) -> Option<u64> {
    let ret = arch::frame_record_return(regs, mem)?;
    let at = FrameAddress::from_return_address(ret)?;
    (go_frame(modules, at) == Some(GoFrame::Outermost)).then_some(ret)
}

/// What the Go runtime function holding the frame at `at` means for the walk, if any.
fn go_frame(modules: &[Module], at: FrameAddress) -> Option<GoFrame> {
    let addr = at.address_for_lookup();
    let m = module_of(modules, addr)?;
    m.image.as_ref()?.go.as_ref()?.at(addr.wrapping_sub(m.bias))
}

/// How the caller of the frame at `at` was found: from its module's CFI, else by frame
/// pointer.
fn how_found(modules: &[Module], at: FrameAddress) -> FrameHow {
    let addr = at.address_for_lookup();
    let covered = module_of(modules, addr)
        .and_then(|m| Some((m, m.image.as_ref()?)))
        .is_some_and(|(m, image)| cfi::covers(image, addr.wrapping_sub(m.bias)));
    if covered {
        FrameHow::Cfi
    } else {
        FrameHow::FramePointer
    }
}

/// Whether `addr` is the start of the signal trampoline (`rt_sigreturn`).
fn is_sigreturn(modules: &[Module], addr: u64) -> bool {
    let Some(m) = module_of(modules, addr) else {
        return false;
    };
    let Some(image) = &m.image else {
        return false;
    };
    let mut code = [0u8; 16];
    let code = &mut code[..arch::SIGRETURN.len()];
    image.read(addr.wrapping_sub(m.bias), code) && code == arch::SIGRETURN
}

/// The module mapped at `addr`.
pub(crate) fn module_of(modules: &[Module], addr: u64) -> Option<&Module> {
    modules.iter().find(|m| m.avma.contains(&addr))
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::arch::after_a_call;

    #[test]
    fn calls_are_recognised_before_a_return_address() {
        let pad = |tail: &[u8]| {
            let mut b = [0x90u8; 8];
            b[8 - tail.len()..].copy_from_slice(tail);
            b
        };
        assert!(after_a_call(&pad(&[0xe8, 1, 2, 3, 4]))); // call rel32
        assert!(after_a_call(&pad(&[0xff, 0xd0]))); // call *%rax
        assert!(after_a_call(&pad(&[0x41, 0xff, 0xd4]))); // call *%r12
        assert!(after_a_call(&pad(&[0xff, 0x15, 1, 2, 3, 4]))); // call *x(%rip)
        assert!(after_a_call(&pad(&[0xff, 0x50, 0x08]))); // call *8(%rax)
        assert!(after_a_call(&pad(&[0xff, 0x14, 0x24]))); // call *(%rsp)
        assert!(!after_a_call(&pad(&[0x5d, 0xc3]))); // pop %rbp; ret
        assert!(!after_a_call(&pad(&[0xff, 0xe0]))); // jmp *%rax
        assert!(!after_a_call(&pad(&[0x55, 0x48, 0x89, 0xe5]))); // a function's start
    }
}
