//! Sealed memfds: bytes that cannot change once handed to another process.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, MemfdFlags, SealFlags};

/// Every seal: no write, no resize, no further change of seals.
fn all_seals() -> SealFlags {
    SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE
}

/// A new memfd named `name` holding `bytes`, sealed against any change (close-on-exec).
pub fn sealed(name: &str, bytes: &[u8]) -> io::Result<OwnedFd> {
    let fd = fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    let mut done = 0;
    while done < bytes.len() {
        done += rustix::io::pwrite(&fd, &bytes[done..], done as u64)?;
    }
    fs::fcntl_add_seals(&fd, all_seals())?;
    Ok(fd)
}

/// Whether `fd` is a memfd carrying every seal of [`sealed`] (its contents are then fixed).
pub fn is_sealed(fd: BorrowedFd<'_>) -> bool {
    fs::fcntl_get_seals(fd).is_ok_and(|s| s.contains(all_seals()))
}

/// The name `fd` was given by `memfd_create`, if it is a memfd (from `/proc/self/fd`).
pub fn name_of(fd: BorrowedFd<'_>) -> Option<String> {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    let link = link.to_str()?;
    let rest = link.strip_prefix("/memfd:")?;
    Some(rest.strip_suffix(" (deleted)").unwrap_or(rest).to_owned())
}

/// The first `len` bytes of `fd` (at most its size), read with `pread`.
pub fn read_prefix(fd: impl AsFd, len: usize) -> io::Result<Vec<u8>> {
    let size = fs::fstat(&fd)?.st_size.max(0) as u64;
    let len = len.min(usize::try_from(size).unwrap_or(usize::MAX));
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match rustix::io::pread(&fd, &mut buf[done..], done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    buf.truncate(done);
    Ok(buf)
}
