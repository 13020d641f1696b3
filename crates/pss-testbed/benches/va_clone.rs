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

use pss::records::ForkedAwayCopy;
use pss::{CaptureFlags, CaptureOptions, ContextFlags, Snapshot, Target as PssTarget};
use pss_testbed::bench::{self, median};
use pss_testbed::harness::{kb_field, Target};

const RUNS: usize = 7;
const LAYOUT_RUNS: usize = 15;

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

/// The pause of a VA clone capture with `forked_away`, as the target saw it and as the
/// engine measured it (ms).
fn pause_with(t: &mut Target, forked_away: ForkedAwayCopy) -> (f64, f64) {
    std::thread::sleep(Duration::from_millis(20));
    stall_ms(t);
    let mut o = CaptureOptions::new(CaptureFlags::VA_CLONE, ContextFlags::empty());
    o.forked_away = forked_away;
    let snap = Snapshot::capture_with(PssTarget::Pid(t.pid), &o).expect("VA clone capture");
    let engine = snap.capture_info().pause.as_secs_f64() * 1e3;
    drop(snap);
    std::thread::sleep(Duration::from_millis(5));
    (stall_ms(t), engine)
}

/// Medians of (seen, engine) pairs.
fn medians(v: &[(f64, f64)]) -> (f64, f64) {
    let mut a: Vec<f64> = v.iter().map(|p| p.0).collect();
    let mut b: Vec<f64> = v.iter().map(|p| p.1).collect();
    (median(&mut a), median(&mut b))
}

/// A layout like a real program's: the target's own fork() against the pause with each
/// forked-away policy.
fn layout(label: &str, args: &[&str]) {
    let mut t = Target::spawn(exe(), args);
    let jit_bytes = t
        .facts("jit")
        .first()
        .map_or(0, |f| f[1].parse::<u64>().unwrap());
    let (mut fork, mut during, mut after, mut never) = (vec![], vec![], vec![], vec![]);
    for _ in 0..LAYOUT_RUNS {
        fork.push(t.ask("fork", "fork").parse::<f64>().unwrap() / 1000.0);
        during.push(pause_with(&mut t, ForkedAwayCopy::DuringPause));
        after.push(pause_with(&mut t, ForkedAwayCopy::AfterPause));
        never.push(pause_with(&mut t, ForkedAwayCopy::Never));
    }
    t.assert_unharmed();
    let f = median(&mut fork);
    let mib = jit_bytes as f64 / (1 << 20) as f64;
    // The goal: 1.25× the fork, plus the copy at 2 GiB/s when ranges are copied in it.
    let goal = 1.25 * f + mib / 2048.0 * 1e3;
    let cell = |v: &[(f64, f64)]| {
        let (seen, engine) = medians(v);
        format!("{seen:.2} / {engine:.2} ({:.2}×)", seen / f)
    };
    println!(
        "| {label} | {mib:.1} | {f:.2} | {} (goal ≤ {goal:.2}) | {} | {} |",
        cell(&during),
        cell(&after),
        cell(&never)
    );
}

/// A real `redis-server`, if installed, filled with about 170 MB: its own fork time
/// (`latest_fork_usec` after a `BGSAVE`) against a VA clone's pause (the engine's figure).
fn real_redis() {
    let Ok(bin) = which("redis-server") else {
        println!("| redis-server (not installed: `apt install redis-server`) | – | – | – |");
        return;
    };
    let port = 18000 + (std::process::id() % 1000) as u16;
    let dir = std::env::temp_dir().join(format!("pss-bench-redis-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let mut server = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start redis-server");
    let cli = |args: &[&str]| -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cli(&["PING"]).contains("PONG") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // 160,000 keys of 1 KiB, through one pipe.
    let mut proto = Vec::new();
    let value = "v".repeat(1024);
    for i in 0..160_000 {
        let key = format!("key:{i}");
        proto.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1024\r\n{value}\r\n",
                key.len()
            )
            .as_bytes(),
        );
    }
    let mut pipe = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "--pipe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-cli --pipe");
    use std::io::Write;
    pipe.stdin.take().unwrap().write_all(&proto).unwrap();
    pipe.wait().unwrap();
    let pid = server.id() as i32;
    let rss_mib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| kb_field(&s, "VmRSS:"))
        .unwrap_or(0) as f64
        / 1024.0;
    let (mut fork, mut pause) = (vec![], vec![]);
    for _ in 0..RUNS {
        cli(&["BGSAVE"]);
        std::thread::sleep(Duration::from_millis(800));
        let info = cli(&["INFO", "stats"]);
        let usec = info
            .lines()
            .find_map(|l| l.strip_prefix("latest_fork_usec:"))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        fork.push(usec / 1000.0);
        let snap = Snapshot::capture(
            PssTarget::Pid(pid),
            CaptureFlags::VA_CLONE,
            ContextFlags::empty(),
        )
        .expect("capture redis");
        pause.push(snap.capture_info().pause.as_secs_f64() * 1e3);
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let (f, p) = (median(&mut fork), median(&mut pause));
    println!("| redis-server, {rss_mib:.0} MiB resident | {f:.2} (latest_fork_usec) | {p:.2} (engine's pause) | {:.2}× |", p / f);
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

fn main() {
    // The bench is its own engine: no `pss-engine` need be built in release.
    pss_engine::main_if_requested();
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
    println!(
        "\nLayouts of real programs: pauses seen by the target with each --forked-away policy\n"
    );
    println!("| layout | forked-away MiB | target's own fork() | during the pause | after the pause | never |");
    println!("|---|---|---|---|---|---|");
    layout(
        "JIT-like (node/V8): 48 MiB, 24 DONTFORK ranges of 256 KiB",
        &["va", "48", "jit=24x256"],
    );
    layout(
        "redis-like: 170 MiB, 150 more mappings, 4 more threads",
        &["va", "170", "maps=150", "threads=4"],
    );
    println!("\n| real program | its own fork() | VA clone pause | ratio |\n|---|---|---|---|");
    real_redis();
}
