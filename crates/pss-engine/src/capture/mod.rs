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
use pss_types::records::{CaptureInfo, PerformanceCounters, PhaseCost, Warning};
pub(crate) use pss_types::{CaptureOptions, Target};

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

/// Runs a whole capture (in the engine process). `target` is never [`Target::Current`]:
/// the engine names its caller by pidfd.
pub(crate) fn capture(target: Target<'_>, opts: &CaptureOptions) -> Result<Captured> {
    let started = SystemTime::now();
    let total = Stopwatch::start();
    let flags = opts.flags;
    check_flags(flags)?;

    let (pid, pidfd) = resolve(target)?;
    let want_threads = flags.intersects(
        CaptureFlags::THREADS
            | CaptureFlags::THREAD_CONTEXT
            | CaptureFlags::THREAD_CONTEXT_EXTENDED,
    );
    let want_context =
        flags.intersects(CaptureFlags::THREAD_CONTEXT | CaptureFlags::THREAD_CONTEXT_EXTENDED);
    let want_clone = flags.contains(CaptureFlags::VA_CLONE);
    let want_aux = flags.contains(CaptureFlags::AUXILIARY_PAGES);

    // Preflight, target running.
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
    let must_stop = want_threads || want_clone || want_aux;
    let ours = |t| tracer::is_own_thread(t) || tracer::is_engine(t);
    if st.tracer_pid != 0 && must_stop && !ours(st.tracer_pid) {
        return Err(Error::AlreadyTraced {
            pid,
            tid: pid,
            tracer: st.tracer_pid,
        });
    }
    let clocks = Clocks {
        boot: clock::boot_time(),
        tck: clock::ticks_per_second(),
    };
    let mut warnings = without_data(flags);
    let exited = |e: Error| match e {
        Error::NoSuchProcess { pid } => Error::ProcessExited { pid },
        e => e,
    };
    let (clone_req, clone_found) = if want_clone {
        va_clone::refuse_strict(pid, st.seccomp).map_err(exited)?;
        let plan = va_clone::CopyPlan {
            forked_away_limit: opts.fork_copy_limit,
            forked_away: opts.forked_away,
            shared_limit: opts.shared_copy_limit,
        };
        let (req, found) = va_clone::preflight(pid, &mut dir, plan).map_err(exited)?;
        (Some(req), Some(found))
    } else {
        (None, None)
    };

    // Pause: threads, their registers, the clone.
    let mut perf = PerformanceCounters::default();
    let mut capture_pause = Duration::ZERO;
    let mut threads_stopped = 0;
    let mut seize_rounds = 0;
    let mut tls_of = HashMap::new();
    let mut made_clone = None;
    let mut ledger_entry = None;
    let mut aux_pages = None;
    let mut status_at_pause = None;
    let frozen = if !must_stop {
        None
    } else {
        let req = freeze::FreezeRequest {
            pid,
            skip: if zombie_leader { vec![pid] } else { Vec::new() },
            context: want_context.then_some((
                opts.context_flags,
                flags.contains(CaptureFlags::THREAD_CONTEXT_EXTENDED),
            )),
            timeout: opts.stop_timeout,
            max_rounds: opts.max_rounds.max(1),
            clone: clone_req,
            aux_stack_limit: want_aux.then_some(opts.aux_stack_limit),
            mappings: if want_aux {
                let mut mm = ProcDir::open_mm(pid).map_err(exited)?;
                let buf = mm.read("maps").map_err(exited)?;
                maps::parse(buf).map(|m| (m.start, m.end)).collect()
            } else {
                Vec::new()
            },
        };
        let (frozen, entry) = pause(pid, &pidfd, req)?;
        ledger_entry = entry;
        capture_pause = frozen.pause;
        threads_stopped = frozen.threads.len();
        seize_rounds = frozen.rounds;
        warnings.extend(frozen.warnings);
        made_clone = frozen.clone;
        aux_pages = frozen.aux_pages;
        status_at_pause = frozen.status_at_pause;
        perf.threads = frozen.costs.threads;
        perf.aux_pages = frozen.costs.aux_pages;
        perf.va_clone = frozen.costs.va_clone;
        Some(frozen.threads)
    };

    // After the pause: the target runs again. The clone, if any, is adopted first so that
    // every error path from here frees it.
    let (va_clone, dontfork_maps) = match (made_clone, clone_found) {
        (Some(mut made), Some(mut found)) => {
            warnings.extend(made.notes.iter().map(|n| Warning {
                tid: None,
                fd: None,
                message: n.clone(),
            }));
            let sw = Stopwatch::start();
            if !found.after.is_empty() {
                let (late, holes) = va_clone::copy_after_pause(pid, &found.after);
                let bytes: usize = late.iter().map(|c| c.data.len()).sum();
                warnings.push(Warning {
                    tid: None,
                    fd: None,
                    message: format!(
                        "{} forked-away range(s), {bytes} bytes, were copied after the pause from the running target: their bytes may differ from the capture instant",
                        late.len()
                    ),
                });
                made.copies.extend(late);
                found.holes.extend(holes);
            }
            let c = adopt_clone(pid, &pidfd, made, found.holes, flags, ledger_entry.take())?;
            perf.va_clone = perf.va_clone + cost(&sw);
            (Some(c), found.dontfork_maps)
        }
        _ => (None, Vec::new()),
    };
    let threads = match frozen {
        Some(frozen) if want_threads => {
            for t in &frozen {
                if let Some(g) = &t.general {
                    tls_of.insert(t.tid, g.tls_base());
                }
            }
            let sw = Stopwatch::start();
            let entry = process::entry_point(&mut dir);
            let list = threads::build(pid, frozen, zombie_leader, entry, &clocks, &mut warnings);
            perf.threads = perf.threads + cost(&sw);
            Some(list)
        }
        _ => None,
    };

    // Handles, VA space: from the clone (the capture instant) if there is one.
    let source = va_clone.as_ref().map_or(pid, |c| c.zombie.clone);
    let mut clone_dir = match &va_clone {
        Some(_) => Some(ProcDir::open(source)?),
        None => None,
    };
    let handles = if flags.contains(CaptureFlags::HANDLES) {
        let sw = Stopwatch::start();
        let h = handles::capture(source, flags, &tls_of, &mut warnings).map_err(exited)?;
        perf.handles = cost(&sw);
        Some(h)
    } else {
        None
    };
    if let Some(c) = &va_clone {
        let sw = Stopwatch::start();
        let (clone, site, seccomp, trampoline) = (source, c.site, c.seccomp, c.trampoline);
        tracer::run_on(Role::Keeper, move || {
            adopt::close_fds(clone, site, seccomp, trampoline)
        })??;
        perf.va_clone = perf.va_clone + cost(&sw);
    }
    let process = process::read(
        &mut dir,
        st.state,
        &clocks,
        status_at_pause.as_ref().map(|(b, n)| (&b[..], *n)),
    )
    .map_err(exited)?;
    let va_space = if flags.contains(CaptureFlags::VA_SPACE) {
        let sw = Stopwatch::start();
        let mut own_dir;
        let source_dir = match clone_dir.as_mut() {
            Some(d) => d,
            None => {
                own_dir = ProcDir::open_mm(pid).map_err(exited)?;
                &mut own_dir
            }
        };
        let v = va_space::capture(
            source_dir,
            flags.contains(CaptureFlags::VA_SPACE_SECTION_INFORMATION),
            &dontfork_maps,
        )
        .map_err(exited)?;
        perf.va_space = cost(&sw);
        Some(v)
    } else {
        None
    };

    // A process that exited during the capture leaves a zombie whose /proc files read as
    // empty: never hand that back as a snapshot.
    if let Some(fd) = &pidfd {
        if pidfd::has_exited(fd.as_fd()) {
            return Err(Error::ProcessExited { pid });
        }
    }

    perf.total = cost(&total);
    perf.pause = capture_pause;
    let data = SnapshotRecords {
        process,
        threads,
        handles,
        va_space,
        aux_pages,
        performance: flags
            .contains(CaptureFlags::CREATE_MEASURE_PERFORMANCE)
            .then_some(perf),
        capture: CaptureInfo {
            pid,
            flags,
            context_flags: opts.context_flags,
            started,
            pause: capture_pause,
            threads_stopped,
            seize_rounds,
            total: total.elapsed().0,
        },
        warnings,
    };
    Ok(Captured {
        data,
        clone: va_clone,
    })
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
                f.warnings.push(Warning {
                    tid: None,
                    fd: None,
                    message: format!(
                        "the clone trampoline's page could not be unmapped from the target: {why}"
                    ),
                });
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

/// The warnings for flags accepted without data ([`CaptureFlags::WITHOUT_DATA`]).
fn without_data(flags: CaptureFlags) -> Vec<Warning> {
    let said = |message: &str| Warning {
        tid: None,
        fd: None,
        message: message.into(),
    };
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
