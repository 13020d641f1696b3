//! x86_64: `NT_PRSTATUS`, `NT_PRFPREG`, `NT_X86_XSTATE`, debug registers by `PEEKUSER`.

use std::io;

use crate::ptrace::{self, Tid};
use pss_types::records::GeneralRegisters;

/// Size of the FXSAVE image (`NT_PRFPREG`), which is also the start of the XSAVE area.
pub const FP_SIZE: usize = 512;
/// `NT_X86_XSTATE`.
const NT_X86_XSTATE: u32 = 0x202;
/// The largest XSAVE area we accept (AMX tiles make it ~11 KiB).
const XSTATE_MAX: usize = 16 * 1024;
/// `offsetof(struct user, u_debugreg)`.
const DEBUGREG_OFFSET: usize = std::mem::offset_of!(libc::user, u_debugreg);

/// The highest user address + 1 with 4-level paging.
pub const USER_ADDRESS_END: u64 = 0x7fff_ffff_f000;
/// The highest user address + 1 with 5-level paging (used when a mapping lies above the
/// 4-level limit).
pub const USER_ADDRESS_END_LA57: u64 = 0x00ff_ffff_ffff_f000;

/// Reads `struct user_regs_struct`.
pub fn read_general(tid: Tid) -> io::Result<GeneralRegisters> {
    let raw = super::get_raw(tid)?;
    // RawRegs is exactly the 27 words of user_regs_struct, in order.
    GeneralRegisters::from_words(&raw)
        .ok_or_else(|| io::Error::other("NT_PRSTATUS is not 27 words"))
}

/// Reads the 512-byte FXSAVE area.
pub fn read_fp(tid: Tid) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; FP_SIZE];
    let n = ptrace::get_regset(tid, libc::NT_PRFPREG as u32, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Reads the whole XSAVE area through `scratch`; `None` if the CPU or kernel has none.
pub fn read_xstate(tid: Tid, scratch: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    if scratch.len() < XSTATE_MAX {
        scratch.resize(XSTATE_MAX, 0);
    }
    match ptrace::get_regset(tid, NT_X86_XSTATE, scratch) {
        Ok(n) => Ok(Some(scratch[..n].to_vec())),
        Err(e)
            if e.raw_os_error() == Some(libc::ENODEV) || e.raw_os_error() == Some(libc::EINVAL) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Reads dr0–dr3, dr6 and dr7 (dr4 and dr5 are reserved and read as 0).
pub fn read_debug(tid: Tid) -> io::Result<Option<[u64; 8]>> {
    let mut dr = [0u64; 8];
    for i in [0, 1, 2, 3, 6, 7] {
        dr[i] = ptrace::peek_user(tid, DEBUGREG_OFFSET + i * 8)?;
    }
    Ok(Some(dr))
}

/// A signal frame giving back `regs` (after the restart fix-up; their stack pointer says
/// where the frame goes), `mask` and stopped thread `tid`'s FPU state, read now, for the
/// thread's own stack ([`super::trampoline_x86_64::stack_frame`]): its address and bytes.
pub fn restore_frame(
    tid: Tid,
    regs: &super::RawRegs,
    mask: u64,
    restorer: u64,
) -> io::Result<Option<(u64, Vec<u8>)>> {
    let page = trampoline_page(tid, regs, mask)?.expect("x86_64 has a trampoline");
    let sp = super::stack_pointer(regs);
    Ok(super::trampoline_x86_64::stack_frame(&page, sp, restorer))
}

/// The clone trampoline's page for stopped thread `tid` ([`super::trampoline_x86_64`]):
/// code, and a signal frame giving back `regs` (after the restart fix-up), `mask` and the
/// thread's FPU state, read now.
pub fn trampoline_page(tid: Tid, regs: &super::RawRegs, mask: u64) -> io::Result<Option<Vec<u8>>> {
    use super::trampoline_x86_64::{image, xstate_layout, FpState};
    let mut scratch = Vec::new();
    let xstate = read_xstate(tid, &mut scratch)?;
    let layout = xstate.as_deref().filter(|x| x.len() >= FP_SIZE).map(|x| {
        let xcr0 = u64::from_le_bytes(x[464..472].try_into().expect("8 bytes"));
        xstate_layout(xcr0)
    });
    let page = match (&xstate, layout) {
        (Some(bytes), Some((size, features))) if size <= bytes.len() => image(
            regs,
            mask,
            FpState::XSave {
                bytes,
                size,
                features,
            },
        ),
        _ => image(regs, mask, FpState::FxSave(&read_fp(tid)?)),
    };
    Ok(Some(page))
}
