//! `/proc/PID/pagemap`: which pages of a range are populated (in memory or in swap), so that
//! a writer can skip the pages a process never touched without reading them.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Bit 63 of an entry: the page is present in memory.
const PRESENT: u64 = 1 << 63;
/// Bit 62: the page is in swap.
const SWAPPED: u64 = 1 << 62;

/// An open `pagemap` file and a reusable buffer of entries.
pub struct Pagemap {
    file: File,
    entries: Vec<u8>,
}

impl Pagemap {
    /// A `pagemap` file opened by the caller (through a pinned `/proc/PID` directory).
    pub fn from_file(file: File) -> Pagemap {
        Pagemap {
            file,
            entries: Vec::new(),
        }
    }

    /// The open file.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.file)
    }

    /// Fills `out` with one flag per page of `pages` pages from `start` (page-aligned):
    /// whether the page is present or swapped. A page that is neither was never touched
    /// (or was discarded): in a private anonymous mapping it reads as zeros.
    pub fn populated(&mut self, start: u64, pages: usize, out: &mut Vec<bool>) -> io::Result<()> {
        let page = crate::page_size();
        self.entries.resize(pages * 8, 0);
        self.file
            .read_exact_at(&mut self.entries, start / page * 8)?;
        out.clear();
        out.extend(self.entries.chunks_exact(8).map(|e| {
            let v = u64::from_le_bytes(e.try_into().expect("8 bytes"));
            v & (PRESENT | SWAPPED) != 0
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_pages_are_populated() {
        let page = crate::page_size() as usize;
        let mut buf = vec![0u8; page * 8];
        let start = (buf.as_ptr() as usize).next_multiple_of(page);
        let off = start - buf.as_ptr() as usize;
        // Touch the first of four pages; `vec!` zeros may be fresh untouched pages or not,
        // so only the touched one is certain.
        buf[off] = 1;
        let mut pm = Pagemap::from_file(File::open("/proc/self/pagemap").unwrap());
        let mut out = Vec::new();
        pm.populated(start as u64, 4, &mut out).unwrap();
        assert_eq!(out.len(), 4);
        assert!(out[0]);
        std::hint::black_box(&buf);
    }
}
