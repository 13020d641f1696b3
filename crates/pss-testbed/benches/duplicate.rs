//! Duplication benchmark (not a timed test): what `PssDuplicateSnapshot` into another
//! process costs. Run with:
//!
//! ```text
//! cargo bench -p pss-testbed --bench duplicate            # targets of 4 and 64 threads
//! cargo bench -p pss-testbed --bench duplicate -- 16      # chosen thread counts
//! ```
//!
//! For a target of N parked threads, captured with threads, contexts with XSAVE, auxiliary
//! pages (each thread's stack and TLS page), handles and the VA space, one run measures:
//! serializing and reading back the snapshot against a plain copy of the same bytes (the
//! floor), and installing the sealed memfd in the target plus closing it there (one thread
//! of it stopped for each injected call) against a `THREADS` capture of the same target
//! (the peer: the cheapest capture that stops it). Medians; the machine is noisy.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::Instant;

use pss::{CaptureFlags, ContextFlags, Snapshot, Target as PssTarget};
use pss_testbed::bench::{self, median};
use pss_testbed::harness::Target;

const RUNS: usize = 15;

fn ms(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e3
}

fn one(threads: usize) {
    let exe = Path::new(env!("CARGO_BIN_EXE_pss-testbed"));
    let mut target = Target::spawn(exe, &["threads", &threads.to_string()]);
    let flags = CaptureFlags::THREADS
        | CaptureFlags::THREAD_CONTEXT
        | CaptureFlags::THREAD_CONTEXT_EXTENDED
        | CaptureFlags::AUXILIARY_PAGES
        | CaptureFlags::HANDLES
        | CaptureFlags::HANDLE_NAME_INFORMATION
        | CaptureFlags::VA_SPACE
        | CaptureFlags::VA_SPACE_SECTION_INFORMATION;
    let snap =
        Snapshot::capture(PssTarget::Pid(target.pid), flags, ContextFlags::ALL).expect("capture");
    let bytes = snap.to_bytes();
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(target.pid).unwrap(),
        rustix::process::PidfdFlags::empty(),
    )
    .unwrap();

    let (mut copy, mut enc, mut dec, mut memfd) = (vec![], vec![], vec![], vec![]);
    let (mut install, mut close, mut capture) = (vec![], vec![], vec![]);
    for _ in 0..RUNS {
        copy.push(ms(|| drop(std::hint::black_box(bytes.clone()))));
        enc.push(ms(|| drop(std::hint::black_box(snap.to_bytes()))));
        dec.push(ms(|| drop(Snapshot::from_bytes(&bytes).unwrap())));
        let mut fd = None;
        memfd.push(ms(|| fd = Some(snap.to_memfd().unwrap().0)));
        let fd = fd.unwrap();
        let mut n = 0;
        install.push(ms(|| {
            n = pss::remote::install_fd(pidfd.as_fd(), fd.as_fd()).unwrap();
        }));
        close.push(ms(|| pss::remote::close_fd(pidfd.as_fd(), n).unwrap()));
        capture.push(ms(|| {
            Snapshot::capture(
                PssTarget::Pid(target.pid),
                CaptureFlags::THREADS,
                ContextFlags::empty(),
            )
            .unwrap();
        }));
    }
    target.wake_parked_and_check();
    let (copy, enc, dec) = (median(&mut copy), median(&mut enc), median(&mut dec));
    let (memfd, install, close) = (median(&mut memfd), median(&mut install), median(&mut close));
    let capture = median(&mut capture);
    println!(
        "{threads} threads, {:.2} MiB serialized: copy {copy:.3} ms | to_bytes {enc:.3} ({:.1}x) | from_bytes {dec:.3} ({:.1}x) | to_memfd {memfd:.3} | install {install:.3} + close {close:.3} ms | THREADS capture {capture:.3} ms (install/capture {:.2})",
        bytes.len() as f64 / (1 << 20) as f64,
        enc / copy,
        dec / copy,
        install / capture,
    );
}

fn main() {
    // The bench is its own engine: no `pss-engine` need be built in release.
    pss_engine::main_if_requested();
    let Some(counts) = bench::sizes_mib("duplicate", &[4, 64]) else {
        return;
    };
    for n in counts {
        one(n);
    }
}
