//! libpss's SONAME: `libpss.so.MAJOR`, so that programs linked against one version keep
//! working with any later one of the same major (docs/capi.md, "Versions").

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets it");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpss.so.{major}");
}
