//! The engine's side of `pss::remote`: putting an fd into another process and closing
//! one there, each by one syscall injected into one of its threads (the others keep
//! running; the thread's registers, signal mask and interrupted syscall are restored).

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use crate::capture::one_thread::with_one_thread;
use pss_sys::pidfd;
use pss_trace::inject::Injection;
use pss_trace::tracer::{self, Role};
use pss_types::error::{Error, Result};

/// How long the process's chosen thread may take to stop.
const STOP_DEADLINE: Duration = Duration::from_secs(2);
/// How long an injected `openat`/`close` may take.
const SYSCALL_DEADLINE: Duration = Duration::from_secs(2);

/// Installs, in the process behind `target`, a new fd open on the same file as our `fd`
/// (read-only, close-on-exec): the process opens `/proc/<engine>/fd/<fd>` itself, through
/// an injected `openat` whose path is written into a page of ours mapped for it and
/// unmapped right after (`docs/format.md` §6; never on a stack: `docs/engine.md`). Returns
/// the fd's number there.
pub(super) fn install_fd(target: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> Result<i32> {
    let pid = pidfd::pid_of(target)?;
    let path = format!("/proc/{}/fd/{}\0", std::process::id(), fd.as_raw_fd());
    let shown = path.trim_end_matches('\0').to_string();
    let n = tracer::run_on(Role::Capture, move || {
        with_one_thread(pid, STOP_DEADLINE, |inj, stopped| {
            let deadline = Instant::now() + SYSCALL_DEADLINE;
            let page = map_page(inj, deadline)?;
            let opened = stopped
                .mem
                .write_exact(page, path.as_bytes())
                .and_then(|()| {
                    let flags = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
                    inj.failpoints("install");
                    let args = [libc::AT_FDCWD as u64, page, flags, 0, 0, 0];
                    inj.syscall(libc::SYS_openat as u64, args, deadline)
                });
            let unmapped = inj.syscall(libc::SYS_munmap as u64, [page, PAGE, 0, 0, 0, 0], deadline);
            let n = opened?.ret;
            unmapped?;
            Ok(n)
        })
    })??;
    succeeded(pid, n, || format!("openat(\"{shown}\")")).map(|n| n as i32)
}

/// The scratch page's length.
const PAGE: u64 = 4096;

/// Maps a private read-write page in the process `inj` injects into (an injected `mmap`).
fn map_page(inj: &mut Injection, deadline: Instant) -> std::io::Result<u64> {
    let prot = (libc::PROT_READ | libc::PROT_WRITE) as u64;
    let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
    let ret = inj
        .syscall(
            libc::SYS_mmap as u64,
            [0, PAGE, prot, flags, u64::MAX, 0],
            deadline,
        )?
        .ret;
    if (-4095..0).contains(&ret) {
        return Err(std::io::Error::from_raw_os_error(-ret as i32));
    }
    Ok(ret as u64)
}

/// Closes fd `fd` in the process behind `target` (an injected `close`).
pub(super) fn close_fd(target: BorrowedFd<'_>, fd: i32) -> Result<()> {
    let pid = pidfd::pid_of(target)?;
    let ret = tracer::run_on(Role::Capture, move || {
        with_one_thread(pid, STOP_DEADLINE, |inj, _| {
            inj.failpoints("close");
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
