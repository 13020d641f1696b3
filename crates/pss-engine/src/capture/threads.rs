//! `PSS_THREAD_ENTRY` records: what the pause read, plus each task's `stat`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::time::SystemTime;

use super::freeze::FrozenThread;
use super::{priority, Clocks};
use pss_sys::clock;
use pss_sys::procfs::{stat, ProcDir};
use pss_trace::sched;
use pss_types::flags::{ThreadFlags, STILL_ACTIVE};
use pss_types::records::{ThreadEntry, ThreadLinux, ThreadRead, Warning};

/// Builds one entry per frozen (or, for self-capture, listed) thread, plus a terminated
/// entry for a zombie leader. Threads whose `stat` vanished become warnings.
pub fn build(
    pid: i32,
    frozen: Vec<FrozenThread>,
    zombie_leader: bool,
    entry_point: u64,
    clocks: &Clocks,
    warnings: &mut Vec<Warning>,
) -> Vec<ThreadEntry> {
    let mut out = Vec::with_capacity(frozen.len() + 1);
    let Ok(mut tasks) = ProcDir::open_tasks(pid) else {
        warnings.push(Warning::new("the thread list vanished: the process exited"));
        return out;
    };
    if zombie_leader {
        if let Some(e) = entry(&mut tasks, pid, &unfrozen(pid), entry_point, clocks) {
            out.push(e);
        }
    }
    for ft in &frozen {
        match entry(&mut tasks, pid, ft, entry_point, clocks) {
            Some(e) => out.push(e),
            None => warnings.push(Warning::thread(
                ft.tid,
                "exited before its statistics could be read; not included",
            )),
        }
    }
    out.sort_by_key(|e| e.thread_id);
    out
}

/// A thread record without anything read under ptrace (self-capture, zombie leader).
pub fn unfrozen(tid: i32) -> FrozenThread {
    FrozenThread {
        tid,
        general: None,
        context: None,
        sigmask: None,
        group_stopped: false,
        capture_time: SystemTime::now(),
        read: ThreadRead::Together,
    }
}

fn entry(
    tasks: &mut ProcDir,
    pid: i32,
    ft: &FrozenThread,
    entry_point: u64,
    clocks: &Clocks,
) -> Option<ThreadEntry> {
    let st = stat::parse(tasks.read_raw(&format!("{}/stat", ft.tid)).ok()?)?;
    let terminated = matches!(st.state, b'Z' | b'X');
    let level = priority::level(st.policy, st.rt_priority, st.nice);
    let syscall = ft.general.as_ref().and_then(|g| g.syscall_number());
    let stopped_before = ft.group_stopped || matches!(st.state, b'T');
    Some(ThreadEntry {
        exit_status: if terminated {
            ((st.exit_code >> 8) & 0xff) as u32
        } else {
            STILL_ACTIVE
        },
        teb_base_address: ft.general.as_ref().map_or(0, |g| g.tls_base()),
        process_id: pid as u32,
        thread_id: ft.tid as u32,
        affinity_mask: sched::affinity_mask(ft.tid),
        priority: level,
        base_priority: level,
        last_syscall_first_argument: match syscall {
            Some(_) => ft.general.as_ref().map_or(0, |g| g.syscall_arg0()),
            None => 0,
        },
        last_syscall_number: syscall.map_or(0, |n| n as u16),
        create_time: clocks.boot + clock::ticks(st.starttime, clocks.tck),
        exit_time: None,
        kernel_time: clock::ticks(st.stime, clocks.tck),
        user_time: clock::ticks(st.utime, clocks.tck),
        win32_start_address: if ft.tid == pid { entry_point } else { 0 },
        capture_time: ft.capture_time,
        flags: if terminated {
            ThreadFlags::TERMINATED
        } else {
            ThreadFlags::empty()
        },
        suspend_count: u16::from(stopped_before && !terminated),
        context: ft.context.clone(),
        linux: ThreadLinux {
            name: OsString::from_vec(st.comm),
            state: st.state as char,
            syscall,
            processor: st.processor as u32,
            nice: st.nice as i32,
            sigmask: ft.sigmask,
            read: ft.read,
        },
    })
}
