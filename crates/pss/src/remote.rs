//! File descriptors moved into and out of another process: what carries a snapshot across
//! processes (the C ABI's `PssDuplicateSnapshot` into a pidfd and remote `PssFreeSnapshot`).
//!
//! Putting an fd into a process and closing one there run a syscall inside it: one thread is
//! stopped for a fraction of a millisecond (the others keep running), and its registers,
//! signal mask and interrupted syscall are restored. The caller needs the rights to trace the
//! process, as for a capture.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::capture::one_thread::with_one_thread;
use crate::error::{Error, Result};
use crate::linux::pidfd;
use crate::linux::tracer::{self, Role};

/// How long the process's chosen thread may take to stop.
const STOP_DEADLINE: Duration = Duration::from_secs(2);
/// How long an injected `openat`/`close` may take.
const SYSCALL_DEADLINE: Duration = Duration::from_secs(2);

/// The pid behind `target`, refusing the calling process (which cannot inject into itself:
/// use `dup`/`close` there).
fn other_process(target: BorrowedFd<'_>) -> Result<i32> {
    let pid = pidfd::pid_of(target)?;
    if pid == std::process::id() as i32 {
        return Err(Error::InvalidParameter(format!(
            "process {pid} is the calling process; use its own fds"
        )));
    }
    Ok(pid)
}

/// Installs a new fd in the process behind the pidfd `target`, open on the same file as our
/// `fd` (read-only, close-on-exec), and returns its number there.
///
/// The process opens `/proc/<our pid>/fd/<fd>` itself, through an injected `openat` whose path
/// is written below its stack's red zone. This needs the process to see our pid in its
/// `/proc` (the same pid namespace), and no ptrace right of it over us: unlike an injected
/// `pidfd_getfd`, Yama's `ptrace_scope` 1 does not refuse it (`docs/format.md` §6).
pub fn install_fd(target: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> Result<i32> {
    let pid = other_process(target)?;
    if !same_pid_namespace(pid) {
        return Err(Error::NotSupported {
            what: format!("installing an fd in process {pid}, which is in another pid namespace"),
        });
    }
    let path = format!("/proc/{}/fd/{}\0", std::process::id(), fd.as_raw_fd());
    let n = tracer::run_on(Role::Capture, move || {
        with_one_thread(pid, STOP_DEADLINE, |inj, stopped| {
            let addr = (stopped.scratch_top - path.len() as u64) & !15;
            let mut saved = vec![0u8; path.len()];
            let had = stopped.mem.read_exact(addr, &mut saved);
            stopped.mem.write_exact(addr, path.as_bytes())?;
            let flags = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
            let out = inj.syscall(
                libc::SYS_openat as u64,
                [libc::AT_FDCWD as u64, addr, flags, 0, 0, 0],
                Instant::now() + SYSCALL_DEADLINE,
            );
            if had {
                stopped.mem.write_exact(addr, &saved)?;
            }
            out.map(|o| o.ret)
        })
    })??;
    if n < 0 {
        return Err(Error::Io {
            pid,
            path: format!(
                "/proc/{}/fd/{} (opened inside it)",
                std::process::id(),
                fd.as_raw_fd()
            )
            .into(),
            source: std::io::Error::from_raw_os_error(-n as i32),
        });
    }
    Ok(n as i32)
}

/// Closes fd `fd` in the process behind the pidfd `target` (an injected `close`).
pub fn close_fd(target: BorrowedFd<'_>, fd: i32) -> Result<()> {
    let pid = other_process(target)?;
    let ret = tracer::run_on(Role::Capture, move || {
        with_one_thread(pid, STOP_DEADLINE, |inj, _| {
            inj.syscall(
                libc::SYS_close as u64,
                [fd as u64, 0, 0, 0, 0, 0],
                Instant::now() + SYSCALL_DEADLINE,
            )
            .map(|o| o.ret)
        })
    })??;
    succeeded(pid, ret, || format!("close({fd})")).map(drop)
}

/// The return value of a syscall injected into `pid`, or its errno as [`Error::Remote`].
fn succeeded(pid: i32, ret: i64, action: impl FnOnce() -> String) -> Result<i64> {
    if ret < 0 {
        return Err(Error::Remote {
            pid,
            action: action(),
            source: std::io::Error::from_raw_os_error(-ret as i32),
        });
    }
    Ok(ret)
}

/// A duplicate, in the calling process, of fd `fd` of the process behind the pidfd `target`
/// (`pidfd_getfd`; nothing runs in that process).
pub fn get_fd(target: BorrowedFd<'_>, fd: i32) -> Result<OwnedFd> {
    let pid = pidfd::pid_of(target)?;
    pidfd::get_fd(target, fd).map_err(|e| match e.raw_os_error() {
        Some(libc::EBADF) => Error::InvalidParameter(format!("process {pid} has no fd {fd}")),
        Some(libc::EPERM) => Error::PermissionDenied {
            pid,
            action: format!("take a copy of fd {fd} of"),
            source: e,
        },
        Some(libc::ESRCH) => Error::ProcessExited { pid },
        _ => Error::Io {
            pid,
            path: format!("/proc/{pid}/fd/{fd} (pidfd_getfd)").into(),
            source: e,
        },
    })
}

/// Whether `pid` is in the calling process's pid namespace.
fn same_pid_namespace(pid: i32) -> bool {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    match (ns("self"), ns(&pid.to_string())) {
        (Some(a), Some(b)) => a == b,
        // Without the links (no namespaces compiled in), there is only one.
        _ => true,
    }
}
