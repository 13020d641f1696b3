//! `/proc/PID/stat` and `/proc/PID/task/TID/stat`.

use super::{dec_i64, dec_u64};

/// The fields of a `stat` line the capture uses (proc(5) numbering in the comments).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    /// (2) the command name, without the parentheses.
    pub comm: Vec<u8>,
    /// (3) the state letter (`R`, `S`, `D`, `T`, `t`, `Z`, …).
    pub state: u8,
    /// (4) the parent pid.
    pub ppid: i32,
    /// (5) the process group.
    pub pgrp: i32,
    /// (6) the session.
    pub session: i32,
    /// (10) minor faults.
    pub minflt: u64,
    /// (12) major faults.
    pub majflt: u64,
    /// (14) user time, clock ticks.
    pub utime: u64,
    /// (15) system time, clock ticks.
    pub stime: u64,
    /// (18) kernel priority (`20 + nice` for normal tasks, `-1 - rt_priority` for RT).
    pub priority: i64,
    /// (19) nice, −20..19.
    pub nice: i64,
    /// (20) number of threads.
    pub num_threads: u64,
    /// (22) start time, clock ticks after boot.
    pub starttime: u64,
    /// (23) virtual size in bytes.
    pub vsize: u64,
    /// (24) resident pages.
    pub rss: u64,
    /// (38) the signal its parent gets when it exits (0 for a clone made with exit signal
    /// 0, as VA clones are).
    pub exit_signal: i32,
    /// (39) the CPU it last ran on.
    pub processor: u64,
    /// (40) real-time priority, 0 for normal policies.
    pub rt_priority: u64,
    /// (41) scheduling policy (`SCHED_*`).
    pub policy: u64,
    /// (48) address of the argument block.
    pub arg_start: u64,
    /// (52) exit code as `waitpid` would report it (meaningful for zombies).
    pub exit_code: i64,
}

/// Parses a `stat` line. `None` if the line is truncated or malformed.
pub fn parse(buf: &[u8]) -> Option<Stat> {
    let open = buf.iter().position(|&c| c == b'(')?;
    let close = buf.iter().rposition(|&c| c == b')')?;
    let comm = buf.get(open + 1..close)?.to_vec();
    let rest = buf.get(close + 2..)?;
    let mut f: [&[u8]; 50] = [&[]; 50];
    let mut n = 0;
    for field in rest.split(|&c| c == b' ' || c == b'\n') {
        if field.is_empty() {
            continue;
        }
        if n < f.len() {
            f[n] = field;
        }
        n += 1;
    }
    // Field k (1-based, proc(5)) is f[k - 3].
    let u = |k: usize| dec_u64(f[k - 3]);
    let i = |k: usize| dec_i64(f[k - 3]);
    Some(Stat {
        comm,
        state: *f[0].first()?,
        ppid: i(4)? as i32,
        pgrp: i(5)? as i32,
        session: i(6)? as i32,
        minflt: u(10)?,
        majflt: u(12)?,
        utime: u(14)?,
        stime: u(15)?,
        priority: i(18)?,
        nice: i(19)?,
        num_threads: u(20)?,
        starttime: u(22)?,
        vsize: u(23)?,
        rss: u(24)?,
        exit_signal: i(38).unwrap_or(-1) as i32,
        processor: u(39).unwrap_or(0),
        rt_priority: u(40).unwrap_or(0),
        policy: u(41).unwrap_or(0),
        arg_start: u(48).unwrap_or(0),
        exit_code: i(52).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comm_with_spaces_and_parens() {
        let line = b"4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1183 0 0 0 12 34 0 0 20 0 3 0 9876 10485760 256 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 140737488351000 140737488351010 140737488351010 140737488351020 0\n";
        let s = parse(line).unwrap();
        assert_eq!(s.comm, b"my (odd) name");
        assert_eq!(s.state, b'S');
        assert_eq!((s.ppid, s.pgrp, s.session), (1, 4242, 4242));
        assert_eq!(s.minflt, 1183);
        assert_eq!((s.utime, s.stime), (12, 34));
        assert_eq!((s.priority, s.nice, s.num_threads), (20, 0, 3));
        assert_eq!(s.starttime, 9876);
        assert_eq!(s.vsize, 10485760);
        assert_eq!(s.processor, 1);
        assert_eq!(s.exit_signal, 17);
        assert_eq!(s.arg_start, 140737488351000);
        assert_eq!(s.exit_code, 0);
    }

    #[test]
    fn rejects_truncated() {
        assert!(parse(b"1 (x) S 0").is_none());
    }
}
