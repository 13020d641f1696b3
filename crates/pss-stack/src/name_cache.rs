//! Names already looked up, kept on disk between runs: reading a module's DWARF costs tens
//! of milliseconds (libc's separate debug file is 4 MB of compressed sections, then every
//! compilation unit's header is parsed), while the addresses a process's threads sit at —
//! `read`, `epoll_wait`, `futex` and their callers — are the same run after run. So each
//! address named from DWARF is written, with its names, to a file of the user's cache
//! directory; a later walker that finds every address it needs there never reads DWARF.
//!
//! A file is for one exact pair of files: its name holds the module's build-id and a hash
//! of the module's and the debug file's identity (device, inode, size, modification time),
//! and its first line the same in full — a rebuilt, stripped or replaced module, or a debug
//! file installed since, is another pair, another file. Files are written whole (a
//! temporary file renamed), read only if they are regular files of ours, by `pread`, at most
//! [`MOST_BYTES`]; anything malformed is ignored. The directory keeps its newest
//! [`MOST_FILES`] files.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::name::Name;
use pss_sys::files::{self, Links};

/// What the first line of a file starts with (its format's version).
const MAGIC: &str = "pss-names 1";

/// The most bytes of a file read.
const MOST_BYTES: u64 = 16 << 20;

/// The most addresses a file keeps.
const MOST_ADDRESSES: usize = 1 << 14;

/// The most files the directory keeps (the oldest go first).
const MOST_FILES: usize = 512;

/// The directory names are kept in: `$PSS_CACHE_DIR` (empty: none), else
/// `$XDG_CACHE_HOME/pss/names`, else `$HOME/.cache/pss/names`.
pub(crate) fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PSS_CACHE_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir).join("names"));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(std::env::var_os("HOME")?).join(".cache")))?;
    Some(base.join("pss").join("names"))
}

/// One pair of files' names on disk.
pub(crate) struct DiskNames {
    /// The file.
    path: PathBuf,
    /// The pair's identity, the file's first line.
    identity: String,
}

impl DiskNames {
    /// The names file in `dir` of the module with `build_id`, open as `module`, named from
    /// `debug` (its separate debug file) if any.
    pub fn new(dir: &Path, build_id: &[u8], module: &File, debug: Option<&File>) -> DiskNames {
        let id = |f: Option<&File>| match f.and_then(|f| f.metadata().ok()) {
            Some(m) => format!(
                "{}:{}:{}:{}",
                m.dev(),
                m.ino(),
                m.size(),
                m.mtime_nsec() + m.mtime() * 1_000_000_000
            ),
            None => "-".into(),
        };
        let hex: String = build_id.iter().map(|b| format!("{b:02x}")).collect();
        let identity = format!("{MAGIC} {hex} {} {}", id(Some(module)), id(debug));
        let mut h = std::collections::hash_map::DefaultHasher::new();
        identity.hash(&mut h);
        DiskNames {
            path: dir.join(format!("{hex}-{:016x}", h.finish())),
            identity,
        }
    }

    /// The names the file holds (none if it is missing, not ours, or not for this pair).
    pub fn load(&self) -> HashMap<u64, Arc<[Name]>> {
        let mut out = HashMap::new();
        let Ok(file) = files::open_regular(&self.path, Links::Refuse) else {
            return out;
        };
        let ours = file
            .metadata()
            .is_ok_and(|m| m.uid() == rustix::process::geteuid().as_raw());
        let Some(text) = ours.then(|| read_bounded(&file)).flatten() else {
            return out;
        };
        let mut lines = text.lines();
        if lines.next() != Some(self.identity.as_str()) {
            return out;
        }
        let mut chain: Option<(u64, Vec<Name>)> = None;
        for line in lines {
            let Some((svma, name)) = parse(line) else {
                return HashMap::new();
            };
            match &mut chain {
                Some((at, names)) if *at == svma => names.push(name),
                _ => {
                    if let Some((at, names)) = chain.take() {
                        out.insert(at, names.into());
                    }
                    chain = Some((svma, vec![name]));
                }
            }
        }
        if let Some((at, names)) = chain {
            out.insert(at, names.into());
        }
        out
    }

    /// Writes `names` (up to [`MOST_ADDRESSES`]), whole or not at all; failures are
    /// ignored (it is a cache).
    pub fn save(&self, names: &HashMap<u64, Arc<[Name]>>) {
        let Some(dir) = self.path.parent() else {
            return;
        };
        if std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .is_err()
        {
            return;
        }
        let mut text = format!("{}\n", self.identity);
        for (svma, chain) in names.iter().take(MOST_ADDRESSES) {
            for n in chain.iter() {
                let _ = writeln!(
                    text,
                    "{svma:x}\t{}\t{}\t{}",
                    n.line.map_or("-".into(), |l| l.to_string()),
                    n.file
                        .as_deref()
                        .map_or("-".into(), |f| escape(&f.to_string_lossy())),
                    n.function.as_deref().map_or("-".into(), escape),
                );
            }
        }
        let partial = self
            .path
            .with_extension(format!("partial-{}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .and_then(|()| std::fs::rename(&partial, &self.path));
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        prune(dir);
    }
}

/// The file's text, if it is at most [`MOST_BYTES`] of UTF-8.
fn read_bounded(file: &File) -> Option<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    file.take(MOST_BYTES + 1).read_to_end(&mut buf).ok()?;
    if buf.len() as u64 > MOST_BYTES {
        return None;
    }
    String::from_utf8(buf).ok()
}

/// One line, `SVMA\tLINE\tFILE\tFUNCTION` (`-` for none).
fn parse(line: &str) -> Option<(u64, Name)> {
    let mut parts = line.splitn(4, '\t');
    let svma = u64::from_str_radix(parts.next()?, 16).ok()?;
    let field = |s: &str| (s != "-").then(|| unescape(s));
    let line = parts.next()?;
    let line = (line != "-").then(|| line.parse().ok()).flatten();
    let file = field(parts.next()?).map(PathBuf::from);
    let function = field(parts.next()?);
    Some((
        svma,
        Name {
            function,
            file,
            line,
        },
    ))
}

/// `s` with backslashes, tabs and newlines escaped, and a lone `-` written `\-`.
fn escape(s: &str) -> String {
    if s == "-" {
        return "\\-".into();
    }
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// [`escape`] undone.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Removes the oldest files of `dir` past [`MOST_FILES`].
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(i64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.mtime(), e.path())))
        .collect();
    if files.len() <= MOST_FILES {
        return;
    }
    files.sort();
    for (_, p) in &files[..files.len() - MOST_FILES] {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_survive_the_trip_whatever_they_hold() {
        let names = [
            Name {
                function: Some("f\tg\\h\nx".into()),
                file: Some(PathBuf::from("/a b/c.c")),
                line: Some(7),
            },
            Name {
                function: Some("-".into()),
                file: None,
                line: None,
            },
        ];
        for n in &names {
            let line = format!(
                "10\t{}\t{}\t{}",
                n.line.map_or("-".into(), |l| l.to_string()),
                n.file
                    .as_deref()
                    .map_or("-".into(), |f| escape(&f.to_string_lossy())),
                n.function.as_deref().map_or("-".into(), escape),
            );
            assert!(!line.contains('\n'));
            assert_eq!(parse(&line), Some((0x10, n.clone())));
        }
        assert_eq!(parse("zz\t1\t-\tf"), None);
        assert_eq!(parse("10\t1"), None);
    }
}
