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
//!   pointer and, above it, the thread's descriptor, found from its thread pointer as the
//!   TLS ABI puts it ([`arch::Descriptor`]). Such libraries carve the descriptor out of the top of
//!   the stack block, so the mapping from its start to the stack pointer is that thread's
//!   unused stack. A Go M, whose thread pointer is inside its `m` in the Go heap, and a
//!   thread running on a coroutine or signal stack elsewhere, do not qualify.
//!
//! Anything else is "not known", and the caller writes nothing there.

use super::arch::{self, Descriptor, RawRegs};
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

/// How far below the thread pointer a variant I descriptor's tid is looked for (glibc's
/// `struct pthread` is about 2 KiB, musl's under 256 bytes).
const DESCRIPTOR_WINDOW: u64 = 4096;

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
        b"" if has_own_descriptor(tid, regs, sp, vma.end, mem) => StackKind::Thread,
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

/// Whether the thread pointer of stopped thread `tid` lies in `(sp, end)` with the thread's
/// descriptor there, as the architecture's TLS ABI places it ([`Descriptor`]).
fn has_own_descriptor(tid: i32, regs: &RawRegs, sp: u64, end: u64, mem: &ProcMem) -> bool {
    let Some(tp) = arch::thread_pointer(tid, regs) else {
        return false;
    };
    if !(sp < tp && tp.saturating_add(8) <= end) {
        return false;
    }
    let word = |at: u64| {
        let mut w = [0u8; 8];
        mem.read_exact(at, &mut w).then(|| u64::from_le_bytes(w))
    };
    match arch::THREAD_DESCRIPTOR {
        Descriptor::AtThreadPointer => word(tp) == Some(tp),
        Descriptor::BelowThreadPointer => {
            // On the stack: the thread is stopped while this runs.
            let mut buf = [0u8; DESCRIPTOR_WINDOW as usize];
            let low = (tp.saturating_sub(DESCRIPTOR_WINDOW).max(sp) + 7) & !7;
            let window = &mut buf[..tp.saturating_sub(low) as usize];
            mem.read_exact(low, window) && descriptor_below(low, window, tid, word)
        }
    }
}

/// Whether `window` (the bytes at `base`, 8-aligned, up to the thread pointer) holds a
/// variant I thread descriptor of thread `tid` ([`Descriptor::BelowThreadPointer`]);
/// `word` reads the target's memory elsewhere (the neighbours in the list).
fn descriptor_below(base: u64, window: &[u8], tid: i32, word: impl Fn(u64) -> Option<u64>) -> bool {
    let u64_at = |o: usize| {
        window
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    let tid_at = |o: usize| {
        window
            .get(o..o + 4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
    };
    (0..window.len()).step_by(8).any(|o| {
        let at = base + o as u64;
        let glibc = || {
            // struct pthread: list_t list { next, prev }; pid_t tid;
            let (Some(next), Some(prev)) = (u64_at(o), u64_at(o + 8)) else {
                return false;
            };
            tid_at(o + 16) == Some(tid)
                && word(next.wrapping_add(8)) == Some(at)
                && word(prev) == Some(at)
        };
        let musl = || {
            // struct pthread: self, prev, next, sysinfo; int tid;
            let (Some(prev), Some(next)) = (u64_at(o + 8), u64_at(o + 16)) else {
                return false;
            };
            u64_at(o) == Some(at)
                && tid_at(o + 32) == Some(tid)
                && word(next.wrapping_add(8)) == Some(at)
                && word(prev.wrapping_add(16)) == Some(at)
        };
        glibc() || musl()
    })
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

    /// A fake memory of 8-byte words: the window's and a list neighbour's.
    fn words(pairs: &[(u64, u64)]) -> impl Fn(u64) -> Option<u64> + '_ {
        move |at| pairs.iter().find(|(a, _)| *a == at).map(|(_, v)| *v)
    }

    fn put(window: &mut [u8], o: usize, bytes: &[u8]) {
        window[o..o + bytes.len()].copy_from_slice(bytes);
    }

    const BASE: u64 = 0x7f00_0000_0000;
    const HEAD: u64 = 0x5555_0000_1000;

    #[test]
    fn a_glibc_descriptor_is_its_tid_beside_a_list_node_its_neighbours_point_at() {
        let mut window = vec![0u8; 4096];
        let node = BASE + 1864;
        put(&mut window, 1864, &HEAD.to_le_bytes()); // next: the list's head
        put(&mut window, 1872, &HEAD.to_le_bytes()); // prev: the list's head
        put(&mut window, 1880, &4242i32.to_le_bytes());
        // The head's next and prev both point back at the node.
        let mem = [(HEAD, node), (HEAD + 8, node)];
        assert!(descriptor_below(BASE, &window, 4242, words(&mem)));
        assert!(
            !descriptor_below(BASE, &window, 4243, words(&mem)),
            "another tid"
        );
        let broken = [(HEAD, node), (HEAD + 8, node + 8)];
        assert!(
            !descriptor_below(BASE, &window, 4242, words(&broken)),
            "a list not linked back"
        );
        assert!(
            !descriptor_below(BASE, &window, 4242, words(&[])),
            "unreadable neighbours"
        );
    }

    #[test]
    fn a_musl_descriptor_points_at_itself_with_its_tid_and_list() {
        let mut window = vec![0u8; 512];
        let me = BASE + 304;
        let other = 0x7f00_1000_0000u64;
        put(&mut window, 304, &me.to_le_bytes()); // self
        put(&mut window, 312, &other.to_le_bytes()); // prev
        put(&mut window, 320, &other.to_le_bytes()); // next
        put(&mut window, 336, &77i32.to_le_bytes()); // tid

        // The other thread's next (at +16) and prev (at +8) point back.
        let mem = [(other + 8, me), (other + 16, me)];
        assert!(descriptor_below(BASE, &window, 77, words(&mem)));
        put(&mut window, 304, &(me + 8).to_le_bytes());
        assert!(
            !descriptor_below(BASE, &window, 77, words(&mem)),
            "not its own address"
        );
    }

    #[test]
    fn a_window_without_a_descriptor_has_none() {
        assert!(!descriptor_below(BASE, &[0u8; 4096], 0, words(&[])));
        assert!(!descriptor_below(BASE, &[0xffu8; 20], -1, words(&[])));
    }
}
