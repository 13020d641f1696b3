//! # pss — the Windows Process Snapshotting API for Linux
//!
//! Capture a live process — its threads with their registers, its file descriptors
//! ("handles"), its address space and its process facts — while it is stopped for as short
//! a time as the kernel allows, then query and walk the snapshot at leisure.
//!
//! ```no_run
//! use pss::{CaptureFlags, ContextFlags, Snapshot, Target, WalkClass, WalkMarker, WalkEntry};
//!
//! let flags = CaptureFlags::THREADS | CaptureFlags::THREAD_CONTEXT | CaptureFlags::HANDLES
//!     | CaptureFlags::HANDLE_NAME_INFORMATION | CaptureFlags::VA_SPACE;
//! let snap = Snapshot::capture(Target::Pid(1234), flags, ContextFlags::ALL)?;
//! println!("paused for {:?}", snap.capture_info().pause);
//!
//! // The PSS way: a walk marker.
//! let mut marker = WalkMarker::new();
//! while let Ok(WalkEntry::Handle(h)) = snap.walk(&mut marker, WalkClass::Handles) {
//!     println!("fd {} is a {}", h.handle, h.type_name.name());
//! }
//! // The Rust way: slices.
//! for t in snap.threads().unwrap_or_default() {
//!     println!("thread {}", t.thread_id);
//! }
//! # Ok::<(), pss::Error>(())
//! ```
//!
//! This is the caller's library: it never traces anything itself. Every capture runs in a
//! private engine process (`pss-engine`, the crate of that name) that this library starts
//! and talks to. Layout: [`flags`] (the enumerations with their Windows values),
//! [`records`] (plain data), [`units`] (conversions to Windows units) — the `pss-types`
//! crate's, re-exported — [`Snapshot`] and [`WalkMarker`], [`format`] (the snapshot
//! serialization, `pss-wire`'s) and [`remote`] (fds put into and taken out of another
//! process). Cores and minidumps are `pss-export`'s, stacks `pss-stack`'s. The Linux mapping
//! of every field is in `docs/mapping.md`, the format in `docs/format.md`.

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod client;
pub mod pump;
pub mod remote;
mod snapshot;
mod va_clone;
mod walk;

pub use client::{
    cleanup, engine_pid, interrupt as interrupt_engine, set_engine_path,
    shutdown as shutdown_engine,
};
pub use pss_types::error::{Error, ErrorKind, Result};
pub use pss_types::flags::{
    CaptureFlags, ContextFlags, DuplicateFlags, HandleFlags, ObjectType, ProcessFlags, QueryClass,
    ThreadFlags, WalkClass, PERF_RESOLUTION, STILL_ACTIVE,
};
pub use pss_types::memory::{Layered, Memory};
pub use pss_types::{error, flags, memory, records, units};
pub use pss_types::{CaptureOptions, Target, ThreadReading};
pub use pss_wire::format;
pub use pss_wire::format::MEMFD_NAME;
pub use snapshot::{QueryInfo, Snapshot, WalkEntry, CONTEXT_RECORD_SIZE};
pub use va_clone::VaClone;
pub use walk::{WalkMarker, WalkPosition};

/// The pid (in our pid namespace) of the process a pidfd refers to.
/// [`Error::InvalidParameter`] if `fd` is not a pidfd, [`Error::ProcessExited`] if the
/// process has been reaped.
pub fn pidfd_pid(fd: std::os::fd::BorrowedFd<'_>) -> Result<i32> {
    pss_sys::pidfd::pid_of(fd)
}
