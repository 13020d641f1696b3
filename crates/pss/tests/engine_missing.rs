//! What a caller hears when its engine cannot be found or is not an engine. (A test binary
//! of its own: the engine path is process-wide.)

#[test]
fn a_missing_or_foreign_engine_is_a_clear_error() {
    let missing = "/nonexistent/pss-engine";
    pss::set_engine_path(Some(missing.into()));
    let e = pss::engine_pid().unwrap_err();
    assert!(matches!(e, pss::Error::Engine { .. }), "{e:?}");
    assert!(e.to_string().contains(missing), "{e}");
    assert!(e.to_string().contains("could not be started"), "{e}");

    // An executable that is no engine: it exits without a greeting.
    pss::set_engine_path(Some("/bin/true".into()));
    let e = pss::Snapshot::capture(
        pss::Target::Pid(std::process::id() as i32),
        pss::CaptureFlags::THREADS,
        pss::ContextFlags::empty(),
    )
    .unwrap_err();
    assert!(matches!(e, pss::Error::Engine { .. }), "{e:?}");
    assert!(e.to_string().contains("/bin/true"), "{e}");
    assert!(e.to_string().contains("is it a pss engine"), "{e}");
}
