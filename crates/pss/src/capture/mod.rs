//! The capture pipeline: preflight (target running) → pause (threads stopped together) →
//! after (target running again: process, threads' statistics, handles, VA space).

mod freeze;
mod handles;
mod priority;
mod process;
mod threads;
mod va_space;

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::flags::{CaptureFlags, ContextFlags};
use crate::linux::clock::{self, Stopwatch};
use crate::linux::procfs::{self, status, ProcDir};
use crate::linux::{pidfd, tracer};
use crate::records::{CaptureInfo, PerformanceCounters, PhaseCost, Warning};
use crate::snapshot::SnapshotData;

/// The process to capture.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A process by pid (in the caller's pid namespace).
    Pid(i32),
    /// A process by pidfd: the capture is of exactly that process, never a reused pid.
    PidFd(BorrowedFd<'a>),
    /// The calling process (Windows' `GetCurrentProcess()`).
    Current,
}

impl From<i32> for Target<'_> {
    fn from(pid: i32) -> Self {
        Target::Pid(pid)
    }
}

/// Everything a capture can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureOptions {
    /// What to capture (`PssCaptureSnapshot`'s `CaptureFlags`).
    pub flags: CaptureFlags,
    /// Which register groups to capture (`ThreadContextFlags`).
    pub context_flags: ContextFlags,
    /// How long the threads together may take to stop before the capture gives up and
    /// releases the target.
    pub stop_timeout: Duration,
    /// How many times the thread list is re-read for threads created during the pause.
    pub max_rounds: u32,
}

impl CaptureOptions {
    /// Options with the default timeout (2 s) and rounds (10).
    pub fn new(flags: CaptureFlags, context_flags: ContextFlags) -> CaptureOptions {
        CaptureOptions {
            flags,
            context_flags,
            stop_timeout: Duration::from_secs(2),
            max_rounds: 10,
        }
    }
}

/// Boot time and clock-tick rate, read once per capture.
pub(crate) struct Clocks {
    boot: SystemTime,
    tck: u64,
}

/// Runs a whole capture.
pub(crate) fn capture(target: Target<'_>, opts: &CaptureOptions) -> Result<SnapshotData> {
    let started = SystemTime::now();
    let total = Stopwatch::start();
    let flags = opts.flags;
    check_flags(flags)?;

    let self_pid = std::process::id() as i32;
    let (pid, pidfd) = resolve(target)?;
    let is_self = pid == self_pid;
    let want_threads = flags.intersects(
        CaptureFlags::THREADS
            | CaptureFlags::THREAD_CONTEXT
            | CaptureFlags::THREAD_CONTEXT_EXTENDED,
    );
    let want_context =
        flags.intersects(CaptureFlags::THREAD_CONTEXT | CaptureFlags::THREAD_CONTEXT_EXTENDED);
    if is_self && want_context {
        return Err(Error::NotSupported {
            what: "thread contexts of the calling process (a thread cannot ptrace its own process; planned with the VA clone)".into(),
        });
    }

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
    // A tracer inside our own process is the engine itself, busy with another capture of
    // the same target: the freeze queues behind it.
    if st.tracer_pid != 0 && want_threads && !is_self && !tracer::is_own_thread(st.tracer_pid) {
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
    let mut warnings: Vec<Warning> = Vec::new();
    let exited = |e: Error| match e {
        Error::NoSuchProcess { pid } => Error::ProcessExited { pid },
        e => e,
    };

    // Pause: threads and their registers.
    let mut perf = PerformanceCounters::default();
    let mut capture_pause = Duration::ZERO;
    let mut threads_stopped = 0;
    let mut seize_rounds = 0;
    let mut tls_of = HashMap::new();
    let threads = if want_threads {
        let sw = Stopwatch::start();
        let frozen = if is_self {
            procfs::list_numeric(pid, &format!("/proc/{pid}/task"))?
                .into_iter()
                .map(threads::unfrozen)
                .collect()
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
            };
            let frozen = tracer::run(move || freeze::freeze(req))??;
            capture_pause = frozen.pause;
            threads_stopped = frozen.threads.len();
            seize_rounds = frozen.rounds;
            warnings.extend(frozen.warnings);
            frozen.threads
        };
        for t in &frozen {
            if let Some(g) = &t.general {
                tls_of.insert(t.tid, g.tls_base());
            }
        }
        let entry = process::entry_point(&mut dir);
        let list = threads::build(pid, frozen, zombie_leader, entry, &clocks, &mut warnings);
        perf.threads = cost(&sw);
        Some(list)
    } else {
        None
    };

    // After the pause: the target runs again.
    let process = process::read(&mut dir, st.state, &clocks).map_err(exited)?;
    let handles = if flags.contains(CaptureFlags::HANDLES) {
        let sw = Stopwatch::start();
        let h = handles::capture(pid, flags, &tls_of, &mut warnings).map_err(exited)?;
        perf.handles = cost(&sw);
        Some(h)
    } else {
        None
    };
    let va_space = if flags.contains(CaptureFlags::VA_SPACE) {
        let sw = Stopwatch::start();
        let v = va_space::capture(
            &mut dir,
            flags.contains(CaptureFlags::VA_SPACE_SECTION_INFORMATION),
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
    Ok(SnapshotData {
        process,
        threads,
        handles,
        va_space,
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
    })
}

fn cost(sw: &Stopwatch) -> PhaseCost {
    let (wall, cycles) = sw.elapsed();
    PhaseCost { cycles, wall }
}

/// Refuses flags this build does not implement, naming them.
fn check_flags(flags: CaptureFlags) -> Result<()> {
    let unsupported = flags - CaptureFlags::SUPPORTED;
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
            "capture flag(s) {} (see docs/differences.md: the VA clone, auxiliary pages and breakaway come with the VA clone; handle and IPT tracing have no Linux implementation yet)",
            names.join(", ")
        ),
    })
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
        Target::Current => Ok((std::process::id() as i32, None)),
    }
}
