//! Every fault case: a clear error, and nothing left behind.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use pss::{
    CaptureFlags, CaptureOptions, ContextFlags, Error, ErrorKind, Snapshot, Target as PssTarget,
};
use pss_testbed::harness::{children_of, proc_state, wait_for_state, Target};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

const EVERYTHING: CaptureFlags = CaptureFlags::SUPPORTED;

#[test]
fn a_pid_that_does_not_exist() {
    // A pid that existed a moment ago and has been reaped.
    let t = Target::spawn(exe(), &["idle"]);
    let pid = t.pid;
    assert!(t.finish().success());
    let err = Snapshot::capture(PssTarget::Pid(pid), EVERYTHING, ContextFlags::ALL).unwrap_err();
    assert!(
        matches!(err, Error::NoSuchProcess { pid: p } if p == pid),
        "{err}"
    );
    assert_eq!(err.to_string(), format!("no process with pid {pid}"));
    let err = Snapshot::capture(PssTarget::Pid(-5), EVERYTHING, ContextFlags::ALL).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoSuchProcess);
}

#[test]
fn a_thread_id_is_not_a_process_id() {
    let mut t = Target::spawn(exe(), &["threads", "1"]);
    let tid = t.parked_tids()[0];
    let err = Snapshot::capture(PssTarget::Pid(tid), EVERYTHING, ContextFlags::ALL).unwrap_err();
    assert!(
        matches!(err, Error::NotAProcess { tid: x, tgid } if x == tid && tgid == t.pid),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::NoSuchProcess);
    t.assert_unharmed();
}

#[test]
fn a_zombie_is_refused() {
    let mut t = Target::spawn(exe(), &["idle"]);
    t.kill_leave_zombie();
    wait_for_state(t.pid, 'Z');
    let err = Snapshot::capture(PssTarget::Pid(t.pid), EVERYTHING, ContextFlags::ALL).unwrap_err();
    assert!(
        matches!(err, Error::Zombie { pid } if pid == t.pid),
        "{err}"
    );
}

#[test]
fn an_already_traced_target_names_its_tracer() {
    let mut t = Target::spawn(exe(), &["threads", "2"]);
    let pid = t.pid.to_string();
    let tracer = Target::spawn(exe(), &["tracer", &pid]);
    assert!(tracer.facts("error").is_empty(), "{:?}", tracer.facts);
    let asked = Instant::now();
    let err = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::THREADS,
        ContextFlags::empty(),
    )
    .unwrap_err();
    // At once: a debugger is not waited for as another capture would be.
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "{:?}",
        asked.elapsed()
    );
    match &err {
        Error::AlreadyTraced {
            pid, tracer: by, ..
        } => {
            assert_eq!(*pid, t.pid);
            assert_eq!(*by, tracer.pid);
        }
        other => panic!("expected AlreadyTraced, got {other}"),
    }
    assert!(
        err.to_string()
            .contains(&format!("already traced by pid {}", tracer.pid)),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::AccessDenied);
    // Without threads nothing needs ptrace: handles and maps are still readable.
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::HANDLES | CaptureFlags::VA_SPACE,
        ContextFlags::empty(),
    )
    .unwrap();
    assert!(!snap.handles().unwrap().is_empty());
    drop(tracer);
    // Once the tracer is gone, the capture works and leaves the target unharmed.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Snapshot::capture(
            PssTarget::Pid(t.pid),
            CaptureFlags::THREADS,
            ContextFlags::empty(),
        ) {
            Ok(s) => {
                assert_eq!(s.threads().unwrap().len(), 3);
                break;
            }
            Err(Error::AlreadyTraced { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("{e}"),
        }
    }
    t.assert_unharmed();
}

#[test]
fn a_target_that_exits_mid_capture_gives_a_clear_error() {
    for _ in 0..5 {
        let mut t = Target::spawn(exe(), &["exit-after", "40", "200"]);
        let mut outcomes = (0, 0);
        loop {
            match Snapshot::capture(PssTarget::Pid(t.pid), EVERYTHING, ContextFlags::ALL) {
                Ok(_) => outcomes.0 += 1,
                Err(e) => {
                    assert!(
                        matches!(
                            e.kind(),
                            ErrorKind::ProcessExited | ErrorKind::NoSuchProcess
                        ),
                        "unexpected error {e}"
                    );
                    outcomes.1 += 1;
                    if matches!(proc_state(t.pid), 'Z' | '?') {
                        break;
                    }
                }
            }
        }
        assert!(outcomes.1 > 0);
        // It exited by itself, with its own status: never killed by the capture.
        let status = t.wait();
        assert_eq!(status.code(), Some(0), "{status:?}");
    }
}

#[test]
fn a_thread_that_cannot_stop_times_out_and_the_target_is_released() {
    let mut t = Target::spawn(exe(), &["vfork", "1500"]);
    let vforker: i32 = t.facts("vforker")[0][0].parse().unwrap();
    let mut opts = CaptureOptions::new(
        CaptureFlags::THREADS | CaptureFlags::THREAD_CONTEXT,
        ContextFlags::ALL,
    );
    opts.stop_timeout = Duration::from_millis(200);
    let started = Instant::now();
    let err = Snapshot::capture_with(PssTarget::Pid(t.pid), &opts).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the deadline held"
    );
    match err {
        Error::Timeout {
            pid,
            tid,
            timeout_ms,
        } => {
            assert_eq!((pid, tid, timeout_ms), (t.pid, vforker, 200));
        }
        other => panic!("expected a timeout, got {other}"),
    }
    // Released at once: the other threads answer, nothing is traced…
    t.assert_unharmed();
    // …and the vforking thread carries on when its child exits.
    t.expect("vfork done");
    t.assert_unharmed();
    // The engine still works afterwards.
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::THREADS,
        ContextFlags::empty(),
    )
    .unwrap();
    assert!(snap
        .threads()
        .unwrap()
        .iter()
        .any(|e| e.thread_id == t.pid as u32));
    t.assert_unharmed();
}

#[test]
fn flags_not_built_are_refused_by_name_and_trace_flags_yield_a_warning() {
    let mut t = Target::spawn(exe(), &["idle"]);
    for (flag, name) in [
        (
            CaptureFlags::CREATE_FORCE_BREAKAWAY,
            "create-force-breakaway",
        ),
        (CaptureFlags::RESERVED_00004000, "0x4000"),
    ] {
        let err = Snapshot::capture(
            PssTarget::Pid(t.pid),
            flag | CaptureFlags::THREADS,
            ContextFlags::empty(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotSupported);
        assert!(err.to_string().contains(name), "{err}");
    }
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::THREADS | CaptureFlags::WITHOUT_DATA,
        ContextFlags::empty(),
    )
    .expect("handle and IPT tracing do not fail a capture");
    assert_eq!(snap.threads().unwrap().len(), 1);
    let warned: Vec<&str> = snap.warnings().iter().map(|w| w.message.as_str()).collect();
    assert!(
        warned.iter().any(|m| m.contains("handle trace")),
        "{warned:?}"
    );
    assert!(
        warned.iter().any(|m| m.contains("Processor Trace")),
        "{warned:?}"
    );
    let e = snap
        .query(pss::QueryClass::HandleTraceInformation)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    t.assert_unharmed();
}

#[test]
fn the_calling_process_without_contexts() {
    let snap = Snapshot::capture(
        PssTarget::Current,
        CaptureFlags::THREADS | CaptureFlags::HANDLES | CaptureFlags::VA_SPACE,
        ContextFlags::empty(),
    )
    .unwrap();
    // SAFETY: gettid has no arguments.
    let me = unsafe { libc::gettid() } as u32;
    assert!(snap.threads().unwrap().iter().any(|t| t.thread_id == me));
    assert_eq!(snap.process().process_id, std::process::id());
    assert!(snap.handles().unwrap().len() >= 3);
}

#[test]
fn a_target_given_by_pidfd() {
    let mut t = Target::spawn(exe(), &["threads", "1"]);
    // SAFETY: pidfd_open on our own child; the result is checked before use.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, t.pid, 0) };
    assert!(raw >= 0);
    // SAFETY: raw is a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let snap = Snapshot::capture(
        PssTarget::PidFd(fd.as_fd()),
        CaptureFlags::THREADS,
        ContextFlags::empty(),
    )
    .unwrap();
    assert_eq!(snap.capture_info().pid, t.pid);
    assert_eq!(snap.threads().unwrap().len(), 2);
    t.assert_unharmed();
    // A pidfd whose process is gone.
    let pid = t.pid;
    drop(t);
    let err = Snapshot::capture(
        PssTarget::PidFd(fd.as_fd()),
        CaptureFlags::THREADS,
        ContextFlags::empty(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ProcessExited | ErrorKind::NoSuchProcess
        ),
        "{err} (pid {pid})"
    );
}

#[test]
fn a_clone_freed_while_a_debugger_holds_the_target_is_reaped_once_it_leaves() {
    let mut t = Target::spawn(exe(), &["threads", "2"]);
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::VA_CLONE,
        ContextFlags::empty(),
    )
    .unwrap();
    let clone = snap.va_clone().unwrap().pid();
    // A debugger attaches to the target's leader, the thread a reap would stop.
    let tracer = Target::spawn(exe(), &["tracer", &t.pid.to_string()]);
    assert!(tracer.facts("error").is_empty(), "{:?}", tracer.facts);
    drop(snap);
    // The clone is dead; its zombie waits: the target cannot be stopped now.
    assert_eq!(children_of(t.pid), vec![clone]);
    assert_eq!(proc_state(clone), 'Z');
    drop(tracer);
    // The engine retries until the reap works.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !children_of(t.pid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the zombie {clone} was never reaped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    t.assert_unharmed();
    t.wake_parked_and_check();
}
