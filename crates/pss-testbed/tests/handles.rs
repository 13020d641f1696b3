//! Every fd kind: type name, object type, type-specific values, basic information.

use std::path::Path;
use std::time::Duration;

use pss::records::{FdDetail, FdKind, HandleEntry, TypeSpecific};
use pss::{
    CaptureFlags, ContextFlags, HandleFlags, ObjectType, QueryClass, QueryInfo, Snapshot,
    Target as PssTarget,
};
use pss_testbed::harness::Target;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

const ALL_HANDLE_INFO: CaptureFlags = CaptureFlags::HANDLES
    .union(CaptureFlags::HANDLE_NAME_INFORMATION)
    .union(CaptureFlags::HANDLE_BASIC_INFORMATION)
    .union(CaptureFlags::HANDLE_TYPE_SPECIFIC_INFORMATION);

const FILE_GENERIC_READ: u32 = 0x0012_0089;
const FILE_GENERIC_WRITE: u32 = 0x0012_0116;

struct Fds {
    target: Target,
    snap: Snapshot,
}

impl Fds {
    fn new(flags: CaptureFlags) -> Fds {
        let mut target = Target::spawn(exe(), &["fds"]);
        let snap = Snapshot::capture(PssTarget::Pid(target.pid), flags, ContextFlags::empty())
            .expect("capture");
        target.assert_unharmed();
        Fds { target, snap }
    }

    /// The announced facts of kind `kind`: (fd, the rest).
    fn fact(&self, kind: &str) -> (i32, Vec<String>) {
        let f = self
            .target
            .facts("fd")
            .into_iter()
            .find(|f| f[0] == kind)
            .unwrap_or_else(|| panic!("target announced no {kind}"));
        (f[1].parse().unwrap(), f[2..].to_vec())
    }

    fn entry(&self, kind: &str) -> (&HandleEntry, Vec<String>) {
        let (fd, rest) = self.fact(kind);
        let h = self
            .snap
            .handles()
            .unwrap()
            .iter()
            .find(|h| h.handle == fd)
            .unwrap_or_else(|| panic!("fd {fd} ({kind}) not captured"));
        (h, rest)
    }
}

fn name(h: &HandleEntry) -> String {
    h.object_name
        .as_ref()
        .expect("name captured")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_fd_kind_with_type_name_object_type_and_specific_values() {
    let f = Fds::new(ALL_HANDLE_INFO | CaptureFlags::THREADS);
    let all = HandleFlags::HAVE_TYPE | HandleFlags::HAVE_NAME | HandleFlags::HAVE_BASIC_INFORMATION;

    let (h, _) = f.entry("pipe-r");
    assert_eq!(
        (h.type_name, h.object_type),
        (FdKind::Pipe, ObjectType::Unknown)
    );
    assert!(name(h).starts_with("pipe:["));
    assert_eq!(h.flags, all, "no type-specific arm for a pipe");
    assert_eq!(h.granted_access, FILE_GENERIC_READ);
    let (w, _) = f.entry("pipe-w");
    assert_eq!(w.granted_access, FILE_GENERIC_WRITE);
    assert_eq!(name(w), name(h), "both ends name the same pipe inode");

    let (h, _) = f.entry("socket");
    assert_eq!(
        (h.type_name, h.object_type),
        (FdKind::Socket, ObjectType::Unknown)
    );
    assert!(name(h).starts_with("socket:["));

    let (h, rest) = f.entry("eventfd");
    assert_eq!(
        (h.type_name, h.object_type),
        (FdKind::EventFd, ObjectType::Event)
    );
    assert_eq!(h.flags, all | HandleFlags::HAVE_TYPE_SPECIFIC_INFORMATION);
    assert_eq!(
        h.type_specific,
        Some(TypeSpecific::Event {
            manual_reset: false,
            signaled: true
        })
    );
    assert_eq!(
        h.linux.detail,
        Some(FdDetail::EventFd {
            count: rest[0].parse().unwrap(),
            semaphore: false
        })
    );
    let (h, _) = f.entry("eventfd-zero");
    assert_eq!(
        h.type_specific,
        Some(TypeSpecific::Event {
            manual_reset: false,
            signaled: false
        })
    );

    let (h, rest) = f.entry("eventfd-sem");
    assert_eq!(
        (h.type_name, h.object_type),
        (FdKind::EventFd, ObjectType::Semaphore)
    );
    assert_eq!(
        h.type_specific,
        Some(TypeSpecific::Semaphore {
            current_count: rest[0].parse().unwrap(),
            maximum_count: i32::MAX
        })
    );

    let (h, rest) = f.entry("memfd");
    assert_eq!(
        (h.type_name, h.object_type),
        (FdKind::MemFd, ObjectType::Section)
    );
    assert!(name(h).starts_with("/memfd:pss-testbed"), "{}", name(h));
    assert_eq!(
        h.type_specific,
        Some(TypeSpecific::Section {
            base_address: 0,
            allocation_attributes: 0x0800_0000,
            maximum_size: rest[0].parse().unwrap()
        })
    );

    // A pidfd of the target's parent: this test process.
    let (h, rest) = f.entry("pidfd");
    assert_eq!(
        (h.type_name, h.object_type),
        (FdKind::PidFd, ObjectType::Process)
    );
    let me = std::process::id();
    assert_eq!(rest[0], me.to_string());
    match h.type_specific {
        Some(TypeSpecific::Process {
            exit_status,
            process_id,
            parent_process_id,
            ..
        }) => {
            assert_eq!(exit_status, pss::STILL_ACTIVE);
            assert_eq!(process_id, me);
            assert_eq!(parent_process_id, std::os::unix::process::parent_id());
        }
        other => panic!("pidfd type-specific: {other:?}"),
    }

    // A thread pidfd of one of the target's own (stopped, hence known TLS) threads.
    let (h, rest) = f.entry("pidfd-thread");
    assert_eq!(
        (h.type_name, h.object_type),
        (FdKind::PidFd, ObjectType::Thread)
    );
    let tid: u32 = rest[0].parse().unwrap();
    let teb = f
        .snap
        .threads()
        .unwrap()
        .iter()
        .find(|t| t.thread_id == tid)
        .unwrap()
        .teb_base_address;
    match h.type_specific {
        Some(TypeSpecific::Thread {
            thread_id,
            process_id,
            teb_base_address,
            exit_status,
            ..
        }) => {
            assert_eq!(thread_id, tid);
            assert_eq!(process_id, f.target.pid as u32);
            assert_eq!(teb_base_address, teb);
            assert_eq!(exit_status, pss::STILL_ACTIVE);
        }
        other => panic!("thread pidfd type-specific: {other:?}"),
    }

    let (h, rest) = f.entry("timerfd");
    assert_eq!(
        (h.type_name, h.object_type),
        (FdKind::TimerFd, ObjectType::Unknown)
    );
    match &h.linux.detail {
        Some(FdDetail::TimerFd {
            clockid,
            it_value,
            it_interval,
            ..
        }) => {
            assert_eq!(*clockid, rest[0].parse::<i64>().unwrap());
            assert_eq!(*it_interval, Duration::from_secs(rest[1].parse().unwrap()));
            assert!(
                *it_value <= Duration::from_secs(100) && *it_value > Duration::from_secs(50),
                "{it_value:?}"
            );
        }
        other => panic!("timerfd detail: {other:?}"),
    }

    let (h, rest) = f.entry("signalfd");
    assert_eq!(
        (h.type_name, h.object_type),
        (FdKind::SignalFd, ObjectType::Unknown)
    );
    assert_eq!(
        h.linux.detail,
        Some(FdDetail::SignalFd {
            sigmask: u64::from_str_radix(&rest[0], 16).unwrap()
        })
    );

    let (h, rest) = f.entry("epoll");
    assert_eq!(
        (h.type_name, h.object_type),
        (FdKind::Epoll, ObjectType::Unknown)
    );
    assert_eq!(
        h.linux.detail,
        // epoll_ctl(2): EPOLLERR and EPOLLHUP are always part of a registration.
        Some(FdDetail::Epoll {
            targets: vec![(
                rest[0].parse().unwrap(),
                (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32
            )]
        })
    );

    let (h, rest) = f.entry("inotify");
    assert_eq!(
        (h.type_name, h.object_type),
        (FdKind::Inotify, ObjectType::Unknown)
    );
    assert_eq!(
        h.linux.detail,
        Some(FdDetail::Inotify {
            watches: rest[0].parse().unwrap()
        })
    );

    let (h, rest) = f.entry("file");
    assert_eq!(
        (h.type_name, h.object_type),
        (FdKind::File, ObjectType::Unknown)
    );
    assert_eq!(name(h), format!("{} (deleted)", rest[1]));
    assert_eq!(h.linux.pos, rest[0].parse::<u64>().unwrap());
    assert_eq!(h.attributes, 0x2, "opened without O_CLOEXEC: inheritable");
    assert_eq!(h.granted_access, FILE_GENERIC_READ | FILE_GENERIC_WRITE);
    assert_eq!(h.linux.size, 11);

    let (h, rest) = f.entry("dir");
    assert_eq!(
        (h.type_name, h.object_type),
        (FdKind::Directory, ObjectType::Unknown)
    );
    assert_eq!(name(h), rest[0]);
    assert_eq!(h.attributes, 0, "O_CLOEXEC: not inheritable");

    let (h, rest) = f.entry("device");
    assert_eq!(
        (h.type_name, h.object_type),
        (FdKind::Device, ObjectType::Unknown)
    );
    assert_eq!(name(h), rest[0]);
    assert_eq!(h.granted_access, FILE_GENERIC_WRITE);

    // Independent oracle: the fd numbers the kernel lists.
    let mut oracle: Vec<i32> = std::fs::read_dir(format!("/proc/{}/fd", f.target.pid))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    oracle.sort();
    let got: Vec<i32> = f.snap.handles().unwrap().iter().map(|h| h.handle).collect();
    assert_eq!(got, oracle);
    match f.snap.query(QueryClass::HandleInformation).unwrap() {
        QueryInfo::Handles { handles_captured } => {
            assert_eq!(handles_captured as usize, oracle.len())
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn handles_alone_are_typed_but_unnamed() {
    let f = Fds::new(CaptureFlags::HANDLES);
    for h in f.snap.handles().unwrap() {
        assert_eq!(h.flags, HandleFlags::HAVE_TYPE, "fd {}", h.handle);
        assert_eq!(h.object_name, None);
        assert_eq!(h.type_specific, None);
        assert_eq!((h.attributes, h.granted_access), (0, 0));
    }
    // The object type is still known without the other flags.
    let (h, _) = f.entry("eventfd-sem");
    assert_eq!(h.object_type, ObjectType::Semaphore);
    let (h, _) = f.entry("pidfd-thread");
    assert_eq!(h.object_type, ObjectType::Thread);
}
