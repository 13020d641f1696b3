//! The capture pipeline: preflight (target running) → pause (threads stopped together) →
//! after (target running again: process, threads' statistics, handles, VA space).
//!
//! It runs in the engine process, never in a caller's: everything here
//! traces. [`Target`] and [`CaptureOptions`] are what callers fill in.

mod adopt;
mod freeze;
mod handles;
pub(crate) mod held;
mod injectable;
pub(crate) mod ledger;
mod one_by_one;
pub(crate) mod one_thread;
mod priority;
mod process;
pub(crate) mod reap;
mod stop;
mod threads;
mod trampoline;
mod va_clone;
mod va_space;

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime};

use pss_sys::clock::{self, Stopwatch};
use pss_sys::procfs::{maps, status, ProcDir};
use pss_sys::{pidfd, procfs};
use pss_trace::statedir::TargetLock;
use pss_trace::tracer::{self, Role};
use pss_trace::{cgroup, failpoint};
use pss_types::error::{Error, Result};
use pss_types::flags::CaptureFlags;
use pss_types::records::SnapshotRecords;
use pss_types::records::{
    CaptureInfo, HandleEntry, MemoryRegion, PerformanceCounters, PhaseCost, ThreadEntry,
    ThreadRead, Warning,
};
pub(crate) use pss_types::{CaptureOptions, Target, ThreadReading};

use held::HeldClone;
use trampoline::Trampoline;

/// Boot time and clock-tick rate, read once per capture.
pub(crate) struct Clocks {
    boot: SystemTime,
    tck: u64,
}

/// What a capture produced: the records, and the clone the engine now holds.
pub(crate) struct Captured {
    /// The snapshot's records (without a clone: that is `clone`).
    pub data: SnapshotRecords,
    /// The VA clone, if one was asked for.
    pub clone: Option<HeldClone>,
}

/// What the capture flags ask for, in the terms the stages use.
#[derive(Debug, Clone, Copy)]
struct Wants {
    threads: bool,
    context: bool,
    clone: bool,
    aux: bool,
}

impl Wants {
    fn of(flags: CaptureFlags) -> Wants {
        let context =
            flags.intersects(CaptureFlags::THREAD_CONTEXT | CaptureFlags::THREAD_CONTEXT_EXTENDED);
        Wants {
            threads: context || flags.contains(CaptureFlags::THREADS),
            context,
            clone: flags.contains(CaptureFlags::VA_CLONE),
            aux: flags.contains(CaptureFlags::AUXILIARY_PAGES),
        }
    }

    /// Whether any thread must be stopped.
    fn stop(self) -> bool {
        self.threads || self.clone || self.aux
    }
}

/// One capture in progress: what it was asked, and the warnings and costs gathered so far.
struct Capture<'o> {
    pid: i32,
    pidfd: Option<OwnedFd>,
    opts: &'o CaptureOptions,
    wants: Wants,
    warnings: Vec<Warning>,
    perf: PerformanceCounters,
}

/// What the preflight found, with the target running.
struct Checked {
    dir: ProcDir,
    state: u8,
    zombie_leader: bool,
    clocks: Clocks,
    /// With a clone: what the pause needs to make it…
    clone_request: Option<va_clone::CloneRequest>,
    /// …and what else the preflight found for it.
    clone_found: Option<va_clone::Preflight>,
}

/// A clone adopted after the pause, with the target's `MADV_DONTFORK` `maps` lines (which
/// the clone lacks).
type Adopted = (HeldClone, Vec<u8>);

/// Runs a whole capture (in the engine process): the preflight with the target running,
/// the pause, the clone's adoption, then what is read once the target runs again.
/// `target` is never [`Target::Current`]: the engine names its caller by pidfd.
pub(crate) fn capture(target: Target<'_>, opts: &CaptureOptions) -> Result<Captured> {
    let started = SystemTime::now();
    let total = Stopwatch::start();
    check_flags(opts.flags)?;
    check_reading(opts)?;
    let (pid, pidfd) = resolve(target)?;
    let mut c = Capture {
        pid,
        pidfd,
        opts,
        wants: Wants::of(opts.flags),
        warnings: without_data(opts.flags),
        perf: PerformanceCounters::default(),
    };
    let mut checked = c.preflight()?;
    let (mut frozen, ledger) = c.pause(&mut checked)?;
    let clone = match frozen.as_mut().and_then(|f| f.clone.take()) {
        Some(made) => Some(c.adopt(&mut checked, made, ledger)?),
        None => None,
    };
    c.after(checked, frozen, clone, started, total)
}

impl Capture<'_> {
    /// Checks the target can be captured as asked and gathers what the pause needs, the
    /// target running.
    fn preflight(&mut self) -> Result<Checked> {
        let pid = self.pid;
        let mut dir = ProcDir::open(pid)?;
        let st = status::parse(dir.read("status")?);
        if st.tgid != pid {
            return Err(Error::NotAProcess {
                tid: pid,
                tgid: st.tgid,
            });
        }
        let zombie_leader = st.state == b'Z' && st.threads > 1;
        if matches!(st.state, b'Z' | b'X') && !zombie_leader {
            return Err(Error::Zombie { pid });
        }
        // A tracer inside our own process is this engine, busy with another capture of the
        // same target; another pss engine is busy with one: either way the pause waits its
        // turn. Anything else is a debugger, refused at once.
        let ours = |t| tracer::is_own_thread(t) || tracer::is_engine(t);
        if st.tracer_pid != 0 && self.wants.stop() && !ours(st.tracer_pid) {
            return Err(Error::AlreadyTraced {
                pid,
                tid: pid,
                tracer: st.tracer_pid,
            });
        }
        let (clone_request, clone_found) = if self.wants.clone {
            va_clone::refuse_strict(pid, st.seccomp).map_err(exited)?;
            let plan = va_clone::CopyPlan {
                forked_away_limit: self.opts.fork_copy_limit,
                forked_away: self.opts.forked_away,
                shared_limit: self.opts.shared_copy_limit,
            };
            let (req, found) = va_clone::preflight(pid, &mut dir, plan).map_err(exited)?;
            (Some(req), Some(found))
        } else {
            (None, None)
        };
        let clocks = Clocks {
            boot: clock::boot_time(),
            tck: clock::ticks_per_second(),
        };
        Ok(Checked {
            dir,
            state: st.state,
            zombie_leader,
            clocks,
            clone_request,
            clone_found,
        })
    }

    /// Stops every thread, reads their registers (and stacks), makes the clone, lets them
    /// go — when anything must be stopped. The pause's result and the clone's ledger file.
    fn pause(
        &mut self,
        checked: &mut Checked,
    ) -> Result<(Option<freeze::Frozen>, Option<ledger::Entry>)> {
        if !self.wants.stop() {
            return Ok((None, None));
        }
        let (pid, opts, wants) = (self.pid, self.opts, self.wants);
        let mappings = if wants.aux {
            let mut mm = ProcDir::open_mm(pid).map_err(exited)?;
            let buf = mm.read("maps").map_err(exited)?;
            maps::parse(buf).map(|m| (m.start, m.end)).collect()
        } else {
            Vec::new()
        };
        let extended = opts.flags.contains(CaptureFlags::THREAD_CONTEXT_EXTENDED);
        let skip = if checked.zombie_leader {
            vec![pid]
        } else {
            Vec::new()
        };
        if opts.thread_reading == ThreadReading::OneByOne {
            let req = one_by_one::OneByOneRequest {
                pid,
                skip,
                only: opts.only_threads.iter().map(|&t| t as i32).collect(),
                context: wants.context.then_some((opts.context_flags, extended)),
                timeout: opts.stop_timeout,
                aux_stack_limit: wants.aux.then_some(opts.aux_stack_limit),
                mappings,
            };
            let mut frozen = locked(pid, &self.pidfd, opts.stop_timeout, move || {
                one_by_one::read_threads(req)
            })?;
            self.warnings.append(&mut frozen.warnings);
            self.perf.threads = frozen.costs.threads;
            self.perf.aux_pages = frozen.costs.aux_pages;
            return Ok((Some(frozen), None));
        }
        let req = freeze::FreezeRequest {
            pid,
            skip,
            context: wants.context.then_some((opts.context_flags, extended)),
            timeout: opts.stop_timeout,
            max_rounds: opts.max_rounds.max(1),
            clone: checked.clone_request.take(),
            aux_stack_limit: wants.aux.then_some(opts.aux_stack_limit),
            mappings,
        };
        let (mut frozen, ledger) = pause(pid, &self.pidfd, req)?;
        self.warnings.append(&mut frozen.warnings);
        self.perf.threads = frozen.costs.threads;
        self.perf.aux_pages = frozen.costs.aux_pages;
        self.perf.va_clone = frozen.costs.va_clone;
        Ok((Some(frozen), ledger))
    }

    /// Adopts the clone the pause made (after it, first thing: every later error frees
    /// it), copying the forked-away ranges left for after the pause.
    fn adopt(
        &mut self,
        checked: &mut Checked,
        mut made: va_clone::MadeClone,
        ledger: Option<ledger::Entry>,
    ) -> Result<Adopted> {
        let mut found = checked.clone_found.take().unwrap_or_default();
        self.warnings
            .extend(made.notes.iter().map(|n| Warning::new(n.clone())));
        let sw = Stopwatch::start();
        if !found.after.is_empty() {
            let (late, holes) = va_clone::copy_after_pause(self.pid, &found.after);
            let bytes: usize = late.iter().map(|c| c.data.len()).sum();
            self.warnings.push(Warning::new(format!(
                "{} forked-away range(s), {bytes} bytes, were copied after the pause from the running target: their bytes may differ from the capture instant",
                late.len()
            )));
            made.copies.extend(late);
            found.holes.extend(holes);
        }
        let flags = self.opts.flags;
        let clone = adopt_clone(self.pid, &self.pidfd, made, found.holes, flags, ledger)?;
        self.perf.va_clone = self.perf.va_clone + cost(&sw);
        Ok((clone, found.dontfork_maps))
    }

    /// What is read once the target runs again — handles and the VA space from the clone
    /// (the capture instant) if there is one — and the records put together.
    fn after(
        mut self,
        mut checked: Checked,
        frozen: Option<freeze::Frozen>,
        clone: Option<Adopted>,
        started: SystemTime,
        total: Stopwatch,
    ) -> Result<Captured> {
        let pid = self.pid;
        let (pause, stopped, rounds) = frozen.as_ref().map_or((Duration::ZERO, 0, 0), |f| {
            let stopped = f.threads.iter().filter(|t| t.read != ThreadRead::Blocked);
            (f.pause, stopped.count(), f.rounds)
        });
        let (mut status_at_pause, mut aux_pages) = (None, None);
        let frozen_threads = frozen.map(|f| {
            status_at_pause = f.status_at_pause;
            aux_pages = f.aux_pages;
            f.threads
        });
        let (threads, tls_of) = self.threads(&mut checked, frozen_threads);
        let (held, dontfork_maps) = match clone {
            Some((h, m)) => (Some(h), m),
            None => (None, Vec::new()),
        };
        let handles = self.handles(held.as_ref(), &tls_of)?;
        let at_pause = status_at_pause.as_ref().map(|(b, n)| (&b[..], *n));
        let process = process::read(&mut checked.dir, checked.state, &checked.clocks, at_pause)
            .map_err(exited)?;
        let va_space = self.va_space(held.as_ref(), &dontfork_maps)?;
        // A process that exited during the capture leaves a zombie whose /proc files read
        // as empty: never hand that back as a snapshot.
        if self
            .pidfd
            .as_ref()
            .is_some_and(|fd| pidfd::has_exited(fd.as_fd()))
        {
            return Err(Error::ProcessExited { pid });
        }
        self.perf.total = cost(&total);
        self.perf.pause = pause;
        let flags = self.opts.flags;
        let data = SnapshotRecords {
            process,
            threads,
            handles,
            va_space,
            aux_pages,
            performance: flags
                .contains(CaptureFlags::CREATE_MEASURE_PERFORMANCE)
                .then_some(self.perf),
            capture: CaptureInfo {
                pid,
                flags,
                context_flags: self.opts.context_flags,
                started,
                pause,
                threads_stopped: stopped,
                seize_rounds: rounds,
                total: total.elapsed().0,
            },
            warnings: self.warnings,
        };
        Ok(Captured { data, clone: held })
    }

    /// The thread entries (if asked for), and each stopped thread's TLS base (for thread
    /// pidfds among the handles).
    fn threads(
        &mut self,
        checked: &mut Checked,
        frozen: Option<Vec<freeze::FrozenThread>>,
    ) -> (Option<Vec<ThreadEntry>>, HashMap<i32, u64>) {
        let Some(frozen) = frozen.filter(|_| self.wants.threads) else {
            return (None, HashMap::new());
        };
        let tls_of = frozen
            .iter()
            .filter_map(|t| Some((t.tid, t.general.as_ref()?.tls_base())))
            .collect();
        let sw = Stopwatch::start();
        let entry = process::entry_point(&mut checked.dir);
        let (pid, leader) = (self.pid, checked.zombie_leader);
        let list = threads::build(
            pid,
            frozen,
            leader,
            entry,
            &checked.clocks,
            &mut self.warnings,
        );
        self.perf.threads = self.perf.threads + cost(&sw);
        (Some(list), tls_of)
    }

    /// The handles (if asked for), from the clone if there is one; then the clone's fds
    /// are closed inside it.
    fn handles(
        &mut self,
        clone: Option<&HeldClone>,
        tls_of: &HashMap<i32, u64>,
    ) -> Result<Option<Vec<HandleEntry>>> {
        let flags = self.opts.flags;
        let source = clone.map_or(self.pid, |c| c.zombie.clone);
        let handles = if flags.contains(CaptureFlags::HANDLES) {
            let sw = Stopwatch::start();
            let h = handles::capture(source, flags, tls_of, &mut self.warnings).map_err(exited)?;
            self.perf.handles = cost(&sw);
            Some(h)
        } else {
            None
        };
        if let Some(c) = clone {
            let sw = Stopwatch::start();
            let (site, seccomp, trampoline) = (c.site, c.seccomp, c.trampoline);
            tracer::run_on(Role::Keeper, move || {
                adopt::close_fds(source, site, seccomp, trampoline)
            })??;
            self.perf.va_clone = self.perf.va_clone + cost(&sw);
        }
        Ok(handles)
    }

    /// The VA space (if asked for), from the clone if there is one, with the target's
    /// `MADV_DONTFORK` mappings merged back in.
    fn va_space(
        &mut self,
        clone: Option<&HeldClone>,
        dontfork_maps: &[u8],
    ) -> Result<Option<Vec<MemoryRegion>>> {
        let flags = self.opts.flags;
        if !flags.contains(CaptureFlags::VA_SPACE) {
            return Ok(None);
        }
        let sw = Stopwatch::start();
        let mut dir = match clone {
            Some(c) => ProcDir::open(c.zombie.clone)?,
            None => ProcDir::open_mm(self.pid).map_err(exited)?,
        };
        let sections = flags.contains(CaptureFlags::VA_SPACE_SECTION_INFORMATION);
        let v = va_space::capture(&mut dir, sections, dontfork_maps).map_err(exited)?;
        self.perf.va_space = cost(&sw);
        Ok(Some(v))
    }
}

/// An error reading the target's `/proc` that says it is gone: it exited during the
/// capture.
fn exited(e: Error) -> Error {
    match e {
        Error::NoSuchProcess { pid } => Error::ProcessExited { pid },
        e => e,
    }
}

/// The pause, its turn taken: clones that dead engines left in the target are reaped
/// first, then the target's lock (across engines) is held while its threads are stopped.
/// With a clone, its ledger file is started before and returned.
fn pause(
    pid: i32,
    pidfd: &Option<OwnedFd>,
    mut req: freeze::FreezeRequest,
) -> Result<(freeze::Frozen, Option<ledger::Entry>)> {
    ledger::sweep(Some(pid));
    // The trampoline is mapped before the pause and unmapped after it: the pause pays for
    // neither syscall.
    let mut trampoline = None;
    let mut stuck = None;
    if let Some(c) = req.clone.as_mut() {
        c.trampoline = Trampoline::map(pid);
        trampoline = c.trampoline.as_ref().ok().copied();
        stuck = Some(c.stuck.clone());
    }
    let (frozen, entry) = locked_freeze(pid, pidfd, req);
    let stuck = stuck.and_then(|s| *s.lock().unwrap_or_else(|p| p.into_inner()));
    if let Some(tid) = stuck {
        // A thread is still inside the injected clone, and returns through the trampoline
        // when it completes: the page stays, and the ledger keeps the clone to come.
        if let Some(entry) = entry {
            entry.stuck(tid, trampoline);
        }
        return Err(frozen
            .err()
            .unwrap_or_else(|| Error::Internal("a clone stuck yet made".into())));
    }
    let unmapped = trampoline.map(|t| t.unmap(pid));
    match frozen {
        Ok(mut f) => {
            if let Some(Err(why)) = unmapped {
                f.warnings.push(Warning::new(format!(
                    "the clone trampoline's page could not be unmapped from the target: {why}"
                )));
            }
            Ok((f, entry))
        }
        Err(e) => {
            if let Some(entry) = entry {
                entry.settle();
            }
            Err(e)
        }
    }
}

/// [`freeze::freeze`] under the target's lock, with the clone's ledger file started first.
fn locked_freeze(
    pid: i32,
    pidfd: &Option<OwnedFd>,
    req: freeze::FreezeRequest,
) -> (Result<freeze::Frozen>, Option<ledger::Entry>) {
    let asked = Instant::now();
    let Ok(_turn) = TargetLock::acquire(pidfd::identity(pid), asked + req.timeout) else {
        let waited_ms = asked.elapsed().as_millis() as u64;
        return (Err(Error::Busy { pid, waited_ms }), None);
    };
    let (role, entry) = match req.clone {
        Some(_) => (Role::Keeper, ledger::intent(pid)),
        None => (Role::Capture, None),
    };
    let frozen = tracer::run_on(role, move || freeze::freeze(req)).and_then(|r| r);
    // An injected syscall fails in odd ways when the whole process is dying.
    let frozen = frozen.map_err(|e| match pidfd {
        Some(fd) if pidfd::has_exited(fd.as_fd()) => Error::ProcessExited { pid },
        _ => e,
    });
    (frozen, entry)
}

/// Runs `read` on the tracer thread under the target's lock (waiting up to `timeout` for
/// another engine's capture of it to end).
fn locked<R: Send + 'static>(
    pid: i32,
    pidfd: &Option<OwnedFd>,
    timeout: Duration,
    read: impl FnOnce() -> Result<R> + Send + 'static,
) -> Result<R> {
    let asked = Instant::now();
    let Ok(_turn) = TargetLock::acquire(pidfd::identity(pid), asked + timeout) else {
        let waited_ms = asked.elapsed().as_millis() as u64;
        return Err(Error::Busy { pid, waited_ms });
    };
    tracer::run_on(Role::Capture, read)
        .and_then(|r| r)
        .map_err(|e| match pidfd {
            Some(fd) if pidfd::has_exited(fd.as_fd()) => Error::ProcessExited { pid },
            _ => e,
        })
}

/// Turns a clone made during the pause into a [`HeldClone`] (whose drop frees it), then
/// adopts it: `EXITKILL`, `oom_score_adj` 1000, and the cgroup move for `BREAKAWAY`.
fn adopt_clone(
    pid: i32,
    target_pidfd: &Option<OwnedFd>,
    made: va_clone::MadeClone,
    mut holes: Vec<pss_types::records::MemoryHole>,
    flags: CaptureFlags,
    mut ledger: Option<ledger::Entry>,
) -> Result<HeldClone> {
    holes.extend(made.failed_copies.iter().copied());
    let start_of = |p: i32| procfs::stat_at(&format!("/proc/{p}/stat")).map_or(0, |s| s.starttime);
    let zombie = reap::Zombie {
        target: pid,
        target_start: start_of(pid),
        clone: made.pid,
        clone_in_target: made.pid_in_target,
        clone_start: start_of(made.pid),
    };
    if let Some(e) = ledger.as_mut() {
        e.made(&zombie);
    }
    let clone_fd = match pidfd::open(made.pid) {
        Ok(fd) => fd,
        Err(e) => {
            // Free it by hand: there is no HeldClone to do it.
            let z = zombie.clone();
            let left = tracer::run_on(Role::Keeper, move || reap::free(z, false));
            if let (Some(entry), Ok(reap::Reaped::Gone)) = (ledger, left) {
                entry.done();
            }
            return Err(e);
        }
    };
    let target_pidfd = match target_pidfd {
        Some(fd) => fd.try_clone().ok(),
        None => None,
    };
    let clone = HeldClone {
        zombie,
        target_pidfd,
        pidfd: clone_fd,
        site: made.site,
        seccomp: made.seccomp,
        trampoline: made.trampoline,
        copies: made.copies,
        holes,
        ledger,
    };
    failpoint::hit("adopt");
    let clone_pid = clone.zombie.clone;
    tracer::run_on(Role::Keeper, move || adopt::adopt(clone_pid))??;
    // The clone, not the target, is what the OOM killer should pick first.
    let _ = std::fs::write(format!("/proc/{clone_pid}/oom_score_adj"), "1000");
    if flags.intersects(CaptureFlags::CREATE_BREAKAWAY | CaptureFlags::CREATE_BREAKAWAY_OPTIONAL) {
        if let Err(e) = cgroup::move_to_ours(clone_pid) {
            if !flags.contains(CaptureFlags::CREATE_BREAKAWAY_OPTIONAL) {
                return Err(e);
            }
        }
    }
    Ok(clone)
}

/// What the phase `sw` measured cost so far.
fn cost(sw: &Stopwatch) -> PhaseCost {
    let (wall, cycles) = sw.elapsed();
    PhaseCost { cycles, wall }
}

/// Refuses flags this build does not implement, naming them (those accepted without data
/// are not refused: see [`without_data`]).
fn check_flags(flags: CaptureFlags) -> Result<()> {
    let unsupported = flags - CaptureFlags::SUPPORTED - CaptureFlags::WITHOUT_DATA;
    if unsupported.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = unsupported
        .iter()
        .map(|f| match f.cli_name() {
            Some(n) => n.to_string(),
            None => format!("{:#x}", f.bits()),
        })
        .collect();
    Err(Error::NotSupported {
        what: format!(
            "capture flag(s) {} (docs/mapping.md lists what each flag captures on Linux)",
            names.join(", ")
        ),
    })
}

/// Refuses a one-by-one reading with a VA clone (which needs every thread stopped
/// together), and a thread list without a one-by-one reading.
fn check_reading(opts: &CaptureOptions) -> Result<()> {
    match opts.thread_reading {
        ThreadReading::OneByOne if opts.flags.contains(CaptureFlags::VA_CLONE) => {
            Err(Error::InvalidParameter(
                "a VA clone needs every thread stopped together: threads cannot be read one by one with PSS_CAPTURE_VA_CLONE".into(),
            ))
        }
        ThreadReading::Together if !opts.only_threads.is_empty() => {
            Err(Error::InvalidParameter(
                "a list of threads to read is for threads read one by one".into(),
            ))
        }
        _ => Ok(()),
    }
}

/// The warnings for flags accepted without data ([`CaptureFlags::WITHOUT_DATA`]).
fn without_data(flags: CaptureFlags) -> Vec<Warning> {
    let said = |message: &str| Warning::new(message);
    let mut out = Vec::new();
    if flags.contains(CaptureFlags::HANDLE_TRACE) {
        out.push(said("PSS_CAPTURE_HANDLE_TRACE: Linux keeps no record of a process's fd operations, so there is no handle trace; its query answers not found, as on Windows for a process without handle tracing enabled"));
    }
    if flags.contains(CaptureFlags::IPT_TRACE) {
        out.push(said("PSS_CAPTURE_IPT_TRACE: no Intel Processor Trace is captured on Linux; nothing was recorded"));
    }
    out
}

/// The pid of the target, and a pidfd to tell whether it exited during the capture.
fn resolve(target: Target<'_>) -> Result<(i32, Option<OwnedFd>)> {
    match target {
        Target::Pid(pid) if pid > 0 => Ok((pid, Some(pidfd::open(pid)?))),
        Target::Pid(pid) => Err(Error::NoSuchProcess { pid }),
        Target::PidFd(fd) => {
            let pid = pidfd::pid_of(fd)?;
            let own = fd
                .try_clone_to_owned()
                .map_err(|e| Error::Internal(format!("cannot duplicate the pidfd: {e}")))?;
            Ok((pid, Some(own)))
        }
        Target::Current => Err(Error::Internal(
            "the engine was asked to capture itself".into(),
        )),
    }
}
