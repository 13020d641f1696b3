//! `PSS_HANDLE_ENTRY` records from `/proc/PID/fd` and `/proc/PID/fdinfo`.
//!
//! Per fd: one `readlinkat` (the kind and the name), an `fstatat` only for paths and memfds,
//! and `fdinfo` only when basic or type-specific information is asked for (or the kind needs
//! it to pick its object type). All lookups are relative to directory fds opened once.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, SystemTime};

use rustix::fs::{openat, statat, AtFlags, Mode, OFlags, CWD};

use pss_sys::procfs::{self, fdinfo, fdinfo::FdInfo, stat};
use pss_trace::sched;
use pss_types::error::{Error, Result};
use pss_types::flags::{CaptureFlags, HandleFlags, ObjectType, STILL_ACTIVE};
use pss_types::records::{FdDetail, FdKind, HandleEntry, HandleLinux, TypeSpecific, Warning};

use super::priority;

const O_ACCMODE: u32 = 0o3;
const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_CLOEXEC: u32 = 0o2000000;
const O_PATH: u32 = 0o10000000;
/// `PIDFD_THREAD` is `O_EXCL`.
const PIDFD_THREAD: u32 = 0o200;

/// `OBJ_INHERIT`.
const OBJ_INHERIT: u32 = 0x2;
/// `FILE_GENERIC_READ`.
const FILE_GENERIC_READ: u32 = 0x0012_0089;
/// `FILE_GENERIC_WRITE`.
const FILE_GENERIC_WRITE: u32 = 0x0012_0116;
/// `FILE_READ_ATTRIBUTES | SYNCHRONIZE`, for `O_PATH` fds.
const FILE_PATH_ONLY: u32 = 0x0010_0080;
/// `SEC_COMMIT`.
const SEC_COMMIT: u32 = 0x0800_0000;

/// Reads every fd of `pid`. `tls_of` gives the TLS base of threads that were stopped, for
/// thread pidfds that point into the target.
pub fn capture(
    pid: i32,
    flags: CaptureFlags,
    tls_of: &HashMap<i32, u64>,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<HandleEntry>> {
    let fd_path = format!("/proc/{pid}/fd");
    let open_dir = |p: &str| {
        openat(
            CWD,
            p,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::from_proc_io(pid, p, e.into()))
    };
    let fd_dir = open_dir(&fd_path)?;
    let info_dir = open_dir(&format!("/proc/{pid}/fdinfo"))?;
    let listing = openat(
        &fd_dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::from_proc_io(pid, &fd_path, e.into()))?;
    let fds =
        procfs::list_numeric_fd(listing).map_err(|e| Error::from_proc_io(pid, &fd_path, e))?;

    let want_name = flags.contains(CaptureFlags::HANDLE_NAME_INFORMATION);
    let want_basic = flags.contains(CaptureFlags::HANDLE_BASIC_INFORMATION);
    let want_specific = flags.contains(CaptureFlags::HANDLE_TYPE_SPECIFIC_INFORMATION);
    let mut buf = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(fds.len());
    let mut name_buf = String::with_capacity(12);

    for fd in fds {
        name_buf.clear();
        use std::fmt::Write;
        let _ = write!(name_buf, "{fd}");
        let link = match procfs::readlink_at(&fd_dir, &name_buf) {
            Ok(l) => l,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                warnings.push(closed(fd));
                continue;
            }
            // A path longer than a page (the kernel will not say it), or anything else that
            // keeps its name from us: the handle stays, without a name.
            Err(e) => {
                warnings.push(Warning::fd(
                    fd,
                    format!("its name could not be read ({e}); it is left out"),
                ));
                OsString::new()
            }
        };
        let capture_time = SystemTime::now();
        let (mut kind, needs_stat) = classify(link.as_bytes());
        let mut linux = HandleLinux::default();
        if needs_stat {
            match statat(&fd_dir, name_buf.as_str(), AtFlags::empty()) {
                Ok(st) => {
                    linux.mode = st.st_mode;
                    linux.size = st.st_size as u64;
                    if kind == FdKind::Other {
                        kind = kind_from_mode(st.st_mode, link.as_bytes());
                    }
                }
                Err(e) if e == rustix::io::Errno::NOENT && !link.as_bytes().starts_with(b"/") => {
                    warnings.push(closed(fd));
                    continue;
                }
                // A path that no longer resolves (deleted, other mount namespace): keep the
                // entry, typed from its name.
                Err(_) => {
                    if kind == FdKind::Other {
                        kind = FdKind::File;
                    }
                }
            }
        }
        let needs_info =
            want_basic || want_specific || matches!(kind, FdKind::EventFd | FdKind::PidFd);
        let info = if needs_info {
            match procfs::read_at(&info_dir, &name_buf, &mut buf) {
                Ok(()) => Some(fdinfo::parse(&buf)),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    warnings.push(closed(fd));
                    continue;
                }
                Err(e) => {
                    warnings.push(Warning::fd(fd, format!("its fdinfo could not be read ({e}); its flags and type-specific information are left out")));
                    None
                }
            }
        } else {
            None
        };

        let object_type = object_type(kind, info.as_ref());
        let mut hflags = HandleFlags::HAVE_TYPE;
        let object_name = if want_name {
            hflags |= HandleFlags::HAVE_NAME;
            Some(link)
        } else {
            None
        };
        let (attributes, granted_access) = match (&info, want_basic) {
            (Some(i), true) => {
                hflags |= HandleFlags::HAVE_BASIC_INFORMATION;
                (attributes(i.flags), access(i.flags))
            }
            _ => (0, 0),
        };
        let mut type_specific = None;
        if let (Some(i), true) = (&info, want_specific) {
            type_specific = specific(object_type, i, linux.size, tls_of);
            if type_specific.is_some() {
                hflags |= HandleFlags::HAVE_TYPE_SPECIFIC_INFORMATION;
            }
            linux.detail = detail(kind, i);
        }
        if let Some(i) = &info {
            linux.open_flags = i.flags;
            linux.pos = i.pos;
            linux.mnt_id = i.mnt_id;
            linux.inode = i.ino;
        }
        out.push(HandleEntry {
            handle: fd,
            flags: hflags,
            object_type,
            capture_time,
            attributes,
            granted_access,
            handle_count: 0,
            pointer_count: 0,
            paged_pool_charge: 0,
            non_paged_pool_charge: 0,
            creation_time: None,
            type_name: kind,
            object_name,
            type_specific,
            linux,
        });
    }
    Ok(out)
}

fn closed(fd: i32) -> Warning {
    Warning::fd(fd, "closed during the capture; not included")
}

/// The kind an fd link names, and whether `fstat` is needed to tell more.
fn classify(link: &[u8]) -> (FdKind, bool) {
    if link.starts_with(b"/memfd:") {
        return (FdKind::MemFd, true);
    }
    if link.starts_with(b"/dev/shm/") {
        return (FdKind::SharedMemory, true);
    }
    if link.starts_with(b"/") {
        return (FdKind::Other, true);
    }
    if link.starts_with(b"pipe:") {
        return (FdKind::Pipe, false);
    }
    if link.starts_with(b"socket:") {
        return (FdKind::Socket, false);
    }
    if link.starts_with(b"pidfd:") {
        return (FdKind::PidFd, false);
    }
    if let Some(anon) = link.strip_prefix(b"anon_inode:") {
        let kind = match anon {
            b"[eventfd]" => FdKind::EventFd,
            b"[eventpoll]" => FdKind::Epoll,
            b"[timerfd]" => FdKind::TimerFd,
            b"[signalfd]" => FdKind::SignalFd,
            b"inotify" => FdKind::Inotify,
            b"[fanotify]" => FdKind::Fanotify,
            b"[pidfd]" => FdKind::PidFd,
            b"[userfaultfd]" => FdKind::Userfaultfd,
            b"[io_uring]" => FdKind::IoUring,
            _ => FdKind::AnonInode,
        };
        return (kind, false);
    }
    (FdKind::Other, false)
}

fn kind_from_mode(mode: u32, link: &[u8]) -> FdKind {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FdKind::Directory,
        libc::S_IFCHR | libc::S_IFBLK => FdKind::Device,
        libc::S_IFIFO => FdKind::Fifo,
        libc::S_IFSOCK => FdKind::Socket,
        libc::S_IFREG if link.starts_with(b"/dev/shm/") => FdKind::SharedMemory,
        _ => FdKind::File,
    }
}

fn object_type(kind: FdKind, info: Option<&FdInfo>) -> ObjectType {
    match kind {
        FdKind::PidFd => match info {
            Some(i) if i.flags & PIDFD_THREAD != 0 => ObjectType::Thread,
            _ => ObjectType::Process,
        },
        FdKind::EventFd => match info.and_then(|i| i.eventfd_semaphore) {
            Some(true) => ObjectType::Semaphore,
            _ => ObjectType::Event,
        },
        FdKind::MemFd | FdKind::SharedMemory => ObjectType::Section,
        _ => ObjectType::Unknown,
    }
}

fn attributes(open_flags: u32) -> u32 {
    if open_flags & O_CLOEXEC == 0 {
        OBJ_INHERIT
    } else {
        0
    }
}

fn access(open_flags: u32) -> u32 {
    if open_flags & O_PATH != 0 {
        return FILE_PATH_ONLY;
    }
    match open_flags & O_ACCMODE {
        O_WRONLY => FILE_GENERIC_WRITE,
        O_RDWR => FILE_GENERIC_READ | FILE_GENERIC_WRITE,
        _ => FILE_GENERIC_READ,
    }
}

fn specific(
    object_type: ObjectType,
    info: &FdInfo,
    size: u64,
    tls_of: &HashMap<i32, u64>,
) -> Option<TypeSpecific> {
    match object_type {
        ObjectType::Event => Some(TypeSpecific::Event {
            manual_reset: false,
            signaled: info.eventfd_count.unwrap_or(0) > 0,
        }),
        ObjectType::Semaphore => Some(TypeSpecific::Semaphore {
            current_count: info.eventfd_count.unwrap_or(0).min(i32::MAX as u64) as i32,
            maximum_count: i32::MAX,
        }),
        ObjectType::Section => Some(TypeSpecific::Section {
            base_address: 0,
            allocation_attributes: SEC_COMMIT,
            maximum_size: size as i64,
        }),
        ObjectType::Process => Some(process_specific(info.pidfd_pid.unwrap_or(-1))),
        ObjectType::Thread => Some(thread_specific(info.pidfd_pid.unwrap_or(-1), tls_of)),
        ObjectType::Unknown | ObjectType::Mutant => None,
    }
}

fn exit_status(st: &stat::Stat) -> u32 {
    if matches!(st.state, b'Z' | b'X') {
        ((st.exit_code >> 8) & 0xff) as u32
    } else {
        STILL_ACTIVE
    }
}

fn process_specific(pid: i64) -> TypeSpecific {
    let st = (pid > 0)
        .then(|| procfs::stat_at(&format!("/proc/{pid}/stat")))
        .flatten();
    match st {
        Some(st) => TypeSpecific::Process {
            exit_status: exit_status(&st),
            peb_base_address: st.arg_start,
            affinity_mask: sched::affinity_mask(pid as i32),
            base_priority: priority::class(st.policy, st.nice).base_priority(),
            process_id: pid as u32,
            parent_process_id: st.ppid as u32,
            flags: 0,
        },
        // Reaped: nothing is left to describe.
        None => TypeSpecific::Process {
            exit_status: 0,
            peb_base_address: 0,
            affinity_mask: 0,
            base_priority: 0,
            process_id: 0,
            parent_process_id: 0,
            flags: 0,
        },
    }
}

fn thread_specific(tid: i64, tls_of: &HashMap<i32, u64>) -> TypeSpecific {
    let tgid = (tid > 0)
        .then(|| procfs::status_at(&format!("/proc/{tid}/status")))
        .flatten()
        .map(|s| s.tgid);
    let st = tgid.and_then(|g| procfs::stat_at(&format!("/proc/{g}/task/{tid}/stat")));
    match (tgid, st) {
        (Some(tgid), Some(st)) => {
            let level = priority::level(st.policy, st.rt_priority, st.nice);
            TypeSpecific::Thread {
                exit_status: exit_status(&st),
                teb_base_address: tls_of.get(&(tid as i32)).copied().unwrap_or(0),
                process_id: tgid as u32,
                thread_id: tid as u32,
                affinity_mask: sched::affinity_mask(tid as i32),
                priority: level,
                base_priority: level,
                win32_start_address: 0,
            }
        }
        _ => TypeSpecific::Thread {
            exit_status: 0,
            teb_base_address: 0,
            process_id: 0,
            thread_id: 0,
            affinity_mask: 0,
            priority: 0,
            base_priority: 0,
            win32_start_address: 0,
        },
    }
}

fn detail(kind: FdKind, i: &FdInfo) -> Option<FdDetail> {
    let dur =
        |p: Option<(u64, u64)>| p.map_or(Duration::ZERO, |(s, ns)| Duration::new(s, ns as u32));
    match kind {
        FdKind::EventFd => Some(FdDetail::EventFd {
            count: i.eventfd_count.unwrap_or(0),
            semaphore: i.eventfd_semaphore.unwrap_or(false),
        }),
        FdKind::PidFd => Some(FdDetail::PidFd {
            pid: i.pidfd_pid.unwrap_or(-1),
            thread: i.flags & PIDFD_THREAD != 0,
        }),
        FdKind::TimerFd => Some(FdDetail::TimerFd {
            clockid: i.timerfd_clockid.unwrap_or(-1),
            ticks: i.timerfd_ticks.unwrap_or(0),
            it_value: dur(i.timerfd_value),
            it_interval: dur(i.timerfd_interval),
        }),
        FdKind::SignalFd => Some(FdDetail::SignalFd {
            sigmask: i.sigmask.unwrap_or(0),
        }),
        FdKind::Inotify => Some(FdDetail::Inotify {
            watches: i.inotify_watches,
        }),
        FdKind::Epoll => Some(FdDetail::Epoll {
            targets: i.epoll_targets.clone(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_links() {
        assert_eq!(classify(b"pipe:[12]").0, FdKind::Pipe);
        assert_eq!(classify(b"socket:[12]").0, FdKind::Socket);
        assert_eq!(classify(b"anon_inode:[eventfd]").0, FdKind::EventFd);
        assert_eq!(classify(b"anon_inode:inotify").0, FdKind::Inotify);
        assert_eq!(classify(b"anon_inode:[pidfd]").0, FdKind::PidFd);
        assert_eq!(classify(b"/memfd:x (deleted)"), (FdKind::MemFd, true));
        assert_eq!(classify(b"/etc/hostname"), (FdKind::Other, true));
        assert_eq!(classify(b"anon_inode:[perf_event]").0, FdKind::AnonInode);
    }

    #[test]
    fn access_and_attributes() {
        assert_eq!(access(0), FILE_GENERIC_READ);
        assert_eq!(access(O_WRONLY), FILE_GENERIC_WRITE);
        assert_eq!(access(O_RDWR | O_CLOEXEC), 0x0012_019f);
        assert_eq!(attributes(O_CLOEXEC), 0);
        assert_eq!(attributes(0), OBJ_INHERIT);
    }
}
