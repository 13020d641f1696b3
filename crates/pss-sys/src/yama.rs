//! Yama's `ptrace_scope`: who may trace the calling process.
//!
//! Under scope 1 a process may only be traced by its ancestors, or by the process it names
//! with `PR_SET_PTRACER`. The engine is no ancestor of its caller, so a capture of the
//! calling process names the engine for its duration.

/// Whether Yama's `ptrace_scope` is 1 (only ancestors and named tracers).
pub fn restricted() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").is_ok_and(|s| s.trim() == "1")
}

/// Names `tracer` as the process allowed to trace us (`PR_SET_PTRACER`); whether it did.
pub fn allow(tracer: i32) -> bool {
    // SAFETY: a plain prctl on our own process.
    unsafe { libc::prctl(libc::PR_SET_PTRACER, tracer as libc::c_ulong, 0, 0, 0) == 0 }
}

/// Undoes [`allow`].
pub fn disallow() {
    // SAFETY: a plain prctl on our own process.
    unsafe { libc::prctl(libc::PR_SET_PTRACER, 0 as libc::c_ulong, 0, 0, 0) };
}
