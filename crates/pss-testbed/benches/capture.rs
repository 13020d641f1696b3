//! Capture benchmarks (not a timed test). Run with:
//!
//! ```text
//! ./scripts/bench-setup.sh            # installs psutil, the peer
//! cargo bench -p pss-testbed --bench capture
//! ```
//!
//! 1. A target with 1,000 threads, 10,000 fds and 10,000 mappings: a whole `pss` capture
//!    (threads, handles with names, VA space with file names) against psutil reading the
//!    same facts (`threads()`, `open_files()`, `memory_maps()`), interleaved in one run.
//! 2. The pause of a 100-thread target, against stopping the same threads the way Breakpad
//!    and minidump-writer do (`PTRACE_ATTACH` + `waitpid` + `GETREGSET` + `PTRACE_DETACH` per
//!    thread, one after the other).
//!
//! Results go to `docs/performance.md`. Medians; the machine is noisy.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pss::{CaptureFlags, ContextFlags, Snapshot, Target as PssTarget};
use pss_testbed::harness::Target;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn psutil_times(pid: i32, n: usize) -> (Vec<Duration>, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/psutil_read.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(pid.to_string())
        .arg(n.to_string())
        .output()
        .expect("run python3");
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        eprintln!("psutil is missing: run ./scripts/bench-setup.sh");
        std::process::exit(1);
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let mut times = Vec::new();
    let mut counts = String::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        times.push(Duration::from_micros(f[0].parse().unwrap()));
        counts = format!("{} threads, {} files, {} maps", f[1], f[2], f[3]);
    }
    (times, counts)
}

fn big_target() {
    let mut t = Target::spawn(exe(), &["many", "1000", "10000", "10000"]);
    let flags = CaptureFlags::THREADS
        | CaptureFlags::HANDLES
        | CaptureFlags::HANDLE_NAME_INFORMATION
        | CaptureFlags::VA_SPACE
        | CaptureFlags::VA_SPACE_SECTION_INFORMATION;
    let all = CaptureFlags::SUPPORTED;
    let (mut ours, mut ours_all, mut pauses, mut theirs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut counts = (String::new(), String::new());
    let mut phases = Vec::new();
    // Warm-up, then interleaved rounds.
    let _ = Snapshot::capture(PssTarget::Pid(t.pid), flags, ContextFlags::empty()).unwrap();
    for _ in 0..4 {
        for _ in 0..3 {
            let t0 = Instant::now();
            let s = Snapshot::capture(PssTarget::Pid(t.pid), flags, ContextFlags::empty()).unwrap();
            ours.push(t0.elapsed());
            pauses.push(s.capture_info().pause);
            counts.0 = format!(
                "{} threads, {} handles, {} regions",
                s.threads().unwrap().len(),
                s.handles().unwrap().len(),
                s.va_space().unwrap().len()
            );
            let t0 = Instant::now();
            let s = Snapshot::capture(PssTarget::Pid(t.pid), all, ContextFlags::ALL).unwrap();
            ours_all.push(t0.elapsed());
            phases.push(*s.performance().unwrap());
        }
        let (p, c) = psutil_times(t.pid, 3);
        theirs.extend(p);
        counts.1 = c;
    }
    t.assert_unharmed();
    let _ = std::fs::remove_file(&t.facts("fds")[0][1]);
    let (o, oa, p, th) = (
        median(&mut ours),
        median(&mut ours_all),
        median(&mut pauses),
        median(&mut theirs),
    );
    println!(
        "## Capture of 1,000 threads, 10,000 fds, 10,000 mappings ({} runs each)\n",
        ours.len()
    );
    println!("pss saw {}; psutil saw {}\n", counts.0, counts.1);
    println!("| what | median | ratio to psutil |");
    println!("| --- | ---: | ---: |");
    println!(
        "| psutil: threads() + open_files() + memory_maps() | {:.1} ms | 1.00 |",
        us(th) / 1e3
    );
    println!(
        "| pss capture: threads, handles + names, VA space + file names | {:.1} ms | {:.2} |",
        us(o) / 1e3,
        us(o) / us(th)
    );
    println!(
        "| pss capture --all (adds registers, fd info, build-ids) | {:.1} ms | {:.2} |",
        us(oa) / 1e3,
        us(oa) / us(th)
    );
    println!(
        "| pss pause within that capture (1,001 threads) | {:.0} µs ({:.1} µs/thread) | |",
        us(p),
        us(p) / 1001.0
    );
    println!();
    let mid = |f: &dyn Fn(&pss::records::PerformanceCounters) -> Duration| {
        let mut v: Vec<Duration> = phases.iter().map(f).collect();
        median(&mut v)
    };
    println!(
        "Phases of `--all` (medians, from PSS_PERFORMANCE_COUNTERS): threads {:.1} ms (pause {:.1} ms), handles {:.1} ms, VA space {:.1} ms\n",
        us(mid(&|p| p.threads.wall)) / 1e3,
        us(mid(&|p| p.pause)) / 1e3,
        us(mid(&|p| p.handles.wall)) / 1e3,
        us(mid(&|p| p.va_space.wall)) / 1e3
    );
}

/// The peer: stop every thread one after the other with PTRACE_ATTACH (SIGSTOP), read its
/// registers, detach — as Breakpad and minidump-writer do.
fn attach_each(tids: &[i32]) -> Duration {
    let t0 = Instant::now();
    for &tid in tids {
        // SAFETY: ptrace/waitpid on our own child's threads with live buffers.
        unsafe {
            assert_eq!(libc::ptrace(libc::PTRACE_ATTACH, tid, 0, 0), 0);
            let mut status = 0;
            assert_eq!(libc::waitpid(tid, &mut status, libc::__WALL), tid);
            let mut regs = [0u8; 27 * 8];
            let mut iov = libc::iovec {
                iov_base: regs.as_mut_ptr().cast(),
                iov_len: regs.len(),
            };
            libc::ptrace(
                libc::PTRACE_GETREGSET,
                tid,
                libc::NT_PRSTATUS as usize,
                &mut iov as *mut libc::iovec,
            );
        }
    }
    for &tid in tids {
        // SAFETY: as above.
        unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, 0, 0) };
    }
    t0.elapsed()
}

fn pause_100() {
    let mut t = Target::spawn(exe(), &["threads", "99"]);
    let mut tids = t.parked_tids();
    tids.push(t.pid);
    let (mut ours, mut ours_full, mut ours_ctx, mut peer) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let _ = Snapshot::capture(
            PssTarget::Pid(t.pid),
            CaptureFlags::THREADS,
            ContextFlags::empty(),
        )
        .unwrap();
    }
    for _ in 0..51 {
        let s = Snapshot::capture(
            PssTarget::Pid(t.pid),
            CaptureFlags::THREADS,
            ContextFlags::empty(),
        )
        .unwrap();
        assert_eq!(s.capture_info().threads_stopped, 100);
        ours.push(s.capture_info().pause);
        let s = Snapshot::capture(
            PssTarget::Pid(t.pid),
            CaptureFlags::THREADS
                | CaptureFlags::THREAD_CONTEXT
                | CaptureFlags::THREAD_CONTEXT_EXTENDED,
            ContextFlags::FULL,
        )
        .unwrap();
        ours_full.push(s.capture_info().pause);
        let s = Snapshot::capture(
            PssTarget::Pid(t.pid),
            CaptureFlags::THREADS
                | CaptureFlags::THREAD_CONTEXT
                | CaptureFlags::THREAD_CONTEXT_EXTENDED,
            ContextFlags::ALL,
        )
        .unwrap();
        ours_ctx.push(s.capture_info().pause);
        peer.push(attach_each(&tids));
    }
    t.assert_unharmed();
    t.wake_parked_and_check();
    let (o, of, oc, p) = (
        median(&mut ours),
        median(&mut ours_full),
        median(&mut ours_ctx),
        median(&mut peer),
    );
    println!(
        "## Pause of a 100-thread target ({} runs each)\n",
        ours.len()
    );
    println!("| what | median pause | per thread | ratio to peer |");
    println!("| --- | ---: | ---: | ---: |");
    println!("| peer: PTRACE_ATTACH + waitpid + GETREGSET per thread, then detach all | {:.0} µs | {:.1} µs | 1.00 |", us(p), us(p) / 100.0);
    println!(
        "| pss THREADS (general registers) | {:.0} µs | {:.1} µs | {:.2} |",
        us(o),
        us(o) / 100.0,
        us(o) / us(p)
    );
    println!(
        "| pss THREADS + CONTEXT_FULL + XSTATE + signal mask | {:.0} µs | {:.1} µs | {:.2} |",
        us(of),
        us(of) / 100.0,
        us(of) / us(p)
    );
    println!("| pss THREADS + CONTEXT_ALL (adds 6 debug registers) + XSTATE + signal mask | {:.0} µs | {:.1} µs | {:.2} |", us(oc), us(oc) / 100.0, us(oc) / us(p));
    println!();
}

fn main() {
    // The bench is its own engine: no `pss-engine` need be built in release.
    pss_engine::main_if_requested();
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful: run only
    // when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("Command: cargo bench -p pss-testbed --bench capture\n");
    pause_100();
    big_target();
}
