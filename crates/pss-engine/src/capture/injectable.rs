//! Whether a stopped thread may take an injected syscall, and at which instruction: not
//! in seccomp strict mode (only four syscalls allowed: an injected one kills the process),
//! not with syscall user dispatch on (it would raise SIGSYS); a seccomp filter is
//! suspended for the injection (`PTRACE_O_SUSPEND_SECCOMP`).

use pss_sys::mem::ProcMem;
use pss_sys::procfs;
use pss_trace::arch;
use pss_trace::inject;
use pss_trace::ptrace::{self, Tid};

/// The ptrace option an injection into a thread under a seccomp filter needs.
pub(super) fn seccomp_option(seccomp: bool) -> u32 {
    if seccomp {
        ptrace::OPT_SUSPEND_SECCOMP
    } else {
        0
    }
}

/// What makes a stopped thread usable for an injected syscall.
#[derive(Debug, Clone, Copy)]
pub(super) struct Usable {
    /// Its own syscall instruction, or none (then the vDSO's).
    pub site: Option<u64>,
    /// It has a seccomp filter (suspended for the injection).
    pub seccomp: bool,
    /// It runs with a user shadow stack (x86 CET), whose signal return the clone's
    /// trampoline cannot satisfy.
    pub shadow_stack: bool,
}

/// Whether a stopped thread can take an injected syscall, and the instruction to run it at.
pub(super) enum Candidate {
    /// It can.
    Usable(Usable),
    /// Syscall user dispatch is on: an injected syscall would raise SIGSYS.
    Dispatching,
    /// Seccomp strict mode: only `read`, `write`, `exit` and `sigreturn` are allowed, and
    /// an injected `clone` would kill the process.
    Strict,
    /// Gone.
    Unusable,
}

pub(super) fn candidate(pid: i32, tid: Tid, mem: &ProcMem) -> Candidate {
    let Ok(regs) = arch::get_raw(tid) else {
        return Candidate::Unusable;
    };
    let status = match procfs::status_at(&format!("/proc/{pid}/task/{tid}/status")) {
        Some(s) if s.seccomp == 1 => return Candidate::Strict,
        Some(s) => s,
        None => return Candidate::Unusable,
    };
    if ptrace::syscall_user_dispatch_on(tid) {
        return Candidate::Dispatching;
    }
    Candidate::Usable(Usable {
        site: inject::find_site(mem, &regs, None),
        seccomp: status.seccomp == 2,
        shadow_stack: status.shadow_stack,
    })
}
