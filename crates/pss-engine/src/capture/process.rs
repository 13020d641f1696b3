//! `PSS_PROCESS_INFORMATION` from `/proc/PID/{stat,status,exe}` and the affinity.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use super::priority;
use super::Clocks;
use pss_sys::clock;
use pss_sys::procfs::{stat, status, ProcDir};
use pss_trace::sched;
use pss_types::error::Result;
use pss_types::flags::{ProcessFlags, STILL_ACTIVE};
use pss_types::records::{ProcessInformation, ProcessLinux};

/// Reads the process information. `state_before` is the state letter seen before the pause,
/// so that the capture's own stop is never reported as `FROZEN`. With `at_pause` (the
/// target's `status` read during the pause of a VA clone capture, and the bytes of our own
/// resident mapping it counts: the trampoline) the current memory counters (sizes, working set, commit,
/// page tables, swap) are those of the capture instant, as the clone's memory is; the
/// peaks, times and identity are read now.
pub fn read(
    dir: &mut ProcDir,
    state_before: u8,
    clocks: &Clocks,
    at_pause: Option<(&[u8], u64)>,
) -> Result<ProcessInformation> {
    let st =
        stat::parse(dir.read("stat")?).ok_or_else(|| dir.parse_error("stat", "malformed line"))?;
    let mut status = status::parse(dir.read("status")?);
    if let Some((bytes, ours)) = at_pause {
        let now = status::parse(bytes);
        // Our trampoline page is mapped and resident (written once before the pause).
        status.vm_size = now.vm_size.saturating_sub(ours);
        status.vm_rss = now.vm_rss.saturating_sub(ours);
        status.vm_data = now.vm_data;
        status.vm_stk = now.vm_stk;
        status.vm_pte = now.vm_pte;
        status.vm_swap = now.vm_swap;
        status.rss_anon = now.rss_anon.saturating_sub(ours);
    }
    let exe = match dir.readlink("exe") {
        Ok(p) => PathBuf::from(p),
        Err(_) => PathBuf::new(),
    };
    let class = priority::class(st.policy, st.nice);
    let mut flags = ProcessFlags::empty();
    if matches!(state_before, b'T' | b't') {
        flags |= ProcessFlags::FROZEN;
    }
    let commit = status.vm_data + status.vm_stk;
    Ok(ProcessInformation {
        exit_status: STILL_ACTIVE,
        peb_base_address: st.arg_start,
        affinity_mask: sched::affinity_mask(dir.pid()),
        base_priority: class.base_priority(),
        process_id: dir.pid() as u32,
        parent_process_id: st.ppid as u32,
        flags,
        create_time: clocks.boot + clock::ticks(st.starttime, clocks.tck),
        exit_time: None,
        kernel_time: clock::ticks(st.stime, clocks.tck),
        user_time: clock::ticks(st.utime, clocks.tck),
        priority_class: class,
        peak_virtual_size: status.vm_peak,
        virtual_size: status.vm_size,
        page_fault_count: st.minflt + st.majflt,
        peak_working_set_size: status.vm_hwm,
        working_set_size: status.vm_rss,
        quota_peak_paged_pool_usage: 0,
        quota_paged_pool_usage: 0,
        quota_peak_non_paged_pool_usage: 0,
        quota_non_paged_pool_usage: status.vm_pte,
        pagefile_usage: commit,
        peak_pagefile_usage: 0,
        private_usage: commit,
        execute_flags: 0,
        image_file_name: exe,
        linux: ProcessLinux {
            state: state_before as char,
            comm: OsString::from_vec(st.comm),
            nice: st.nice as i32,
            policy: st.policy as u32,
            num_threads: st.num_threads as u32,
            uid: status.uid,
            rss_anon: status.rss_anon,
            vm_swap: status.vm_swap,
            seccomp: status.seccomp,
        },
    })
}

/// `AT_ENTRY` from `/proc/PID/auxv`: the program's entry point (0 if unreadable).
pub fn entry_point(dir: &mut ProcDir) -> u64 {
    const AT_ENTRY: u64 = 9;
    let Ok(buf) = dir.read_raw("auxv") else {
        return 0;
    };
    buf.chunks_exact(16)
        .map(|c| {
            (
                u64::from_ne_bytes(c[..8].try_into().expect("8 bytes")),
                u64::from_ne_bytes(c[8..].try_into().expect("8 bytes")),
            )
        })
        .find(|(k, _)| *k == AT_ENTRY)
        .map_or(0, |(_, v)| v)
}
