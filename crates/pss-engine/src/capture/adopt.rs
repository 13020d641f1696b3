//! A clone's adoption after the pause: its first stop collected and `PTRACE_O_EXITKILL` set
//! (it dies with the engine), then its fds closed and the trampoline unmapped in it by
//! injected syscalls.

use std::time::{Duration, Instant};

use pss_trace::inject::Injection;
use pss_trace::ptrace::{self, WaitStatus};
use pss_types::error::{Error, Result};

use super::injectable::seccomp_option;
use super::trampoline::Trampoline;

/// Waits for the first stop of the freshly made clone `clone`, then puts `EXITKILL` on it.
/// After the pause. On error the caller frees the clone as usual (kill, [`free`]).
pub fn adopt(clone: i32) -> Result<()> {
    let fail = |reason: String| Error::CloneFailed {
        pid: clone,
        reason: format!("{reason}; the target had been released"),
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    match ptrace::wait_report(clone, false, deadline) {
        Ok(WaitStatus::Stopped { .. }) => {}
        Ok(other) => {
            return Err(fail(format!(
                "the clone ended before its first stop: {other:?}"
            )))
        }
        Err(e) => return Err(fail(format!("waiting for the clone's first stop: {e}"))),
    }
    ptrace::set_options(clone, ptrace::OPT_EXITKILL)
        .map_err(|e| fail(format!("PTRACE_O_EXITKILL could not be set: {e}")))
}

/// Closes every fd of the clone by injecting `close_range(0, ~0, 0)` into it, then unmaps
/// the trampoline it was made from (the last injection: the clone's instruction pointer is
/// in that page, and it never runs again).
pub fn close_fds(
    clone: i32,
    site: u64,
    seccomp: bool,
    trampoline: Option<Trampoline>,
) -> Result<()> {
    let fail = |what: String| Error::CloneFailed {
        pid: clone,
        reason: format!("closing the clone's fds: {what}; the target had been released"),
    };
    // The clone dies with the engine (EXITKILL): nothing to restore for.
    let mut inj = Injection::begin(
        clone,
        site,
        seccomp_option(seccomp),
        ptrace::OPT_EXITKILL,
        None,
    )
    .map_err(|e| fail(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let out = inj
        .syscall(
            libc::SYS_close_range as u64,
            [0, u64::from(u32::MAX), 0, 0, 0, 0],
            deadline,
        )
        .map_err(|e| fail(e.to_string()))?;
    if out.ret < 0 {
        return Err(fail(format!(
            "close_range returned {}",
            std::io::Error::from_raw_os_error((-out.ret) as i32)
        )));
    }
    if let Some(t) = trampoline {
        t.unmap_with(&mut inj, deadline).map_err(fail)?;
    }
    inj.restore().map_err(|e| fail(e.to_string()))
}
