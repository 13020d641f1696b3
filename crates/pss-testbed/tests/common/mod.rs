//! What the export tests share: the target program, a capture for an export, waiting for
//! the clone's reap, and an export that kills a process half way.

#![allow(dead_code)] // each test binary uses its own part

use std::path::Path;
use std::time::{Duration, Instant};

use pss::{ContextFlags, Snapshot, Target as PssTarget};
use pss_export::{self as export, ExportOptions, Format};
use pss_testbed::harness::{children_of, Target};

/// The test-bed target program.
pub fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

/// A capture of `t` with what an export wants.
pub fn capture(t: &Target) -> Snapshot {
    Snapshot::capture(
        PssTarget::Pid(t.pid),
        export::CAPTURE_FLAGS,
        ContextFlags::ALL,
    )
    .expect("capture for an export")
}

/// Waits (bounded) until `pid` has no child: the clone was freed and reaped.
pub fn assert_no_children(pid: i32) {
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

/// Writes a core of `snap` to `path`, sending SIGKILL to `victim` (a process the test
/// made, by pid) once a quarter is written; returns the export's error.
pub fn write_core_killing(snap: &Snapshot, path: &Path, victim: i32) -> pss::Error {
    let mut killed = false;
    let mut kill_on_the_way = |p: export::Progress| {
        if !killed && p.done > p.total / 4 {
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(victim).unwrap(),
                rustix::process::Signal::KILL,
            )
            .unwrap();
            killed = true;
        }
    };
    let mut opts = ExportOptions {
        progress: Some(&mut kill_on_the_way),
        ..Default::default()
    };
    let err = export::write_file(snap, Format::Core, path, false, &mut opts)
        .expect_err("the export fails");
    assert!(killed, "{victim} was not killed: the export ended first");
    err
}
