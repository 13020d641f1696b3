//! The Rust example (`examples/threads.rs`, shown in the README) on a live process.

use std::process::{Command, Stdio};

#[test]
fn the_example_lists_the_threads_of_a_process() {
    // cargo builds the examples before the tests: target/<profile>/examples/threads.
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/threads");
    let mut target = Command::new("sleep")
        .arg("30")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let out = Command::new(&example)
        .arg(target.id().to_string())
        .env_remove("PSS_ENGINE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", example.display()));
    target.kill().unwrap();
    target.wait().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("1 thread(s), paused "), "{text}");
    let expected = format!("thread {} sleep: pc 0x", target.id());
    assert!(lines[1].starts_with(&expected), "{text}");
    assert_eq!(lines.len(), 2, "{text}");
}
