//! Stacks benchmark (not a timed test): `pss_stack` against `eu-stack -p` and gdb's
//! `thread apply all bt` on the same target, in the same run. Run with:
//!
//! ```text
//! cargo bench -p pss-testbed --bench stack             # 100 and 1,000 threads
//! cargo bench -p pss-testbed --bench stack -- 100      # chosen thread counts
//! ```
//!
//! The target: `pss-testbed va 1 threads=N span` (threads waiting on a condition variable,
//! plus the seven of a `va` target with two stall meters: one made before the waiting
//! threads, one after). Per tool, median of several runs:
//! - the stall the target saw: the longest one thread was kept from running (the late
//!   meter's longest gap);
//! - the span: from the start of the earlier to the end of the later of the two meters'
//!   longest gaps — how long the process was not whole. A tool that stops every thread
//!   together (pss, gdb) has a span as long as its stall; one that stops them one at a time
//!   (eu-stack) keeps each short but the process unwhole for its whole walk;
//! - the wall time, from the call to every thread's symbolized stack: for pss, the capture
//!   (threads, registers, stack copies, VA space), the unwinding and symbolizing, with a new
//!   walker each time (module files read afresh, as a new `pss stack` process would) — with
//!   debug information (file, line, inlined frames): names kept on disk between runs (the
//!   default; a bench directory of its own, warmed by the first run) and not kept (every run
//!   reads the DWARF, as the very first `pss stack` on a machine does) — and with symbol
//!   tables only; for the peers, their whole run: `eu-stack -p` (function names) and
//!   `eu-stack -s -i -p` (with source lines and inlined frames, as `pss stack` prints).
//!
//! pss reads the threads one at a time (`pss stack`'s default: blocked threads are not
//! stopped, the meters are stopped alone) and, as `pss stack --consistent`, all together;
//! "reading only" is the one-at-a-time capture without the walk, apart from the CPU the
//! unwinding and symbolizing take (on a two-CPU machine that CPU use, not any stop, is
//! what the meters feel).
//!
//! Results go to `docs/performance.md`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pss_testbed::bench::{self, median};
use pss_testbed::harness::Target;

const RUNS: usize = 7;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

fn stall_ms(t: &mut Target) -> f64 {
    t.ask("stall", "stall").parse::<f64>().unwrap() / 1000.0
}

fn span_ms(t: &mut Target) -> f64 {
    t.ask("span", "span").parse::<f64>().unwrap() / 1000.0
}

/// One run of `what` on `t`: the stall and span it caused, and the wall time.
fn measure(t: &mut Target, what: &mut dyn FnMut(i32)) -> [f64; 3] {
    // Long enough for the previous tool's aftermath (a peer's detach, its exit) to pass.
    std::thread::sleep(Duration::from_millis(300));
    stall_ms(t);
    span_ms(t);
    let started = Instant::now();
    what(t.pid);
    let wall = started.elapsed().as_secs_f64() * 1e3;
    std::thread::sleep(Duration::from_millis(5));
    [stall_ms(t), span_ms(t), wall]
}

fn pss_stack(pid: i32, mut walker: pss_stack::Walker, consistent: bool) {
    let how = pss_stack::LiveCapture {
        consistent,
        ..pss_stack::LiveCapture::default()
    };
    let (_, stacks) = pss_stack::capture_stacks(pid, &how, &mut walker).expect("stacks");
    assert!(stacks.threads.iter().all(|t| !t.frames.is_empty()));
}

fn tool(pid: i32, program: &str, args: &[&str]) {
    let st = Command::new(program)
        .args(args)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/test-deps.sh installs it)"));
    assert!(st.success() || program == "eu-stack", "{program} failed");
}

/// A way of getting every thread's stack, run on a pid.
type Tool = Box<dyn FnMut(i32)>;

fn one(threads: usize) {
    let extra = threads.saturating_sub(7);
    let mut t = Target::spawn(exe(), &["va", "1", &format!("threads={extra}"), "span"]);
    let n = std::fs::read_dir(format!("/proc/{}/task", t.pid))
        .unwrap()
        .count();
    // The engine's own figure: the longest any one thread was stopped (one at a time).
    let longest_stop = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let alone = longest_stop.clone();
    let kept = std::env::temp_dir().join(format!("pss-bench-names-{}", std::process::id()));
    let kept_too = kept.clone();
    let mut tools: Vec<(&str, Tool)> = vec![
        (
            "pss stack",
            Box::new(move |pid| {
                let walker = pss_stack::Walker::new().keep_names_in(Some(kept_too.clone()));
                pss_stack(pid, walker, false)
            }),
        ),
        (
            "pss stack, names not kept",
            Box::new(|pid| pss_stack(pid, pss_stack::Walker::new().keep_names_in(None), false)),
        ),
        (
            "pss stack --symbols-only",
            Box::new(|pid| pss_stack(pid, pss_stack::Walker::symbols_only(), false)),
        ),
        (
            "pss: reading only, no walk",
            Box::new(move |pid| {
                let o = pss_stack::LiveCapture::default().options();
                let snap = pss::Snapshot::capture_with(pss::Target::Pid(pid), &o).expect("capture");
                let longest = snap.capture_info().pause.as_secs_f64() * 1e3;
                alone.borrow_mut().push(longest);
            }),
        ),
        (
            "eu-stack -p",
            Box::new(|pid| tool(pid, "eu-stack", &["-p"])),
        ),
        (
            "eu-stack -s -i -p",
            Box::new(|pid| tool(pid, "eu-stack", &["-s", "-i", "-p"])),
        ),
        (
            "pss stack --consistent",
            Box::new(|pid| pss_stack(pid, pss_stack::Walker::new(), true)),
        ),
        (
            "gdb thread apply all bt",
            Box::new(|pid| {
                tool(
                    pid,
                    "gdb",
                    &["-batch", "-nx", "-ex", "thread apply all bt", "-p"],
                )
            }),
        ),
    ];
    // [stall, span, wall] medians per tool, the runs interleaved.
    let mut samples: Vec<[Vec<f64>; 3]> = vec![Default::default(); tools.len()];
    for _ in 0..RUNS {
        for (i, (_, f)) in tools.iter_mut().enumerate() {
            let m = measure(&mut t, f.as_mut());
            for k in 0..3 {
                samples[i][k].push(m[k]);
            }
        }
    }
    t.assert_unharmed();
    let meds: Vec<[f64; 3]> = samples
        .iter_mut()
        .map(|s| [median(&mut s[0]), median(&mut s[1]), median(&mut s[2])])
        .collect();
    println!("{n} threads (medians of {RUNS}, ms):");
    for ((name, _), m) in tools.iter().zip(&meds) {
        println!(
            "  {name:<24} stall {:9.2}   span {:9.2}   wall {:9.1}",
            m[0], m[1], m[2]
        );
    }
    println!(
        "  the longest any one thread was stopped, one at a time (the engine's figure): {:.3} ms",
        median(&mut longest_stop.borrow_mut())
    );
    // Indexes into `tools`.
    let (pss, cold, symbols, reading, eu, eu_lines, consistent) = (0, 1, 2, 3, 4, 5, 6);
    println!(
        "  stall / eu-stack -p's: pss stack {:.2}x, names not kept {:.2}x, reading only {:.2}x, --consistent {:.2}x",
        meds[pss][0] / meds[eu][0],
        meds[cold][0] / meds[eu][0],
        meds[reading][0] / meds[eu][0],
        meds[consistent][0] / meds[eu][0],
    );
    println!(
        "  wall: pss stack / eu-stack -p {:.2}x, / eu-stack -s -i {:.2}x; names not kept / eu-stack -s -i {:.2}x; symbols only / eu-stack -p {:.2}x",
        meds[pss][2] / meds[eu][2],
        meds[pss][2] / meds[eu_lines][2],
        meds[cold][2] / meds[eu_lines][2],
        meds[symbols][2] / meds[eu][2],
    );
    let _ = std::fs::remove_dir_all(&kept);
}

fn main() {
    pss_engine::main_if_requested();
    let Some(counts) = bench::sizes_mib("stack", &[100, 1000]) else {
        return;
    };
    for n in counts {
        one(n);
    }
}
