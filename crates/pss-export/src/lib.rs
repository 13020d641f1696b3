//! Exports: a snapshot written in formats other tools read — an ELF core (gdb, lldb,
//! elfutils) and a minidump (Breakpad, Crashpad, rust-minidump).
//!
//! An export is a function of a snapshot: its records and, for memory, its VA clone, read
//! through the descriptor the engine passed. The target is never touched: it ran on from
//! the end of the pause. The writers stream: memory goes from the clone to the output a
//! chunk at a time, so the writer's memory stays small whatever the target's size; zero
//! pages become holes in a file (a sparse file) and zeros on a pipe.
//!
//! ```no_run
//! use pss_export::{self as export, ExportOptions, Format};
//! use pss::{CaptureFlags, ContextFlags, Snapshot, Target};
//!
//! let snap = Snapshot::capture(Target::Pid(1234), export::CAPTURE_FLAGS, ContextFlags::ALL)?;
//! let summary = export::write_file(&snap, Format::Core, "core.1234".as_ref(), false,
//!                                  &mut ExportOptions::default())?;
//! println!("{} bytes, {} of memory", summary.bytes, summary.memory_bytes);
//! # Ok::<(), pss::Error>(())
//! ```

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod clone_proc;
mod copy;
mod core;
pub mod filter;
mod layout;
mod minidump;
mod sink;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::AtomicBool;

pub use filter::DumpFilter;

use pss::Snapshot;
use pss_types::error::{Error, Result};
use pss_types::flags::CaptureFlags;
use pss_types::records::ThreadEntry;

/// The capture flags an export wants: threads with every register (the XSAVE area too),
/// the VA space with sections (forked-away ranges' facts, modules and their build-ids), and
/// the VA clone (the memory). A minidump can do without the clone if the auxiliary pages
/// were captured (the threads' stacks).
pub const CAPTURE_FLAGS: CaptureFlags = CaptureFlags::THREADS
    .union(CaptureFlags::THREAD_CONTEXT)
    .union(CaptureFlags::THREAD_CONTEXT_EXTENDED)
    .union(CaptureFlags::VA_SPACE)
    .union(CaptureFlags::VA_SPACE_SECTION_INFORMATION)
    .union(CaptureFlags::VA_CLONE);

/// The capture flags a minidump without full memory wants: threads with every register, each
/// thread's stack (and TLS page) copied in the pause, the VA space with sections (modules and
/// their build-ids) — no VA clone, so that the target is stopped for the metadata pause
/// only, not for a fork's page-table copy. (Without a clone the dump has no `LinuxCmdLine`,
/// `LinuxEnviron` and `LinuxAuxv` streams: those come from the clone's `/proc`.)
pub const MINIDUMP_CAPTURE_FLAGS: CaptureFlags = CaptureFlags::THREADS
    .union(CaptureFlags::THREAD_CONTEXT)
    .union(CaptureFlags::THREAD_CONTEXT_EXTENDED)
    .union(CaptureFlags::AUXILIARY_PAGES)
    .union(CaptureFlags::VA_SPACE)
    .union(CaptureFlags::VA_SPACE_SECTION_INFORMATION);

/// The formats a snapshot can be exported to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// An ELF core file (`ET_CORE`), as the kernel and gdb's `gcore` write.
    Core,
    /// A minidump (`MDMP`), as Breakpad, Crashpad and rust-minidump read.
    Minidump,
}

impl Format {
    /// The name used on the command line and in JSON (`core`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Core => "core",
            Format::Minidump => "minidump",
        }
    }
}

/// How far an export has got: bytes of the output emitted (written or left as holes) of
/// the total it will have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes emitted so far.
    pub done: u64,
    /// Bytes the output will have.
    pub total: u64,
}

/// Choices for an export.
#[derive(Default)]
pub struct ExportOptions<'a, 'p> {
    /// Which mappings a core holds; `None` follows the target's own
    /// `/proc/PID/coredump_filter`, as the kernel and gdb do.
    pub filter: Option<DumpFilter>,
    /// Minidumps: hold every mapping the filter keeps (`Memory64List`, a "full memory"
    /// dump), not only each thread's stack and TLS page. Needs a VA clone.
    pub full_memory: bool,
    /// [`write_file`]: flush the file to the disk (`fsync`) before naming it. Off by
    /// default, as for the kernel's cores and gdb's: the rename already makes the file whole
    /// or absent for every reader; only a machine crash soon after could lose its tail.
    pub sync: bool,
    /// Checked between chunks: once set, the export stops with [`Error::Interrupted`].
    pub cancel: Option<&'a AtomicBool>,
    /// Called after each chunk.
    pub progress: Option<&'a mut (dyn FnMut(Progress) + 'p)>,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// The format.
    pub format: Format,
    /// Bytes of output (the file's length; holes included).
    pub bytes: u64,
    /// Bytes of the target's memory it holds.
    pub memory_bytes: u64,
    /// Bytes left as holes (zero pages not written: a sparse file).
    pub holes: u64,
    /// Memory segments (mappings) described.
    pub segments: usize,
    /// Threads described.
    pub threads: usize,
    /// The filter applied.
    pub filter: DumpFilter,
    /// Whether the engine read the clone's memory ahead of the writes (a pump: large
    /// exports), or this process read it all.
    pub read_ahead: bool,
    /// What could not be exported as it was (ranges not captured, pages not readable).
    pub warnings: Vec<String>,
}

/// Writes `snapshot` in `format` to `out`, from its current position. A regular file gets
/// holes for zero pages; anything else (a pipe, a socket, a terminal) gets every byte. On
/// error, what was written stays: the caller owns `out` (see [`write_file`]).
pub fn write(
    snapshot: &Snapshot,
    format: Format,
    out: BorrowedFd<'_>,
    options: &mut ExportOptions<'_, '_>,
) -> Result<ExportSummary> {
    write_named(snapshot, format, out, options, describe_fd(out))
}

fn write_named(
    snapshot: &Snapshot,
    format: Format,
    out: BorrowedFd<'_>,
    options: &mut ExportOptions<'_, '_>,
    name: String,
) -> Result<ExportSummary> {
    // A write past the file size limit or into a closed pipe fails; it must not also end
    // the caller's process with SIGXFSZ or SIGPIPE.
    let _signals = pss_sys::signals::WriteSignalsBlocked::new();
    let mut sink = sink::Sink::new(out);
    match format {
        Format::Core => core::write(snapshot, &mut sink, options, name),
        Format::Minidump => minidump::write(snapshot, &mut sink, options, name),
    }
}

/// Writes `snapshot` to a file at `path`, whole or not at all: into
/// [`Snapshot::partial_path`] first (mode 0600: a core holds the process's secrets), renamed
/// to `path` once complete (and flushed to the disk with [`ExportOptions::sync`]), removed on
/// any error. An existing `path` is [`Error::OutputExists`] unless `overwrite`.
pub fn write_file(
    snapshot: &Snapshot,
    format: Format,
    path: &Path,
    overwrite: bool,
    options: &mut ExportOptions<'_, '_>,
) -> Result<ExportSummary> {
    let name = path.display().to_string();
    let sync = options.sync;
    write_whole(path, overwrite, sync, |file| {
        write_named(snapshot, format, file.as_fd(), options, name)
    })
}

/// Writes a file at `path` with `write`, whole or not at all: into
/// [`Snapshot::partial_path`] first (mode 0600), renamed to `path` once `write` succeeded
/// (and, with `sync`, flushed to the disk), removed on any error. An existing `path` is
/// [`Error::OutputExists`] unless `overwrite`. Used for every file `pss` writes.
pub fn write_whole<T>(
    path: &Path,
    overwrite: bool,
    sync: bool,
    write: impl FnOnce(&std::fs::File) -> Result<T>,
) -> Result<T> {
    use std::os::unix::fs::OpenOptionsExt;
    if !overwrite && path.symlink_metadata().is_ok() {
        return Err(Error::OutputExists {
            path: path.to_owned(),
        });
    }
    let partial = Snapshot::partial_path(path);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|source| Error::Output {
            what: partial.display().to_string(),
            source,
        })?;
    let result = write(&file).and_then(|written| {
        if sync {
            file.sync_all().map_err(|source| Error::Output {
                what: path.display().to_string(),
                source,
            })?;
        }
        rename(&partial, path, overwrite)?;
        Ok(written)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn rename(from: &Path, to: &Path, overwrite: bool) -> Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    let flags = if overwrite {
        RenameFlags::empty()
    } else {
        RenameFlags::NOREPLACE
    };
    match renameat_with(CWD, from, CWD, to, flags) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) => Err(Error::OutputExists {
            path: to.to_owned(),
        }),
        // A file system without RENAME_NOREPLACE: we checked before writing.
        Err(rustix::io::Errno::INVAL) if !overwrite => {
            std::fs::rename(from, to).map_err(|source| Error::Output {
                what: to.display().to_string(),
                source,
            })
        }
        Err(e) => Err(Error::Output {
            what: to.display().to_string(),
            source: e.into(),
        }),
    }
}

/// The threads with registers, the process's main thread first (the kernel writes the
/// dumping thread first, and readers take the first as the one to show).
pub(crate) fn threads_with_registers(snapshot: &Snapshot) -> Result<Vec<&ThreadEntry>> {
    let pid = snapshot.process().process_id;
    let mut threads: Vec<&ThreadEntry> = snapshot
        .threads()
        .unwrap_or_default()
        .iter()
        .filter(|t| t.context.is_some())
        .collect();
    if threads.is_empty() {
        return Err(Error::NotFound {
            what: "thread registers (an export holds every thread's registers)",
            flag: "PSS_CAPTURE_THREADS | PSS_CAPTURE_THREAD_CONTEXT",
        });
    }
    threads.sort_by_key(|t| (t.thread_id != pid, t.thread_id));
    Ok(threads)
}

fn describe_fd(fd: BorrowedFd<'_>) -> String {
    match fd.as_raw_fd() {
        1 => "standard output".into(),
        n => format!("fd {n}"),
    }
}
