//! The engine process as its callers meet it: started on first use as nobody's child in
//! the caller, one per calling process, gone (with everything it held) when the caller
//! lets it go. (These tests also make cargo build `pss-engine`, which every other test
//! binary of the workspace finds beside it.)

use std::time::{Duration, Instant};

/// One test at a time: they share this process's engine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn stat_field(pid: i32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(n - 3).map(str::to_string)
}

#[test]
fn the_engine_is_no_child_of_ours_and_leaves_when_we_let_it_go() {
    let _one = serial();
    let engine = pss::engine_pid().expect("an engine starts");
    let me = std::process::id() as i32;
    assert_ne!(engine, me);
    assert_eq!(pss::engine_pid().unwrap(), engine, "one engine per process");
    let ppid: i32 = stat_field(engine, 4).unwrap().parse().unwrap();
    assert_ne!(ppid, me, "the engine must not be our child");
    let comm = std::fs::read_to_string(format!("/proc/{engine}/comm")).unwrap();
    assert_eq!(comm.trim(), "pss-engine");
    // Its own session: a Ctrl-C at our terminal never reaches it.
    assert_eq!(
        stat_field(engine, 6).unwrap(),
        engine.to_string(),
        "session id"
    );
    let started = Instant::now();
    assert!(pss::shutdown_engine(Duration::from_secs(5)));
    assert!(started.elapsed() < Duration::from_secs(5));
    let state = stat_field(engine, 3);
    assert!(
        matches!(state.as_deref(), None | Some("Z") | Some("X")),
        "engine {engine} still runs: {state:?}"
    );
    // The next request starts a new one.
    let again = pss::engine_pid().unwrap();
    assert_ne!(again, engine);
    assert!(pss::shutdown_engine(Duration::from_secs(5)));
}

#[test]
fn a_dead_engine_is_started_again_and_its_clones_reaped() {
    let _one = serial();
    // A target of our own: a child blocked in read().
    let mut child = std::process::Command::new("cat")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let capture = || {
        pss::Snapshot::capture(
            pss::Target::Pid(pid),
            pss::CaptureFlags::THREADS | pss::CaptureFlags::VA_CLONE,
            pss::ContextFlags::empty(),
        )
    };
    let snap = capture().expect("a capture through the first engine");
    let first = pss::engine_pid().unwrap();
    let clone = snap.va_clone().unwrap().pid();
    // SAFETY: SIGKILL to the engine process this test's library started, by pid.
    unsafe { libc::kill(first, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while stat_field(clone, 3).is_some_and(|s| s != "Z") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Its clone died with it (EXITKILL): reads fail, freeing is a no-op.
    let mut b = [0u8; 8];
    assert!(snap.va_clone().unwrap().read(0x1000, &mut b).is_err());
    drop(snap);
    // The next request starts another engine, which reaps the first one's clone.
    let again = capture().expect("a capture through a new engine");
    assert_ne!(pss::engine_pid().unwrap(), first);
    drop(again);
    let deadline = Instant::now() + Duration::from_secs(5);
    while stat_field(clone, 3).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        stat_field(clone, 3),
        None,
        "the dead engine's clone was reaped"
    );
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "cat ended by itself");
}
