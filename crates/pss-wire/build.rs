//! Gives pss a build id: a hash of the sources of every crate that speaks or serves the
//! engine protocol (the plain types, the Linux layers, this wire, the engine, the caller's
//! library). A caller and an engine process refuse each other unless their build ids agree
//! (`docs/engine.md`), so a stale `pss-engine` left beside a newer library is never used.

use std::path::Path;

/// The crates whose sources make the id, relative to this one.
const SOURCES: [&str; 6] = [
    "../pss-types/src",
    "../pss-sys/src",
    "../pss-trace/src",
    "src",
    "../pss-engine/src",
    "../pss/src",
];

fn hash_tree(dir: &Path, h: &mut u64) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable source tree")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            hash_tree(&path, h);
        } else {
            let name = path.to_string_lossy().into_owned();
            for b in name
                .bytes()
                .chain(std::fs::read(&path).expect("readable source"))
            {
                *h ^= u64::from(b);
                *h = h.wrapping_mul(0x100_0000_01b3);
            }
        }
    }
}

fn main() {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for dir in SOURCES {
        hash_tree(Path::new(dir), &mut h);
        println!("cargo:rerun-if-changed={dir}");
    }
    for b in env!("CARGO_PKG_VERSION").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    println!("cargo:rustc-env=PSS_BUILD_ID={h:016x}");
    println!("cargo:rerun-if-changed=build.rs");
}
