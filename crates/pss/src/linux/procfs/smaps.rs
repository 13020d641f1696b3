//! `/proc/PID/smaps`: only what the VA clone needs, the mappings a fork does not copy.

use super::maps;

/// A mapping that a `fork` leaves out of the child (`MADV_DONTFORK`, VmFlags `dc`) or gives
/// the child as zeros (`MADV_WIPEONFORK`, VmFlags `wf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkSpecial {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Whether the mapping is readable (only readable ranges can be copied).
    pub readable: bool,
    /// `MADV_DONTFORK`: absent from a clone.
    pub dont_fork: bool,
    /// `MADV_WIPEONFORK`: zeros in a clone.
    pub wipe_on_fork: bool,
}

/// The `dc` and `wf` mappings of an `smaps` file.
pub fn fork_specials(buf: &[u8]) -> Vec<ForkSpecial> {
    let mut out = Vec::new();
    let mut current: Option<(u64, u64, bool)> = None;
    for line in buf.split(|&c| c == b'\n') {
        if let Some(flags) = line.strip_prefix(b"VmFlags:") {
            let Some((start, end, readable)) = current.take() else {
                continue;
            };
            let mut dc = false;
            let mut wf = false;
            for f in flags.split(|&c| c == b' ') {
                dc |= f == b"dc";
                wf |= f == b"wf";
            }
            if dc || wf {
                out.push(ForkSpecial {
                    start,
                    end,
                    readable,
                    dont_fork: dc,
                    wipe_on_fork: wf,
                });
            }
        } else if line.first().is_some_and(u8::is_ascii_hexdigit) {
            if let Some(m) = maps::parse_line(line) {
                current = Some((m.start, m.end, m.read()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_dontfork_and_wipeonfork() {
        let buf = b"7f0000000000-7f0000002000 rw-p 00000000 00:00 0 \n\
Size:                  8 kB\n\
VmFlags: rd wr mr mw me ac dc sd\n\
7f0000002000-7f0000003000 rw-p 00000000 00:00 0 \n\
Size:                  4 kB\n\
VmFlags: rd wr mr mw me ac sd\n\
7f0000004000-7f0000005000 r--p 00000000 00:00 0 \n\
VmFlags: rd mr mw me ac wf\n";
        let v = fork_specials(buf);
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].start, v[0].end), (0x7f0000000000, 0x7f0000002000));
        assert!(v[0].dont_fork && !v[0].wipe_on_fork && v[0].readable);
        assert_eq!(v[1].start, 0x7f0000004000);
        assert!(v[1].wipe_on_fork && !v[1].dont_fork);
    }
}
