//! `/proc/PID/fdinfo/FD`: the common lines and the per-kind ones.

use super::{dec_i64, dec_u64, hex_u64, key_values, oct_u64, trim};

/// The parsed lines of one `fdinfo` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FdInfo {
    /// `pos:` file position (live: it belongs to the open file description).
    pub pos: u64,
    /// `flags:` the open flags (octal in the file).
    pub flags: u32,
    /// `mnt_id:`.
    pub mnt_id: u64,
    /// `ino:`.
    pub ino: u64,
    /// `eventfd-count:` (hex in the file).
    pub eventfd_count: Option<u64>,
    /// `eventfd-semaphore:`.
    pub eventfd_semaphore: Option<bool>,
    /// `Pid:` of a pidfd (−1 once that process has been reaped).
    pub pidfd_pid: Option<i64>,
    /// `clockid:` of a timerfd.
    pub timerfd_clockid: Option<i64>,
    /// `ticks:` of a timerfd.
    pub timerfd_ticks: Option<u64>,
    /// `it_value:` of a timerfd, (seconds, nanoseconds).
    pub timerfd_value: Option<(u64, u64)>,
    /// `it_interval:` of a timerfd.
    pub timerfd_interval: Option<(u64, u64)>,
    /// `sigmask:` of a signalfd (hex; bit n−1 is signal n).
    pub sigmask: Option<u64>,
    /// Number of `inotify wd:` lines (watches).
    pub inotify_watches: u32,
    /// The `tfd:` lines of an epoll fd: (target fd, event mask).
    pub epoll_targets: Vec<(i32, u32)>,
}

/// Parses one `fdinfo` file.
pub fn parse(buf: &[u8]) -> FdInfo {
    let mut fi = FdInfo::default();
    for line in buf.split(|&c| c == b'\n') {
        if line.starts_with(b"inotify wd:") {
            fi.inotify_watches += 1;
            continue;
        }
        if let Some(rest) = line.strip_prefix(b"tfd:") {
            if let Some(t) = parse_epoll_target(rest) {
                fi.epoll_targets.push(t);
            }
            continue;
        }
        if let Some((k, v)) = key_values(line).next() {
            match k {
                b"pos" => fi.pos = dec_u64(v).unwrap_or(0),
                b"flags" => fi.flags = oct_u64(v).unwrap_or(0) as u32,
                b"mnt_id" => fi.mnt_id = dec_u64(v).unwrap_or(0),
                b"ino" => fi.ino = dec_u64(v).unwrap_or(0),
                b"eventfd-count" => fi.eventfd_count = hex_u64(v),
                b"eventfd-semaphore" => fi.eventfd_semaphore = dec_u64(v).map(|x| x != 0),
                b"Pid" => fi.pidfd_pid = dec_i64(v),
                b"clockid" => fi.timerfd_clockid = dec_i64(v),
                b"ticks" => fi.timerfd_ticks = dec_u64(v),
                b"it_value" => fi.timerfd_value = parse_pair(v),
                b"it_interval" => fi.timerfd_interval = parse_pair(v),
                b"sigmask" => fi.sigmask = hex_u64(v),
                _ => {}
            }
        }
    }
    fi
}

// "(99, 998577658)"
fn parse_pair(v: &[u8]) -> Option<(u64, u64)> {
    let inner = v.strip_prefix(b"(")?.strip_suffix(b")")?;
    let comma = inner.iter().position(|&c| c == b',')?;
    Some((
        dec_u64(trim(&inner[..comma]))?,
        dec_u64(trim(&inner[comma + 1..]))?,
    ))
}

// "        3 events:       19 data: ..."
fn parse_epoll_target(rest: &[u8]) -> Option<(i32, u32)> {
    let mut toks = rest
        .split(|c| c.is_ascii_whitespace())
        .filter(|t| !t.is_empty());
    let fd = dec_i64(toks.next()?)? as i32;
    if toks.next()? != b"events:" {
        return None;
    }
    let ev = hex_u64(toks.next()?)? as u32;
    Some((fd, ev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_and_eventfd() {
        let fi = parse(b"pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\neventfd-count:                3\neventfd-id: 1\neventfd-semaphore: 1\n");
        assert_eq!(fi.flags, 0o2000002);
        assert_eq!(fi.mnt_id, 17);
        assert_eq!(fi.eventfd_count, Some(3));
        assert_eq!(fi.eventfd_semaphore, Some(true));
    }

    #[test]
    fn timerfd_epoll_inotify_signalfd_pidfd() {
        let t = parse(b"pos:\t0\nflags:\t02\nclockid: 1\nticks: 0\nsettime flags: 00\nit_value: (99, 998577658)\nit_interval: (2, 0)\n");
        assert_eq!(t.timerfd_clockid, Some(1));
        assert_eq!(t.timerfd_value, Some((99, 998577658)));
        assert_eq!(t.timerfd_interval, Some((2, 0)));
        let e = parse(b"pos:\t0\ntfd:        3 events:       19 data:                3  pos:0 ino:10ee sdev:f\ntfd:       10 events:        1 data: 0\n");
        assert_eq!(e.epoll_targets, vec![(3, 0x19), (10, 1)]);
        let i = parse(b"pos:\t0\ninotify wd:1 ino:3c4a7 sdev:fe00000 mask:100\ninotify wd:2 ino:1 sdev:1 mask:2\n");
        assert_eq!(i.inotify_watches, 2);
        let s = parse(b"pos:\t0\nsigmask:\t0000000000000200\n");
        assert_eq!(s.sigmask, Some(0x200));
        let p = parse(b"pos:\t0\nflags:\t02000202\nPid:\t1751\nNSpid:\t1751\n");
        assert_eq!(p.pidfd_pid, Some(1751));
        assert_eq!(p.flags & 0o200, 0o200);
    }
}
