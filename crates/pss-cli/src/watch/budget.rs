//! The disk budget of a watch: at most `--max-bytes` written in all, and never less than
//! `--min-free` (by default 5% of the file system) left free on the output's file system.
//! A dump that would pass either is not written, and the watch ends.

use std::path::{Path, PathBuf};

/// What may still be written.
pub struct Budget {
    dir: PathBuf,
    max_bytes: Option<u64>,
    min_free: Option<u64>,
    written: u64,
    exhausted: bool,
}

impl Budget {
    /// For dumps into `dir`.
    pub fn new(dir: &Path, max_bytes: Option<u64>, min_free: Option<u64>) -> Budget {
        Budget {
            dir: dir.to_owned(),
            max_bytes,
            min_free,
            written: 0,
            exhausted: false,
        }
    }

    /// Whether a dump of about `bytes` may be written; `Err` says why not (and the budget
    /// is then exhausted).
    pub fn allows(&mut self, bytes: u64) -> Result<(), String> {
        let why = self.refusal(bytes);
        self.exhausted |= why.is_some();
        why.map_or(Ok(()), Err)
    }

    fn refusal(&self, bytes: u64) -> Option<String> {
        if let Some(max) = self.max_bytes {
            if self.written + bytes > max {
                return Some(format!(
                    "the disk budget: {} written, a dump of about {} more would pass --max-bytes {}",
                    crate::units::size(self.written),
                    crate::units::size(bytes),
                    crate::units::size(max)
                ));
            }
        }
        let fs = rustix::fs::statvfs(&self.dir).ok()?;
        let free = fs.f_bavail.saturating_mul(fs.f_frsize);
        let floor = self
            .min_free
            .unwrap_or(fs.f_blocks.saturating_mul(fs.f_frsize) / 20);
        (free < bytes.saturating_add(floor)).then(|| {
            format!(
                "the free-space floor: {} free on {}, a dump of about {} would leave less than {}",
                crate::units::size(free),
                self.dir.display(),
                crate::units::size(bytes),
                crate::units::size(floor)
            )
        })
    }

    /// Notes `bytes` written.
    pub fn spent(&mut self, bytes: u64) {
        self.written += bytes;
    }

    /// Whether a dump was refused: the watch ends.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }
}
