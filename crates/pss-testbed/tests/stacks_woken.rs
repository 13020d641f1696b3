//! A thread read while blocked that wakes during its stack copy is read again, stopped
//! alone — never half-read. The engine is made to wait after each blocked thread's copy
//! (`PSS_ENGINE_TEST_BLOCKED_COPY_MS`, set in this test binary's environment, which the
//! engine it starts inherits: hence a binary of its own), and the target's main thread is
//! woken meanwhile; it blocks again in the very same `read()`, so that only its context
//! switches tell.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use pss::records::ThreadRead;
use pss_stack::{LiveCapture, StackEnd, Walker};
use pss_testbed::harness::{wait_all_in_read, Target};

#[test]
fn a_thread_woken_during_its_copy_is_read_again_stopped() {
    std::env::set_var("PSS_ENGINE_TEST_BLOCKED_COPY_MS", "400");
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stacks-woken");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("c/stacks.c");
    let built = Command::new("cc")
        .args(["-g", "-O2", "-pthread", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .unwrap();
    assert!(built.success());
    let mut t = Target::spawn(&exe, &[]);
    wait_all_in_read(t.pid);
    let pid = t.pid;
    let walk = std::thread::spawn(move || {
        pss_stack::capture_stacks(pid, &LiveCapture::default(), &mut Walker::new())
    });
    // The main thread (the lowest tid) is read first: wake it while its copy is checked.
    std::thread::sleep(Duration::from_millis(150));
    t.send("poke");
    let (snap, stacks) = walk.join().unwrap().expect("stacks");
    let main = stacks
        .threads
        .iter()
        .find(|s| s.thread_id as i32 == pid)
        .unwrap();
    assert_eq!(main.read, ThreadRead::Alone, "{main:?}");
    assert_eq!(main.end, StackEnd::Complete, "{main:?}");
    assert!(main
        .frames
        .iter()
        .any(|f| f.function.as_deref() == Some("main")));
    let others = stacks.threads.iter().filter(|s| s.thread_id as i32 != pid);
    assert!(others.clone().count() == 3);
    assert!(
        others.clone().all(|s| s.read == ThreadRead::Blocked),
        "{stacks:?}"
    );
    assert_eq!(snap.capture_info().threads_stopped, 1);
    t.assert_untraced();
    t.send("exit");
    assert!(t.wait().success());
}
