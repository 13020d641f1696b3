//! What `/proc` says of a process, read cheaply: `stat` (CPU time, threads, process group,
//! start time, name), `status` (commit), and the entries of `fd` (the one list a poll walks).

use std::time::Instant;

use pss_sys::procfs;

/// One reading of a process.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// When it was read.
    pub at: Instant,
    /// Its name (`comm`), as the process set it.
    pub name: String,
    /// Its start time (clock ticks after boot): with the pid, who it is.
    pub start: u64,
    /// Its process group.
    pub pgid: i32,
    /// CPU time used, user and system, every thread together, in clock ticks.
    pub cpu_ticks: u64,
    /// Commit: its private resident memory (`RssAnon`: heap, stacks, written copies of
    /// file pages) plus what of it is swapped out (`VmSwap`), in bytes.
    pub commit: u64,
    /// Its threads.
    pub threads: u64,
    /// Its open file descriptors; `None` if they cannot be listed (another user's
    /// process, without the privilege).
    pub fds: Option<u64>,
}

impl Usage {
    /// Reads process `pid`; `None` if it is gone (or a zombie: nothing left to dump).
    pub fn read(pid: i32) -> Option<Usage> {
        let at = Instant::now();
        let stat = procfs::stat_at(&format!("/proc/{pid}/stat"))?;
        if stat.state == b'Z' || stat.state == b'X' {
            return None;
        }
        let status = procfs::status_at(&format!("/proc/{pid}/status"))?;
        let fds = procfs::list_numeric(pid, &format!("/proc/{pid}/fd"))
            .ok()
            .map(|l| l.len() as u64);
        Some(Usage {
            at,
            name: String::from_utf8_lossy(&stat.comm).into_owned(),
            start: stat.starttime,
            pgid: stat.pgrp,
            cpu_ticks: stat.utime + stat.stime,
            commit: status.rss_anon + status.vm_swap,
            threads: stat.num_threads,
            fds,
        })
    }

    /// The CPU used between `earlier` and this reading, in percent of one CPU (every
    /// thread together: up to 100 × the CPUs, as ProcDump counts).
    pub fn cpu_percent_since(&self, earlier: &Usage) -> f64 {
        let secs = self.at.saturating_duration_since(earlier.at).as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        let ticks = self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64;
        100.0 * ticks / ticks_per_second() / secs
    }
}

/// Clock ticks a second (`sysconf(_SC_CLK_TCK)`).
fn ticks_per_second() -> f64 {
    procfs::ticks_in(std::time::Duration::from_secs(1)) as f64
}
