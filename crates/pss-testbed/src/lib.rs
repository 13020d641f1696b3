//! The test bed: a harness to spawn `pss-testbed` targets and check that a capture left
//! them unharmed, and the facts the targets and the tests agree on.
//!
//! The targets themselves are the `pss-testbed` binary (`src/main.rs`).

pub mod bench;
pub mod corefile;
pub mod harness;
pub mod tools;

/// The value parked thread `i` keeps in register number `reg` (r8…r15 on x86_64,
/// x20…x26 on aarch64).
pub fn reg_value(i: usize, reg: u64) -> u64 {
    0x5053_5300_0000_0000 | ((i as u64) << 16) | reg
}
