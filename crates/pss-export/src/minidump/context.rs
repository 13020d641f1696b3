//! A thread's registers as the minidump's per-architecture `CONTEXT` record
//! (rust-minidump's `CONTEXT_AMD64` / `CONTEXT_ARM64`).

use minidump_common::format as md;

use super::blob::Blob;
use pss_types::records::ThreadContext;

/// Appends the `CONTEXT_AMD64` of `ctx`; returns where it is.
#[cfg(target_arch = "x86_64")]
pub(crate) fn put(blob: &mut Blob, ctx: &ThreadContext) -> md::MINIDUMP_LOCATION_DESCRIPTOR {
    use md::ContextFlagsAmd64 as F;
    let g = &ctx.general;
    let mut flags = F::CONTEXT_AMD64_CONTROL | F::CONTEXT_AMD64_INTEGER | F::CONTEXT_AMD64_SEGMENTS;
    let mut c = md::CONTEXT_AMD64 {
        cs: g.cs as u16,
        ds: g.ds as u16,
        es: g.es as u16,
        fs: g.fs as u16,
        gs: g.gs as u16,
        ss: g.ss as u16,
        eflags: g.eflags as u32,
        rax: g.rax,
        rcx: g.rcx,
        rdx: g.rdx,
        rbx: g.rbx,
        rsp: g.rsp,
        rbp: g.rbp,
        rsi: g.rsi,
        rdi: g.rdi,
        r8: g.r8,
        r9: g.r9,
        r10: g.r10,
        r11: g.r11,
        r12: g.r12,
        r13: g.r13,
        r14: g.r14,
        r15: g.r15,
        rip: g.rip,
        ..Default::default()
    };
    if let Some(fp) = ctx.fp.as_deref().filter(|fp| fp.len() >= 512) {
        // The FXSAVE area is XMM_SAVE_AREA32 byte for byte; MXCSR sits at offset 24.
        flags |= F::CONTEXT_AMD64_FLOATING_POINT;
        c.float_save.copy_from_slice(&fp[..512]);
        c.mx_csr = u32::from_le_bytes(fp[24..28].try_into().expect("4 bytes"));
    }
    if let Some(dr) = ctx.debug {
        flags |= F::CONTEXT_AMD64_DEBUG_REGISTERS;
        (c.dr0, c.dr1, c.dr2, c.dr3, c.dr6, c.dr7) = (dr[0], dr[1], dr[2], dr[3], dr[6], dr[7]);
    }
    c.context_flags = flags.bits();
    let at = blob.put(c);
    md::MINIDUMP_LOCATION_DESCRIPTOR {
        data_size: (blob.pos() - u64::from(at)) as u32,
        rva: at,
    }
}

/// Appends the `CONTEXT_ARM64` of `ctx`; returns where it is.
#[cfg(target_arch = "aarch64")]
pub(crate) fn put(blob: &mut Blob, ctx: &ThreadContext) -> md::MINIDUMP_LOCATION_DESCRIPTOR {
    use md::ContextFlagsArm64 as F;
    let g = &ctx.general;
    let mut flags = F::CONTEXT_ARM64_CONTROL | F::CONTEXT_ARM64_INTEGER;
    let mut c = md::CONTEXT_ARM64 {
        cpsr: g.pstate as u32,
        iregs: g.regs,
        sp: g.sp,
        pc: g.pc,
        ..Default::default()
    };
    // `struct user_fpsimd_state`: 32 128-bit registers, then fpsr and fpcr.
    if let Some(fp) = ctx.fp.as_deref().filter(|fp| fp.len() >= 520) {
        flags |= F::CONTEXT_ARM64_FLOATING_POINT;
        for (i, r) in fp[..512].chunks_exact(16).enumerate() {
            c.float_regs[i] = u128::from_le_bytes(r.try_into().expect("16 bytes"));
        }
        c.fpsr = u32::from_le_bytes(fp[512..516].try_into().expect("4 bytes"));
        c.fpcr = u32::from_le_bytes(fp[516..520].try_into().expect("4 bytes"));
    }
    c.context_flags = flags.bits();
    let at = blob.put(c);
    md::MINIDUMP_LOCATION_DESCRIPTOR {
        data_size: (blob.pos() - u64::from(at)) as u32,
        rva: at,
    }
}

/// `MINIDUMP_SYSTEM_INFO.processor_architecture` for this build.
pub(crate) fn processor_architecture() -> u16 {
    #[cfg(target_arch = "x86_64")]
    let a = md::ProcessorArchitecture::PROCESSOR_ARCHITECTURE_AMD64;
    #[cfg(target_arch = "aarch64")]
    let a = md::ProcessorArchitecture::PROCESSOR_ARCHITECTURE_ARM64;
    a as u16
}
