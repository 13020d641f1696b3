//! The Linux layer: procfs, ptrace, registers, clocks, pidfds. The only place `unsafe` lives.

pub mod arch;
pub mod cgroup;
pub mod clock;
pub mod elf;
pub mod helper;
pub mod inject;
pub mod mem;
pub mod memfd;
pub mod pidfd;
pub mod procfs;
pub mod ptrace;
pub mod reaper;
pub mod sched;
pub mod tracer;
