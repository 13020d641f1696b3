//! The engine executable is started by the library, never by hand: run without its socket it
//! says what it is and exits 2. (This test also makes `cargo test` build
//! `target/PROFILE/pss-engine`, which the library's tests and libpss start.)

use std::process::Command;

#[test]
fn run_by_hand_it_says_what_it_is_and_exits_2() {
    for args in [
        &[][..],
        &["--pss-engine-serve"][..],
        &["--pss-engine-serve", "1"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_pss-engine"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("pss-engine: "), "{args:?}: {err}");
    }
}
