//! How often an engine SIGKILLed at a random instant of a capture harms the target (not a
//! timed test: a trial of the residual risk `docs/engine.md`, "What remains", states). Run
//! with:
//!
//! ```text
//! cargo bench -p pss-testbed --bench engine_kill            # 300 trials on 64 MiB
//! cargo bench -p pss-testbed --bench engine_kill -- 100     # chosen number of trials
//! ```
//!
//! A `pss-testbed server 64` target; each trial starts a capture with a VA clone (threads,
//! contexts, handles, VA space) through this process's engine and SIGKILLs that engine (by
//! the pid the library reports) after a delay drawn uniformly over a whole capture's time.
//! Then the target must answer as itself, its main thread must find its registers intact
//! (it says `main BAD` otherwise), every thread must block the signals it blocked before,
//! and a `pss::cleanup` must leave it no child. A harmed
//! target is counted and replaced.

use std::io::Read;
use std::net::TcpStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use pss::{CaptureFlags, ContextFlags, Snapshot, Target as PssTarget};
use pss_testbed::bench;
use pss_testbed::harness::{blocked_signals, children_of, Target};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

fn server() -> (Target, u16) {
    let t = Target::spawn(exe(), &["server", "64"]);
    let port = t.fact_u64("port", 0) as u16;
    (t, port)
}

fn capture(pid: i32) -> pss::Result<Snapshot> {
    Snapshot::capture(
        PssTarget::Pid(pid),
        CaptureFlags::VA_CLONE
            | CaptureFlags::THREADS
            | CaptureFlags::THREAD_CONTEXT
            | CaptureFlags::HANDLES
            | CaptureFlags::VA_SPACE,
        ContextFlags::ALL,
    )
}

/// Whether the target is whole: it answers as itself, pings back, and every thread blocks
/// the signals it blocked before ([`blocked_signals`]).
fn whole(t: &mut Target, port: u16, before: &[(String, String)]) -> bool {
    let answered = TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut c| {
        let mut s = String::new();
        c.read_to_string(&mut s).is_ok() && s.trim() == format!("pid {}", t.pid)
    });
    answered
        && catch_unwind(AssertUnwindSafe(|| t.ping())).is_ok()
        && blocked_signals(t.pid) == before
}

/// A pseudo-random fraction in [0, 1) (xorshift; no dependency).
fn fraction(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

fn main() {
    pss_engine::main_if_requested();
    let Some(args) = bench::sizes_mib("engine_kill", &[300]) else {
        return;
    };
    let trials = args[0];
    let (mut t, mut port) = server();
    let mut whole_capture = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        drop(capture(t.pid).expect("a capture"));
        whole_capture.push(started.elapsed().as_secs_f64());
    }
    let span = bench::median(&mut whole_capture);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let (mut killed, mut harmed) = (0, 0);
    let mut before = blocked_signals(t.pid);
    for _ in 0..trials {
        let engine = pss::engine_pid().expect("an engine");
        let pid = t.pid;
        let capturing = std::thread::spawn(move || drop(capture(pid)));
        std::thread::sleep(Duration::from_secs_f64(span * fraction(&mut state)));
        // SAFETY: SIGKILL to the engine process this benchmark's library started, by pid.
        if unsafe { libc::kill(engine, libc::SIGKILL) } == 0 {
            killed += 1;
        }
        let _ = capturing.join();
        let _ = pss::cleanup(Some(t.pid));
        if !whole(&mut t, port, &before) || !children_of(t.pid).is_empty() {
            harmed += 1;
            eprintln!(
                "harmed: blocked signals before {before:?}, after {:?}; children {:?}",
                blocked_signals(t.pid),
                children_of(t.pid)
            );
            (t, port) = server();
            before = blocked_signals(t.pid);
        }
    }
    println!(
        "{trials} captures of a 64 MiB server ({:.1} ms each), {killed} engines SIGKILLed at a uniformly random instant: {harmed} targets harmed ({:.1} %)",
        span * 1e3,
        100.0 * harmed as f64 / trials as f64
    );
}
