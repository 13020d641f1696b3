//! This process's vDSO: the kernel's image, the same in every process of the host, which
//! stacks read unwind data from when a target's thread is stopped inside it.

/// A copy of this process's vDSO image (`AT_SYSINFO_EHDR`, as long as its `[vdso]`
/// mapping), or `None` where there is none.
pub fn own_image() -> Option<Vec<u8>> {
    // SAFETY: getauxval only reads the auxiliary vector.
    let base = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } as u64;
    if base == 0 {
        return None;
    }
    let maps = std::fs::read(format!("/proc/{}/maps", std::process::id())).ok()?;
    let line = super::procfs::maps::parse(&maps).find(|m| m.start == base)?;
    let len = usize::try_from(line.end - line.start).ok()?;
    // SAFETY: the kernel maps the vDSO readable at `base` for `len` bytes for the life of
    // the process, and never changes it.
    let image = unsafe { std::slice::from_raw_parts(base as *const u8, len) };
    Some(image.to_vec())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_vdso_is_an_elf_image() {
        let image = super::own_image().expect("a vDSO");
        assert!(image.starts_with(b"\x7fELF"));
    }
}
