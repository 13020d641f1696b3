//! Which processes a watch covers: one pid, every process of a name (including ones started
//! later), or every process of a process group.

use pss_sys::procfs;

/// The processes to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// This process.
    Pid(i32),
    /// Every process whose name (`comm`, or the last part of its first argument when the
    /// name is longer than `comm`'s 15 bytes) is this, but the watcher's own (ProcDump's
    /// `-w`).
    Name(String),
    /// Every process of this process group.
    Pgid(i32),
}

impl Targets {
    /// The processes it covers now (their pids, ascending). Each poll under `Name` or
    /// `Pgid` reads every process's `stat`.
    pub fn list(&self) -> Vec<i32> {
        match self {
            Targets::Pid(pid) => vec![*pid],
            Targets::Name(name) => every_process()
                .into_iter()
                .filter(|&p| p as u32 != std::process::id() && is_named(p, name))
                .collect(),
            Targets::Pgid(pgid) => every_process()
                .into_iter()
                .filter(|&p| {
                    procfs::stat_at(&format!("/proc/{p}/stat")).is_some_and(|s| s.pgrp == *pgid)
                })
                .collect(),
        }
    }

    /// Whether processes may come later (a name: a restart, another instance).
    pub fn open_ended(&self) -> bool {
        matches!(self, Targets::Name(_))
    }
}

/// Every process's pid.
fn every_process() -> Vec<i32> {
    procfs::list_numeric(0, "/proc").unwrap_or_default()
}

/// Whether process `pid` is named `name`.
fn is_named(pid: i32, name: &str) -> bool {
    let Some(stat) = procfs::stat_at(&format!("/proc/{pid}/stat")) else {
        return false;
    };
    if stat.comm == name.as_bytes() {
        return true;
    }
    // `comm` holds 15 bytes: a longer name is checked against the program's first argument.
    if name.len() <= 15 || !name.as_bytes().starts_with(&stat.comm) || stat.comm.len() < 15 {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    argv0.rsplit(|&b| b == b'/').next() == Some(name.as_bytes())
}
