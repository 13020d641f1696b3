//! `pss`: snapshot a live Linux process the way Windows PSS does, from the shell.
//!
//! The command is a front: every capture decision lives in the `pss` library.

#![deny(unsafe_code)]

mod dump;
mod escape;
mod generate;
mod interrupt;
mod output;
mod profile;
mod stack;
mod text;
mod units;
mod watch;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::{Parser, Subcommand};
use pss::{CaptureFlags, CaptureOptions, ContextFlags, ErrorKind, Snapshot, Target};

/// Exit codes, documented in `docs/cli.md`.
mod exit {
    pub const OTHER: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NO_SUCH_PROCESS: u8 = 3;
    pub const ACCESS_DENIED: u8 = 4;
    pub const PROCESS_EXITED: u8 = 5;
    pub const NOT_SUPPORTED: u8 = 6;
    pub const TIMEOUT: u8 = 7;
    pub const CORRUPT: u8 = 8;
}

const DEFAULT_FLAGS: &str = "threads,handles,handle-name-information,va-space";

#[derive(Parser)]
#[command(
    name = "pss",
    version,
    about = "Process snapshots for Linux, after the Windows PSS API",
    long_about = "Process snapshots for Linux, after the Windows Process Snapshotting API.\n\n\
        `pss capture PID` stops every thread of PID together for microseconds, reads their \
        registers, lets the process go, then reads its file descriptors, address space and \
        process facts. The target is never left stopped or traced.",
    after_help = "Exit codes: 0 success, 1 other error, 2 bad usage, 3 no such process, \
        4 access denied or already traced, 5 the process exited during the capture, \
        6 not supported, 7 a thread did not stop in time (or another capture held the \
        process too long), 8 not a valid snapshot file; 129, 130, 143 ended by SIGHUP, \
        SIGINT, SIGTERM (the target released, nothing kept)."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Capture a snapshot of a running process and print it.
    Capture(CaptureArgs),
    /// Write an ELF core (like gcore) or a minidump of a running process, pausing it only
    /// for the capture: the dump is written from a copy-on-write clone while it runs on.
    Dump(dump::DumpArgs),
    /// Print every thread's call chain (like eu-stack or pstack), stopping the process
    /// only to read the registers and copy the stacks; or those of a saved snapshot.
    Stack(stack::StackArgs),
    /// Watch processes and dump when a condition holds: CPU, memory, threads, file
    /// descriptors, or a timer (ProcDump's triggers), polling /proc only.
    Watch(watch::WatchArgs),
    /// Print a snapshot saved with `pss capture --save FILE`.
    Show(ShowArgs),
    /// List the capture flags and context flags, and which this build supports.
    Flags,
    /// Reap the VA clones that capture engines which were killed left in their targets (as
    /// zombies), as recorded in the ledger of this user's engines (docs/engine.md).
    Cleanup(CleanupArgs),
}

#[derive(clap::Args)]
struct CleanupArgs {
    /// Only in this process (default: in every process the ledger names).
    pid: Option<i32>,
}

#[derive(clap::Args)]
struct CaptureArgs {
    /// The process to capture.
    pid: i32,
    /// Capture flags: PSS_CAPTURE_*/PSS_CREATE_* names without the prefix, lowercase with
    /// hyphens, comma-separated (see `pss flags`).
    #[arg(long, value_name = "LIST", conflicts_with = "all", default_value = DEFAULT_FLAGS)]
    flags: String,
    /// Capture everything this build supports (not handle-trace or ipt-trace, which are
    /// accepted but yield nothing on Linux, nor the mandatory create-breakaway).
    #[arg(long)]
    all: bool,
    /// With a VA clone: keep it (and the snapshot) after printing, until stdin reaches end
    /// of file or a line is entered, so that other tools can look at the clone's pid.
    #[arg(long)]
    hold: bool,
    /// Register groups for thread contexts (implies thread-context): control, integer,
    /// segments, floating-point, debug-registers, xstate, full, all.
    #[arg(long, value_name = "LIST")]
    context_flags: Option<String>,
    /// Print one JSON document instead of tables (schema: docs/json.md).
    #[arg(long)]
    json: bool,
    /// How long the threads may take to stop, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    timeout_ms: u64,
    /// With a VA clone: when to copy the ranges a clone lacks (MADV_DONTFORK, such as a JIT's
    /// code space, and MADV_WIPEONFORK): during-pause (the bytes of the capture instant; the
    /// pause grows by the copy), after-pause (a pause at the fork's length; the bytes may
    /// have changed, and say so), or never (holes).
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ForkedAway::DuringPause)]
    forked_away: ForkedAway,
    /// Also write the snapshot to FILE (docs/format.md), to read later with `pss show`. A VA
    /// clone is a process and is not saved.
    #[arg(long, value_name = "FILE")]
    save: Option<std::path::PathBuf>,
}

/// `--forked-away`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ForkedAway {
    DuringPause,
    AfterPause,
    Never,
}

impl From<ForkedAway> for pss::records::ForkedAwayCopy {
    fn from(f: ForkedAway) -> Self {
        match f {
            ForkedAway::DuringPause => pss::records::ForkedAwayCopy::DuringPause,
            ForkedAway::AfterPause => pss::records::ForkedAwayCopy::AfterPause,
            ForkedAway::Never => pss::records::ForkedAwayCopy::Never,
        }
    }
}

#[derive(clap::Args)]
struct ShowArgs {
    /// A snapshot file written by `pss capture --save`.
    file: std::path::PathBuf,
    /// Print one JSON document instead of tables (schema: docs/json.md).
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    // `pss` is its own capture engine: the library starts it again to serve as one.
    pss_engine::main_if_requested();
    if let Err(e) = interrupt::install() {
        eprintln!("pss: cannot handle signals: {e}");
        return ExitCode::from(exit::OTHER);
    }
    if let Some(dir) = generate::requested() {
        return finish(generate::generate(&dir));
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Capture(args) => capture(&args),
        Command::Dump(args) => dump::dump(&args),
        Command::Stack(args) => stack::stack(&args),
        Command::Watch(args) => watch::watch(&args),
        Command::Show(args) => {
            interrupt::no_target();
            Snapshot::load(&args.file)
                .map_err(anyhow::Error::from)
                .and_then(|snap| print(&snap, args.json))
        }
        Command::Flags => {
            print_flags();
            Ok(())
        }
        Command::Cleanup(args) => cleanup(&args),
    };
    finish(result)
}

/// The exit code of a command's result, its error reported on standard error.
fn finish(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            interrupt::wait_if_interrupted();
            // Library errors already name their cause; others get anyhow's chain.
            match e.downcast_ref::<pss::Error>() {
                Some(pe) => eprintln!("pss: {}", escape::shown(&pe.to_string())),
                None => eprintln!("pss: {}", escape::shown(&format!("{e:#}"))),
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<UsageError>().is_some()
        || matches!(e.downcast_ref(), Some(pss::Error::OutputExists { .. }))
    {
        return exit::USAGE;
    }
    match e.downcast_ref::<pss::Error>().map(pss::Error::kind) {
        Some(ErrorKind::NoSuchProcess) => exit::NO_SUCH_PROCESS,
        Some(ErrorKind::AccessDenied) => exit::ACCESS_DENIED,
        Some(ErrorKind::ProcessExited) => exit::PROCESS_EXITED,
        Some(ErrorKind::NotSupported) => exit::NOT_SUPPORTED,
        Some(ErrorKind::Timeout) => exit::TIMEOUT,
        Some(ErrorKind::Corrupt) => exit::CORRUPT,
        _ => exit::OTHER,
    }
}

#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(msg: String) -> anyhow::Error {
    anyhow!(UsageError(msg))
}

fn parse_flags(list: &str) -> Result<CaptureFlags> {
    let mut flags = CaptureFlags::empty();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "none" {
            continue;
        }
        flags |= CaptureFlags::from_cli_name(name)
            .ok_or_else(|| usage(format!("unknown capture flag {name:?} (see `pss flags`)")))?;
    }
    Ok(flags)
}

fn parse_context_flags(list: &str) -> Result<ContextFlags> {
    let mut flags = ContextFlags::empty();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        flags |= ContextFlags::from_cli_name(name)
            .ok_or_else(|| usage(format!("unknown context flag {name:?} (see `pss flags`)")))?;
    }
    Ok(flags)
}

fn capture(args: &CaptureArgs) -> Result<()> {
    let mut flags = if args.all {
        // Everything but the mandatory breakaway, which fails where cgroups are not ours.
        CaptureFlags::SUPPORTED - CaptureFlags::CREATE_BREAKAWAY
    } else {
        parse_flags(&args.flags)?
    };
    let context_flags = match &args.context_flags {
        Some(list) => {
            flags |= CaptureFlags::THREAD_CONTEXT;
            parse_context_flags(list)?
        }
        None => ContextFlags::ALL,
    };
    if args.pid <= 0 {
        bail!(usage(format!("{} is not a process id", args.pid)));
    }
    let mut options = CaptureOptions::new(flags, context_flags);
    options.stop_timeout = Duration::from_millis(args.timeout_ms);
    options.forked_away = args.forked_away.into();
    crate::interrupt::live_target();
    let snap = Snapshot::capture_with(Target::Pid(args.pid), &options)?;
    if let Some(path) = &args.save {
        interrupt::saving(path.clone());
        let saved = snap.save(path);
        interrupt::saved(path);
        saved?;
    }
    print(&snap, args.json)?;
    if args.hold {
        if let Some(c) = snap.va_clone() {
            eprintln!(
                "pss: holding VA clone pid {}; press Enter or close stdin to free it",
                c.pid()
            );
        }
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    Ok(())
}

fn cleanup(args: &CleanupArgs) -> Result<()> {
    if args.pid.is_some_and(|p| p <= 0) {
        bail!(usage(format!(
            "{} is not a process id",
            args.pid.unwrap_or(0)
        )));
    }
    let lines = pss::cleanup(args.pid)?;
    if lines.is_empty() {
        println!("nothing to clean up");
    }
    for line in lines {
        println!("{}", escape::shown(&line));
    }
    Ok(())
}

/// Prints `snap` as tables, or as one JSON document.
fn print(snap: &Snapshot, as_json: bool) -> Result<()> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    if as_json {
        serde_json::to_writer_pretty(&mut out, &pss_json::snapshot(snap))?;
        writeln!(out)?;
    } else {
        text::snapshot(&mut out, snap)?;
    }
    out.flush()?;
    Ok(())
}

fn print_flags() {
    println!("Capture flags (--flags), with their Windows values:");
    for (flag, name) in CaptureFlags::all_cli_names() {
        let supported = if CaptureFlags::SUPPORTED.contains(flag) {
            "supported"
        } else if CaptureFlags::WITHOUT_DATA.contains(flag) {
            "accepted, yields nothing on Linux (a warning says so; not in --all)"
        } else {
            "not supported"
        };
        println!("  {name:<34} {:#010x}  {supported}", flag.bits());
    }
    println!("\nContext flags (--context-flags):");
    for name in [
        "control",
        "integer",
        "segments",
        "floating-point",
        "debug-registers",
        "xstate",
        "full",
        "all",
    ] {
        let f = ContextFlags::from_cli_name(name).expect("known name");
        println!("  {name:<34} {:#010x}", f.bits());
    }
    println!("\nDefault: --flags {DEFAULT_FLAGS}");
}
