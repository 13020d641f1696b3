//! VA clone benchmark (not a timed test). Run with:
//!
//! ```text
//! cargo bench -p pss-testbed --bench va_clone            # 64 MiB, 1 GiB, 4 GiB
//! cargo bench -p pss-testbed --bench va_clone -- 64 1024  # chosen sizes in MiB
//! ```
//!
//! For each size, in 4 KiB pages and with transparent huge pages, a `pss-testbed va` target
//! holds that much private memory and runs a thread that records its longest stall. In one
//! run it measures:
//! - the target's own `fork()` of the same memory (the kernel's page-table copy: the floor);
//! - the pause of a `VA_CLONE` capture as the target itself saw it (its longest stall), and
//!   as the engine measured it (first interrupt to last detach);
//! - gdb's `gcore` of the same target, as the target saw it (4 KiB pages, up to 1 GiB: it
//!   writes the whole core to /tmp);
//! - reading the whole region from the clone (`pread` on `/proc/CLONE/mem`), and whether its
//!   pages were still shared afterwards (`Shared_Dirty` in the clone's `smaps_rollup`).
//!
//! Results go to `docs/performance.md`. Medians; the machine is noisy.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pss::{CaptureFlags, ContextFlags, Snapshot, Target as PssTarget};
use pss_testbed::bench::{self, median};
use pss_testbed::harness::{kb_field, Target};

const RUNS: usize = 7;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

fn stall_ms(t: &mut Target) -> f64 {
    t.ask("stall", "stall").parse::<f64>().unwrap() / 1000.0
}

fn one(mib: usize, thp: bool) {
    let mut args = vec!["va".to_string(), mib.to_string()];
    if thp {
        args.push("thp".into());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut t = Target::spawn(exe(), &argv);
    let (mem, len) = (t.fact_u64("mem", 0), t.fact_u64("mem", 1));
    let label = format!("{} {}", size_label(mib), if thp { "THP" } else { "4K " });

    let mut fork = Vec::new();
    let mut seen = Vec::new();
    let mut engine = Vec::new();
    let mut read_gibs = Vec::new();
    let mut shared_ok = true;
    for run in 0..RUNS {
        // The target's own fork(): its duration is the floor for any clone.
        fork.push(t.ask("fork", "fork").parse::<f64>().unwrap() / 1000.0);

        std::thread::sleep(Duration::from_millis(20));
        stall_ms(&mut t);
        let snap = Snapshot::capture(
            PssTarget::Pid(t.pid),
            CaptureFlags::VA_CLONE,
            ContextFlags::empty(),
        )
        .expect("VA clone capture");
        std::thread::sleep(Duration::from_millis(5));
        seen.push(stall_ms(&mut t));
        engine.push(snap.capture_info().pause.as_secs_f64() * 1e3);

        if run == 0 || mib <= 1024 {
            let clone = snap.va_clone().unwrap();
            let mut buf = vec![0u8; 4 << 20];
            let started = Instant::now();
            let mut off = 0u64;
            while off < len {
                let n = buf.len().min((len - off) as usize);
                clone.read_exact(mem + off, &mut buf[..n]).unwrap();
                off += n as u64;
            }
            let secs = started.elapsed().as_secs_f64();
            read_gibs.push(len as f64 / secs / (1u64 << 30) as f64);
            let rollup =
                std::fs::read_to_string(format!("/proc/{}/smaps_rollup", clone.pid())).unwrap();
            shared_ok &= kb_field(&rollup, "Shared_Dirty:").unwrap_or(0) * 1024 >= len;
        }
        drop(snap);
    }

    let gcore = if !thp && mib <= 1024 {
        std::thread::sleep(Duration::from_millis(20));
        stall_ms(&mut t);
        let out = format!("/tmp/pss-bench-core-{}", t.pid);
        let started = Instant::now();
        let st = Command::new("gcore")
            .args(["-o", &out, &t.pid.to_string()])
            .output()
            .expect("run gcore");
        let wall = started.elapsed().as_secs_f64() * 1e3;
        let _ = std::fs::remove_file(format!("{out}.{}", t.pid));
        assert!(st.status.success(), "gcore failed");
        std::thread::sleep(Duration::from_millis(5));
        Some((stall_ms(&mut t), wall))
    } else {
        None
    };
    t.assert_unharmed();

    let (f, s, e) = (median(&mut fork), median(&mut seen), median(&mut engine));
    let r = median(&mut read_gibs);
    print!("| {label} | {f:.2} | {s:.2} | {e:.2} | {:.2} | ", s / f);
    match gcore {
        Some((g, wall)) => print!("{g:.0} (wall {wall:.0}) | {:.0}× | ", g / s),
        None => print!("– | – | "),
    }
    println!("{r:.1} | {} |", if shared_ok { "yes" } else { "NO" });
}

fn size_label(mib: usize) -> String {
    if mib >= 1024 {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{mib} MiB")
    }
}

fn main() {
    // The bench is its own engine: no `pss-engine` need be built in release.
    pss::engine::main_if_requested();
    let Some(sizes) = bench::sizes_mib("va_clone", &[64, 1024, 4096]) else {
        return;
    };
    println!("{RUNS} runs each; medians; times in ms as the target saw them (its longest stall)\n");
    println!("| memory | target's own fork() | VA clone pause, seen by target | engine's pause | ratio to fork | gcore pause, seen by target | gcore / VA clone | clone read GiB/s | pages still shared |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for &mib in &sizes {
        for thp in [false, true] {
            one(mib, thp);
        }
    }
}
