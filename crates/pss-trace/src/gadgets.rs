//! Two instruction sequences already in a process's code that make an injected syscall
//! self-restoring ([`super::inject`]): a `syscall` followed by `ret`, and a signal
//! restorer (`rt_sigreturn`, e.g. libc's `__restore_rt`). Found by scanning the files of
//! the process's executable mappings (its dynamic loader and C library first; then checked
//! in its memory), and remembered per process (they do not move while it lives).

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;

use super::arch;
use pss_sys::files;
use pss_sys::mem::ProcMem;
use pss_sys::procfs::{self, maps, ProcDir};

/// How much executable code is scanned at most, per process.
const SCAN_BUDGET: u64 = 32 << 20;
/// The scan's read size: small enough that its buffer costs few page faults (in a VM they
/// cost more than the reading).
const CHUNK: usize = 64 << 10;

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

/// An executable file mapping to scan.
struct Code {
    start: u64,
    end: u64,
    /// The file offset of `start`: its file ([`files::open_mapping_file`]) is read, the
    /// page cache being several times faster than the process's memory, and the text the
    /// file's bytes (checked in memory afterwards).
    offset: u64,
    rank: u8,
}

/// Scans the executable file mappings, the C library and the dynamic loader first.
fn scan(pid: i32, mem: &ProcMem) -> Option<Gadgets> {
    let mut dir = ProcDir::open_mm(pid).ok()?;
    let buf = dir.read("maps").ok()?.to_vec();
    let mut code: Vec<Code> = maps::parse(&buf)
        .filter(|l| l.perms[2] == b'x' && (l.pathname.starts_with(b"/") || l.pathname == b"[vdso]"))
        .map(|l| Code {
            start: l.start,
            end: l.end,
            offset: l.offset,
            rank: rank(l.pathname),
        })
        .collect();
    code.sort_by_key(|c| (c.rank, c.start));
    // Opened only now, in rank order and within the budget: usually the loader's alone.
    let lines: Vec<_> = maps::parse(&buf).collect();
    let open = |c: &Code| {
        let l = lines.iter().find(|l| l.start == c.start)?;
        let path = maps::unescape(l.pathname);
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&path));
        files::open_mapping_file(
            pid,
            (l.start, l.end),
            path,
            ((l.dev_major, l.dev_minor), l.inode),
        )
        .ok()
    };
    // From the files first; if what they say is not in memory (a file replaced on disk, a
    // patched text), from memory.
    let from_files = search(&code, |c| {
        let file = open(c);
        move |at: u64, buf: &mut [u8]| {
            use std::os::unix::fs::FileExt;
            let offset = at - c.start + c.offset;
            file.as_ref()
                .is_some_and(|f| f.read_exact_at(buf, offset).is_ok())
        }
    });
    if let Some(g) = from_files.filter(|g| still_there(mem, g)) {
        return Some(g);
    }
    search(&code, |_| |at: u64, buf: &mut [u8]| mem.read_exact(at, buf))
}

/// Looks through `code` (within the scan budget), each mapping with the reader
/// `reader(mapping)` makes (`read(address, buf)`).
fn search<'c, R: Fn(u64, &mut [u8]) -> bool>(
    code: &'c [Code],
    reader: impl Fn(&'c Code) -> R,
) -> Option<Gadgets> {
    let mut syscall_ret = None;
    let mut restorer = None;
    let mut budget = SCAN_BUDGET;
    for c in code {
        let len = (c.end - c.start).min(budget);
        budget -= len;
        scan_range(
            reader(c),
            c.start,
            c.start + len,
            &mut syscall_ret,
            &mut restorer,
        );
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

/// 0 for the vDSO (a few pages, holding the kernel's own `rt_sigreturn` trampoline: the
/// only one on arm64, where libc has none; read from memory, having no file) and the
/// dynamic loader (small, and glibc's x86_64 one has both), 1 for the C library, 2 for the
/// rest (a static executable has its own).
fn rank(path: &[u8]) -> u8 {
    let name = path.rsplit(|&c| c == b'/').next().unwrap_or(path);
    if path == b"[vdso]" || name.starts_with(b"ld-") {
        0
    } else if name.starts_with(b"libc.so") || name.starts_with(b"libc-") {
        1
    } else {
        2
    }
}

/// Looks for what is still missing in `[start, end)`, a chunk at a time.
fn scan_range(
    read: impl Fn(u64, &mut [u8]) -> bool,
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
        if !read(at, &mut chunk[..n]) {
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
    memchr::memmem::find(haystack, needle)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_processs_c_library_has_both_and_they_are_what_they_say() {
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        let pid = child.id() as i32;
        // Until its loader has mapped the C library.
        while !std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .unwrap()
            .contains("libc.so")
        {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let mem = ProcMem::open(pid).unwrap();
        let g = find(pid, &mem).expect("gadgets in sleep's C library or loader");
        assert_eq!(find(pid, &mem), Some(g), "remembered");
        let mut code = [0u8; 3];
        assert!(mem.read_exact(g.syscall_ret, &mut code));
        assert_eq!(code, [0x0f, 0x05, 0xc3], "syscall; ret");
        let mut restorer = [0u8; 9];
        assert!(mem.read_exact(g.restorer, &mut restorer));
        assert!(
            restorer.starts_with(arch::RESTORERS[g.restorer_kind]),
            "rt_sigreturn"
        );
        // Both in executable mappings.
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        for a in [g.syscall_ret, g.restorer] {
            let exec = maps.lines().any(|l| {
                let (range, rest) = l.split_once(' ').unwrap();
                let (s, e) = range.split_once('-').unwrap();
                let (s, e) = (
                    u64::from_str_radix(s, 16).unwrap(),
                    u64::from_str_radix(e, 16).unwrap(),
                );
                s <= a && a < e && rest.as_bytes()[2] == b'x'
            });
            assert!(exec, "{a:#x} is not in an executable mapping:\n{maps}");
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
