//! What a clone's `/proc` directory tells an export that the snapshot's records do not: the
//! mappings as the kernel's dump code sees them (with `VmFlags` and anonymous-page counts),
//! the auxiliary vector, `coredump_filter`, the process group, session and group id, the
//! command line and environment — all inherited by the clone from the target at the pause
//! and never changed since, since the clone never runs.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use super::filter::DumpFilter;
use pss::VaClone;
use pss_sys::pagemap::Pagemap;
use pss_sys::pidfd;
use pss_sys::procfs::{smaps, stat, status, ProcDir};
use pss_types::error::{Error, Result};

/// One mapping of the clone, as `smaps` describes it.
#[derive(Debug, Clone)]
pub(crate) struct CloneVma {
    pub start: u64,
    pub end: u64,
    pub perms: [u8; 4],
    pub offset: u64,
    pub inode: u64,
    pub pathname: OsString,
    pub anonymous: u64,
    pub swap: u64,
    pub dont_dump: bool,
    pub io: bool,
    pub hugetlb: bool,
}

/// The facts of a clone's `/proc/PID` directory.
pub(crate) struct CloneProc {
    pub vmas: Vec<CloneVma>,
    pub auxv: Vec<u8>,
    pub filter: DumpFilter,
    pub pgrp: i32,
    pub session: i32,
    pub gid: u32,
    pub cmdline: Vec<u8>,
    pub environ: Vec<u8>,
    /// Its `pagemap`, to skip pages never touched; `None` if it cannot be opened.
    pub pagemap: Option<Pagemap>,
}

impl CloneProc {
    /// Reads the clone's `/proc/PID` files. The directory is opened first and the clone's
    /// pidfd checked after, so that a clone gone in between (and its pid reused) is an
    /// error, never another process's facts.
    pub fn read(clone: &VaClone) -> Result<CloneProc> {
        let pid = clone.pid();
        let mut dir = ProcDir::open(pid).map_err(|e| gone_or(clone, e))?;
        if pidfd::has_exited(clone.pidfd()) {
            return Err(clone.vanished());
        }
        let vmas = smaps::vmas(dir.read("smaps").map_err(|e| gone_or(clone, e))?)
            .iter()
            .map(owned_vma)
            .collect();
        let filter = DumpFilter::from_proc(dir.read("coredump_filter")?)
            .unwrap_or(DumpFilter::KERNEL_DEFAULT);
        let st =
            stat::parse(dir.read("stat")?).ok_or_else(|| dir.parse_error("stat", "malformed"))?;
        let gid = status::parse(dir.read("status")?).gid;
        Ok(CloneProc {
            vmas,
            filter,
            pgrp: st.pgrp,
            session: st.session,
            gid,
            auxv: dir.read("auxv")?.to_vec(),
            cmdline: dir.read("cmdline")?.to_vec(),
            environ: dir.read("environ").map(<[u8]>::to_vec).unwrap_or_default(),
            pagemap: dir.open_file("pagemap").ok().map(Pagemap::from_file),
        })
    }
}

fn owned_vma(v: &smaps::SmapsVma<'_>) -> CloneVma {
    CloneVma {
        start: v.map.start,
        end: v.map.end,
        perms: v.map.perms,
        offset: v.map.offset,
        inode: v.map.inode,
        pathname: OsString::from_vec(v.map.pathname.to_vec()),
        anonymous: v.anonymous,
        swap: v.swap,
        dont_dump: v.dont_dump,
        io: v.io,
        hugetlb: v.hugetlb,
    }
}

fn gone_or(clone: &VaClone, e: Error) -> Error {
    if pidfd::has_exited(clone.pidfd()) || matches!(e, Error::NoSuchProcess { .. }) {
        clone.vanished()
    } else {
        e
    }
}
