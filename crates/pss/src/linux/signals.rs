//! The engine process's signals: the terminal ones arrive on a `signalfd` (so the engine
//! ends a request cleanly instead of dying in it), `SIGPIPE` is ignored, and everything else
//! has its default action and is unblocked (the spawner blocked every signal).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// The signals that ask the engine to finish: `SIGINT`, `SIGTERM`, `SIGHUP`.
const TERMINAL: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Sets the calling (main, first) thread's signals up as described above; threads started
/// afterwards inherit the mask. Returns a `signalfd` that becomes readable when a terminal
/// signal arrives.
pub fn setup_engine() -> io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain data; the calls change this process's dispositions and this
    // thread's mask, before any other thread exists.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in TERMINAL {
            libc::sigaddset(&mut set, sig);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        if libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}
