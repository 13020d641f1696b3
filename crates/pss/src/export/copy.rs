//! Streaming memory from the clone to the output in large chunks: pages the clone never
//! populated are not read at all, zero pages become holes, unreadable pages zeros (as the
//! kernel writes them), and the writer's memory stays one chunk whatever the target's size.

use std::sync::atomic::{AtomicBool, Ordering};

use super::clone_proc::vanished;
use super::sink::Sink;
use super::Progress;
use crate::error::{Error, Result};
use crate::linux::pagemap::Pagemap;
use crate::linux::pidfd;
use crate::va_clone::VaClone;

/// Bytes read from the clone at a time.
pub(crate) const CHUNK: usize = 1 << 20;

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
}

impl<'c> Copier<'c> {
    /// A copier over `clone`, using its `pagemap` when there is one.
    pub fn new(clone: &'c VaClone, pagemap: Option<&'c mut Pagemap>) -> Copier<'c> {
        Copier {
            clone,
            pagemap,
            buf: vec![0; CHUNK],
            populated: Vec::new(),
            page: crate::linux::page_size(),
            unreadable: Vec::new(),
        }
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
                if pidfd::has_exited(self.clone.pidfd()) {
                    return Err(vanished(self.clone));
                }
                let skip = (self.page - at % self.page).min(end - at);
                self.note_unreadable(at, skip);
                sink.zeros(skip);
                at += skip;
            }
        }
        Ok(())
    }

    fn note_unreadable(&mut self, at: u64, len: u64) {
        match self.unreadable.last_mut() {
            Some(last) if last.1 == at => last.1 += len,
            _ => self.unreadable.push((at, at + len)),
        }
    }
}
