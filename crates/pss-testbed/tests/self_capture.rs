//! Capture of the calling process (`(HANDLE)-1`): threads with contexts, auxiliary pages and
//! a VA clone, by the engine process like any other, without stopping the capturing thread
//! for good.
//! Here the test process is the target: it knows its own tids, fds and bytes.

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pss::records::AuxiliaryPageKind;
use pss::{CaptureFlags, ContextFlags, Snapshot, Target as PssTarget};
use pss_testbed::harness::proc_state;

fn gettid() -> u32 {
    // SAFETY: gettid has no arguments.
    unsafe { libc::gettid() as u32 }
}

fn pipe() -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a live array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (fds[0], fds[1])
}

/// The syscall `tid` of this process is blocked in, from `/proc/self/task/TID/syscall`.
fn blocked_in(tid: u32) -> Option<i64> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A thread of ours that puts a marker on its stack and blocks in `read()` on `fd`; it
/// returns what it read.
fn reader_thread(fd: i32, marker: u64) -> (u32, std::thread::JoinHandle<Vec<u8>>) {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let on_stack = black_box([marker, !marker, marker]);
        tx.send(gettid()).unwrap();
        let mut buf = [0u8; 64];
        // SAFETY: buf is a live buffer of 64 bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        black_box(&on_stack);
        buf[..n.max(0) as usize].to_vec()
    });
    let tid = rx.recv().unwrap();
    wait_until("the reader blocks in read()", || {
        blocked_in(tid) == Some(libc::SYS_read)
    });
    (tid, h)
}

/// An anonymous mapping of `len` bytes filled with `byte`.
fn mapping(len: usize, byte: u8) -> &'static mut [u8] {
    // SAFETY: a fresh private anonymous mapping, never unmapped: 'static is sound.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        let s = std::slice::from_raw_parts_mut(p.cast::<u8>(), len);
        s.fill(byte);
        s
    }
}

fn exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn the_calling_process_with_contexts_aux_pages_and_a_clone() {
    let (r, w) = pipe();
    let marker = 0x5053_535f_5345_4c46u64;
    let (reader, handle) = reader_thread(r, marker);
    let me = gettid();

    // Memory the clone must hold as it was: a private pattern and a MADV_DONTFORK range.
    let pattern: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let dontfork = mapping(64 << 10, 0xAB);
    // SAFETY: madvise on our own fresh mapping.
    let rc = unsafe {
        libc::madvise(
            dontfork.as_mut_ptr().cast(),
            dontfork.len(),
            libc::MADV_DONTFORK,
        )
    };
    assert_eq!(rc, 0);
    let mut live = pattern.clone();

    let snap = Snapshot::capture(
        PssTarget::Current,
        CaptureFlags::THREADS
            | CaptureFlags::THREAD_CONTEXT
            | CaptureFlags::AUXILIARY_PAGES
            | CaptureFlags::VA_CLONE
            | CaptureFlags::HANDLES
            | CaptureFlags::VA_SPACE,
        ContextFlags::ALL,
    )
    .expect("capture of the calling process");
    // The process keeps going: change everything the clone must not see.
    live.fill(0);
    dontfork.fill(0);
    black_box(&live);

    assert_eq!(snap.process().process_id, std::process::id());
    let info = snap.capture_info();
    assert!(info.pause > Duration::ZERO);
    assert!(info.threads_stopped >= 2, "{info:?}");

    // Threads: the reader is in read(fd) by its own registers; the capturing thread is there.
    let threads = snap.threads().unwrap();
    let rt = threads
        .iter()
        .find(|t| t.thread_id == reader)
        .expect("reader thread");
    let ctx = rt.context.as_ref().expect("reader context");
    assert_eq!(ctx.general.syscall_number(), Some(libc::SYS_read));
    assert_eq!(ctx.general.syscall_arg0(), r as u64);
    let mt = threads
        .iter()
        .find(|t| t.thread_id == me)
        .expect("capturing thread");
    assert!(mt.context.is_some());

    // Auxiliary pages: the reader's stack copy holds its marker.
    let pages = snap.auxiliary_pages().unwrap();
    let stack = pages
        .iter()
        .find(|p| p.thread_id == reader && p.kind == AuxiliaryPageKind::Stack)
        .expect("reader stack");
    let sp = ctx.general.stack_pointer();
    assert!(stack.address <= sp && sp < stack.address + stack.contents.len() as u64);
    let needle = marker.to_ne_bytes();
    assert!(
        stack.contents.windows(8).any(|w| w == needle),
        "marker not on the stack copy"
    );

    // Handles came from the clone before its fds were closed: the pipe is there.
    let fds: Vec<i32> = snap.handles().unwrap().iter().map(|h| h.handle).collect();
    assert!(fds.contains(&r) && fds.contains(&w), "{fds:?}");

    // The clone: our memory as it was, the forked-away range from the copy.
    let clone = snap.va_clone().expect("clone");
    let cpid = clone.pid();
    assert_ne!(cpid, std::process::id() as i32);
    let mut got = vec![0u8; pattern.len()];
    clone.read_exact(live.as_ptr() as u64, &mut got).unwrap();
    assert!(got == pattern, "the clone does not hold the pattern");
    let mut df = vec![0u8; dontfork.len()];
    clone.read_exact(dontfork.as_ptr() as u64, &mut df).unwrap();
    assert!(df.iter().all(|&b| b == 0xAB));
    // Parked and traced, holding no fd of ours.
    assert_eq!(proc_state(cpid), 't');
    assert_eq!(
        std::fs::read_dir(format!("/proc/{cpid}/fd"))
            .unwrap()
            .count(),
        0
    );

    // The reader resumes and gets exactly the bytes written after the capture.
    // SAFETY: writing 5 bytes from a live buffer to our pipe.
    assert_eq!(unsafe { libc::write(w, b"after".as_ptr().cast(), 5) }, 5);
    assert_eq!(handle.join().unwrap(), b"after");

    drop(snap);
    // Killed and reaped: no clone, no zombie.
    assert!(!exists(cpid), "the clone {cpid} is left over");
    // SAFETY: closing our own pipe fds.
    unsafe {
        libc::close(r);
        libc::close(w);
    }
}

#[test]
fn the_clone_outlives_the_thread_that_made_it() {
    let value = Box::new(0x1122_3344_5566_7788u64);
    let addr = &*value as *const u64 as u64;
    let snap = std::thread::spawn(|| {
        Snapshot::capture(
            PssTarget::Current,
            CaptureFlags::VA_CLONE,
            ContextFlags::empty(),
        )
        .expect("capture")
    })
    .join()
    .unwrap();
    // The capturing thread is gone; the clone (its child) must not have died with it.
    std::thread::sleep(Duration::from_millis(50));
    let clone = snap.va_clone().unwrap();
    let cpid = clone.pid();
    assert!(exists(cpid));
    let mut b = [0u8; 8];
    clone.read_exact(addr, &mut b).unwrap();
    assert_eq!(u64::from_ne_bytes(b), *value);
    drop(snap);
    assert!(!exists(cpid));
}

#[test]
fn the_callers_signal_mask_and_other_threads_are_unchanged() {
    // SAFETY: sigset_t is plain data; the calls read and set this thread's mask.
    let mask = || unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut old);
        (0..64)
            .filter(|&s| libc::sigismember(&old, s) == 1)
            .collect::<Vec<_>>()
    };
    // SAFETY: as above; blocks SIGUSR2 on this thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let before = mask();
    let (r, w) = pipe();
    let (reader, handle) = reader_thread(r, 1);
    for _ in 0..3 {
        let snap = Snapshot::capture(
            PssTarget::Current,
            CaptureFlags::THREADS | CaptureFlags::THREAD_CONTEXT | CaptureFlags::VA_CLONE,
            ContextFlags::ALL,
        )
        .unwrap();
        assert!(snap
            .threads()
            .unwrap()
            .iter()
            .any(|t| t.thread_id == reader));
    }
    assert_eq!(mask(), before);
    // Nothing traces us (once the other tests of this process, which capture it too, are
    // done with it), and the reader still sleeps in read() until fed.
    wait_until("no tracer", || {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .contains("TracerPid:\t0\n")
    });
    wait_until("the reader is back in read()", || {
        blocked_in(reader) == Some(libc::SYS_read)
    });
    // SAFETY: writing 1 byte from a live buffer to our pipe.
    assert_eq!(unsafe { libc::write(w, b"x".as_ptr().cast(), 1) }, 1);
    assert_eq!(handle.join().unwrap(), b"x");
    // SAFETY: closing our own pipe fds.
    unsafe {
        libc::close(r);
        libc::close(w);
    }
}
