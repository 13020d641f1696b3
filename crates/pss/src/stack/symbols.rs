//! Names for addresses: function (demangled), file and line, inlined frames expanded — from
//! the DWARF of the module or of its separate debug file (found by build-id, in
//! `/usr/lib/debug/.build-id/` and the `PSS_DEBUG_PATH` directories, or through
//! `.gnu_debuglink`), else from its symbol table (`.symtab`, `.dynsym`). The reading is
//! gimli's `addr2line`.

use std::path::{Path, PathBuf};

/// One name an address has: the function, and where in the source, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    pub function: Option<String>,
    pub file: Option<PathBuf>,
    pub line: Option<u32>,
}

/// What names one module's addresses.
pub(crate) struct Symbolizer {
    /// DWARF (and symbols) of the debug file, or of the module itself.
    dwarf: Option<addr2line::Loader>,
    /// The module itself, for its symbol table when the debug file has none.
    module: Option<addr2line::Loader>,
    /// Whether DWARF is used (else symbol tables only).
    debug_info: bool,
}

impl Symbolizer {
    /// For the module at `path` (already checked to have `build_id`); with `debug_info`,
    /// its DWARF or its separate debug file's, else its symbol table only.
    pub fn new(
        path: &Path,
        build_id: Option<&[u8]>,
        debuglink: Option<&[u8]>,
        debug_info: bool,
    ) -> Symbolizer {
        let debug = debug_info
            .then(|| debug_file(path, build_id, debuglink))
            .flatten();
        let dwarf = addr2line::Loader::new(debug.as_deref().unwrap_or(path)).ok();
        let module = debug
            .is_some()
            .then(|| addr2line::Loader::new(path).ok())
            .flatten();
        Symbolizer {
            dwarf,
            module,
            debug_info,
        }
    }

    /// The names of stated address `svma`, innermost first: inlined functions, then the one
    /// they were inlined into. Empty when nothing is known.
    pub fn names(&self, svma: u64) -> Vec<Name> {
        let mut out = Vec::new();
        if let Some(loader) = self.dwarf.as_ref().filter(|_| self.debug_info) {
            if let Ok(mut frames) = loader.find_frames(svma) {
                while let Ok(Some(f)) = frames.next() {
                    let function = f
                        .function
                        .as_ref()
                        .and_then(|n| n.demangle().ok())
                        .map(|n| n.into_owned());
                    let (file, line) = f
                        .location
                        .map_or((None, None), |l| (l.file.map(PathBuf::from), l.line));
                    out.push(Name {
                        function,
                        file,
                        line,
                    });
                }
            }
        }
        if out.iter().any(|n| n.function.is_some()) {
            return out;
        }
        // No DWARF names: the symbol table's.
        let symbol = [&self.dwarf, &self.module]
            .into_iter()
            .flatten()
            .find_map(|l| l.find_symbol(svma));
        if let Some(s) = symbol {
            let function = Some(addr2line::demangle_auto(s.into(), None).into_owned());
            match out.last_mut() {
                Some(last) => last.function = function,
                None => out.push(Name {
                    function,
                    file: None,
                    line: None,
                }),
            }
        }
        out
    }
}

/// The directories separate debug files are looked for in: `/usr/lib/debug`, then those in
/// `$PSS_DEBUG_PATH` (colon-separated).
pub(crate) fn debug_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/usr/lib/debug")];
    if let Some(list) = std::env::var_os("PSS_DEBUG_PATH") {
        dirs.extend(std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()));
    }
    dirs
}

/// The separate debug file of the module at `path`: by build-id
/// (`DIR/.build-id/ab/cdef….debug`), then by `.gnu_debuglink` (beside the module, in its
/// `.debug/`, and under each debug directory at the module's own path).
fn debug_file(path: &Path, build_id: Option<&[u8]>, debuglink: Option<&[u8]>) -> Option<PathBuf> {
    let dirs = debug_dirs();
    if let Some(id) = build_id.filter(|id| id.len() > 1) {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        for d in &dirs {
            let p = d
                .join(".build-id")
                .join(&hex[..2])
                .join(format!("{}.debug", &hex[2..]));
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let name = std::str::from_utf8(debuglink?).ok()?;
    let dir = path.parent()?;
    let mut candidates = vec![dir.join(name), dir.join(".debug").join(name)];
    for d in &dirs {
        candidates.push(d.join(dir.strip_prefix("/").unwrap_or(dir)).join(name));
    }
    candidates.into_iter().find(|p| p.is_file() && p != path)
}
