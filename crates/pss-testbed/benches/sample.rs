//! Sampling benchmark (not a timed test): what sampling stacks at 100 Hz costs a CPU-bound
//! target. Run with:
//!
//! ```text
//! cargo bench -p pss-testbed --bench sample             # 1 and 2 busy threads
//! cargo bench -p pss-testbed --bench sample -- 1        # chosen busy-thread counts
//! ```
//!
//! The target: `pss-testbed work BUSY PARKED` — BUSY threads counting units of arithmetic
//! done, PARKED blocked in `read()`, 100 threads in all (and the main thread). Its work rate
//! is measured over windows of 2 s, alternately without and with `pss_profile::sample` (the
//! library `pss stack --samples N --interval 10` runs: each round reads the blocked threads
//! without stopping them and stops each busy thread alone), for several pairs; the cost is
//! 1 − (rate with) / (rate without), median over the pairs. Also the sampler's own CPU
//! (this process and its engine), the rounds it managed, and the longest stop.
//!
//! On a two-CPU machine, BUSY = 1 leaves a CPU to the sampler; BUSY = 2 makes it take its
//! CPU from the target. Results go to `docs/performance.md`.

use std::time::{Duration, Instant};

use pss_testbed::bench::{self, median};
use pss_testbed::harness::Target;

const PAIRS: usize = 7;
const WINDOW: Duration = Duration::from_secs(2);
const INTERVAL: Duration = Duration::from_millis(10);

fn exe() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

fn done(t: &mut Target) -> u64 {
    t.ask("work", "work").parse().unwrap()
}

/// Units per second over one window, and what `during` returned.
fn rate<T>(t: &mut Target, during: impl FnOnce() -> T) -> (f64, T) {
    let before = done(t);
    let start = Instant::now();
    let out = during();
    let units = done(t) - before;
    (units as f64 / start.elapsed().as_secs_f64(), out)
}

/// CPU seconds (user + system) process `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / rustix::param::clock_ticks_per_second() as f64
}

fn one(busy: usize) {
    let parked = 100 - busy;
    let mut t = Target::spawn(exe(), &["work", &busy.to_string(), &parked.to_string()]);
    let mut walker = pss_stack::Walker::new();
    let how = pss_profile::Sampling {
        samples: (WINDOW.as_millis() / INTERVAL.as_millis()) as u32,
        interval: INTERVAL,
        ..pss_profile::Sampling::default()
    };
    // Warm: module files read, names looked up, the engine started.
    pss_profile::sample(t.pid, &how, &mut walker, |_| true).expect("sample");
    let engine = pss::engine_pid().expect("engine") as u32;
    let sampler_cpu = || cpu_seconds(std::process::id()) + cpu_seconds(engine);
    let pid = t.pid;
    let (mut costs, mut cpus, mut rounds, mut stops) = (vec![], vec![], vec![], vec![]);
    for _ in 0..PAIRS {
        std::thread::sleep(Duration::from_millis(200));
        let (without, ()) = rate(&mut t, || std::thread::sleep(WINDOW));
        std::thread::sleep(Duration::from_millis(200));
        let cpu0 = sampler_cpu();
        let (with, p) = rate(&mut t, || {
            pss_profile::sample(pid, &how, &mut walker, |_| true).expect("sample")
        });
        let cpu = sampler_cpu() - cpu0;
        costs.push(100.0 * (1.0 - with / without));
        cpus.push(100.0 * cpu / p.duration.as_secs_f64());
        rounds.push(p.rounds as f64 / p.duration.as_secs_f64());
        stops.push(p.longest_stop.as_secs_f64() * 1e3);
        assert_eq!(p.samples_of(pid as u32), u64::from(p.rounds));
    }
    t.assert_unharmed();
    println!(
        "{busy} busy + {parked} parked threads, 100 Hz asked (medians of {PAIRS} pairs of {} s windows):",
        WINDOW.as_secs()
    );
    println!(
        "  target's work rate lost to sampling: {:.2} %   (pairs: {})",
        median(&mut costs.clone()),
        costs
            .iter()
            .map(|c| format!("{c:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  sampler's CPU (this process + engine): {:.1} % of one CPU; rounds/s {:.1}; longest stop {:.3} ms",
        median(&mut cpus),
        median(&mut rounds),
        median(&mut stops)
    );
}

fn main() {
    pss_engine::main_if_requested();
    let Some(counts) = bench::sizes_mib("sample", &[1, 2]) else {
        return;
    };
    for n in counts {
        one(n);
    }
}
