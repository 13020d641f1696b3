//! The Windows `CONTEXT` record built from a captured thread context: AMD64's (1232 bytes)
//! on x86_64, ARM64's (`ARM64_NT_CONTEXT`, 912 bytes) on aarch64.
//!
//! Only the groups asked for in `ThreadContextFlags` are filled; the rest stays zero, and
//! `ContextFlags` says which are valid. With `PSS_CAPTURE_THREAD_CONTEXT_EXTENDED` on
//! x86_64, the thread's whole XSAVE area (Linux `NT_X86_XSTATE`) follows the 1232 bytes and
//! `CONTEXT_XSTATE` is set: the record is `1232 + xsave length` bytes, as
//! `SizeOfContextRecord` and `ContextLength` say (docs/capi.md).

use pss_core::records::ThreadContext;
use pss_core::ContextFlags;

/// The register groups a caller's `ThreadContextFlags` ask for. On x86_64 they are the
/// AMD64 values the capture takes as they are.
#[cfg(target_arch = "x86_64")]
pub fn requested(thread_context_flags: u32) -> ContextFlags {
    ContextFlags::from_bits_retain(thread_context_flags)
}

/// The register groups a caller's `ThreadContextFlags` ask for: the ARM64 values
/// ([`ARM64_GROUPS`]), as the capture's groups. Without the `CONTEXT_ARM64` bit nothing is
/// asked for, as on Windows.
#[cfg(target_arch = "aarch64")]
pub fn requested(thread_context_flags: u32) -> ContextFlags {
    if thread_context_flags & ARM64 == 0 {
        return ContextFlags::empty();
    }
    ARM64_GROUPS
        .iter()
        .filter(|(bit, _)| thread_context_flags & bit != 0)
        .fold(ContextFlags::empty(), |groups, (_, group)| groups | *group)
}

/// `CONTEXT_ARM64`.
#[cfg(target_arch = "aarch64")]
const ARM64: u32 = 0x0040_0000;
/// The ARM64 `CONTEXT_*` group bits (below `CONTEXT_ARM64`).
#[cfg(target_arch = "aarch64")]
const ARM64_CONTROL: u32 = 0x1;
#[cfg(target_arch = "aarch64")]
const ARM64_INTEGER: u32 = 0x2;
#[cfg(target_arch = "aarch64")]
const ARM64_FLOATING_POINT: u32 = 0x4;
#[cfg(target_arch = "aarch64")]
const ARM64_DEBUG_REGISTERS: u32 = 0x8;
#[cfg(target_arch = "aarch64")]
const ARM64_X18: u32 = 0x10;
/// Each ARM64 group bit, and the capture's group that reads it (x18 is a general register).
#[cfg(target_arch = "aarch64")]
const ARM64_GROUPS: [(u32, ContextFlags); 5] = [
    (ARM64_CONTROL, ContextFlags::CONTROL),
    (ARM64_INTEGER, ContextFlags::INTEGER),
    (ARM64_FLOATING_POINT, ContextFlags::FLOATING_POINT),
    (ARM64_DEBUG_REGISTERS, ContextFlags::DEBUG_REGISTERS),
    (ARM64_X18, ContextFlags::INTEGER),
];

/// `sizeof(CONTEXT)`.
const CONTEXT_SIZE: usize = pss_core::CONTEXT_RECORD_SIZE as usize;

/// The record for `ctx`: the CONTEXT, then (x86_64) the XSAVE area if one was captured.
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

/// `ARM64_NT_CONTEXT`: `ContextFlags` at 0, `Cpsr` 4, `X0`–`X28` 8, `Fp` 240, `Lr` 248,
/// `Sp` 256, `Pc` 264, `V[32]` 272, `Fpcr` 784, `Fpsr` 788, then the debug registers
/// (not captured on arm64: left zero, `CONTEXT_DEBUG_REGISTERS` not set).
#[cfg(target_arch = "aarch64")]
fn build(ctx: &ThreadContext) -> Vec<u8> {
    use pss_core::ContextFlags as F;

    let mut b = vec![0u8; CONTEXT_SIZE];
    let g = &ctx.general;
    let want = ctx.flags;
    let mut flags = ARM64;
    if want.wants(F::CONTROL) {
        flags |= ARM64_CONTROL;
        b[4..8].copy_from_slice(&(g.pstate as u32).to_le_bytes());
        put64(&mut b, 240, g.regs[29]);
        put64(&mut b, 248, g.regs[30]);
        put64(&mut b, 256, g.sp);
        put64(&mut b, 264, g.pc);
    }
    if want.wants(F::INTEGER) {
        flags |= ARM64_INTEGER | ARM64_X18;
        for (i, v) in g.regs[..29].iter().enumerate() {
            put64(&mut b, 8 + 8 * i, *v);
        }
    }
    // `struct user_fpsimd_state`: 32 128-bit registers, then fpsr and fpcr.
    if let (true, Some(fp)) = (want.wants(F::FLOATING_POINT), ctx.fp.as_deref()) {
        if fp.len() >= 520 {
            flags |= ARM64_FLOATING_POINT;
            b[272..784].copy_from_slice(&fp[..512]);
            b[784..788].copy_from_slice(&fp[516..520]);
            b[788..792].copy_from_slice(&fp[512..516]);
        }
    }
    b[0..4].copy_from_slice(&flags.to_le_bytes());
    b
}
