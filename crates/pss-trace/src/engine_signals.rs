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
/// ([`crate::ptrace::announce_stops_on`]). Returns a `signalfd` that becomes readable when
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
            crate::ptrace::announce_stops_on(OwnedFd::from_raw_fd(stops));
        }
        let fd = libc::signalfd(-1, &terminal, flags);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}
