//! The engine process as its callers meet it: started on first use as nobody's child in
//! the caller, one per calling process, gone (with everything it held) when the caller
//! lets it go. (These tests also make cargo build `pss-engine`, which every other test
//! binary of the workspace finds beside it.)

use std::time::{Duration, Instant};

fn stat_field(pid: i32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(n - 3).map(str::to_string)
}

#[test]
fn the_engine_is_no_child_of_ours_and_leaves_when_we_let_it_go() {
    let engine = pss::engine_pid().expect("an engine starts");
    let me = std::process::id() as i32;
    assert_ne!(engine, me);
    assert_eq!(pss::engine_pid().unwrap(), engine, "one engine per process");
    let ppid: i32 = stat_field(engine, 4).unwrap().parse().unwrap();
    assert_ne!(ppid, me, "the engine must not be our child");
    let comm = std::fs::read_to_string(format!("/proc/{engine}/comm")).unwrap();
    assert_eq!(comm.trim(), "pss-engine");
    // Its own session: a Ctrl-C at our terminal never reaches it.
    assert_eq!(
        stat_field(engine, 6).unwrap(),
        engine.to_string(),
        "session id"
    );
    let started = Instant::now();
    assert!(pss::shutdown_engine(Duration::from_secs(5)));
    assert!(started.elapsed() < Duration::from_secs(5));
    let state = stat_field(engine, 3);
    assert!(
        matches!(state.as_deref(), None | Some("Z") | Some("X")),
        "engine {engine} still runs: {state:?}"
    );
    // The next request starts a new one.
    let again = pss::engine_pid().unwrap();
    assert_ne!(again, engine);
    assert!(pss::shutdown_engine(Duration::from_secs(5)));
}
