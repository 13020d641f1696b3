//! `/proc/PID/smaps`: each mapping's `maps` line, the `VmFlags` the VA clone needs (the
//! mappings a fork does not copy) and those a core dump needs (what the kernel leaves out),
//! and the counters that tell whether a private mapping was written.

use super::maps::{self, MapLine};
use super::{dec_u64, trim};

/// One mapping of an `smaps` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmapsVma<'a> {
    /// Its header, which is its `maps` line.
    pub map: MapLine<'a>,
    /// The header line as the kernel wrote it.
    pub line: &'a [u8],
    /// `MADV_DONTFORK` (VmFlags `dc`): absent from a fork's child.
    pub dont_fork: bool,
    /// `MADV_WIPEONFORK` (VmFlags `wf`): zeros in a fork's child.
    pub wipe_on_fork: bool,
    /// `MADV_DONTDUMP` or a kernel mapping never dumped (VmFlags `dd`).
    pub dont_dump: bool,
    /// An I/O mapping (VmFlags `io`, `pf`: device memory, `[vvar]`), never dumped.
    pub io: bool,
    /// A hugetlbfs mapping (VmFlags `ht`).
    pub hugetlb: bool,
    /// Registered with a userfaultfd (VmFlags `um` missing, `uw` write-protect, `ui`
    /// minor faults): a fork may wait for whoever reads that userfaultfd.
    pub userfaultfd: bool,
    /// Bytes of anonymous pages (`Anonymous:`): a private file mapping with some was written.
    pub anonymous: u64,
    /// Bytes swapped out (`Swap:`).
    pub swap: u64,
}

/// The mappings of an `smaps` file, in order.
pub fn vmas(buf: &[u8]) -> Vec<SmapsVma<'_>> {
    let mut out: Vec<SmapsVma<'_>> = Vec::new();
    for line in buf.split(|&c| c == b'\n') {
        if let Some(flags) = line.strip_prefix(b"VmFlags:") {
            if let Some(v) = out.last_mut() {
                for f in flags.split(|&c| c == b' ') {
                    v.dont_fork |= f == b"dc";
                    v.wipe_on_fork |= f == b"wf";
                    v.dont_dump |= f == b"dd";
                    v.io |= f == b"io" || f == b"pf";
                    v.hugetlb |= f == b"ht";
                    v.userfaultfd |= matches!(f, b"um" | b"uw" | b"ui");
                }
            }
        } else if let Some(kb) = line.strip_prefix(b"Anonymous:") {
            if let Some(v) = out.last_mut() {
                v.anonymous = kib(kb);
            }
        } else if let Some(kb) = line.strip_prefix(b"Swap:") {
            if let Some(v) = out.last_mut() {
                v.swap = kib(kb);
            }
        } else if line.first().is_some_and(u8::is_ascii_hexdigit) {
            if let Some(map) = maps::parse_line(line) {
                out.push(SmapsVma {
                    map,
                    line,
                    dont_fork: false,
                    wipe_on_fork: false,
                    dont_dump: false,
                    io: false,
                    hugetlb: false,
                    userfaultfd: false,
                    anonymous: 0,
                    swap: 0,
                });
            }
        }
    }
    out
}

/// `"   12 kB"` in bytes (0 if malformed).
fn kib(field: &[u8]) -> u64 {
    let field = trim(field);
    let digits = field.strip_suffix(b" kB").unwrap_or(field);
    dec_u64(trim(digits)).map_or(0, |k| k * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_dontfork_and_wipeonfork() {
        let buf = b"7f0000000000-7f0000002000 rw-p 00000000 00:00 0 \n\
Size:                  8 kB\n\
Anonymous:             8 kB\n\
Swap:                  4 kB\n\
VmFlags: rd wr mr mw me ac dc sd\n\
7f0000002000-7f0000003000 rw-p 00000000 00:00 0 \n\
Size:                  4 kB\n\
VmFlags: rd wr mr mw me ac sd\n\
7f0000004000-7f0000005000 r--p 00000000 00:00 0 \n\
VmFlags: rd mr mw me ac wf io dd\n";
        let v = vmas(buf);
        assert_eq!(v.len(), 3);
        assert_eq!(
            (v[0].map.start, v[0].map.end),
            (0x7f0000000000, 0x7f0000002000)
        );
        assert!(v[0].dont_fork && !v[0].wipe_on_fork && v[0].map.read());
        assert_eq!(
            v[0].line,
            b"7f0000000000-7f0000002000 rw-p 00000000 00:00 0 "
        );
        assert!(!v[1].dont_fork && !v[1].wipe_on_fork);
        assert_eq!(v[2].map.start, 0x7f0000004000);
        assert!(v[2].wipe_on_fork && !v[2].dont_fork);
        assert_eq!((v[0].anonymous, v[0].swap, v[1].anonymous), (8192, 4096, 0));
        assert!(v[2].io && v[2].dont_dump && !v[0].dont_dump && !v[0].io);
    }
}
