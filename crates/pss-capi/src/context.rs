//! The Windows AMD64 `CONTEXT` record (1232 bytes) built from a captured thread context.
//!
//! Only the groups asked for in `ThreadContextFlags` are filled; the rest stays zero, and
//! `ContextFlags` says which are valid. With `PSS_CAPTURE_THREAD_CONTEXT_EXTENDED`, the
//! thread's whole XSAVE area (Linux `NT_X86_XSTATE`) follows the 1232 bytes and
//! `CONTEXT_XSTATE` is set: the record is `1232 + xsave length` bytes, as
//! `SizeOfContextRecord` and `ContextLength` say (docs/capi.md).

use pss_core::records::ThreadContext;

/// `sizeof(CONTEXT)`.
#[cfg(target_arch = "x86_64")]
const CONTEXT_SIZE: usize = pss_core::CONTEXT_RECORD_SIZE as usize;

/// The record for `ctx`: the CONTEXT, then the XSAVE area if one was captured. Empty on
/// architectures without a Windows-layout mapping (aarch64: no CONTEXT records yet).
pub fn record(ctx: &ThreadContext) -> Vec<u8> {
    build(ctx)
}

#[cfg(target_arch = "x86_64")]
fn build(ctx: &ThreadContext) -> Vec<u8> {
    use pss_core::ContextFlags as F;

    let mut b = vec![0u8; CONTEXT_SIZE + ctx.xstate.as_ref().map_or(0, Vec::len)];
    let g = &ctx.general;
    let want = ctx.flags;
    let mut flags = F::AMD64;
    if want.wants(F::CONTROL) {
        flags |= F::CONTROL;
        put16(&mut b, 56, g.cs as u16);
        put16(&mut b, 66, g.ss as u16);
        put32(&mut b, 68, g.eflags as u32);
        put64(&mut b, 152, g.rsp);
        put64(&mut b, 248, g.rip);
    }
    if want.wants(F::INTEGER) {
        flags |= F::INTEGER;
        let regs = [
            g.rax, g.rcx, g.rdx, g.rbx, g.rsp, g.rbp, g.rsi, g.rdi, g.r8, g.r9, g.r10, g.r11,
            g.r12, g.r13, g.r14, g.r15,
        ];
        for (i, v) in regs.into_iter().enumerate() {
            // Rsp (index 4) belongs to CONTROL; writing it here too is harmless.
            put64(&mut b, 120 + 8 * i, v);
        }
    }
    if want.wants(F::SEGMENTS) {
        flags |= F::SEGMENTS;
        put16(&mut b, 58, g.ds as u16);
        put16(&mut b, 60, g.es as u16);
        put16(&mut b, 62, g.fs as u16);
        put16(&mut b, 64, g.gs as u16);
    }
    if let (true, Some(fp)) = (want.wants(F::FLOATING_POINT), &ctx.fp) {
        flags |= F::FLOATING_POINT;
        let n = fp.len().min(512);
        b[256..256 + n].copy_from_slice(&fp[..n]);
        if fp.len() >= 28 {
            // MxCsr lives at offset 24 of the FXSAVE area.
            b[52..56].copy_from_slice(&fp[24..28]);
        }
    }
    if let (true, Some(d)) = (want.wants(F::DEBUG_REGISTERS), &ctx.debug) {
        flags |= F::DEBUG_REGISTERS;
        for (i, v) in [d[0], d[1], d[2], d[3], d[6], d[7]].into_iter().enumerate() {
            put64(&mut b, 72 + 8 * i, v);
        }
    }
    if let Some(x) = &ctx.xstate {
        flags |= F::XSTATE;
        b[CONTEXT_SIZE..].copy_from_slice(x);
    }
    put32(&mut b, 48, flags.bits());
    b
}

#[cfg(target_arch = "x86_64")]
fn put64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(target_arch = "x86_64")]
fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

#[cfg(target_arch = "x86_64")]
fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

#[cfg(not(target_arch = "x86_64"))]
fn build(_ctx: &ThreadContext) -> Vec<u8> {
    Vec::new()
}
