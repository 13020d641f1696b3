//! Reading another process's memory through `/proc/PID/mem` (`pread`), and writing a few
//! bytes into a stopped tracee (`pwrite`).

use std::fs::File;
use std::os::unix::fs::FileExt;

/// An open `/proc/PID/mem`.
pub struct ProcMem {
    file: File,
}

impl ProcMem {
    /// Opens `/proc/PID/mem` read-only.
    pub fn open(pid: i32) -> std::io::Result<ProcMem> {
        Ok(ProcMem {
            file: File::open(format!("/proc/{pid}/mem"))?,
        })
    }

    /// A `/proc/PID/mem` opened elsewhere (by the engine, which passed it to us): reads
    /// through it need no rights of our own over the process.
    pub fn from_fd(fd: std::os::fd::OwnedFd) -> ProcMem {
        ProcMem {
            file: File::from(fd),
        }
    }

    /// Opens `/proc/PID/mem` for reading and writing (the caller traces `pid`).
    pub fn open_rw(pid: i32) -> std::io::Result<ProcMem> {
        Ok(ProcMem {
            file: std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(format!("/proc/{pid}/mem"))?,
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
