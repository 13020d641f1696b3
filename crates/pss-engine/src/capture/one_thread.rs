//! Syscalls run inside a process outside any capture: one thread is stopped just long enough
//! for a few injected syscalls, then released; the others never stop. This reaps a clone's
//! zombie in the target at free time, and installs or closes the fd of a snapshot duplicated
//! into another process.
//!
//! Everything here runs on the tracer thread.

use std::time::{Duration, Instant};

use pss_sys::mem::ProcMem;
use pss_sys::procfs;
use pss_trace::inject::{self, Injection, SelfRestore};
use pss_trace::own_stack;
use pss_trace::ptrace::{self, Tid, WaitStatus};
use pss_trace::statedir::TargetLock;
use pss_trace::tracer;
use pss_types::error::{Error, Result};

use super::injectable::{candidate, seccomp_option, Candidate};

/// What an injection job may use besides the [`Injection`].
pub(crate) struct Stopped<'a> {
    /// `/proc/PID/mem`, writable.
    pub mem: &'a ProcMem,
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
    let key = pss_sys::pidfd::identity(pid);
    let _turn = TargetLock::acquire(key, asked + stop_deadline).map_err(|_| Error::Busy {
        pid,
        waited_ms: asked.elapsed().as_millis() as u64,
    })?;
    let maps = std::fs::read(format!("{}/maps", procfs::mm_dir(pid)))
        .map_err(|_| Error::ProcessExited { pid })?;
    let vdso = inject::vdso_site_from_maps(pid, &maps);
    let tid = choose_thread(pid, &maps, None)?;
    let mem = ProcMem::open_rw(pid)
        .map_err(|e| Error::from_proc_io(pid, format!("/proc/{pid}/mem"), e))?;
    seize_waiting_for_engines(pid, tid, asked + stop_deadline)?;
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
    let out = run_job(pid, tid, vdso, &maps, &mem, job);
    if ptrace::detach(tid, 0).is_err() {
        tracer::release_later([tid]);
    } else if group {
        super::stop::wait_back_in_group_stop(pid, &[tid], &mut Vec::new());
    }
    out
}

/// Runs `job` like [`with_one_thread`] in one of the threads `tids` of `pid`, which the
/// caller has stopped (and lets go afterwards).
pub(crate) fn with_stopped_thread<R>(
    pid: i32,
    tids: &[Tid],
    job: impl FnOnce(&mut Injection, &Stopped<'_>) -> std::io::Result<R>,
) -> Result<R> {
    let maps = std::fs::read(format!("{}/maps", procfs::mm_dir(pid)))
        .map_err(|_| Error::ProcessExited { pid })?;
    let vdso = inject::vdso_site_from_maps(pid, &maps);
    let tid = choose_thread(pid, &maps, Some(tids))?;
    let mem = ProcMem::open_rw(pid)
        .map_err(|e| Error::from_proc_io(pid, format!("/proc/{pid}/mem"), e))?;
    run_job(pid, tid, vdso, &maps, &mem, job)
}

/// Why no syscall may ever be injected into process `pid` by this engine, if that is so:
/// every live thread is in seccomp strict mode or under a filter we may not suspend (a
/// filter could kill the process for the injected call). A condition that lasts, unlike a
/// thread in uninterruptible sleep or a debugger attached.
pub(crate) fn never_injectable(pid: i32) -> Option<String> {
    let tids = procfs::list_numeric(pid, &format!("/proc/{pid}/task")).ok()?;
    let may_suspend = ptrace::may_suspend_seccomp();
    let mut live = 0;
    for t in tids {
        let Some(st) = procfs::status_at(&format!("/proc/{pid}/task/{t}/status")) else {
            continue;
        };
        if matches!(st.state, b'Z' | b'X') {
            continue;
        }
        live += 1;
        if st.seccomp == 0 || (st.seccomp == 2 && may_suspend) {
            return None;
        }
    }
    (live > 0).then(|| {
        format!(
            "every thread of process {pid} runs under a seccomp filter (or strict mode), which only CAP_SYS_ADMIN may suspend"
        )
    })
}

/// The thread to stop (among `among`, else any of the process's): one that is not exiting,
/// in uninterruptible sleep or in seccomp strict mode, nor under a seccomp filter we may
/// not suspend; preferring one blocked in a syscall on what looks like its own stack (the
/// main thread on `[stack]` first), whose stack a self-restoring injection may use
/// ([`own_stack`]).
fn choose_thread(pid: i32, maps: &[u8], among: Option<&[Tid]>) -> Result<Tid> {
    let tids = match among {
        Some(t) => t.to_vec(),
        None => procfs::list_numeric(pid, &format!("/proc/{pid}/task"))
            .map_err(|_| Error::ProcessExited { pid })?,
    };
    let may_suspend = ptrace::may_suspend_seccomp();
    let mut filtered = 0;
    let mut best: Option<(u8, Tid)> = None;
    for t in tids {
        let rank = match own_stack::likely_own(pid, t, maps) {
            Some(true) if t == pid => 0,
            Some(true) => 1,
            Some(false) => 2,
            None => 3,
        };
        if best.is_some_and(|(r, _)| r <= rank) {
            continue;
        }
        let Some(st) = procfs::status_at(&format!("/proc/{pid}/task/{t}/status")) else {
            continue;
        };
        if matches!(st.state, b'Z' | b'X' | b'D') || st.seccomp == 1 {
            continue;
        }
        if st.seccomp == 2 && !may_suspend {
            filtered += 1;
            continue;
        }
        best = Some((rank, t));
        // Good enough: the main thread is listed first, so a later thread ranks 1 at best.
        if rank <= 1 {
            break;
        }
    }
    let why = if filtered > 0 {
        "every other thread runs under a seccomp filter, which only CAP_SYS_ADMIN may suspend (a filter could kill the process for an injected syscall)"
    } else {
        "every thread is exiting, in uninterruptible sleep or in seccomp strict mode"
    };
    best.map(|(_, t)| t).ok_or(Error::NotSupported {
        what: format!("running a syscall in process {pid}: {why}"),
    })
}

fn run_job<R>(
    pid: i32,
    tid: Tid,
    vdso: Option<u64>,
    maps: &[u8],
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
    // Self-restoring where the process allows: its frame on the thread's own stack only
    // (linux/own_stack.rs), and not with a shadow stack, which would check the chain's
    // `ret`. An engine killed at any instant then leaves the thread in its own state.
    let process = self_restore(pid, tid, usable.shadow_stack, maps, mem);
    let mut inj = Injection::begin(tid, site, seccomp_option(usable.seccomp), 0, process)
        .map_err(|e| ptrace_error(pid, tid, "PTRACE_SETOPTIONS/SETSIGMASK (injection)", e))?;
    let stopped = Stopped { mem };
    let out = job(&mut inj, &stopped).map_err(|e| ptrace_error(pid, tid, "injected syscall", e));
    inj.restore()
        .map_err(|e| ptrace_error(pid, tid, "PTRACE_SETREGS (restore)", e))?;
    out
}

/// What a self-restoring injection into stopped thread `tid` needs, if its stack is known
/// to be its own.
fn self_restore<'m>(
    pid: i32,
    tid: Tid,
    shadow_stack: bool,
    maps: &[u8],
    mem: &'m ProcMem,
) -> Option<SelfRestore<'m>> {
    if shadow_stack {
        return None;
    }
    let regs = pss_trace::arch::get_raw(tid).ok()?;
    let stack = own_stack::find(pid, tid, &regs, maps, mem).ok()?;
    Some(SelfRestore { pid, mem, stack })
}

fn ptrace_error(pid: i32, tid: Tid, request: &'static str, source: std::io::Error) -> Error {
    Error::Ptrace {
        request,
        pid,
        tid,
        source,
    }
}

/// Seizes `tid`, an EPERM judged as the all-together stop judges it
/// ([`super::stop::classify_eperm`]): another pss engine tracing it is waited for until
/// `deadline`, a thread whose exit has begun means the process is exiting.
fn seize_waiting_for_engines(pid: i32, tid: Tid, deadline: Instant) -> Result<()> {
    use super::stop::{classify_eperm, Eperm};
    let mut first_eperm = None;
    loop {
        let Err(e) = ptrace::seize(tid, 0) else {
            return Ok(());
        };
        if e.raw_os_error() != Some(libc::EPERM) {
            return Err(seize_error(pid, tid, e));
        }
        let since = *first_eperm.get_or_insert_with(Instant::now);
        match classify_eperm(pid, tid, e, since, deadline) {
            Eperm::Retry => continue,
            Eperm::ThreadExited => return Err(Error::ProcessExited { pid }),
            Eperm::Error(err) => return Err(err),
        }
    }
}

/// The error for a failed `PTRACE_SEIZE` of thread `tid` of `pid`.
pub(super) fn seize_error(pid: i32, tid: Tid, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ESRCH) => Error::ProcessExited { pid },
        Some(libc::EPERM) => match procfs::status_at(&format!("/proc/{pid}/task/{tid}/status")) {
            Some(st) if st.tracer_pid != 0 => Error::AlreadyTraced {
                pid,
                tid,
                tracer: st.tracer_pid,
            },
            // The kernel refuses to attach to a task that is exiting (its exit_state set):
            // a thread that has exited is reaped at once unless its whole group is exiting.
            Some(st) if matches!(st.state, b'Z' | b'X') => Error::ProcessExited { pid },
            None => Error::ProcessExited { pid },
            _ => Error::PermissionDenied {
                pid,
                action: format!("trace thread {tid} of"),
                source: e,
            },
        },
        _ => ptrace_error(pid, tid, "PTRACE_SEIZE", e),
    }
}
