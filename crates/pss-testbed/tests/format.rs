//! The snapshot serialization (`docs/format.md`): a capture of a real process survives
//! bytes, a file and a sealed memfd exactly; damaged input is refused, never a panic; and
//! an fd is put into and taken out of another process without harming it.

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use pss::{CaptureFlags, ContextFlags, ErrorKind, Snapshot, Target as PssTarget};
use pss_testbed::harness::Target;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

/// Everything but the VA clone, which does not travel.
fn everything() -> CaptureFlags {
    CaptureFlags::THREADS
        | CaptureFlags::THREAD_CONTEXT
        | CaptureFlags::THREAD_CONTEXT_EXTENDED
        | CaptureFlags::HANDLES
        | CaptureFlags::HANDLE_NAME_INFORMATION
        | CaptureFlags::HANDLE_BASIC_INFORMATION
        | CaptureFlags::HANDLE_TYPE_SPECIFIC_INFORMATION
        | CaptureFlags::VA_SPACE
        | CaptureFlags::VA_SPACE_SECTION_INFORMATION
        | CaptureFlags::AUXILIARY_PAGES
        | CaptureFlags::CREATE_MEASURE_PERFORMANCE
}

fn assert_same(a: &Snapshot, b: &Snapshot) {
    assert_eq!(a.process(), b.process());
    assert_eq!(a.threads(), b.threads());
    assert_eq!(a.handles(), b.handles());
    assert_eq!(a.va_space(), b.va_space());
    assert_eq!(a.auxiliary_pages(), b.auxiliary_pages());
    assert_eq!(a.performance(), b.performance());
    assert_eq!(a.capture_info(), b.capture_info());
    assert_eq!(a.warnings(), b.warnings());
    assert_eq!(a.context_length(), b.context_length());
}

fn capture(target: &Target, flags: CaptureFlags) -> Snapshot {
    Snapshot::capture(PssTarget::Pid(target.pid), flags, ContextFlags::ALL).expect("capture")
}

#[test]
fn a_full_capture_survives_bytes_a_file_and_a_sealed_memfd() {
    let mut target = Target::spawn(exe(), &["fds"]);
    let snap = capture(&target, everything());
    target.assert_unharmed();
    // The capture holds what the target knows: its pid and its fds.
    assert_eq!(snap.process().process_id, target.pid as u32);
    let (pipe_fd, _) = {
        let f = target.facts("fd");
        let p = f.iter().find(|f| f[0] == "pipe-r").expect("a pipe fact");
        (p[1].parse::<i32>().unwrap(), ())
    };
    assert!(snap.handles().unwrap().iter().any(|h| h.handle == pipe_fd));
    assert!(!snap.auxiliary_pages().unwrap().is_empty());

    let bytes = snap.to_bytes();
    assert_eq!(&bytes[..8], b"PSSSNAP\0");
    let back = Snapshot::from_bytes(&bytes).expect("decode");
    assert_same(&snap, &back);
    assert!(back.va_clone().is_none());
    // Serializing the decoded snapshot gives the same body (only the random id differs).
    assert_eq!(back.to_bytes()[24..], bytes[24..]);

    let dir = std::env::temp_dir().join(format!("pss-format-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("snap.pss");
    snap.save(&file).expect("save");
    assert_same(&snap, &Snapshot::load(&file).expect("load"));
    std::fs::remove_dir_all(&dir).unwrap();

    let (fd, id) = snap.to_memfd().expect("memfd");
    let (back, header) = Snapshot::from_memfd(fd.as_fd()).expect("from memfd");
    assert_eq!(header.id, id);
    assert_same(&snap, &back);
    // Sealed: nobody, the maker included, can change it.
    let w = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    let write_refused = match w {
        Err(_) => true,
        Ok(mut f) => std::io::Write::write_all(&mut f, b"x").is_err(),
    };
    assert!(write_refused, "the snapshot memfd is writable");
}

#[test]
fn damaged_or_foreign_bytes_are_refused_with_a_reason() {
    let target = Target::spawn(exe(), &["threads", "2"]);
    let snap = capture(
        &target,
        CaptureFlags::THREADS | CaptureFlags::THREAD_CONTEXT | CaptureFlags::HANDLES,
    );
    let bytes = snap.to_bytes();
    // Every truncation is refused.
    for cut in (0..bytes.len()).step_by(7) {
        let e = Snapshot::from_bytes(&bytes[..cut]).expect_err("a truncated snapshot");
        assert_eq!(e.kind(), ErrorKind::Corrupt, "cut at {cut}: {e}");
    }
    // Every flipped byte of the body is caught by the checksum.
    for at in (48..bytes.len()).step_by(13) {
        let mut b = bytes.clone();
        b[at] ^= 0x40;
        let e = Snapshot::from_bytes(&b).expect_err("a damaged snapshot");
        assert!(e.to_string().contains("checksum"), "byte {at}: {e}");
    }
    let mut b = bytes.clone();
    b[0] = b'X';
    assert!(Snapshot::from_bytes(&b)
        .unwrap_err()
        .to_string()
        .contains("magic"));
    let mut b = bytes.clone();
    b[8] = 2; // major version 2
    assert_eq!(
        Snapshot::from_bytes(&b).unwrap_err().kind(),
        ErrorKind::NotSupported
    );
    // A body that passes the checksum but does not parse: a section tag with a bad length.
    let mut b = bytes[..48].to_vec();
    let body = [1u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    b[24..32].copy_from_slice(&(body.len() as u64).to_le_bytes());
    b[32..40].copy_from_slice(&fnv1a(&body).to_le_bytes());
    b.extend_from_slice(&body);
    let e = Snapshot::from_bytes(&b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    // A file that is not a snapshot names the file.
    let e = Snapshot::load("/proc/self/status").unwrap_err();
    assert!(e.to_string().contains("/proc/self/status"), "{e}");
    // A memfd must be a sealed pss-snapshot one.
    let (r, _w) = rustix::pipe::pipe().unwrap();
    assert_eq!(
        Snapshot::from_memfd(r.as_fd()).unwrap_err().kind(),
        ErrorKind::Corrupt
    );
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn pidfd_of(pid: i32) -> std::os::fd::OwnedFd {
    rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::PidfdFlags::empty(),
    )
    .unwrap()
}

fn fd_link(pid: i32, fd: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

#[test]
fn a_snapshot_fd_goes_into_another_process_and_is_closed_there_unharmed() {
    let mut target = Target::spawn(exe(), &["threads", "3"]);
    let snap = capture(
        &target,
        CaptureFlags::THREADS | CaptureFlags::THREAD_CONTEXT,
    );
    let (fd, id) = snap.to_memfd().unwrap();
    let pidfd = pidfd_of(target.pid);

    let n = pss::remote::install_fd(pidfd.as_fd(), fd.as_fd()).expect("install");
    assert_eq!(
        fd_link(target.pid, n).as_deref(),
        Some("/memfd:pss-snapshot (deleted)")
    );
    // Read-only and close-on-exec in the target.
    let fdinfo = std::fs::read_to_string(format!("/proc/{}/fdinfo/{n}", target.pid)).unwrap();
    let flags = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
        .unwrap();
    assert_eq!(flags & libc::O_ACCMODE as u32, libc::O_RDONLY as u32);
    assert_ne!(flags & libc::O_CLOEXEC as u32, 0);
    target.assert_unharmed();

    // Taken back out, it is the same snapshot.
    let copy = pss::remote::get_fd(pidfd.as_fd(), n).expect("get_fd");
    let (back, header) = Snapshot::from_memfd(copy.as_fd()).unwrap();
    assert_eq!(header.id, id);
    assert_same(&snap, &back);

    pss::remote::close_fd(pidfd.as_fd(), n).expect("close");
    assert_eq!(fd_link(target.pid, n), None);
    target.assert_unharmed();
    // The parked threads' registers and reads survived both injections.
    target.wake_parked_and_check();

    // An fd the process does not have, and the calling process itself, are refused.
    let e = pss::remote::get_fd(pidfd.as_fd(), 999).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{e}");
    let me = pidfd_of(std::process::id() as i32);
    let e = pss::remote::install_fd(me.as_fd(), fd.as_fd()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{e}");
    assert_eq!(target.finish().code(), Some(0));
}
