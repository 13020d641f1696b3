//! `pss stack`: every thread's call chain, like `eu-stack`/`pstack`, walked after the target
//! runs again (it is stopped only to read the registers and copy the stacks).

use std::io::{self, Write};
use std::time::Duration;

use anyhow::{bail, Result};
use pss::records::ThreadRead;
use pss::Snapshot;
use pss_stack::{Frame, StackEnd, Stacks, ThreadStack};

use crate::escape::{shown, shown_os};
use crate::{units, usage};

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
    /// Print one JSON document (schema: docs/json.md) instead of text.
    #[arg(long)]
    json: bool,
    /// How long the threads may take to stop, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    timeout_ms: u64,
}

/// Runs `pss stack`.
pub fn stack(args: &StackArgs) -> Result<()> {
    let mut walker = if args.symbols_only {
        pss_stack::Walker::symbols_only()
    } else {
        pss_stack::Walker::new()
    };
    let (snap, mut stacks) = match args.target.parse::<i32>() {
        Ok(pid) if pid <= 0 => bail!(usage(format!("{pid} is not a process id"))),
        Ok(pid) => {
            crate::interrupt::live_target();
            pss_stack::capture_stacks(pid, &live(args), &mut walker)?
        }
        Err(_) => {
            crate::interrupt::no_target();
            let snap = Snapshot::load(&args.target)?;
            let stacks = walker.stacks(&snap)?;
            (snap, stacks)
        }
    };
    stacks.threads.retain(|t| wanted(t, args));
    let stdout = io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &pss_json::stacks(&snap, &stacks))?;
        writeln!(out)?;
    } else {
        text(&mut out, &snap, &stacks)?;
    }
    out.flush()?;
    for w in &stacks.warnings {
        eprintln!("pss: warning: {}", shown(&w.to_string()));
    }
    Ok(())
}

fn live(args: &StackArgs) -> pss_stack::LiveCapture {
    pss_stack::LiveCapture {
        consistent: args.consistent,
        deep: args.deep,
        timeout: Duration::from_millis(args.timeout_ms),
        ..pss_stack::LiveCapture::default()
    }
}

fn wanted(t: &ThreadStack, args: &StackArgs) -> bool {
    let by_tid = args.tids.is_empty() || args.tids.contains(&t.thread_id);
    let by_name = args
        .name
        .as_deref()
        .map_or(true, |n| t.name.to_string_lossy().contains(n));
    by_tid && by_name
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
        let module = f
            .module
            .as_ref()
            .and_then(|m| m.file_name())
            .map(|n| format!(" [{}]", shown_os(n)))
            .unwrap_or_default();
        writeln!(
            out,
            "#{i:<3} {:#018x} {function}{inlined}{place}{module}",
            f.address
        )?;
    }
    Ok(())
}
