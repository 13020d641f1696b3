//! aarch64: `NT_PRSTATUS`, `NT_PRFPREG`, `NT_ARM_TLS`, `NT_ARM_SYSTEM_CALL`.
//!
//! Compiled and type-checked on every CI run; not yet exercised on hardware.

use std::io;

use crate::ptrace::{self, Tid};
use pss_types::records::GeneralRegisters;

/// Size of `struct user_fpsimd_state`.
pub const FP_SIZE: usize = 528;
const NT_ARM_TLS: u32 = 0x401;
const NT_ARM_SYSTEM_CALL: u32 = 0x404;

/// The highest user address + 1 with 48-bit virtual addresses.
pub const USER_ADDRESS_END: u64 = 0x1_0000_0000_0000;
/// The highest user address + 1 with 52-bit virtual addresses.
pub const USER_ADDRESS_END_LA57: u64 = 0x10_0000_0000_0000;

/// Reads `struct user_pt_regs`, the TLS register and the current syscall number.
pub fn read_general(tid: Tid) -> io::Result<GeneralRegisters> {
    let w = super::get_raw(tid)?;
    let mut regs = [0u64; 31];
    regs.copy_from_slice(&w[..31]);
    let mut tls = [0u8; 8];
    ptrace::get_regset(tid, NT_ARM_TLS, &mut tls)?;
    let mut sc = [0u8; 4];
    let mut syscall = match ptrace::get_regset(tid, NT_ARM_SYSTEM_CALL, &mut sc) {
        Ok(_) => i64::from(i32::from_ne_bytes(sc)),
        Err(_) => -1,
    };
    if syscall < 0 && restarting_a_syscall(tid, w[32]) {
        // Stopped in a system call the kernel will restart: it has forgotten the number
        // (NO_SYSCALL) and moved the pc back onto the `svc`, with x8 still the number.
        syscall = regs[8] as i64;
    }
    Ok(GeneralRegisters {
        regs,
        sp: w[31],
        pc: w[32],
        pstate: w[33],
        tls: u64::from_ne_bytes(tls),
        syscall,
    })
}

/// `svc #0`.
const SVC_0: u32 = 0xd400_0001;

/// Whether the instruction at `pc` of `tid` is `svc #0`: where a thread stopped in an
/// interrupted system call resumes, to issue it again.
fn restarting_a_syscall(tid: Tid, pc: u64) -> bool {
    ptrace::peek_text(tid, pc).is_ok_and(|w| w as u32 == SVC_0)
}

/// Reads `struct user_fpsimd_state`.
pub fn read_fp(tid: Tid) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; FP_SIZE];
    let n = ptrace::get_regset(tid, libc::NT_PRFPREG as u32, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// aarch64 has no XSAVE area; SVE state is not captured yet.
pub fn read_xstate(_tid: Tid, _scratch: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    Ok(None)
}

/// Hardware breakpoint registers are not captured on aarch64 yet.
pub fn read_debug(_tid: Tid) -> io::Result<Option<[u64; 8]>> {
    Ok(None)
}

/// A signal frame giving back `regs`, `mask` and stopped thread `tid`'s FP/SIMD state,
/// read now, for the thread's own stack below its stack pointer
/// ([`super::sigframe_aarch64`]): its address and bytes. (The restorer is not in the
/// frame on arm64: the link register holds it, [`super::set_chain_return`].)
pub fn restore_frame(
    tid: Tid,
    regs: &super::RawRegs,
    mask: u64,
    _restorer: u64,
) -> io::Result<Option<(u64, Vec<u8>)>> {
    use super::sigframe_aarch64::{frame, frame_address};
    let fpsimd = read_fp(tid)?;
    let Some(at) = frame_address(super::stack_pointer(regs), super::RED_ZONE) else {
        return Ok(None);
    };
    Ok(frame(regs, mask, &fpsimd).map(|f| (at, f)))
}

/// The clone trampoline's page for stopped thread `tid` ([`super::trampoline_aarch64`]):
/// code, and a signal frame giving back `regs`, `mask` and the thread's FP/SIMD state, read
/// now.
pub fn trampoline_page(tid: Tid, regs: &super::RawRegs, mask: u64) -> io::Result<Option<Vec<u8>>> {
    Ok(super::trampoline_aarch64::image(regs, mask, &read_fp(tid)?))
}

/// The thread pointer (`tpidr_el0`, `NT_ARM_TLS`) of stopped thread `tid`. aarch64's TLS
/// ABI is variant I: the thread library's descriptor lies just below it
/// (`own_stack.rs` recognises it there).
pub fn thread_pointer(tid: Tid, _regs: &super::RawRegs) -> Option<u64> {
    let mut tls = [0u8; 8];
    ptrace::get_regset(tid, NT_ARM_TLS, &mut tls).ok()?;
    Some(u64::from_ne_bytes(tls))
}

/// Where the thread library's thread descriptor is, seen from the thread pointer.
pub const THREAD_DESCRIPTOR: super::Descriptor = super::Descriptor::BelowThreadPointer;
