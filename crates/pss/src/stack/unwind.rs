//! Walking one thread's stack: framehop's unwinder over the modules' call-frame information
//! (falling back to frame pointers), from the registers the thread had when stopped and
//! the stack bytes of the snapshot — plus the one thing framehop leaves out, signal frames:
//! a return into the kernel's signal trampoline (`__restore_rt`) continues from the
//! registers saved in the signal frame on the stack.

use framehop::{FrameAddress, Unwinder};

use super::memory::StackMemory;
use super::modules::{Bytes, Module};
use super::{cfi, FrameHow, StackEnd};
use crate::records::GeneralRegisters;

/// The most frames a stack is walked to.
pub(crate) const MAX_FRAMES: usize = 512;

#[cfg(target_arch = "x86_64")]
mod arch {
    pub use framehop::x86_64::{
        CacheX86_64 as Cache, UnwindRegsX86_64 as Regs, UnwinderX86_64 as Unwinder,
    };

    use super::StackMemory;
    use crate::records::GeneralRegisters;

    /// The instruction pointer and the unwinder's registers of a stopped thread.
    pub fn start(g: &GeneralRegisters) -> (u64, Regs) {
        (g.rip, Regs::new(g.rip, g.rsp, g.rbp))
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
    use crate::records::GeneralRegisters;

    /// The program counter and the unwinder's registers of a stopped thread.
    pub fn start(g: &GeneralRegisters) -> (u64, Regs) {
        (g.pc, Regs::new(g.regs[30], g.sp, g.regs[29]))
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

    /// The frames of a thread stopped with registers `g`, and why the walk ended.
    pub fn frames(
        &mut self,
        g: &GeneralRegisters,
        modules: &[Module],
        mem: &mut StackMemory<'_>,
    ) -> (Vec<RawFrame>, StackEnd) {
        let (pc, mut regs) = arch::start(g);
        let mut frames = vec![RawFrame {
            address: pc,
            is_return: false,
            how: FrameHow::Context,
        }];
        let mut at = FrameAddress::from_instruction_pointer(pc);
        loop {
            if frames.len() >= MAX_FRAMES {
                return (frames, StackEnd::TooDeep { limit: MAX_FRAMES });
            }
            let mut read = |a: u64| mem.word(a);
            let found = self
                .unwinder
                .unwind_frame(at, &mut regs, &mut self.cache, &mut read);
            let ret = match found {
                Ok(Some(ret)) => ret,
                Ok(None) => return (frames, StackEnd::Complete),
                Err(framehop::Error::CouldNotReadStack(a)) => {
                    return (frames, StackEnd::StackCopyEnded { address: a });
                }
                Err(e) => return (frames, StackEnd::BadFrame(e.to_string())),
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
                    return (frames, StackEnd::StackCopyEnded { address });
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
                None => return (frames, StackEnd::BadFrame("a null return address".into())),
            }
        }
    }
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
