//! What a VA clone could not hold by itself: ranges copied during the pause, and ranges
//! that are missing from it.

/// Why a range of the target was copied during the pause, or is missing from the clone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopyReason {
    /// `MADV_DONTFORK`: a fork leaves the mapping out of the child.
    DontFork,
    /// `MADV_WIPEONFORK`: a fork gives the child zeros.
    WipeOnFork,
    /// A writable shared mapping: a clone sees its live contents, so it was copied to freeze
    /// it (only when asked for, within a bound).
    Shared,
}

impl CopyReason {
    /// A short name (`dontfork`, `wipeonfork`, `shared`).
    pub fn name(self) -> &'static str {
        match self {
            CopyReason::DontFork => "dontfork",
            CopyReason::WipeOnFork => "wipeonfork",
            CopyReason::Shared => "shared",
        }
    }
}

/// A range of the target that a clone lacks, copied from the target. Reads of the clone
/// return these bytes for the range.
#[derive(Clone, PartialEq, Eq)]
pub struct CopiedRange {
    /// First address.
    pub start: u64,
    /// The bytes.
    pub data: Vec<u8>,
    /// Why it was copied.
    pub reason: CopyReason,
    /// Whether the bytes are those of the capture instant (copied while the target was
    /// stopped), or were copied after the pause from the running target
    /// ([`ForkedAwayCopy::AfterPause`]).
    pub at_pause: bool,
}

/// When the ranges a clone lacks (`MADV_DONTFORK`, `MADV_WIPEONFORK`) are copied from the
/// target (`docs/differences.md`, "Forked-away memory").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForkedAwayCopy {
    /// During the pause: the bytes of the capture instant; the pause grows by the copy
    /// (at memory speed: about 0.3 ms per MiB here).
    #[default]
    DuringPause,
    /// After the pause, from the running target: the pause stays at the fork's length, but
    /// the bytes may have changed since the capture instant (each copy says so).
    AfterPause,
    /// Never: the ranges are holes in the clone.
    Never,
}

impl CopiedRange {
    /// One past the last address.
    pub fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }
}

impl std::fmt::Debug for CopiedRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopiedRange")
            .field("start", &format_args!("{:#x}", self.start))
            .field("len", &self.data.len())
            .field("reason", &self.reason)
            .finish()
    }
}

/// A range of the target that the clone does not hold (absent or zeroed by the fork) and
/// that was not copied: over the copy limit, or unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryHole {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Why the clone lacks it.
    pub reason: CopyReason,
}

/// What an auxiliary page copy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuxiliaryPageKind {
    /// A thread's live stack, from the page holding its stack pointer upward.
    Stack,
    /// The page at a thread's TLS base (`fs_base` / `tpidr_el0`).
    Tls,
}

/// `PSS_AUXILIARY_PAGE_ENTRY`: a copy of target memory taken during the pause (the Linux
/// meaning of the reserved `PSS_CAPTURE_AUXILIARY_PAGES` bit: thread stacks and TLS pages,
/// enough to unwind every thread without a clone).
#[derive(Clone, PartialEq, Eq)]
pub struct AuxiliaryPage {
    /// `Address`: the first byte copied (page-aligned).
    pub address: u64,
    /// The thread it belongs to (a Linux addition).
    pub thread_id: u32,
    /// Stack or TLS (a Linux addition).
    pub kind: AuxiliaryPageKind,
    /// `CaptureTime`.
    pub capture_time: std::time::SystemTime,
    /// `PageContents`; its length is `PageSize` (a multiple of the page size, bounded per
    /// thread for stacks).
    pub contents: Vec<u8>,
}

impl std::fmt::Debug for AuxiliaryPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuxiliaryPage")
            .field("address", &format_args!("{:#x}", self.address))
            .field("thread_id", &self.thread_id)
            .field("kind", &self.kind)
            .field("len", &self.contents.len())
            .finish()
    }
}
