//! SIGINT, SIGTERM and SIGHUP during a command: the capture in flight is ended as if the
//! command had died, the engine releases the target and frees every clone, a snapshot file
//! being saved is removed (one already saved is whole and stays), and the command exits
//! with 128 + the signal number (`docs/cli.md`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Snapshot files being written, whose partial file goes if a signal ends the command.
static SAVING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Set once a signal is being handled: the command's own error (its request ended by the
/// interruption) is then not reported; the signal thread exits.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Set by a command that captures a live process (not `pss show`, nor `pss stack FILE`):
/// only then is there a target to speak of.
static LIVE_TARGET: AtomicBool = AtomicBool::new(false);

/// Set by a command that reads a snapshot file and touches no process (`pss show`,
/// `pss stack FILE`).
static NO_TARGET: AtomicBool = AtomicBool::new(false);

/// Set while `pss stack --samples` samples: the first SIGINT or SIGTERM then ends
/// sampling (the profile so far is written, as `perf record` does); a second ends the
/// command.
static SAMPLING: AtomicBool = AtomicBool::new(false);

/// Set when a signal asked sampling to end.
static STOP_SAMPLING: AtomicBool = AtomicBool::new(false);

/// Notes that this command captures a live process.
pub fn live_target() {
    LIVE_TARGET.store(true, Ordering::SeqCst);
}

/// Notes that this command touches no process.
pub fn no_target() {
    NO_TARGET.store(true, Ordering::SeqCst);
}

/// Notes that this command samples until done or interrupted ([`sampling_stopped`]).
pub fn sampling() {
    SAMPLING.store(true, Ordering::SeqCst);
}

/// Whether a signal asked sampling to end.
pub fn sampling_stopped() -> bool {
    STOP_SAMPLING.load(Ordering::SeqCst)
}

/// How long the engine may take to release everything after a signal.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the thread that handles the signals.
pub fn install() -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("pss-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let graceful = sig == SIGINT || sig == SIGTERM;
                if graceful && SAMPLING.load(Ordering::SeqCst) && !sampling_stopped() {
                    STOP_SAMPLING.store(true, Ordering::SeqCst);
                    eprintln!("pss: sampling ends (signal again to quit at once)");
                    continue;
                }
                finish(sig);
            }
        })?;
    Ok(())
}

/// Notes that `path` is being saved (until [`saved`]).
pub fn saving(path: PathBuf) {
    SAVING.lock().unwrap_or_else(|p| p.into_inner()).push(path);
}

/// Notes that `path` was saved (or given up).
pub fn saved(path: &PathBuf) {
    SAVING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|p| p != path);
}

/// If a signal is being handled, waits for its thread to end the command (the failure
/// the caller was about to report is the interruption's doing).
pub fn wait_if_interrupted() {
    while INTERRUPTED.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn finish(sig: i32) -> ! {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let released = pss::interrupt_engine(RELEASE_TIMEOUT);
    for path in SAVING.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = std::fs::remove_file(pss::Snapshot::partial_path(path));
    }
    let name = match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "SIGHUP",
    };
    if NO_TARGET.load(Ordering::SeqCst) {
        eprintln!("pss: interrupted by {name}");
    } else if !LIVE_TARGET.load(Ordering::SeqCst) {
        // Still reading its arguments or files: no engine was asked for anything yet.
        eprintln!(
            "pss: interrupted by {name} before any capture began (nothing was stopped or cloned)"
        );
    } else if released {
        eprintln!(
            "pss: interrupted by {name}; the target was released, and no clone of it is left"
        );
    } else {
        eprintln!(
            "pss: interrupted by {name}; the engine is still releasing the target (it finishes by itself)"
        );
    }
    std::process::exit(128 + sig);
}
