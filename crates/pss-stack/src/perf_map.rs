//! Names of JIT-compiled code from the perf map a process writes, `/tmp/perf-PID.map` (node
//! `--perf-basic-prof`, the JVM with a perf-map agent, LuaJIT, .NET with
//! `DOTNET_PerfMapEnabled`): one line per function, `START SIZE NAME`, hexadecimal, appended
//! as code is compiled — the convention `perf` reads (its `tools/perf/Documentation/jit-interface.txt`).
//!
//! The file is the target's, so it is read the careful way: inside the process's own root
//! (its `/tmp`, under its own pid-namespace number), without following a link, only if it is
//! a regular file owned by the process's user or root, by `pread` up to [`MOST_BYTES`], each
//! name cut at [`LONGEST_NAME`]. It grows while the process runs: each refresh reads only
//! what was appended. A later line for the same start replaces an earlier one (the code was
//! compiled again there).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;

use pss_sys::files;

/// The most bytes of a perf map read (past them, later functions are not named).
pub(crate) const MOST_BYTES: u64 = 256 << 20;

/// The longest name kept (longer ones are cut).
const LONGEST_NAME: usize = 1024;

/// One process's perf map, as far as it has been read.
pub(crate) struct PerfMap {
    /// The process.
    pub pid: u32,
    /// The path, as the process sees it (`/tmp/perf-NSPID.map`).
    pub path: PathBuf,
    /// The file, open; `None` until one is found.
    file: Option<File>,
    /// Its inode and owner, to notice a new file in its place.
    inode: u64,
    owner: u32,
    /// How many bytes have been read (up to the last whole line).
    read: u64,
    /// Functions by start address: (end, name).
    functions: BTreeMap<u64, (u64, String)>,
}

impl PerfMap {
    /// The perf map of process `pid`, nothing read yet ([`PerfMap::refresh`] reads it).
    pub fn new(pid: u32) -> PerfMap {
        let ns_pid = pss_sys::procfs::status_at(&format!("/proc/{pid}/status"))
            .map(|s| s.ns_pid)
            .filter(|&p| p > 0)
            .unwrap_or(pid as i32);
        PerfMap {
            pid,
            path: PathBuf::from(format!("/tmp/perf-{ns_pid}.map")),
            file: None,
            inode: 0,
            owner: u32::MAX,
            read: 0,
            functions: BTreeMap::new(),
        }
    }

    /// Reads what was appended since the last refresh (all of it the first time, or when
    /// the file was replaced). `Err` says why the file cannot be used (not there is not an
    /// error: `Ok`, nothing named).
    pub fn refresh(&mut self) -> Result<(), String> {
        let file = match files::open_in_root(self.pid as i32, &self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("{}: {e}", self.path.display())),
        };
        let meta = file.metadata().map_err(|e| e.to_string())?;
        // A file not seen yet: the process's user read from /proc once, not every round.
        let new_file = meta.ino() != self.inode || meta.uid() != self.owner;
        if new_file && !owned_by_target(self.pid, meta.uid()) {
            return Err(format!(
                "{} belongs to uid {}, neither the process's user nor root: not used",
                self.path.display(),
                meta.uid()
            ));
        }
        if new_file || meta.len() < self.read {
            self.functions.clear();
            self.read = 0;
            self.inode = meta.ino();
            self.owner = meta.uid();
        }
        self.file = Some(file);
        let end = meta.len().min(MOST_BYTES);
        self.read_lines(end)?;
        if meta.len() > MOST_BYTES {
            return Err(format!(
                "{} is larger than {} MiB: functions past that are not named",
                self.path.display(),
                MOST_BYTES >> 20
            ));
        }
        Ok(())
    }

    /// Reads the whole lines between what was read and byte `end`.
    fn read_lines(&mut self, end: u64) -> Result<(), String> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        const CHUNK: u64 = 1 << 20;
        let mut buf = Vec::new();
        while self.read < end {
            let want = (end - self.read).min(CHUNK) as usize;
            buf.resize(want, 0);
            let got = file
                .read_at(&mut buf, self.read)
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
            let Some(last_newline) = buf[..got].iter().rposition(|&b| b == b'\n') else {
                // A line longer than a chunk, or one still being written: stop here.
                return Ok(());
            };
            for line in buf[..last_newline].split(|&b| b == b'\n') {
                if let Some((start, size, name)) = parse_line(line) {
                    self.functions
                        .insert(start, (start.saturating_add(size), name));
                }
            }
            self.read += last_newline as u64 + 1;
        }
        Ok(())
    }

    /// The name of the function at `address`, if the map has one.
    pub fn name(&self, address: u64) -> Option<&str> {
        let (_, (end, name)) = self.functions.range(..=address).next_back()?;
        (address < *end).then_some(name.as_str())
    }
}

/// Whether a perf map owned by `uid` may be the process `pid`'s own: its user's (real or
/// effective: the owner of `/proc/PID`) or root's, as `perf` requires.
fn owned_by_target(pid: u32, uid: u32) -> bool {
    let real = pss_sys::procfs::status_at(&format!("/proc/{pid}/status")).map(|s| s.uid);
    let effective = std::fs::metadata(format!("/proc/{pid}"))
        .map(|m| m.uid())
        .ok();
    uid == 0 || Some(uid) == real || Some(uid) == effective
}

/// One line, `START SIZE NAME` (hexadecimal, with or without `0x`); `None` if malformed.
fn parse_line(line: &[u8]) -> Option<(u64, u64, String)> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let start = hex(parts.next()?)?;
    let size = hex(parts.next()?)?;
    let name = parts.next()?;
    let name = &name[..name.len().min(LONGEST_NAME)];
    let name = String::from_utf8_lossy(name).trim_end().to_string();
    (!name.is_empty() && size > 0).then_some((start, size, name))
}

/// A hexadecimal number, with or without `0x`.
fn hex(b: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(b).ok()?;
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u64::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_parsed_and_bad_ones_skipped() {
        assert_eq!(
            parse_line(b"7f0012340000 1a0 JS:*hot /x.js:3:1"),
            Some((0x7f00_1234_0000, 0x1a0, "JS:*hot /x.js:3:1".into()))
        );
        assert_eq!(
            parse_line(b"0x10 0x20 stub"),
            Some((0x10, 0x20, "stub".into()))
        );
        assert_eq!(parse_line(b"zz 10 f"), None);
        assert_eq!(parse_line(b"10 0 empty"), None);
        assert_eq!(parse_line(b"10 20"), None);
        let long = format!("10 20 {}", "a".repeat(5000));
        assert_eq!(parse_line(long.as_bytes()).unwrap().2.len(), LONGEST_NAME);
    }
}
