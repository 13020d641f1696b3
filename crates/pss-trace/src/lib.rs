//! The Linux layer only pss's engine uses: ptrace and waiting ([`ptrace`]), the tracer
//! threads ([`tracer`]), syscalls injected into a stopped thread ([`inject`], with the
//! [`gadgets`] that make them self-restoring and the thread's [`own_stack`] they may write
//! on), per-architecture registers and the clone's trampoline ([`arch`]), the state
//! directory ([`statedir`]: lock and ledger), cgroups, scheduling, the tests' failpoints.
//! Thin safe wrappers; the caller's library never links this crate.

#![warn(missing_docs)]

pub mod arch;
pub mod cgroup;
pub mod engine_signals;
pub mod failpoint;
pub mod gadgets;
pub mod inject;
pub mod own_stack;
pub mod ptrace;
pub mod sched;
pub mod statedir;
pub mod tracer;
