//! The memory an export holds: the clone's mappings, with the ranges a fork leaves out
//! (`MADV_DONTFORK`, `MADV_WIPEONFORK`) put back from the copies taken in the pause, each
//! with how much of it the filter keeps.

use std::ffi::OsString;

use super::clone_proc::{CloneProc, CloneVma};
use super::filter::{self, DumpExtent, DumpFilter, MappingKind};
use pss::VaClone;
use pss_types::records::{CopyReason, MemoryRegion};

/// Where a segment's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The clone's memory.
    Clone,
    /// A copy taken from the target (in the pause, unless the copy says otherwise).
    Copied,
    /// Nowhere: a forked-away range that was not copied.
    Missing(CopyReason),
}

/// One mapping of the target at the pause, and how much of it the export holds.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub vma: CloneVma,
    pub source: Source,
    /// Bytes of it the export holds, from its start: 0, one page, or all of it.
    pub file_size: u64,
}

impl Segment {
    /// Its length in memory.
    pub fn len(&self) -> u64 {
        self.vma.end - self.vma.start
    }

    /// Whether it is private anonymous memory read from the clone, where a page the
    /// clone's page tables do not hold is a page of zeros (and need not be read). Kernel
    /// mappings (`[vdso]`, `[vvar]`, …) fill their page tables on first touch and are not.
    pub fn untouched_pages_are_zero(&self) -> bool {
        let name = self.vma.pathname.as_encoded_bytes();
        let anonymous = name.is_empty()
            || name == b"[heap]"
            || name.starts_with(b"[stack")
            || name.starts_with(b"[anon:");
        self.source == Source::Clone
            && self.vma.inode == 0
            && self.vma.perms[3] == b'p'
            && anonymous
    }

    /// Whether it is backed by a file (for `NT_FILE` and module lists).
    pub fn is_file(&self) -> bool {
        self.vma.inode != 0
    }
}

/// The segments of an export, in address order, and warnings for what could not be held.
pub(crate) fn segments(
    proc: &CloneProc,
    clone: &VaClone,
    regions: Option<&[MemoryRegion]>,
    filter: DumpFilter,
) -> (Vec<Segment>, Vec<String>) {
    let mut all: Vec<(CloneVma, Source)> = proc
        .vmas
        .iter()
        .map(|v| (v.clone(), source_of(clone, v.start, v.end)))
        .collect();
    // Forked-away mappings are absent from the clone: put them back where they were.
    let forked_away = clone
        .copies()
        .iter()
        .filter(|c| c.reason == CopyReason::DontFork)
        .map(|c| (c.start, c.end(), Source::Copied))
        .chain(
            clone
                .holes()
                .iter()
                .filter(|h| h.reason == CopyReason::DontFork)
                .map(|h| (h.start, h.end, Source::Missing(h.reason))),
        );
    for (start, end, source) in forked_away {
        if !all.iter().any(|(v, _)| v.start < end && start < v.end) {
            all.push((forked_away_vma(start, end, regions), source));
        }
    }
    all.sort_by_key(|(v, _)| v.start);
    let mut warnings = Vec::new();
    let segs = all
        .into_iter()
        .map(|(vma, source)| {
            let extent = extent_of(&vma, source, filter, clone);
            let file_size = match (source, extent) {
                (_, DumpExtent::Nothing) => 0,
                (Source::Missing(reason), _) => {
                    warnings.push(missing_warning(&vma, reason));
                    0
                }
                (_, DumpExtent::FirstPage) => pss_sys::page_size().min(vma.end - vma.start),
                (_, DumpExtent::Whole) => vma.end - vma.start,
            };
            Segment {
                vma,
                source,
                file_size,
            }
        })
        .collect();
    (segs, warnings)
}

fn source_of(clone: &VaClone, start: u64, end: u64) -> Source {
    let overlaps = |s: u64, e: u64| s < end && start < e;
    if let Some(h) = clone.holes().iter().find(|h| overlaps(h.start, h.end)) {
        return Source::Missing(h.reason);
    }
    if clone.copies().iter().any(|c| overlaps(c.start, c.end())) {
        return Source::Copied;
    }
    Source::Clone
}

/// A forked-away mapping, described by the snapshot's VA space where it has it (and as
/// private anonymous read-write memory where it does not).
fn forked_away_vma(start: u64, end: u64, regions: Option<&[MemoryRegion]>) -> CloneVma {
    let linux = regions
        .unwrap_or_default()
        .iter()
        .find(|r| r.base_address <= start && start < r.base_address + r.region_size)
        .and_then(|r| r.linux.as_ref());
    CloneVma {
        start,
        end,
        perms: linux.map_or(*b"rw-p", |l| l.perms),
        offset: linux.map_or(0, |l| l.offset),
        inode: linux.map_or(0, |l| l.inode),
        pathname: linux.map_or_else(OsString::new, |l| l.pathname.clone()),
        // The copy has bytes; a fork would not have left it out had it held none.
        anonymous: end - start,
        swap: 0,
        dont_dump: false,
        io: false,
        hugetlb: false,
    }
}

fn extent_of(vma: &CloneVma, source: Source, filter: DumpFilter, clone: &VaClone) -> DumpExtent {
    let kind = MappingKind {
        pathname: vma.pathname.as_encoded_bytes(),
        file: vma.inode != 0,
        shared: vma.perms[3] == b's',
        readable: vma.perms[0] == b'r',
        offset: vma.offset,
        written: vma.anonymous > 0 || vma.swap > 0 || source != Source::Clone,
        dont_dump: vma.dont_dump,
        io: vma.io,
        hugetlb: vma.hugetlb,
    };
    filter::extent(&kind, filter, || {
        let mut magic = [0u8; 4];
        clone.read_exact(vma.start, &mut magic).is_ok() && magic == *b"\x7fELF"
    })
}

fn missing_warning(vma: &CloneVma, reason: CopyReason) -> String {
    format!(
        "{:#x}-{:#x} ({} bytes, {}) was left out of the clone by the fork and not copied in the pause: \
         its segment holds no bytes (raise the copy limit, or capture with forked-away copies on)",
        vma.start,
        vma.end,
        vma.end - vma.start,
        match reason {
            CopyReason::DontFork => "MADV_DONTFORK",
            CopyReason::WipeOnFork => "MADV_WIPEONFORK",
            CopyReason::Shared => "shared",
        }
    )
}
