//! The engine process benchmark (not a timed test). Run with:
//!
//! ```text
//! ./scripts/bench-engine.sh                 # builds the pre-engine `pss`, then runs this
//! cargo bench -p pss-testbed --bench engine # without the "before" column
//! ```
//!
//! In one run it measures:
//! - the pause of a `VA_CLONE` capture of a `pss-testbed va` target (64 MiB and 1 GiB, 4 KiB
//!   pages) as the target saw it (its longest stall) and as the engine measured it, through
//!   the engine (this build) and, interleaved, through the `pss` command as it was before
//!   the engine process (`$PSS_BEFORE`, built by the script), with the target's own
//!   `fork()` as the floor;
//! - what one capture round trip through the engine adds: a `THREADS` capture's wall time in
//!   the caller minus the capture's own time measured in the engine;
//! - one injected syscall outside a capture (`pss::remote::close_fd`: seize one thread,
//!   inject, restore, detach), the bound of each window in which an engine killed at that
//!   instant would leave a thread with injected state (`docs/engine.md`, "No window");
//! - the engine's start-up (spawn, exec, greeting) while the caller holds 1 GiB, against the
//!   caller's own `fork()` (what a fork-based start would cost);
//! - the engine's resident memory when idle.
//!
//! Results go to `docs/performance.md`. Medians; the machine is noisy.

use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pss::{CaptureFlags, ContextFlags, Snapshot, Target as PssTarget};
use pss_testbed::bench::{self, median};
use pss_testbed::harness::{kb_field, Target};

const RUNS: usize = 9;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

fn stall_ms(t: &mut Target) -> f64 {
    t.ask("stall", "stall").parse::<f64>().unwrap() / 1000.0
}

/// One capture with the pre-engine `pss` command: (stall seen by the target, its pause).
fn before(cmd: &Path, t: &mut Target) -> (f64, f64) {
    std::thread::sleep(Duration::from_millis(20));
    stall_ms(t);
    let out = Command::new(cmd)
        .args([
            "capture",
            &t.pid.to_string(),
            "--flags",
            "va-clone",
            "--json",
        ])
        .output()
        .expect("run the pre-engine pss");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pause = doc["capture"]["pause_us"].as_f64().unwrap() / 1000.0;
    std::thread::sleep(Duration::from_millis(5));
    (stall_ms(t), pause)
}

/// One capture through the engine: (stall seen by the target, the engine's pause).
fn after(t: &mut Target) -> (f64, f64) {
    std::thread::sleep(Duration::from_millis(20));
    stall_ms(t);
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::VA_CLONE,
        ContextFlags::empty(),
    )
    .expect("VA clone capture");
    let pause = snap.capture_info().pause.as_secs_f64() * 1e3;
    drop(snap);
    std::thread::sleep(Duration::from_millis(5));
    (stall_ms(t), pause)
}

fn pause_row(mib: usize, before_cmd: Option<&Path>) {
    let mut t = Target::spawn(exe(), &["va", &mib.to_string()]);
    let (mut fork, mut seen_b, mut eng_b, mut seen_a, mut eng_a) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..RUNS {
        fork.push(t.ask("fork", "fork").parse::<f64>().unwrap() / 1000.0);
        if let Some(cmd) = before_cmd {
            let (s, e) = before(cmd, &mut t);
            seen_b.push(s);
            eng_b.push(e);
        }
        let (s, e) = after(&mut t);
        seen_a.push(s);
        eng_a.push(e);
    }
    t.assert_unharmed();
    let f = median(&mut fork);
    let (sa, ea) = (median(&mut seen_a), median(&mut eng_a));
    let label = if mib >= 1024 {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{mib} MiB")
    };
    if before_cmd.is_some() {
        let (sb, eb) = (median(&mut seen_b), median(&mut eng_b));
        println!(
            "| {label} | {f:.2} | {sb:.2} ({eb:.2}) | {sa:.2} ({ea:.2}) | {:.2} | {:.2} |",
            sa / sb,
            sa / f
        );
    } else {
        println!(
            "| {label} | {f:.2} | – | {sa:.2} ({ea:.2}) | – | {:.2} |",
            sa / f
        );
    }
}

/// What a round trip through the engine adds to a small capture, and one injected syscall.
fn round_trip() {
    let t = Target::spawn(exe(), &["threads", "4"]);
    let (mut wall, mut inside, mut inject) = (vec![], vec![], vec![]);
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(t.pid).unwrap(),
        rustix::process::PidfdFlags::empty(),
    )
    .unwrap();
    let (r, _w) = rustix::pipe::pipe().unwrap();
    for _ in 0..51 {
        let started = Instant::now();
        let snap = Snapshot::capture(
            PssTarget::Pid(t.pid),
            CaptureFlags::THREADS,
            ContextFlags::empty(),
        )
        .unwrap();
        wall.push(started.elapsed().as_secs_f64() * 1e6);
        inside.push(snap.capture_info().total.as_secs_f64() * 1e6);
        let n = pss::remote::install_fd(pidfd.as_fd(), r.as_fd()).unwrap();
        let started = Instant::now();
        pss::remote::close_fd(pidfd.as_fd(), n).unwrap();
        inject.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let (w, i) = (median(&mut wall), median(&mut inside));
    println!("| THREADS capture of a 5-thread target, wall in the caller | {w:.0} µs |");
    println!("| the same capture, measured inside the engine | {i:.0} µs |");
    println!(
        "| **round trip through the engine** | **{:.0} µs** |",
        w - i
    );
    println!(
        "| one injected syscall in one thread (seize, inject `close`, restore, detach), whole request | {:.0} µs |",
        median(&mut inject)
    );
}

/// The engine's start-up while this process holds 1 GiB, against this process's fork().
fn start_up() {
    let held: Vec<u8> = (0..1usize << 30).map(|i| (i >> 12) as u8).collect();
    std::hint::black_box(&held);
    let (mut start, mut fork, mut rss) = (vec![], vec![], vec![]);
    for _ in 0..15 {
        assert!(pss::shutdown_engine(Duration::from_secs(5)));
        let started = Instant::now();
        let engine = pss::engine_pid().unwrap();
        start.push(started.elapsed().as_secs_f64() * 1e3);
        let status = std::fs::read_to_string(format!("/proc/{engine}/status")).unwrap();
        rss.push(kb_field(&status, "VmRSS:").unwrap() as f64);

        let started = Instant::now();
        // SAFETY: a fork whose child exits at once without running any Rust code.
        let child = unsafe { libc::fork() };
        if child == 0 {
            // SAFETY: leaving the forked child at once.
            unsafe { libc::_exit(0) };
        }
        fork.push(started.elapsed().as_secs_f64() * 1e3);
        let mut st = 0;
        // SAFETY: reaping the child just forked; st is a live int.
        unsafe { libc::waitpid(child, &mut st, 0) };
    }
    let (s, f) = (median(&mut start), median(&mut fork));
    println!("| engine start-up (spawn, exec, greeting), caller holding 1 GiB | {s:.2} ms |");
    println!("| the caller's own fork() (what a fork-based start would pay) | {f:.2} ms |");
    println!("| ratio | {:.2} |", s / f);
    println!(
        "| engine's resident memory, idle | {:.0} KiB |",
        median(&mut rss)
    );
    drop(held);
}

fn main() {
    // The bench is its own engine: no `pss-engine` need be built in release.
    pss_engine::main_if_requested();
    let Some(sizes) = bench::sizes_mib("engine", &[64, 1024]) else {
        return;
    };
    let before_cmd = std::env::var_os("PSS_BEFORE").map(std::path::PathBuf::from);
    println!("{RUNS} runs each, interleaved; medians; ms as the target saw them (its longest stall), the capturer's own pause figure in parentheses\n");
    println!("| memory | target's own fork() | before the engine process | through the engine | after / before | after / fork |");
    println!("|---|---|---|---|---|---|");
    for &mib in &sizes {
        pause_row(mib, before_cmd.as_deref());
    }
    println!("\n| what | median |\n|---|---|");
    round_trip();
    start_up();
}
