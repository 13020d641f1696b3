//! threads: list the threads of a process, with where each one is (pss from Rust).
//!
//! ```sh
//! cargo run --release -p pss --example threads -- PID
//! ```

use pss::{CaptureFlags, ContextFlags, Snapshot, Target};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // This program is also its engine: no pss-engine file to install beside it.
    pss_engine::main_if_requested();
    let pid: i32 = std::env::args()
        .nth(1)
        .ok_or("usage: threads PID")?
        .parse()?;
    let flags = CaptureFlags::THREADS | CaptureFlags::THREAD_CONTEXT;
    let snap = Snapshot::capture(Target::Pid(pid), flags, ContextFlags::ALL)?;
    let threads = snap.threads().unwrap_or_default();
    let pause = snap.capture_info().pause;
    println!(
        "{} thread(s), paused {} µs",
        threads.len(),
        pause.as_micros()
    );
    for t in threads {
        let regs = t
            .context
            .as_ref()
            .map(|c| c.general.named())
            .unwrap_or_default();
        let pc = regs.iter().find(|(name, _)| matches!(*name, "rip" | "pc"));
        let name = t.linux.name.to_string_lossy();
        println!(
            "thread {} {name}: pc {:#x}",
            t.thread_id,
            pc.map_or(0, |r| r.1)
        );
    }
    Ok(())
}
