//! Per-architecture register access behind one interface: [`read_general`] and
//! [`read_context`], plus the top of the user address space.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
pub use aarch64::*;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

use std::io;

use crate::flags::ContextFlags;
use crate::records::ThreadContext;

use super::ptrace::Tid;

/// Reads the register groups `flags` asks for (and the XSAVE area with `extended`) of a
/// stopped tracee.
pub fn read_context(tid: Tid, flags: ContextFlags, extended: bool) -> io::Result<ThreadContext> {
    let general = read_general(tid)?;
    let fp = if flags.wants(ContextFlags::FLOATING_POINT) {
        Some(read_fp(tid)?)
    } else {
        None
    };
    let xstate = if extended || flags.wants(ContextFlags::XSTATE) {
        read_xstate(tid)?
    } else {
        None
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

/// Decodes consecutive native-endian u64 words.
fn words<const N: usize>(buf: &[u8]) -> [u64; N] {
    let mut out = [0u64; N];
    for (i, chunk) in buf.chunks_exact(8).take(N).enumerate() {
        out[i] = u64::from_ne_bytes(chunk.try_into().expect("8-byte chunk"));
    }
    out
}
