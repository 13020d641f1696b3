//! Core export benchmark (not a timed test): `pss_export` against gdb's `gcore` on the same
//! target, in the same run. Run with:
//!
//! ```text
//! cargo bench -p pss-testbed --bench export              # 64 MiB, 1 GiB, 4 GiB
//! cargo bench -p pss-testbed --bench export -- 64 1024   # chosen sizes in MiB
//! ```
//!
//! For each size a `pss-testbed va` target holds that much private memory in 4 KiB pages
//! (each page's first word is its index) and runs a thread that records its longest stall.
//! Measured, medians of several runs:
//! - the target's own `fork()` of the same memory (the floor for any clone);
//! - a core written with `pss_export` (capture with a VA clone, then the write from the
//!   clone while the target runs): the stall the target saw, the wall time, the output size,
//!   the writer's peak RSS (this process's `VmHWM`, reset before), and its write rate (bytes
//!   of the core over the write's time);
//! - the same number of bytes written sequentially to a file in the same directory, in
//!   1 MiB `write`s: the file system's own rate;
//! - `gcore` of the same target: its stall, wall time, output size and peak RSS;
//! - a minidump without full memory (`pss dump --format minidump`: no VA clone, the stacks
//!   copied in the pause): the stall the target saw and the pause, against the pause of a
//!   metadata capture (threads with every register) of the same target.
//!
//! Files go to `$PSS_BENCH_DIR` (default `target/bench-export`), are synced between runs
//! so that each starts with clean page cache, and are removed. Results go to
//! `docs/performance.md`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pss::{ContextFlags, Snapshot, Target as PssTarget};
use pss_export::{self as export, ExportOptions, Format};
use pss_testbed::bench::{self, median};
use pss_testbed::harness::{kb_field, Target};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

fn out_dir() -> PathBuf {
    let d = std::env::var_os("PSS_BENCH_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-export"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stall_ms(t: &mut Target) -> f64 {
    t.ask("stall", "stall").parse::<f64>().unwrap() / 1000.0
}

/// Flushes dirty pages (and gives a file system that discards freed blocks time to) so
/// that the next measurement starts from the same state.
fn settle() {
    let _ = Command::new("sync").status();
    std::thread::sleep(Duration::from_secs(1));
}

/// Resets this process's peak RSS (`VmHWM`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    kb_field(&s, "VmHWM:").unwrap() as f64 / 1024.0
}

struct Run {
    stall_ms: f64,
    /// The pause as the engine measured it (pss only).
    pause_ms: f64,
    wall_s: f64,
    size: u64,
    rss_mib: f64,
    /// Bytes per second of the write alone (pss only).
    rate: f64,
}

fn pss_run(t: &mut Target, path: &Path) -> Run {
    stall_ms(t);
    reset_peak_rss();
    let started = Instant::now();
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        export::CAPTURE_FLAGS,
        ContextFlags::ALL,
    )
    .expect("capture");
    let pause_ms = snap.capture_info().pause.as_secs_f64() * 1e3;
    let writing = Instant::now();
    let summary = export::write_file(
        &snap,
        Format::Core,
        path,
        true,
        &mut ExportOptions::default(),
    )
    .expect("write the core");
    let write_s = writing.elapsed().as_secs_f64();
    drop(snap);
    let wall_s = started.elapsed().as_secs_f64();
    let rss_mib = peak_rss_mib();
    std::thread::sleep(Duration::from_millis(5));
    Run {
        stall_ms: stall_ms(t),
        pause_ms,
        wall_s,
        size: summary.bytes,
        rss_mib,
        rate: summary.bytes as f64 / write_s,
    }
}

// The child is reaped by `wait4` (for its resource usage), which clippy does not see.
#[allow(clippy::zombie_processes)]
fn gcore_run(t: &mut Target, dir: &Path) -> Run {
    stall_ms(t);
    let prefix = dir.join("gcore");
    let started = Instant::now();
    let child = Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(t.pid.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("gcore (scripts/test-deps.sh installs gdb)");
    // SAFETY: plain data for wait4 to fill; the child is ours and not waited for elsewhere.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut status = 0;
    // SAFETY: waits for our own child, with valid out-pointers.
    unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall_s = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(5));
    let path = dir.join(format!("gcore.{}", t.pid));
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    let _ = std::fs::remove_file(&path);
    Run {
        stall_ms: stall_ms(t),
        pause_ms: 0.0,
        wall_s,
        size,
        rss_mib: usage.ru_maxrss as f64 / 1024.0,
        rate: 0.0,
    }
}

/// The dumper alone, without a file system: a core written to `/dev/null`; bytes per second
/// of the whole call (capture, write, free).
fn devnull_rate(t: &Target) -> f64 {
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let started = Instant::now();
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        export::CAPTURE_FLAGS,
        ContextFlags::ALL,
    )
    .expect("capture");
    let s = export::write(
        &snap,
        Format::Core,
        std::os::fd::AsFd::as_fd(&null),
        &mut ExportOptions::default(),
    )
    .expect("write to /dev/null");
    drop(snap);
    s.bytes as f64 / started.elapsed().as_secs_f64()
}

/// Writes `bytes` in 1 MiB writes of non-zero data to a file in `dir`; bytes per second.
fn plain_write(dir: &Path, bytes: u64) -> f64 {
    let path = dir.join("plain");
    let buf = vec![0x5au8; 1 << 20];
    let mut f = std::fs::File::create(&path).unwrap();
    let started = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    let s = started.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_file(&path);
    bytes as f64 / s
}

fn med(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    let mut v: Vec<f64> = runs.iter().map(f).collect();
    median(&mut v)
}

fn one(mib: usize, dir: &Path) {
    let runs = if mib <= 1024 { 7 } else { 3 };
    let mut t = Target::spawn(exe(), &["va", &mib.to_string()]);
    let mut fork = Vec::new();
    let mut ours = Vec::new();
    let mut plain = Vec::new();
    let mut null = Vec::new();
    let mut theirs = Vec::new();
    let core = dir.join("core");
    let mut size = 0;
    for run in 0..runs {
        fork.push(t.ask("fork", "fork").parse::<f64>().unwrap() / 1000.0);
        null.push(devnull_rate(&t));
        // The three in a different order each run, so that drift in the machine's state
        // (writeback, discards) falls on each in turn.
        for step in 0..3 {
            settle();
            match (run + step) % 3 {
                0 => {
                    let r = pss_run(&mut t, &core);
                    let _ = std::fs::remove_file(&core);
                    size = r.size;
                    ours.push(r);
                }
                1 => theirs.push(gcore_run(&mut t, dir)),
                _ => {
                    // The plain write needs our size: the first run measures ours first.
                    if size == 0 {
                        let r = pss_run(&mut t, &core);
                        let _ = std::fs::remove_file(&core);
                        size = r.size;
                        settle();
                    }
                    plain.push(plain_write(dir, size));
                }
            }
        }
    }
    minidumps(mib, &mut t, dir);
    t.assert_unharmed();
    let fork_ms = median(&mut fork);
    let (p_stall, g_stall) = (med(&ours, |r| r.stall_ms), med(&theirs, |r| r.stall_ms));
    let (p_wall, g_wall) = (med(&ours, |r| r.wall_s), med(&theirs, |r| r.wall_s));
    let (p_size, g_size) = (
        med(&ours, |r| r.size as f64),
        med(&theirs, |r| r.size as f64),
    );
    let (p_rate, plain_rate) = (med(&ours, |r| r.rate), median(&mut plain));
    println!(
        "{:>8} | fork {fork_ms:8.2} ms | stall pss {p_stall:8.2} ms ({:.2}x fork; pause {:.2} ms), gcore {g_stall:9.1} ms ({:.0}x ours) \
         | wall pss {p_wall:6.2} s, gcore {g_wall:6.2} s ({:.2}x) | size pss {:.1} MiB, gcore {:.1} MiB ({:.3}x) \
         | rate pss {:.0} MiB/s, plain {:.0} MiB/s ({:.2}x), to /dev/null {:.0} MiB/s | RSS pss {:.1} MiB, gcore {:.1} MiB",
        size_label(mib),
        p_stall / fork_ms,
        med(&ours, |r| r.pause_ms),
        g_stall / p_stall,
        p_wall / g_wall,
        p_size / 1048576.0,
        g_size / 1048576.0,
        p_size / g_size,
        p_rate / 1048576.0,
        plain_rate / 1048576.0,
        p_rate / plain_rate,
        median(&mut null) / 1048576.0,
        med(&ours, |r| r.rss_mib),
        med(&theirs, |r| r.rss_mib),
    );
}

/// One minidump without a clone: the stall the target saw and the capture's pause (ms).
fn minidump_run(t: &mut Target, path: &Path) -> (f64, f64) {
    stall_ms(t);
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        export::MINIDUMP_CAPTURE_FLAGS,
        ContextFlags::ALL,
    )
    .expect("capture");
    let pause_ms = snap.capture_info().pause.as_secs_f64() * 1e3;
    let mut opts = ExportOptions::default();
    export::write_file(&snap, Format::Minidump, path, true, &mut opts).expect("write");
    std::thread::sleep(Duration::from_millis(5));
    let _ = std::fs::remove_file(path);
    (stall_ms(t), pause_ms)
}

/// A metadata capture (threads with every register): the stall the target saw and the
/// pause, ms.
fn metadata_run(t: &mut Target) -> (f64, f64) {
    stall_ms(t);
    let flags = pss::CaptureFlags::THREADS | pss::CaptureFlags::THREAD_CONTEXT;
    let snap = Snapshot::capture(PssTarget::Pid(t.pid), flags, ContextFlags::ALL).expect("capture");
    std::thread::sleep(Duration::from_millis(5));
    (stall_ms(t), snap.capture_info().pause.as_secs_f64() * 1e3)
}

/// Minidumps without a clone against metadata captures, interleaved.
fn minidumps(mib: usize, t: &mut Target, dir: &Path) {
    let mut v: [Vec<f64>; 4] = Default::default();
    for _ in 0..9 {
        std::thread::sleep(Duration::from_millis(200));
        let (s, p) = minidump_run(t, &dir.join("minidump"));
        std::thread::sleep(Duration::from_millis(200));
        let (ms, mp) = metadata_run(t);
        for (k, x) in [s, p, ms, mp].into_iter().enumerate() {
            v[k].push(x);
        }
    }
    let [s, p, ms, mp] = v.map(|mut x| median(&mut x));
    println!(
        "{:>8} | minidump, no clone: stall {s:.2} ms, pause {p:.2} ms | metadata capture: stall {ms:.2} ms, pause {mp:.2} ms \
         | minidump stall / metadata pause {:.2}x, stall / stall {:.2}x, pause / pause {:.2}x",
        size_label(mib),
        s / mp,
        s / ms,
        p / mp
    );
}

fn size_label(mib: usize) -> String {
    if mib >= 1024 {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{mib} MiB")
    }
}

fn main() {
    pss_engine::main_if_requested();
    let Some(sizes) = bench::sizes_mib("export", &[64, 1024, 4096]) else {
        return;
    };
    let dir = out_dir();
    println!("Files in {}", dir.display());
    for mib in sizes {
        one(mib, &dir);
    }
}
