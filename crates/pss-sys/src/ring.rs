//! A ring of equal slots in memory shared by two processes (a memfd both map): one side
//! fills a slot and says so over a socket, the other reads it and hands it back. The
//! socket messages decide who owns a slot; only its owner touches it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{fstat, ftruncate, memfd_create, MemfdFlags};

/// A mapped ring.
pub struct Ring {
    ptr: *mut u8,
    len: usize,
    slot_size: usize,
}

// SAFETY: the mapping is plain shared memory; which thread may touch which slot is decided
// by the protocol that moves the ring between threads, as for any owned buffer.
unsafe impl Send for Ring {}

impl Ring {
    /// A new ring of `slots` slots of `slot_size` bytes in a fresh memfd; returns it and the
    /// memfd, to be handed to the other side.
    pub fn create(slots: usize, slot_size: usize) -> io::Result<(Ring, OwnedFd)> {
        let fd = memfd_create("pss-pump", MemfdFlags::CLOEXEC)?;
        let len = slots
            .checked_mul(slot_size)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        ftruncate(&fd, len as u64)?;
        let ring = Self::map(fd.as_fd(), slots, slot_size)?;
        Ok((ring, fd))
    }

    /// Maps the ring another process made in memfd `fd`; fails if the memfd is smaller than
    /// `slots` × `slot_size`.
    pub fn map(fd: BorrowedFd<'_>, slots: usize, slot_size: usize) -> io::Result<Ring> {
        let len = slots
            .checked_mul(slot_size)
            .filter(|&l| l > 0)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        if (fstat(fd)?.st_size as u64) < len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the ring's memfd is too small",
            ));
        }
        // SAFETY: a new shared mapping of `len` bytes of a memfd at least that long; the
        // kernel picks the address, nothing existing is replaced.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Ring {
            ptr: ptr.cast(),
            len,
            slot_size,
        })
    }

    /// The size of a slot.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// How many slots there are.
    pub fn slots(&self) -> usize {
        self.len / self.slot_size
    }

    /// Slot `i`, to read. The caller owns it by the protocol (the other side does not write
    /// it until it is handed back).
    pub fn slot(&self, i: usize) -> &[u8] {
        assert!(i < self.slots(), "slot {i} of {}", self.slots());
        // SAFETY: inside the live mapping; exclusive use of the slot is the protocol's.
        unsafe { std::slice::from_raw_parts(self.ptr.add(i * self.slot_size), self.slot_size) }
    }

    /// Slot `i`, to fill. As for [`Ring::slot`].
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        assert!(i < self.slots(), "slot {i} of {}", self.slots());
        // SAFETY: inside the live mapping; `&mut self` excludes other uses in this process,
        // and the protocol the other side's.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(i * self.slot_size), self.slot_size) }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`, which no slice outlives (they
        // borrow the ring).
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_mappings_share_the_slots() {
        let (mut a, fd) = Ring::create(3, 4096).unwrap();
        let b = Ring::map(fd.as_fd(), 3, 4096).unwrap();
        a.slot_mut(2)[7] = 42;
        assert_eq!(b.slot(2)[7], 42);
        assert_eq!((b.slots(), b.slot_size()), (3, 4096));
        assert!(
            Ring::map(fd.as_fd(), 4, 4096).is_err(),
            "larger than the memfd"
        );
    }
}
