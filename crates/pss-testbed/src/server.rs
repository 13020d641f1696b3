//! `server MIB`: a TCP server on loopback, for the tests that kill a capture at many
//! points. It announces `port N`, keeps MIB MiB of touched memory (so a clone takes a while
//! to make), parks two threads (see [`crate::park`]), and answers every connection with
//! `pid P` — its own pid, so that a copy of it (a clone let loose) answering on its
//! listening socket would give itself away — then closes it. It also reaps any child it
//! has, by `waitpid(-1)` without `__WALL`, as servers do, and says `reaped PID` for each.

use std::io::Write;
use std::net::TcpListener;

use crate::say;

/// Starts the server; returns after announcing the port.
pub fn setup(mib: usize) {
    // Each page filled with its number (a page at a time: a debug build under emulation
    // took over 10 s byte by byte).
    let mut memory = vec![0u8; mib << 20];
    for (i, page) in memory.chunks_mut(4096).enumerate() {
        page.fill(i as u8);
    }
    std::mem::forget(memory);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        let pid = std::process::id();
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = writeln!(conn, "pid {pid}");
        }
    });
    std::thread::spawn(|| loop {
        let mut status = 0;
        // SAFETY: waitpid on any child, as a server's reaper thread does; status is live.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid > 0 {
            say(&format!("reaped {pid}"));
        } else {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    say(&format!("port {port}"));
}
