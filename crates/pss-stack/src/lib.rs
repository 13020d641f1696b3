//! Stacks: every thread's call chain, walked from a snapshot after the target runs again —
//! the registers each thread had when stopped, the stack bytes copied in the pause
//! (`PSS_CAPTURE_AUXILIARY_PAGES`) or the VA clone's memory, and the call-frame information
//! and symbols of the module files on disk. Unwinding is framehop's (samply's unwinder);
//! symbols are gimli's `addr2line`.
//!
//! A walk needs a snapshot's records and its memory, not the snapshot: [`Walker::walk`]
//! takes [`SnapshotRecords`] and any [`Memory`] (framehop's model, a read at an address),
//! and builds without the caller's library (`default-features = false`). With the default
//! `snapshot` feature, `stacks` and `Walker::stacks` walk a `pss::Snapshot`:
//!
//! ```no_run
//! use pss::{CaptureFlags, ContextFlags, Snapshot, Target};
//!
//! let snap = Snapshot::capture(Target::Pid(1234), pss_stack::CAPTURE_FLAGS, ContextFlags::CONTROL | ContextFlags::INTEGER)?;
//! for t in pss_stack::stacks(&snap)?.threads {
//!     println!("thread {}", t.thread_id);
//!     for (i, f) in t.frames.iter().enumerate() {
//!         println!("#{i} {:#x} {}", f.address, f.function.as_deref().unwrap_or("??"));
//!     }
//! }
//! # Ok::<(), pss::Error>(())
//! ```

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod cfi;
mod elf_file;
mod go;
#[cfg(feature = "snapshot")]
mod live;
mod memory;
mod modules;
mod name;
mod name_cache;
mod perf_map;
mod symbols;
mod unwind;

use std::ffi::OsString;
use std::path::PathBuf;

#[cfg(feature = "snapshot")]
pub use live::{capture_stacks, LiveCapture};
use memory::StackMemory;
use modules::{ImageCache, Module};
use perf_map::PerfMap;
use pss_types::error::{Error, Result};
use pss_types::flags::CaptureFlags;
use pss_types::memory::Memory;
use pss_types::records::{SnapshotRecords, ThreadEntry, ThreadRead};
use symbols::Naming;
use unwind::{module_of, RawFrame, Walk};

/// What `pss stack` captures: threads with their registers, each thread's stack bytes (the
/// auxiliary pages), and the VA space with sections (the modules and their build-ids). Add
/// `VA_CLONE` for stacks deeper than the copy.
pub const CAPTURE_FLAGS: CaptureFlags = CaptureFlags::THREADS
    .union(CaptureFlags::THREAD_CONTEXT)
    .union(CaptureFlags::AUXILIARY_PAGES)
    .union(CaptureFlags::VA_SPACE)
    .union(CaptureFlags::VA_SPACE_SECTION_INFORMATION);

/// How a frame was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameHow {
    /// The thread's registers when it was stopped (the first frame).
    Context,
    /// From the call-frame information of the callee's module.
    Cfi,
    /// By following the frame pointer (the callee's module has no CFI for it).
    FramePointer,
    /// From the registers a signal frame saved: the frame the signal interrupted.
    SignalFrame,
    /// Across a stack switch the unwind tables cannot describe: from Go's `g0` stack back
    /// to the goroutine's, after `runtime.systemstack`.
    StackSwitch,
}

impl FrameHow {
    /// A short name (`context`, `cfi`, `frame-pointer`, `signal-frame`, `stack-switch`).
    pub fn name(self) -> &'static str {
        match self {
            FrameHow::Context => "context",
            FrameHow::Cfi => "cfi",
            FrameHow::FramePointer => "frame-pointer",
            FrameHow::SignalFrame => "signal-frame",
            FrameHow::StackSwitch => "stack-switch",
        }
    }
}

/// Why a stack's walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StackEnd {
    /// At the outermost frame (the thread's start).
    Complete,
    /// The snapshot holds no stack bytes at this address: the copy ended (capture a VA
    /// clone for deeper stacks).
    StackCopyEnded {
        /// The first address it lacked.
        address: u64,
    },
    /// A frame led nowhere sensible (no unwind information, a corrupt stack).
    BadFrame(String),
    /// [`MAX_FRAMES`] frames were walked.
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// A frame needs a register that a thread read while blocked (not stopped) does not
    /// give — its frame pointer, or the link register: read stopped, the thread's walk
    /// would go on (`capture_stacks` does that by itself).
    NeedsRegisters,
}

/// The most frames a stack is walked to.
pub const MAX_FRAMES: usize = unwind::MAX_FRAMES;

impl std::fmt::Display for StackEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StackEnd::Complete => f.write_str("complete"),
            StackEnd::StackCopyEnded { address } => write!(
                f,
                "the stack copy ends at {address:#x} (capture a VA clone, `--deep`, for deeper stacks)"
            ),
            StackEnd::BadFrame(why) => write!(f, "cut short: {why}"),
            StackEnd::TooDeep { limit } => write!(f, "cut at {limit} frames"),
            StackEnd::NeedsRegisters => f.write_str(
                "the next frame needs registers a thread read while blocked does not give",
            ),
        }
    }
}

/// One frame of a thread's stack. Inlined calls are frames of their own, with the address
/// of the frame they were inlined into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The instruction pointer (first frame, a frame a signal interrupted) or the return
    /// address (the others).
    pub address: u64,
    /// The module mapped there.
    pub module: Option<PathBuf>,
    /// `address` less the module's load address.
    pub module_offset: Option<u64>,
    /// The function (demangled), when known.
    pub function: Option<String>,
    /// The source file, where debug information has it.
    pub file: Option<PathBuf>,
    /// The source line.
    pub line: Option<u32>,
    /// An inlined call: the next frame is the function it was inlined into, at the same
    /// address.
    pub inlined: bool,
    /// How the frame was found.
    pub how: FrameHow,
    /// Code compiled at run time, named by the process's perf map
    /// ([`Walker::name_jit_frames`]).
    pub jit: bool,
}

/// One thread's stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadStack {
    /// The thread.
    pub thread_id: u32,
    /// Its name (`comm`).
    pub name: OsString,
    /// Its state letter before the capture.
    pub state: char,
    /// How its registers and stack were read (stopped with the others, alone, or while
    /// blocked).
    pub read: ThreadRead,
    /// Its frames, innermost first.
    pub frames: Vec<Frame>,
    /// Why the walk ended.
    pub end: StackEnd,
}

/// Every thread's stack, and what was missing to walk them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stacks {
    /// The threads, in the snapshot's order.
    pub threads: Vec<ThreadStack>,
    /// Module files not found or not matching, stack memory not captured, …
    pub warnings: Vec<String>,
}

/// Walks stacks, keeping what it read of module files (by build-id) for the next snapshot.
pub struct Walker {
    images: ImageCache,
    naming: Naming,
    perf_map: Option<PerfMap>,
    /// Why the perf map could not be read, for the next walk's warnings.
    perf_map_warning: Option<String>,
}

impl Default for Walker {
    fn default() -> Walker {
        Walker {
            images: ImageCache::default(),
            naming: Naming {
                debug_info: true,
                cache_dir: name_cache::default_dir(),
            },
            perf_map: None,
            perf_map_warning: None,
        }
    }
}

impl Walker {
    /// A walker with nothing read yet, naming frames from debug information where there
    /// is some, and keeping the names it looks up on disk for the next walker
    /// ([`Walker::keep_names_in`]; dropping the walker writes them).
    pub fn new() -> Walker {
        Walker::default()
    }

    /// A walker that names frames from symbol tables only: no file and line, no inlined
    /// frames, and no separate debug file read (those can take tens of milliseconds each
    /// to decompress).
    pub fn symbols_only() -> Walker {
        Walker {
            naming: Naming {
                debug_info: false,
                cache_dir: None,
            },
            ..Walker::default()
        }
    }

    /// Where names looked up from debug information are kept between runs, so that a
    /// later walker naming the same addresses of the same module files reads no DWARF:
    /// by default `$PSS_CACHE_DIR/names` (`PSS_CACHE_DIR` empty: nowhere), else
    /// `$XDG_CACHE_HOME/pss/names`, else `~/.cache/pss/names`; `None`: nowhere.
    pub fn keep_names_in(mut self, dir: Option<PathBuf>) -> Walker {
        self.naming.cache_dir = dir;
        self
    }

    /// How many module files (or their separate debug files) this walker has read for
    /// names: those whose every address was kept on disk are not read.
    pub fn files_read_for_names(&self) -> usize {
        self.images.files_read_for_names()
    }

    /// Names frames in code compiled at run time (anonymous executable memory) of the live
    /// process `pid` from the perf map it writes, `/tmp/perf-PID.map`, as `perf` does; reads
    /// what was appended since the last call. Only for a process running now (a snapshot
    /// file's pid may be another process's by now); `capture_stacks` calls it.
    pub fn name_jit_frames(&mut self, pid: u32) {
        let map = match &mut self.perf_map {
            Some(m) if m.pid == pid => m,
            _ => self.perf_map.insert(PerfMap::new(pid)),
        };
        self.perf_map_warning = map.refresh().err();
    }

    /// The stacks of every thread of `snapshot` with registers: [`Walker::walk`] over its
    /// records and its memory (the stack bytes copied in the pause over the VA clone's).
    ///
    /// Needs thread contexts ([`Error::NotFound`] without), and stack bytes: auxiliary
    /// pages or a VA clone (a warning says when neither is there).
    #[cfg(feature = "snapshot")]
    pub fn stacks(&mut self, snapshot: &pss::Snapshot) -> Result<Stacks> {
        let mut stacks = self.walk(snapshot.records(), snapshot.memory())?;
        let aux = snapshot.auxiliary_pages().unwrap_or_default();
        if aux.is_empty() && snapshot.va_clone().is_none() {
            stacks.warnings.push("no stack memory captured (auxiliary pages or a VA clone): each stack is its first frame".into());
        }
        Ok(stacks)
    }

    /// The stacks of every thread of `records` with registers, reading stack bytes from
    /// `memory` (a stack whose bytes `memory` lacks ends at its first frame or where the
    /// bytes end).
    ///
    /// Needs thread contexts ([`Error::NotFound`] without). Module files come from the
    /// paths the VA space names (with section information); a file whose build-id differs
    /// from the one captured is not used, with a warning.
    pub fn walk(&mut self, records: &SnapshotRecords, memory: impl Memory) -> Result<Stacks> {
        let threads = threads_with_registers(records)?;
        let mut warnings = Vec::new();
        let pid = records.process.process_id;
        let modules = match &records.va_space {
            Some(regions) => modules::modules(pid, regions, &mut self.images, &mut warnings),
            None => {
                warnings.push("no VA space captured: no modules, frames found by frame pointers only, without names".into());
                Vec::new()
            }
        };
        let mut walk = Walk::new(&modules);
        let mut mem = StackMemory::new(&memory);
        let jit = self.perf_map.as_ref().filter(|m| m.pid == pid);
        warnings.extend(self.perf_map_warning.iter().cloned());
        let threads = threads
            .iter()
            .filter_map(|t| {
                let ctx = t.context.as_ref()?;
                mem.missed = None;
                let partial = t.linux.read == ThreadRead::Blocked;
                let (raw, end) = walk.frames(&ctx.general, partial, &modules, &mut mem);
                Some(ThreadStack {
                    thread_id: t.thread_id,
                    name: t.linux.name.clone(),
                    state: t.linux.state,
                    read: t.linux.read,
                    frames: raw
                        .iter()
                        .flat_map(|f| symbolize(&modules, jit, f, &self.naming))
                        .collect(),
                    end,
                })
            })
            .collect();
        Ok(Stacks { threads, warnings })
    }
}

/// The threads of `records`; [`Error::NotFound`] without threads or without registers.
fn threads_with_registers(records: &SnapshotRecords) -> Result<&[ThreadEntry]> {
    let threads = records.threads.as_deref().ok_or(Error::NotFound {
        what: "threads",
        flag: "PSS_CAPTURE_THREADS",
    })?;
    if !threads.iter().any(|t| t.context.is_some()) {
        return Err(Error::NotFound {
            what: "thread registers (stacks start from them)",
            flag: "PSS_CAPTURE_THREAD_CONTEXT",
        });
    }
    Ok(threads)
}

/// The stacks of `snapshot`'s threads (a walker of its own: see [`Walker`] to keep module
/// files read across snapshots).
#[cfg(feature = "snapshot")]
pub fn stacks(snapshot: &pss::Snapshot) -> Result<Stacks> {
    Walker::new().stacks(snapshot)
}

/// The frames one found address stands for: its function, and the calls inlined into it
/// at that address (innermost first); outside every module, the perf map's name.
fn symbolize(
    modules: &[Module],
    jit: Option<&PerfMap>,
    f: &RawFrame,
    naming: &Naming,
) -> Vec<Frame> {
    let module = module_of(modules, f.address);
    let base = Frame {
        address: f.address,
        module: module.map(|m| m.path.clone()),
        module_offset: module.map(|m| f.address - m.avma.start),
        function: None,
        file: None,
        line: None,
        inlined: false,
        how: f.how,
        jit: false,
    };
    let lookup = if f.is_return {
        f.address - 1
    } else {
        f.address
    };
    if module.is_none() {
        let name = jit.and_then(|m| m.name(lookup));
        return vec![Frame {
            function: name.map(str::to_owned),
            jit: name.is_some(),
            ..base
        }];
    }
    let Some((m, image)) = module.and_then(|m| Some((m, m.image.as_ref()?))) else {
        return vec![base];
    };
    // A return address is just past the call: `lookup` is the call itself.
    let svma = lookup.wrapping_sub(m.bias);
    if let Some((_, name)) = image.own_symbols.iter().find(|(r, _)| r.contains(&svma)) {
        return vec![Frame {
            function: Some(name.clone()),
            ..base
        }];
    }
    let Some(names) = image.symbolizer(naming).map(|s| s.names(svma)) else {
        return vec![base];
    };
    if names.is_empty() {
        return vec![base];
    }
    let last = names.len() - 1;
    names
        .iter()
        .enumerate()
        .map(|(i, n)| Frame {
            function: n.function.clone(),
            file: n.file.clone(),
            line: n.line,
            inlined: i < last,
            ..base.clone()
        })
        .collect()
}
