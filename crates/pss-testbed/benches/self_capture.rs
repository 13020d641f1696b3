//! Self-capture benchmark (not a timed test): the benchmark process captures itself with a
//! VA clone. Run with:
//!
//! ```text
//! cargo bench -p pss-testbed --bench self_capture            # 64 MiB and 1 GiB
//! cargo bench -p pss-testbed --bench self_capture -- 256     # chosen sizes in MiB
//! ```
//!
//! The process holds that much private memory (4 KiB pages, touched) and runs a thread that
//! records its longest stall. In one run it measures its own `fork()` of the same memory
//! (the floor), and a `Target::Current` capture with `VA_CLONE | THREADS | THREAD_CONTEXT`:
//! the stall the meter thread saw, the engine's pause, and the whole call (which adds the
//! engine round trip, the clone's adoption and its free). Results go to
//! `docs/performance.md`. Medians; the machine is noisy.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pss::{CaptureFlags, ContextFlags, Snapshot, Target};
use pss_testbed::bench::{self, median};

const RUNS: usize = 7;

static MAX_STALL_NS: AtomicU64 = AtomicU64::new(0);
static STOP: AtomicBool = AtomicBool::new(false);

/// The longest stall since the last call, in ms (after letting the meter run a little).
fn stall_ms() -> f64 {
    std::thread::sleep(Duration::from_millis(5));
    MAX_STALL_NS.swap(0, Ordering::Relaxed) as f64 / 1e6
}

fn own_fork_ms() -> f64 {
    let started = Instant::now();
    // SAFETY: the child only calls _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: leaving the child at once.
        unsafe { libc::_exit(0) };
    }
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let mut status = 0;
    // SAFETY: reaping our own child; status is a live int.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    ms
}

fn one(mib: usize) {
    let mut mem = vec![0u8; mib << 20];
    for (i, page) in mem.chunks_mut(4096).enumerate() {
        page[0] = i as u8;
    }
    let (mut fork, mut seen, mut engine, mut call) = (vec![], vec![], vec![], vec![]);
    for _ in 0..RUNS {
        fork.push(own_fork_ms());
        std::thread::sleep(Duration::from_millis(20));
        stall_ms();
        let started = Instant::now();
        let snap = Snapshot::capture(
            Target::Current,
            CaptureFlags::VA_CLONE | CaptureFlags::THREADS | CaptureFlags::THREAD_CONTEXT,
            ContextFlags::ALL,
        )
        .expect("self-capture");
        call.push(started.elapsed().as_secs_f64() * 1e3);
        seen.push(stall_ms());
        engine.push(snap.capture_info().pause.as_secs_f64() * 1e3);
        let mut b = [0u8; 1];
        snap.va_clone()
            .unwrap()
            .read_exact(mem.as_ptr() as u64 + 4096, &mut b)
            .unwrap();
        assert_eq!(b[0], 1);
        drop(snap);
    }
    std::hint::black_box(&mem);
    let (f, s, e, c) = (
        median(&mut fork),
        median(&mut seen),
        median(&mut engine),
        median(&mut call),
    );
    println!(
        "| {mib} MiB 4K | {f:.2} | {s:.2} | {e:.2} | {:.2} | {c:.2} |",
        s / f
    );
}

fn main() {
    // The bench is its own engine: no `pss-engine` need be built in release.
    pss_engine::main_if_requested();
    let Some(sizes) = bench::sizes_mib("self_capture", &[64, 1024]) else {
        return;
    };
    let meter = std::thread::spawn(|| {
        let mut last = Instant::now();
        while !STOP.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_micros(50));
            let now = Instant::now();
            MAX_STALL_NS.fetch_max(
                now.duration_since(last).as_nanos() as u64,
                Ordering::Relaxed,
            );
            last = now;
        }
    });
    println!("{RUNS} runs each; medians; ms\n");
    println!("| memory | own fork() | self-capture stall, seen by a thread | engine's pause | ratio to fork | whole call |");
    println!("|---|---|---|---|---|---|");
    for &mib in &sizes {
        one(mib);
    }
    STOP.store(true, Ordering::Relaxed);
    meter.join().unwrap();
}
