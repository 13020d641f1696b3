//! An engine killed in the middle of an export (a test binary of its own: the engine is
//! the process's, and killing it would end the other tests' captures too). The clone dies
//! with it; the export says so and leaves no file; the next engine reaps the clone's zombie
//! in the target, which is unharmed.

use std::path::Path;
use std::time::{Duration, Instant};

use pss::export::{self, ExportOptions, Format};
use pss::{ContextFlags, Snapshot, Target as PssTarget};
use pss_testbed::harness::{children_of, Target, TempDir};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

fn capture(t: &Target) -> Snapshot {
    Snapshot::capture(
        PssTarget::Pid(t.pid),
        export::CAPTURE_FLAGS,
        ContextFlags::ALL,
    )
    .expect("capture for an export")
}

fn assert_no_children(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !children_of(pid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "children left in {pid}: {:?}",
            children_of(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_engine_killed_mid_write_is_a_clear_error_and_leaves_nothing() {
    let mut t = Target::spawn(exe(), &["va", "64"]);
    let snap = capture(&t);
    let engine = pss::engine_pid().unwrap();
    let dir = TempDir::new("engine");
    let mut killed = false;
    let mut kill_half_way = |p: export::Progress| {
        if !killed && p.done > p.total / 4 {
            // The engine this process started, by pid.
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(engine).unwrap(),
                rustix::process::Signal::KILL,
            )
            .unwrap();
            killed = true;
        }
    };
    let mut opts = ExportOptions {
        progress: Some(&mut kill_half_way),
        ..Default::default()
    };
    let err =
        export::write_file(&snap, Format::Core, &dir.join("core"), false, &mut opts).unwrap_err();
    assert!(killed);
    assert!(matches!(err, pss::Error::CloneVanished { .. }), "{err}");
    assert!(dir.names().is_empty(), "{:?}", dir.names());
    drop(snap);
    // The clone died with its engine; the next engine reaps its zombie (from the ledger).
    pss::cleanup(Some(t.pid)).unwrap();
    assert_no_children(t.pid);
    t.assert_unharmed();
    t.wake_parked_and_check();
}
