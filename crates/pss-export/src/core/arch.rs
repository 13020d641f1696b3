//! What a core holds that differs per architecture: the machine, the `pr_reg` layout of
//! `NT_PRSTATUS`, and the register-set notes that follow it.

use object::elf;

use pss_types::records::{GeneralRegisters, ThreadContext};

/// `e_machine`.
#[cfg(target_arch = "x86_64")]
pub const MACHINE: u16 = elf::EM_X86_64;
/// `e_machine`.
#[cfg(target_arch = "aarch64")]
pub const MACHINE: u16 = elf::EM_AARCH64;

/// Words of `elf_gregset_t`: `struct user_regs_struct`.
#[cfg(target_arch = "x86_64")]
pub const PR_REG_WORDS: usize = 27;
/// Words of `elf_gregset_t`: `x0`–`x30`, `sp`, `pc`, `pstate`.
#[cfg(target_arch = "aarch64")]
pub const PR_REG_WORDS: usize = 34;

/// `sizeof(struct elf_prstatus)`: 112 bytes before `pr_reg`, then `pr_fpvalid`, padded to 8.
pub const PRSTATUS_SIZE: usize = (112 + PR_REG_WORDS * 8 + 4).next_multiple_of(8);

/// `pr_reg`: the general registers in `elf_gregset_t` order.
#[cfg(target_arch = "x86_64")]
pub fn pr_reg(g: &GeneralRegisters) -> Vec<u64> {
    g.to_words()
}

/// `pr_reg`: the general registers in `elf_gregset_t` order.
#[cfg(target_arch = "aarch64")]
pub fn pr_reg(g: &GeneralRegisters) -> Vec<u64> {
    let mut v = g.regs.to_vec();
    v.extend([g.sp, g.pc, g.pstate]);
    v
}

/// A note: its owner's name, its type, its bytes.
pub type Note<'a> = (&'static [u8], u32, std::borrow::Cow<'a, [u8]>);

/// The register sets after `NT_PRSTATUS`: `NT_PRFPREG` (the FXSAVE area) and
/// `NT_X86_XSTATE` (the XSAVE area, as `PTRACE_GETREGSET` gave it), where captured.
#[cfg(target_arch = "x86_64")]
pub fn register_notes(ctx: &ThreadContext) -> Vec<Note<'_>> {
    let mut v = Vec::new();
    if let Some(fp) = &ctx.fp {
        v.push((&b"CORE"[..], elf::NT_PRFPREG, fp.as_slice().into()));
    }
    if let Some(xs) = &ctx.xstate {
        v.push((&b"LINUX"[..], elf::NT_X86_XSTATE, xs.as_slice().into()));
    }
    v
}

/// The register sets after `NT_PRSTATUS`: `NT_PRFPREG` (FP/SIMD) and `NT_ARM_TLS`.
#[cfg(target_arch = "aarch64")]
pub fn register_notes(ctx: &ThreadContext) -> Vec<Note<'_>> {
    let mut v = Vec::new();
    if let Some(fp) = &ctx.fp {
        v.push((&b"CORE"[..], elf::NT_PRFPREG, fp.as_slice().into()));
    }
    let tls = ctx.general.tls.to_le_bytes().to_vec();
    v.push((&b"LINUX"[..], elf::NT_ARM_TLS, tls.into()));
    v
}
