//! Spawning targets and checking them after a capture.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How much longer waits may last on a slow machine: `PSS_TEST_TIME_SCALE` (1 to 100), where
/// that is set (the arm64 suite under emulation sets 4), else 1.
pub fn time_scale() -> u32 {
    std::env::var("PSS_TEST_TIME_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1)
        .clamp(1, 100)
}

/// How long a target may take to answer: 10 s, times [`time_scale`] (a target filling
/// 768 MiB under emulation takes longer than 10 s).
pub fn answer_timeout() -> Duration {
    Duration::from_secs(10) * time_scale()
}

/// A running `pss-testbed` target. Killed (by pid) and reaped on drop.
pub struct Target {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Its pid.
    pub pid: i32,
    /// Every line it announced before `ready`.
    pub facts: Vec<String>,
    /// Whether it is `pss-testbed`, whose main thread reads its commands after each answer.
    main_reads: bool,
}

impl Target {
    /// Starts `exe MODE ARGS…` and waits for it to be ready.
    pub fn spawn(exe: &Path, args: &[&str]) -> Target {
        Self::spawn_env(exe, args, &[])
    }

    /// Starts `exe MODE ARGS…` with extra environment variables and waits for it to be
    /// ready.
    pub fn spawn_env(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Target {
        let mut child = spawn_retrying(
            Command::new(exe)
                .args(args)
                .envs(env.iter().copied())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        )
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let pid = child.id() as i32;
        let mut t = Target {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            pid,
            facts: Vec::new(),
            main_reads: exe.file_name() == Some("pss-testbed".as_ref()),
        };
        loop {
            let line = t
                .next_line(answer_timeout())
                .unwrap_or_else(|| panic!("target {args:?} never became ready"));
            if line == "ready" {
                break;
            }
            t.facts.push(line);
        }
        t.settle();
        t
    }

    /// Waits (bounded) until the main thread of a `pss-testbed` is back in `read()` after
    /// an answer: it says `ready` or `pong` a moment before it gets there, and a capture
    /// in that moment finds it elsewhere (in `say`, its registers not yet loaded). Returns
    /// at once if the thread is gone, a zombie or stopped.
    fn settle(&self) {
        if !self.main_reads {
            return;
        }
        let deadline = Instant::now() + answer_timeout();
        loop {
            match in_read(self.pid, self.pid) {
                None | Some(true) => return,
                Some(false) if !self.main_can_run() => return,
                Some(false) => {}
            }
            assert!(
                Instant::now() < deadline,
                "the main thread of {} never went back to read()",
                self.pid
            );
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Whether the main thread is running or asleep (not a zombie, dead or stopped).
    fn main_can_run(&self) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{0}/task/{0}/stat", self.pid));
        let state = stat.ok().and_then(|s| {
            s.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
        });
        matches!(state, Some('R' | 'S' | 'D'))
    }

    /// The announced lines that start with `key ` (without the key).
    pub fn facts(&self, key: &str) -> Vec<Vec<String>> {
        self.facts
            .iter()
            .filter_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
            .map(|r| r.split(' ').map(str::to_string).collect())
            .collect()
    }

    /// The tids of the parked threads, by index.
    pub fn parked_tids(&self) -> Vec<i32> {
        let mut v: Vec<(usize, i32)> = self
            .facts("tid")
            .iter()
            .map(|f| (f[0].parse().expect("index"), f[1].parse().expect("tid")))
            .collect();
        v.sort();
        v.into_iter().map(|(_, t)| t).collect()
    }

    /// The next output line, if one comes within `timeout`. A `main BAD` line (the main
    /// thread found a register changed across a read) fails the test.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(l) if l.starts_with("main BAD") => {
                panic!("target {}: {l}", self.pid)
            }
            Ok(l) => Some(l),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Whether the target's stdout reaches end-of-file within `timeout` (lines before it are
    /// skipped).
    pub fn stdout_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(_) => continue,
                Err(RecvTimeoutError::Disconnected) => return true,
                Err(RecvTimeoutError::Timeout) => return false,
            }
        }
    }

    /// The first value of fact `key` as a number (decimal or `0x` hex).
    pub fn fact_u64(&self, key: &str, index: usize) -> u64 {
        let f = self.facts(key);
        let v = f
            .first()
            .and_then(|f| f.get(index))
            .unwrap_or_else(|| panic!("target {} announced no {key}", self.pid));
        match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).expect("hex fact"),
            None => v.parse().expect("decimal fact"),
        }
    }

    /// Sends `cmd` and returns the answer line that starts with `prefix` (without it).
    pub fn ask(&mut self, cmd: &str, prefix: &str) -> String {
        self.send(cmd);
        let deadline = Instant::now() + answer_timeout();
        while let Some(line) = self.next_line(deadline.saturating_duration_since(Instant::now())) {
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_string();
            }
        }
        panic!("target {} never answered {cmd:?}", self.pid);
    }

    /// Waits for a line equal to `want`, returning the lines seen before it.
    pub fn expect(&mut self, want: &str) -> Vec<String> {
        let deadline = Instant::now() + answer_timeout();
        let mut seen = Vec::new();
        while let Some(line) = self.next_line(deadline.saturating_duration_since(Instant::now())) {
            if line == want {
                self.settle();
                return seen;
            }
            seen.push(line);
        }
        panic!("target {} never said {want:?}; it said {seen:?}", self.pid);
    }

    /// Sends one command line.
    pub fn send(&mut self, cmd: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        // One write: a target may act on the command (and exit) before a second one.
        stdin
            .write_all(format!("{cmd}\n").as_bytes())
            .expect("target reads its stdin");
    }

    /// The target answers `ping` with `pong`.
    pub fn ping(&mut self) {
        self.send("ping");
        self.expect("pong");
    }

    /// Wakes the parked threads and asserts that every one of them found its registers
    /// intact and its interrupted `read()` restarted (`thread I ok` for each).
    pub fn wake_parked_and_check(&mut self) {
        let n = self.parked_tids().len();
        self.send("wake");
        let lines = self.expect("woken");
        for i in 0..n {
            assert!(
                lines.contains(&format!("thread {i} ok")),
                "thread {i} of {}: {lines:?}",
                self.pid
            );
        }
        assert_eq!(
            lines.len(),
            n,
            "unexpected lines from {}: {lines:?}",
            self.pid
        );
    }

    /// Asserts what every capture must leave behind: no task traced or in a tracing stop,
    /// and the target still answering.
    pub fn assert_unharmed(&mut self) {
        self.assert_untraced();
        self.ping();
    }

    /// Asserts that no task of the target is traced or in a ptrace stop. A task whose tracer
    /// has just let go may show the tracing stop a moment longer (until the kernel's wake-up
    /// reaches its CPU): that is waited for, 200 ms at most (times [`time_scale`]); a task
    /// still traced is not.
    pub fn assert_untraced(&self) {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid)).expect("target alive");
        for t in tasks {
            let tid = t.expect("task entry").file_name();
            let path = format!("/proc/{}/task/{}/status", self.pid, tid.to_string_lossy());
            let deadline = Instant::now() + Duration::from_millis(200) * time_scale();
            loop {
                let status = std::fs::read_to_string(&path).unwrap_or_default();
                let tracer = status_field(&status, "TracerPid:");
                assert!(
                    tracer.is_empty() || tracer == "0",
                    "task {tid:?} of {} is still traced (by {tracer})",
                    self.pid
                );
                if !status_field(&status, "State:").starts_with('t') {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "task {tid:?} of {} is in a tracing stop",
                    self.pid
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// The state letter of the whole process.
    pub fn state(&self) -> char {
        proc_state(self.pid)
    }

    /// Kills the target (SIGKILL by pid) without reaping it: it becomes a zombie.
    pub fn kill_leave_zombie(&mut self) {
        let _ = self.child.kill();
    }

    /// Closes stdin and waits for the exit status.
    pub fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        self.child.wait().expect("wait for the target")
    }

    /// Waits for the target to exit by itself.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for the target")
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `cmd`, again while it fails with `ETXTBSY`: a program a test has just written
/// can be held open for writing a moment by a child another test forks meanwhile.
fn spawn_retrying(cmd: &mut Command) -> std::io::Result<Child> {
    let deadline = Instant::now() + answer_timeout();
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// The pids of every process whose parent is `pid` (zombies included).
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc") {
        let Ok(e) = e else { continue };
        let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].split(' ').nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// The value of `key` (e.g. `"State:"`) in a `/proc/…/status` text, trimmed; empty if the
/// line is missing.
pub fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_default()
        .trim()
}

/// The value of a `Key:   N kB` line of a `/proc` file (`status`, `smaps_rollup`), in kB.
pub fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

/// The state letter of process `pid` from `/proc/PID/stat` (`?` if gone).
pub fn proc_state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')')
        .and_then(|i| stat[i + 2..].chars().next())
        .unwrap_or('?')
}

/// Waits until `pid` is in state `want` (e.g. `T` after SIGSTOP).
pub fn wait_for_state(pid: i32, want: char) {
    let deadline = Instant::now() + answer_timeout();
    while proc_state(pid) != want {
        assert!(
            Instant::now() < deadline,
            "process {pid} never reached state {want}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A fresh directory under the system's temporary directory for one test's files, named
/// after this process and `name`; removed (with what it holds) on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// Makes it (empty).
    pub fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("pss-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("a temporary directory");
        TempDir(d)
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }

    /// The names of what it holds, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .expect("the temporary directory")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether thread `tid` of `pid` sleeps in `read()` (`/proc/PID/task/TID/syscall`); `None`
/// when that cannot be read (the thread is gone).
fn in_read(pid: i32, tid: i32) -> Option<bool> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
    Some(text.split(' ').next() == Some(libc::SYS_read.to_string().as_str()))
}

/// Waits (bounded) until every thread of `pid` sleeps in `read()` (`/proc/PID/task/TID/syscall`),
/// so that a capture and a debugger run after it see the same stacks.
pub fn wait_all_in_read(pid: i32) {
    wait_all_in_read_but(pid, &[]);
}

/// [`wait_all_in_read`] for every thread of `pid` but those of `busy` (always running).
pub fn wait_all_in_read_but(pid: i32, busy: &[i32]) {
    let deadline = Instant::now() + answer_timeout();
    loop {
        let all = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.filter_map(|e| e.ok()).all(|e| {
                    let tid = e.file_name().to_string_lossy().parse().unwrap_or(-1);
                    busy.contains(&tid) || in_read(pid, tid) == Some(true)
                })
            })
            .unwrap_or(false);
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "threads of {pid} never all blocked in read()"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Each thread of `pid` with the signals it blocks (`SigBlk` of its status), by tid: what a
/// killed engine must leave as it found it.
pub fn blocked_signals(pid: i32) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| {
                    let status =
                        std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
                    let blocked = status_field(&status, "SigBlk:").to_string();
                    (e.file_name().to_string_lossy().into_owned(), blocked)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
