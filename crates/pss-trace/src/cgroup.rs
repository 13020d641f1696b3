//! cgroup v2: moving a process into the caller's cgroup (`PSS_CREATE_BREAKAWAY`).

use std::path::PathBuf;

use pss_types::error::{Error, Result};

/// Moves process `pid` into the cgroup (v2) the calling process belongs to.
pub fn move_to_ours(pid: i32) -> Result<()> {
    let me = std::process::id() as i32;
    let read = |path: &str| {
        std::fs::read_to_string(path).map_err(|e| Error::Io {
            pid: me,
            path: path.into(),
            source: e,
        })
    };
    let ours = read("/proc/self/cgroup")?;
    let path = ours
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| Error::NotSupported {
            what: "breakaway: the calling process is not in a cgroup v2 hierarchy".into(),
        })?;
    let root = v2_mount(&read("/proc/self/mountinfo")?).ok_or_else(|| Error::NotSupported {
        what: "breakaway: no cgroup v2 hierarchy is mounted".into(),
    })?;
    let procs = root
        .join(path.trim_end().trim_start_matches('/'))
        .join("cgroup.procs");
    std::fs::write(&procs, pid.to_string()).map_err(|e| match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => Error::PermissionDenied {
            pid,
            action: format!("move (breakaway) into {}", procs.display()),
            source: e,
        },
        _ => Error::Io {
            pid,
            path: procs.clone(),
            source: e,
        },
    })
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or
/// `/sys/fs/cgroup/unified` on a hybrid host), from `mountinfo`.
fn v2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let fstype = right.split(' ').next()?;
        let mount_point = left.split(' ').nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(mount_point))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_v2_mount_on_hybrid_and_unified_hosts() {
        let hybrid = "35 24 0:31 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro\n41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            super::v2_mount(hybrid).unwrap(),
            std::path::Path::new("/sys/fs/cgroup/unified")
        );
        let unified = "30 24 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw\n";
        assert_eq!(
            super::v2_mount(unified).unwrap(),
            std::path::Path::new("/sys/fs/cgroup")
        );
    }
}
