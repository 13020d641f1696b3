//! The pause: stop every thread of the target together, read registers, let them go.
//!
//! Runs on the tracer thread. Only O(threads) work happens between the first
//! `PTRACE_INTERRUPT` and the last `PTRACE_DETACH`: listing `/proc/PID/task`, seizing,
//! collecting stop reports, reading register sets. Everything else is read after the target
//! runs again.
//!
//! Safety of the target: every seized thread is owned by [`Seized`], whose `Drop` detaches it
//! on every path (errors and panics included). A thread that was seized but never stopped
//! cannot be detached; it goes to [`tracer::release_later`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result};
use crate::flags::ContextFlags;
use crate::linux::arch;
use crate::linux::failpoint;
use crate::linux::mem::ProcMem;
use crate::linux::procfs;
use crate::linux::ptrace::{self, Tid, WaitStatus};
use crate::linux::tracer;
use crate::records::{
    AuxiliaryPage, AuxiliaryPageKind, GeneralRegisters, PhaseCost, ThreadContext, Warning,
};

use super::cost;
use super::va_clone::{self, CloneRequest, MadeClone};
use crate::linux::clock::Stopwatch;

/// What to stop and what to read while stopped.
#[derive(Debug)]
pub struct FreezeRequest {
    /// The target.
    pub pid: i32,
    /// Tasks not to seize (a zombie leader never stops).
    pub skip: Vec<Tid>,
    /// Register groups to read into a full context, if contexts were asked for.
    pub context: Option<(ContextFlags, bool)>,
    /// How long all threads together may take to stop.
    pub timeout: Duration,
    /// How many times `/proc/PID/task` is re-listed for newcomers.
    pub max_rounds: u32,
    /// Make a VA clone before letting the threads go.
    pub clone: Option<CloneRequest>,
    /// Copy each thread's stack (at most this many bytes from its stack pointer up) and TLS
    /// page.
    pub aux_stack_limit: Option<usize>,
    /// The target's mappings as `(start, end)`, sorted, read before the pause: a stack copy
    /// stops where the mapping holding the stack pointer ends.
    pub mappings: Vec<(u64, u64)>,
}

/// One stopped thread and what was read from it.
#[derive(Debug, Clone)]
pub struct FrozenThread {
    /// The tid.
    pub tid: Tid,
    /// The general registers (always read: they give the TLS base and the syscall).
    pub general: Option<GeneralRegisters>,
    /// The full context, when asked for.
    pub context: Option<ThreadContext>,
    /// The blocked-signal mask.
    pub sigmask: Option<u64>,
    /// Whether it reported a group-stop (the process was stopped by a signal).
    pub group_stopped: bool,
    /// When its registers were read.
    pub capture_time: SystemTime,
}

/// The result of a pause.
#[derive(Debug)]
pub struct Frozen {
    /// The threads that were stopped, ascending by tid.
    pub threads: Vec<FrozenThread>,
    /// From the first interrupt to the last detach.
    pub pause: Duration,
    /// Listing rounds until the thread set was stable.
    pub rounds: u32,
    /// Threads that vanished or could not be read.
    pub warnings: Vec<Warning>,
    /// The VA clone, if one was asked for.
    pub clone: Option<MadeClone>,
    /// Stack and TLS copies, if asked for.
    pub aux_pages: Option<Vec<AuxiliaryPage>>,
    /// The target's `/proc/PID/status` as it read while its threads were stopped (with a
    /// clone: the memory counters at the capture instant come from it), and the bytes of
    /// mappings of ours it counts (the clone's trampoline, mapped and resident).
    pub status_at_pause: Option<(Vec<u8>, u64)>,
    /// What each part of the pause cost.
    pub costs: FreezeCosts,
}

/// What the parts of a pause cost (the performance counters).
#[derive(Debug, Clone, Copy, Default)]
pub struct FreezeCosts {
    /// Stopping the threads, reading their registers, and letting them go.
    pub threads: PhaseCost,
    /// Copying the auxiliary pages.
    pub aux_pages: PhaseCost,
    /// Making the clone (the ranges copied for it, the trampoline, the injected `clone`).
    pub va_clone: PhaseCost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskState {
    /// Seized and interrupted; its stop has not been reported yet.
    Pending,
    /// In a ptrace stop; `group` if the stop was a group-stop.
    Stopped { group: bool },
    /// Exited, or not ours (detached at once).
    Gone,
}

/// The tasks seized so far. Dropping it detaches every stopped one.
struct Seized {
    pid: i32,
    tasks: HashMap<Tid, TaskState>,
    /// The tasks to wait for, in turn (may hold stale entries: the state in `tasks` rules).
    queue: VecDeque<Tid>,
    /// Auto-attached child *processes* of the target (not threads): let go at their stop.
    foreign: HashSet<Tid>,
    first_interrupt: Option<Instant>,
    /// Stopped tasks whose detach failed (killed while stopped: an exit report is queued).
    unreleased: Vec<Tid>,
    /// Set once every task was let go and no report can be left queued. Otherwise `Drop`
    /// hands the rest to [`tracer::release_later`].
    clean: bool,
}

impl Seized {
    fn new(pid: i32) -> Seized {
        Seized {
            pid,
            tasks: HashMap::new(),
            queue: VecDeque::new(),
            foreign: HashSet::new(),
            first_interrupt: None,
            unreleased: Vec::new(),
            clean: false,
        }
    }

    /// Records the state of `tid`; a task that becomes pending joins the wait queue.
    fn set(&mut self, tid: Tid, state: TaskState) {
        let old = self.tasks.insert(tid, state);
        if state == TaskState::Pending && old != Some(TaskState::Pending) {
            self.queue.push_back(tid);
        }
    }

    fn is_pending(&self, tid: Tid) -> bool {
        self.tasks.get(&tid) == Some(&TaskState::Pending)
    }

    /// The lowest pending tid (for error messages; O(n), off the hot path).
    fn first_pending(&self) -> Option<Tid> {
        self.tasks
            .iter()
            .filter(|(_, s)| **s == TaskState::Pending)
            .map(|(t, _)| *t)
            .min()
    }

    /// Seizes and interrupts `tid`. `Ok(false)` if it no longer exists. Another pss
    /// engine tracing it (a capture of the same target) is waited for until `deadline`.
    fn seize(&mut self, tid: Tid, deadline: Instant) -> Result<bool> {
        let mut first_eperm = None;
        loop {
            match ptrace::seize(tid, ptrace::OPT_TRACECLONE) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(false),
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                    if traced_by_us(self.pid, tid) {
                        // Auto-attached by PTRACE_O_TRACECLONE and listed before its attach
                        // stop was reported: it is ours already, and its stop will come.
                        self.set(tid, TaskState::Pending);
                        return Ok(true);
                    }
                    let since = *first_eperm.get_or_insert_with(Instant::now);
                    match classify_eperm(self.pid, tid, e, since, deadline) {
                        // The kernel refuses to attach to an exiting thread.
                        Eperm::ThreadExited => return Ok(false),
                        Eperm::Retry => continue,
                        Eperm::Error(e) => return Err(e),
                    }
                }
                Err(e) => {
                    return Err(Error::Ptrace {
                        request: "PTRACE_SEIZE",
                        pid: self.pid,
                        tid,
                        source: e,
                    })
                }
            }
        }
        self.first_interrupt.get_or_insert_with(Instant::now);
        self.set(tid, TaskState::Pending);
        match ptrace::interrupt(tid) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                // Exited between the two calls; its exit is still reported to us.
                Ok(true)
            }
            Err(e) => Err(Error::Ptrace {
                request: "PTRACE_INTERRUPT",
                pid: self.pid,
                tid,
                source: e,
            }),
        }
    }

    /// Collects stop reports until no seized task is pending, waiting on each task in turn.
    fn wait_stopped(
        &mut self,
        deadline: Instant,
        timeout: Duration,
        warnings: &mut Vec<Warning>,
    ) -> Result<()> {
        let mut misses = 0usize;
        let mut idle_rotations = 0u32;
        while let Some(tid) = self.queue.pop_front() {
            if !self.is_pending(tid) {
                continue;
            }
            match ptrace::wait_nohang(tid, tid == self.pid) {
                Ok(Some(status)) => {
                    misses = 0;
                    idle_rotations = 0;
                    self.on_report(tid, status, warnings)?;
                    if self.is_pending(tid) {
                        // Re-interrupted after a genuine signal: wait for it again.
                        self.queue.push_back(tid);
                    }
                }
                Ok(None) => {
                    self.queue.push_back(tid);
                    misses += 1;
                    if misses >= self.queue.len() {
                        // A whole rotation without news.
                        misses = 0;
                        if Instant::now() >= deadline {
                            return Err(Error::Timeout {
                                pid: self.pid,
                                tid: self.first_pending().unwrap_or(tid),
                                timeout_ms: timeout.as_millis() as u64,
                            });
                        }
                        idle_rotations += 1;
                        backoff(idle_rotations);
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => self.queue.push_back(tid),
                Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {
                    // No longer our tracee: it exited and was released.
                    self.set(tid, TaskState::Gone);
                    if tid == self.pid || !process_alive(self.pid) {
                        return Err(Error::ProcessExited { pid: self.pid });
                    }
                }
                Err(e) => {
                    return Err(Error::Ptrace {
                        request: "waitpid",
                        pid: self.pid,
                        tid,
                        source: e,
                    })
                }
            }
        }
        Ok(())
    }

    fn on_report(
        &mut self,
        tid: Tid,
        status: WaitStatus,
        warnings: &mut Vec<Warning>,
    ) -> Result<()> {
        match status {
            WaitStatus::LeaderExited => {
                self.set(tid, TaskState::Gone);
                tracer::leader_exited(tid);
                return Err(Error::ProcessExited { pid: self.pid });
            }
            WaitStatus::Exited(_) | WaitStatus::Signaled(_) => {
                self.set(tid, TaskState::Gone);
                if tid == self.pid || !process_alive(self.pid) {
                    return Err(Error::ProcessExited { pid: self.pid });
                }
                warnings.push(Warning {
                    tid: Some(tid),
                    fd: None,
                    message: "exited during the capture; not included".into(),
                });
            }
            WaitStatus::Stopped { sig, event } if event == ptrace::EVENT_STOP => {
                let group = ptrace::is_stop_signal(sig);
                match self.tasks.get(&tid) {
                    Some(TaskState::Pending) | None => {
                        if self.foreign.contains(&tid) {
                            // An auto-attached child process of the target, not a thread:
                            // let it go at once.
                            let _ = ptrace::detach(tid, 0);
                            self.set(tid, TaskState::Gone);
                        } else {
                            self.set(tid, TaskState::Stopped { group });
                        }
                    }
                    // A second report for a task already stopped (attach + interrupt of a
                    // group-stopped task): nothing to do.
                    Some(_) => {}
                }
            }
            WaitStatus::Stopped { event, .. } if event == ptrace::EVENT_CLONE => {
                // The reporting thread is stopped at the clone event; the new task is
                // auto-attached and will report its own stop.
                self.set(tid, TaskState::Stopped { group: false });
                if let Ok(child) = ptrace::event_msg(tid) {
                    let child = child as Tid;
                    if !self.tasks.contains_key(&child) {
                        if !self.is_our_thread(child) {
                            self.foreign.insert(child);
                        }
                        self.set(child, TaskState::Pending);
                    }
                }
            }
            WaitStatus::Stopped { sig, event: 0 } => {
                // A genuine signal arrived first: deliver it and ask again.
                let state = self.tasks.get(&tid).copied();
                if state == Some(TaskState::Pending) || state.is_none() {
                    let _ = ptrace::cont(tid, sig);
                    let _ = ptrace::interrupt(tid);
                    self.set(tid, TaskState::Pending);
                }
            }
            WaitStatus::Stopped { .. } => {
                self.set(tid, TaskState::Stopped { group: false });
            }
        }
        Ok(())
    }

    fn is_our_thread(&self, tid: Tid) -> bool {
        Path::new(&format!("/proc/{}/task/{tid}", self.pid)).exists()
    }

    /// The stopped tasks, ascending, each with whether it is in a group stop.
    fn stopped(&self) -> Vec<(Tid, bool)> {
        let mut v: Vec<(Tid, bool)> = self
            .tasks
            .iter()
            .filter_map(|(t, s)| match s {
                TaskState::Stopped { group } => Some((*t, *group)),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// Detaches every stopped task; returns when the last one was let go, and whether all
    /// of them could be (a task killed while stopped cannot, and its exit report stays
    /// queued for us).
    fn release(&mut self) -> (Instant, bool) {
        let mut all = true;
        for (&tid, state) in self.tasks.iter_mut() {
            all &= detach_stopped(tid, state, &mut self.unreleased);
        }
        (Instant::now(), all)
    }
}

/// Detaches `tid` if it is stopped and marks it gone; a failed detach (killed while
/// stopped) goes to `unreleased`. Returns whether it was let go (or needed nothing).
fn detach_stopped(tid: Tid, state: &mut TaskState, unreleased: &mut Vec<Tid>) -> bool {
    if !matches!(state, TaskState::Stopped { .. }) {
        return true;
    }
    *state = TaskState::Gone;
    if ptrace::detach(tid, 0).is_err() {
        unreleased.push(tid);
        return false;
    }
    true
}

impl Drop for Seized {
    fn drop(&mut self) {
        self.release();
        if !self.clean {
            // An error or panic path: tasks seized but never stopped (uninterruptible sleep,
            // vfork), or exits not collected. The tracer lets them go as soon as it can.
            let mut rest = std::mem::take(&mut self.unreleased);
            rest.extend(
                self.tasks
                    .iter()
                    .filter(|(_, s)| **s == TaskState::Pending)
                    .map(|(t, _)| *t),
            );
            tracer::release_later(rest);
        }
    }
}

/// Seizes and interrupts every thread of `pid` but those in `skip`, re-listing its tasks
/// until no new one appears (at most `max_rounds` times), and waits until all are stopped,
/// within `timeout`. The stopped set (dropping it lets them go) and the rounds it took.
fn stop_all(
    pid: i32,
    skip: &[Tid],
    timeout: Duration,
    max_rounds: u32,
    warnings: &mut Vec<Warning>,
) -> Result<(Seized, u32)> {
    let deadline = Instant::now() + timeout;
    let mut set = Seized::new(pid);
    let task_dir = format!("/proc/{pid}/task");
    let mut rounds = 0;
    loop {
        rounds += 1;
        let tids = procfs::list_numeric(pid, &task_dir).map_err(|e| match e {
            Error::NoSuchProcess { pid } => Error::ProcessExited { pid },
            e => e,
        })?;
        let mut new: Vec<Tid> = tids
            .into_iter()
            .filter(|t| !set.tasks.contains_key(t) && !skip.contains(t))
            .collect();
        // The leader first: two engines that meet on one target both start there, so the
        // second waits for the first before it holds any thread (and neither waits for a
        // thread the other holds while holding one it needs).
        new.sort_by_key(|&t| (t != pid, t));
        if new.is_empty() && rounds > 1 {
            return Ok((set, rounds));
        }
        if rounds > max_rounds {
            warnings.push(Warning {
                tid: None,
                fd: None,
                message: format!(
                    "threads kept appearing after {max_rounds} listing rounds; {} newest not captured",
                    new.len()
                ),
            });
            return Ok((set, rounds));
        }
        for tid in new {
            if !set.seize(tid, deadline)? {
                if tid == pid {
                    return Err(Error::ProcessExited { pid });
                }
                warnings.push(Warning {
                    tid: Some(tid),
                    fd: None,
                    message: "exited before it could be stopped; not included".into(),
                });
            }
        }
        set.wait_stopped(deadline, timeout, warnings)?;
    }
}

/// Stops every thread of `pid` (within `timeout`, waiting for a capture of it by another
/// engine), runs `job` with the stopped threads' tids, and lets them go — re-entering a
/// group stop they were in. For work no thread of the target may see happen, such as
/// reaping a clone's zombie from under a reaper that waits with `__WALL`.
pub(super) fn with_all_stopped<R>(
    pid: i32,
    timeout: Duration,
    job: impl FnOnce(&[Tid]) -> R,
) -> Result<R> {
    let mut warnings = Vec::new();
    let (mut set, _) = stop_all(pid, &[], timeout, 10, &mut warnings)?;
    let stopped = set.stopped();
    let tids: Vec<Tid> = stopped.iter().map(|(t, _)| *t).collect();
    let out = job(&tids);
    let (_, all_released) = set.release();
    set.clean = all_released && set.first_pending().is_none();
    let group: Vec<Tid> = stopped
        .iter()
        .filter(|(_, g)| *g)
        .map(|(t, _)| *t)
        .collect();
    wait_back_in_group_stop(pid, &group, &mut warnings);
    Ok(out)
}

/// Stops every thread of `req.pid`, reads what was asked, and lets them go.
pub fn freeze(req: FreezeRequest) -> Result<Frozen> {
    // The whole pause's work: what the auxiliary pages and the clone do not take is thread
    // work (stopping, reading, and letting go), so that no instant of the pause is in no
    // phase.
    let whole = Stopwatch::start();
    let mut costs = FreezeCosts::default();
    // Allocated now: the pause reads into it.
    let mut status_buf = Vec::with_capacity(if req.clone.is_some() { 8192 } else { 0 });
    let mut warnings = Vec::new();
    let (mut set, rounds) = stop_all(
        req.pid,
        &req.skip,
        req.timeout,
        req.max_rounds,
        &mut warnings,
    )?;
    failpoint::hit("seized");
    let stopped = set.stopped();
    let mut threads = Vec::with_capacity(stopped.len());
    let mut reader = arch::ContextReader::default();
    for (tid, group_stopped) in stopped {
        match read_thread(&mut reader, tid, req.context) {
            Ok((general, context, sigmask)) => threads.push(FrozenThread {
                tid,
                general: Some(general),
                context,
                sigmask,
                group_stopped,
                capture_time: SystemTime::now(),
            }),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => warnings.push(Warning {
                tid: Some(tid),
                fd: None,
                message: "killed while stopped; not included".into(),
            }),
            Err(e) => {
                warnings.push(Warning {
                    tid: Some(tid),
                    fd: None,
                    message: format!("registers could not be read: {e}"),
                });
                threads.push(FrozenThread {
                    tid,
                    general: None,
                    context: None,
                    sigmask: None,
                    group_stopped,
                    capture_time: SystemTime::now(),
                });
            }
        }
    }
    // The memory counters at the capture instant (the clone's own differ: a fork maps no
    // file page until it is touched). One read of a small file, O(1) in the kernel.
    let status_at_pause = req.clone.is_some().then(|| {
        let path = format!("/proc/{}/status", req.pid);
        procfs::read_at(&rustix::fs::CWD, &path, &mut status_buf).map(|()| status_buf)
    });
    // One /proc/PID/mem for everything copied from the stopped target (writable for the
    // clone's trampoline).
    let mem = (req.clone.is_some() || req.aux_stack_limit.is_some()).then(|| {
        let path = format!("/proc/{}/mem", req.pid);
        let opened = match req.clone {
            Some(_) => ProcMem::open_rw(req.pid),
            None => ProcMem::open(req.pid),
        };
        opened.map_err(|e| Error::from_proc_io(req.pid, path, e))
    });
    let sw = Stopwatch::start();
    let aux_pages = req.aux_stack_limit.map(|limit| match &mem {
        Some(Ok(mem)) => copy_aux_pages(req.pid, mem, &threads, limit, &req.mappings),
        _ => Vec::new(),
    });
    costs.aux_pages = cost(&sw);
    // The clone last: it takes the longest (the kernel copies the page tables).
    let sw = Stopwatch::start();
    let ours = req
        .clone
        .as_ref()
        .and_then(|c| c.trampoline.as_ref().ok())
        .map_or(0, |t| t.len);
    let clone = match (req.clone, mem) {
        (Some(c), Some(Ok(mem))) => {
            let tids: Vec<Tid> = threads.iter().map(|t| t.tid).collect();
            Some(va_clone::make(req.pid, &tids, c, &mem))
        }
        (Some(_), Some(Err(e))) => Some(Err(e)),
        _ => None,
    };
    costs.va_clone = cost(&sw);
    let first = set.first_interrupt;
    let group_stopped: Vec<Tid> = threads
        .iter()
        .filter(|t| t.group_stopped)
        .map(|t| t.tid)
        .collect();
    let (last, all_released) = set.release();
    costs.threads = cost(&whole) - costs.aux_pages - costs.va_clone;
    set.clean = all_released && set.first_pending().is_none();
    wait_back_in_group_stop(req.pid, &group_stopped, &mut warnings);
    let clone = clone.transpose()?;
    Ok(Frozen {
        threads,
        pause: first.map_or(Duration::ZERO, |f| last.duration_since(f)),
        rounds,
        warnings,
        clone,
        aux_pages,
        status_at_pause: status_at_pause
            .and_then(std::io::Result::ok)
            .map(|b| (b, ours)),
        costs,
    })
}

/// Copies, from the stopped target, each thread's stack from the page of its stack pointer
/// upward (at most `limit` bytes, less where its mapping ends) and the page at its TLS base:
/// all in as few `process_vm_readv` calls as the kernel allows (a thousand threads cost a
/// few calls, not two thousand `pread`s), with a `pread` of what it can for a range that
/// could not be read whole.
fn copy_aux_pages(
    pid: i32,
    mem: &ProcMem,
    threads: &[FrozenThread],
    limit: usize,
    mappings: &[(u64, u64)],
) -> Vec<AuxiliaryPage> {
    const PAGE: u64 = 4096;
    let mut wanted: Vec<(u32, u64, AuxiliaryPageKind, Vec<u8>)> = Vec::new();
    for t in threads {
        let Some(g) = &t.general else { continue };
        let sp = g.stack_pointer();
        let i = mappings.partition_point(|&(start, _)| start <= sp);
        let stack_len = match i.checked_sub(1).map(|i| mappings[i]) {
            Some((_, end)) if sp < end => limit.min((end - (sp & !(PAGE - 1))) as usize),
            _ => limit,
        };
        let tls = g.tls_base() & !(PAGE - 1);
        for (address, len, kind) in [
            (sp & !(PAGE - 1), stack_len, AuxiliaryPageKind::Stack),
            (tls, PAGE as usize, AuxiliaryPageKind::Tls),
        ] {
            if address != 0 {
                wanted.push((
                    t.tid as u32,
                    address,
                    kind,
                    vec![0u8; len.max(PAGE as usize)],
                ));
            }
        }
    }
    let mut ranges: Vec<(u64, &mut [u8])> = wanted
        .iter_mut()
        .map(|(_, a, _, b)| (*a, b.as_mut_slice()))
        .collect();
    let whole = crate::linux::mem::read_ranges(pid, &mut ranges);
    let captured = SystemTime::now();
    wanted
        .into_iter()
        .zip(whole)
        .filter_map(|((thread_id, address, kind, mut buf), whole)| {
            if !whole {
                // A short read stops at the end of the mapping: keep whole pages of what came.
                let n = mem.read_at(address, &mut buf).unwrap_or(0) & !(PAGE as usize - 1);
                buf.truncate(n);
            }
            (!buf.is_empty()).then_some(AuxiliaryPage {
                address,
                thread_id,
                kind,
                capture_time: captured,
                contents: buf,
            })
        })
        .collect()
}

/// After `PTRACE_DETACH` the kernel wakes each group-stopped thread so that it re-enters the
/// group stop; for a moment it shows as running (it never returns to user mode). Wait,
/// bounded, until they are all stopped again, so that the caller never observes a stopped
/// target as running.
pub(super) fn wait_back_in_group_stop(pid: i32, tids: &[Tid], warnings: &mut Vec<Warning>) {
    let deadline = Instant::now() + Duration::from_millis(200);
    for &tid in tids {
        loop {
            match procfs::stat_at(&format!("/proc/{pid}/task/{tid}/stat")) {
                Some(st) if st.state != b'T' && st.state != b't' => {}
                // Stopped again, or gone.
                _ => break,
            }
            if Instant::now() >= deadline {
                warnings.push(Warning {
                    tid: Some(tid),
                    fd: None,
                    message: "not yet back in its group stop when the capture returned".into(),
                });
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

type ThreadRegs = (GeneralRegisters, Option<ThreadContext>, Option<u64>);

fn read_thread(
    reader: &mut arch::ContextReader,
    tid: Tid,
    context: Option<(ContextFlags, bool)>,
) -> io::Result<ThreadRegs> {
    Ok(match context {
        Some((flags, extended)) => {
            let ctx = reader.read(tid, flags, extended)?;
            (ctx.general, Some(ctx), ptrace::sigmask(tid).ok())
        }
        // Without contexts only what thread entries need: TLS base and syscall.
        None => (arch::read_general(tid)?, None, None),
    })
}

/// Spin briefly (stops usually arrive within microseconds), then yield, then sleep.
fn backoff(polls: u32) {
    if polls < 64 {
        std::hint::spin_loop();
    } else if polls < 256 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(50));
    }
}

fn process_alive(pid: i32) -> bool {
    procfs::process_alive(pid, None)
}

fn tracer_of(pid: i32, tid: Tid) -> Option<i32> {
    procfs::status_at(&format!("/proc/{pid}/task/{tid}/status")).map(|s| s.tracer_pid)
}

fn traced_by_us(pid: i32, tid: Tid) -> bool {
    let me = rustix::thread::gettid().as_raw_nonzero().get();
    tracer_of(pid, tid) == Some(me)
}

enum Eperm {
    ThreadExited,
    /// Try the seize again: the tracer it met has gone, or is another pss engine that
    /// will let go.
    Retry,
    Error(Error),
}

/// `PTRACE_SEIZE` failed with EPERM (first at `since`): a task that is exiting (the kernel
/// refuses to attach to those), another tracer (a pss engine is waited for until
/// `deadline`, anything else is refused), a tracer that left meanwhile (retried for 20 ms),
/// or no permission.
fn classify_eperm(pid: i32, tid: Tid, e: io::Error, since: Instant, deadline: Instant) -> Eperm {
    if !process_alive(pid) {
        return Eperm::Error(Error::ProcessExited { pid });
    }
    let now = Instant::now();
    match tracer_of(pid, tid) {
        None => Eperm::ThreadExited,
        Some(0) if now < since + Duration::from_millis(20) => {
            std::thread::sleep(Duration::from_micros(100));
            Eperm::Retry
        }
        Some(0) => Eperm::Error(Error::PermissionDenied {
            pid,
            action: format!("trace thread {tid} of"),
            source: e,
        }),
        Some(t) if tracer::is_engine(t) && now < deadline => {
            std::thread::sleep(Duration::from_micros(200));
            Eperm::Retry
        }
        Some(t) if tracer::is_engine(t) => Eperm::Error(Error::Busy {
            pid,
            waited_ms: now.duration_since(since).as_millis() as u64,
        }),
        Some(tracer) => Eperm::Error(Error::AlreadyTraced { pid, tid, tracer }),
    }
}
