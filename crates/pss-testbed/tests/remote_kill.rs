//! The engine SIGKILLed inside the syscalls it injects to put an fd into another process
//! or close one there (a snapshot duplicated into a process, `pss::remote`): at each
//! point of each injection the target's threads keep their registers, interrupted
//! `read()` and blocked signals, and nothing traces it. (A test binary of its own: the
//! failpoint is set in this process's environment, which each new engine inherits.)

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use pss_testbed::harness::{blocked_signals, wait_for_state, Target};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

fn pidfd(pid: i32) -> OwnedFd {
    rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::PidfdFlags::empty(),
    )
    .unwrap()
}

#[test]
fn an_engine_killed_inside_an_fd_injection_leaves_the_target_whole() {
    // The main thread, blocked reading its commands on `[stack]`, is the one injected into.
    killed_at_every_point(Target::spawn(exe(), &["threads", "2"]));
}

#[test]
fn an_engine_killed_inside_an_injection_into_a_pthread_leaves_it_whole() {
    // No main thread: the injection goes into a thread blocked on its thread library's
    // stack, which must be recognised as its own for the injection to restore itself.
    let t = Target::spawn(exe(), &["leaderless", "2"]);
    wait_for_state(t.pid, 'Z');
    killed_at_every_point(t);
}

/// Installs an fd into `t` and closes it, the engine killed at each point of each
/// injection; `t`'s threads keep their state throughout.
fn killed_at_every_point(mut t: Target) {
    // The failpoint is this process's environment and the engine its own: one test at a time.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = blocked_signals(t.pid);
    let target = pidfd(t.pid);
    let file = std::fs::File::open("/dev/null").unwrap();
    // Without a failpoint, both work: an fd to close afterwards.
    let installed = pss::remote::install_fd(target.as_fd(), file.as_fd()).unwrap();
    for point in [
        "install:armed",
        "install:entered",
        "install:exited",
        "install:unmasked",
        "close:armed",
        "close:entered",
        "close:exited",
        "close:unmasked",
    ] {
        pss::shutdown_engine(std::time::Duration::from_secs(5));
        std::env::set_var("PSS_ENGINE_FAILPOINT", point);
        let result = if point.starts_with("install") {
            pss::remote::install_fd(target.as_fd(), file.as_fd()).map(drop)
        } else {
            pss::remote::close_fd(target.as_fd(), installed)
        };
        assert!(result.is_err(), "{point}: the engine was not killed");
        t.assert_unharmed();
        assert_eq!(
            blocked_signals(t.pid),
            before,
            "{point}: blocked signals changed"
        );
    }
    std::env::remove_var("PSS_ENGINE_FAILPOINT");
    pss::shutdown_engine(std::time::Duration::from_secs(5));
    t.wake_parked_and_check();
}
