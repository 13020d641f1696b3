//! Two instruction sequences already in a process's code that make an injected syscall
//! self-restoring ([`super::inject`]): a `syscall` followed by `ret`, and a signal
//! restorer (`rt_sigreturn`, e.g. libc's `__restore_rt`). Found by scanning the process's
//! executable mappings, its C library first, and remembered per process (the C library
//! does not move while the process lives).

use std::collections::HashMap;
use std::sync::Mutex;

use super::arch;
use super::mem::ProcMem;
use super::procfs::{self, maps, ProcDir};

/// How much executable code is scanned at most, per process.
const SCAN_BUDGET: u64 = 32 << 20;
/// The scan's read size.
const CHUNK: usize = 1 << 20;

/// Where the two sequences are in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gadgets {
    /// `syscall; ret`.
    pub syscall_ret: u64,
    /// `rt_sigreturn` (`mov rax, 15; syscall`).
    pub restorer: u64,
    /// Which of [`arch::RESTORERS`] is at `restorer`.
    restorer_kind: usize,
}

/// Found gadgets by (pid, process start time): a reused pid is another process.
static FOUND: Mutex<Option<HashMap<(i32, u64), Gadgets>>> = Mutex::new(None);

/// The gadgets of process `pid` (through `mem`, its `/proc/PID/mem`), if its code has both.
/// A remembered answer is used only while the bytes are still there.
pub fn find(pid: i32, mem: &ProcMem) -> Option<Gadgets> {
    if arch::SYSCALL_RET.is_empty() {
        return None;
    }
    let started = procfs::stat_at(&format!("/proc/{pid}/stat"))?.starttime;
    let key = (pid, started);
    let mut found = FOUND.lock().unwrap_or_else(|p| p.into_inner());
    let known = found.get_or_insert_with(HashMap::new);
    if let Some(g) = known.get(&key).copied() {
        if still_there(mem, &g) {
            return Some(g);
        }
    }
    let g = scan(pid, mem)?;
    // A process that exited leaves its entry: keep the table small.
    if known.len() > 256 {
        known.clear();
    }
    known.insert(key, g);
    Some(g)
}

fn still_there(mem: &ProcMem, g: &Gadgets) -> bool {
    let restorer = arch::RESTORERS[g.restorer_kind];
    let mut a = vec![0u8; arch::SYSCALL_RET.len()];
    let mut b = vec![0u8; restorer.len()];
    mem.read_exact(g.syscall_ret, &mut a)
        && a == arch::SYSCALL_RET
        && mem.read_exact(g.restorer, &mut b)
        && b == restorer
}

/// Scans the executable file mappings, the C library and the dynamic loader first.
fn scan(pid: i32, mem: &ProcMem) -> Option<Gadgets> {
    let mut dir = ProcDir::open(pid).ok()?;
    let buf = dir.read("maps").ok()?.to_vec();
    let mut code: Vec<(u64, u64, u8)> = maps::parse(&buf)
        .filter(|l| l.perms[2] == b'x' && l.pathname.starts_with(b"/"))
        .map(|l| (l.start, l.end, rank(l.pathname)))
        .collect();
    code.sort_by_key(|&(start, _, rank)| (rank, start));
    let mut syscall_ret = None;
    let mut restorer = None;
    let mut budget = SCAN_BUDGET;
    for (start, end, _) in code {
        let len = (end - start).min(budget);
        budget -= len;
        scan_range(mem, start, start + len, &mut syscall_ret, &mut restorer);
        if let (Some(s), Some((r, kind))) = (syscall_ret, restorer) {
            return Some(Gadgets {
                syscall_ret: s,
                restorer: r,
                restorer_kind: kind,
            });
        }
        if budget == 0 {
            break;
        }
    }
    None
}

/// 0 for the C library, 1 for the dynamic loader, 2 for the rest.
fn rank(path: &[u8]) -> u8 {
    let name = path.rsplit(|&c| c == b'/').next().unwrap_or(path);
    if name.starts_with(b"libc.so") || name.starts_with(b"libc-") || name.starts_with(b"libc.musl")
    {
        0
    } else if name.starts_with(b"ld-") {
        1
    } else {
        2
    }
}

/// Looks for what is still missing in `[start, end)`, a chunk at a time.
fn scan_range(
    mem: &ProcMem,
    start: u64,
    end: u64,
    syscall_ret: &mut Option<u64>,
    restorer: &mut Option<(u64, usize)>,
) {
    let overlap = 16u64;
    let mut at = start;
    let mut chunk = vec![0u8; CHUNK];
    while at < end && (syscall_ret.is_none() || restorer.is_none()) {
        let n = ((end - at) as usize).min(CHUNK);
        if !mem.read_exact(at, &mut chunk[..n]) {
            return;
        }
        let bytes = &chunk[..n];
        if syscall_ret.is_none() {
            *syscall_ret = position(bytes, arch::SYSCALL_RET).map(|off| at + off as u64);
        }
        if restorer.is_none() {
            *restorer = arch::RESTORERS
                .iter()
                .enumerate()
                .find_map(|(kind, pat)| position(bytes, pat).map(|off| (at + off as u64, kind)));
        }
        if at + n as u64 >= end {
            return;
        }
        at += n as u64 - overlap;
    }
}

fn position(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
