//! `pss watch` end to end: a target (`pss-testbed work`) raises its CPU, allocates, spawns
//! threads and opens descriptors at known moments, and each trigger fires within one
//! interval of its condition holding for `--for`, not before; counts and cooldowns; `--name`
//! picking up a process started later; the disk budget; a target that exits; Ctrl-C; every
//! dump read by the tool made for it (gdb, rust-minidump); the target unharmed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pss_testbed::harness::{Target, TempDir};
use pss_testbed::tools;
use serde_json::Value;

fn pss() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss"))
}

fn testbed() -> PathBuf {
    pss().with_file_name("pss-testbed")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A running `pss watch --json`, its events as they come.
struct Watching {
    child: Child,
    events: Receiver<Value>,
}

impl Watching {
    fn start(args: &[&str], dir: &Path) -> Watching {
        let mut child = Command::new(pss())
            .arg("watch")
            .args(args)
            .args(["--json", "-o", dir.to_str().unwrap()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                    break;
                }
            }
        });
        Watching { child, events }
    }

    /// The next event, within `secs`.
    fn next(&self, secs: u64) -> Value {
        self.events
            .recv_timeout(Duration::from_secs(secs))
            .expect("an event from pss watch")
    }

    /// The next event of `kind`, passing over others.
    fn next_of(&self, kind: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {kind} event"));
            if e["event"] == kind {
                return e;
            }
        }
    }

    /// Asserts no trigger came so far.
    fn quiet(&self) {
        while let Ok(e) = self.events.try_recv() {
            assert_ne!(e["event"], "trigger", "fired too early: {e}");
        }
    }

    fn wait(mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Held by the test that times a CPU trigger and by those that write cores: a 256 MiB core
/// written beside it on a two-CPU machine would starve its busy thread below the threshold.
static CPU_BOUND: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    CPU_BOUND.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends `cmd` to the target and waits for its answer: the moment the load changed.
fn change(t: &mut Target, cmd: &str) -> u64 {
    let verb = cmd.split_whitespace().next().unwrap();
    t.ask(cmd, verb);
    now_ms()
}

#[test]
fn a_cpu_trigger_fires_once_held_for_its_time_and_not_before() {
    let _alone = alone();
    let mut t = Target::spawn(&testbed(), &["work", "0", "2"]);
    let dir = TempDir::new("watch-cpu");
    let pid = t.pid.to_string();
    let w = Watching::start(
        &[
            &pid,
            "--cpu",
            "30",
            "--for",
            "1",
            "--interval",
            "100",
            "--format",
            "stack",
        ],
        &dir.join(""),
    );
    assert_eq!(w.next(10)["event"], "started");
    std::thread::sleep(Duration::from_millis(600));
    w.quiet();
    let busy_at = change(&mut t, "busy 1");
    let fired = w.next_of("trigger", 10);
    let at = fired["fired_unix_ms"].as_u64().unwrap();
    assert!(
        at >= busy_at + 1000,
        "fired {} ms after the load began",
        at - busy_at
    );
    // Within one interval of holding for 1 s: the first poll to see the load may come up to
    // two intervals after it began (CPU is measured over the interval before a poll).
    assert!(
        at <= busy_at + 1000 + 2 * 100 + 300,
        "fired {} ms after",
        at - busy_at
    );
    assert_eq!(fired["trigger"], "cpu");
    assert!(fired["values"]["cpu_percent"].as_f64().unwrap() >= 30.0);
    let file = PathBuf::from(fired["file"].as_str().unwrap());
    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with("pss-testbed_cpu_"), "{name}");
    assert!(name.ends_with(&format!(".{pid}.stack.txt")), "{name}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"busy-0\""), "{text}");
    assert!(text.contains("pss_testbed::work::work"), "{text}");
    assert!(file.with_extension("json").exists());
    assert_eq!(w.next_of("finished", 5)["event"], "finished");
    assert!(w.wait().success());
    let log = std::fs::read_to_string(dir.join("pss-watch.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
    t.ask("calm", "calm");
    t.assert_unharmed();
    t.wake_parked_and_check();
}

#[test]
fn memory_threads_and_fds_triggers_fire_on_what_the_process_did() {
    let mut t = Target::spawn(&testbed(), &["work", "0", "2"]);
    let pid = t.pid.to_string();
    for (trigger, limit, cmd) in [
        ("mem", "64M", "alloc 100"),
        ("threads", "12", "spawn 10"),
        ("fds", "60", "open 60"),
    ] {
        let dir = TempDir::new(&format!("watch-{trigger}"));
        let w = Watching::start(
            &[
                &pid,
                &format!("--{trigger}"),
                limit,
                "--for",
                "0.5",
                "--interval",
                "100",
                "--format",
                "stack",
            ],
            &dir.join(""),
        );
        assert_eq!(w.next(10)["event"], "started");
        std::thread::sleep(Duration::from_millis(400));
        w.quiet();
        // The condition begins between the command's sending and its answer.
        let sent = now_ms();
        let answered = change(&mut t, cmd);
        let fired = w.next_of("trigger", 10);
        assert_eq!(fired["trigger"], trigger);
        let at = fired["fired_unix_ms"].as_u64().unwrap();
        assert!(
            at >= sent + 500,
            "{trigger}: fired {} ms after the change began",
            at as i64 - sent as i64
        );
        // Within one interval (100 ms) of holding for 0.5 s, and some slack for a loaded machine.
        assert!(
            at <= answered + 500 + 100 + 200,
            "{trigger}: fired {} ms after",
            at - answered
        );
        assert!(w.wait().success());
    }
    t.assert_unharmed();
    t.wake_parked_and_check();
}

#[test]
fn timed_dumps_count_and_cool_down_and_a_minidump_reads() {
    let mut t = Target::spawn(&testbed(), &["work", "0", "2"]);
    let dir = TempDir::new("watch-every");
    let pid = t.pid.to_string();
    let w = Watching::start(
        &[
            &pid,
            "--every",
            "0.2",
            "--count",
            "3",
            "--cooldown",
            "0.6",
            "--interval",
            "50",
            "--format",
            "minidump",
        ],
        &dir.join(""),
    );
    let times: Vec<u64> = (0..3)
        .map(|_| {
            let e = w.next_of("trigger", 10);
            assert_eq!(e["trigger"], "time");
            let dump = minidump::Minidump::read_path(e["file"].as_str().unwrap()).unwrap();
            let threads: minidump::MinidumpThreadList = dump.get_stream().unwrap();
            let tasks = std::fs::read_dir(format!("/proc/{}/task", t.pid))
                .unwrap()
                .count();
            assert_eq!(threads.threads.len(), tasks);
            e["fired_unix_ms"].as_u64().unwrap()
        })
        .collect();
    // Logged once each dump is written, which takes its own few milliseconds.
    assert!(
        times[1] >= times[0] + 550 && times[2] >= times[1] + 550,
        "{times:?}"
    );
    assert!(w.next_of("finished", 5)["why"]
        .as_str()
        .unwrap()
        .contains("3 trigger"));
    assert!(w.wait().success());
    t.assert_unharmed();
    t.wake_parked_and_check();
}

#[test]
fn a_name_picks_up_a_process_started_later_and_its_core_opens_in_gdb() {
    let _alone = alone();
    let dir = TempDir::new("watch-name");
    let name = format!("pw{}", std::process::id() % 1_000_000);
    let exe = dir.join(&name);
    std::fs::copy(testbed(), &exe).unwrap();
    let w = Watching::start(
        &[
            "--name",
            &name,
            "--threads",
            "4",
            "--for",
            "0",
            "--interval",
            "100",
            "--format",
            "core",
        ],
        &dir.join(""),
    );
    std::thread::sleep(Duration::from_millis(500));
    w.quiet();
    let mut t = Target::spawn(&exe, &["threads", "3"]);
    let started = w.next_of("started", 10);
    assert_eq!(started["pid"], t.pid);
    let fired = w.next_of("trigger", 10);
    assert_eq!(fired["pid"], t.pid);
    let core = fired["file"].as_str().unwrap();
    assert!(w.wait().success());
    let gdb = tools::gdb(&exe, Path::new(core), &["info threads"]);
    let threads = std::fs::read_dir(format!("/proc/{}/task", t.pid))
        .unwrap()
        .count();
    assert_eq!(gdb.matches("[New LWP ").count(), threads, "{gdb}");
    t.assert_unharmed();
    t.wake_parked_and_check();
}

#[test]
fn the_disk_budget_stops_dumping_and_an_exiting_target_ends_the_watch() {
    let _alone = alone();
    let mut t = Target::spawn(&testbed(), &["work", "0", "1"]);
    let dir = TempDir::new("watch-budget");
    let pid = t.pid.to_string();
    let w = Watching::start(
        &[
            &pid,
            "--every",
            "1",
            "--count",
            "0",
            "--max-bytes",
            "1K",
            "--interval",
            "50",
            "--format",
            "core",
        ],
        &dir.join(""),
    );
    let skipped = w.next_of("skipped", 10);
    assert!(
        skipped["why"].as_str().unwrap().contains("--max-bytes"),
        "{skipped}"
    );
    assert!(w.wait().success());
    assert_eq!(dir.names(), ["pss-watch.jsonl"]);
    t.assert_unharmed();
    t.wake_parked_and_check();

    let mut t = Target::spawn(&testbed(), &["exit-after", "700", "1"]);
    let pid = t.pid.to_string();
    let w = Watching::start(
        &[&pid, "--cpu", "99", "--for", "100", "--interval", "50"],
        &dir.join(""),
    );
    assert_eq!(w.next_of("exited", 10)["pid"], t.pid);
    assert!(w.next_of("finished", 5)["why"]
        .as_str()
        .unwrap()
        .contains("no process"));
    assert!(w.wait().success());
    assert!(t.wait().success());
}

#[test]
fn ctrl_c_ends_the_watch_and_leaves_no_partial_file() {
    let _alone = alone();
    let mut t = Target::spawn(&testbed(), &["va", "256"]);
    let dir = TempDir::new("watch-sigint");
    let pid = t.pid.to_string();
    let w = Watching::start(
        &[
            &pid,
            "--every",
            "0.05",
            "--count",
            "0",
            "--interval",
            "20",
            "--format",
            "core",
        ],
        &dir.join(""),
    );
    assert_eq!(w.next(10)["event"], "started");
    std::thread::sleep(Duration::from_millis(300));
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&w.child),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let status = w.wait();
    assert_eq!(status.code(), Some(130));
    for name in dir.names() {
        assert!(!name.contains("partial"), "{name} left behind");
    }
    t.assert_unharmed();
}

#[test]
fn a_signal_trigger_is_not_supported_and_bad_options_are_clear() {
    let t = Target::spawn(&testbed(), &["threads", "1"]);
    let pid = t.pid.to_string();
    let run = |args: &[&str]| {
        Command::new(pss())
            .arg("watch")
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&[&pid, "--signal", "SIGSEGV"]);
    assert_eq!(o.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not supported"));
    let o = run(&[&pid]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no trigger"));
    let o = run(&["999999999", "--cpu", "50"]);
    assert_eq!(o.status.code(), Some(3));
    let o = run(&[&pid, "--mem", "lots"]);
    assert_eq!(o.status.code(), Some(2));
}
