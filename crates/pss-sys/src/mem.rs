//! Reading another process's memory through `/proc/PID/mem` (`pread`), and writing a few
//! bytes into a stopped tracee (`pwrite`).

use std::fs::File;
use std::os::unix::fs::FileExt;

/// An open `/proc/PID/mem`.
pub struct ProcMem {
    file: File,
}

impl ProcMem {
    /// Opens `/proc/PID/mem` read-only (a live thread's, if the leader has exited:
    /// [`super::procfs::mm_dir`]).
    pub fn open(pid: i32) -> std::io::Result<ProcMem> {
        Ok(ProcMem {
            file: File::open(format!("{}/mem", super::procfs::mm_dir(pid)))?,
        })
    }

    /// A `/proc/PID/mem` opened elsewhere (by the engine, which passed it to us): reads
    /// through it need no rights of our own over the process.
    pub fn from_fd(fd: std::os::fd::OwnedFd) -> ProcMem {
        ProcMem {
            file: File::from(fd),
        }
    }

    /// The open file.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.file)
    }

    /// Opens `/proc/PID/mem` for reading and writing (the caller traces `pid`).
    pub fn open_rw(pid: i32) -> std::io::Result<ProcMem> {
        Ok(ProcMem {
            file: std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(format!("{}/mem", super::procfs::mm_dir(pid)))?,
        })
    }

    /// A second handle on the same open file (`dup`).
    pub fn try_clone(&self) -> std::io::Result<ProcMem> {
        Ok(ProcMem {
            file: self.file.try_clone()?,
        })
    }

    /// Writes all of `buf` at `addr` (`pwrite`).
    pub fn write_exact(&self, addr: u64, buf: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(buf, addr)
    }

    /// Reads what it can at `addr` (`pread`): the byte count, short at the first
    /// unreadable page.
    pub fn read_at(&self, addr: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.file.read_at(buf, addr)
    }

    /// Reads exactly `buf.len()` bytes at `addr`; `false` if any part is unreadable.
    pub fn read_exact(&self, addr: u64, buf: &mut [u8]) -> bool {
        self.file.read_exact_at(buf, addr).is_ok()
    }
}

/// A zeroed buffer of `len` bytes whose pages are already faulted in, so that filling it
/// later (inside a pause) costs no page fault.
pub fn prefaulted(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    for i in (0..len).step_by(4096) {
        // SAFETY: `i` is inside the buffer; a volatile write cannot be elided, so the page
        // is touched now.
        unsafe { std::ptr::write_volatile(v.as_mut_ptr().add(i), 0) };
    }
    v
}

/// Copies from process `pid` (which we trace) into `bufs`, one buffer per range starting at
/// the paired address, with as few `process_vm_readv` calls as the kernel allows. Returns,
/// per range, whether it was read whole. A range that cannot be read whole (unmapped,
/// `PROT_NONE`) is skipped and the next ones are read by another call.
pub fn read_ranges(pid: i32, ranges: &mut [(u64, &mut [u8])]) -> Vec<bool> {
    const IOV_MAX: usize = 1024;
    let total = ranges.len();
    let mut whole = vec![false; total];
    let mut next = 0;
    while next < total {
        let batch = &mut ranges[next..(next + IOV_MAX).min(total)];
        let local: Vec<libc::iovec> = batch
            .iter_mut()
            .map(|(_, b)| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        let remote: Vec<libc::iovec> = batch
            .iter()
            .map(|(a, b)| libc::iovec {
                iov_base: *a as *mut libc::c_void,
                iov_len: b.len(),
            })
            .collect();
        // SAFETY: every local iovec points into a live buffer of ours of its length; the
        // remote ones are only addresses in the other process, which the kernel checks.
        let n = unsafe {
            libc::process_vm_readv(
                pid,
                local.as_ptr(),
                local.len() as libc::c_ulong,
                remote.as_ptr(),
                remote.len() as libc::c_ulong,
                0,
            )
        };
        // Ranges read whole, in order; the one where it stopped (if any) is given up.
        let mut left = n.max(0) as usize;
        let mut i = 0;
        while i < batch.len() && left >= batch[i].1.len() {
            left -= batch[i].1.len();
            whole[next + i] = true;
            i += 1;
        }
        next += if i < batch.len() { i + 1 } else { i };
    }
    whole
}
