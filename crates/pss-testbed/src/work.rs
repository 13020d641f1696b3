//! Load a test can change: `work BUSY PARKED` starts BUSY threads that do nothing but a
//! fixed unit of arithmetic again and again, counting the units done, beside PARKED threads
//! blocked in `read()` — the CPU-bound target whose work rate a sampling profiler must not
//! dent. In any mode, commands change the load at a known moment (each answers once done):
//!
//! - `work` → `work N`: the units done so far, by all the busy threads together;
//! - `busy N` → `busy TOTAL`: N more busy threads; `calm` → `calm`: every busy thread stops;
//! - `alloc MIB` → `alloc TOTAL`: MIB more MiB of private memory, every page written;
//! - `spawn N` → `spawn TOTAL`: N more threads, sleeping;
//! - `open N` → `open TOTAL`: N more descriptors of `/dev/null`, kept open.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use super::park;

/// Units done, by every busy thread.
static DONE: AtomicU64 = AtomicU64::new(0);
/// Set to stop the busy threads.
static CALM: AtomicBool = AtomicBool::new(false);
/// Busy threads running, threads spawned.
static BUSY: AtomicU64 = AtomicU64::new(0);
static SPAWNED: AtomicU64 = AtomicU64::new(0);
/// Memory allocated and descriptors opened, kept.
static HELD: Mutex<(Vec<Vec<u8>>, Vec<std::fs::File>)> = Mutex::new((Vec::new(), Vec::new()));

/// Starts `busy` working threads and parks `parked` more.
pub fn setup(busy: usize, parked: usize) -> park::Parked {
    start_busy(busy as u64);
    park::Parked::spawn(parked)
}

fn start_busy(n: u64) {
    CALM.store(false, Ordering::SeqCst);
    for _ in 0..n {
        let i = BUSY.fetch_add(1, Ordering::SeqCst);
        std::thread::Builder::new()
            .name(format!("busy-{i}"))
            .spawn(work)
            .expect("spawn a busy thread");
    }
}

/// One busy thread: about a microsecond of arithmetic per unit, counted, until calmed.
fn work() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while !CALM.load(Ordering::Relaxed) {
        for _ in 0..1000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        }
        std::hint::black_box(x);
        DONE.fetch_add(1, Ordering::Relaxed);
    }
    BUSY.fetch_sub(1, Ordering::SeqCst);
}

/// Obeys `cmd` if it is one of this module's; whether it was.
pub fn command(cmd: &str) -> bool {
    let mut words = cmd.split_whitespace();
    let (Some(verb), n) = (
        words.next(),
        words.next().and_then(|w| w.parse::<u64>().ok()),
    ) else {
        return false;
    };
    let answer = match (verb, n) {
        ("work", None) => format!("work {}", DONE.load(Ordering::Relaxed)),
        ("busy", Some(n)) => {
            start_busy(n);
            format!("busy {}", BUSY.load(Ordering::SeqCst))
        }
        ("calm", None) => {
            CALM.store(true, Ordering::SeqCst);
            while BUSY.load(Ordering::SeqCst) > 0 {
                std::thread::yield_now();
            }
            "calm".into()
        }
        ("alloc", Some(mib)) => {
            let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
            held.0.push(vec![0x5a; (mib as usize) << 20]);
            format!("alloc {}", held.0.iter().map(Vec::len).sum::<usize>() >> 20)
        }
        ("spawn", Some(n)) => {
            for _ in 0..n {
                std::thread::spawn(|| loop {
                    std::thread::park();
                });
            }
            format!("spawn {}", SPAWNED.fetch_add(n, Ordering::SeqCst) + n)
        }
        ("open", Some(n)) => {
            let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
            for _ in 0..n {
                held.1
                    .push(std::fs::File::open("/dev/null").expect("open /dev/null"));
            }
            format!("open {}", held.1.len())
        }
        _ => return false,
    };
    crate::say(&answer);
    true
}
