//! What a caller asks a capture for: the [`Target`] and the [`CaptureOptions`].

use std::os::fd::BorrowedFd;
use std::time::Duration;

use crate::flags::{CaptureFlags, ContextFlags};
use crate::records::ForkedAwayCopy;

/// The process to capture.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A process by pid (in the caller's pid namespace).
    Pid(i32),
    /// A process by pidfd: the capture is of exactly that process, never a reused pid.
    PidFd(BorrowedFd<'a>),
    /// The calling process (Windows' `GetCurrentProcess()`).
    Current,
}

impl From<i32> for Target<'_> {
    fn from(pid: i32) -> Self {
        Target::Pid(pid)
    }
}

/// How the threads' registers and stacks are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThreadReading {
    /// Every thread stopped together, for one instant (the PSS way; needed by a VA clone).
    #[default]
    Together,
    /// One thread at a time, for a shorter stall: a thread blocked in a system call is not
    /// stopped at all (its stack is copied while it stays blocked, checked before and after);
    /// any other is stopped alone, only for its own registers and stack copy. Each thread is
    /// of its own instant (`ThreadLinux::read` says how each was read). Not with `VA_CLONE`.
    OneByOne,
}

/// Everything a capture can be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureOptions {
    /// What to capture (`PssCaptureSnapshot`'s `CaptureFlags`).
    pub flags: CaptureFlags,
    /// Which register groups to capture (`ThreadContextFlags`).
    pub context_flags: ContextFlags,
    /// How long the threads together may take to stop before the capture gives up and
    /// releases the target.
    pub stop_timeout: Duration,
    /// How many times the thread list is re-read for threads created during the pause.
    pub max_rounds: u32,
    /// With `VA_CLONE`: how many bytes of `MADV_DONTFORK`/`MADV_WIPEONFORK` mappings (which
    /// a clone lacks) may be copied from the stopped target; larger ones are reported as
    /// holes.
    pub fork_copy_limit: u64,
    /// With `VA_CLONE`: how many bytes of writable shared mappings (which stay live in a
    /// clone) to copy from the stopped target, so that they too are frozen. 0: none.
    pub shared_copy_limit: u64,
    /// With `AUXILIARY_PAGES`: how many bytes of each thread's stack to copy, from its
    /// stack pointer upward.
    pub aux_stack_limit: usize,
    /// With `VA_CLONE`: when the forked-away ranges are copied (during the pause by
    /// default; after it, or never, keep the pause at the fork's length).
    pub forked_away: ForkedAwayCopy,
    /// How the threads are read: together (default) or one by one.
    pub thread_reading: ThreadReading,
    /// With [`ThreadReading::OneByOne`]: read only these threads (by tid), each stopped
    /// alone — what a stack walk that needs a blocked thread's other registers asks for.
    /// Empty: every thread.
    pub only_threads: Vec<u32>,
}

impl CaptureOptions {
    /// Options with the default timeout (2 s), rounds (10), forked-away copy limit (16 MiB),
    /// no shared-memory copy, and 256 KiB of stack per thread for auxiliary pages.
    pub fn new(flags: CaptureFlags, context_flags: ContextFlags) -> CaptureOptions {
        CaptureOptions {
            flags,
            context_flags,
            stop_timeout: Duration::from_secs(2),
            max_rounds: 10,
            fork_copy_limit: 16 << 20,
            shared_copy_limit: 0,
            aux_stack_limit: 256 << 10,
            forked_away: ForkedAwayCopy::DuringPause,
            thread_reading: ThreadReading::Together,
            only_threads: Vec::new(),
        }
    }
}
