//! `pss stack` end to end: every thread's frames as text and JSON, thread filters, a saved
//! snapshot's stacks, errors — and the target unharmed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pss_testbed::harness::{Target, TempDir};
use serde_json::Value;

fn pss() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss"))
}

fn testbed() -> PathBuf {
    pss().with_file_name("pss-testbed")
}

fn run(args: &[&str]) -> Output {
    Command::new(pss()).args(args).output().expect("run pss")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn every_thread_is_printed_with_its_frames() {
    let mut t = Target::spawn(&testbed(), &["threads", "2"]);
    let o = run(&["stack", &t.pid.to_string()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let mut tids = t.parked_tids();
    tids.push(t.pid);
    for tid in &tids {
        assert!(out.contains(&format!("TID {tid} \"pss-testbed\"")), "{out}");
    }
    assert_eq!(
        out.matches("pss_testbed::park::raw_read").count(),
        3,
        "{out}"
    );
    assert!(out
        .lines()
        .next()
        .unwrap()
        .starts_with(&format!("PID {} ", t.pid)));
    t.assert_unharmed();
    t.wake_parked_and_check();
}

#[test]
fn json_has_each_frame_and_how_it_was_found() {
    let t = Target::spawn(&testbed(), &["threads", "1"]);
    let o = run(&["stack", &t.pid.to_string(), "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pid"], t.pid);
    let threads = v["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 2);
    for th in threads {
        let frames = th["frames"].as_array().unwrap();
        assert_eq!(frames[0]["how"], "context");
        assert!(frames[1..]
            .iter()
            .all(|f| f["how"] == "cfi" || f["how"] == "frame-pointer"));
        assert!(frames
            .iter()
            .any(|f| f["function"] == "pss_testbed::park::raw_read" && f["line"].is_u64()));
        assert_eq!(th["end"]["kind"], "complete", "{th}");
        assert!(frames.iter().all(|f| f["module"].is_string()), "{th}");
    }
}

#[test]
fn threads_can_be_picked_by_id_or_name() {
    let t = Target::spawn(&testbed(), &["threads", "2"]);
    let tid = t.parked_tids()[1].to_string();
    let o = run(&["stack", &t.pid.to_string(), "--tid", &tid, "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let threads = v["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0]["tid"].to_string(), tid);
    let o = run(&[
        "stack",
        &t.pid.to_string(),
        "--name",
        "no-such-name",
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["threads"].as_array().unwrap().is_empty());
}

#[test]
fn a_saved_snapshot_has_its_stacks() {
    let t = Target::spawn(&testbed(), &["threads", "1"]);
    let dir = TempDir::new("stack-file");
    let file = dir.join("snap");
    let flags = "threads,thread-context,auxiliary-pages,va-space,va-space-section-information";
    let o = run(&[
        "capture",
        &t.pid.to_string(),
        "--flags",
        flags,
        "--save",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("Stacks (top 3 frames"),
        "capture shows top frames"
    );
    drop(t);
    // The process is gone; its stacks are in the file.
    let o = run(&["stack", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout)
            .matches("pss_testbed::park::raw_read")
            .count(),
        2
    );
}

#[test]
fn bad_targets_are_clear_errors() {
    let o = run(&["stack", "999999999"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let o = run(&["stack", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["stack", "/nonexistent/snapshot"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("/nonexistent/snapshot"),
        "{}",
        text(&o.stderr)
    );
}
