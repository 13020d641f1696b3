//! [`VaClone`]: the copy-on-write clone of the target that a `PSS_CAPTURE_VA_CLONE`
//! snapshot holds, and reading its memory.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::client::{self, EngineRef};
use pss_sys::mem::ProcMem;
use pss_sys::pidfd;
use pss_types::error::{Error, Result};
use pss_types::memory::Memory;
use pss_types::records::{CopiedRange, MemoryHole};
use pss_wire::proto::CloneInfo;

/// A frozen copy-on-write clone of the target's address space, as it was during the pause
/// (`VaCloneHandle`).
///
/// The clone is a process (a child of the target, made by an injected `clone()`), kept
/// stopped by the engine process (`docs/engine.md`) under ptrace with `PTRACE_O_EXITKILL`,
/// its fds closed. Its private memory shares pages with the target until either writes to
/// them; [`read`](VaClone::read) uses `pread` on the clone's `/proc/PID/mem`, opened by the
/// engine and passed to us, which keeps them shared. Shared mappings stay live (see
/// `docs/differences.md`), except ranges copied during the pause ([`copies`](VaClone::copies)).
///
/// Dropping the last handle of the snapshot asks the engine to kill and reap the clone and
/// to reap its zombie inside the target with an injected `wait4` (a second,
/// sub-millisecond pause). Should this process die first, the engine does it.
pub struct VaClone {
    pub(crate) target: i32,
    pub(crate) pid: i32,
    pub(crate) pid_in_target: i32,
    /// Its pidfd (always `Some` until dropped), and the pidfd's identity: the C ABI lends
    /// its number as `VaCloneHandle`, and a caller that closed it must not have us close a
    /// reused number.
    pub(crate) pidfd: Option<OwnedFd>,
    pub(crate) pidfd_id: Option<(u64, u64)>,
    pub(crate) mem: ProcMem,
    pub(crate) copies: Vec<CopiedRange>,
    pub(crate) holes: Vec<MemoryHole>,
    /// The engine that holds it, and its name there.
    pub(crate) engine: EngineRef,
    pub(crate) id: u64,
}

impl std::fmt::Debug for VaClone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaClone")
            .field("target", &self.target)
            .field("pid", &self.pid)
            .field("pid_in_target", &self.pid_in_target)
            .field("copies", &self.copies)
            .field("holes", &self.holes)
            .finish()
    }
}

impl VaClone {
    /// The clone the engine described in `info`, with the descriptors it passed.
    pub(crate) fn held(
        info: CloneInfo,
        pidfd: OwnedFd,
        mem: OwnedFd,
        engine: EngineRef,
    ) -> VaClone {
        VaClone {
            target: info.target,
            pid: info.pid,
            pid_in_target: info.pid_in_target,
            pidfd_id: pidfd::fd_identity(pidfd.as_fd()),
            pidfd: Some(pidfd),
            mem: ProcMem::from_fd(mem),
            copies: info.copies,
            holes: info.holes,
            engine,
            id: info.id,
        }
    }

    /// The clone's pid (in the caller's pid namespace).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The clone's pid in the target's pid namespace.
    pub fn pid_in_target(&self) -> i32 {
        self.pid_in_target
    }

    /// A pidfd of the clone, owned by the snapshot (the same one on every call; closed when
    /// the snapshot is freed).
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_ref().expect("held until drop").as_fd()
    }

    /// Ranges copied from the stopped target during the pause (forked-away mappings and,
    /// when asked for, writable shared ones); reads return these bytes for them.
    pub fn copies(&self) -> &[CopiedRange] {
        &self.copies
    }

    /// Ranges of the target the clone does not hold and that were not copied.
    pub fn holes(&self) -> &[MemoryHole] {
        &self.holes
    }

    /// Reads the clone's memory at `address` into `buf`; returns how many bytes were read,
    /// which is short when the range runs into something unreadable.
    ///
    /// Nothing readable at `address` at all is [`Error::Unreadable`].
    pub fn read(&self, address: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0usize;
        let mut stop_reason = None;
        while done < buf.len() {
            let addr = address + done as u64;
            let rest = buf.len() - done;
            if let Some(c) = self
                .copies
                .iter()
                .find(|c| c.start <= addr && addr < c.end())
            {
                let off = (addr - c.start) as usize;
                let n = rest.min(c.data.len() - off);
                buf[done..done + n].copy_from_slice(&c.data[off..off + n]);
                done += n;
                continue;
            }
            if let Some(h) = self.holes.iter().find(|h| h.start <= addr && addr < h.end) {
                stop_reason = Some(format!(
                    "a {} mapping the clone does not hold (over the copy limit or unreadable)",
                    h.reason.name()
                ));
                break;
            }
            let next = self
                .copies
                .iter()
                .map(|c| c.start)
                .chain(self.holes.iter().map(|h| h.start))
                .filter(|&s| s > addr)
                .min()
                .map_or(rest, |s| rest.min((s - addr) as usize));
            match self.mem.read_at(addr, &mut buf[done..done + next]) {
                // The kernel reads nothing at all (end of file, where an unmapped address
                // is EIO) once the clone's memory is gone: it was killed.
                Ok(0) => return Err(self.vanished()),
                Ok(n) => done += n,
                Err(e) => {
                    stop_reason = Some(match e.raw_os_error() {
                        Some(libc::EIO) => "nothing readable is mapped there".into(),
                        _ => e.to_string(),
                    });
                    break;
                }
            }
        }
        if done == 0 && !buf.is_empty() {
            return Err(Error::Unreadable {
                pid: self.target,
                address,
                reason: stop_reason.unwrap_or_default(),
            });
        }
        Ok(done)
    }

    /// The error for a clone that is gone (killed, or its engine died).
    pub fn vanished(&self) -> Error {
        Error::CloneVanished {
            pid: self.target,
            clone: self.pid,
        }
    }

    /// Reads exactly `buf.len()` bytes at `address`, or fails with [`Error::Unreadable`]
    /// naming the first address that could not be read.
    pub fn read_exact(&self, address: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            done += self.read(address + done as u64, &mut buf[done..])?;
        }
        Ok(())
    }
}

/// The clone's memory (and the copies of ranges it lacks) as a [`Memory`]: what
/// [`VaClone::read`] reads, nothing where it fails.
impl Memory for VaClone {
    fn read(&self, address: u64, buf: &mut [u8]) -> usize {
        VaClone::read(self, address, buf).unwrap_or(0)
    }
}

impl Drop for VaClone {
    fn drop(&mut self) {
        if let (Some(fd), Some(id)) = (self.pidfd.take(), self.pidfd_id) {
            use std::os::fd::AsRawFd;
            if !pidfd::still_is(fd.as_raw_fd(), id, self.pid) {
                // Closed by a C caller, and maybe reused since: not ours to close.
                std::mem::forget(fd);
            }
        }
        // In a process forked from the one that captured, the clone is the parent's.
        if self.engine.owner == std::process::id() {
            let of_caller = self.target == self.engine.owner as i32;
            client::free_clone(self.engine, self.id, of_caller);
        }
    }
}
