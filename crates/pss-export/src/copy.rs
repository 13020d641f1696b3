//! Streaming memory from the clone to the output in large chunks: pages the clone never
//! populated are not read at all, zero pages become holes, unreadable pages zeros (as the
//! kernel writes them), and the writer's memory stays a few chunks whatever the target's
//! size.
//!
//! Large exports are read ahead by the engine (`pss::pump`): it fills one chunk
//! while this process writes the one before, so reading and writing use two cores without
//! a thread of the caller's. Small ones, and ranges the clone does not hold by itself
//! (copies from the pause), are read here.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use super::sink::Sink;
use super::Progress;
use pss::pump::Pump;
use pss::pump::{Chunk, Range};
use pss::VaClone;
use pss_sys::pagemap::Pagemap;
use pss_sys::pidfd;
use pss_types::error::{Error, Result};

/// Bytes read from the clone at a time.
pub(crate) const CHUNK: usize = 1 << 20;
/// Below this many bytes, a pump costs more than it saves.
const PUMP_MIN: u64 = 8 << 20;

/// The caller's hold on a running export: its cancel flag and progress callback, and the
/// name of the output for errors.
pub(crate) struct Control<'a, 'p> {
    pub cancel: Option<&'a AtomicBool>,
    pub progress: Option<&'a mut (dyn FnMut(Progress) + 'p)>,
    pub total: u64,
    pub output: String,
}

impl Control<'_, '_> {
    /// Reports `done` bytes emitted, or stops if the caller cancelled.
    pub fn tick(&mut self, done: u64) -> Result<()> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Interrupted {
                what: format!("writing {}", self.output),
            });
        }
        if let Some(p) = self.progress.as_mut() {
            p(Progress {
                done,
                total: self.total,
            });
        }
        Ok(())
    }

    /// The error for a failed write to the output.
    pub fn output_error(&self, source: std::io::Error) -> Error {
        Error::Output {
            what: self.output.clone(),
            source,
        }
    }
}

/// Copies ranges of a clone's memory into a sink.
pub(crate) struct Copier<'c> {
    clone: &'c VaClone,
    pagemap: Option<&'c mut Pagemap>,
    buf: Vec<u8>,
    populated: Vec<bool>,
    page: u64,
    /// Ranges that could not be read and were written as zeros.
    pub unreadable: Vec<(u64, u64)>,
    /// The engine reading ahead, and the ranges it will still deliver, in order.
    pump: Option<Pump>,
    pumped: VecDeque<Range>,
}

impl<'c> Copier<'c> {
    /// A copier over `clone`, using its `pagemap` when there is one. `direct` lists the
    /// ranges, in the order they will be copied, that are the clone's own memory (not
    /// copies from the pause): when they are large, the engine reads them ahead.
    pub fn new(
        clone: &'c VaClone,
        pagemap: Option<&'c mut Pagemap>,
        direct: Vec<Range>,
    ) -> Copier<'c> {
        let total: u64 = direct.iter().map(|r| r.len).sum();
        let pump = if total >= PUMP_MIN {
            // Without a pump (no engine, no memfd) the ranges are read here: slower, not wrong.
            Pump::start(clone, pagemap.as_deref().map(Pagemap::as_fd), &direct)
                .ok()
                .flatten()
        } else {
            None
        };
        Copier {
            clone,
            pagemap,
            buf: vec![0; CHUNK],
            populated: Vec::new(),
            page: pss_sys::page_size(),
            unreadable: Vec::new(),
            pumped: if pump.is_some() {
                direct.into()
            } else {
                VecDeque::new()
            },
            pump,
        }
    }

    /// Fails if pages could not be read because the clone was dying: a clone killed (its
    /// engine died) can fail reads a moment before its pidfd says it exited, so unreadable
    /// pages are trusted only if it is still alive a moment after.
    pub fn check_clone(&self) -> Result<()> {
        let dying = !self.unreadable.is_empty()
            && pidfd::exits_within(self.clone.pidfd(), std::time::Duration::from_millis(100));
        if dying {
            return Err(self.clone.vanished());
        }
        Ok(())
    }

    /// Whether the engine reads ahead for this copier.
    pub fn reads_ahead(&self) -> bool {
        self.pump.is_some()
    }

    /// Copies `len` bytes from `start` into `sink`. With `untouched_is_zero` (private
    /// anonymous memory), pages the clone does not hold are holes, unread.
    pub fn copy(
        &mut self,
        start: u64,
        len: u64,
        untouched_is_zero: bool,
        sink: &mut Sink<'_>,
        ctl: &mut Control<'_, '_>,
    ) -> Result<()> {
        let next = self.pumped.front();
        if next.is_some_and(|r| r.start == start && r.len == len) {
            self.pumped.pop_front();
            let done = self.copy_pumped(start, len, sink, ctl)?;
            if done < start + len {
                // The pump broke (its engine died, say): the rest is read here, which
                // finds the clone gone if that is why.
                self.pump = None;
                self.pumped.clear();
                return self.copy_local(done, start + len - done, untouched_is_zero, sink, ctl);
            }
            return Ok(());
        }
        self.copy_local(start, len, untouched_is_zero, sink, ctl)
    }

    /// Copies `len` bytes from `start`, read here.
    fn copy_local(
        &mut self,
        start: u64,
        len: u64,
        untouched_is_zero: bool,
        sink: &mut Sink<'_>,
        ctl: &mut Control<'_, '_>,
    ) -> Result<()> {
        let end = start + len;
        let mut at = start;
        while at < end {
            let n = (end - at).min(CHUNK as u64);
            let pages = n.div_ceil(self.page) as usize;
            let known = untouched_is_zero
                && match self.pagemap.as_mut() {
                    Some(pm) => pm.populated(at, pages, &mut self.populated).is_ok(),
                    None => false,
                };
            if known {
                self.copy_populated(at, n, sink, ctl)?;
            } else {
                self.copy_run(at, n, sink, ctl)?;
            }
            at += n;
            ctl.tick(sink.emitted)?;
        }
        Ok(())
    }

    /// Copies a chunk whose populated pages `self.populated` lists: runs of untouched pages
    /// are holes.
    fn copy_populated(
        &mut self,
        at: u64,
        n: u64,
        sink: &mut Sink<'_>,
        ctl: &mut Control<'_, '_>,
    ) -> Result<()> {
        let flags = std::mem::take(&mut self.populated);
        let mut i = 0;
        while i < flags.len() {
            let run = flags[i..].iter().take_while(|&&p| p == flags[i]).count();
            let from = at + i as u64 * self.page;
            let len = (run as u64 * self.page).min(at + n - from);
            if flags[i] {
                self.copy_run(from, len, sink, ctl)?;
            } else {
                sink.zeros(len);
            }
            i += run;
        }
        self.populated = flags;
        Ok(())
    }

    /// Reads `len` (≤ one chunk) bytes at `at` and writes them; an unreadable page is
    /// zeros, unless the clone is gone.
    fn copy_run(
        &mut self,
        mut at: u64,
        len: u64,
        sink: &mut Sink<'_>,
        ctl: &mut Control<'_, '_>,
    ) -> Result<()> {
        let end = at + len;
        while at < end {
            let want = (end - at) as usize;
            let got = self.clone.read(at, &mut self.buf[..want]).unwrap_or(0);
            sink.write_sparse(&self.buf[..got], self.page as usize)
                .map_err(|e| ctl.output_error(e))?;
            at += got as u64;
            if at < end {
                let skip = (self.page - at % self.page).min(end - at);
                unreadable(self.clone, &mut self.unreadable, at, skip, sink)?;
                at += skip;
            }
        }
        Ok(())
    }

    /// Copies a range the pump reads, chunk by chunk as it delivers them; returns how far
    /// it got (short of the end if the pump broke).
    fn copy_pumped(
        &mut self,
        start: u64,
        len: u64,
        sink: &mut Sink<'_>,
        ctl: &mut Control<'_, '_>,
    ) -> Result<u64> {
        let Some(pump) = self.pump.as_mut() else {
            return Ok(start);
        };
        let end = start + len;
        let mut at = start;
        while at < end {
            let Ok(c) = pump.next_chunk() else {
                return Ok(at);
            };
            if c.addr != at || c.len == 0 || c.addr + c.len > end {
                return Err(Error::Internal(format!(
                    "the pump delivered {:#x}+{:#x} where {at:#x} was due",
                    c.addr, c.len
                )));
            }
            let page = self.page;
            let pages = c.len.div_ceil(page) as usize;
            let data = pump.data(&c);
            let mut i = 0;
            while i < pages {
                let state = |j: usize| (Chunk::bit(&c.populated, j), Chunk::bit(&c.unreadable, j));
                let run = (i..pages).take_while(|&j| state(j) == state(i)).count();
                let from = i * page as usize;
                let to = ((i + run) * page as usize).min(c.len as usize);
                let addr = c.addr + from as u64;
                match state(i) {
                    (false, _) => sink.zeros((to - from) as u64),
                    (true, true) => {
                        let len = (to - from) as u64;
                        unreadable(self.clone, &mut self.unreadable, addr, len, sink)?;
                    }
                    (true, false) => sink
                        .write_sparse(&data[from..to], page as usize)
                        .map_err(|e| ctl.output_error(e))?,
                }
                i += run;
            }
            at += c.len;
            pump.free(c);
            ctl.tick(sink.emitted)?;
        }
        Ok(at)
    }
}

/// `len` bytes at `at` could not be read: an error if the clone is gone, else zeros in the
/// output (as the kernel writes them), noted in `ranges` (adjacent ranges joined).
fn unreadable(
    clone: &VaClone,
    ranges: &mut Vec<(u64, u64)>,
    at: u64,
    len: u64,
    sink: &mut Sink<'_>,
) -> Result<()> {
    if pidfd::has_exited(clone.pidfd()) {
        return Err(clone.vanished());
    }
    match ranges.last_mut() {
        Some(last) if last.1 == at => last.1 += len,
        _ => ranges.push((at, at + len)),
    }
    sink.zeros(len);
    Ok(())
}
