//! The clone trampoline for x86_64: a few instructions and a signal frame, put in a private
//! page of the target for the length of the injected `clone`, so that neither the clone nor
//! the injected thread can ever run the target's code with injected state — even if the
//! engine dies while the kernel copies the page tables (`docs/engine.md`, "No window").
//!
//! The engine runs `clone` at [`ENTRY`] (the page's first instruction) through its usual
//! syscall stops, and when it is alive restores the thread itself: nothing after the
//! `syscall` ever runs. Only if the engine dies, and the kernel lets both go, does the code
//! after it run:
//!
//! ```text
//!  0: syscall                 ; clone(0, 0, 0, 0, 0)
//!  2: test rax, rax
//!  5: jne parent
//!  7: mov eax, 231            ; the clone: exit_group(0)
//!  c: xor edi, edi
//!  e: syscall
//! 10: parent: lea rsp, [rip + frame + 8]
//! 17: mov eax, 15             ; rt_sigreturn: the thread's own registers, signal mask
//! 1c: syscall                 ; and FPU state, as the engine would have restored them
//! 1e: ud2
//! ```

use super::raw_x86_64::{RawRegs, RSP};

/// Where the `syscall` the clone runs at is, from the page's start.
pub const ENTRY: u64 = 0;
/// Where the code that gives the injected thread its own state back starts (`parent:`).
pub const RETURN: u64 = 0x10;
/// Where the signal frame starts (8 mod 16, as the kernel lays frames out).
const FRAME: usize = 0x108;
/// Where the FPU state starts (XRSTOR needs 64-byte alignment).
const FPSTATE: usize = 0x400;

/// `struct ucontext` flags: XSAVE state present, `ss` saved, restore `ss` as is.
const UC_FP_XSTATE: u64 = 0x1;
const UC_SIGCONTEXT_SS: u64 = 0x2;
const UC_STRICT_RESTORE_SS: u64 = 0x4;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;

fn code() -> [u8; 32] {
    let mut c = [0u8; 32];
    let lea_next = 0x17i32;
    let disp = (FRAME as i32 + 8 - lea_next).to_le_bytes();
    let bytes: [u8; 32] = [
        0x0f, 0x05, // syscall
        0x48, 0x85, 0xc0, // test rax, rax
        0x75, 0x09, // jne +9
        0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231
        0x31, 0xff, // xor edi, edi
        0x0f, 0x05, // syscall
        0x48, 0x8d, 0x25, disp[0], disp[1], disp[2], disp[3], // lea rsp, [rip+disp]
        0xb8, 0x0f, 0x00, 0x00, 0x00, // mov eax, 15
        0x0f, 0x05, // syscall
        0x0f, 0x0b, // ud2
    ];
    c.copy_from_slice(&bytes);
    c
}

/// The FPU state a trampoline's frame gives back.
pub enum FpState<'a> {
    /// The thread's `NT_X86_XSTATE`, of which the first `size` bytes are this task's
    /// signal-frame layout holding the components `features` ([`xstate_layout`]).
    XSave {
        bytes: &'a [u8],
        size: usize,
        features: u64,
    },
    /// Its 512-byte FXSAVE image (`NT_PRFPREG`), on a CPU without XSAVE.
    FxSave(&'a [u8]),
}

/// The trampoline page's contents: the code, and a signal frame that gives back `regs` (the
/// thread's registers after the restart fix-up), `mask` and `fp`: as many bytes as they
/// take (the rest of the page stays as it is).
pub fn image(regs: &RawRegs, mask: u64, fp: FpState<'_>) -> Vec<u8> {
    let fp_len = match fp {
        FpState::XSave { size, .. } => size + 4,
        FpState::FxSave(_) => 512,
    };
    let mut page = vec![0u8; FPSTATE + fp_len];
    page[..32].copy_from_slice(&code());

    let uc = FRAME + 8;
    let xsave = matches!(fp, FpState::XSave { .. });
    let flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS | if xsave { UC_FP_XSTATE } else { 0 };
    put(&mut page, uc, flags);
    // uc_stack: flags 3 is invalid, so sigreturn leaves the thread's altstack as it is.
    put32(&mut page, uc + 24, 3);
    let sc = uc + 40;
    // struct sigcontext_64, in its order, from user_regs_struct words.
    let order = [
        9, 8, 7, 6, 3, 2, 1, 0, 14, 13, 4, 5, 12, 10, 11, RSP, 16, 18,
    ];
    for (i, &w) in order.iter().enumerate() {
        put(&mut page, sc + 8 * i, regs[w]);
    }
    // cs, gs, fs, ss (16 bits each).
    let segs = (regs[17] & 0xffff) | (regs[20] & 0xffff) << 48;
    put(&mut page, sc + 144, segs);
    put(&mut page, sc + 184, 0); // fpstate pointer, set by `place`
    put(&mut page, uc + 40 + 256, mask);

    match fp {
        FpState::XSave {
            bytes,
            size,
            features,
        } => {
            let n = size.min(bytes.len());
            page[FPSTATE..FPSTATE + n].copy_from_slice(&bytes[..n]);
            // The software-reserved bytes of a signal frame's FXSAVE area (ptrace puts XCR0
            // there instead).
            let sw = FPSTATE + 464;
            put32(&mut page, sw, FP_XSTATE_MAGIC1);
            put32(&mut page, sw + 4, (size + 4) as u32);
            put(&mut page, sw + 8, features);
            put32(&mut page, sw + 16, size as u32);
            page[sw + 20..sw + 48].fill(0);
            put32(&mut page, FPSTATE + size, FP_XSTATE_MAGIC2);
        }
        FpState::FxSave(bytes) => {
            let n = bytes.len().min(512);
            page[FPSTATE..FPSTATE + n].copy_from_slice(&bytes[..n]);
        }
    }
    page
}

/// Fixes the frame's FPU state pointer once the page's address is known.
pub fn place(page: &mut [u8], base: u64) {
    put(page, FRAME + 8 + 40 + 184, base + FPSTATE as u64);
}

/// The page's signal frame (and FPU state) moved onto a thread's own stack, below the red
/// zone under `sp`, its return address slot holding `restorer` (an `rt_sigreturn`): where
/// to write it, which is also the stack pointer a `syscall; ret` must run with to return
/// into the restorer, and the bytes. `None` if the stack pointer is too low.
pub fn stack_frame(page: &[u8], sp: u64, restorer: u64) -> Option<(u64, Vec<u8>)> {
    let below = sp.checked_sub(super::raw_x86_64::RED_ZONE + page.len() as u64)?;
    // The page's layout, at a base that puts the FPU state on a 64-byte boundary.
    let base = below & !63;
    let mut page = page.to_vec();
    place(&mut page, base);
    put(&mut page, FRAME, restorer);
    Some((base + FRAME as u64, page.split_off(FRAME)))
}

/// Sets `regs` (prepared for the injected `clone` at `base + ENTRY`) to use the page's
/// frame as stack, so that the code after the `syscall` finds it.
pub fn stack_for(regs: &mut RawRegs, base: u64) {
    regs[RSP] = base + FRAME as u64 + 8;
}

fn put(page: &mut [u8], at: usize, v: u64) {
    page[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn put32(page: &mut [u8], at: usize, v: u32) {
    page[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// The size of this CPU's signal-frame XSAVE layout and the components it holds: every
/// user component enabled in `xcr0` except those enabled on demand (AMX tiles: XFD), laid
/// out in the standard format (CPUID leaf 0xD). Worked out once: `cpuid` traps to the
/// hypervisor in a VM, and the pause must not pay for sixty of them.
pub fn xstate_layout(xcr0: u64) -> (usize, u64) {
    static LAYOUT: std::sync::OnceLock<(u64, usize, u64)> = std::sync::OnceLock::new();
    let &(for_xcr0, size, features) = LAYOUT.get_or_init(|| {
        let (size, features) = xstate_layout_uncached(xcr0);
        (xcr0, size, features)
    });
    if for_xcr0 == xcr0 {
        (size, features)
    } else {
        xstate_layout_uncached(xcr0)
    }
}

fn xstate_layout_uncached(xcr0: u64) -> (usize, u64) {
    let mut size = 576usize; // legacy area + XSAVE header
    let mut features = xcr0 & 0b11;
    for i in 2..63u32 {
        if xcr0 & (1 << i) == 0 {
            continue;
        }
        // SAFETY: cpuid is available on every x86_64 CPU; leaf 0xD sub-leaf i describes
        // state component i. (The function is safe in newer Rust, unsafe in older.)
        #[allow(unused_unsafe)]
        let leaf = unsafe { core::arch::x86_64::__cpuid_count(0xd, i) };
        let on_demand = leaf.ecx & 0b100 != 0;
        if on_demand || leaf.eax == 0 {
            continue;
        }
        features |= 1 << i;
        size = size.max((leaf.ebx + leaf.eax) as usize);
    }
    (size, features)
}
