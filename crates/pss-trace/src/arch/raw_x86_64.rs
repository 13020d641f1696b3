//! Raw x86_64 general registers for syscall injection ([`crate::inject`]): save,
//! set up a syscall, read its result, restore with the restart fix-up.

/// The raw words of `user_regs_struct`: what is saved and restored around an injection.
pub type RawRegs = [u64; 27];

const R10: usize = 7;
const R9: usize = 8;
const R8: usize = 9;
const RAX: usize = 10;
const RDX: usize = 12;
const RSI: usize = 13;
const RDI: usize = 14;
const ORIG_RAX: usize = 15;
const RIP: usize = 16;
const EFLAGS: usize = 18;
pub(super) const RSP: usize = 19;
const FS_BASE: usize = 21;
/// The trap flag (single-step) in `eflags`.
const TF: u64 = 0x100;

/// The `syscall` instruction.
pub const SYSCALL_INSN: [u8; 2] = [0x0f, 0x05];
/// `syscall; ret`: where a self-restoring injection runs its syscalls (`inject.rs`).
pub const SYSCALL_RET: &[u8] = &[0x0f, 0x05, 0xc3];
/// Signal restorers, `rt_sigreturn`: `mov rax, 15; syscall` (glibc's and musl's
/// `__restore_rt`, Go's sigreturn) and `mov eax, 15; syscall`.
pub const RESTORERS: &[&[u8]] = &[
    &[0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05],
    &[0xb8, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05],
];

/// Nothing to set: on x86_64 the chain's `ret` takes its return address (the restorer)
/// from the frame itself ([`super::trampoline_x86_64::stack_frame`]).
pub fn set_chain_return(_regs: &mut RawRegs, _restorer: u64) {}

/// Sets the stack pointer.
pub fn set_stack_pointer(regs: &mut RawRegs, sp: u64) {
    regs[RSP] = sp;
}

/// `restart_syscall`.
const NR_RESTART_SYSCALL: u64 = 219;
const ERESTARTSYS: i64 = -512;
const ERESTARTNOINTR: i64 = -513;
const ERESTARTNOHAND: i64 = -514;
const ERESTART_RESTARTBLOCK: i64 = -516;

/// The address of the `syscall` instruction a thread stopped inside a syscall will return
/// to (`rip - 2`), if it is in a syscall.
pub fn syscall_return_site(regs: &RawRegs) -> Option<u64> {
    ((regs[ORIG_RAX] as i64) >= 0).then(|| regs[RIP].wrapping_sub(SYSCALL_INSN.len() as u64))
}

/// Sets up `regs` to run syscall `nr` with `args` at the instruction at `site`.
///
/// `orig_rax = -1` keeps the kernel's signal path from applying a syscall-restart fix-up to
/// the injected state; the trap flag is cleared so no SIGTRAP is raised.
pub fn prepare_syscall(regs: &mut RawRegs, site: u64, nr: u64, args: [u64; 6]) {
    regs[RIP] = site;
    regs[RAX] = nr;
    regs[ORIG_RAX] = u64::MAX;
    regs[RDI] = args[0];
    regs[RSI] = args[1];
    regs[RDX] = args[2];
    regs[R10] = args[3];
    regs[R8] = args[4];
    regs[R9] = args[5];
    regs[EFLAGS] &= !TF;
}

/// The return value of a syscall at its exit stop.
pub fn syscall_result(regs: &RawRegs) -> i64 {
    regs[RAX] as i64
}

/// Applies the syscall-restart fix-up to registers saved in an interrupted syscall, so that
/// restoring them resumes the syscall whatever the kernel's signal path does afterwards:
/// `-ERESTARTSYS`/`-ERESTARTNOINTR`/`-ERESTARTNOHAND` re-run the syscall, and
/// `-ERESTART_RESTARTBLOCK` runs `restart_syscall`, which resumes e.g. a `clock_nanosleep`
/// with its remaining time (CRIU's recipe, research §1.1).
pub fn restart_fixup(regs: &mut RawRegs) {
    if (regs[ORIG_RAX] as i64) < 0 {
        return;
    }
    match regs[RAX] as i64 {
        ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => {
            regs[RAX] = regs[ORIG_RAX];
            regs[RIP] -= SYSCALL_INSN.len() as u64;
        }
        ERESTART_RESTARTBLOCK => {
            regs[RAX] = NR_RESTART_SYSCALL;
            regs[RIP] -= SYSCALL_INSN.len() as u64;
        }
        _ => {}
    }
}

/// The stack pointer (`rsp`).
pub fn stack_pointer(regs: &RawRegs) -> u64 {
    regs[RSP]
}

/// The thread pointer (`fs_base`) of stopped thread `tid`, whose registers are `regs`.
pub fn thread_pointer(_tid: crate::ptrace::Tid, regs: &RawRegs) -> Option<u64> {
    Some(regs[FS_BASE])
}

/// Where the thread library's thread descriptor is, seen from the thread pointer: the
/// x86_64 TLS ABI (variant II) puts a TCB whose first word is its own address there
/// (glibc, musl, bionic).
pub const THREAD_DESCRIPTOR: super::Descriptor = super::Descriptor::AtThreadPointer;

/// Bytes below the stack pointer that the ABI lets a function use without moving it (the
/// red zone); scratch data must go below them.
pub const RED_ZONE: u64 = 128;
