//! `pss dump`: capture with a VA clone, let the target go, write a core (or a full-memory
//! minidump) from the clone, free it. A minidump without full memory takes no clone: the
//! threads' registers and stacks copied in the pause are all it holds.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use pss::{CaptureOptions, ContextFlags, Snapshot, Target};
use pss_export::{self as export, DumpFilter, ExportOptions, ExportSummary, Format, Progress};
use serde_json::json;

use crate::{interrupt, units, usage, ForkedAway};

#[derive(clap::Args)]
#[command(
    after_help = "Filters (--filter): a coredump_filter value in hex (0x33), or \
    default (the kernel's 0x33), anon (0x3), all (0x1ff), or bit names joined with '+': \
    anon-private, anon-shared, file-private, file-shared, elf-headers, hugetlb-private, \
    hugetlb-shared, dax-private, dax-shared. Without --filter the target's own \
    /proc/PID/coredump_filter decides, as for the kernel's cores and gdb's gcore."
)]
pub struct DumpArgs {
    /// The process to dump.
    pid: i32,
    /// Where to write: a file (default `core.PID`, or `minidump.PID.dmp`), or `-` for
    /// standard output (for a pipe into zstd, say). A file is written whole or not at all.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The format to write.
    #[arg(long, value_enum, default_value_t = DumpFormat::Core)]
    format: DumpFormat,
    /// Which mappings a core (or a full-memory minidump) holds (see below).
    #[arg(long, value_name = "FILTER")]
    filter: Option<String>,
    /// Minidumps: hold every mapping the filter keeps (a "full memory" dump,
    /// Memory64List), not only each thread's stack and TLS page.
    #[arg(long)]
    full_memory: bool,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    force: bool,
    /// Flush the file to the disk (fsync) before naming it, so that it survives a machine
    /// crash right after (the kernel and gcore do not; it costs the disk's write time).
    #[arg(long)]
    sync: bool,
    /// Print a JSON summary (docs/json.md) instead of text.
    #[arg(long)]
    json: bool,
    /// No progress bar (one is drawn on standard error only when it is a terminal).
    #[arg(long, short)]
    quiet: bool,
    /// How long the threads may take to stop, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    timeout_ms: u64,
    /// When to copy the ranges a clone lacks (MADV_DONTFORK, MADV_WIPEONFORK): see
    /// `pss capture --help`. Ranges not copied are segments without bytes, with a warning.
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ForkedAway::DuringPause)]
    forked_away: ForkedAway,
}

/// `--format`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum DumpFormat {
    /// An ELF core, for gdb, lldb, eu-stack.
    Core,
    /// A minidump, for Breakpad, Crashpad and rust-minidump tools (minidump-stackwalk).
    /// Without --full-memory no VA clone is made: the target stops only for its threads'
    /// registers and stacks.
    Minidump,
}

impl DumpFormat {
    fn format(self) -> Format {
        match self {
            DumpFormat::Core => Format::Core,
            DumpFormat::Minidump => Format::Minidump,
        }
    }

    fn default_name(self, pid: i32) -> PathBuf {
        match self {
            DumpFormat::Core => PathBuf::from(format!("core.{pid}")),
            DumpFormat::Minidump => PathBuf::from(format!("minidump.{pid}.dmp")),
        }
    }
}

/// Runs `pss dump`.
pub fn dump(args: &DumpArgs) -> Result<()> {
    if args.pid <= 0 {
        bail!(usage(format!("{} is not a process id", args.pid)));
    }
    let filter = args
        .filter
        .as_deref()
        .map(DumpFilter::parse)
        .transpose()
        .map_err(|e| usage(e.to_string()))?;
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| args.format.default_name(args.pid));
    let to_stdout = path == Path::new("-");
    if args.full_memory && !matches!(args.format, DumpFormat::Minidump) {
        bail!(usage(
            "--full-memory is for --format minidump (a core always holds memory)".into()
        ));
    }
    if to_stdout && args.json {
        bail!(usage(
            "--json and -o - would both write to standard output".into()
        ));
    }
    if !to_stdout && !args.force && path.symlink_metadata().is_ok() {
        bail!(usage(format!(
            "{} exists; use --force to overwrite it",
            path.display()
        )));
    }
    let snap = capture(args)?;
    let started = Instant::now();
    let summary = write(&snap, args, filter, &path, to_stdout)?;
    let elapsed = started.elapsed();
    if args.json {
        print_json(&snap, &summary, (!to_stdout).then_some(&path), elapsed)
    } else {
        print_text(&snap, &summary, &path, to_stdout, elapsed);
        Ok(())
    }
}

/// A core and a full-memory minidump are written from a VA clone; a minidump without full
/// memory needs only the stacks copied in the pause, and no clone (a shorter stop).
fn capture(args: &DumpArgs) -> Result<Snapshot> {
    let flags = match (args.format, args.full_memory) {
        (DumpFormat::Minidump, false) => export::MINIDUMP_CAPTURE_FLAGS,
        _ => export::CAPTURE_FLAGS,
    };
    let mut options = CaptureOptions::new(flags, ContextFlags::ALL);
    options.stop_timeout = Duration::from_millis(args.timeout_ms);
    options.forked_away = args.forked_away.into();
    crate::interrupt::live_target();
    Ok(Snapshot::capture_with(Target::Pid(args.pid), &options)?)
}

fn write(
    snap: &Snapshot,
    args: &DumpArgs,
    filter: Option<DumpFilter>,
    path: &Path,
    to_stdout: bool,
) -> Result<ExportSummary> {
    let bar = progress_bar(args.quiet);
    let mut report = |p: Progress| {
        if let Some(bar) = &bar {
            bar.set_length(p.total);
            bar.set_position(p.done);
        }
    };
    let mut options = ExportOptions {
        filter,
        full_memory: args.full_memory,
        sync: args.sync,
        progress: Some(&mut report),
        ..Default::default()
    };
    let format = args.format.format();
    let result = if to_stdout {
        export::write(snap, format, std::io::stdout().as_fd(), &mut options)
    } else {
        interrupt::saving(path.to_owned());
        let r = export::write_file(snap, format, path, args.force, &mut options);
        interrupt::saved(&path.to_owned());
        r
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(result?)
}

fn progress_bar(quiet: bool) -> Option<indicatif::ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    let style = indicatif::ProgressStyle::with_template(
        "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec}, {eta} left",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

fn print_text(snap: &Snapshot, s: &ExportSummary, path: &Path, to_stdout: bool, elapsed: Duration) {
    let name = if to_stdout {
        "standard output".to_string()
    } else {
        path.display().to_string()
    };
    let rate = s.memory_bytes as f64 / elapsed.as_secs_f64().max(1e-9);
    let lines = [
        format!(
            "pss: wrote {name}: {} {}, {} of memory in {} segments, {} threads{}",
            units::size(s.bytes),
            format_name(s.format),
            units::size(s.memory_bytes),
            s.segments,
            s.threads,
            if s.holes > 0 {
                format!(" ({} left as holes)", units::size(s.holes))
            } else {
                String::new()
            }
        ),
        format!(
            "pss: process {} was paused for {}; writing took {} ({}/s) while it ran",
            snap.process().process_id,
            units::duration(snap.capture_info().pause),
            units::duration(elapsed),
            units::size(rate as u64)
        ),
    ];
    // With the core on standard output, the report goes to standard error.
    for line in lines {
        if to_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    for w in snap
        .warnings()
        .iter()
        .map(ToString::to_string)
        .chain(s.warnings.iter().cloned())
    {
        eprintln!("pss: warning: {}", crate::escape::shown(&w));
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Core => "ELF core",
        Format::Minidump => "minidump",
    }
}

fn print_json(
    snap: &Snapshot,
    s: &ExportSummary,
    path: Option<&PathBuf>,
    elapsed: Duration,
) -> Result<()> {
    let info = snap.capture_info();
    let doc = json!({
        "schema_version": pss_json::SCHEMA_VERSION,
        "pid": snap.process().process_id,
        "output": path.map(|p| p.display().to_string()),
        "format": s.format.name(),
        "bytes": s.bytes,
        "memory_bytes": s.memory_bytes,
        "holes": s.holes,
        "segments": s.segments,
        "threads": s.threads,
        "read_ahead": s.read_ahead,
        "filter": format!("{:#x}", s.filter.bits()),
        "va_clone": snap.va_clone().is_some(),
        "pause_us": pss::units::micros(info.pause),
        "capture_us": pss::units::micros(info.total),
        "write_us": pss::units::micros(elapsed),
        "warnings": snap.warnings().iter().map(ToString::to_string)
            .chain(s.warnings.iter().cloned()).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
