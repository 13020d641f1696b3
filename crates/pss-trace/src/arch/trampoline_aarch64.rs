//! The clone trampoline for aarch64 (as `trampoline_x86_64.rs` for x86_64): a few
//! instructions and a signal frame in a private page of the target for the length of the
//! injected `clone`, so that neither the clone nor the injected thread can ever run the
//! target's code with injected state — even if the engine dies while the kernel copies the
//! page tables (`docs/engine.md`, "No window").
//!
//! The engine runs `clone` at [`ENTRY`] through its usual syscall stops and, alive,
//! restores the thread itself: nothing after the `svc` ever runs. Only if the engine dies
//! does the code after it run:
//!
//! ```text
//! 0x00: svc #0             ; clone(0, 0, 0, 0, 0)
//! 0x04: cbnz x0, parent    ; the thread (or a failed clone) → its own state back
//! 0x08: mov x8, #94        ; the clone: exit_group(0)
//! 0x0c: mov x0, #0
//! 0x10: svc #0
//! 0x14: parent: adr x16, frame
//! 0x18: mov sp, x16
//! 0x1c: mov x8, #139       ; rt_sigreturn: the thread's registers, signal mask and
//! 0x20: svc #0             ; FP/SIMD state, as the engine would have restored them
//! 0x24: brk #0
//! 0x40: frame              ; struct rt_sigframe (sigframe_aarch64.rs)
//! ```
//!
//! Nothing in it depends on where the page is (`adr` is relative), and the thread keeps its
//! own stack pointer until `rt_sigreturn`: a signal delivered meanwhile (none is: they are
//! blocked during injections) would find a writable stack.

use super::raw_aarch64::RawRegs;
use super::sigframe_aarch64::{frame, FRAME_SIZE};

/// Where the `svc` the clone runs at is, from the page's start.
pub const ENTRY: u64 = 0;
/// Where the code that gives the injected thread its own state back starts (`parent:`).
pub const RETURN: u64 = 0x14;
/// Where the signal frame starts (16-byte aligned, as `rt_sigreturn` requires).
const FRAME: usize = 0x40;

/// The code, one instruction a word.
const CODE: [u32; 10] = [
    0xd400_0001, // svc #0
    0xb500_0080, // cbnz x0, +0x10
    0xd280_0bc8, // mov x8, #94
    0xd280_0000, // mov x0, #0
    0xd400_0001, // svc #0
    0x1000_0170, // adr x16, +0x2c (the frame)
    0x9100_021f, // mov sp, x16
    0xd280_1168, // mov x8, #139
    0xd400_0001, // svc #0
    0xd420_0000, // brk #0
];

/// The page's contents: the code, and a signal frame that gives back `regs`, `mask` and
/// `fpsimd` (`NT_PRFPREG`); `None` if the FP/SIMD state is short.
pub fn image(regs: &RawRegs, mask: u64, fpsimd: &[u8]) -> Option<Vec<u8>> {
    let mut page = vec![0u8; FRAME + FRAME_SIZE];
    for (i, insn) in CODE.iter().enumerate() {
        page[4 * i..4 * i + 4].copy_from_slice(&insn.to_le_bytes());
    }
    page[FRAME..].copy_from_slice(&frame(regs, mask, fpsimd)?);
    Some(page)
}

/// Nothing to fix once the page's address is known: its code is position-independent.
pub fn place(_page: &mut [u8], _base: u64) {}

/// Nothing to point: the thread keeps its own stack pointer until `rt_sigreturn`.
pub fn stack_for(_regs: &mut RawRegs, _base: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_branches_land_where_the_layout_says() {
        // cbnz at 0x04 jumps to RETURN: imm19 × 4.
        assert_eq!(0x04 + ((CODE[1] >> 5) & 0x7ffff) as u64 * 4, RETURN);
        // adr at RETURN reaches the frame: immhi:immlo.
        let (immlo, immhi) = ((CODE[5] >> 29) & 3, (CODE[5] >> 5) & 0x7ffff);
        assert_eq!(RETURN + u64::from(immhi << 2 | immlo), FRAME as u64);
        assert_eq!(CODE[5] & 0x1f, 16, "x16");
        assert_eq!(FRAME % 16, 0);
        let page = image(&[0; 34], 0, &[0; 528]).unwrap();
        assert_eq!(page.len(), FRAME + FRAME_SIZE);
        assert!(page.len() <= 16 << 10, "fits the mapping");
    }
}
