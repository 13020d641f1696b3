//! Raw aarch64 general registers for syscall injection ([`crate::inject`]): save,
//! set up a syscall, read its result, restore with the restart fix-up.
// Exercised under emulation (scripts/test-aarch64.sh), not on arm64 hardware.
#![allow(dead_code)]

/// The raw words of `user_pt_regs`: what is saved and restored around an injection.
pub type RawRegs = [u64; 34];

const PC: usize = 32;

/// `svc #0`.
pub const SYSCALL_INSN: [u8; 4] = [0x01, 0x00, 0x00, 0xd4];

/// On aarch64 the kernel has already rewound `pc` to the `svc` of an interrupted syscall
/// before the ptrace stop, so the instruction is at `pc` (the caller verifies the bytes).
pub fn syscall_return_site(regs: &RawRegs) -> Option<u64> {
    Some(regs[PC])
}

/// Sets up `regs` to run syscall `nr` with `args` at the `svc` at `site`.
pub fn prepare_syscall(regs: &mut RawRegs, site: u64, nr: u64, args: [u64; 6]) {
    regs[PC] = site;
    regs[8] = nr;
    regs[..6].copy_from_slice(&args);
}

/// The return value of a syscall at its exit stop.
pub fn syscall_result(regs: &RawRegs) -> i64 {
    regs[0] as i64
}

/// aarch64 needs no fix-up: the kernel rewound `pc` and restored `x0` before the stop. (A
/// relative sleep restarted this way restarts with its full timeout: docs/differences.md.)
pub fn restart_fixup(_regs: &mut RawRegs) {}

/// `svc #0; ret`: where a self-restoring injection's syscall runs (`inject.rs`): after
/// it, `ret` goes to the link register, set to a [`RESTORERS`] sequence.
pub const SYSCALL_RET: &[u8] = &[0x01, 0x00, 0x00, 0xd4, 0xc0, 0x03, 0x5f, 0xd6];
/// `mov x8, #139; svc #0`: `rt_sigreturn`, as the vDSO's `__kernel_rt_sigreturn` has it.
pub const RESTORERS: &[&[u8]] = &[&[0x68, 0x11, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4]];

/// Sets where the code after a self-restoring injection's syscall returns to: the link
/// register, which the `ret` of [`SYSCALL_RET`] takes.
pub fn set_chain_return(regs: &mut RawRegs, restorer: u64) {
    regs[30] = restorer;
}

/// Sets the stack pointer.
pub fn set_stack_pointer(regs: &mut RawRegs, sp: u64) {
    regs[31] = sp;
}

/// The stack pointer (`sp`).
pub fn stack_pointer(regs: &RawRegs) -> u64 {
    regs[31]
}

/// AAPCS64 has no red zone; 128 bytes are left anyway, as on x86_64.
pub const RED_ZONE: u64 = 128;
