//! libpss's SONAME: `libpss.so.MAJOR`, so that programs linked against one version keep
//! working with any later one of the same major (docs/capi.md, "Versions").
//!
//! A program linked against `target/PROFILE/libpss.so` asks the loader for
//! `libpss.so.MAJOR`; so that the README's "from a build tree" recipe runs without an
//! install, the link `libpss.so.MAJOR -> libpss.so` is made beside it (dangling until the
//! library is built, which this script runs just before).

use std::path::{Path, PathBuf};

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets it");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpss.so.{major}");
    if let Some(dir) = profile_dir() {
        let link = dir.join(format!("libpss.so.{major}"));
        if std::fs::read_link(&link).is_err() {
            let _ = std::fs::remove_file(&link);
            let _ = std::os::unix::fs::symlink("libpss.so", &link);
        }
    }
}

/// `target/PROFILE` (or `target/TRIPLE/PROFILE`): three levels above this script's
/// `OUT_DIR` (`…/build/pss-capi-HASH/out`).
fn profile_dir() -> Option<PathBuf> {
    let out = PathBuf::from(std::env::var_os("OUT_DIR")?);
    let dir = out.ancestors().nth(3)?.to_path_buf();
    (dir.join("build") == out.ancestors().nth(2).map(Path::to_path_buf)?).then_some(dir)
}
