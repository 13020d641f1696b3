//! What a capture of the calling process needs from the system: a helper process that can
//! trace us (a thread cannot ptrace its own process), a socket to talk to it, and a raw
//! `fork` for the clone that runs no `atfork` handler and leaves the child parked.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A forked helper process, our child, with a socket to it.
pub struct Helper {
    /// Its pid.
    pub pid: i32,
    /// Our end of the socket.
    pub sock: UnixStream,
    reaped: bool,
}

/// Forks a helper that runs `main` with its end of a socket and exits with its return
/// value. The helper closes every other fd first.
///
/// It runs after `fork()` in a copy of a possibly multi-threaded process: `main` may use
/// system calls and the allocator (glibc's `fork` leaves the allocator usable in the
/// child), never a lock another thread might have held.
pub fn fork_helper(main: impl FnOnce(UnixStream) -> i32) -> io::Result<Helper> {
    let (ours, theirs) = UnixStream::pair()?;
    // SAFETY: fork() in a possibly multi-threaded process; the child only runs `main` under
    // the constraints above, then `_exit`.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(ours);
            let keep = theirs.as_raw_fd() as u32;
            // SAFETY: closing every inherited fd but the socket, in our own (child) process.
            unsafe {
                if keep > 0 {
                    libc::syscall(libc::SYS_close_range, 0u32, keep - 1, 0u32);
                }
                libc::syscall(libc::SYS_close_range, keep + 1, u32::MAX, 0u32);
                libc::prctl(libc::PR_SET_NAME, c"pss-helper".as_ptr(), 0, 0, 0);
            }
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| main(theirs)))
                .unwrap_or(101);
            // SAFETY: leaving the child without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        pid => {
            drop(theirs);
            Ok(Helper {
                pid,
                sock: ours,
                reaped: false,
            })
        }
    }
}

impl Helper {
    /// Under Yama `ptrace_scope` 1 a process may only be traced by its ancestors, or by the
    /// process it names with `PR_SET_PTRACER`: name the helper. Returns whether it did
    /// (and [`Helper::disallow_tracing`] must undo it).
    pub fn allow_tracing(&self) -> bool {
        let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope");
        if scope.ok().as_deref().map(str::trim) != Some("1") {
            return false;
        }
        // SAFETY: a plain prctl on our own process.
        unsafe { libc::prctl(libc::PR_SET_PTRACER, self.pid as libc::c_ulong, 0, 0, 0) == 0 }
    }

    /// Undoes [`Helper::allow_tracing`].
    pub fn disallow_tracing(&self) {
        // SAFETY: a plain prctl on our own process.
        unsafe { libc::prctl(libc::PR_SET_PTRACER, 0 as libc::c_ulong, 0, 0, 0) };
    }

    /// Reads exactly `buf.len()` bytes, or fails at `deadline` or at end-of-file.
    pub fn read_exact(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
        let mut got = 0;
        while got < buf.len() {
            match self.read_some(&mut buf[got..], deadline)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => got += n,
            }
        }
        Ok(())
    }

    /// Reads until end-of-file, or fails at `deadline`.
    pub fn read_to_end(&mut self, deadline: Instant) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            match self.read_some(&mut chunk, deadline)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// One `read` once the socket is readable (0 at end-of-file); fails at `deadline`.
    fn read_some(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if !poll_readable(self.sock.as_fd(), left)? {
                return Err(io::ErrorKind::TimedOut.into());
            }
            match self.sock.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    /// Writes all of `buf` (a few bytes: never blocks long).
    pub fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.sock.write_all(buf)
    }

    /// Waits for the helper to exit (killing it at `deadline`) and reaps it; its exit code.
    pub fn finish(mut self, deadline: Instant) -> Option<i32> {
        self.reap(deadline)
    }

    fn reap(&mut self, deadline: Instant) -> Option<i32> {
        if self.reaped {
            return None;
        }
        self.reaped = true;
        let mut status = 0;
        loop {
            // SAFETY: waiting for our own unreaped child (its pid cannot have been reused);
            // `status` is a live int.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG | libc::__WALL) };
            if r == self.pid {
                return libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
            }
            if r < 0 {
                // ECHILD: a SIGCHLD handler of the application reaped it already.
                return None;
            }
            if Instant::now() >= deadline {
                // SAFETY: as above: the pid is our unreaped child.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // An early return: never leave the helper running (it may be tracing our threads;
        // its death releases them) nor a zombie.
        if !self.reaped {
            // SAFETY: the pid is our unreaped child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
        self.reap(Instant::now());
    }
}

/// Waits up to `timeout` for `fd` to be readable (or at end-of-file).
pub fn poll_readable(fd: impl AsFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    loop {
        // SAFETY: one live pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r >= 0 {
            return Ok(r > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Forks the calling thread into a parked copy of this process: a raw `clone` with exit
/// signal 0 (no `SIGCHLD`; no `atfork` handler runs), all signals blocked in the child,
/// which asks for SIGKILL should the calling thread die, then sleeps in `ppoll` until it
/// is traced and killed. Returns the child's pid. Neither side allocates or takes a lock.
pub fn fork_parked() -> io::Result<i32> {
    let parent = std::process::id() as libc::c_long;
    // SAFETY: sigset_t is plain data; the calls only touch this thread's mask. The raw
    // clone (flags 0: a fork with exit signal 0) returns 0 in a child that only makes raw
    // system calls and never returns from this function.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let r = libc::syscall(libc::SYS_clone, 0usize, 0usize, 0usize, 0usize, 0usize);
        if r == 0 {
            libc::syscall(libc::SYS_prctl, libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::syscall(libc::SYS_getppid) != parent {
                libc::syscall(libc::SYS_exit_group, 0);
            }
            loop {
                libc::syscall(libc::SYS_ppoll, 0usize, 0usize, 0usize, 0usize, 8usize);
            }
        }
        let err = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if r < 0 {
            Err(err)
        } else {
            Ok(r as i32)
        }
    }
}

/// Kills and reaps a child made by [`fork_parked`] that could not be handed out.
pub fn discard_parked(pid: i32) {
    let mut status = 0;
    // SAFETY: `pid` is our unreaped child, so it cannot have been reused; `status` is a
    // live int.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, &mut status, libc::__WALL);
    }
}
