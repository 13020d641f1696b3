//! `/proc/PID/maps`.

use super::{dec_u64, hex_u64};

/// One line of `maps`: a VMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapLine<'a> {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// `r`, `w`, `x` and `p`/`s`.
    pub perms: [u8; 4],
    /// Offset into the file.
    pub offset: u64,
    /// Device major.
    pub dev_major: u32,
    /// Device minor.
    pub dev_minor: u32,
    /// Inode (0 for anonymous memory).
    pub inode: u64,
    /// The path or pseudo-name (`[heap]`, `[stack]`, `[vdso]`, …); empty for anonymous.
    pub pathname: &'a [u8],
}

impl MapLine<'_> {
    /// Readable.
    pub fn read(&self) -> bool {
        self.perms[0] == b'r'
    }
    /// Writable.
    pub fn write(&self) -> bool {
        self.perms[1] == b'w'
    }
    /// Executable.
    pub fn exec(&self) -> bool {
        self.perms[2] == b'x'
    }
    /// Shared (`s`) rather than private (`p`).
    pub fn shared(&self) -> bool {
        self.perms[3] == b's'
    }
    /// Backed by a file with an inode (not anonymous, not a pseudo-mapping).
    pub fn is_file(&self) -> bool {
        self.inode != 0
    }
}

/// A `maps` path as the file system knows it: the kernel writes a newline in a path as
/// `\012` (and nothing else escaped, so a name that really holds a backslash and `012`
/// reads the same; callers that open the file check it is the inode mapped).
pub fn unescape(path: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const NL: &[u8] = b"\\012";
    if !path.windows(NL.len()).any(|w| w == NL) {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut out = Vec::with_capacity(path.len());
    let mut rest = path;
    while let Some(i) = rest.windows(NL.len()).position(|w| w == NL) {
        out.extend_from_slice(&rest[..i]);
        out.push(b'\n');
        rest = &rest[i + NL.len()..];
    }
    out.extend_from_slice(rest);
    std::borrow::Cow::Owned(out)
}

/// Iterates over the lines of a `maps` file; malformed lines are skipped.
pub fn parse(buf: &[u8]) -> impl Iterator<Item = MapLine<'_>> {
    buf.split(|&c| c == b'\n').filter_map(parse_line)
}

pub(crate) fn parse_line(line: &[u8]) -> Option<MapLine<'_>> {
    let mut rest = line;
    let mut next = || {
        while rest.first() == Some(&b' ') {
            rest = &rest[1..];
        }
        let end = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
        let (tok, r) = rest.split_at(end);
        rest = r;
        tok
    };
    let range = next();
    let perms = next();
    let offset = next();
    let dev = next();
    let inode = next();
    let dash = range.iter().position(|&c| c == b'-')?;
    let colon = dev.iter().position(|&c| c == b':')?;
    let perms: [u8; 4] = perms.try_into().ok()?;
    while rest.first() == Some(&b' ') {
        rest = &rest[1..];
    }
    Some(MapLine {
        start: hex_u64(&range[..dash])?,
        end: hex_u64(&range[dash + 1..])?,
        perms,
        offset: hex_u64(offset)?,
        dev_major: hex_u64(&dev[..colon])? as u32,
        dev_minor: hex_u64(&dev[colon + 1..])? as u32,
        inode: dec_u64(inode)?,
        pathname: rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_come_back() {
        assert_eq!(&*unescape(b"/tmp/a\\012b\\012"), b"/tmp/a\nb\n");
        assert_eq!(&*unescape(b"/usr/lib/libc.so.6"), b"/usr/lib/libc.so.6");
    }

    #[test]
    fn parses_lines() {
        let buf = b"55d0c0a00000-55d0c0a02000 r--p 00000000 fe:00 1234   /usr/bin/cat\n\
7ffd1000-7ffd3000 rw-p 00000000 00:00 0                          [stack]\n\
7f0000000000-7f0000001000 ---p 00000000 00:00 0 \n\
7f0000002000-7f0000003000 rw-s 00000000 00:01 99     /memfd:x (deleted)\n";
        let v: Vec<_> = parse(buf).collect();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].start, 0x55d0c0a00000);
        assert_eq!(v[0].end, 0x55d0c0a02000);
        assert_eq!(v[0].pathname, b"/usr/bin/cat");
        assert_eq!(
            (v[0].dev_major, v[0].dev_minor, v[0].inode),
            (0xfe, 0, 1234)
        );
        assert_eq!(v[1].pathname, b"[stack]");
        assert!(v[1].write() && !v[1].shared());
        assert_eq!(v[2].pathname, b"");
        assert_eq!(&v[2].perms, b"---p");
        assert!(v[3].shared());
        assert_eq!(v[3].pathname, b"/memfd:x (deleted)");
    }
}
