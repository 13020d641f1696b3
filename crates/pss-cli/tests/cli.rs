//! The `pss` command end to end: JSON document, text tables, exit codes.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pss_testbed::harness::{wait_for_state, Target};
use pss_testbed::reg_value;
use serde_json::Value;

fn pss() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss"))
}

/// The test-bed target, built next to `pss` by `cargo test --workspace`.
fn testbed() -> PathBuf {
    let p = pss().with_file_name("pss-testbed");
    assert!(
        p.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        p.display()
    );
    p
}

fn run(args: &[&str]) -> Output {
    Command::new(pss()).args(args).output().expect("run pss")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn json_document_holds_the_pss_fields_and_the_registers() {
    let mut t = Target::spawn(&testbed(), &["threads", "2"]);
    let pid = t.pid.to_string();
    let o = run(&["capture", &pid, "--all", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    t.assert_unharmed();
    let doc: Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    for key in [
        "process",
        "threads",
        "handles",
        "va_space",
        "performance",
        "capture",
        "warnings",
    ] {
        assert!(doc.get(key).is_some(), "missing {key}");
    }
    assert_eq!(doc["process"]["process_id"], t.pid);
    assert_eq!(doc["process"]["parent_process_id"], std::process::id());
    assert_eq!(doc["process"]["exit_status"], 259);
    assert!(doc["capture"]["pause_us"].as_u64().unwrap() > 0);
    assert_eq!(doc["capture"]["threads_stopped"], 3);

    let threads = doc["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 3);
    for (i, tid) in t.parked_tids().iter().enumerate() {
        let th = threads
            .iter()
            .find(|x| x["thread_id"] == *tid)
            .expect("parked thread");
        let ctx = &th["context"];
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(ctx["r12"].as_u64(), Some(reg_value(i, 12)));
            assert_eq!(ctx["r15"].as_u64(), Some(reg_value(i, 15)));
            assert_eq!(ctx["orig_rax"].as_u64(), Some(0));
            assert_eq!(th["teb_base_address"], ctx["fs_base"]);
        }
        #[cfg(target_arch = "aarch64")]
        {
            assert_eq!(ctx["x20"].as_u64(), Some(reg_value(i, 20)));
            assert_eq!(ctx["x26"].as_u64(), Some(reg_value(i, 26)));
            assert_eq!(th["teb_base_address"], ctx["tpidr_el0"]);
        }
        // sizeof(CONTEXT): AMD64's, or ARM64's ARM64_NT_CONTEXT.
        let context_size = if cfg!(target_arch = "x86_64") {
            1232
        } else {
            912
        };
        assert_eq!(th["size_of_context_record"], context_size);
        assert_eq!(th["exit_status"], 259);
    }

    // Numbers as numbers: states, types and object types hold their Windows values.
    let handles = doc["handles"].as_array().unwrap();
    // fd 0 is the pipe the harness writes commands into (stderr is whatever
    // the test runner has, so it is not asserted on).
    let stdin = handles.iter().find(|h| h["handle"] == 0).expect("fd 0");
    assert_eq!(stdin["type_name"], "Pipe");
    assert!(stdin["object_name"].as_str().unwrap().starts_with("pipe:["));
    assert_eq!(stdin["object_type"], 0);
    assert_eq!(stdin["flags"], 0x7);
    let regions = doc["va_space"].as_array().unwrap();
    assert_eq!(regions[0]["base_address"], 0);
    assert_eq!(regions[0]["state"], 0x10000);
    assert!(regions
        .iter()
        .any(|r| r["state"] == 0x1000 && r["type"] == 0x100_0000));
    assert!(doc["performance"]["threads_wall_clock_period"]
        .as_u64()
        .is_some());

    t.wake_parked_and_check();
}

#[test]
fn text_output_has_a_header_and_tables() {
    let mut t = Target::spawn(&testbed(), &["threads", "1"]);
    let pid = t.pid.to_string();
    let o = run(&[
        "capture",
        &pid,
        "--flags",
        "threads,handles,handle-name-information,va-space",
        "--context-flags",
        "control,integer",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    t.assert_unharmed();
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with(&format!("Process {pid} (")), "{text}");
    assert!(text.contains("Target paused for"), "{text}");
    assert!(text.contains("Threads (2)"), "{text}");
    assert!(text.contains("Handles ("), "{text}");
    assert!(text.contains("Regions ("), "{text}");
    assert!(text.contains("       0  Pipe "), "{text}");
}

#[test]
fn exit_codes() {
    // 2: bad usage.
    let o = run(&["capture", "1", "--flags", "threads,bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown capture flag \"bogus\""),
        "{}",
        stderr(&o)
    );
    assert_eq!(run(&["capture"]).status.code(), Some(2));

    // 3: no such process (a reaped child's pid).
    let t = Target::spawn(&testbed(), &["idle"]);
    let gone = t.pid.to_string();
    assert!(t.finish().success());
    let o = run(&["capture", &gone]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim(),
        format!("pss: no process with pid {gone}")
    );

    // 3: a zombie.
    let mut z = Target::spawn(&testbed(), &["idle"]);
    z.kill_leave_zombie();
    wait_for_state(z.pid, 'Z');
    let o = run(&["capture", &z.pid.to_string()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("zombie"));

    // 6: not supported.
    let mut t = Target::spawn(&testbed(), &["idle"]);
    let pid = t.pid.to_string();
    let o = run(&["capture", &pid, "--flags", "threads,create-force-breakaway"]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not supported: capture flag(s) create-force-breakaway"),
        "{}",
        stderr(&o)
    );
    // Handle and IPT tracing are accepted and yield nothing but a warning saying so.
    let o = run(&[
        "capture",
        &pid,
        "--flags",
        "threads,handle-trace,ipt-trace",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let warned: Vec<&str> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["message"].as_str())
        .collect();
    assert!(
        warned
            .iter()
            .any(|m| m.starts_with("PSS_CAPTURE_HANDLE_TRACE")),
        "{warned:?}"
    );
    assert!(
        warned
            .iter()
            .any(|m| m.starts_with("PSS_CAPTURE_IPT_TRACE")),
        "{warned:?}"
    );
    let flags = run(&["flags"]);
    let listed = String::from_utf8_lossy(&flags.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.contains("handle-trace") && l.contains("yields nothing")),
        "{listed}"
    );

    // 4: already traced, naming the tracer.
    let tracer = Target::spawn(&testbed(), &["tracer", &pid]);
    let o = run(&["capture", &pid]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("already traced by pid {}", tracer.pid)),
        "{}",
        stderr(&o)
    );
    drop(tracer);
    t.ping();

    // 0 for help and the flag list.
    assert!(run(&["--help"]).status.success());
    let o = run(&["flags"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("va-space-section-information"));
}

#[test]
fn no_permission_is_exit_code_4_with_a_clear_message() {
    // SAFETY: geteuid has no arguments.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: dropping to another user needs root");
        return;
    }
    let mut t = Target::spawn(&testbed(), &["idle"]);
    let pid = t.pid.to_string();
    for flags in ["threads", "handles"] {
        let o = Command::new(pss())
            .args(["capture", &pid, "--flags", flags])
            .uid(65534)
            .gid(65534)
            .output()
            .expect("run pss as nobody");
        assert_eq!(o.status.code(), Some(4), "{flags}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("permission denied to"),
            "{}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains(&format!("process {pid}")),
            "{}",
            stderr(&o)
        );
    }
    t.assert_unharmed();
}

#[test]
fn va_clone_reports_the_clone_and_the_pause() {
    let mut t = Target::spawn(&testbed(), &["va", "4"]);
    let pid = t.pid.to_string();
    let o = run(&["capture", &pid, "--flags", "va-clone,threads", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    let clone_pid = doc["va_clone"]["pid"].as_i64().expect("va_clone.pid");
    assert!(clone_pid > 0 && clone_pid != i64::from(t.pid));
    assert_eq!(doc["va_clone"]["copies"].as_array().unwrap().len(), 2);
    assert!(doc["capture"]["pause_us"].as_u64().unwrap() > 0);
    assert_eq!(doc["capture"]["flags"].as_u64().unwrap() & 1, 1);
    // pss exited: the clone is gone, and the target has no child left.
    assert!(!std::path::Path::new(&format!("/proc/{clone_pid}")).exists());
    assert!(pss_testbed::harness::children_of(t.pid).is_empty());

    let o = run(&["capture", &pid, "--flags", "va-clone"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("Target paused for"), "{text}");
    assert!(text.contains("VA clone: pid "), "{text}");
    t.assert_unharmed();
}

#[test]
fn a_capturer_killed_while_holding_a_clone_leaves_nothing_behind() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut t = Target::spawn(&testbed(), &["va", "0"]);
    let mut pss = Command::new(env!("CARGO_BIN_EXE_pss"))
        .args([
            "capture",
            &t.pid.to_string(),
            "--flags",
            "va-clone",
            "--hold",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(pss.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let clone: i32 = line
        .strip_prefix("pss: holding VA clone pid ")
        .and_then(|r| r.split(';').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected: {line:?}"));
    assert_eq!(pss_testbed::harness::children_of(t.pid), vec![clone]);

    pss.kill().unwrap(); // SIGKILL, by pid
    pss.wait().unwrap();
    // The kernel kills the clone (EXITKILL); the reaper reaps its zombie inside the target.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !pss_testbed::harness::children_of(t.pid).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "left in the target: {:?}",
            pss_testbed::harness::children_of(t.pid)
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    t.assert_unharmed();
    assert_eq!(t.ask("sigchld", "sigchld"), "0");
    t.wake_parked_and_check();
}

#[test]
fn a_saved_snapshot_shows_exactly_as_captured() {
    let mut t = Target::spawn(&testbed(), &["threads", "2"]);
    let pid = t.pid.to_string();
    let dir = std::env::temp_dir().join(format!("pss-cli-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("t.pss");
    let file_s = file.to_str().unwrap();
    let o = run(&["capture", &pid, "--all", "--json", "--save", file_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    t.assert_unharmed();
    let mut captured: Value = serde_json::from_slice(&o.stdout).unwrap();
    let o = run(&["show", file_s, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    // Everything but the VA clone, a process, which is not saved.
    assert!(captured["va_clone"].is_object());
    assert!(shown["va_clone"].is_null());
    captured["va_clone"] = Value::Null;
    assert!(
        shown == captured,
        "the saved snapshot differs from the capture"
    );
    assert_eq!(shown["process"]["process_id"], t.pid);
    assert_eq!(shown["threads"].as_array().unwrap().len(), 3);
    let o = run(&["show", file_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&pid));

    // 8: damaged, with the file named; 1: missing.
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let o = run(&["show", file_s]);
    assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(file_s) && stderr(&o).contains("checksum"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let o = run(&["show", file_s]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(file_s), "{}", stderr(&o));
}

#[test]
fn a_target_in_seccomp_strict_mode_is_refused_a_clone_with_the_true_reason() {
    let mut t = Target::spawn(&testbed(), &["strict"]);
    let pid = t.pid.to_string();
    let o = run(&["capture", &pid, "--all"]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("every thread is in seccomp strict mode"),
        "{err}"
    );
    assert!(err.contains("can still be captured"), "{err}");
    assert!(!err.contains("no thread is in a syscall"), "{err}");
    t.ping();
    // What the message says works, works.
    let o = run(&[
        "capture",
        &pid,
        "--flags",
        "threads,thread-context,handles,va-space,auxiliary-pages",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    t.assert_unharmed();
}

/// `pss show` ended by SIGTERM (here blocked writing into a full pipe) touched no process:
/// it says what ended it and nothing about a target or a clone.
#[test]
fn pss_show_ended_by_a_signal_speaks_of_no_target() {
    let t = Target::spawn(&testbed(), &["many", "2", "2000", "2000"]);
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("show-sigterm.pss");
    let pid = t.pid.to_string();
    let f = file.to_str().unwrap();
    let _ = std::fs::remove_file(&file);
    let o = run(&["capture", &pid, "--all", "--save", f]);
    assert!(o.status.success(), "{}", stderr(&o));
    drop(t);
    // Its standard output a pipe nobody reads: it blocks once the pipe is full.
    let mut show = Command::new(pss())
        .args(["show", f])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let pid = rustix::process::Pid::from_raw(show.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(show.stderr.as_mut().unwrap(), &mut err).unwrap();
    let status = show.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{err}");
    assert_eq!(err.trim(), "pss: interrupted by SIGTERM");
    let _ = std::fs::remove_file(&file);
}
