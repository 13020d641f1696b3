//! `work BUSY PARKED`: BUSY threads that do nothing but a fixed unit of arithmetic again and
//! again, counting the units done, beside PARKED threads blocked in `read()` — the
//! CPU-bound target whose work rate a sampling profiler must not dent. The command `work`
//! answers `work N`: the units done so far, by all the busy threads together.

use std::sync::atomic::{AtomicU64, Ordering};

use super::park;

/// Units done, by every busy thread.
static DONE: AtomicU64 = AtomicU64::new(0);

/// Starts `busy` working threads and parks `parked` more.
pub fn setup(busy: usize, parked: usize) -> park::Parked {
    for i in 0..busy {
        std::thread::Builder::new()
            .name(format!("busy-{i}"))
            .spawn(work)
            .expect("spawn a busy thread");
    }
    park::Parked::spawn(parked)
}

/// One busy thread: about a microsecond of arithmetic per unit, counted.
fn work() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    loop {
        for _ in 0..1000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        }
        std::hint::black_box(x);
        DONE.fetch_add(1, Ordering::Relaxed);
    }
}

/// Answers `work` with the units done so far; whether `cmd` was that.
pub fn command(cmd: &str) -> bool {
    if cmd != "work" {
        return false;
    }
    crate::say(&format!("work {}", DONE.load(Ordering::Relaxed)));
    true
}
