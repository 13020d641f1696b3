//! Snapshots held in a sealed memfd: those duplicated into a process, by another process or
//! by this one (`docs/format.md` §6).
//!
//! Their `HPSS` names the memfd: the fd number in the low 32 bits, and in the high 32 bits
//! `0x7` then the low 28 bits of the snapshot's id (from the memfd's header). A process that
//! was handed such a handle resolves it on first use by reading the memfd; the memfd is the
//! snapshot's storage, so closing it (a local or remote `PssFreeSnapshot`) frees it. Handles
//! of local captures have `0x50535300` in their low 32 bits, above any fd number Linux allows
//! (`nr_open` ≤ 2^30), so the two kinds never meet.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use pss_core::format::Header;
use pss_core::{Error, Result, Snapshot};

/// The top nibble of a memfd handle's high half.
const TAG: u32 = 0x7000_0000;
const TAG_MASK: u32 = 0xF000_0000;
/// Fd numbers are below `nr_open`, at most 2^30.
const FD_LIMIT: u32 = 1 << 30;

/// The identity of an open file: (device, inode).
pub type Identity = (u64, u64);

/// The `HPSS` of the snapshot with identifier `id` held in fd `fd` of some process.
pub fn handle_for(fd: i32, id: u64) -> usize {
    let high = TAG | (id as u32 & !TAG_MASK);
    ((high as usize) << 32) | fd as usize
}

/// The fd and id bits a memfd handle names, or `None` for any other value.
pub fn parse(h: usize) -> Option<(i32, u32)> {
    let high = (h as u64 >> 32) as u32;
    let low = h as u32;
    (high & TAG_MASK == TAG && low < FD_LIMIT).then_some((low as i32, high & !TAG_MASK))
}

/// Whether `header` is the one handle `h` names.
pub fn matches(h: usize, header: &Header) -> bool {
    parse(h).is_some_and(|(_, bits)| bits == header.id as u32 & !TAG_MASK)
}

/// Fd `fd` of this process, if it is open. Also how the API checks a process `HANDLE`.
pub fn borrow(fd: i32) -> Option<BorrowedFd<'static>> {
    // SAFETY: F_GETFD on any int only reads the fd table.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the fd is open; it is only used during the current call (the caller keeps its
    // handle meanwhile), and the library closes it only as the last step of a free.
    Some(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// The fd of this process that memfd handle `h` names, if it is open.
fn local_fd(h: usize) -> Result<(i32, BorrowedFd<'static>)> {
    let (fd, _) = parse(h).ok_or_else(|| not_a_handle(h))?;
    Ok((fd, borrow(fd).ok_or_else(|| not_a_handle(h))?))
}

/// The identity of fd `fd` of this process, if it is open.
pub fn identity(fd: i32) -> Option<Identity> {
    let st = rustix::fs::fstat(borrow(fd)?).ok()?;
    Some((st.st_dev, st.st_ino))
}

/// Reads the snapshot behind handle `h` from this process's fd, checking that the memfd is
/// the one the handle names. Returns it and the memfd's identity.
pub fn load(h: usize) -> Result<(Snapshot, Identity)> {
    let (fd, b) = local_fd(h)?;
    let (snap, header) = Snapshot::from_memfd(b)?;
    if !matches(h, &header) {
        return Err(stale(h, fd));
    }
    Ok((snap, identity(fd).ok_or_else(|| not_a_handle(h))?))
}

/// Checks that fd `fd` of this process is the snapshot handle `h` names (header only).
pub fn check_local(h: usize) -> Result<i32> {
    let (fd, b) = local_fd(h)?;
    if !matches(h, &Header::read_memfd(b)?) {
        return Err(stale(h, fd));
    }
    Ok(fd)
}

/// Closes this process's fd `fd` (the storage of a snapshot being freed).
pub fn close(fd: i32) {
    // SAFETY: `fd` was just checked to be the snapshot memfd the freed handle owns; nothing
    // else in the library holds it.
    drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
}

/// A snapshot memfd of another process, as [`fetch_remote`] found it.
pub struct Remote {
    /// Its fd number in that process.
    pub fd: i32,
    /// Our copy of it.
    pub copy: OwnedFd,
    /// Its header.
    pub header: Header,
}

/// A copy (in this process) of the snapshot memfd handle `h` names in the process `pidfd`,
/// checked (header only).
pub fn fetch_remote(pidfd: BorrowedFd<'_>, h: usize) -> Result<Remote> {
    let (fd, _) = parse(h).ok_or_else(|| remote_unsupported(h))?;
    let copy = pss_core::remote::get_fd(pidfd, fd)?;
    let header = Header::read_memfd(copy.as_fd())?;
    if !matches(h, &header) {
        return Err(stale(h, fd));
    }
    Ok(Remote { fd, copy, header })
}

/// Puts a copy of `memfd` into the process `pidfd`; the handle that names it there.
pub fn install(pidfd: BorrowedFd<'_>, memfd: BorrowedFd<'_>, id: u64) -> Result<usize> {
    let n = pss_core::remote::install_fd(pidfd, memfd)?;
    Ok(handle_for(n, id))
}

fn not_a_handle(h: usize) -> Error {
    Error::InvalidParameter(format!("{h:#x} is not a live snapshot handle (HPSS)"))
}

fn stale(h: usize, fd: i32) -> Error {
    Error::InvalidParameter(format!(
        "{h:#x}: fd {fd} holds another snapshot than the one this handle named"
    ))
}

fn remote_unsupported(h: usize) -> Error {
    Error::NotSupported {
        what: format!(
            "{h:#x} names a snapshot captured by that process, which lives in its own memory; only snapshots duplicated into a process can be freed or duplicated from outside it (as on Windows, docs/capi.md)"
        ),
    }
}

/// Keeps `fd` open in this process and returns its raw number (ownership moves to the
/// handle that names it).
pub fn keep(fd: OwnedFd) -> i32 {
    std::os::fd::IntoRawFd::into_raw_fd(fd)
}
