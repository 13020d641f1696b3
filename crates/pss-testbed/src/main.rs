//! `pss-testbed MODE [ARGS]`: a target process that puts itself into a known state, prints
//! what it knows about itself (one `key value…` line each, then `ready`), and then obeys
//! commands on stdin:
//!
//! - `ping` → prints `pong` (proves the process still runs and reads its input; the main
//!   thread reads with known register values and checks them after every read, printing
//!   `main BAD …` and exiting 4 if one changed);
//! - `wake` → wakes the parked threads, which check their registers and print
//!   `thread I ok` (or `thread I BAD …`);
//! - `exit` or end of input → exits 0.
//!
//! Modes: `threads N`, `fds`, `regions`, `idle`, `many THREADS FDS MAPS`,
//! `exit-after MS THREADS`, `churn`, `vfork MS`, `tracer PID`, `sud` (syscall user dispatch on), `va MIB [thp] [sleep]
//! [seccomp] [uffd] [jit=NxKIB] [maps=N] [threads=N]` (see `va.rs` for its facts and extra
//! commands), `server MIB` (a TCP
//! server that answers with its pid, see `server.rs`), `strict` (one thread in seccomp
//! strict mode, answering `ping` only), `uffd-foreign` (memory registered with a userfaultfd
//! another process holds, see `uffd.rs`), `work BUSY PARKED` (busy threads counting the work they
//! do, answering `work` with it, see `work.rs`), `leaderless N` (as `threads N`, but the
//! main thread exits (`exit(2)`) once another thread reads the commands: a process
//! with no main thread left, where only thread library stacks are to be found).

use pss_testbed::reg_value;

mod fds;
mod park;
mod regions;
mod server;
mod uffd;
mod va;
mod work;

use std::io::Write;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("");
    let num = |i: usize, default: u64| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    say(&format!("pid {}", std::process::id()));
    let mut parked = park::Parked::default();
    match mode {
        "threads" => parked = park::Parked::spawn(num(1, 4) as usize),
        "leaderless" => {
            let parked = park::Parked::spawn(num(1, 2) as usize);
            std::thread::spawn(move || {
                serve(parked);
                std::process::exit(0)
            });
            // The raw exit of this thread only (pthread_exit would unwind through Rust's
            // main, which aborts): the process lives on in the others.
            // SAFETY: nothing of this thread's stack is shared with the others.
            unsafe { libc::syscall(libc::SYS_exit, 0) };
            unreachable!("exit(2) returned");
        }
        "fds" => {
            parked = park::Parked::spawn(1);
            fds::open_all(parked.tids[0]);
        }
        "regions" => regions::map_all(),
        "idle" => {}
        "many" => {
            parked = park::Parked::spawn(num(1, 1000) as usize);
            fds::open_many(num(2, 10_000) as usize);
            regions::map_many(num(3, 10_000) as usize);
        }
        "exit-after" => {
            parked = park::Parked::spawn(num(2, 100) as usize);
            let ms = num(1, 100);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(ms));
                std::process::exit(0);
            });
        }
        "churn" => {
            std::thread::spawn(|| loop {
                let _ =
                    std::thread::spawn(|| std::thread::sleep(Duration::from_micros(200))).join();
            });
        }
        "vfork" => park::vfork_in_thread(num(1, 2000)),
        "sud" => {
            // Syscall user dispatch on in the only thread, with the selector at ALLOW (so
            // every syscall still runs normally).
            static SELECTOR: u8 = 0;
            // SAFETY: prctl with a pointer to a static byte that lives forever.
            let r = unsafe {
                libc::prctl(
                    59,     // PR_SET_SYSCALL_USER_DISPATCH
                    1usize, // PR_SYS_DISPATCH_ON
                    0usize,
                    0usize,
                    &SELECTOR as *const u8,
                )
            };
            check(r as _, "PR_SET_SYSCALL_USER_DISPATCH");
        }
        "va" => {
            parked = park::Parked::spawn(2);
            va::setup(va::Options::parse(
                num(1, 0) as usize,
                &args[2.min(args.len())..],
            ));
        }
        "uffd-foreign" => {
            uffd::setup();
            parked = park::Parked::spawn(1);
        }
        "strict" => {
            // Only this thread, then seccomp strict mode: it may read, write and exit.
            say("ready");
            park::strict_mode_loop();
        }
        "server" => {
            parked = park::Parked::spawn(2);
            server::setup(num(1, 0) as usize);
        }
        "work" => parked = work::setup(num(1, 1) as usize, num(2, 99) as usize),
        "tracer" => {
            let pid = num(1, 0) as i32;
            // SAFETY: a plain PTRACE_SEIZE of a pid the test gave us; no pointers.
            let r = unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0) };
            if r != 0 {
                say(&format!("error seize {}", std::io::Error::last_os_error()));
            }
        }
        other => {
            eprintln!("pss-testbed: unknown mode {other:?}");
            std::process::exit(2);
        }
    }
    serve(parked);
}

/// Says `ready`, then obeys commands on stdin until `exit` or end of input.
fn serve(mut parked: park::Parked) {
    // Commands are read a byte at a time with known registers (checked after each read), so
    // that a capture injecting into the reading thread is checked too.
    let mut line = Vec::with_capacity(256);
    say("ready");
    loop {
        line.clear();
        loop {
            match park::read_byte_checked(0, park::MAIN_INDEX) {
                Ok(b'\n') => break,
                Ok(b) => line.push(b),
                // End of input: a read of 0 bytes.
                Err(e) if e.starts_with("ret=0 ") => return,
                Err(e) => {
                    say(&format!("main BAD {e}"));
                    std::process::exit(4);
                }
            }
        }
        match String::from_utf8_lossy(&line).trim() {
            "ping" => say("pong"),
            "wake" => parked.wake(),
            "exit" => break,
            cmd if va::command(cmd) => {}
            cmd if work::command(cmd) => {}
            _ => say("unknown command"),
        }
    }
}

/// Prints one protocol line and flushes.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Aborts the target with a message if a libc call failed.
pub fn check(r: libc::c_long, what: &str) -> libc::c_long {
    if r < 0 {
        eprintln!("pss-testbed: {what}: {}", std::io::Error::last_os_error());
        std::process::exit(3);
    }
    r
}
