//! The library again, as an example target: `cargo test` builds examples (but not a
//! cdylib-only library) before running tests, so this is how the C test programs get a
//! `libpss.so` of the current source (`target/<profile>/examples/libpss.so`).

#[path = "../src/api.rs"]
mod api;
#[path = "../src/context.rs"]
mod context;
#[path = "../src/convert.rs"]
mod convert;
#[path = "../src/export.rs"]
mod export;
#[path = "../src/marker.rs"]
mod marker;
#[path = "../src/process.rs"]
mod process;
#[path = "../src/registry.rs"]
mod registry;
#[path = "../src/shared.rs"]
mod shared;
#[path = "../src/types.rs"]
mod types;
