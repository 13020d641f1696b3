//! Thin safe wrappers over the ptrace and wait requests the capture engine uses.
//!
//! Every function here must be called from the tracer thread (see [`super::tracer`]): ptrace
//! binds a tracee to the *thread* that seized it.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A kernel task id (a thread id; the leader's tid is the pid).
pub type Tid = i32;

/// `PTRACE_O_TRACECLONE`: auto-attach threads (and `exit_signal != SIGCHLD` children) the
/// tracee creates.
pub const OPT_TRACECLONE: u32 = libc::PTRACE_O_TRACECLONE as u32;

/// `PTRACE_O_TRACESYSGOOD`: syscall stops report `SIGTRAP | 0x80`.
pub const OPT_TRACESYSGOOD: u32 = libc::PTRACE_O_TRACESYSGOOD as u32;
/// `PTRACE_O_EXITKILL`: the tracee is killed when its tracer exits (only ever on a clone).
pub const OPT_EXITKILL: u32 = libc::PTRACE_O_EXITKILL as u32;
/// `PTRACE_O_SUSPEND_SECCOMP`: the tracee's seccomp filters do not apply (needs
/// `CAP_SYS_ADMIN`).
pub const OPT_SUSPEND_SECCOMP: u32 = libc::PTRACE_O_SUSPEND_SECCOMP as u32;
/// Whether this process may set [`OPT_SUSPEND_SECCOMP`]: it has `CAP_SYS_ADMIN` and no
/// seccomp filter of its own (the kernel's two conditions).
pub fn may_suspend_seccomp() -> bool {
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    pss_sys::procfs::status_at("/proc/self/status")
        .is_some_and(|s| s.cap_eff & CAP_SYS_ADMIN != 0 && s.seccomp == 0)
}

/// The stop signal of a syscall-enter or syscall-exit stop under `TRACESYSGOOD`.
pub const SYSCALL_STOP: i32 = libc::SIGTRAP | 0x80;

/// `PTRACE_EVENT_STOP`: the event of a `PTRACE_INTERRUPT`, group-stop or auto-attach stop.
pub const EVENT_STOP: u32 = libc::PTRACE_EVENT_STOP as u32;
/// `PTRACE_EVENT_CLONE`: the tracee created a thread or a clone child.
pub const EVENT_CLONE: u32 = libc::PTRACE_EVENT_CLONE as u32;

fn check(r: libc::c_long) -> io::Result<libc::c_long> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn request(req: libc::c_uint, tid: Tid, addr: usize, data: usize) -> io::Result<libc::c_long> {
    // SAFETY: every request issued through this helper passes either integers or pointers to
    // live buffers owned by the caller (see each wrapper); ptrace does not retain them.
    check(unsafe {
        libc::ptrace(
            req,
            tid,
            addr as *mut libc::c_void,
            data as *mut libc::c_void,
        )
    })
}

/// `PTRACE_SEIZE`: attach to `tid` without stopping it.
pub fn seize(tid: Tid, options: u32) -> io::Result<()> {
    request(libc::PTRACE_SEIZE, tid, 0, options as usize).map(drop)
}

/// `PTRACE_INTERRUPT`: ask a seized thread to stop; it reports `PTRACE_EVENT_STOP`.
pub fn interrupt(tid: Tid) -> io::Result<()> {
    request(libc::PTRACE_INTERRUPT, tid, 0, 0).map(drop)
}

/// `PTRACE_DETACH`: let a stopped tracee go, delivering `sig` (0 for none).
pub fn detach(tid: Tid, sig: i32) -> io::Result<()> {
    request(libc::PTRACE_DETACH, tid, 0, sig as usize).map(drop)
}

/// `PTRACE_CONT`: resume a stopped tracee, delivering `sig` (0 for none).
pub fn cont(tid: Tid, sig: i32) -> io::Result<()> {
    request(libc::PTRACE_CONT, tid, 0, sig as usize).map(drop)
}

/// `PTRACE_SYSCALL`: resume a stopped tracee until its next syscall entry or exit.
pub fn syscall(tid: Tid, sig: i32) -> io::Result<()> {
    request(libc::PTRACE_SYSCALL, tid, 0, sig as usize).map(drop)
}

/// `PTRACE_SETOPTIONS`.
pub fn set_options(tid: Tid, options: u32) -> io::Result<()> {
    request(libc::PTRACE_SETOPTIONS, tid, 0, options as usize).map(drop)
}

/// `PTRACE_SETREGSET`: writes register set `note` from `buf`.
pub fn set_regset(tid: Tid, note: u32, buf: &[u8]) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // The kernel only reads through the iovec for SETREGSET.
    request(
        libc::PTRACE_SETREGSET,
        tid,
        note as usize,
        &mut iov as *mut libc::iovec as usize,
    )
    .map(drop)
}

/// `PTRACE_SETSIGMASK`: replaces the tracee's blocked-signal mask.
pub fn set_sigmask(tid: Tid, mask: u64) -> io::Result<()> {
    request(
        libc::PTRACE_SETSIGMASK,
        tid,
        std::mem::size_of::<u64>(),
        &mask as *const u64 as usize,
    )
    .map(drop)
}

/// Whether syscall user dispatch is on for tracee `tid`
/// (`PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG`, Linux 6.4). Kernels without the request
/// answer `false`: they cannot tell, and SUD itself is rare.
pub fn syscall_user_dispatch_on(tid: Tid) -> bool {
    const PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG: libc::c_uint = 0x4211;
    // struct ptrace_sud_config { mode, selector, offset, len }, all u64.
    let mut cfg = [0u64; 4];
    request(
        PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG,
        tid,
        std::mem::size_of_val(&cfg),
        cfg.as_mut_ptr() as usize,
    )
    .is_ok_and(|_| cfg[0] != 0)
}

/// `PTRACE_GETEVENTMSG`: the message of the last event (the new tid for `EVENT_CLONE`).
pub fn event_msg(tid: Tid) -> io::Result<u64> {
    let mut msg: libc::c_ulong = 0;
    request(
        libc::PTRACE_GETEVENTMSG,
        tid,
        0,
        &mut msg as *mut libc::c_ulong as usize,
    )?;
    Ok(msg as u64)
}

/// `PTRACE_GETREGSET`: reads register set `note` (`NT_PRSTATUS`, …) into `buf`; returns the
/// number of bytes the kernel filled.
pub fn get_regset(tid: Tid, note: u32, buf: &mut [u8]) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    request(
        libc::PTRACE_GETREGSET,
        tid,
        note as usize,
        &mut iov as *mut libc::iovec as usize,
    )?;
    Ok(iov.iov_len)
}

/// `PTRACE_PEEKTEXT`: the word of the tracee's memory at `address`.
pub fn peek_text(tid: Tid, address: u64) -> io::Result<u64> {
    peek(libc::PTRACE_PEEKTEXT, tid, address)
}

/// `PTRACE_PEEKUSER`: one word of the tracee's `struct user` (debug registers on x86_64).
#[cfg(target_arch = "x86_64")]
pub fn peek_user(tid: Tid, offset: usize) -> io::Result<u64> {
    peek(libc::PTRACE_PEEKUSER, tid, offset as u64)
}

/// A `PTRACE_PEEK*` request, which returns the word itself: -1 is ambiguous, so errno is
/// cleared first and checked.
fn peek(request: libc::c_uint, tid: Tid, at: u64) -> io::Result<u64> {
    // SAFETY: errno is thread-local; writing it is always sound.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: a PEEK request takes an address or offset in the tracee and no buffer of ours.
    let r = unsafe {
        libc::ptrace(
            request,
            tid,
            at as *mut libc::c_void,
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    if r == -1 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(0) {
            return Err(e);
        }
    }
    Ok(r as u64)
}

/// `PTRACE_GETSIGMASK`: the tracee's blocked-signal mask.
pub fn sigmask(tid: Tid) -> io::Result<u64> {
    let mut mask: u64 = 0;
    request(
        libc::PTRACE_GETSIGMASK,
        tid,
        std::mem::size_of::<u64>(),
        &mut mask as *mut u64 as usize,
    )?;
    Ok(mask)
}

/// Whether a group-stop reported with this signal is a job-control stop (the process was
/// stopped by `SIGSTOP`, `SIGTSTP`, `SIGTTIN` or `SIGTTOU`).
pub fn is_stop_signal(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

/// What `waitpid` reported for one tracee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStatus {
    /// The task exited with this code.
    Exited(i32),
    /// The task was killed by this signal.
    Signaled(i32),
    /// A thread-group leader exited. Its report was *not* consumed: consuming it could reap a
    /// child of the caller's own process (tracer and parent in one thread group) and steal
    /// its exit status. The caller must retire the tracer thread, which hands the zombie back
    /// to its real parent (`exit_ptrace`).
    LeaderExited,
    /// The task stopped: the stop signal, and the ptrace event (`status >> 16`, 0 for none).
    Stopped {
        /// `WSTOPSIG`.
        sig: i32,
        /// The `PTRACE_EVENT_*` number, 0 for a signal-delivery stop.
        event: u32,
    },
}

/// The report of tracee `tid`, if one is ready.
///
/// Per-tid waits are O(1) in the kernel (waiting on "any" walks the whole list of tracees).
/// `__WNOTHREAD` keeps us to this thread's tracees. The leader's report is peeked first
/// (`WNOWAIT`) so that its exit is never consumed.
pub fn wait_nohang(tid: Tid, leader: bool) -> io::Result<Option<WaitStatus>> {
    let flags = libc::WNOHANG | libc::__WALL | libc::__WNOTHREAD;
    if leader {
        // SAFETY: siginfo_t is plain data; all-zero is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: info points to a live siginfo_t.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                tid as libc::id_t,
                &mut info,
                flags | libc::WEXITED | libc::WSTOPPED | libc::WNOWAIT,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: waitid filled `info` (or left it zeroed when nothing was ready).
        if unsafe { info.si_pid() } == 0 {
            return Ok(None);
        }
        if matches!(
            info.si_code,
            libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED
        ) && is_group_leader(tid)
        {
            return Ok(Some(WaitStatus::LeaderExited));
        }
    }
    let mut status: libc::c_int = 0;
    // SAFETY: status points to a live c_int.
    let r = unsafe { libc::waitpid(tid, &mut status, flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if r == 0 {
        return Ok(None);
    }
    Ok(Some(if libc::WIFEXITED(status) {
        WaitStatus::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        WaitStatus::Signaled(libc::WTERMSIG(status))
    } else {
        WaitStatus::Stopped {
            sig: libc::WSTOPSIG(status),
            event: (status as u32) >> 16,
        }
    }))
}

/// Where tracee stops are announced: a `signalfd` for `SIGCHLD` (which the kernel sends the
/// tracer for every ptrace stop), set up by the engine process. Without one, waits sleep.
static STOPS: OnceLock<OwnedFd> = OnceLock::new();

/// Makes [`wait_report`] sleep on `fd`, a non-blocking `signalfd` for `SIGCHLD` (blocked in
/// every thread), instead of polling, once a report is late.
pub fn announce_stops_on(fd: OwnedFd) {
    let _ = STOPS.set(fd);
}

/// Sleeps until a `SIGCHLD` (some tracee stopped or exited) or `timeout`, then drains it.
fn sleep_until_a_stop(timeout: Duration) {
    let Some(fd) = STOPS.get() else {
        std::thread::sleep(Duration::from_micros(20));
        return;
    };
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let mut fds = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
    let _ = rustix::event::poll(&mut fds, Some(&ts));
    let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
    while rustix::io::read(fd, &mut info).is_ok_and(|n| n > 0) {}
}

/// Waits for the next report of `tid` (see [`wait_nohang`] for `leader`) until `deadline`;
/// past it, an error of kind `TimedOut`. Reports usually come within microseconds: spin,
/// then yield. An injected `clone` takes longer (the kernel copies page tables): then sleep
/// until the kernel announces a stop ([`announce_stops_on`]), so that the waiting thread
/// neither steals the CPU the copy runs on nor wakes late.
pub fn wait_report(tid: Tid, leader: bool, deadline: Instant) -> io::Result<WaitStatus> {
    let mut polls = 0u32;
    loop {
        if let Some(s) = wait_nohang(tid, leader)? {
            return Ok(s);
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("thread {tid} did not report a stop in time"),
            ));
        }
        polls += 1;
        if polls < 64 {
            std::hint::spin_loop();
        } else if polls < 256 {
            std::thread::yield_now();
        } else {
            // Bounded: a stop announced to another waiting thread is seen within 2 ms.
            let left = deadline.saturating_duration_since(Instant::now());
            sleep_until_a_stop(left.min(Duration::from_millis(2)));
        }
    }
}

/// Collects the queued report of `tid` (never blocks). For a process whose real parent is
/// elsewhere this hands its zombie to that parent.
pub fn collect(tid: Tid) -> io::Result<Option<i32>> {
    let mut status: libc::c_int = 0;
    // SAFETY: status points to a live c_int.
    let r = unsafe {
        libc::waitpid(
            tid,
            &mut status,
            libc::WNOHANG | libc::__WALL | libc::__WNOTHREAD,
        )
    };
    match r {
        r if r < 0 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        _ => Ok(Some(status)),
    }
}

fn is_group_leader(tid: Tid) -> bool {
    // Unreadable means already released: nothing of it is left to steal.
    pss_sys::procfs::status_at(&format!("/proc/{tid}/status")).is_some_and(|s| s.tgid == tid)
}
