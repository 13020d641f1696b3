//! Just enough ELF to find an image's build-id in memory.

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const NT_GNU_BUILD_ID: u32 = 3;
const MAX_PHNUM: usize = 256;
const MAX_NOTE: usize = 64 * 1024;

/// Whether `header` starts with the ELF magic.
pub fn is_elf(header: &[u8]) -> bool {
    header.starts_with(b"\x7fELF")
}

/// The GNU build-id of the 64-bit ELF image loaded at `base`, reading memory through `read`
/// (which fills the buffer from an address and says whether it could).
pub fn build_id(base: u64, read: impl Fn(u64, &mut [u8]) -> bool) -> Option<Vec<u8>> {
    let mut eh = [0u8; 64];
    if !read(base, &mut eh) || !is_elf(&eh) || eh[4] != 2 {
        return None;
    }
    let phoff = u64::from_le_bytes(eh[0x20..0x28].try_into().ok()?);
    let phentsize = usize::from(u16::from_le_bytes([eh[0x36], eh[0x37]]));
    let phnum = usize::from(u16::from_le_bytes([eh[0x38], eh[0x39]]));
    if phentsize < 56 || phnum == 0 || phnum > MAX_PHNUM {
        return None;
    }
    let mut ph = vec![0u8; phentsize * phnum];
    if !read(base.checked_add(phoff)?, &mut ph) {
        return None;
    }
    let field =
        |p: &[u8], off: usize| u64::from_le_bytes(p[off..off + 8].try_into().expect("8 bytes"));
    let headers: Vec<(u32, u64, u64)> = ph
        .chunks_exact(phentsize)
        .map(|p| {
            (
                u32::from_le_bytes(p[0..4].try_into().expect("4 bytes")),
                field(p, 16),
                field(p, 32),
            )
        })
        .collect();
    let first_load = headers
        .iter()
        .filter(|h| h.0 == PT_LOAD)
        .map(|h| h.1)
        .min()?;
    let bias = base.wrapping_sub(first_load & !0xfff);
    for &(_, vaddr, filesz) in headers.iter().filter(|h| h.0 == PT_NOTE) {
        let len = usize::try_from(filesz).ok()?.min(MAX_NOTE);
        let mut notes = vec![0u8; len];
        if !read(bias.wrapping_add(vaddr), &mut notes) {
            continue;
        }
        if let Some(id) = find_build_id(&notes) {
            return Some(id);
        }
    }
    None
}

fn find_build_id(mut notes: &[u8]) -> Option<Vec<u8>> {
    let align4 = |n: usize| (n + 3) & !3;
    while notes.len() >= 12 {
        let namesz = u32::from_le_bytes(notes[0..4].try_into().ok()?) as usize;
        let descsz = u32::from_le_bytes(notes[4..8].try_into().ok()?) as usize;
        let ntype = u32::from_le_bytes(notes[8..12].try_into().ok()?);
        let name_end = 12 + align4(namesz);
        let desc_end = name_end + align4(descsz);
        if desc_end > notes.len() {
            return None;
        }
        if ntype == NT_GNU_BUILD_ID && &notes[12..12 + namesz] == b"GNU\0" {
            return Some(notes[name_end..name_end + descsz].to_vec());
        }
        notes = &notes[desc_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_note() {
        let mut n = Vec::new();
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&1u32.to_le_bytes());
        n.extend_from_slice(b"XYZ\0abcd");
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&3u32.to_le_bytes());
        n.extend_from_slice(&3u32.to_le_bytes());
        n.extend_from_slice(b"GNU\0\x01\x02\x03\0");
        assert_eq!(find_build_id(&n), Some(vec![1, 2, 3]));
    }

    #[test]
    fn own_executable_has_a_build_id() {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let line = maps
            .lines()
            .find(|l| l.ends_with(exe.to_str().unwrap()))
            .unwrap();
        let base = u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap();
        let mem = crate::mem::ProcMem::open(std::process::id() as i32).unwrap();
        let id = build_id(base, |a, b| mem.read_exact(a, b));
        // rustc-built test binaries carry a GNU build-id on Linux.
        assert!(id.is_some_and(|v| !v.is_empty()));
    }
}
