//! The signal frame that makes an arm64 injection self-restoring ([`crate::inject`]): a
//! `struct rt_sigframe` (arch/arm64/kernel/signal.c) on the thread's own stack holding
//! its registers, signal mask and FP/SIMD state. The injected syscall runs at an
//! `svc #0; ret` already in the process's code with `sp` at the frame and the link
//! register at a `mov x8, #139; svc #0` (`rt_sigreturn`: the vDSO's
//! `__kernel_rt_sigreturn`): if the engine dies while the thread is in the syscall, the
//! thread returns into `rt_sigreturn`, which gives it everything back from the frame —
//! including an interrupted syscall to restart, since the kernel had already rewound the
//! `pc` onto its `svc` and put `x0` back.
//!
//! Layout: `siginfo` (128 bytes), then `struct ucontext`: `uc_flags`, `uc_link`,
//! `uc_stack` (its flags invalid, so that `rt_sigreturn` leaves the thread's alternate
//! signal stack as it is), `uc_sigmask` padded to 128 bytes, then at 16-byte alignment
//! `struct sigcontext` (`fault_address`, `regs[31]`, `sp`, `pc`, `pstate`, and 4096
//! reserved bytes holding the `fpsimd_context` record and the terminating null record).

use super::raw_aarch64::RawRegs;

/// Where `struct ucontext` starts.
const UCONTEXT: usize = 128;
/// `uc_stack.ss_flags`: 3 (`SS_ONSTACK | SS_DISABLE`) is invalid, and `restore_altstack`
/// ignores the error.
const UC_STACK_FLAGS: usize = UCONTEXT + 24;
/// `uc_sigmask`.
const UC_SIGMASK: usize = UCONTEXT + 40;
/// `uc_mcontext`: `struct sigcontext`, 16-byte aligned.
const SIGCONTEXT: usize = UCONTEXT + 176;
/// `sigcontext.regs[0]`, then `sp`, `pc`, `pstate` after the 31 registers.
const REGS: usize = SIGCONTEXT + 8;
/// `sigcontext.__reserved`: the records.
const RESERVED: usize = SIGCONTEXT + 288;
/// The whole frame: the reserved area is 4096 bytes.
pub const FRAME_SIZE: usize = RESERVED + 4096;

/// `FPSIMD_MAGIC` and the size of its record.
const FPSIMD_MAGIC: u32 = 0x4650_8001;
const FPSIMD_RECORD: usize = 16 + 32 * 16;

/// The frame that gives back `regs`, `mask` and `fpsimd` (`struct user_fpsimd_state` as
/// `NT_PRFPREG` reads it: 32 vector registers of 16 bytes, then `fpsr` and `fpcr`).
pub fn frame(regs: &RawRegs, mask: u64, fpsimd: &[u8]) -> Option<Vec<u8>> {
    if fpsimd.len() < 32 * 16 + 8 {
        return None;
    }
    let mut f = vec![0u8; FRAME_SIZE];
    put32(&mut f, UC_STACK_FLAGS, 3);
    put(&mut f, UC_SIGMASK, mask);
    // regs[0..31], sp, pc, pstate: the raw words in that order.
    for (i, word) in regs.iter().enumerate() {
        put(&mut f, REGS + 8 * i, *word);
    }
    put32(&mut f, RESERVED, FPSIMD_MAGIC);
    put32(&mut f, RESERVED + 4, FPSIMD_RECORD as u32);
    f[RESERVED + 8..RESERVED + 12].copy_from_slice(&fpsimd[512..516]); // fpsr
    f[RESERVED + 12..RESERVED + 16].copy_from_slice(&fpsimd[516..520]); // fpcr
    f[RESERVED + 16..RESERVED + 16 + 512].copy_from_slice(&fpsimd[..512]);
    // The null record after it ends the list (already zero).
    Some(f)
}

/// Where a frame goes below stack pointer `sp` (past the red zone, 16-byte aligned, as
/// `rt_sigreturn` requires).
pub fn frame_address(sp: u64, red_zone: u64) -> Option<u64> {
    Some(sp.checked_sub(red_zone + FRAME_SIZE as u64)? & !15)
}

fn put(f: &mut [u8], at: usize, v: u64) {
    f[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn put32(f: &mut [u8], at: usize, v: u32) {
    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_the_kernels() {
        // sizeof(struct rt_sigframe) on arm64: siginfo 128 + ucontext (176 + sigcontext
        // 4384, whose __reserved is 16-aligned at 288).
        assert_eq!(FRAME_SIZE, 128 + 176 + 4384);
        assert_eq!(FRAME_SIZE % 16, 0);
        let mut regs = [0u64; 34];
        regs[0] = 7;
        regs[31] = 0x1000; // sp
        regs[32] = 0x2000; // pc
        regs[33] = 0x6000_0000; // pstate
        let mut fp = vec![0u8; 528];
        fp[0] = 0xaa;
        fp[512] = 0x11;
        let f = frame(&regs, 0x8000, &fp).unwrap();
        assert_eq!(f[REGS], 7);
        assert_eq!(
            u64::from_le_bytes(f[REGS + 31 * 8..REGS + 32 * 8].try_into().unwrap()),
            0x1000
        );
        assert_eq!(
            u64::from_le_bytes(f[REGS + 32 * 8..REGS + 33 * 8].try_into().unwrap()),
            0x2000
        );
        assert_eq!(f[RESERVED + 16], 0xaa);
        assert_eq!(f[RESERVED + 8], 0x11);
        assert_eq!(
            frame_address(0x10_0000, 128),
            Some((0x10_0000 - 128 - FRAME_SIZE as u64) & !15)
        );
    }
}
