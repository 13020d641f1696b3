//! Syscalls run inside a process outside any capture: one thread is stopped just long enough
//! for a few injected syscalls, then released; the others never stop. This reaps a clone's
//! zombie in the target at free time, and installs or closes the fd of a snapshot duplicated
//! into another process.
//!
//! Everything here runs on the tracer thread.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::linux::inject::{self, Injection};
use crate::linux::mem::ProcMem;
use crate::linux::procfs;
use crate::linux::ptrace::{self, Tid, WaitStatus};
use crate::linux::statedir::TargetLock;
use crate::linux::tracer;

use super::va_clone::{candidate, seccomp_option, Candidate};

/// What an injection job may use besides the [`Injection`].
pub(crate) struct Stopped<'a> {
    /// `/proc/PID/mem`, writable.
    pub mem: &'a ProcMem,
    /// The first address below the thread's stack pointer and red zone: scratch memory the
    /// thread's code does not use (a signal frame would go there).
    pub scratch_top: u64,
}

/// Stops one thread of `pid` (waiting up to `stop_deadline` for it, and for a capture of
/// the same process by another engine to end), runs `job` with an injection prepared on
/// it, restores and releases the thread. The thread's registers, signal mask and
/// interrupted syscall are restored on every path, errors and panics included.
pub(crate) fn with_one_thread<R>(
    pid: i32,
    stop_deadline: Duration,
    job: impl FnOnce(&mut Injection, &Stopped<'_>) -> std::io::Result<R>,
) -> Result<R> {
    let asked = Instant::now();
    let key = crate::linux::pidfd::identity(pid);
    let _turn = TargetLock::acquire(key, asked + stop_deadline).map_err(|_| Error::Busy {
        pid,
        waited_ms: asked.elapsed().as_millis() as u64,
    })?;
    let vdso = inject::vdso_site(pid);
    let tids = procfs::list_numeric(pid, &format!("/proc/{pid}/task"))
        .map_err(|_| Error::ProcessExited { pid })?;
    let tid = tids
        .into_iter()
        .find(|&t| {
            procfs::stat_at(&format!("/proc/{pid}/task/{t}/stat"))
                .is_some_and(|s| !matches!(s.state, b'Z' | b'X' | b'D'))
        })
        .ok_or(Error::NotSupported {
            what: format!(
                "running a syscall in process {pid}: every thread is exiting or in uninterruptible sleep"
            ),
        })?;
    let mem = ProcMem::open_rw(pid)
        .map_err(|e| Error::from_proc_io(pid, format!("/proc/{pid}/mem"), e))?;
    if let Err(e) = ptrace::seize(tid, 0) {
        return Err(seize_error(pid, tid, e));
    }
    let _ = ptrace::interrupt(tid);
    let deadline = Instant::now() + stop_deadline;
    let group = loop {
        match ptrace::wait_report(tid, tid == pid, deadline) {
            Ok(WaitStatus::Stopped { sig, event }) if event == ptrace::EVENT_STOP => {
                break ptrace::is_stop_signal(sig);
            }
            Ok(WaitStatus::Stopped { sig, .. }) => {
                // A genuine signal came first: deliver it and ask again.
                let _ = ptrace::cont(tid, sig);
                let _ = ptrace::interrupt(tid);
            }
            Ok(WaitStatus::LeaderExited) => {
                tracer::leader_exited(tid);
                return Err(Error::ProcessExited { pid });
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                tracer::release_later([tid]);
                return Err(Error::Timeout {
                    pid,
                    tid,
                    timeout_ms: stop_deadline.as_millis() as u64,
                });
            }
            Ok(_) | Err(_) => return Err(Error::ProcessExited { pid }),
        }
    };
    let out = run_job(pid, tid, vdso, &mem, job);
    if ptrace::detach(tid, 0).is_err() {
        tracer::release_later([tid]);
    } else if group {
        super::freeze::wait_back_in_group_stop(pid, &[tid], &mut Vec::new());
    }
    out
}

fn run_job<R>(
    pid: i32,
    tid: Tid,
    vdso: Option<u64>,
    mem: &ProcMem,
    job: impl FnOnce(&mut Injection, &Stopped<'_>) -> std::io::Result<R>,
) -> Result<R> {
    let not_usable = |why: &str| Error::NotSupported {
        what: format!("running a syscall in thread {tid} of process {pid}: {why}"),
    };
    let usable = match candidate(pid, tid, mem) {
        Candidate::Usable(u) => u,
        Candidate::Dispatching => return Err(not_usable("syscall user dispatch is on")),
        Candidate::Strict => return Err(not_usable("it is in seccomp strict mode")),
        Candidate::Unusable => return Err(not_usable("it exited")),
    };
    let site = usable
        .site
        .or(vdso)
        .ok_or_else(|| not_usable("no syscall instruction found (none in its vDSO)"))?;
    // Self-restoring where the process allows (not with a shadow stack, which would check
    // the chain's `ret`): an engine killed at any instant leaves the thread in its own
    // state (linux/inject.rs).
    let process = (!usable.shadow_stack).then_some((pid, mem));
    let mut inj = Injection::begin(tid, site, seccomp_option(usable.seccomp), 0, process)
        .map_err(|e| ptrace_error(pid, tid, "PTRACE_SETOPTIONS/SETSIGMASK (injection)", e))?;
    let stopped = Stopped {
        mem,
        scratch_top: inj.scratch_top(),
    };
    let out = job(&mut inj, &stopped).map_err(|e| ptrace_error(pid, tid, "injected syscall", e));
    inj.restore()
        .map_err(|e| ptrace_error(pid, tid, "PTRACE_SETREGS (restore)", e))?;
    out
}

fn ptrace_error(pid: i32, tid: Tid, request: &'static str, source: std::io::Error) -> Error {
    Error::Ptrace {
        request,
        pid,
        tid,
        source,
    }
}

fn seize_error(pid: i32, tid: Tid, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ESRCH) => Error::ProcessExited { pid },
        Some(libc::EPERM) => match procfs::status_at(&format!("/proc/{pid}/task/{tid}/status")) {
            Some(st) if st.tracer_pid != 0 => Error::AlreadyTraced {
                pid,
                tid,
                tracer: st.tracer_pid,
            },
            _ => Error::PermissionDenied {
                pid,
                action: format!("trace thread {tid} of"),
                source: e,
            },
        },
        _ => ptrace_error(pid, tid, "PTRACE_SEIZE", e),
    }
}
