//! pidfds: identity of the target across the capture.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::process::{pidfd_open, Pid, PidfdFlags};

use pss_types::error::{Error, Result};

/// Opens a pidfd for `pid`.
pub fn open(pid: i32) -> Result<OwnedFd> {
    let p = Pid::from_raw(pid).ok_or(Error::NoSuchProcess { pid })?;
    pidfd_open(p, PidfdFlags::empty()).map_err(|e| match e {
        rustix::io::Errno::SRCH => Error::NoSuchProcess { pid },
        // The kernel's answer for a thread that is not a thread-group leader: ENOENT since
        // Linux 6.9 (which opens thread pidfds with PIDFD_THREAD), EINVAL before.
        rustix::io::Errno::NOENT | rustix::io::Errno::INVAL => {
            match super::procfs::status_at(&format!("/proc/{pid}/status")) {
                Some(st) if st.tgid != pid => Error::NotAProcess {
                    tid: pid,
                    tgid: st.tgid,
                },
                _ => Error::NoSuchProcess { pid },
            }
        }
        e => Error::Io {
            pid,
            path: "pidfd_open".into(),
            source: e.into(),
        },
    })
}

/// Whether the process behind `fd` has exited (its pidfd is readable).
pub fn has_exited(fd: BorrowedFd<'_>) -> bool {
    exits_within(fd, std::time::Duration::ZERO)
}

/// Whether the process behind `fd` has exited, or does within `timeout`.
pub fn exits_within(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    loop {
        match poll(&mut fds, Some(&ts)) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return matches!(r, Ok(n) if n > 0),
        }
    }
}

/// The pid a pidfd of ours refers to, from `/proc/self/fdinfo`.
pub fn pid_of(fd: impl AsFd) -> Result<i32> {
    use std::os::fd::AsRawFd;
    let raw = fd.as_fd().as_raw_fd();
    let self_pid = std::process::id() as i32;
    let path = format!("/proc/self/fdinfo/{raw}");
    let text = std::fs::read(&path).map_err(|e| Error::Io {
        pid: self_pid,
        path: path.clone().into(),
        source: e,
    })?;
    let info = super::procfs::fdinfo::parse(&text);
    match info.pidfd_pid {
        Some(p) if p > 0 => Ok(p as i32),
        Some(_) => Err(Error::ProcessExited { pid: -1 }),
        None => Err(Error::InvalidParameter(format!("fd {raw} is not a pidfd"))),
    }
}

/// Sends SIGKILL to the process behind `fd` (never to a reused pid).
pub fn kill(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL).map_err(Into::into)
}

/// A duplicate of fd `fd` of the process behind `pidfd` (`pidfd_getfd`, close-on-exec).
pub fn get_fd(pidfd: BorrowedFd<'_>, fd: i32) -> std::io::Result<OwnedFd> {
    use rustix::process::{pidfd_getfd, PidfdGetfdFlags};
    pidfd_getfd(pidfd, fd, PidfdGetfdFlags::empty()).map_err(Into::into)
}

/// A number naming process `pid` on this host for the lifetime of the boot: the inode of a
/// pidfd of it on kernels with pidfs (6.9 and later), otherwise a hash of the pid and its
/// start time. Keys the cross-engine target lock.
pub fn identity(pid: i32) -> u64 {
    const PIDFS_MAGIC: u64 = 0x5049_4446;
    if let Ok(fd) = open(pid) {
        let pidfs = rustix::fs::fstatfs(&fd).is_ok_and(|s| s.f_type as u64 == PIDFS_MAGIC);
        if let (true, Ok(st)) = (pidfs, rustix::fs::fstat(&fd)) {
            return st.st_ino;
        }
    }
    let start = super::procfs::stat_at(&format!("/proc/{pid}/stat")).map_or(0, |s| s.starttime);
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in (pid as u64)
        .to_le_bytes()
        .into_iter()
        .chain(start.to_le_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// The identity of an fd: the device and inode it refers to.
pub fn fd_identity(fd: BorrowedFd<'_>) -> Option<(u64, u64)> {
    rustix::fs::fstat(fd).ok().map(|st| (st.st_dev, st.st_ino))
}

/// Whether fd number `raw` of this process still is the pidfd of process `pid` with
/// identity `id` ([`fd_identity`]): a C caller may have closed a handle it was lent, and
/// the number been reused since.
pub fn still_is(raw: std::os::fd::RawFd, id: (u64, u64), pid: i32) -> bool {
    // SAFETY: fstat on a number only reads; if it is not open it fails with EBADF.
    let same_file = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(raw, &mut st) == 0 && (st.st_dev, st.st_ino) == id
    };
    let text = std::fs::read(format!("/proc/self/fdinfo/{raw}")).unwrap_or_default();
    same_file && super::procfs::fdinfo::parse(&text).pidfd_pid == Some(i64::from(pid))
}
