//! The engine's state directory, shared by every engine of one user on the host: the
//! per-target lock file and the ledger of clones (`docs/engine.md`, "Two capturers").
//!
//! It is `/run/pss` for root, `$XDG_RUNTIME_DIR/pss` for others, and `/tmp/pss-UID` where
//! neither can be used. A directory that exists but is not ours (another owner, writable by
//! others) is never used: then there is no lock and no ledger, and only the kernel's "one
//! tracer per thread" rule keeps two captures apart.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The state directory, made if needed; `None` when no safe one exists.
pub fn dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(find).as_deref()
}

fn find() -> Option<PathBuf> {
    let uid = rustix::process::geteuid().as_raw();
    let mut tries = Vec::new();
    if uid == 0 {
        tries.push(PathBuf::from("/run/pss"));
    } else if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        tries.push(Path::new(&xdg).join("pss"));
    }
    tries.push(PathBuf::from(format!("/tmp/pss-{uid}")));
    tries.into_iter().find(|d| usable(d, uid))
}

/// For root: the state directories of other users' engines (`/tmp/pss-UID`,
/// `/run/user/UID/pss`), each with its owner — only those that are directories owned by
/// the uid they are named for and writable by nobody else, so that root's `pss cleanup`
/// can reap the clones a user's engine could not (one it may not suspend a seccomp filter
/// for). Empty for anyone else.
pub fn other_users() -> Vec<(PathBuf, u32)> {
    if !rustix::process::geteuid().is_root() {
        return Vec::new();
    }
    let mut found = Vec::new();
    let named = |dir: &str, prefix: &str, suffix: &str| -> Vec<(PathBuf, u32)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let uid: u32 = name.to_str()?.strip_prefix(prefix)?.parse().ok()?;
                let path = e.path().join(suffix);
                let owned = std::fs::symlink_metadata(&path)
                    .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o022 == 0);
                (uid != 0 && owned).then_some((path, uid))
            })
            .collect()
    };
    found.extend(named("/tmp", "pss-", ""));
    found.extend(named("/run/user", "", "pss"));
    found
}

/// Makes `dir` (mode 0700) if missing; whether it is a directory owned by `uid` that
/// nobody else may write to.
fn usable(dir: &Path, uid: u32) -> bool {
    let _ = std::fs::DirBuilder::new().mode(0o700).create(dir);
    std::fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o022 == 0)
}

/// The lock file, opened once per process (never unlinked: a lock on an unlinked file
/// would not exclude a process that opens the new one).
fn lock_file() -> Option<&'static File> {
    static FILE: OnceLock<Option<File>> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = dir()?.join("targets.lock");
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)
            .ok()
    })
    .as_ref()
}

/// A lock on one target, held across engine processes of this user: an open-file-
/// description lock on one byte of the lock file, released when dropped or when its holder
/// dies.
#[derive(Debug)]
pub struct TargetLock {
    offset: i64,
}

impl TargetLock {
    /// Takes the lock for the target whose identity is `key` (see
    /// [`pss_sys::pidfd::identity`]), waiting until `deadline`. `Ok(None)` when there is no
    /// state directory; `TimedOut` when another capture held it all along.
    pub fn acquire(key: u64, deadline: Instant) -> io::Result<Option<TargetLock>> {
        let Some(file) = lock_file() else {
            return Ok(None);
        };
        let offset = (key & ((1 << 62) - 1)) as i64;
        loop {
            match ofd_lock(file, offset, libc::F_WRLCK as i16) {
                Ok(()) => return Ok(Some(TargetLock { offset })),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => {
                    if Instant::now() >= deadline {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for TargetLock {
    fn drop(&mut self) {
        if let Some(file) = lock_file() {
            let _ = ofd_lock(file, self.offset, libc::F_UNLCK as i16);
        }
    }
}

/// `F_OFD_SETLK` on the byte at `offset` (never waits).
fn ofd_lock(file: &File, offset: i64, kind: i16) -> io::Result<()> {
    // SAFETY: flock is plain data; F_OFD_SETLK reads it and touches no memory of ours.
    let r = unsafe {
        let mut fl: libc::flock = std::mem::zeroed();
        fl.l_type = kind;
        fl.l_whence = libc::SEEK_SET as i16;
        fl.l_start = offset;
        fl.l_len = 1;
        libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl)
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
