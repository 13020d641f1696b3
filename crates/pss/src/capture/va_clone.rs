//! The VA clone pipeline: preflight (target running), the injected `clone` (inside the
//! pause), adoption (after the pause: `EXITKILL`, its fds closed), and free (kill, reap,
//! then an injected `wait4` in the target so it keeps no zombie of ours).
//!
//! Everything here that touches ptrace runs on the tracer thread.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::linux::inject::{self, Injection};
use crate::linux::mem::ProcMem;
use crate::linux::procfs::{self, maps, smaps, ProcDir};
use crate::linux::ptrace::{self, Tid, WaitStatus};
use crate::linux::{arch, tracer};
use crate::records::{CopiedRange, CopyReason, MemoryHole};

/// `anon_inode:[userfaultfd]`: a target holding one is refused (fork waits on its monitor).
const USERFAULTFD: &[u8] = b"anon_inode:[userfaultfd]";
/// How long the injected `clone` may take (the kernel copies page tables: ~25 ms per GiB).
const CLONE_DEADLINE: Duration = Duration::from_secs(30);
/// How long the second pause at free time may wait for a thread to stop.
const REAP_STOP_DEADLINE: Duration = Duration::from_millis(500);

/// What [`preflight`] found besides the request.
#[derive(Debug, Default)]
pub struct Preflight {
    /// Forked-away ranges over the copy limit.
    pub holes: Vec<MemoryHole>,
    /// The target's `maps` lines of its `MADV_DONTFORK` mappings (absent from a clone's).
    pub dontfork_maps: Vec<u8>,
}

/// What the pause needs to make a clone; built by [`preflight`].
#[derive(Debug, Clone)]
pub struct CloneRequest {
    /// A `syscall` instruction in the target's vDSO, for when no thread is in a syscall.
    pub vdso_site: Option<u64>,
    /// Ranges to copy from the stopped target: forked-away ones and shared ones, within
    /// their limits.
    pub copy: Vec<(u64, u64, CopyReason)>,
}

/// A clone made during the pause, before it is adopted.
#[derive(Debug)]
pub struct MadeClone {
    /// Its pid in our pid namespace.
    pub pid: i32,
    /// Its pid in the target's pid namespace (what `wait4` in the target needs).
    pub pid_in_target: i32,
    /// The syscall instruction used; the clone has it at the same address.
    pub site: u64,
    /// Whether the injected thread had a seccomp filter (suspended for the injection).
    pub seccomp: bool,
    /// The ranges copied from the stopped target.
    pub copies: Vec<CopiedRange>,
    /// Ranges that were to be copied but could not be read.
    pub failed_copies: Vec<MemoryHole>,
}

/// Checks the target can be cloned and gathers what the pause needs. Target running.
///
/// `copy_limit` bounds the bytes of `MADV_DONTFORK`/`MADV_WIPEONFORK` ranges copied during
/// the pause, `shared_copy_limit` those of writable shared mappings (0: none). Ranges over
/// the limit are returned as holes.
pub fn preflight(
    pid: i32,
    dir: &mut ProcDir,
    copy_limit: u64,
    shared_copy_limit: u64,
) -> Result<(CloneRequest, Preflight)> {
    for fd in procfs::list_numeric(pid, &format!("/proc/{pid}/fd"))? {
        if let Ok(link) = dir.readlink(&format!("fd/{fd}")) {
            if link.as_encoded_bytes() == USERFAULTFD {
                return Err(Error::NotSupported {
                    what: format!(
                        "a VA clone of process {pid}: it holds a userfaultfd (fd {fd}), and a fork would wait for its monitor (see docs/differences.md)"
                    ),
                });
            }
        }
    }
    let mut copy = Vec::new();
    let mut found = Preflight::default();
    let mut budget = copy_limit;
    let smaps_buf = dir.read("smaps")?.to_vec();
    let specials = smaps::fork_specials(&smaps_buf);
    for line in smaps_buf.split(|&c| c == b'\n') {
        let Some(m) = maps::parse_line(line) else {
            continue;
        };
        if specials.iter().any(|s| s.dont_fork && s.start == m.start) {
            found.dontfork_maps.extend_from_slice(line);
            found.dontfork_maps.push(b'\n');
        }
    }
    for s in specials {
        let reason = if s.dont_fork {
            CopyReason::DontFork
        } else {
            CopyReason::WipeOnFork
        };
        let len = s.end - s.start;
        if s.readable && len <= budget {
            budget -= len;
            copy.push((s.start, s.end, reason));
        } else {
            found.holes.push(MemoryHole {
                start: s.start,
                end: s.end,
                reason,
            });
        }
    }
    if shared_copy_limit > 0 {
        let mut budget = shared_copy_limit;
        let buf = dir.read("maps")?.to_vec();
        for m in maps::parse(&buf) {
            let len = m.end - m.start;
            if m.shared() && m.write() && m.read() && len <= budget {
                budget -= len;
                copy.push((m.start, m.end, CopyReason::Shared));
            }
        }
    }
    Ok((
        CloneRequest {
            vdso_site: inject::vdso_site(pid),
            copy,
        },
        found,
    ))
}

/// Makes the clone: copies the requested ranges from the stopped target, then injects
/// `clone(exit_signal = 0)` into one stopped thread and restores it. Inside the pause.
pub fn make(pid: i32, stopped: &[Tid], req: &CloneRequest) -> Result<MadeClone> {
    let (copies, failed_copies) = copy_ranges(pid, &req.copy);
    let (tid, site) = pick_thread(pid, stopped, req.vdso_site)?;
    let seccomp = thread_seccomp(pid, tid)?;
    let extra = if seccomp {
        ptrace::OPT_SUSPEND_SECCOMP
    } else {
        0
    };
    let mut inj = Injection::begin(tid, site, extra, ptrace::OPT_TRACECLONE)
        .map_err(|e| injection_error(pid, tid, seccomp, e))?;
    let deadline = Instant::now() + CLONE_DEADLINE;
    let mut outcome = None;
    for _ in 0..5 {
        let out = inj
            .syscall(libc::SYS_clone as u64, [0; 6], deadline)
            .map_err(|e| clone_failed(pid, format!("the injected clone in thread {tid}: {e}")))?;
        // EAGAIN: transient (rr retries); ERESTARTNOINTR: a signal raced in.
        if out.ret == -i64::from(libc::EAGAIN) || out.ret == -513 {
            continue;
        }
        outcome = Some(out);
        break;
    }
    let child = outcome.as_ref().and_then(|o| {
        o.events
            .iter()
            .find(|(ev, _)| *ev == ptrace::EVENT_CLONE)
            .map(|(_, msg)| *msg as i32)
    });
    if child.is_some() {
        // From here the tracer thread must not retire: that would detach the clone, which
        // has no EXITKILL yet, and let it run the target's code.
        tracer::keep_clone();
    }
    let restored = inj.restore();
    let ret = outcome.map_or(-i64::from(libc::EAGAIN), |o| o.ret);
    if let Err(e) = restored {
        if let Some(child) = child {
            discard(child);
            tracer::clone_released();
        }
        return Err(clone_failed(
            pid,
            format!("thread {tid} could not be restored after the injected clone: {e}"),
        ));
    }
    if ret < 0 {
        return Err(clone_failed(
            pid,
            format!(
                "clone() in thread {tid} returned {}",
                std::io::Error::from_raw_os_error((-ret) as i32)
            ),
        ));
    }
    let Some(child) = child else {
        return Err(clone_failed(
            pid,
            format!("clone() in thread {tid} made pid {ret} but it was not reported to us"),
        ));
    };
    Ok(MadeClone {
        pid: child,
        pid_in_target: ret as i32,
        site,
        seccomp,
        copies,
        failed_copies,
    })
}

fn copy_ranges(pid: i32, ranges: &[(u64, u64, CopyReason)]) -> (Vec<CopiedRange>, Vec<MemoryHole>) {
    let mut copies = Vec::new();
    let mut failed = Vec::new();
    if ranges.is_empty() {
        return (copies, failed);
    }
    let mem = ProcMem::open(pid).ok();
    for &(start, end, reason) in ranges {
        let mut data = vec![0u8; (end - start) as usize];
        if mem.as_ref().is_some_and(|m| m.read_exact(start, &mut data)) {
            copies.push(CopiedRange {
                start,
                data,
                reason,
            });
        } else {
            failed.push(MemoryHole { start, end, reason });
        }
    }
    (copies, failed)
}

/// A stopped thread to inject into and the syscall instruction to use: one stopped in a
/// syscall if there is one (its own instruction), else the first with the vDSO's. Threads in
/// seccomp strict mode or with syscall user dispatch on (an injected syscall would raise
/// SIGSYS in them) are never used.
fn pick_thread(pid: i32, stopped: &[Tid], vdso: Option<u64>) -> Result<(Tid, u64)> {
    let mut fallback = None;
    let mut dispatching = 0;
    for &tid in stopped {
        let Ok(regs) = arch::get_raw(tid) else {
            continue;
        };
        if procfs::status_at(&format!("/proc/{pid}/task/{tid}/status"))
            .is_some_and(|s| s.seccomp == 1)
        {
            continue;
        }
        if ptrace::syscall_user_dispatch_on(tid) {
            dispatching += 1;
            continue;
        }
        if let Some(site) = inject::find_site(pid, &regs, None) {
            return Ok((tid, site));
        }
        if fallback.is_none() {
            fallback = vdso.map(|site| (tid, site));
        }
    }
    if let Some(found) = fallback {
        return Ok(found);
    }
    if dispatching > 0 {
        return Err(Error::NotSupported {
            what: format!(
                "a VA clone of process {pid}: every usable thread has syscall user dispatch on, where an injected syscall would raise SIGSYS"
            ),
        });
    }
    Err(clone_failed(
        pid,
        "no thread is in a syscall and no syscall instruction was found in the vDSO (or every thread is in seccomp strict mode)".into(),
    ))
}

/// Whether thread `tid` runs under a seccomp filter (mode 2).
fn thread_seccomp(pid: i32, tid: Tid) -> Result<bool> {
    procfs::status_at(&format!("/proc/{pid}/task/{tid}/status"))
        .map(|s| s.seccomp == 2)
        .ok_or(Error::ProcessExited { pid })
}

fn injection_error(pid: i32, tid: Tid, seccomp: bool, e: std::io::Error) -> Error {
    if seccomp && e.raw_os_error() == Some(libc::EPERM) {
        return Error::NotSupported {
            what: format!(
                "a VA clone of process {pid}: thread {tid} runs under a seccomp filter, which may only be suspended with CAP_SYS_ADMIN; refused rather than risk the filter killing the target"
            ),
        };
    }
    Error::Ptrace {
        request: "PTRACE_SETOPTIONS/SETSIGMASK (injection)",
        pid,
        tid,
        source: e,
    }
}

fn clone_failed(pid: i32, reason: String) -> Error {
    Error::CloneFailed { pid, reason }
}

/// Kills a clone that could not be handed out and collects its exit (tracer side only).
fn discard(clone: i32) {
    // The clone is our tracee and not yet reaped, so its pid cannot have been reused.
    if let Ok(fd) = crate::linux::pidfd::open(clone) {
        let _ = crate::linux::pidfd::kill(std::os::fd::AsFd::as_fd(&fd));
    }
    let _ = wait_exit(clone, Instant::now() + Duration::from_secs(2));
}

/// Waits for the first stop of a freshly made clone, then puts `EXITKILL` on it. After the
/// pause. On error the caller frees the clone as usual (kill, [`free`]).
pub fn adopt(made: MadeRef) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match ptrace::wait_nohang(made.pid, false) {
            Ok(Some(WaitStatus::Stopped { .. })) => break,
            Ok(Some(other)) => {
                return Err(Error::CloneFailed {
                    pid: made.pid,
                    reason: format!("the clone ended before its first stop: {other:?}"),
                })
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_micros(20)),
            Ok(None) => {
                return Err(Error::CloneFailed {
                    pid: made.pid,
                    reason: "the clone never reported its first stop".into(),
                });
            }
            Err(e) => {
                return Err(Error::CloneFailed {
                    pid: made.pid,
                    reason: format!("waiting for the clone: {e}"),
                })
            }
        }
    }
    ptrace::set_options(made.pid, ptrace::OPT_EXITKILL).map_err(|e| Error::CloneFailed {
        pid: made.pid,
        reason: format!("PTRACE_O_EXITKILL could not be set: {e}"),
    })
}

/// Closes every fd of the clone by injecting `close_range(0, ~0, 0)` into it.
pub fn close_fds(clone: i32, site: u64, seccomp: bool) -> Result<()> {
    let extra = if seccomp {
        ptrace::OPT_SUSPEND_SECCOMP
    } else {
        0
    };
    let fail = |what: String| Error::CloneFailed {
        pid: clone,
        reason: format!("closing the clone's fds: {what}"),
    };
    let mut inj = Injection::begin(clone, site, extra, ptrace::OPT_EXITKILL)
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
    inj.restore().map_err(|e| fail(e.to_string()))
}

/// The clone being adopted.
#[derive(Debug, Clone, Copy)]
pub struct MadeRef {
    /// Its pid in our namespace.
    pub pid: i32,
}

/// What freeing a clone needs.
#[derive(Debug)]
pub struct FreeRequest {
    /// The target pid.
    pub target: i32,
    /// Whether the target has exited (then the clone was re-parented and is reaped by
    /// someone else).
    pub target_exited: bool,
    /// The clone's pid in our namespace.
    pub clone: i32,
    /// The clone's pid in the target's namespace.
    pub clone_in_target: i32,
}

/// Kills and reaps the clone, then reaps its zombie inside the target by an injected
/// `wait4(clone, NULL, WNOHANG | __WALL)` in a second, brief pause. On the tracer thread,
/// after the clone's pidfd was used to send SIGKILL.
pub fn free(req: FreeRequest) {
    let _ = wait_exit(req.clone, Instant::now() + Duration::from_secs(5));
    tracer::clone_released();
    if !req.target_exited {
        reap_in_target(req.target, req.clone_in_target);
    }
}

/// Waits until the tracee `pid` reports its exit (collecting it).
fn wait_exit(pid: i32, deadline: Instant) -> bool {
    loop {
        match ptrace::wait_nohang(pid, false) {
            Ok(Some(WaitStatus::Exited(_) | WaitStatus::Signaled(_))) | Err(_) => return true,
            Ok(_) if Instant::now() >= deadline => return false,
            Ok(_) => std::thread::sleep(Duration::from_micros(50)),
        }
    }
}

/// The second pause: one thread of the target is stopped just long enough to run `wait4`
/// on the clone's zombie. Gives up silently when the target cannot be traced now (another
/// tracer arrived); the zombie then stays until the target reaps with `__WALL` or exits.
pub fn reap_in_target(pid: i32, clone_in_target: i32) {
    let vdso = inject::vdso_site(pid);
    let Ok(tids) = procfs::list_numeric(pid, &format!("/proc/{pid}/task")) else {
        return;
    };
    let Some(tid) = tids.into_iter().find(|&t| {
        procfs::stat_at(&format!("/proc/{pid}/task/{t}/stat"))
            .is_some_and(|s| !matches!(s.state, b'Z' | b'X' | b'D'))
    }) else {
        return;
    };
    if ptrace::seize(tid, 0).is_err() {
        return;
    }
    let _ = ptrace::interrupt(tid);
    let deadline = Instant::now() + REAP_STOP_DEADLINE;
    let group = loop {
        match ptrace::wait_nohang(tid, tid == pid) {
            Ok(Some(WaitStatus::Stopped { sig, event })) if event == ptrace::EVENT_STOP => {
                break matches!(
                    sig,
                    libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
                );
            }
            Ok(Some(WaitStatus::Stopped { sig, .. })) => {
                // A genuine signal came first: deliver it and ask again.
                let _ = ptrace::cont(tid, sig);
                let _ = ptrace::interrupt(tid);
            }
            Ok(Some(WaitStatus::LeaderExited)) => {
                tracer::leader_exited(tid);
                return;
            }
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() >= deadline => {
                tracer::release_later([tid]);
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_micros(20)),
        }
    };
    // A thread with syscall user dispatch on would take the injected wait4 as a SIGSYS.
    let regs = if ptrace::syscall_user_dispatch_on(tid) {
        None
    } else {
        arch::get_raw(tid).ok()
    };
    if let Some(regs) = regs {
        if let Some(site) = inject::find_site(pid, &regs, vdso) {
            let seccomp = thread_seccomp(pid, tid).unwrap_or(false);
            let extra = if seccomp {
                ptrace::OPT_SUSPEND_SECCOMP
            } else {
                0
            };
            if let Ok(mut inj) = Injection::begin(tid, site, extra, 0) {
                let _ = inj.syscall(
                    libc::SYS_wait4 as u64,
                    [
                        clone_in_target as u64,
                        0,
                        (libc::WNOHANG | libc::__WALL) as u64,
                        0,
                        0,
                        0,
                    ],
                    Instant::now() + Duration::from_secs(1),
                );
                let _ = inj.restore();
            }
        }
    }
    if ptrace::detach(tid, 0).is_err() {
        tracer::release_later([tid]);
    } else if group {
        super::freeze::wait_back_in_group_stop(pid, &[tid], &mut Vec::new());
    }
}
