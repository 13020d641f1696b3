//! `pss watch`: ProcDump's triggers with pss's dumps. The watching (targets, readings,
//! conditions, holds, cooldowns, counts) is [`pss_watch`]'s; this is the front: options, the
//! polling loop, the disk budget ([`budget`]), writing each dump ([`dump`]) and the log of
//! every event ([`log`]).

mod budget;
mod dump;
mod log;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use pss_watch::{Condition, Event, Rules, Targets, Watcher};

use crate::usage;
use budget::Budget;
use dump::DumpFormat;
use log::Log;

#[derive(clap::Args)]
pub struct WatchArgs {
    /// The process to watch (or --name, or --pgid).
    #[arg(required_unless_present_any = ["name", "pgid"], conflicts_with_all = ["name", "pgid"])]
    pid: Option<i32>,
    /// Every process of this name, including ones started later (ProcDump's -w).
    #[arg(long, value_name = "NAME", conflicts_with = "pgid")]
    name: Option<String>,
    /// Every process of this process group.
    #[arg(long, value_name = "PGID")]
    pgid: Option<i32>,
    /// Dump when CPU is at or above PCT percent of one CPU, every thread together (-C).
    #[arg(long, value_name = "PCT")]
    cpu: Option<f64>,
    /// Dump when CPU is below PCT percent (-c).
    #[arg(long, value_name = "PCT")]
    cpu_below: Option<f64>,
    /// Dump when commit (private resident memory plus swap) is at or above SIZE (-M).
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size)]
    mem: Option<u64>,
    /// Dump when commit is below SIZE (-m).
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size)]
    mem_below: Option<u64>,
    /// Dump when the process has at least N threads (-T).
    #[arg(long, value_name = "N")]
    threads: Option<u64>,
    /// Dump when the process has at least N open file descriptors (-F).
    #[arg(long, value_name = "N")]
    fds: Option<u64>,
    /// Dump every SECS seconds, whatever the process does (the first at once).
    #[arg(long, value_name = "SECS")]
    every: Option<f64>,
    /// Not supported: a signal trigger (-G) needs tracing the target; see docs/watch.md.
    #[arg(long, value_name = "SIG")]
    signal: Option<String>,
    /// How long a condition must hold before a dump (-s).
    #[arg(long = "for", value_name = "SECS", default_value_t = 10.0)]
    hold: f64,
    /// Milliseconds between polls (-I).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    interval: u64,
    /// Dumps before exiting, all processes together; 0: no limit (-n).
    #[arg(long, value_name = "N", default_value_t = 1)]
    count: u64,
    /// Seconds after a dump before the next may be written.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    cooldown: f64,
    /// What each dump is.
    #[arg(long, value_enum, default_value = "core")]
    format: DumpFormat,
    /// The directory dumps and the log (pss-watch.jsonl) go to (-o).
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    output: PathBuf,
    /// Stop dumping once the dumps written would pass SIZE in all.
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size)]
    max_bytes: Option<u64>,
    /// Never leave less than SIZE free on the output's file system (default: 5% of it).
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size)]
    min_free: Option<u64>,
    /// Print each event as a JSON line (as the log has it) instead of text.
    #[arg(long)]
    json: bool,
    /// How long the threads may take to stop, in milliseconds, for each dump.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    timeout_ms: u64,
}

impl WatchArgs {
    /// The processes asked for.
    fn targets(&self) -> Targets {
        match (&self.name, self.pgid, self.pid) {
            (Some(name), _, _) => Targets::Name(name.clone()),
            (None, Some(pgid), _) => Targets::Pgid(pgid),
            (None, None, pid) => Targets::Pid(pid.unwrap_or(0)),
        }
    }

    /// The rules asked for; a usage error without any condition.
    fn rules(&self) -> Result<Rules> {
        let seconds = |v: f64, what: &str| {
            Duration::try_from_secs_f64(v)
                .map_err(|_| usage(format!("{what} {v}: not a number of seconds")))
        };
        let mut conditions = Vec::new();
        let mut add = |c: Option<Condition>| conditions.extend(c);
        add(self.cpu.map(Condition::CpuAtLeast));
        add(self.cpu_below.map(Condition::CpuBelow));
        add(self.mem.map(Condition::CommitAtLeast));
        add(self.mem_below.map(Condition::CommitBelow));
        add(self.threads.map(Condition::ThreadsAtLeast));
        add(self.fds.map(Condition::FdsAtLeast));
        if let Some(every) = self.every {
            conditions.push(Condition::Every(seconds(every, "--every")?));
        }
        if conditions.is_empty() {
            bail!(usage(
                "no trigger: give --cpu, --cpu-below, --mem, --mem-below, --threads, --fds or --every".into()
            ));
        }
        Ok(Rules {
            conditions,
            hold: seconds(self.hold, "--for")?,
            cooldown: seconds(self.cooldown, "--cooldown")?,
            count: (self.count > 0).then_some(self.count),
        })
    }
}

/// The least time between two polls, whatever the deadlines say.
const MIN_PAUSE: Duration = Duration::from_millis(5);

/// Runs `pss watch` until its triggers have fired `--count` times or no process is left.
pub fn watch(args: &WatchArgs) -> Result<()> {
    if let Some(sig) = &args.signal {
        return Err(pss::Error::NotSupported {
            what: format!(
                "--signal {sig}: seeing a signal sent to the target needs tracing it (ProcDump's -G stops it with ptrace) or the kernel's signal tracepoints through perf or BPF, which pss watch does not use (docs/watch.md)"
            ),
        }
        .into());
    }
    let rules = args.rules()?;
    let targets = args.targets();
    if let Targets::Pid(pid) = targets {
        if pid <= 0 {
            bail!(usage(format!("{pid} is not a process id")));
        }
        if pss_watch::Usage::read(pid).is_none() {
            return Err(pss::Error::NoSuchProcess { pid }.into());
        }
    }
    std::fs::create_dir_all(&args.output)?;
    let mut log = Log::open(&args.output, args.json)?;
    let mut budget = Budget::new(&args.output, args.max_bytes, args.min_free);
    let mut watcher = Watcher::new(targets, rules);
    let interval = Duration::from_millis(args.interval.max(1));
    while !watcher.finished() {
        let started = Instant::now();
        for event in watcher.poll() {
            handle(args, &event, &mut log, &mut budget)?;
        }
        if budget.exhausted() {
            break;
        }
        // The next poll: an interval on, or sooner when a condition will have held long
        // enough (so that a trigger fires within one interval of that, not two).
        let next = watcher
            .deadline()
            .map_or(started + interval, |d| d.min(started + interval))
            .max(started + MIN_PAUSE);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Ok(())
}

/// Logs `event`, and dumps for a trigger.
fn handle(args: &WatchArgs, event: &Event, log: &mut Log, budget: &mut Budget) -> Result<()> {
    let Event::Trigger {
        pid,
        condition,
        time,
        usage,
        ..
    } = event
    else {
        return log.event(event);
    };
    let estimate = dump::estimate(args.format, usage.commit);
    if let Err(why) = budget.allows(estimate) {
        return log.skipped(event, &why);
    }
    let path = dump::path(
        &args.output,
        &usage.name,
        condition.name(),
        *time,
        *pid,
        args.format,
    );
    let written = dump::write(
        *pid,
        args.format,
        &path,
        Duration::from_millis(args.timeout_ms),
    );
    if let Ok(w) = &written {
        budget.spent(w.bytes);
    }
    log.trigger(
        event,
        args.hold,
        &path,
        written.as_ref().map_err(|e| format!("{e:#}")),
    )
}
