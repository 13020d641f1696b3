//! Watch benchmark (not a timed test): what `pss watch` costs against Debian's `procdump`
//! (ProcDump for Linux 1.2, which dumps with gdb's `gcore`), same targets, same run:
//!
//! ```text
//! cargo bench -p pss-testbed --bench watch           # a 1 GiB target
//! cargo bench -p pss-testbed --bench watch -- 256    # another size, MiB
//! ```
//!
//! - **Stall per dump**: the longest a thread of `pss-testbed va MIB` (its counter thread,
//!   a stall meter) was kept from running while a core was written: pss's (the watch's
//!   dump: a VA clone, the core written from it while the target runs) against the
//!   target's own `fork()` and against `procdump -n 1 -s 1 -T 1` (a trigger that holds at
//!   once: gcore stops the target for the whole write).
//! - **Trigger latency**: a `pss-testbed work` target starts a busy thread at a known
//!   moment; `--cpu 50 --for 1` at the default 1 s interval: from the condition having
//!   held for 1 s to the dump beginning — pss's watcher (`pss_watch`, what `pss watch` runs)
//!   against `procdump -C 50 -s 1` (its dump begins when it starts gdb).
//! - **Watcher CPU** at the default 1 s interval over 20 s: one process by pid, and 100
//!   processes by name (every poll also lists /proc); procdump watching one pid.
//!
//! Needs `procdump` (Debian's package). Results go to `docs/performance.md`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pss_testbed::bench::{self, median};
use pss_testbed::harness::Target;
use pss_watch::{Condition, Event, Rules, Targets, Watcher};

const RUNS: usize = 5;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pss-bench-watch-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stall_ms(t: &mut Target) -> f64 {
    t.ask("stall", "stall").parse::<f64>().unwrap() / 1000.0
}

/// CPU seconds the tasks under `task_dir` (`/proc/PID/task`, or `/proc/thread-self/..`
/// for one thread) have run, to the nanosecond (`schedstat`).
fn cpu_seconds(task_dir: &str) -> f64 {
    let tasks: Vec<PathBuf> = match std::fs::read_dir(task_dir) {
        Ok(entries) if !task_dir.ends_with("thread-self") => {
            entries.flatten().map(|e| e.path()).collect()
        }
        _ => vec![PathBuf::from(task_dir)],
    };
    tasks
        .iter()
        .filter_map(|t| std::fs::read_to_string(t.join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e9
}

/// One core of `pid` the way `pss watch --format core` writes it.
fn pss_core(pid: i32, path: &Path) {
    let mut o = pss::CaptureOptions::new(pss_export::CAPTURE_FLAGS, pss::ContextFlags::ALL);
    o.stop_timeout = Duration::from_secs(2);
    let snap = pss::Snapshot::capture_with(pss::Target::Pid(pid), &o).expect("capture");
    let mut options = pss_export::ExportOptions::default();
    pss_export::write_file(&snap, pss_export::Format::Core, path, true, &mut options)
        .expect("core");
}

/// `procdump ARGS -o DIR -p PID`, to its end; its child gdb's start (the dump's), if seen.
fn procdump(pid: i32, args: &[&str], dir: &Path) -> Option<Instant> {
    let mut child = Command::new("procdump")
        .args(args)
        .arg("-o")
        .arg(dir)
        .args(["-p", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("procdump (apt-get install procdump)");
    let me = child.id() as i32;
    let mut gdb_at = None;
    loop {
        if child.try_wait().unwrap().is_some() {
            return gdb_at;
        }
        if gdb_at.is_none() && !pss_testbed::harness::children_of(me).is_empty() {
            gdb_at = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn stalls(mib: usize) {
    let mut t = Target::spawn(exe(), &["va", &mib.to_string()]);
    let dir = scratch("stall");
    let (mut fork, mut pss, mut pd) = (vec![], vec![], vec![]);
    for _ in 0..RUNS {
        fork.push(t.ask("fork", "fork").parse::<f64>().unwrap() / 1000.0);
        std::thread::sleep(Duration::from_millis(300));
        stall_ms(&mut t);
        pss_core(t.pid, &dir.join("pss.core"));
        pss.push(stall_ms(&mut t));
        std::thread::sleep(Duration::from_millis(300));
        stall_ms(&mut t);
        procdump(t.pid, &["-n", "1", "-s", "1", "-T", "1"], &dir);
        pd.push(stall_ms(&mut t));
        for f in std::fs::read_dir(&dir).unwrap() {
            let _ = std::fs::remove_file(f.unwrap().path());
        }
    }
    t.assert_unharmed();
    let (fork, pss, pd) = (median(&mut fork), median(&mut pss), median(&mut pd));
    println!("stall per core dump of a {mib} MiB target (medians of {RUNS}, ms):");
    println!("  target's own fork() {fork:8.2}");
    println!(
        "  pss watch (core)    {pss:8.2}   {:.2}x its fork",
        pss / fork
    );
    println!("  procdump (gcore)    {pd:8.1}   {:.0}x pss's", pd / pss);
    let _ = std::fs::remove_dir_all(&dir);
}

/// From the load's start plus the hold to the dump's start, in ms: pss's watcher, polling
/// every second; the load begins `offset_ms` past a poll.
fn pss_latency(t: &mut Target, offset_ms: u64) -> f64 {
    let rules = Rules {
        conditions: vec![Condition::CpuAtLeast(50.0)],
        hold: Duration::from_secs(1),
        ..Rules::default()
    };
    let mut w = Watcher::new(Targets::Pid(t.pid), rules);
    let start = Instant::now();
    let begin = start + Duration::from_millis(1000 + offset_ms);
    let mut busy_at: Option<Instant> = None;
    let mut next_poll = start;
    loop {
        if busy_at.is_none() && Instant::now() >= begin {
            t.ask("busy 1", "busy");
            busy_at = Some(Instant::now());
        }
        if Instant::now() >= next_poll {
            let polled = Instant::now();
            if w.poll().iter().any(|e| matches!(e, Event::Trigger { .. })) {
                let held = busy_at.expect("the load first") + Duration::from_secs(1);
                return Instant::now().saturating_duration_since(held).as_secs_f64() * 1e3;
            }
            // As `pss watch` does: an interval on, or when a condition will have held.
            let regular = polled + Duration::from_secs(1);
            next_poll = w.deadline().map_or(regular, |d| d.min(regular));
        }
        let wake = match busy_at {
            None => next_poll.min(begin),
            Some(_) => next_poll,
        };
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
}

fn latencies() {
    let mut t = Target::spawn(exe(), &["work", "0", "2"]);
    let dir = scratch("latency");
    let (mut ours, mut theirs) = (vec![], vec![]);
    for i in 0..RUNS {
        ours.push(pss_latency(&mut t, 137 + 211 * i as u64));
        t.ask("calm", "calm");
        std::thread::sleep(Duration::from_millis(1500 + 137 * i as u64));
        let runner = std::thread::spawn({
            let pid = t.pid;
            let dir = dir.clone();
            move || procdump(pid, &["-n", "1", "-s", "1", "-C", "50"], &dir)
        });
        std::thread::sleep(Duration::from_millis(1300 + 211 * i as u64));
        t.ask("busy 1", "busy");
        let busy_at = Instant::now();
        let gdb_at = runner.join().unwrap().expect("procdump ran gdb");
        theirs.push(
            gdb_at
                .saturating_duration_since(busy_at + Duration::from_secs(1))
                .as_secs_f64()
                * 1e3,
        );
        t.ask("calm", "calm");
        for f in std::fs::read_dir(&dir).unwrap() {
            let _ = std::fs::remove_file(f.unwrap().path());
        }
    }
    t.assert_unharmed();
    println!("trigger latency, --cpu 50 --for 1 at a 1 s interval: held 1 s -> dump begins (medians of {RUNS}, ms):");
    println!(
        "  pss watch {:8.0}   (runs: {})",
        median(&mut ours.clone()),
        list(&ours)
    );
    println!(
        "  procdump  {:8.0}   (runs: {})",
        median(&mut theirs.clone()),
        list(&theirs)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Percent of one CPU the watcher thread used watching `targets` for `secs` at 1 s.
fn watcher_cpu(targets: Targets, secs: u64) -> f64 {
    let rules = Rules {
        conditions: vec![
            Condition::CpuAtLeast(99.0),
            Condition::ThreadsAtLeast(10_000),
        ],
        hold: Duration::from_secs(1000),
        ..Rules::default()
    };
    let mut w = Watcher::new(targets, rules);
    let me = "/proc/thread-self";
    let cpu0 = cpu_seconds(me);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        let poll = Instant::now();
        w.poll();
        std::thread::sleep(Duration::from_secs(1).saturating_sub(poll.elapsed()));
    }
    100.0 * (cpu_seconds(me) - cpu0) / start.elapsed().as_secs_f64()
}

fn cpu_costs() {
    const SECS: u64 = 20;
    let t = Target::spawn(exe(), &["threads", "2"]);
    let one = watcher_cpu(Targets::Pid(t.pid), SECS);
    let dir = scratch("many");
    let name = format!("pw{}", std::process::id() % 1_000_000);
    let copy = dir.join(&name);
    std::fs::copy(exe(), &copy).unwrap();
    let many: Vec<Target> = (0..100).map(|_| Target::spawn(&copy, &["idle"])).collect();
    let hundred = watcher_cpu(Targets::Name(name), SECS);
    drop(many);
    let mut child = Command::new("procdump")
        .args(["-C", "99", "-s", "1000", "-p", &t.pid.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .expect("procdump");
    let stat = format!("/proc/{}/task", child.id());
    let cpu0 = cpu_seconds(&stat);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(SECS));
    let theirs = 100.0 * (cpu_seconds(&stat) - cpu0) / start.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    println!("watcher CPU at a 1 s interval over {SECS} s (percent of one CPU, from schedstat):");
    println!("  pss watch, 1 process by pid      {one:.3} %");
    println!("  pss watch, 100 processes by name {hundred:.3} %");
    println!("  procdump, 1 process by pid       {theirs:.3} %");
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    pss_engine::main_if_requested();
    let Some(sizes) = bench::sizes_mib("watch", &[1024]) else {
        return;
    };
    for mib in sizes {
        stalls(mib);
    }
    latencies();
    cpu_costs();
}
