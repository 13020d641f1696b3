//! `PSS_VA_SPACE_ENTRY` records from `/proc/PID/maps`, with the free gaps between mappings,
//! so that a walk covers the address space the way `VirtualQuery` would.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use pss_sys::elf;
use pss_sys::mem::ProcMem;
use pss_sys::procfs::maps::{self, MapLine};
use pss_sys::procfs::ProcDir;
use pss_trace::arch::{USER_ADDRESS_END, USER_ADDRESS_END_LA57};
use pss_types::error::Result;
use pss_types::records::{
    MemState, MemType, MemoryRegion, PageProtection, RegionLinux, SectionInformation,
};

type FileKey = (u32, u32, u64);

/// A `maps` line's path as the file system knows it (`\012` back to a newline).
fn path_of(l: &MapLine<'_>) -> OsString {
    OsString::from_vec(maps::unescape(l.pathname).into_owned())
}

/// Reads the address space of the process behind `dir`. With `sections`, file-backed
/// regions get their file name, and images their load base, extent and build-id.
///
/// `extra` holds more `maps` lines to merge in: the target's `MADV_DONTFORK` mappings when
/// `dir` is a VA clone, which lacks them.
pub fn capture(dir: &mut ProcDir, sections: bool, extra: &[u8]) -> Result<Vec<MemoryRegion>> {
    let pid = dir.pid();
    let buf = dir.read("maps")?.to_vec();
    let mut lines: Vec<MapLine<'_>> = maps::parse(&buf).collect();
    if !extra.is_empty() {
        lines.extend(maps::parse(extra));
        lines.sort_by_key(|l| l.start);
        lines.dedup_by_key(|l| l.start);
    }

    // A file is an image if one of its private mappings is executable (how the ELF loader
    // maps executables and libraries).
    let images: std::collections::HashSet<FileKey> = lines
        .iter()
        .filter(|l| l.is_file() && l.exec() && !l.shared())
        .map(key)
        .collect();
    let is_image = |l: &MapLine<'_>| {
        (l.is_file() && !l.shared() && images.contains(&key(l))) || l.pathname == b"[vdso]"
    };

    // Allocation base of each line: images run from their offset-0 mapping through every
    // following mapping of the same file; everything else is its own allocation.
    let mut alloc_base = Vec::with_capacity(lines.len());
    let mut current: Option<(FileKey, u64)> = None;
    for l in &lines {
        let base = if is_image(l) {
            match current {
                Some((k, b)) if k == key(l) && l.offset != 0 => b,
                _ => {
                    current = Some((key(l), l.start));
                    l.start
                }
            }
        } else {
            current = None;
            l.start
        };
        alloc_base.push(base);
    }
    let mut image_end: HashMap<u64, u64> = HashMap::new();
    for (l, &b) in lines.iter().zip(&alloc_base) {
        if is_image(l) {
            let e = image_end.entry(b).or_insert(l.end);
            *e = (*e).max(l.end);
        }
    }
    let protect_at: HashMap<u64, PageProtection> =
        lines.iter().map(|l| (l.start, protection(l))).collect();

    let mem = if sections {
        ProcMem::open(pid).ok()
    } else {
        None
    };
    let mut build_ids: HashMap<u64, Option<Vec<u8>>> = HashMap::new();

    let top = if lines
        .iter()
        .any(|l| l.end > USER_ADDRESS_END && l.start < USER_ADDRESS_END_LA57)
    {
        USER_ADDRESS_END_LA57
    } else {
        USER_ADDRESS_END
    };
    let mut out = Vec::with_capacity(lines.len() * 2 + 1);
    let mut prev_end = 0u64;
    for (l, &base) in lines.iter().zip(&alloc_base) {
        // Mappings above the user top ([vsyscall]) follow the gap that closes the space.
        let gap_end = l.start.min(top);
        if gap_end > prev_end {
            out.push(free(prev_end, gap_end));
        }
        let image = is_image(l);
        let mem_type = if image {
            MemType::Image
        } else if l.shared() || l.is_file() || is_kernel_mapping(l.pathname) {
            MemType::Mapped
        } else {
            MemType::Private
        };
        let reserve = mem_type == MemType::Private && &l.perms[..3] == b"---";
        let section =
            (sections && (mem_type != MemType::Private) && !l.pathname.is_empty()).then(|| {
                let mut s = SectionInformation {
                    mapped_file_name: Some(PathBuf::from(path_of(l))),
                    ..SectionInformation::default()
                };
                if image {
                    s.image_base = base;
                    s.size_of_image = u32::try_from(image_end[&base] - base).unwrap_or(u32::MAX);
                    s.build_id = build_ids
                        .entry(base)
                        .or_insert_with(|| {
                            mem.as_ref()
                                .and_then(|m| elf::build_id(base, |a, b| m.read_exact(a, b)))
                        })
                        .clone();
                }
                s
            });
        out.push(MemoryRegion {
            base_address: l.start,
            allocation_base: base,
            allocation_protect: protect_at
                .get(&base)
                .copied()
                .unwrap_or_else(|| protection(l)),
            region_size: l.end - l.start,
            state: if reserve {
                MemState::Reserve
            } else {
                MemState::Commit
            },
            protect: if reserve {
                PageProtection::NONE
            } else {
                protection(l)
            },
            mem_type,
            section,
            linux: Some(RegionLinux {
                perms: l.perms,
                offset: l.offset,
                dev: (l.dev_major, l.dev_minor),
                inode: l.inode,
                pathname: path_of(l),
            }),
        });
        prev_end = prev_end.max(l.end);
    }
    if prev_end < top {
        out.push(free(prev_end, top));
    }
    Ok(out)
}

fn key(l: &MapLine<'_>) -> FileKey {
    (l.dev_major, l.dev_minor, l.inode)
}

fn protection(l: &MapLine<'_>) -> PageProtection {
    PageProtection::from_perms(l.read(), l.write(), l.exec(), !l.shared() && l.is_file())
}

fn is_kernel_mapping(name: &[u8]) -> bool {
    name.starts_with(b"[vvar") || name == b"[vsyscall]" || name == b"[uprobes]"
}

fn free(start: u64, end: u64) -> MemoryRegion {
    MemoryRegion {
        base_address: start,
        allocation_base: 0,
        allocation_protect: PageProtection::NONE,
        region_size: end - start,
        state: MemState::Free,
        protect: PageProtection::NOACCESS,
        mem_type: MemType::None,
        section: None,
        linux: None,
    }
}
