//! Finding the engine's executable (`docs/engine.md`, "Finding the engine"), first match
//! wins:
//!
//! 1. a path set with [`set_engine_path`];
//! 2. `$PSS_ENGINE` (ignored in a setuid or file-capability program);
//! 3. the running executable itself, if it called `pss_engine::main_if_requested`
//!    (the `pss` command does);
//! 4. `pss-engine` beside the object holding this code (`libpss.so`, or the executable a
//!    Rust program was linked into), then in `../libexec/` from there;
//! 5. `pss-engine` beside the running executable;
//! 6. for either directory, when it is a cargo `deps` or `examples` directory (tests and
//!    examples in a cargo build), one directory up;
//! 7. `pss-engine` in a directory of `$PATH`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use pss_types::error::{Error, Result};

/// The engine executable's name.
pub const ENGINE_NAME: &str = "pss-engine";

static EXPLICIT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Uses the executable at `path` as the engine from the next engine start on (the
/// current engine, if any, keeps serving). `None` goes back to looking for it.
pub fn set_engine_path(path: Option<PathBuf>) {
    *EXPLICIT.lock().unwrap_or_else(|p| p.into_inner()) = path;
}

/// The engine to start, or an error naming every place looked at.
pub(super) fn engine_path() -> Result<PathBuf> {
    if let Some(p) = EXPLICIT.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        return Ok(p);
    }
    if !pss_sys::is_secure_exec() {
        if let Some(p) = std::env::var_os("PSS_ENGINE").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
    }
    if pss_wire::proto::self_serving() {
        return Ok(PathBuf::from("/proc/self/exe"));
    }
    let looked = candidates();
    looked
        .iter()
        .find(|p| pss_sys::is_executable(p))
        .cloned()
        .ok_or_else(|| Error::Engine {
            what: format!(
                "no {ENGINE_NAME} executable found (looked at {}); install it beside libpss or the program, put it in $PATH, or set $PSS_ENGINE (docs/engine.md)",
                looked
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

/// Steps 4 to 7, in order.
fn candidates() -> Vec<PathBuf> {
    let object = pss_sys::own_object_path();
    let exe = std::env::current_exe().ok();
    let dirs: Vec<&Path> = [object.as_deref(), exe.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(Path::parent)
        .collect();
    let mut out = Vec::new();
    if let Some(dir) = object.as_deref().and_then(Path::parent) {
        out.push(dir.join(ENGINE_NAME));
        out.push(dir.join("../libexec").join(ENGINE_NAME));
    }
    out.extend(dirs.iter().map(|d| d.join(ENGINE_NAME)));
    for dir in &dirs {
        let cargo_subdir = matches!(
            dir.file_name().and_then(|n| n.to_str()),
            Some("deps" | "examples")
        );
        if let Some(up) = dir.parent().filter(|_| cargo_subdir) {
            out.push(up.join(ENGINE_NAME));
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    out.extend(std::env::split_paths(&path).map(|d| d.join(ENGINE_NAME)));
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}
