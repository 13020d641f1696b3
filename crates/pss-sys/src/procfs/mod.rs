//! Reading `/proc`: one `read()` loop into a reused buffer per file, parsed without
//! allocating per field.

pub mod fdinfo;
pub mod maps;
pub mod smaps;
pub mod stat;
pub mod status;
pub mod syscall;

use std::ffi::{CStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use rustix::fs::{openat, Mode, OFlags, CWD};

use pss_types::error::{Error, Result};

/// An open `/proc/PID` (or `/proc/PID/task`) directory and a reusable read buffer.
///
/// Paths are resolved relative to the directory fd, which is both cheaper than full paths and
/// pins the process: if the pid is reused, reads fail instead of describing another process.
pub struct ProcDir {
    pid: i32,
    path: PathBuf,
    dir: OwnedFd,
    buf: Vec<u8>,
}

impl ProcDir {
    /// Opens `/proc/PID`.
    pub fn open(pid: i32) -> Result<ProcDir> {
        Self::open_path(pid, PathBuf::from(format!("/proc/{pid}")))
    }

    /// Opens the directory whose `maps`, `smaps` and `mem` describe process `pid`'s address
    /// space ([`mm_dir`]).
    pub fn open_mm(pid: i32) -> Result<ProcDir> {
        Self::open_path(pid, PathBuf::from(mm_dir(pid)))
    }

    /// Opens `/proc/PID/task`, to read each thread's files as `TID/stat` through one fd.
    pub fn open_tasks(pid: i32) -> Result<ProcDir> {
        Self::open_path(pid, PathBuf::from(format!("/proc/{pid}/task")))
    }

    fn open_path(pid: i32, path: PathBuf) -> Result<ProcDir> {
        let dir = openat(
            CWD,
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::from_proc_io(pid, &path, e.into()))?;
        Ok(ProcDir {
            pid,
            path,
            dir,
            buf: Vec::with_capacity(4096),
        })
    }

    /// The pid this directory belongs to (for error messages).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Reads the whole file `name` (relative to this directory) into the internal buffer.
    pub fn read(&mut self, name: &str) -> Result<&[u8]> {
        read_at(&self.dir, name, &mut self.buf)
            .map_err(|e| Error::from_proc_io(self.pid, self.path.join(name), e))?;
        Ok(&self.buf)
    }

    /// Like [`ProcDir::read`] but returns the raw I/O error (callers that treat a vanished
    /// file as a warning).
    pub fn read_raw(&mut self, name: &str) -> io::Result<&[u8]> {
        read_at(&self.dir, name, &mut self.buf)?;
        Ok(&self.buf)
    }

    /// Opens `name` (relative to this directory) for reading, to be read in parts
    /// (`pagemap`).
    pub fn open_file(&self, name: &str) -> Result<std::fs::File> {
        openat(
            &self.dir,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map(std::fs::File::from)
        .map_err(|e| Error::from_proc_io(self.pid, self.path.join(name), e.into()))
    }

    /// `readlink` of `name` relative to this directory.
    pub fn readlink(&self, name: &str) -> Result<OsString> {
        readlink_at(&self.dir, name)
            .map_err(|e| Error::from_proc_io(self.pid, self.path.join(name), e))
    }

    /// Builds a parse error for `name` in this directory.
    pub fn parse_error(&self, name: &str, detail: impl Into<String>) -> Error {
        Error::Parse {
            pid: self.pid,
            path: self.path.join(name),
            detail: detail.into(),
        }
    }
}

/// Reads all of `name` under `dir` into `buf` (cleared first), one `read()` per chunk.
pub fn read_at(dir: &impl AsFd, name: &str, buf: &mut Vec<u8>) -> io::Result<()> {
    let fd = openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(buf.capacity().max(4096));
        }
        // `spare_capacity` appends what the kernel wrote to the vector's length.
        let n = rustix::io::read(&fd, rustix::buffer::spare_capacity(buf))?;
        if n == 0 {
            return Ok(());
        }
    }
}

/// The `/proc` directory whose memory files (`maps`, `smaps`, `mem`) describe process
/// `pid`'s address space: `/proc/PID`, or — when its leader has exited while other threads
/// live (`pthread_exit` from `main`), whose own files then read as empty or fail with
/// `ESRCH` — `/proc/PID/task/TID` of a live thread.
pub fn mm_dir(pid: i32) -> String {
    let leader = format!("/proc/{pid}");
    if !stat_at(&format!("{leader}/stat")).is_some_and(|s| s.state == b'Z') {
        return leader;
    }
    let live = list_numeric(pid, &format!("{leader}/task"))
        .unwrap_or_default()
        .into_iter()
        .find(|&t| {
            stat_at(&format!("{leader}/task/{t}/stat"))
                .is_some_and(|s| !matches!(s.state, b'Z' | b'X'))
        });
    live.map_or(leader, |t| format!("/proc/{pid}/task/{t}"))
}

/// Whether process `pid` (the one that started at `start`, if given) has not exited: its
/// leader runs, or — a zombie leader after `pthread_exit` from `main` — other threads do.
pub fn process_alive(pid: i32, start: Option<u64>) -> bool {
    let Some(st) = stat_at(&format!("/proc/{pid}/stat")) else {
        return false;
    };
    if start.is_some_and(|s| s != st.starttime) {
        return false;
    }
    match st.state {
        b'X' => false,
        b'Z' => status_at(&format!("/proc/{pid}/status")).is_some_and(|s| s.threads > 1),
        _ => true,
    }
}

/// Reads and parses a `status` file of any task (`/proc/TID/status`, …); `None` when it
/// cannot be read (the task is gone).
pub fn status_at(path: &str) -> Option<status::Status> {
    let mut buf = Vec::new();
    read_at(&CWD, path, &mut buf).ok()?;
    Some(status::parse(&buf))
}

/// Reads and parses a `stat` file of any task; `None` when unreadable or malformed.
pub fn stat_at(path: &str) -> Option<stat::Stat> {
    let mut buf = Vec::new();
    read_at(&CWD, path, &mut buf).ok()?;
    stat::parse(&buf)
}

/// The pids of every process whose parent is `pid` (zombies included), from a scan of
/// `/proc`: slow, for rare clean-up work only.
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(all) = list_numeric(pid, "/proc") else {
        return Vec::new();
    };
    all.into_iter()
        .filter(|&p| stat_at(&format!("/proc/{p}/stat")).is_some_and(|s| s.ppid == pid))
        .collect()
}

/// Now, in the unit and from the origin of `stat`'s start times (clock ticks after boot).
pub fn boot_ticks_now() -> u64 {
    let up = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    let d = std::time::Duration::new(up.tv_sec as u64, up.tv_nsec as u32);
    ticks_in(d)
}

/// `d` in clock ticks.
pub fn ticks_in(d: std::time::Duration) -> u64 {
    (d.as_nanos() * u128::from(rustix::param::clock_ticks_per_second()) / 1_000_000_000) as u64
}

/// `readlinkat(dir, name)`.
pub fn readlink_at(dir: &impl AsFd, name: &str) -> io::Result<OsString> {
    let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
    Ok(OsString::from_vec(target.into_bytes()))
}

/// Lists the numeric entries of the directory `path` (task ids, fd numbers), ascending.
pub fn list_numeric(pid: i32, path: &str) -> Result<Vec<i32>> {
    let fd = openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::from_proc_io(pid, path, e.into()))?;
    list_numeric_fd(fd).map_err(|e| Error::from_proc_io(pid, path, e))
}

/// Lists the numeric entries of an open directory, ascending.
pub fn list_numeric_fd(fd: OwnedFd) -> io::Result<Vec<i32>> {
    let mut dir = rustix::fs::Dir::new(fd)?;
    let mut out = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        if let Some(n) = parse_dec(entry.file_name()) {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn parse_dec(name: &CStr) -> Option<i32> {
    let b = name.to_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Parses an unsigned decimal field, `None` if it is not one.
pub fn dec_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// Parses a signed decimal field.
pub fn dec_i64(b: &[u8]) -> Option<i64> {
    match b.split_first() {
        Some((b'-', rest)) => dec_u64(rest)
            .and_then(|v| i64::try_from(v).ok())
            .map(|v| -v),
        _ => dec_u64(b).and_then(|v| i64::try_from(v).ok()),
    }
}

/// Parses a hexadecimal field (no `0x` prefix).
pub fn hex_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        let d = (c as char).to_digit(16)?;
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

/// Parses an octal field (fdinfo `flags:`).
pub fn oct_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !(b'0'..=b'7').contains(&c) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// Splits `key:\tvalue` lines: yields (key, trimmed value).
pub fn key_values(buf: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    buf.split(|&c| c == b'\n').filter_map(|line| {
        let colon = line.iter().position(|&c| c == b':')?;
        Some((&line[..colon], trim(&line[colon + 1..])))
    })
}

/// Trims ASCII whitespace at both ends.
pub fn trim(mut b: &[u8]) -> &[u8] {
    while let Some((first, rest)) = b.split_first() {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let Some((last, rest)) = b.split_last() {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(dec_u64(b"1234"), Some(1234));
        assert_eq!(dec_u64(b"12a"), None);
        assert_eq!(dec_i64(b"-7"), Some(-7));
        assert_eq!(hex_u64(b"7fff0000"), Some(0x7fff_0000));
        assert_eq!(oct_u64(b"02000002"), Some(0o2000002));
        assert_eq!(trim(b"  x y \t"), b"x y");
    }

    #[test]
    fn reads_own_status() {
        let mut d = ProcDir::open(std::process::id() as i32).unwrap();
        let s = d.read("status").unwrap();
        assert!(s.starts_with(b"Name:"));
        let big = d.read("maps").unwrap().len();
        assert!(big > 0);
    }
}
