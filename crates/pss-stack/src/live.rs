//! Capturing a live process for its stacks ([`capture_stacks`]): by default one thread at a
//! time — a thread blocked in a system call is read without being stopped, any other is
//! stopped alone — then every stack walked; a thread read while blocked whose walk needs a
//! register that reading does not give (its frame pointer, the link register) is read
//! again, stopped alone, and walked again. Or every thread stopped together
//! ([`LiveCapture::consistent`]), for one instant.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use pss::{CaptureOptions, ContextFlags, Snapshot, Target, ThreadReading};
use pss_types::error::Result;
use pss_types::flags::CaptureFlags;
use pss_types::records::{SnapshotRecords, Warning};

use super::{StackEnd, Stacks, Walker, CAPTURE_FLAGS};

/// How [`capture_stacks`] reads a process.
#[derive(Debug, Clone)]
pub struct LiveCapture {
    /// Stop every thread together, for one instant (as `PssCaptureSnapshot` does), rather
    /// than one at a time.
    pub consistent: bool,
    /// Capture a VA clone too, for stacks deeper than the copy (stops every thread
    /// together: a clone needs that).
    pub deep: bool,
    /// How long a thread (with `consistent`, all of them) may take to stop.
    pub timeout: Duration,
    /// How many bytes of each thread's stack to copy, from its stack pointer up.
    pub stack_bytes: usize,
}

impl Default for LiveCapture {
    /// One thread at a time, no clone, a 2 s timeout, 256 KiB of stack.
    fn default() -> LiveCapture {
        LiveCapture {
            consistent: false,
            deep: false,
            timeout: Duration::from_secs(2),
            stack_bytes: 256 << 10,
        }
    }
}

impl LiveCapture {
    /// The capture options for it.
    pub fn options(&self) -> CaptureOptions {
        let mut flags = CAPTURE_FLAGS;
        if self.deep {
            flags |= CaptureFlags::VA_CLONE;
        }
        // The registers unwinding needs, not the vector state: a shorter stop.
        let mut o = CaptureOptions::new(flags, ContextFlags::CONTROL | ContextFlags::INTEGER);
        o.stop_timeout = self.timeout;
        o.aux_stack_limit = self.stack_bytes;
        if !self.consistent && !self.deep {
            o.thread_reading = ThreadReading::OneByOne;
        }
        o
    }
}

/// Captures process `pid` as `how` says and walks every thread's stack with `walker`: the
/// snapshot (with the threads read again put in) and the stacks.
pub fn capture_stacks(
    pid: i32,
    how: &LiveCapture,
    walker: &mut Walker,
) -> Result<(Snapshot, Stacks)> {
    let mut options = how.options();
    let snap = Snapshot::capture_with(Target::Pid(pid), &options)?;
    walker.name_jit_frames(snap.process().process_id);
    let mut stacks = walker.stacks(&snap)?;
    let again: Vec<u32> = stacks
        .threads
        .iter()
        .filter(|t| t.end == StackEnd::NeedsRegisters)
        .map(|t| t.thread_id)
        .collect();
    if again.is_empty() {
        return Ok((snap, stacks));
    }
    options.only_threads = again;
    let second = match Snapshot::capture_with(Target::Pid(pid), &options) {
        Ok(s) => s,
        Err(e) => {
            stacks.warnings.push(format!(
                "{} thread(s) read while blocked needed their other registers, and reading them stopped failed: {e}",
                options.only_threads.len()
            ));
            return Ok((snap, stacks));
        }
    };
    let merged = Snapshot::from_records(merge(snap.records(), second.records()));
    let redone = walker.walk(
        &only(merged.records(), &options.only_threads),
        merged.memory(),
    )?;
    let by_tid: HashMap<u32, _> = redone
        .threads
        .into_iter()
        .map(|t| (t.thread_id, t))
        .collect();
    for t in &mut stacks.threads {
        if let Some(fresh) = by_tid.get(&t.thread_id) {
            *t = fresh.clone();
        }
    }
    Ok((merged, stacks))
}

/// `first` with the threads `again` read put in its place (entries and stack copies), and
/// its warnings.
fn merge(first: &SnapshotRecords, again: &SnapshotRecords) -> SnapshotRecords {
    let mut out = first.clone();
    let fresh: HashMap<u32, _> = again
        .threads
        .iter()
        .flatten()
        .map(|t| (t.thread_id, t))
        .collect();
    for t in out.threads.iter_mut().flatten() {
        if let Some(n) = fresh.get(&t.thread_id) {
            *t = (*n).clone();
        }
    }
    // Each thread's stop counts: the longest, and how many there were.
    out.capture.pause = out.capture.pause.max(again.capture.pause);
    out.capture.threads_stopped += again.capture.threads_stopped;
    if let (Some(pages), Some(new)) = (out.aux_pages.as_mut(), again.aux_pages.as_ref()) {
        pages.retain(|p| !fresh.contains_key(&p.thread_id));
        pages.extend(new.iter().cloned());
    }
    out.warnings.extend(again.warnings.iter().map(|w| Warning {
        tid: w.tid,
        fd: w.fd,
        message: format!("reading again: {}", w.message),
    }));
    out
}

/// `records` with only the threads `tids`.
fn only(records: &SnapshotRecords, tids: &[u32]) -> SnapshotRecords {
    let keep: HashSet<u32> = tids.iter().copied().collect();
    let mut out = records.clone();
    if let Some(t) = out.threads.as_mut() {
        t.retain(|t| keep.contains(&t.thread_id));
    }
    out
}
