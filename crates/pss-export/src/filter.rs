//! Which mappings a core holds: the bits of `/proc/PID/coredump_filter` (core(5)) and the
//! kernel's rules for applying them (`vma_dump_size` in `fs/coredump.c`).

use pss_types::error::{Error, Result};

bitflags::bitflags! {
    /// The bits of `/proc/PID/coredump_filter`, with the kernel's values.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct DumpFilter: u32 {
        /// Private anonymous memory, and private file mappings that were written.
        const ANON_PRIVATE = 1 << 0;
        /// Shared memory with no name (`MAP_SHARED|MAP_ANONYMOUS`, SysV shm, memfds, deleted files).
        const ANON_SHARED = 1 << 1;
        /// Private file mappings, written or not.
        const FILE_PRIVATE = 1 << 2;
        /// Shared file mappings.
        const FILE_SHARED = 1 << 3;
        /// The first page of each mapping that starts with an ELF header (so that a debugger
        /// can match the modules).
        const ELF_HEADERS = 1 << 4;
        /// Private hugetlbfs memory.
        const HUGETLB_PRIVATE = 1 << 5;
        /// Shared hugetlbfs memory.
        const HUGETLB_SHARED = 1 << 6;
        /// Private DAX mappings.
        const DAX_PRIVATE = 1 << 7;
        /// Shared DAX mappings.
        const DAX_SHARED = 1 << 8;
    }
}

/// The named sets `--filter` accepts, with what they hold.
pub const NAMED_FILTERS: &[(&str, DumpFilter, &str)] = &[
    (
        "default",
        DumpFilter::KERNEL_DEFAULT,
        "the kernel's default (0x33): anonymous memory, ELF headers, private huge pages",
    ),
    (
        "anon",
        DumpFilter::ANON_PRIVATE.union(DumpFilter::ANON_SHARED),
        "anonymous memory only (0x3): heaps, stacks, shared memory",
    ),
    (
        "all",
        DumpFilter::all(),
        "every mapping, file mappings too (0x1ff): a core that needs no files to read",
    ),
];

/// The bit names `--filter` accepts, joined with `+` or `,`.
pub const BIT_NAMES: &[(&str, DumpFilter)] = &[
    ("anon-private", DumpFilter::ANON_PRIVATE),
    ("anon-shared", DumpFilter::ANON_SHARED),
    ("file-private", DumpFilter::FILE_PRIVATE),
    ("file-shared", DumpFilter::FILE_SHARED),
    ("elf-headers", DumpFilter::ELF_HEADERS),
    ("hugetlb-private", DumpFilter::HUGETLB_PRIVATE),
    ("hugetlb-shared", DumpFilter::HUGETLB_SHARED),
    ("dax-private", DumpFilter::DAX_PRIVATE),
    ("dax-shared", DumpFilter::DAX_SHARED),
];

impl DumpFilter {
    /// The kernel's default filter, 0x33.
    pub const KERNEL_DEFAULT: DumpFilter = DumpFilter::ANON_PRIVATE
        .union(DumpFilter::ANON_SHARED)
        .union(DumpFilter::ELF_HEADERS)
        .union(DumpFilter::HUGETLB_PRIVATE);

    /// Parses a filter: a number as `coredump_filter` holds it (hexadecimal, with or without
    /// `0x`), a named set (`default`, `anon`, `all`), or bit names joined with `+` or `,`
    /// (`anon-private+elf-headers`).
    pub fn parse(text: &str) -> Result<DumpFilter> {
        let text = text.trim();
        if let Some((_, f, _)) = NAMED_FILTERS.iter().find(|(n, _, _)| *n == text) {
            return Ok(*f);
        }
        let hex = text.strip_prefix("0x").unwrap_or(text);
        if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return u32::from_str_radix(hex, 16)
                .ok()
                .and_then(DumpFilter::from_bits)
                .ok_or_else(|| bad_filter(text));
        }
        text.split(['+', ','])
            .map(|name| {
                BIT_NAMES
                    .iter()
                    .find(|(n, _)| *n == name.trim())
                    .map(|(_, f)| *f)
                    .ok_or_else(|| bad_filter(text))
            })
            .try_fold(DumpFilter::empty(), |acc, f| Ok(acc | f?))
    }

    /// The filter in a `coredump_filter` file's text (`00000033\n`); unknown bits dropped.
    pub(crate) fn from_proc(text: &[u8]) -> Option<DumpFilter> {
        let s = std::str::from_utf8(text).ok()?.trim();
        u32::from_str_radix(s, 16)
            .ok()
            .map(DumpFilter::from_bits_truncate)
    }
}

fn bad_filter(text: &str) -> Error {
    let names: Vec<&str> = NAMED_FILTERS
        .iter()
        .map(|(n, _, _)| *n)
        .chain(BIT_NAMES.iter().map(|(n, _)| *n))
        .collect();
    Error::InvalidParameter(format!(
        "core filter {text:?}: give a coredump_filter value in hex (0x33), or one of {}, \
         or bit names joined with '+'",
        names.join(", ")
    ))
}

/// How much of one mapping a core holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpExtent {
    /// None of it: the segment has no bytes in the file (`p_filesz` 0).
    Nothing,
    /// Its first page: the ELF header of a module.
    FirstPage,
    /// All of it.
    Whole,
}

/// What the dump decision needs to know of a mapping.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MappingKind<'a> {
    /// The `maps` path or pseudo-name.
    pub pathname: &'a [u8],
    /// Backed by a file (an inode).
    pub file: bool,
    /// `MAP_SHARED`.
    pub shared: bool,
    /// Readable.
    pub readable: bool,
    /// The file offset.
    pub offset: u64,
    /// It holds anonymous or swapped pages (a private mapping that was written).
    pub written: bool,
    /// VmFlags `dd`.
    pub dont_dump: bool,
    /// VmFlags `io`/`pf`.
    pub io: bool,
    /// VmFlags `ht`.
    pub hugetlb: bool,
}

/// The kernel's decision (`vma_dump_size`) for one mapping under `filter`. `elf_magic`
/// says whether the mapping starts with an ELF header; it is asked only when that matters.
pub(crate) fn extent(
    m: &MappingKind<'_>,
    filter: DumpFilter,
    elf_magic: impl FnOnce() -> bool,
) -> DumpExtent {
    use DumpExtent::{FirstPage, Nothing, Whole};
    let whole_if = |bit: DumpFilter| if filter.contains(bit) { Whole } else { Nothing };
    if m.pathname == b"[vdso]" || m.pathname == b"[vsyscall]" {
        return Whole;
    }
    if m.dont_dump {
        return Nothing;
    }
    if m.hugetlb {
        return whole_if(if m.shared {
            DumpFilter::HUGETLB_SHARED
        } else {
            DumpFilter::HUGETLB_PRIVATE
        });
    }
    if m.io {
        return Nothing;
    }
    if m.shared {
        // The kernel asks whether the file has no links left (`i_nlink == 0`): shared
        // anonymous memory, SysV shm, memfds and deleted files, which maps marks so.
        let unlinked = !m.file || m.pathname.ends_with(b" (deleted)");
        return whole_if(if unlinked {
            DumpFilter::ANON_SHARED
        } else {
            DumpFilter::FILE_SHARED
        });
    }
    if m.written && filter.contains(DumpFilter::ANON_PRIVATE) {
        return Whole;
    }
    if !m.file {
        return Nothing;
    }
    if filter.contains(DumpFilter::FILE_PRIVATE) {
        return Whole;
    }
    if filter.contains(DumpFilter::ELF_HEADERS) && m.offset == 0 && m.readable && elf_magic() {
        return FirstPage;
    }
    Nothing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anon() -> MappingKind<'static> {
        MappingKind {
            pathname: b"",
            file: false,
            shared: false,
            readable: true,
            offset: 0,
            written: true,
            dont_dump: false,
            io: false,
            hugetlb: false,
        }
    }

    #[test]
    fn parses_numbers_names_and_bits() {
        assert_eq!(DumpFilter::parse("0x33").unwrap().bits(), 0x33);
        assert_eq!(DumpFilter::parse("33").unwrap().bits(), 0x33);
        assert_eq!(DumpFilter::parse("all").unwrap().bits(), 0x1ff);
        assert_eq!(
            DumpFilter::parse("default").unwrap(),
            DumpFilter::KERNEL_DEFAULT
        );
        assert_eq!(
            DumpFilter::parse("anon-private+elf-headers")
                .unwrap()
                .bits(),
            0x11
        );
        assert!(DumpFilter::parse("0x400").is_err());
        assert!(DumpFilter::parse("everything").is_err());
        assert_eq!(DumpFilter::from_proc(b"00000033\n").unwrap().bits(), 0x33);
    }

    #[test]
    fn follows_the_kernel() {
        let f = DumpFilter::KERNEL_DEFAULT;
        let yes = || true;
        assert_eq!(extent(&anon(), f, yes), DumpExtent::Whole);
        let untouched = MappingKind {
            written: false,
            ..anon()
        };
        assert_eq!(extent(&untouched, f, yes), DumpExtent::Nothing);
        let lib = MappingKind {
            pathname: b"/usr/lib/libc.so.6",
            file: true,
            written: false,
            ..anon()
        };
        assert_eq!(extent(&lib, f, yes), DumpExtent::FirstPage);
        assert_eq!(extent(&lib, f, || false), DumpExtent::Nothing);
        let data = MappingKind {
            offset: 0x1000,
            written: true,
            ..lib
        };
        assert_eq!(extent(&data, f, yes), DumpExtent::Whole);
        let text = MappingKind {
            offset: 0x1000,
            ..lib
        };
        assert_eq!(extent(&text, f, yes), DumpExtent::Nothing);
        assert_eq!(extent(&text, DumpFilter::all(), yes), DumpExtent::Whole);
        let shm = MappingKind {
            pathname: b"/memfd:x (deleted)",
            shared: true,
            ..lib
        };
        assert_eq!(extent(&shm, f, yes), DumpExtent::Whole);
        let shared_file = MappingKind {
            pathname: b"/data/db",
            ..shm
        };
        assert_eq!(extent(&shared_file, f, yes), DumpExtent::Nothing);
        let vvar = MappingKind {
            pathname: b"[vvar]",
            io: true,
            dont_dump: true,
            ..anon()
        };
        assert_eq!(extent(&vvar, DumpFilter::all(), yes), DumpExtent::Nothing);
        let vdso = MappingKind {
            pathname: b"[vdso]",
            ..vvar
        };
        assert_eq!(extent(&vdso, DumpFilter::empty(), yes), DumpExtent::Whole);
        let dd = MappingKind {
            dont_dump: true,
            ..anon()
        };
        assert_eq!(extent(&dd, DumpFilter::all(), yes), DumpExtent::Nothing);
    }
}
