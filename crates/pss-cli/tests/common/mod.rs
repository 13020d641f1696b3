//! What the runtime zoo (`zoo.rs`) and the harm cases (`harm_cases.rs`) share: building
//! their targets, running `pss` as a user would, load on the zoo protocol
//! (`zoo/zoo.h`), and the strongest check of all — a stopped target's memory, byte for
//! byte, before and after pss had its way with it.
#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use pss_testbed::harness::{children_of, Target};

/// The `pss` command under test.
pub fn pss() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss"))
}

/// A built binary of the workspace beside `pss` (`pss-testbed`, `zoo-tokio`).
pub fn sibling(name: &str) -> PathBuf {
    pss().with_file_name(name)
}

/// The zoo's sources.
pub fn zoo_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zoo")
}

/// A directory of this test run's own for `name` (built targets, dumps).
pub fn work_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("zoo")
        .join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `cmd`, failing the test with its output unless it succeeds.
pub fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds the C target `zoo/NAME.c` (with `-static` if asked) and returns its path.
pub fn build_c(name: &str, static_link: bool) -> PathBuf {
    static BUILT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let suffix = if static_link { "-static" } else { "" };
    let exe = work_dir("bin").join(format!("{name}{suffix}"));
    // Once per test binary, and never over a file another test may be running: built
    // aside, then renamed into place (a running program keeps its own inode).
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if built.contains(&exe) {
        return exe;
    }
    let aside = exe.with_extension(format!("building-{}", std::process::id()));
    let mut cc = Command::new("cc");
    cc.args([
        "-O1",
        "-g",
        "-Wall",
        "-Werror",
        "-pthread",
        "-Wl,-z,now",
        "-o",
    ])
    .arg(&aside)
    .arg(zoo_src().join(format!("{name}.c")));
    if static_link {
        cc.arg("-static");
    }
    run_ok(&mut cc, &format!("building {name}.c"));
    std::fs::rename(&aside, &exe).unwrap();
    built.push(exe.clone());
    exe
}

/// Runs `pss ARGS…`; its output, whatever the status.
pub fn pss_run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(pss())
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("pss runs")
}

/// Runs `pss ARGS…`, failing the test unless it succeeds; its standard output.
pub fn pss_ok(args: &[&str]) -> String {
    let out = run_ok(Command::new(pss()).args(args), &format!("pss {args:?}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `pss dump PID -o -` into nothing, failing the test unless it succeeds.
pub fn dump_discarded(pid: &str) {
    run_ok(
        Command::new(pss())
            .args(["dump", pid, "-o", "-"])
            .stdout(Stdio::null()),
        &format!("pss dump {pid}"),
    );
}

/// The zoo protocol's answer for `n`.
pub fn zoo_sum(n: u64) -> u64 {
    (0..n * 100).map(|i| (i * i) % 7919).sum()
}

/// Clients on the zoo protocol, counting answers and keeping every error.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    /// `clients` connections to `port`, each asking in turn and checking that the answer
    /// comes from `pid` and is right; a connection is replaced every 20 requests.
    pub fn start(port: u16, pid: i32, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|c| {
                let (stop, ok, errors) = (stop.clone(), ok.clone(), errors.clone());
                std::thread::spawn(move || {
                    let mut i = c as u64;
                    while !stop.load(Ordering::Relaxed) {
                        if let Err(e) = session(port, pid, &mut i, &stop, &ok) {
                            errors.lock().unwrap().push(e);
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            errors,
            threads,
        }
    }

    /// Waits (30 s at most) until the clients have had `n` answers in all.
    pub fn wait_answers(&self, n: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.ok.load(Ordering::Relaxed) < n {
            let errors = self.errors.lock().unwrap();
            assert!(errors.is_empty(), "{what}: clients saw errors: {errors:?}");
            drop(errors);
            assert!(Instant::now() < deadline, "{what}: fewer than {n} answers");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the clients; the answers they got, failing the test on any error.
    pub fn finish(self, what: &str) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let errors = self.errors.lock().unwrap();
        assert!(errors.is_empty(), "{what}: clients saw errors: {errors:?}");
        let ok = self.ok.load(Ordering::Relaxed);
        assert!(ok > 0, "{what}: no request was answered");
        ok
    }
}

/// One connection's worth of requests.
fn session(
    port: u16,
    pid: i32,
    i: &mut u64,
    stop: &AtomicBool,
    ok: &AtomicU64,
) -> Result<(), String> {
    let c = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    for _ in 0..20 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        *i += 1;
        let n = 1 + *i % 40;
        w.write_all(format!("{n}\n").as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        r.read_line(&mut line).map_err(|e| format!("read: {e}"))?;
        let want = format!("{pid} {}\n", zoo_sum(n));
        if line != want {
            return Err(format!("asked {n}, got {line:?}, wanted {want:?}"));
        }
        ok.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// The states of `pid`'s threads (`/proc/PID/task/*/stat`).
pub fn thread_states(pid: i32) -> Vec<(i32, char)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let tid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some((tid, state))
        })
        .collect()
}

/// Stops `pid` with SIGSTOP and waits until every live thread is in its group stop.
pub fn stop(pid: i32) {
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::STOP,
    )
    .unwrap();
    wait_states(pid, |s| matches!(s, 'T' | 'Z'), "stopped");
}

/// Resumes `pid` with SIGCONT.
pub fn resume(pid: i32) {
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::CONT,
    )
    .unwrap();
}

/// Waits (10 s at most) until every thread's state satisfies `ok`.
pub fn wait_states(pid: i32, ok: impl Fn(char) -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let states = thread_states(pid);
        if states.iter().all(|(_, s)| ok(*s)) {
            return;
        }
        assert!(Instant::now() < deadline, "{pid} never {what}: {states:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A stopped process's memory: its `maps`, and a hash of each page of its private writable
/// mappings (what an injection could write; `None` for a page that cannot be read).
pub struct Memory {
    maps: String,
    pages: Vec<(u64, Option<u64>)>,
}

impl Memory {
    /// Reads it, through `/proc/PID/mem` (of a live thread if the leader has exited).
    pub fn read(pid: i32) -> Memory {
        let dir = live_dir(pid);
        let maps = std::fs::read_to_string(format!("{dir}/maps")).unwrap();
        let mem = std::fs::File::open(format!("{dir}/mem")).unwrap();
        let mut pages = Vec::new();
        let mut chunk = vec![0u8; 1 << 20];
        for line in maps.lines() {
            let mut f = line.split_whitespace();
            let (range, perms) = (f.next().unwrap(), f.next().unwrap());
            if !perms.starts_with("rw") || !perms.ends_with('p') {
                continue;
            }
            let (s, e) = range.split_once('-').unwrap();
            let (s, e) = (
                u64::from_str_radix(s, 16).unwrap(),
                u64::from_str_radix(e, 16).unwrap(),
            );
            if e - s > 1 << 30 {
                continue;
            }
            let mut at = s;
            while at < e {
                let n = ((e - at) as usize).min(chunk.len());
                let whole = mem.read_exact_at(&mut chunk[..n], at).is_ok();
                for (i, page) in chunk[..n].chunks(4096).enumerate() {
                    let hash = whole.then(|| {
                        let mut h = DefaultHasher::new();
                        h.write(page);
                        h.finish()
                    });
                    pages.push((at + (i as u64) * 4096, hash));
                }
                at += n as u64;
            }
        }
        Memory { maps, pages }
    }

    /// Fails the test, naming the first page that differs (and the mapping holding it), if
    /// `after` is not the same memory.
    pub fn assert_same(&self, after: &Memory, what: &str) {
        assert_eq!(self.maps, after.maps, "{what}: the mappings changed");
        assert_eq!(self.pages.len(), after.pages.len(), "{what}: page count");
        let changed: Vec<u64> = self
            .pages
            .iter()
            .zip(&after.pages)
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a.0)
            .collect();
        if let Some(&first) = changed.first() {
            let mapping = self.maps.lines().find(|l| {
                let (s, e) = l
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .split_once('-')
                    .unwrap();
                u64::from_str_radix(s, 16).unwrap() <= first
                    && first < u64::from_str_radix(e, 16).unwrap()
            });
            panic!(
                "{what}: {} page(s) of the target's memory changed, the first at {first:#x} in {mapping:?}",
                changed.len()
            );
        }
    }
}

/// `/proc/PID`, or a live thread's directory when the leader has exited.
fn live_dir(pid: i32) -> String {
    let leader_gone = thread_states(pid)
        .iter()
        .any(|&(t, s)| t == pid && s == 'Z');
    match thread_states(pid).iter().find(|&&(_, s)| s != 'Z') {
        Some(&(t, _)) if leader_gone => format!("/proc/{pid}/task/{t}"),
        _ => format!("/proc/{pid}"),
    }
}

/// Stops `pid`, reads its memory, runs `work`, reads it again once every thread is back in
/// its stop, resumes it: not one byte of its private writable memory, nor one mapping, may
/// differ. (glibc's rseq area, which the kernel updates when a thread returns to user mode,
/// is kept out by starting targets with `GLIBC_TUNABLES=glibc.pthread.rseq=0`.)
pub fn assert_memory_untouched(pid: i32, what: &str, work: impl FnOnce()) {
    stop(pid);
    let before = Memory::read(pid);
    work();
    wait_states(pid, |s| matches!(s, 'T' | 'Z'), "back in its stop");
    let after = Memory::read(pid);
    resume(pid);
    before.assert_same(&after, what);
}

/// The environment the zoo's targets run with ([`assert_memory_untouched`]).
pub const TARGET_ENV: &[(&str, &str)] = &[("GLIBC_TUNABLES", "glibc.pthread.rseq=0")];

/// The children of `pid` that a clone of ours would be (exit signal 0).
pub fn clone_children(pid: i32) -> Vec<i32> {
    children_of(pid)
        .into_iter()
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/stat")).is_ok_and(|s| {
                let fields: Vec<&str> = s.rsplit_once(") ").unwrap().1.split(' ').collect();
                fields.get(35) == Some(&"0")
            })
        })
        .collect()
}

/// Waits (10 s at most, times the slow machine's `PSS_TEST_TIME_SCALE`) until `pid` has no
/// child of ours and no thread traced.
pub fn assert_left_alone(pid: i32, what: &str) {
    let scale = pss_testbed::harness::time_scale();
    let deadline = Instant::now() + Duration::from_secs(10) * scale;
    loop {
        let kids = clone_children(pid);
        let traced: Vec<i32> = thread_states(pid)
            .iter()
            .filter(|(t, _)| {
                std::fs::read_to_string(format!("/proc/{pid}/task/{t}/status")).is_ok_and(|s| {
                    s.lines().any(|l| {
                        l.starts_with("TracerPid:") && l.split_whitespace().nth(1) != Some("0")
                    })
                })
            })
            .map(|(t, _)| *t)
            .collect();
        if kids.is_empty() && traced.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: process {pid} still has clones {kids:?} or traced threads {traced:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
