//! Names for addresses: function (demangled), file and line, inlined frames expanded — from
//! the DWARF of the module or of its separate debug file (found by build-id, in
//! `/usr/lib/debug/.build-id/` and the `PSS_DEBUG_PATH` directories, or through
//! `.gnu_debuglink`), else from its symbol table (`.symtab`, `.dynsym`). gimli's
//! `addr2line` reads the DWARF, from sections read (never mapped) with every size bounded
//! ([`super::elf_file`]); debug files are opened the careful way ([`files`]): a debuglink
//! name is a plain file name, a file beside the module is no link, and a debug file whose
//! build-id is not the module's is not used.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use object::{Object, ObjectSymbol};

use super::elf_file;
use super::name::Name;
use super::name_cache::DiskNames;
use pss_sys::files::{self, Links};

/// The DWARF reader: section bytes shared by the context.
type Reader = gimli::EndianArcSlice<gimli::RunTimeEndian>;

/// How frames are named: with debug information or symbol tables only, and where names
/// looked up are kept between runs ([`super::name_cache`]; `None`: nowhere).
#[derive(Debug, Clone)]
pub(crate) struct Naming {
    pub debug_info: bool,
    pub cache_dir: Option<PathBuf>,
}

/// What names one module's addresses. Nothing is read until an address is looked up that
/// the names kept on disk do not have.
pub(crate) struct Symbolizer {
    /// The files names come from: the separate debug file, then the module.
    sources: Vec<File>,
    /// Their DWARF and symbol tables, read on the first address not kept.
    read: OnceLock<Tables>,
    /// Whether DWARF is used (else symbol tables only).
    debug_info: bool,
    /// Names already looked up (a sampled stack meets the same addresses round after
    /// round).
    looked_up: Mutex<LookedUp>,
    /// Where they are kept between runs.
    disk: Option<DiskNames>,
}

/// Names already looked up, by stated address.
#[derive(Default)]
struct LookedUp {
    names: HashMap<u64, Arc<[Name]>>,
    /// Whether any is new since those kept on disk were read.
    new: bool,
}

/// What a module's files hold that names addresses.
struct Tables {
    /// DWARF of the debug file, or of the module itself.
    dwarf: Option<addr2line::Context<Reader>>,
    /// Function symbols by address, with their sizes (the debug file's, else the
    /// module's), sorted.
    symbols: Vec<(u64, u64, String)>,
}

/// The most addresses whose names a symbolizer keeps (about 100 bytes each, without the
/// names): past it, the cache starts again.
const MOST_CACHED: usize = 1 << 16;

impl Symbolizer {
    /// For the module open as `module`, mapped from `path` (already checked to have
    /// `build_id`); as `naming` says, its DWARF or its separate debug file's, else its
    /// symbol table only.
    pub fn new(
        module: Option<&File>,
        path: &Path,
        build_id: Option<&[u8]>,
        debuglink: Option<&[u8]>,
        naming: &Naming,
    ) -> Symbolizer {
        let debug = naming
            .debug_info
            .then(|| debug_file(path, build_id, debuglink))
            .flatten();
        let disk = match (naming.debug_info, &naming.cache_dir, build_id, module) {
            (true, Some(dir), Some(id), Some(m)) => {
                Some(DiskNames::new(dir, id, m, debug.as_ref()))
            }
            _ => None,
        };
        let kept = disk.as_ref().map(DiskNames::load).unwrap_or_default();
        let module = module.and_then(|m| m.try_clone().ok());
        Symbolizer {
            sources: debug.into_iter().chain(module).collect(),
            read: OnceLock::new(),
            debug_info: naming.debug_info,
            looked_up: Mutex::new(LookedUp {
                names: kept,
                new: false,
            }),
            disk,
        }
    }

    /// Whether the module's files were read (some address was not kept on disk).
    pub fn files_read(&self) -> bool {
        self.read.get().is_some()
    }

    /// The tables, read on first use.
    fn tables(&self) -> &Tables {
        self.read.get_or_init(|| {
            let mut out = Tables {
                dwarf: None,
                symbols: Vec::new(),
            };
            for file in &self.sources {
                let Ok(cache) = elf_file::open(file) else {
                    continue;
                };
                let Ok(elf) = object::File::parse(&cache) else {
                    continue;
                };
                if out.dwarf.is_none() && self.debug_info {
                    out.dwarf = load_dwarf(&elf, file);
                }
                if out.symbols.is_empty() {
                    out.symbols = function_symbols(&elf);
                }
            }
            out
        })
    }

    /// The symbol containing stated address `svma`: the nearest function symbol at or
    /// below it, if `svma` is inside it (or its size is unknown).
    fn find_symbol(&self, svma: u64) -> Option<&str> {
        let symbols = &self.tables().symbols;
        let i = symbols.partition_point(|(a, _, _)| *a <= svma);
        let (start, size, name) = &symbols[i.checked_sub(1)?];
        (*size == 0 || svma - start < *size).then_some(name.as_str())
    }

    /// The names of stated address `svma`, innermost first: inlined functions, then the one
    /// they were inlined into. Empty when nothing is known. Looked up once per address.
    pub fn names(&self, svma: u64) -> Arc<[Name]> {
        let mut looked_up = self.looked_up.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(names) = looked_up.names.get(&svma) {
            return names.clone();
        }
        if looked_up.names.len() >= MOST_CACHED {
            looked_up.names.clear();
        }
        let names: Arc<[Name]> = self.look_up(svma).into();
        looked_up.names.insert(svma, names.clone());
        looked_up.new = true;
        names
    }

    /// [`Symbolizer::names`], looked up.
    fn look_up(&self, svma: u64) -> Vec<Name> {
        let mut out = Vec::new();
        if let Some(ctx) = self.tables().dwarf.as_ref().filter(|_| self.debug_info) {
            // Split DWARF (.dwo) is not read: its frames come from the skeleton alone.
            if let Ok(mut frames) = ctx.find_frames(svma).skip_all_loads() {
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
        if let Some(s) = self.find_symbol(svma) {
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

impl Drop for Symbolizer {
    /// Keeps the names looked up on disk, if any is new.
    fn drop(&mut self) {
        let looked_up = self.looked_up.get_mut().unwrap_or_else(|p| p.into_inner());
        if let (Some(disk), true) = (&self.disk, looked_up.new) {
            disk.save(&looked_up.names);
        }
    }
}

/// The DWARF sections of `elf`, read from `file`, as an `addr2line` context.
fn load_dwarf<'d, R: object::ReadRef<'d>>(
    elf: &object::File<'d, R>,
    file: &File,
) -> Option<addr2line::Context<Reader>> {
    let endian = if elf.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    let load = |id: gimli::SectionId| -> Result<Reader, gimli::Error> {
        let bytes = match names_need(id) {
            true => elf_file::section(elf, file, id.name()),
            false => None,
        };
        Ok(gimli::EndianArcSlice::new(
            bytes.unwrap_or_else(|| Arc::from([])),
            endian,
        ))
    };
    let dwarf = gimli::Dwarf::load(load).ok()?;
    addr2line::Context::from_dwarf(dwarf).ok()
}

/// Whether naming addresses (functions, files, lines, inlined calls) reads section `id`:
/// not the location lists (often the largest, compressed, section of a debug file), macros
/// or type units, which gimli would otherwise load and decompress for nothing.
fn names_need(id: gimli::SectionId) -> bool {
    use gimli::SectionId as S;
    !matches!(
        id,
        S::DebugLoc | S::DebugLocLists | S::DebugMacinfo | S::DebugMacro | S::DebugTypes
    )
}

/// The function symbols of `elf` (its symbol table, else its dynamic one), sorted by
/// address.
fn function_symbols<'d, R: object::ReadRef<'d>>(
    elf: &object::File<'d, R>,
) -> Vec<(u64, u64, String)> {
    let collect = |syms: &mut dyn Iterator<Item = object::Symbol<'d, '_, R>>| {
        syms.filter(|s| s.kind() == object::SymbolKind::Text && s.is_definition())
            .filter(|s| s.address() != 0)
            .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
            .collect::<Vec<_>>()
    };
    let mut out = collect(&mut elf.symbols());
    if out.is_empty() {
        out = collect(&mut elf.dynamic_symbols());
    }
    out.sort_by_key(|(a, _, _)| *a);
    out.dedup_by_key(|(a, _, _)| *a);
    out
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

/// The separate debug file of the module at `path`, open: by build-id
/// (`DIR/.build-id/ab/cdef….debug`, links followed: the debug directories are the system's
/// or the user's), then by `.gnu_debuglink` — a plain file name, looked for beside the
/// module and in its `.debug/` (no link followed: the target chose those), and under each
/// debug directory at the module's own path. A file whose build-id is not the module's is
/// passed over.
fn debug_file(path: &Path, build_id: Option<&[u8]>, debuglink: Option<&[u8]>) -> Option<File> {
    let dirs = debug_dirs();
    let matches = |f: &File| match build_id {
        Some(id) => file_build_id(f).as_deref() == Some(id),
        None => true,
    };
    if let Some(id) = build_id.filter(|id| id.len() > 1) {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        for d in &dirs {
            let p = d
                .join(".build-id")
                .join(&hex[..2])
                .join(format!("{}.debug", &hex[2..]));
            if let Some(f) = files::open_regular(&p, Links::Follow).ok().filter(matches) {
                return Some(f);
            }
        }
    }
    let name = std::str::from_utf8(debuglink?).ok()?;
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    let dir = path.parent()?;
    let mut candidates = vec![
        (dir.join(name), Links::Refuse),
        (dir.join(".debug").join(name), Links::Refuse),
    ];
    for d in &dirs {
        let under = d.join(dir.strip_prefix("/").unwrap_or(dir)).join(name);
        candidates.push((under, Links::Follow));
    }
    candidates
        .into_iter()
        .filter(|(p, _)| p != path)
        .find_map(|(p, links)| files::open_regular(&p, links).ok().filter(matches))
}

/// The build-id of the ELF file `f`.
fn file_build_id(f: &File) -> Option<Vec<u8>> {
    let cache = elf_file::open(f).ok()?;
    let elf = object::File::parse(&cache).ok()?;
    elf.build_id().ok().flatten().map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs `cmd`, which must succeed.
    fn run(cmd: &mut Command) {
        let st = cmd.status().unwrap();
        assert!(st.success(), "{cmd:?}");
    }

    /// A module built in a directory of its own, its DWARF in a separate file beside it
    /// (`.gnu_debuglink`): the directory, the module, the debug file, and the address of
    /// its function `pss_named_here`.
    fn module_with_debug_file(name: &str) -> (PathBuf, PathBuf, PathBuf, u64) {
        let dir = std::env::temp_dir().join(format!("pss-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (src, module, debug) = (dir.join("m.c"), dir.join("m.so"), dir.join("m.debug"));
        std::fs::write(&src, "int pss_named_here(int x) { return x * 3 + 1; }\n").unwrap();
        run(Command::new("cc")
            .args(["-shared", "-fPIC", "-g", "-O0", "-o"])
            .arg(&module)
            .arg(&src));
        run(Command::new("objcopy")
            .arg("--only-keep-debug")
            .arg(&module)
            .arg(&debug));
        run(Command::new("objcopy")
            .arg("--strip-debug")
            .arg("--add-gnu-debuglink")
            .arg(&debug)
            .arg(&module));
        let file = files::open_regular(&module, Links::Refuse).unwrap();
        let cache = elf_file::open(&file).unwrap();
        let elf = object::File::parse(&cache).unwrap();
        let addr = elf
            .symbols()
            .find(|s| s.name() == Ok("pss_named_here"))
            .unwrap()
            .address();
        (dir, module, debug, addr)
    }

    /// The symbolizer of `module`, names kept in `cache_dir`.
    fn symbolizer(module: &Path, cache_dir: Option<&Path>) -> Symbolizer {
        let file = files::open_regular(module, Links::Refuse).unwrap();
        let cache = elf_file::open(&file).unwrap();
        let elf = object::File::parse(&cache).unwrap();
        let build_id = elf.build_id().unwrap().map(<[u8]>::to_vec);
        let link = elf.gnu_debuglink().unwrap().map(|(n, _)| n.to_vec());
        let naming = Naming {
            debug_info: true,
            cache_dir: cache_dir.map(Path::to_owned),
        };
        Symbolizer::new(
            Some(&file),
            module,
            build_id.as_deref(),
            link.as_deref(),
            &naming,
        )
    }

    /// The function and line `names` end with (the outermost).
    fn named(names: &[Name]) -> (Option<&str>, Option<u32>) {
        let last = names.last();
        (
            last.and_then(|n| n.function.as_deref()),
            last.and_then(|n| n.line),
        )
    }

    /// The debug file truncated to nothing once the symbolizer has read it: names still
    /// come, from the bytes read (a mapped file would have killed us with SIGBUS here).
    #[test]
    fn a_debug_file_truncated_meanwhile_costs_nothing() {
        let (dir, module, debug, addr) = module_with_debug_file("truncated");
        let symbolizer = symbolizer(&module, None);
        assert_eq!(named(&symbolizer.names(addr)).0, Some("pss_named_here"));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&debug)
            .unwrap()
            .set_len(0)
            .unwrap();
        let names = symbolizer.names(addr + 4);
        assert_eq!(
            named(&names),
            (Some("pss_named_here"), Some(1)),
            "from DWARF"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Names kept on disk: the next symbolizer of the same files names the same addresses
    /// without reading them; one of a module changed since reads them again, as does one
    /// whose kept file is damaged.
    #[test]
    fn names_kept_on_disk_spare_the_next_walker_reading_dwarf() {
        let (dir, module, _, addr) = module_with_debug_file("kept");
        let kept = dir.join("cache");
        let first = symbolizer(&module, Some(&kept));
        let want = first.names(addr + 4);
        assert_eq!(named(&want), (Some("pss_named_here"), Some(1)));
        assert!(first.files_read());
        drop(first);

        let second = symbolizer(&module, Some(&kept));
        assert_eq!(second.names(addr + 4), want);
        assert!(!second.files_read(), "named from the disk");
        // An address not kept: read then.
        assert_eq!(named(&second.names(addr)).0, Some("pss_named_here"));
        assert!(second.files_read());
        drop(second);

        for f in std::fs::read_dir(&kept).unwrap() {
            let f = f.unwrap().path();
            let text = std::fs::read_to_string(&f).unwrap();
            std::fs::write(
                &f,
                text.replace("pss_named_here", "forged") + "zz\tnot a line\n",
            )
            .unwrap();
        }
        let damaged = symbolizer(&module, Some(&kept));
        assert_eq!(damaged.names(addr + 4), want);
        assert!(damaged.files_read(), "a malformed file is not used");
        drop(damaged);

        // The module rewritten (same build-id, another inode): another pair of files.
        let bytes = std::fs::read(&module).unwrap();
        std::fs::remove_file(&module).unwrap();
        std::fs::write(&module, bytes).unwrap();
        let rebuilt = symbolizer(&module, Some(&kept));
        assert_eq!(rebuilt.names(addr + 4), want);
        assert!(rebuilt.files_read());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
