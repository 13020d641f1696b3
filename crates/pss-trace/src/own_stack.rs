//! A thread's own stack, as far as it can be known for certain from outside: where an
//! injection may put a signal frame and scratch bytes, because the kernel itself would put
//! a signal frame there (`docs/engine.md`, "Where an injection writes").
//!
//! "The writable mapping that holds the stack pointer" is not enough: a coroutine, fiber or
//! goroutine stack lives inside a heap mapping, and below its bottom is somebody's data. So
//! a thread's stack is recognised only where its bounds are the kernel's or its thread
//! library's:
//!
//! - **the main thread's `[stack]`** (tid = pid, stack pointer inside the mapping the kernel
//!   made and grows for it);
//! - **a thread library's stack** (glibc, musl, bionic: pthreads, the JVM's threads, cgo's
//!   Ms, Rust's `std::thread`): an anonymous private writable mapping holding both the stack
//!   pointer and, above it, the thread's TCB — its thread pointer points there, and the
//!   x86_64 TLS ABI makes the TCB's first word point at itself. Such libraries carve the TCB
//!   out of the top of the stack block, so the mapping from its start to the stack pointer
//!   is that thread's unused stack. A Go M, whose thread pointer is inside its `m` in the Go
//!   heap, and a thread running on a coroutine or signal stack elsewhere, do not qualify.
//!
//! Anything else is "not known", and the caller writes nothing there.

use super::arch::{self, RawRegs};
use pss_sys::mem::ProcMem;
use pss_sys::procfs::maps;

/// The part of a thread's own stack below its stack pointer's red zone: `[low, top)` may
/// be written (and should be put back afterwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnStack {
    /// The lowest address of the thread's stack mapping.
    pub low: u64,
    /// The first byte above the free part: the stack pointer less the red zone.
    pub top: u64,
    /// Which kind of stack it is.
    pub kind: StackKind,
}

/// How a stack was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackKind {
    /// The main thread's `[stack]`.
    Main,
    /// A thread library's stack holding the thread's TCB.
    Thread,
}

impl OwnStack {
    /// Whether `[at, at + len)` lies in the free part.
    pub fn holds(&self, at: u64, len: u64) -> bool {
        at >= self.low && at.checked_add(len).is_some_and(|end| end <= self.top)
    }
}

/// Why a thread's stack is not known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// No mapping holds the stack pointer, or it is not private writable memory.
    NotInStackMemory,
    /// The stack pointer is inside a named mapping (`[heap]`, a file) or another thread's
    /// `[stack]`: a coroutine's or signal stack's, not the thread's own.
    NamedMapping,
    /// The thread pointer is not in the stack pointer's mapping above it, or the TCB there
    /// does not point at itself (a Go M, a coroutine stack, a thread of its own making).
    NoThreadControlBlock,
    /// The red zone leaves no room.
    NoRoom,
}

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unknown::NotInStackMemory => "its stack pointer is not in private writable memory",
            Unknown::NamedMapping => {
                "its stack pointer is in a named mapping (a heap, a file), not a thread stack"
            }
            Unknown::NoThreadControlBlock => {
                "its stack pointer is not on a thread library's stack (a coroutine, goroutine or signal stack)"
            }
            Unknown::NoRoom => "its stack has no room below the red zone",
        })
    }
}

/// The own stack of stopped thread `tid` of process `pid`, with registers `regs`, given the
/// process's `maps` (read shortly before; a thread's stack mapping does not move while it
/// is stopped) and `mem` (its `/proc/PID/mem`, to check the TCB).
pub fn find(
    pid: i32,
    tid: i32,
    regs: &RawRegs,
    maps_buf: &[u8],
    mem: &ProcMem,
) -> Result<OwnStack, Unknown> {
    let sp = arch::stack_pointer(regs);
    let vma = maps::parse(maps_buf)
        .find(|l| l.start < sp && sp <= l.end)
        .ok_or(Unknown::NotInStackMemory)?;
    if !(vma.read() && vma.write()) || vma.shared() || vma.is_file() {
        return Err(Unknown::NotInStackMemory);
    }
    let kind = match vma.pathname {
        b"[stack]" if tid == pid => StackKind::Main,
        b"" if has_own_tcb(regs, sp, vma.end, mem) => StackKind::Thread,
        b"" => return Err(Unknown::NoThreadControlBlock),
        _ => return Err(Unknown::NamedMapping),
    };
    let top = sp.checked_sub(arch::RED_ZONE).ok_or(Unknown::NoRoom)?;
    if top <= vma.start {
        return Err(Unknown::NoRoom);
    }
    Ok(OwnStack {
        low: vma.start,
        top,
        kind,
    })
}

/// Whether the thread pointer lies in `(sp, end)` and the word there points at itself (the
/// TLS ABI's TCB self-pointer; only where the ABI has one).
fn has_own_tcb(regs: &RawRegs, sp: u64, end: u64, mem: &ProcMem) -> bool {
    let Some(tp) = arch::tcb_self_pointer_at(regs) else {
        return false;
    };
    if !(sp < tp && tp.saturating_add(8) <= end) {
        return false;
    }
    let mut word = [0u8; 8];
    mem.read_exact(tp, &mut word) && u64::from_le_bytes(word) == tp
}

/// Quick ranking of a thread that has not been stopped, from `/proc/PID/task/TID/syscall`
/// (a blocked thread shows its stack pointer there): whether its stack may be its own, to
/// try it first. `None` when the file says nothing (a running thread).
pub fn likely_own(pid: i32, tid: i32, maps_buf: &[u8]) -> Option<bool> {
    let sp = pss_sys::procfs::syscall::read(pid, tid)?.sp;
    let vma = maps::parse(maps_buf).find(|l| l.start < sp && sp <= l.end)?;
    let private_rw = vma.read() && vma.write() && !vma.shared() && !vma.is_file();
    Some(
        private_rw
            && match vma.pathname {
                b"[stack]" => tid == pid,
                b"" => tid != pid,
                _ => false,
            },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_only_the_free_part() {
        let s = OwnStack {
            low: 0x1000,
            top: 0x2000,
            kind: StackKind::Main,
        };
        assert!(s.holds(0x1000, 0x1000));
        assert!(!s.holds(0xfff, 2));
        assert!(!s.holds(0x1ff0, 0x11));
        assert!(!s.holds(u64::MAX - 1, 4));
    }
}
