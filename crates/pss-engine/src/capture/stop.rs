//! Stopping every thread of a process together and letting them go: the set of seized
//! tasks ([`Seized`], whose `Drop` detaches every stopped one on every path), the listing
//! rounds that catch threads made meanwhile ([`stop_all`]), and the wait for a group stop to
//! be re-entered. The pause ([`super::freeze`]) and the free's all-stopped reap
//! ([`super::reap`]) are built on it. Runs on the tracer thread.
//!
//! A thread that was seized but never stopped cannot be detached; it goes to
//! [`tracer::release_later`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use pss_sys::procfs;
use pss_trace::ptrace::{self, Tid, WaitStatus};
use pss_trace::tracer;
use pss_types::error::{Error, Result};
use pss_types::records::Warning;

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
pub(super) struct Seized {
    pid: i32,
    tasks: HashMap<Tid, TaskState>,
    /// The tasks to wait for, in turn (may hold stale entries: the state in `tasks` rules).
    queue: VecDeque<Tid>,
    /// Auto-attached child *processes* of the target (not threads): let go at their stop.
    foreign: HashSet<Tid>,
    pub(super) first_interrupt: Option<Instant>,
    /// Stopped tasks whose detach failed (killed while stopped: an exit report is queued).
    unreleased: Vec<Tid>,
    /// Set once every task was let go and no report can be left queued. Otherwise `Drop`
    /// hands the rest to [`tracer::release_later`].
    pub(super) clean: bool,
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
    pub(super) fn first_pending(&self) -> Option<Tid> {
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
                warnings.push(Warning::thread(
                    tid,
                    "exited during the capture; not included",
                ));
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
    pub(super) fn stopped(&self) -> Vec<(Tid, bool)> {
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
    pub(super) fn release(&mut self) -> (Instant, bool) {
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
pub(super) fn stop_all(
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
            warnings.push(Warning::new(format!(
                "threads kept appearing after {max_rounds} listing rounds; {} newest not captured",
                new.len()
            )));
            return Ok((set, rounds));
        }
        for tid in new {
            if !set.seize(tid, deadline)? {
                if tid == pid {
                    return Err(Error::ProcessExited { pid });
                }
                warnings.push(Warning::thread(
                    tid,
                    "exited before it could be stopped; not included",
                ));
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
                warnings.push(Warning::thread(
                    tid,
                    "not yet back in its group stop when the capture returned",
                ));
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }
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

pub(super) enum Eperm {
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
pub(super) fn classify_eperm(
    pid: i32,
    tid: Tid,
    e: io::Error,
    since: Instant,
    deadline: Instant,
) -> Eperm {
    if !process_alive(pid) {
        return Eperm::Error(Error::ProcessExited { pid });
    }
    let now = Instant::now();
    let status = procfs::status_at(&format!("/proc/{pid}/task/{tid}/status"));
    // A thread whose exit has begun (its exit state set: a zombie leader waiting for the
    // other threads, a thread being reaped) cannot be attached to, and has nothing to read.
    if status
        .as_ref()
        .is_some_and(|s| matches!(s.state, b'Z' | b'X'))
    {
        return Eperm::ThreadExited;
    }
    match status.map(|s| s.tracer_pid) {
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
