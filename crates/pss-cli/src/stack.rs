//! `pss stack`: every thread's call chain, like `eu-stack`/`pstack`, walked after the target
//! runs again (it is stopped only to read the registers and copy the stacks); with
//! `--samples`, many rounds of them aggregated into a profile ([`crate::profile`]).

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use pss::records::ThreadRead;
use pss::Snapshot;
use pss_stack::{Frame, StackEnd, Stacks};

use crate::escape::{shown, shown_os};
use crate::{profile, units, usage};

/// What `pss stack` writes.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StackFormat {
    /// Each thread as eu-stack prints it (with --samples: each distinct chain with its count).
    Text,
    /// One JSON document (docs/json.md).
    Json,
    /// Collapsed stacks, `thread;outer;…;inner count`: the input of flamegraph.pl and
    /// inferno-flamegraph.
    Folded,
    /// A gzipped pprof profile.proto, for `go tool pprof`, Pyroscope, Parca (needs -o).
    Pprof,
}

#[derive(clap::Args)]
pub struct StackArgs {
    /// A process id, or a snapshot file written by `pss capture --save` (with thread
    /// contexts and auxiliary pages).
    target: String,
    /// Also capture a VA clone, for stacks deeper than the copy taken in the pause (the
    /// pause grows by the kernel's page-table copy; implies --consistent).
    #[arg(long)]
    deep: bool,
    /// Stop every thread together, for one instant, rather than one at a time (by
    /// default a thread blocked in a system call is not stopped at all, and any other is
    /// stopped alone, only for its own registers and stack copy).
    #[arg(long)]
    consistent: bool,
    /// Only this thread (repeat for several).
    #[arg(long = "tid", value_name = "TID")]
    tids: Vec<u32>,
    /// Only threads whose name contains TEXT.
    #[arg(long, value_name = "TEXT")]
    name: Option<String>,
    /// Name frames from symbol tables only: no file and line, no inlined frames, no
    /// separate debug files read (faster where those are large).
    #[arg(long)]
    symbols_only: bool,
    /// Take N rounds of stacks, --interval apart, and aggregate them into a profile:
    /// each distinct call chain of each thread with how many rounds found it. Ctrl-C ends
    /// sampling early and writes what was taken.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    samples: u32,
    /// Milliseconds from the start of one round to the start of the next (10: 100 Hz).
    #[arg(long, value_name = "MS", default_value_t = 10)]
    interval: u64,
    /// What to write.
    #[arg(long, value_enum, conflicts_with = "json")]
    format: Option<StackFormat>,
    /// Print one JSON document (schema: docs/json.md) instead of text: --format json.
    #[arg(long)]
    json: bool,
    /// Write to FILE (whole or not at all) rather than to standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Overwrite FILE if it exists.
    #[arg(long, requires = "output")]
    force: bool,
    /// How long the threads may take to stop, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    timeout_ms: u64,
}

impl StackArgs {
    /// What to write: `--format`, `--json`, else text.
    pub fn format(&self) -> StackFormat {
        match (self.format, self.json) {
            (Some(f), _) => f,
            (None, true) => StackFormat::Json,
            (None, false) => StackFormat::Text,
        }
    }

    /// Whether a profile is written (several rounds, or a profile's format).
    fn profiles(&self) -> bool {
        self.samples > 1 || matches!(self.format(), StackFormat::Folded | StackFormat::Pprof)
    }

    /// The walker asked for.
    pub fn walker(&self) -> pss_stack::Walker {
        if self.symbols_only {
            pss_stack::Walker::symbols_only()
        } else {
            pss_stack::Walker::new()
        }
    }

    /// The process id, or `None` for a snapshot file.
    pub fn pid(&self) -> Result<Option<i32>> {
        match self.target.parse::<i32>() {
            Ok(pid) if pid <= 0 => bail!(usage(format!("{pid} is not a process id"))),
            Ok(pid) => Ok(Some(pid)),
            Err(_) => Ok(None),
        }
    }

    /// The snapshot file named (when not a process id).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// How many rounds.
    pub fn samples(&self) -> u32 {
        self.samples
    }

    /// How long between rounds.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval)
    }

    /// Where to write, and whether over an existing file.
    pub fn output(&self) -> (Option<&std::path::Path>, bool) {
        (self.output.as_deref(), self.force)
    }

    /// Whether thread `t` (`tid`, `name`) is one asked for.
    pub fn wants(&self, tid: u32, name: &std::ffi::OsStr) -> bool {
        let by_tid = self.tids.is_empty() || self.tids.contains(&tid);
        let by_name = self
            .name
            .as_deref()
            .map_or(true, |n| name.to_string_lossy().contains(n));
        by_tid && by_name
    }
}

/// Runs `pss stack`.
pub fn stack(args: &StackArgs) -> Result<()> {
    if args.format() == StackFormat::Pprof && args.output.is_none() {
        bail!(usage(
            "--format pprof writes a binary file: name it with -o FILE".into()
        ));
    }
    if args.profiles() {
        return profile::profile(args);
    }
    let mut walker = args.walker();
    let (snap, mut stacks) = match args.pid()? {
        Some(pid) => {
            crate::interrupt::live_target();
            pss_stack::capture_stacks(pid, &live(args), &mut walker)?
        }
        None => {
            crate::interrupt::no_target();
            let snap = Snapshot::load(args.target())?;
            let stacks = walker.stacks(&snap)?;
            (snap, stacks)
        }
    };
    stacks.threads.retain(|t| args.wants(t.thread_id, &t.name));
    let mut out = Vec::new();
    if args.format() == StackFormat::Json {
        serde_json::to_writer_pretty(&mut out, &pss_json::stacks(&snap, &stacks))?;
        writeln!(out)?;
    } else {
        text(&mut out, &snap, &stacks)?;
    }
    profile::emit(args, &out)?;
    for w in &stacks.warnings {
        eprintln!("pss: warning: {}", shown(&w.to_string()));
    }
    Ok(())
}

/// How a live process is read.
pub fn live(args: &StackArgs) -> pss_stack::LiveCapture {
    pss_stack::LiveCapture {
        consistent: args.consistent,
        deep: args.deep,
        timeout: Duration::from_millis(args.timeout_ms),
        ..pss_stack::LiveCapture::default()
    }
}

/// The text form: a header, then each thread as `eu-stack` prints it.
pub fn text(out: &mut impl Write, snap: &Snapshot, stacks: &Stacks) -> io::Result<()> {
    let p = snap.process();
    let n = stacks.threads.len();
    let one_by_one = stacks
        .threads
        .iter()
        .any(|t| t.read != ThreadRead::Together);
    let stop = match one_by_one {
        true => "longest stop of one thread",
        false => "paused",
    };
    writeln!(
        out,
        "PID {} ({}): {n} thread{}, {stop} {}",
        p.process_id,
        shown_os(&p.linux.comm),
        if n == 1 { "" } else { "s" },
        units::duration(snap.capture_info().pause)
    )?;
    for t in &stacks.threads {
        let read = match t.read {
            ThreadRead::Together => "",
            ThreadRead::Alone => " (stopped alone)",
            ThreadRead::Blocked => " (read while blocked, not stopped)",
        };
        writeln!(
            out,
            "TID {} \"{}\" {}{read}:",
            t.thread_id,
            shown_os(&t.name),
            t.state
        )?;
        frames(out, &t.frames, usize::MAX)?;
        if t.end != StackEnd::Complete {
            writeln!(out, "    ({})", t.end)?;
        }
    }
    Ok(())
}

/// Prints up to `most` frames, `#n address function (file:line) [module]`.
pub fn frames(out: &mut impl Write, frames: &[Frame], most: usize) -> io::Result<()> {
    for (i, f) in frames.iter().enumerate().take(most) {
        let function = f.function.as_deref().map_or("??".into(), shown);
        let inlined = if f.inlined { " (inlined)" } else { "" };
        let place = match (&f.file, f.line) {
            (Some(file), Some(line)) => format!(" ({}:{line})", shown_os(file.as_os_str())),
            (Some(file), None) => format!(" ({})", shown_os(file.as_os_str())),
            _ => String::new(),
        };
        let module = match (&f.module, f.jit) {
            (_, true) => " [jit, perf map]".to_owned(),
            (Some(m), false) => m
                .file_name()
                .map(|n| format!(" [{}]", shown_os(n)))
                .unwrap_or_default(),
            (None, false) => String::new(),
        };
        writeln!(
            out,
            "#{i:<3} {:#018x} {function}{inlined}{place}{module}",
            f.address
        )?;
    }
    Ok(())
}
