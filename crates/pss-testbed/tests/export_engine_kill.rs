//! An engine killed in the middle of an export (a test binary of its own: the engine is
//! the process's, and killing it would end the other tests' captures too). The clone dies
//! with it; the export says so and leaves no file; the next engine reaps the clone's zombie
//! in the target, which is unharmed.

use pss_testbed::harness::{Target, TempDir};

mod common;
use common::{assert_no_children, capture, exe};

#[test]
fn an_engine_killed_mid_write_is_a_clear_error_and_leaves_nothing() {
    let mut t = Target::spawn(exe(), &["va", "64"]);
    let snap = capture(&t);
    let engine = pss::engine_pid().unwrap();
    let dir = TempDir::new("engine");
    // The engine this process started.
    let err = common::write_core_killing(&snap, &dir.join("core"), engine);
    assert!(matches!(err, pss::Error::CloneVanished { .. }), "{err}");
    assert!(dir.names().is_empty(), "{:?}", dir.names());
    drop(snap);
    // The clone died with its engine; the next engine reaps its zombie (from the ledger).
    pss::cleanup(Some(t.pid)).unwrap();
    assert_no_children(t.pid);
    t.assert_unharmed();
    t.wake_parked_and_check();
}
