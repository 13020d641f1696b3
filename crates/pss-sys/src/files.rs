//! Opening files a target names — its mapped modules, their debug files — the careful way:
//! `pss` and its engine often run as root, and the target chooses those paths (and may
//! replace what is behind them). Nothing here follows a link the target could have planted,
//! opens a FIFO or device (which could block, or act on being opened), or a file on a FUSE
//! file system (whose server could block every read). What comes back is a regular file,
//! open for reading; callers read it (`pread`) rather than map it, so a file truncated
//! underneath them gives a short read, not a SIGBUS.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{fstat, fstatfs, openat, openat2, FileType, Mode, OFlags, ResolveFlags, CWD};

/// `FUSE_SUPER_MAGIC`.
const FUSE_MAGIC: u64 = 0x6573_5546;

/// How a path may be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Any symbolic link may be followed: a path under a directory the system owns
    /// (`/usr/lib/debug/.build-id/…` holds links by design).
    Follow,
    /// None may: a path the target chose (a `maps` path is the kernel's resolved name, so
    /// a link in it was put there since).
    Refuse,
}

/// Opens `path` for reading if it is a regular file (not on FUSE), resolving it per
/// `links`. `Err(InvalidInput)` says what else it is.
pub fn open_regular(path: &Path, links: Links) -> io::Result<File> {
    let fd = match links {
        Links::Follow => openat(CWD, path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?,
        Links::Refuse => openat2(
            CWD,
            path,
            OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )?,
    };
    reopen_regular(fd)
}

/// Opens `path` inside the root directory of process `pid` (another mount namespace: a
/// container), without leaving that root and without following links.
pub fn open_in_root(pid: i32, path: &Path) -> io::Result<File> {
    let root = openat(
        CWD,
        format!("/proc/{pid}/root"),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let fd = openat2(
        &root,
        path,
        OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?;
    reopen_regular(fd)
}

/// The file process `pid` has mapped at `[start, end)`, through `/proc/PID/map_files/`:
/// the very file it mapped, even if deleted or replaced since (needs `CAP_SYS_ADMIN` or
/// `CAP_CHECKPOINT_RESTORE`).
pub fn open_mapped(pid: i32, start: u64, end: u64) -> io::Result<File> {
    let link = format!("/proc/{pid}/map_files/{start:x}-{end:x}");
    // The kernel's own link to the mapped file: following it is the point.
    let fd = openat(CWD, link, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
    reopen_regular(fd)
}

/// The file behind mapping `[start, end)` of process `pid`, which `maps` names `path` (with
/// `\012` already turned back into newlines) on device `dev`, inode `ino`: through
/// `map_files` where we may; else at `path`, then at `path` inside the process's root —
/// each accepted only if it is that very inode (the file may have been replaced since it
/// was mapped).
pub fn open_mapping_file(
    pid: i32,
    (start, end): (u64, u64),
    path: &Path,
    (dev, ino): ((u32, u32), u64),
) -> io::Result<File> {
    if let Ok(f) = open_mapped(pid, start, end) {
        return Ok(f);
    }
    let mut last = io::Error::new(io::ErrorKind::NotFound, "not found");
    for f in [open_regular(path, Links::Refuse), open_in_root(pid, path)] {
        match f {
            Ok(f) if is_inode(&f, dev, ino) => return Ok(f),
            Ok(_) => {
                last = io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not the file that was mapped (replaced since)",
                )
            }
            // "Replaced" says more than a later "not found".
            Err(e) if last.kind() != io::ErrorKind::InvalidData => last = e,
            Err(_) => {}
        }
    }
    Err(last)
}

/// Whether `file` is the inode `(dev, ino)` (a `maps` line's device and inode).
pub fn is_inode(file: &File, dev: (u32, u32), ino: u64) -> bool {
    fstat(file).is_ok_and(|st| {
        st.st_ino == ino
            && rustix::fs::major(st.st_dev) == dev.0
            && rustix::fs::minor(st.st_dev) == dev.1
    })
}

/// Checks an `O_PATH` descriptor names a regular file outside FUSE, then opens that inode
/// for reading (through `/proc/self/fd`, which cannot land anywhere else).
fn reopen_regular(fd: OwnedFd) -> io::Result<File> {
    let st = fstat(&fd)?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file but a {}", describe(kind)),
        ));
    }
    if fstatfs(&fd).is_ok_and(|fs| fs.f_type as u64 == FUSE_MAGIC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "on a FUSE file system, whose server could block every read",
        ));
    }
    let path = format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd())
    );
    let file = openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    Ok(File::from(file))
}

fn describe(kind: FileType) -> &'static str {
    match kind {
        FileType::Fifo => "FIFO",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Socket => "socket",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        _ => "special file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_fifos_links_and_devices() {
        let dir = std::env::temp_dir().join(format!("pss-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        rustix::fs::mknodat(CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        let err = open_regular(&fifo, Links::Refuse).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(open_regular(&link, Links::Refuse).is_err());
        let err = open_regular(&link, Links::Follow).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        let plain = dir.join("plain");
        std::fs::write(&plain, b"0123456789").unwrap();
        let f = open_regular(&plain, Links::Refuse).unwrap();
        assert_eq!(std::io::read_to_string(f).unwrap(), "0123456789");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
