//! The engine process's signals: the terminal ones arrive on a `signalfd` (so the engine
//! ends a request cleanly instead of dying in it), `SIGCHLD` on another (it announces
//! tracee stops), `SIGPIPE` is ignored, and everything else has its default action and is
//! unblocked (the spawner blocked every signal).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// The signals that ask the engine to finish: `SIGINT`, `SIGTERM`, `SIGHUP`.
const TERMINAL: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Sets the calling (main, first) thread's signals up as described above; threads started
/// afterwards inherit the mask. `SIGCHLD` is blocked too and announced on a second
/// `signalfd` that the tracer threads sleep on while a tracee is busy
/// ([`super::ptrace::announce_stops_on`]). Returns a `signalfd` that becomes readable when
/// a terminal signal arrives.
pub fn setup_engine() -> io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain data; the calls change this process's dispositions and this
    // thread's mask, before any other thread exists.
    unsafe {
        let mut terminal: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut terminal);
        for sig in TERMINAL {
            libc::sigaddset(&mut terminal, sig);
        }
        let mut child: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut child);
        libc::sigaddset(&mut child, libc::SIGCHLD);
        let mut blocked = terminal;
        libc::sigaddset(&mut blocked, libc::SIGCHLD);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        if libc::pthread_sigmask(libc::SIG_SETMASK, &blocked, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let flags = libc::SFD_CLOEXEC | libc::SFD_NONBLOCK;
        let stops = libc::signalfd(-1, &child, flags);
        if stops >= 0 {
            super::ptrace::announce_stops_on(OwnedFd::from_raw_fd(stops));
        }
        let fd = libc::signalfd(-1, &terminal, flags);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// The signals a write can raise at the writing thread: `SIGXFSZ` (past `RLIMIT_FSIZE`) and
/// `SIGPIPE` (a closed pipe), whose default actions end the process.
const WRITE_SIGNALS: [i32; 2] = [libc::SIGXFSZ, libc::SIGPIPE];

/// Blocks [`WRITE_SIGNALS`] in the calling thread while it lives, so that a failed write
/// returns `EFBIG` or `EPIPE` instead of ending the caller's process; on drop it takes off
/// the thread any of them raised meanwhile (and pending only because of the block) and
/// restores the mask.
pub struct WriteSignalsBlocked {
    old: libc::sigset_t,
    pending_before: libc::sigset_t,
}

impl WriteSignalsBlocked {
    /// Blocks them.
    pub fn new() -> WriteSignalsBlocked {
        // SAFETY: sigset_t is plain data; the calls only change this thread's mask and read
        // the pending set.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in WRITE_SIGNALS {
                libc::sigaddset(&mut set, sig);
            }
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            let mut pending_before: libc::sigset_t = std::mem::zeroed();
            libc::sigpending(&mut pending_before);
            WriteSignalsBlocked {
                old,
                pending_before,
            }
        }
    }
}

impl Default for WriteSignalsBlocked {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for WriteSignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: as in `new`; `sigtimedwait` with a zero timeout only dequeues a pending
        // signal of the one kind asked for, without waiting.
        unsafe {
            let mut pending: libc::sigset_t = std::mem::zeroed();
            libc::sigpending(&mut pending);
            for sig in WRITE_SIGNALS {
                let ours = libc::sigismember(&pending, sig) == 1
                    && libc::sigismember(&self.pending_before, sig) == 0
                    && libc::sigismember(&self.old, sig) == 0;
                if ours {
                    let mut one: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut one);
                    libc::sigaddset(&mut one, sig);
                    let now = libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    };
                    libc::sigtimedwait(&one, std::ptr::null_mut(), &now);
                }
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}
