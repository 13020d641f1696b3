//! Process handles as Windows code gets them: `PssLinuxOpenProcess`, `PssLinuxCloseHandle`
//! and `PssLinuxGetLastError`, which the header's inline `OpenProcess`, `CloseHandle` and
//! `GetLastError` call (its `GetCurrentProcess` is `(HANDLE)-1` and needs no library).
//! They are exported under libpss's own names so that no `OpenProcess` symbol of ours
//! meets another library's (a Windows compatibility layer's) in a program.
//!
//! A handle is a pidfd. `CloseHandle` closes only handles `OpenProcess` returned and that
//! still are pidfds of the same process: never a descriptor of the library's own (the
//! engine's socket, a clone's pidfd), whatever number a caller passes.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::os::fd::{AsFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::Mutex;

use rustix::io::{Errno, FdFlags};
use rustix::process::{Pid, PidfdFlags};

use crate::api::{entry, fail, Failure, ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER};
use crate::shared;

const ERROR_TOO_MANY_OPEN_FILES: u32 = 4;
const ERROR_ACCESS_DENIED: u32 = 5;
const ERROR_NOT_ENOUGH_MEMORY: u32 = 8;
const ERROR_NOT_SUPPORTED: u32 = 50;
const ERROR_INTERNAL_ERROR: u32 = 1359;

/// The handles `OpenProcess` returned and `CloseHandle` has not closed: fd → pid.
static OPENED: Mutex<BTreeMap<i32, i32>> = Mutex::new(BTreeMap::new());

fn opened() -> std::sync::MutexGuard<'static, BTreeMap<i32, i32>> {
    OPENED.lock().unwrap_or_else(|p| p.into_inner())
}

/// `OpenProcess`: a pidfd of process `pid`, close-on-exec unless `inherit`; NULL on
/// failure, with the code for `GetLastError`. The access rights are not checked here (a
/// pidfd carries none): whether we may trace the process is decided at capture.
#[no_mangle]
pub extern "C" fn PssLinuxOpenProcess(_access: u32, inherit: i32, pid: u32) -> *mut c_void {
    let mut handle = std::ptr::null_mut();
    entry("OpenProcess", || {
        handle = open(pid, inherit != 0)? as isize as *mut c_void;
        Ok(())
    });
    handle
}

fn open(pid: u32, inherit: bool) -> Result<i32, Failure> {
    let no_such = || fail(ERROR_INVALID_PARAMETER, format!("no process has id {pid}"));
    let raw = i32::try_from(pid).map_err(|_| no_such())?;
    let id = Pid::from_raw(raw).ok_or_else(no_such)?;
    let fd = rustix::process::pidfd_open(id, PidfdFlags::empty()).map_err(|e| match e {
        Errno::SRCH => no_such(),
        Errno::INVAL | Errno::NOENT => fail(
            ERROR_INVALID_PARAMETER,
            format!("{pid} is a thread's id, not a process's"),
        ),
        _ => errno_failure(e, &format!("pidfd_open({pid})")),
    })?;
    let fd = not_null(fd).map_err(|e| errno_failure(e, "fcntl(F_DUPFD_CLOEXEC)"))?;
    if inherit {
        rustix::io::fcntl_setfd(&fd, FdFlags::empty())
            .map_err(|e| errno_failure(e, "fcntl(F_SETFD)"))?;
    }
    let fd = fd.into_raw_fd();
    opened().insert(fd, raw);
    Ok(fd)
}

/// `fd`, moved above 0 if it is 0: a HANDLE of 0 would read as NULL, "failed".
fn not_null(fd: OwnedFd) -> rustix::io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    if fd.as_raw_fd() != 0 {
        return Ok(fd);
    }
    rustix::io::fcntl_dupfd_cloexec(&fd, 1)
}

/// The Win32 code of a failed call's errno.
fn errno_failure(e: Errno, call: &str) -> Failure {
    let code = match e {
        Errno::PERM | Errno::ACCESS => ERROR_ACCESS_DENIED,
        Errno::MFILE | Errno::NFILE => ERROR_TOO_MANY_OPEN_FILES,
        Errno::NOMEM => ERROR_NOT_ENOUGH_MEMORY,
        Errno::NOSYS => ERROR_NOT_SUPPORTED,
        _ => ERROR_INTERNAL_ERROR,
    };
    fail(code, format!("{call}: {e}"))
}

/// `CloseHandle`: closes a handle `OpenProcess` returned; TRUE. `(HANDLE)-1` is left alone
/// (TRUE, as on Windows). Any other value is FALSE with `ERROR_INVALID_HANDLE`, and nothing
/// is closed.
#[no_mangle]
pub extern "C" fn PssLinuxCloseHandle(h: *mut c_void) -> i32 {
    let code = entry("CloseHandle", || close(h as isize));
    i32::from(code == crate::api::ERROR_SUCCESS)
}

fn close(v: isize) -> Result<(), Failure> {
    if v == -1 {
        return Ok(());
    }
    let bad = |why: &str| fail(ERROR_INVALID_HANDLE, format!("{v} {why}"));
    let fd = i32::try_from(v).map_err(|_| bad("is not a handle OpenProcess returned"))?;
    let mut open = opened();
    let pid = open
        .remove(&fd)
        .ok_or_else(|| bad("is not a handle OpenProcess returned (or it was closed)"))?;
    // Closed behind our back (close(2)) and the number reused: not ours to close any more.
    let same = shared::borrow(fd).is_some_and(|b| match pss_core::pidfd_pid(b.as_fd()) {
        Ok(p) => p == pid,
        Err(e) => e.kind() == pss_core::ErrorKind::ProcessExited,
    });
    if !same {
        return Err(bad("no longer is the pidfd OpenProcess returned"));
    }
    // SAFETY: OpenProcess made this fd and gave it to the caller to close through here; it
    // is still that pidfd (checked above, under the lock that keeps a second CloseHandle
    // out), so owning and closing it closes nothing else.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(())
}

/// `GetLastError`: the code of this thread's last failed libpss call.
#[no_mangle]
pub extern "C" fn PssLinuxGetLastError() -> u32 {
    crate::api::last_code()
}
