//! File descriptors moved into and out of another process: what carries a snapshot across
//! processes (the C ABI's `PssDuplicateSnapshot` into a pidfd and remote `PssFreeSnapshot`).
//!
//! Putting an fd into a process and closing one there run a syscall inside it, done by the
//! engine process (`docs/engine.md`): one thread is stopped for a fraction of a millisecond
//! (the others keep running), and its registers, signal mask and interrupted syscall are
//! restored. The caller needs the rights to trace the process, as for a capture.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::client::{self, Request};
use pss_sys::pidfd;
use pss_types::error::{Error, Result};
use pss_wire::proto::kind;

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
/// The process opens the engine's copy of `fd` through `/proc/ENGINE/fd/N` itself, by an
/// injected `openat` whose path is written below its stack's red zone. This needs the
/// process to see the engine's pid in its `/proc` (the same pid namespace), and no ptrace
/// right of it over the engine: unlike an injected `pidfd_getfd`, Yama's `ptrace_scope` 1
/// does not refuse it (`docs/format.md` §6).
pub fn install_fd(target: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> Result<i32> {
    let pid = other_process(target)?;
    if !same_pid_namespace(pid) {
        return Err(Error::NotSupported {
            what: format!("installing an fd in process {pid}, which is in another pid namespace"),
        });
    }
    let reply = client::call(&Request {
        kind: kind::INSTALL_FD,
        payload: &[],
        fds: &[target, fd],
        timeout: client::SHORT_REQUEST,
        traces_caller: false,
        only: None,
    })?
    .expect("sent to the current engine");
    client::reply_i32(&reply)
}

/// Closes fd `fd` in the process behind the pidfd `target` (an injected `close`).
pub fn close_fd(target: BorrowedFd<'_>, fd: i32) -> Result<()> {
    other_process(target)?;
    client::call(&Request {
        kind: kind::CLOSE_FD,
        payload: &fd.to_le_bytes(),
        fds: &[target],
        timeout: client::SHORT_REQUEST,
        traces_caller: false,
        only: None,
    })?;
    Ok(())
}

/// A duplicate, in the calling process, of fd `fd` of the process behind the pidfd `target`
/// (`pidfd_getfd`; nothing runs in that process).
pub fn get_fd(target: BorrowedFd<'_>, fd: i32) -> Result<OwnedFd> {
    let pid = pidfd::pid_of(target)?;
    pidfd::get_fd(target.as_fd(), fd).map_err(|e| match e.raw_os_error() {
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
