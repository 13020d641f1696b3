//! Per-architecture register access behind one interface: [`read_general`],
//! [`ContextReader`], raw registers for injection, and the top of the user address space.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
mod raw_aarch64;
#[cfg(target_arch = "x86_64")]
mod raw_x86_64;
#[cfg(target_arch = "aarch64")]
mod sigframe_aarch64;
#[cfg(target_arch = "aarch64")]
mod trampoline_aarch64;
#[cfg(target_arch = "x86_64")]
mod trampoline_x86_64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
pub use aarch64::*;
#[cfg(target_arch = "aarch64")]
pub use raw_aarch64::*;
#[cfg(target_arch = "x86_64")]
pub use raw_x86_64::*;
#[cfg(target_arch = "aarch64")]
pub use trampoline_aarch64::{
    place as place_trampoline, stack_for as trampoline_stack, ENTRY as TRAMPOLINE_ENTRY,
    RETURN as TRAMPOLINE_RETURN,
};
#[cfg(target_arch = "x86_64")]
pub use trampoline_x86_64::{
    place as place_trampoline, stack_for as trampoline_stack, ENTRY as TRAMPOLINE_ENTRY,
    RETURN as TRAMPOLINE_RETURN,
};
/// Whether this architecture has a clone trampoline (both have).
pub const HAS_TRAMPOLINE: bool = true;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

use std::io;

use pss_types::flags::ContextFlags;
use pss_types::records::ThreadContext;

use super::ptrace::Tid;

/// Where a thread library keeps a thread's descriptor, seen from its thread pointer: how a
/// thread library's stack is recognised (each architecture's `THREAD_DESCRIPTOR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Descriptor {
    /// TLS variant II (x86_64): the TCB is at the thread pointer, and its first word is
    /// its own address (glibc, musl, bionic).
    AtThreadPointer,
    /// TLS variant I (aarch64): the descriptor ends at the thread pointer, with no word
    /// that points at the thread pointer. It is recognised by the thread's own tid beside
    /// the links of the library's circular list of threads, each pointed back at by its
    /// neighbour: glibc's `list` (`next`, `prev`) then `tid`; musl's `self` (its own
    /// address), `prev`, `next`, `sysinfo`, then `tid`.
    BelowThreadPointer,
}

/// Reads register contexts of stopped tracees, reusing one scratch buffer for the
/// variable-size extended state.
#[derive(Default)]
pub struct ContextReader {
    scratch: Vec<u8>,
}

impl ContextReader {
    /// Reads the register groups `flags` asks for (and the XSAVE area with `extended`).
    pub fn read(
        &mut self,
        tid: Tid,
        flags: ContextFlags,
        extended: bool,
    ) -> io::Result<ThreadContext> {
        let general = read_general(tid)?;
        let xstate = if extended || flags.wants(ContextFlags::XSTATE) {
            read_xstate(tid, &mut self.scratch)?
        } else {
            None
        };
        let fp = match (&xstate, flags.wants(ContextFlags::FLOATING_POINT)) {
            (_, false) => None,
            // The XSAVE area starts with the FXSAVE image (the kernel fills in init values
            // for components in their init state): one ptrace call fewer per thread.
            (Some(x), true) if x.len() >= FP_SIZE => Some(x[..FP_SIZE].to_vec()),
            (_, true) => Some(read_fp(tid)?),
        };
        let debug = if flags.wants(ContextFlags::DEBUG_REGISTERS) {
            read_debug(tid)?
        } else {
            None
        };
        Ok(ThreadContext {
            flags,
            general,
            fp,
            xstate,
            debug,
        })
    }
}

/// The raw general registers (`NT_PRSTATUS` as words): what `read_general` decodes and what
/// an injection saves and restores.
pub fn get_raw(tid: Tid) -> io::Result<RawRegs> {
    let mut buf = vec![0u8; std::mem::size_of::<RawRegs>()];
    let n = super::ptrace::get_regset(tid, libc::NT_PRSTATUS as u32, &mut buf)?;
    if n < buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("NT_PRSTATUS of thread {tid} is {n} bytes (a 32-bit task?)"),
        ));
    }
    Ok(words(&buf))
}

/// Writes the raw general registers.
pub fn set_raw(tid: Tid, regs: &RawRegs) -> io::Result<()> {
    let buf: Vec<u8> = regs.iter().flat_map(|w| w.to_ne_bytes()).collect();
    super::ptrace::set_regset(tid, libc::NT_PRSTATUS as u32, &buf)
}

/// Decodes consecutive native-endian u64 words.
fn words<const N: usize>(buf: &[u8]) -> [u64; N] {
    let mut out = [0u64; N];
    for (i, chunk) in buf.chunks_exact(8).take(N).enumerate() {
        out[i] = u64::from_ne_bytes(chunk.try_into().expect("8-byte chunk"));
    }
    out
}
