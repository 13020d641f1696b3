//! cgroup v2: moving a process into the caller's cgroup (`PSS_CREATE_BREAKAWAY`).

use crate::error::{Error, Result};

/// Moves process `pid` into the cgroup (v2) the calling process belongs to.
pub fn move_to_ours(pid: i32) -> Result<()> {
    let me = std::process::id() as i32;
    let text = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| Error::Io {
        pid: me,
        path: "/proc/self/cgroup".into(),
        source: e,
    })?;
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| Error::NotSupported {
            what: "breakaway: the calling process is not in a cgroup v2 hierarchy".into(),
        })?;
    let procs = format!("/sys/fs/cgroup{}/cgroup.procs", path.trim_end());
    std::fs::write(&procs, pid.to_string()).map_err(|e| match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => Error::PermissionDenied {
            pid,
            action: format!("move (breakaway) into {procs}"),
            source: e,
        },
        _ => Error::Io {
            pid,
            path: procs.clone().into(),
            source: e,
        },
    })
}
