//! The plain records of a snapshot (spec §6–7), kept apart from the code that fills them.
//!
//! Field names follow the Windows structure fields in snake_case, so that
//! `docs/mapping.md`, the JSON output and the C ABI line up one to one; values use
//! Linux-natural types (`SystemTime`, `Duration`, `PathBuf`). [`crate::units`] converts them
//! to the Windows units.

mod clone;
mod context;
mod fields;
mod handle;
mod perf;
mod process;
mod region;
#[cfg(feature = "samples")]
mod sample;
mod thread;

pub use clone::*;
pub use context::*;
pub use fields::Fields;
pub use handle::*;
pub use perf::*;
pub use process::*;
pub use region::*;
pub use thread::*;

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::flags::{CaptureFlags, ContextFlags};

/// Something that went wrong with one part of the capture without failing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The thread concerned, if any.
    pub tid: Option<i32>,
    /// The fd concerned, if any.
    pub fd: Option<i32>,
    /// What happened.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.tid, self.fd) {
            (Some(t), _) => write!(f, "thread {t}: {}", self.message),
            (_, Some(d)) => write!(f, "fd {d}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// How the capture went (a Linux addition: Windows has no such record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureInfo {
    /// The target's pid (in the capturer's pid namespace).
    pub pid: i32,
    /// The capture flags asked for.
    pub flags: CaptureFlags,
    /// The `ThreadContextFlags` asked for.
    pub context_flags: ContextFlags,
    /// When the capture started.
    pub started: SystemTime,
    /// How long the target was stopped: from the first thread's interrupt to the last
    /// thread's detach. Zero when nothing needed stopping.
    pub pause: Duration,
    /// How many threads were stopped together.
    pub threads_stopped: usize,
    /// How many listing rounds it took for the thread set to be stable.
    pub seize_rounds: u32,
    /// The whole capture, from the call to the returned snapshot.
    pub total: Duration,
}

impl Warning {
    /// A warning about the capture as a whole.
    pub fn new(message: impl Into<String>) -> Warning {
        Warning {
            tid: None,
            fd: None,
            message: message.into(),
        }
    }

    /// A warning about thread `tid`.
    pub fn thread(tid: i32, message: impl Into<String>) -> Warning {
        Warning {
            tid: Some(tid),
            ..Warning::new(message)
        }
    }

    /// A warning about fd `fd`.
    pub fn fd(fd: i32, message: impl Into<String>) -> Warning {
        Warning {
            fd: Some(fd),
            ..Warning::new(message)
        }
    }
}

/// Everything one capture produced, as plain records: what the engine sends, a snapshot
/// file holds, and the caller's `Snapshot` serves (with the clone, which is not a record).
#[derive(Debug, Clone)]
pub struct SnapshotRecords {
    /// `PSS_PROCESS_INFORMATION`.
    pub process: ProcessInformation,
    /// The threads, if captured.
    pub threads: Option<Vec<ThreadEntry>>,
    /// The handles, if captured.
    pub handles: Option<Vec<HandleEntry>>,
    /// The VA space, if captured.
    pub va_space: Option<Vec<MemoryRegion>>,
    /// The auxiliary pages, if captured.
    pub aux_pages: Option<Vec<AuxiliaryPage>>,
    /// The performance counters, if asked for.
    pub performance: Option<PerformanceCounters>,
    /// How the capture went.
    pub capture: CaptureInfo,
    /// What went wrong without failing it.
    pub warnings: Vec<Warning>,
}
