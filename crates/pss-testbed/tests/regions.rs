//! The address space: every kind of region at the addresses the target chose, and the free
//! gaps between them.

use std::path::{Path, PathBuf};

use procfs_core::FromRead;
use pss::records::{MemState, MemType, MemoryRegion, PageProtection};
use pss::{CaptureFlags, ContextFlags, QueryClass, QueryInfo, Snapshot, Target as PssTarget};
use pss_testbed::harness::Target;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pss-testbed"))
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

fn at(regions: &[MemoryRegion], base: u64) -> &MemoryRegion {
    regions
        .iter()
        .find(|r| r.base_address == base)
        .unwrap_or_else(|| panic!("no region at {base:#x}"))
}

#[test]
fn every_region_kind_and_the_gaps_between_them() {
    let mut t = Target::spawn(exe(), &["regions"]);
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::VA_SPACE | CaptureFlags::VA_SPACE_SECTION_INFORMATION,
        ContextFlags::empty(),
    )
    .unwrap();
    t.assert_unharmed();
    let regions = snap.va_space().unwrap();

    for f in t.facts("region") {
        let (base, len) = (hex(&f[1]), f[2].parse::<u64>().unwrap());
        let r = at(regions, base);
        assert_eq!(r.region_size, len, "{} region at {base:#x}", f[0]);
        match f[0].as_str() {
            "private" => {
                assert_eq!(
                    (r.state, r.mem_type, r.protect),
                    (
                        MemState::Commit,
                        MemType::Private,
                        PageProtection::READWRITE
                    )
                );
                assert_eq!(r.allocation_base, base);
                assert_eq!(r.section, None, "private memory has no section");
            }
            "gap" => {
                assert_eq!((r.state, r.mem_type), (MemState::Free, MemType::None));
                assert_eq!(r.linux, None);
            }
            "reserve" => {
                assert_eq!((r.state, r.mem_type), (MemState::Reserve, MemType::Private));
                assert_eq!(r.allocation_protect, PageProtection::NOACCESS);
            }
            "file" => {
                assert_eq!(
                    (r.state, r.mem_type, r.protect),
                    (MemState::Commit, MemType::Mapped, PageProtection::READONLY)
                );
                let sec = r.section.as_ref().expect("section information");
                let name = f[3..].join(" ");
                assert_eq!(sec.mapped_file_name.as_deref(), Some(Path::new(&name)));
                assert_eq!(sec.image_base, 0, "not an image");
            }
            "shared" => {
                assert_eq!(
                    (r.state, r.mem_type, r.protect),
                    (MemState::Commit, MemType::Mapped, PageProtection::READWRITE)
                );
                assert_eq!(&r.linux.as_ref().unwrap().perms, b"rw-s");
            }
            other => panic!("unknown region kind {other}"),
        }
    }

    // The executable is an image: its mappings share the load base as allocation base,
    // one of them is executable, and the build-id is read from memory.
    let exe_path = PathBuf::from(&t.facts("exe")[0][0]);
    let image: Vec<&MemoryRegion> = regions
        .iter()
        .filter(|r| {
            r.section
                .as_ref()
                .and_then(|s| s.mapped_file_name.as_deref())
                == Some(exe_path.as_path())
        })
        .collect();
    assert!(image.len() >= 2, "{image:?}");
    let base = image[0].base_address;
    for r in &image {
        assert_eq!(r.mem_type, MemType::Image);
        assert_eq!(r.allocation_base, base);
        let sec = r.section.as_ref().unwrap();
        assert_eq!(sec.image_base, base);
        assert_eq!(
            u64::from(sec.size_of_image),
            image.last().unwrap().base_address + image.last().unwrap().region_size - base
        );
        assert!(sec.build_id.as_ref().is_some_and(|b| !b.is_empty()));
    }
    assert!(image
        .iter()
        .any(|r| r.protect == PageProtection::EXECUTE_READ));

    // The walk covers the address space up to the user top without holes or overlaps.
    #[cfg(target_arch = "x86_64")]
    let top = 0x7fff_ffff_f000u64;
    #[cfg(target_arch = "aarch64")]
    let top = 0x1_0000_0000_0000u64;
    let mut expect = 0;
    for r in regions.iter().filter(|r| r.base_address < top) {
        assert_eq!(
            r.base_address, expect,
            "hole or overlap before {:#x}",
            r.base_address
        );
        expect = r.base_address + r.region_size;
    }
    assert_eq!(expect, top, "the last region reaches the top of user space");

    // Oracle: every mapping the kernel lists is a non-free region, in order.
    let maps =
        procfs_core::process::MemoryMaps::from_file(format!("/proc/{}/maps", t.pid)).unwrap();
    let mapped: Vec<(u64, u64)> = regions
        .iter()
        .filter(|r| r.state != MemState::Free)
        .map(|r| (r.base_address, r.base_address + r.region_size))
        .collect();
    let oracle: Vec<(u64, u64)> = maps.0.iter().map(|m| m.address).collect();
    assert_eq!(mapped, oracle);
    match snap.query(QueryClass::VaSpaceInformation).unwrap() {
        QueryInfo::VaSpace { region_count } => assert_eq!(region_count as usize, regions.len()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_section_information_there_are_no_file_names() {
    let mut t = Target::spawn(exe(), &["regions"]);
    let snap = Snapshot::capture(
        PssTarget::Pid(t.pid),
        CaptureFlags::VA_SPACE,
        ContextFlags::empty(),
    )
    .unwrap();
    t.assert_unharmed();
    assert!(snap.va_space().unwrap().iter().all(|r| r.section.is_none()));
    assert!(snap.threads().is_none(), "no threads were asked for");
    assert_eq!(
        snap.capture_info().pause,
        std::time::Duration::ZERO,
        "nothing needed stopping"
    );
}
