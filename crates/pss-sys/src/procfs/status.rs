//! `/proc/PID/status`.

use super::{dec_i64, dec_u64, key_values};

/// The fields of `status` the capture uses. Sizes are in bytes (the file says kB).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// `State:` letter.
    pub state: u8,
    /// `Tgid:`.
    pub tgid: i32,
    /// `TracerPid:` (0 when untraced).
    pub tracer_pid: i32,
    /// `Seccomp:` mode (0 none, 1 strict, 2 filter).
    pub seccomp: u8,
    /// `VmPeak:`.
    pub vm_peak: u64,
    /// `VmSize:`.
    pub vm_size: u64,
    /// `VmHWM:`.
    pub vm_hwm: u64,
    /// `VmRSS:`.
    pub vm_rss: u64,
    /// `VmData:`.
    pub vm_data: u64,
    /// `VmStk:`.
    pub vm_stk: u64,
    /// `VmPTE:`.
    pub vm_pte: u64,
    /// `VmSwap:`.
    pub vm_swap: u64,
    /// `RssAnon:`.
    pub rss_anon: u64,
    /// Real uid (first field of `Uid:`).
    pub uid: u32,
    /// Real gid (first field of `Gid:`).
    pub gid: u32,
    /// `Threads:`.
    pub threads: u64,
    /// Whether `x86_Thread_features:` has the user shadow stack (`shstk`) on.
    pub shadow_stack: bool,
    /// The effective capabilities (`CapEff:`).
    pub cap_eff: u64,
    /// The last `NSpid:` value: the pid in the process's own (innermost) pid namespace.
    pub ns_pid: i32,
    /// `SigBlk:`: the blocked-signal mask.
    pub sig_blk: u64,
    /// `voluntary_ctxt_switches:`.
    pub voluntary_switches: u64,
    /// `nonvoluntary_ctxt_switches:`.
    pub involuntary_switches: u64,
}

impl Status {
    /// The context-switch counts (voluntary, involuntary): a thread that did not run
    /// between two reads has the same counts in both.
    pub fn switches(&self) -> (u64, u64) {
        (self.voluntary_switches, self.involuntary_switches)
    }
}

/// Parses a `status` file.
pub fn parse(buf: &[u8]) -> Status {
    let mut s = Status::default();
    let kb = |v: &[u8]| {
        let num = v.split(|&c| c == b' ').next().unwrap_or(b"");
        dec_u64(num).unwrap_or(0) * 1024
    };
    for (k, v) in key_values(buf) {
        match k {
            b"State" => s.state = v.first().copied().unwrap_or(b'?'),
            b"Tgid" => s.tgid = dec_i64(v).unwrap_or(0) as i32,
            b"TracerPid" => s.tracer_pid = dec_i64(v).unwrap_or(0) as i32,
            b"Seccomp" => s.seccomp = dec_u64(v).unwrap_or(0) as u8,
            b"VmPeak" => s.vm_peak = kb(v),
            b"VmSize" => s.vm_size = kb(v),
            b"VmHWM" => s.vm_hwm = kb(v),
            b"VmRSS" => s.vm_rss = kb(v),
            b"VmData" => s.vm_data = kb(v),
            b"VmStk" => s.vm_stk = kb(v),
            b"VmPTE" => s.vm_pte = kb(v),
            b"VmSwap" => s.vm_swap = kb(v),
            b"RssAnon" => s.rss_anon = kb(v),
            b"Threads" => s.threads = dec_u64(v).unwrap_or(0),
            b"NSpid" => {
                let last = v
                    .split(|c| c.is_ascii_whitespace())
                    .rfind(|w| !w.is_empty());
                s.ns_pid = last.and_then(dec_i64).unwrap_or(0) as i32;
            }
            b"x86_Thread_features" => {
                s.shadow_stack = v.split(|c| c.is_ascii_whitespace()).any(|w| w == b"shstk");
            }
            b"CapEff" => s.cap_eff = super::hex_u64(v).unwrap_or(0),
            b"SigBlk" => s.sig_blk = super::hex_u64(v).unwrap_or(0),
            b"voluntary_ctxt_switches" => s.voluntary_switches = dec_u64(v).unwrap_or(0),
            b"nonvoluntary_ctxt_switches" => s.involuntary_switches = dec_u64(v).unwrap_or(0),
            b"Uid" => s.uid = first_id(v),
            b"Gid" => s.gid = first_id(v),
            _ => {}
        }
    }
    s
}

/// The first of the four ids of a `Uid:`/`Gid:` line (the real one).
fn first_id(v: &[u8]) -> u32 {
    let first = v.split(|c| c.is_ascii_whitespace()).next().unwrap_or(b"");
    dec_u64(first).unwrap_or(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields() {
        let buf = b"Name:\tcat\nState:\tT (stopped)\nTgid:\t77\nTracerPid:\t12\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nVmPeak:\t    8 kB\nVmRSS:\t  100 kB\nSeccomp:\t2\nCapEff:\t0000000000200000\nThreads:\t5\nx86_Thread_features:\tshstk wrss\nNSpid:\t77\t3\nSigBlk:\t0000000000014000\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        let s = parse(buf);
        assert_eq!(s.state, b'T');
        assert_eq!(s.tgid, 77);
        assert_eq!(s.tracer_pid, 12);
        assert_eq!((s.uid, s.gid), (1000, 100));
        assert_eq!(s.vm_peak, 8192);
        assert_eq!(s.vm_rss, 102400);
        assert_eq!(s.seccomp, 2);
        assert_eq!(s.cap_eff, 1 << 21);
        assert_eq!(s.threads, 5);
        assert!(s.shadow_stack);
        assert_eq!(s.ns_pid, 3);
        assert_eq!(s.sig_blk, 0x14000);
        assert_eq!(s.switches(), (12, 3));
    }
}
