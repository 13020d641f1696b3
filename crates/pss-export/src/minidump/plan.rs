//! What a minidump will hold, decided before a byte is written: its threads, the memory
//! ranges of its 32-bit part (each thread's stack from its stack pointer up, TLS pages) and
//! where they come from (the clone, or the auxiliary pages copied in the pause), the ranges
//! of a full-memory dump, and where in the file each one goes.

use super::system::Host;
use crate::clone_proc::CloneProc;
use crate::layout::{self, Segment, Source};
use crate::{threads_with_registers, ExportOptions};
use pss::pump::Range;
use pss::Snapshot;
use pss_types::error::{Error, Result};
use pss_types::records::{AuxiliaryPageKind, ThreadEntry};

/// The most of a thread's stack a minidump holds, from its stack pointer up.
pub(crate) const MAX_STACK: u64 = 1 << 20;
/// Bytes below the stack pointer a function may still use (the x86_64 red zone).
const RED_ZONE: u64 = 128;

/// Where a range's bytes come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RangeSource<'a> {
    /// The VA clone.
    Clone,
    /// An auxiliary page copy.
    Bytes(&'a [u8]),
}

/// One range of the minidump's memory list.
#[derive(Debug, Clone)]
pub(crate) struct MemoryRange<'a> {
    pub start: u64,
    pub len: u64,
    /// The thread whose stack it is, if it is one.
    pub stack_of: Option<u32>,
    pub from: RangeSource<'a>,
    /// Its file offset, once assigned.
    pub rva: u64,
    /// Read from the clone, in a mapping the clone holds by itself (not a copy from the
    /// pause): the engine may read it ahead.
    pub direct: bool,
}

/// Everything a minidump will hold.
pub(crate) struct Plan<'a> {
    pub snapshot: &'a Snapshot,
    pub threads: Vec<&'a ThreadEntry>,
    pub ranges: Vec<MemoryRange<'a>>,
    /// Full memory: the segments the filter keeps, with bytes.
    pub full: Vec<Segment>,
    pub proc: Option<CloneProc>,
    pub host: Host,
    pub warnings: Vec<String>,
}

impl<'a> Plan<'a> {
    /// Decides what a minidump of `snapshot` holds.
    pub fn new(snapshot: &'a Snapshot, options: &ExportOptions<'_, '_>) -> Result<Plan<'a>> {
        let threads = threads_with_registers(snapshot)?;
        let clone = snapshot.va_clone();
        if options.full_memory && clone.is_none() {
            return Err(Error::NotFound {
                what: "VA clone (a full-memory minidump is written from the clone's memory)",
                flag: "PSS_CAPTURE_VA_CLONE",
            });
        }
        let proc = clone.map(CloneProc::read).transpose()?;
        let (segments, mut warnings) = match (clone, &proc) {
            (Some(c), Some(p)) => {
                let filter = options.filter.unwrap_or(p.filter);
                layout::segments(p, c, snapshot.va_space(), filter)
            }
            _ => (Vec::new(), Vec::new()),
        };
        let mut ranges = Vec::new();
        for t in &threads {
            let Some(range) = stack_range(snapshot, t, &segments) else {
                warnings.push(format!(
                    "thread {}: no stack memory (capture a VA clone or auxiliary pages)",
                    t.thread_id
                ));
                continue;
            };
            ranges.push(range);
        }
        for t in &threads {
            if let Some(r) = tls_range(snapshot, t, &segments) {
                if !ranges
                    .iter()
                    .any(|o| o.start < r.start + r.len && r.start < o.start + o.len)
                {
                    ranges.push(r);
                }
            }
        }
        let full = if options.full_memory {
            // [vsyscall] cannot be read (xonly): a core holds it as zeros, a minidump not.
            segments
                .into_iter()
                .filter(|s| s.file_size > 0 && s.vma.pathname != "[vsyscall]")
                .collect()
        } else {
            Vec::new()
        };
        if !full.is_empty() {
            warnings.retain(|w| !w.contains("no stack memory"));
        }
        Ok(Plan {
            snapshot,
            threads,
            ranges,
            full,
            proc,
            host: Host::read(),
            warnings,
        })
    }

    /// Places the ranges' bytes one after the other from file offset `base`; returns the
    /// offset after the last.
    pub fn assign(&mut self, base: u64) -> u64 {
        let mut at = base;
        for r in &mut self.ranges {
            r.rva = at;
            at += r.len;
        }
        at
    }

    /// The full-memory ranges: start and length.
    pub fn full_ranges(&self) -> Vec<(u64, u64)> {
        self.full
            .iter()
            .map(|s| (s.vma.start, s.file_size))
            .collect()
    }

    /// The ranges read from the clone's own memory, in the order they are written.
    pub fn direct_ranges(&self) -> Vec<Range> {
        let stacks = self.ranges.iter().filter(|r| r.direct).map(|r| Range {
            start: r.start,
            len: r.len,
            untouched_is_zero: false,
        });
        let full = self.full.iter().filter(|s| s.source == Source::Clone);
        let full = full.map(|s| Range {
            start: s.vma.start,
            len: s.file_size,
            untouched_is_zero: s.untouched_pages_are_zero(),
        });
        stacks.chain(full).collect()
    }
}

/// A thread's stack: from the page below its stack pointer (less the red zone) to the end
/// of its mapping in the clone, bounded; or the auxiliary stack copy.
fn stack_range<'a>(
    snapshot: &'a Snapshot,
    t: &ThreadEntry,
    segments: &[Segment],
) -> Option<MemoryRange<'a>> {
    let sp = t.context.as_ref()?.general.stack_pointer();
    let page = pss_sys::page_size();
    if let Some(seg) = segments
        .iter()
        .find(|s| s.vma.start <= sp && sp < s.vma.end && !matches!(s.source, Source::Missing(_)))
    {
        let start = (sp.saturating_sub(RED_ZONE) & !(page - 1)).max(seg.vma.start);
        let end = seg.vma.end.min(start + MAX_STACK);
        return Some(MemoryRange {
            start,
            len: end - start,
            stack_of: Some(t.thread_id),
            from: RangeSource::Clone,
            rva: 0,
            direct: seg.source == Source::Clone,
        });
    }
    aux_range(snapshot, t.thread_id, AuxiliaryPageKind::Stack)
}

/// The page at a thread's TLS base, from the clone or the auxiliary pages.
fn tls_range<'a>(
    snapshot: &'a Snapshot,
    t: &ThreadEntry,
    segments: &[Segment],
) -> Option<MemoryRange<'a>> {
    let base = t.context.as_ref()?.general.tls_base();
    let page = pss_sys::page_size();
    let start = base & !(page - 1);
    let seg = segments.iter().find(|s| {
        s.vma.start <= start && start + page <= s.vma.end && !matches!(s.source, Source::Missing(_))
    });
    if let Some(seg) = seg.filter(|_| base != 0) {
        return Some(MemoryRange {
            start,
            len: page,
            stack_of: None,
            from: RangeSource::Clone,
            rva: 0,
            direct: seg.source == Source::Clone,
        });
    }
    aux_range(snapshot, t.thread_id, AuxiliaryPageKind::Tls).map(|r| MemoryRange {
        stack_of: None,
        ..r
    })
}

fn aux_range(snapshot: &Snapshot, tid: u32, kind: AuxiliaryPageKind) -> Option<MemoryRange<'_>> {
    let p = snapshot
        .auxiliary_pages()?
        .iter()
        .find(|p| p.thread_id == tid && p.kind == kind)?;
    Some(MemoryRange {
        start: p.address,
        len: p.contents.len() as u64,
        stack_of: Some(tid),
        from: RangeSource::Bytes(&p.contents),
        rva: 0,
        direct: false,
    })
}
