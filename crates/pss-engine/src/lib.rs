//! The engine process: where every ptrace call, wait, injection, clone and free happens.
//!
//! A caller (the library in an application, libpss, the `pss` command) never traces
//! anything itself: ptrace binds tracees to the tracing *process*, whose every
//! `waitpid(-1)` would see their stops and which would get a `SIGCHLD` for each. So the
//! library starts one private engine per calling process (`pss`'s client), talks to it
//! over a socket pair ([`pss_wire::proto`]) and receives the snapshot's records plus
//! descriptors to read the clone's memory. The engine exits when its caller is gone,
//! after freeing every clone it held for it (`docs/engine.md`).
//!
//! Any executable can serve as the engine: `pss-engine` (this crate's binary) does, and so
//! does any program that calls [`main_if_requested`] first thing in `main` (the `pss`
//! command does, so it needs no second file).

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod capture;
mod pump;
mod remote;
mod session;

use pss_wire::proto::SERVE_ARG;

/// Makes the calling executable able to serve as the capture engine, so the library can
/// start it instead of looking for `pss-engine` (`docs/engine.md`, "Finding the engine").
///
/// Call it first thing in `main`, before any thread starts. When the process was started
/// as an engine (`EXE --pss-engine-serve FD`), it serves its caller and exits without
/// returning; otherwise it returns at once.
pub fn main_if_requested() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() == Some(SERVE_ARG.as_ref()) {
        let sock = args
            .next()
            .and_then(|a| a.to_str().and_then(|s| s.parse::<i32>().ok()))
            .filter(|&fd| fd > 2)
            .and_then(pss_sys::take_inherited_fd);
        let Some(sock) = sock else {
            eprintln!("pss-engine: {SERVE_ARG} needs the number of an open socket");
            std::process::exit(2);
        };
        std::process::exit(session::serve(sock));
    }
    pss_wire::proto::mark_self_serving();
}
