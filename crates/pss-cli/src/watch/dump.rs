//! One dump of a watched process, named as ProcDump names its cores
//! (`NAME_TRIGGER_TIMESTAMP.PID`), written whole or not at all.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use pss::{CaptureFlags, CaptureOptions, ContextFlags, Snapshot, Target};
use pss_export::{ExportOptions, Format};

use crate::{interrupt, stack, units};

/// What a dump is.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DumpFormat {
    /// An ELF core, from a VA clone (as `pss dump`).
    Core,
    /// A minidump with the threads' stacks, without a clone.
    Minidump,
    /// A pss snapshot file (`pss show` reads it): every record, stacks, no memory beyond.
    Snapshot,
    /// Every thread's stack, as `pss stack` prints it, in text and JSON.
    Stack,
}

/// What a dump wrote.
pub struct Written {
    /// Bytes, every file together.
    pub bytes: u64,
    /// How long the process was stopped for it (for stacks: the longest one thread was).
    pub stall: Duration,
}

/// About how many bytes a dump of a process with `commit` will take.
pub fn estimate(format: DumpFormat, commit: u64) -> u64 {
    match format {
        DumpFormat::Core => commit + (16 << 20),
        DumpFormat::Minidump | DumpFormat::Snapshot => 16 << 20,
        DumpFormat::Stack => 1 << 20,
    }
}

/// `DIR/NAME_TRIGGER_YYYY-MM-DD_HH:MM:SS.PID` (UTC), with the format's extension, and a
/// `-N` before it if that is taken. The name is the process's: anything but letters,
/// digits, `-`, `_` and `.` becomes `_`, and it never starts with a dot.
pub fn path(
    dir: &Path,
    name: &str,
    trigger: &str,
    time: SystemTime,
    pid: i32,
    format: DumpFormat,
) -> PathBuf {
    let mut name: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        name.insert(0, '_');
    }
    let stamp = units::utc(time).trim_end_matches(" UTC").replace(' ', "_");
    let ext = match format {
        DumpFormat::Core => "",
        DumpFormat::Minidump => ".dmp",
        DumpFormat::Snapshot => ".pss",
        DumpFormat::Stack => ".stack.txt",
    };
    let base = format!("{name}_{trigger}_{stamp}.{pid}");
    (1..)
        .map(|n| match n {
            1 => dir.join(format!("{base}{ext}")),
            n => dir.join(format!("{base}-{n}{ext}")),
        })
        .find(|p| p.symlink_metadata().is_err())
        .expect("an unused name")
}

/// Dumps process `pid` to `path` as `format`; `timeout` for its threads to stop.
pub fn write(pid: i32, format: DumpFormat, path: &Path, timeout: Duration) -> Result<Written> {
    interrupt::live_target();
    match format {
        DumpFormat::Core => export(pid, Format::Core, pss_export::CAPTURE_FLAGS, path, timeout),
        DumpFormat::Minidump => export(
            pid,
            Format::Minidump,
            pss_export::MINIDUMP_CAPTURE_FLAGS,
            path,
            timeout,
        ),
        DumpFormat::Snapshot => snapshot(pid, path, timeout),
        DumpFormat::Stack => stacks(pid, path, timeout),
    }
}

/// A core or minidump.
fn export(
    pid: i32,
    format: Format,
    flags: CaptureFlags,
    path: &Path,
    timeout: Duration,
) -> Result<Written> {
    let snap = capture(pid, flags, timeout)?;
    interrupt::saving(path.to_owned());
    let r = pss_export::write_file(&snap, format, path, false, &mut ExportOptions::default());
    interrupt::saved(&path.to_owned());
    Ok(Written {
        bytes: r?.bytes,
        stall: snap.capture_info().pause,
    })
}

/// A snapshot file.
fn snapshot(pid: i32, path: &Path, timeout: Duration) -> Result<Written> {
    let flags = CaptureFlags::SUPPORTED - CaptureFlags::CREATE_BREAKAWAY - CaptureFlags::VA_CLONE;
    let snap = capture(pid, flags, timeout)?;
    interrupt::saving(path.to_owned());
    let r = snap.save(path);
    interrupt::saved(&path.to_owned());
    r?;
    Ok(Written {
        bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
        stall: snap.capture_info().pause,
    })
}

/// The stacks, as text at `path` and JSON beside it (`.json` for `.txt`).
fn stacks(pid: i32, path: &Path, timeout: Duration) -> Result<Written> {
    let how = pss_stack::LiveCapture {
        timeout,
        ..pss_stack::LiveCapture::default()
    };
    let (snap, stacks) = pss_stack::capture_stacks(pid, &how, &mut pss_stack::Walker::new())?;
    let mut text = Vec::new();
    stack::text(&mut text, &snap, &stacks)?;
    let mut json = serde_json::to_vec_pretty(&pss_json::stacks(&snap, &stacks))?;
    json.push(b'\n');
    let json_path = path.with_extension("json");
    for (p, bytes) in [(path, &text), (json_path.as_path(), &json)] {
        crate::output::write_file(p, bytes, false)?;
    }
    Ok(Written {
        bytes: (text.len() + json.len()) as u64,
        stall: snap.capture_info().pause,
    })
}

fn capture(pid: i32, flags: CaptureFlags, timeout: Duration) -> Result<Snapshot> {
    let mut options = CaptureOptions::new(flags, ContextFlags::ALL);
    options.stop_timeout = timeout;
    Ok(Snapshot::capture_with(Target::Pid(pid), &options)?)
}
