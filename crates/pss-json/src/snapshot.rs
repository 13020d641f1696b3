//! The snapshot document (`pss capture --json`, `docs/json.md`). PSS structure fields in
//! snake_case with the values the Windows structures hold; Linux additions under `linux`.

use std::ffi::OsStr;
use std::path::Path;

use pss::records::{
    AuxiliaryPageKind, FdDetail, HandleEntry, MemoryRegion, PerformanceCounters, PhaseCost,
    ProcessInformation, ThreadContext, ThreadEntry, TypeSpecific,
};
use pss::units::{filetime, filetime_opt, hundred_ns, micros};
use pss::Snapshot;
use serde_json::{json, Map, Value};

fn s(o: &OsStr) -> Value {
    Value::String(o.to_string_lossy().into_owned())
}

fn p(o: &Path) -> Value {
    s(o.as_os_str())
}

/// The whole document.
pub fn snapshot(snap: &Snapshot) -> Value {
    let info = snap.capture_info();
    json!({
        "schema_version": crate::SCHEMA_VERSION,
        "process": process(snap.process()),
        "threads": snap.threads().map(|t| t.iter().map(thread).collect::<Vec<_>>()),
        "handles": snap.handles().map(|h| h.iter().map(handle).collect::<Vec<_>>()),
        "va_space": snap.va_space().map(|r| r.iter().map(region).collect::<Vec<_>>()),
        "performance": snap.performance().map(performance),
        "auxiliary_pages": snap.auxiliary_pages().map(|p| p.iter().map(|a| json!({
            "address": a.address,
            "page_size": a.contents.len(),
            "capture_time": filetime(a.capture_time),
            "linux": {"thread_id": a.thread_id, "kind": match a.kind {
                AuxiliaryPageKind::Stack => "stack",
                AuxiliaryPageKind::Tls => "tls",
            }},
        })).collect::<Vec<_>>()),
        "va_clone": snap.va_clone().map(|c| json!({
            "pid": c.pid(),
            "pid_in_target": c.pid_in_target(),
            "copies": c.copies().iter().map(|r| json!({
                "base_address": r.start, "size": r.data.len(), "reason": r.reason.name(),
                "at_pause": r.at_pause,
            })).collect::<Vec<_>>(),
            "holes": c.holes().iter().map(|h| json!({
                "base_address": h.start, "size": h.end - h.start, "reason": h.reason.name(),
            })).collect::<Vec<_>>(),
        })),
        "capture": {
            "pid": info.pid,
            "flags": info.flags.bits(),
            "flag_names": info.flags.iter().filter_map(|f| f.cli_name()).collect::<Vec<_>>(),
            "context_flags": info.context_flags.bits(),
            "context_length": snap.context_length(),
            "started": filetime(info.started),
            "pause_us": micros(info.pause),
            "threads_stopped": info.threads_stopped,
            "seize_rounds": info.seize_rounds,
            "total_us": micros(info.total),
        },
        "warnings": snap.warnings().iter().map(|w| json!({
            "tid": w.tid, "fd": w.fd, "message": w.message,
        })).collect::<Vec<_>>(),
    })
}

fn process(p_: &ProcessInformation) -> Value {
    let l = &p_.linux;
    json!({
        "exit_status": p_.exit_status,
        "peb_base_address": p_.peb_base_address,
        "affinity_mask": p_.affinity_mask,
        "base_priority": p_.base_priority,
        "process_id": p_.process_id,
        "parent_process_id": p_.parent_process_id,
        "flags": p_.flags.bits(),
        "create_time": filetime(p_.create_time),
        "exit_time": filetime_opt(p_.exit_time),
        "kernel_time": hundred_ns(p_.kernel_time),
        "user_time": hundred_ns(p_.user_time),
        "priority_class": p_.priority_class.value(),
        "peak_virtual_size": p_.peak_virtual_size,
        "virtual_size": p_.virtual_size,
        "page_fault_count": pss::units::dword(p_.page_fault_count),
        "peak_working_set_size": p_.peak_working_set_size,
        "working_set_size": p_.working_set_size,
        "quota_peak_paged_pool_usage": p_.quota_peak_paged_pool_usage,
        "quota_paged_pool_usage": p_.quota_paged_pool_usage,
        "quota_peak_non_paged_pool_usage": p_.quota_peak_non_paged_pool_usage,
        "quota_non_paged_pool_usage": p_.quota_non_paged_pool_usage,
        "pagefile_usage": p_.pagefile_usage,
        "peak_pagefile_usage": p_.peak_pagefile_usage,
        "private_usage": p_.private_usage,
        "execute_flags": p_.execute_flags,
        "image_file_name": p(&p_.image_file_name),
        "linux": {
            "state": l.state.to_string(),
            "comm": s(&l.comm),
            "nice": l.nice,
            "policy": l.policy,
            "num_threads": l.num_threads,
            "uid": l.uid,
            "rss_anon": l.rss_anon,
            "vm_swap": l.vm_swap,
            "seccomp": l.seccomp,
        },
    })
}

fn thread(t: &ThreadEntry) -> Value {
    json!({
        "exit_status": t.exit_status,
        "teb_base_address": t.teb_base_address,
        "process_id": t.process_id,
        "thread_id": t.thread_id,
        "affinity_mask": t.affinity_mask,
        "priority": t.priority,
        "base_priority": t.base_priority,
        "last_syscall_first_argument": t.last_syscall_first_argument,
        "last_syscall_number": t.last_syscall_number,
        "create_time": filetime(t.create_time),
        "exit_time": filetime_opt(t.exit_time),
        "kernel_time": hundred_ns(t.kernel_time),
        "user_time": hundred_ns(t.user_time),
        "win32_start_address": t.win32_start_address,
        "capture_time": filetime(t.capture_time),
        "flags": t.flags.bits(),
        "suspend_count": t.suspend_count,
        "size_of_context_record": if t.context.is_some() { pss::CONTEXT_RECORD_SIZE } else { 0 },
        "context": t.context.as_ref().map(context),
        "linux": {
            "name": s(&t.linux.name),
            "state": t.linux.state.to_string(),
            "syscall": t.linux.syscall,
            "processor": t.linux.processor,
            "nice": t.linux.nice,
            "sigmask": t.linux.sigmask,
        },
    })
}

fn context(c: &ThreadContext) -> Value {
    let mut m = Map::new();
    m.insert("context_flags".into(), json!(c.flags.bits()));
    for (name, v) in c.general.named() {
        m.insert(name.into(), json!(v));
    }
    if let Some(dr) = &c.debug {
        for (i, v) in dr.iter().enumerate() {
            m.insert(format!("dr{i}"), json!(v));
        }
    }
    if let Some(fp) = &c.fp {
        m.insert("fpregs_size".into(), json!(fp.len()));
    }
    if let Some(x) = &c.xstate {
        m.insert("xstate_size".into(), json!(x.len()));
    }
    Value::Object(m)
}

fn handle(h: &HandleEntry) -> Value {
    json!({
        "handle": h.handle,
        "flags": h.flags.bits(),
        "object_type": h.object_type.value(),
        "capture_time": filetime(h.capture_time),
        "attributes": h.attributes,
        "granted_access": h.granted_access,
        "handle_count": h.handle_count,
        "pointer_count": h.pointer_count,
        "paged_pool_charge": h.paged_pool_charge,
        "non_paged_pool_charge": h.non_paged_pool_charge,
        "creation_time": filetime_opt(h.creation_time),
        "type_name": h.type_name.name(),
        "object_name": h.object_name.as_deref().map(s),
        "type_specific_information": h.type_specific.as_ref().map(type_specific),
        "linux": {
            "open_flags": h.linux.open_flags,
            "pos": h.linux.pos,
            "mnt_id": h.linux.mnt_id,
            "inode": h.linux.inode,
            "mode": h.linux.mode,
            "size": h.linux.size,
            "detail": h.linux.detail.as_ref().map(detail),
        },
    })
}

fn type_specific(t: &TypeSpecific) -> Value {
    match *t {
        TypeSpecific::Process {
            exit_status,
            peb_base_address,
            affinity_mask,
            base_priority,
            process_id,
            parent_process_id,
            flags,
        } => json!({"process": {
            "exit_status": exit_status, "peb_base_address": peb_base_address,
            "affinity_mask": affinity_mask, "base_priority": base_priority,
            "process_id": process_id, "parent_process_id": parent_process_id, "flags": flags,
        }}),
        TypeSpecific::Thread {
            exit_status,
            teb_base_address,
            process_id,
            thread_id,
            affinity_mask,
            priority,
            base_priority,
            win32_start_address,
        } => json!({"thread": {
            "exit_status": exit_status, "teb_base_address": teb_base_address,
            "process_id": process_id, "thread_id": thread_id, "affinity_mask": affinity_mask,
            "priority": priority, "base_priority": base_priority,
            "win32_start_address": win32_start_address,
        }}),
        TypeSpecific::Event {
            manual_reset,
            signaled,
        } => json!({"event": {"manual_reset": manual_reset, "signaled": signaled}}),
        TypeSpecific::Section {
            base_address,
            allocation_attributes,
            maximum_size,
        } => json!({"section": {
            "base_address": base_address, "allocation_attributes": allocation_attributes,
            "maximum_size": maximum_size,
        }}),
        TypeSpecific::Semaphore {
            current_count,
            maximum_count,
        } => json!({"semaphore": {"current_count": current_count, "maximum_count": maximum_count}}),
    }
}

fn detail(d: &FdDetail) -> Value {
    match d {
        FdDetail::EventFd { count, semaphore } => {
            json!({"eventfd": {"count": count, "semaphore": semaphore}})
        }
        FdDetail::PidFd { pid, thread } => json!({"pidfd": {"pid": pid, "thread": thread}}),
        FdDetail::TimerFd {
            clockid,
            ticks,
            it_value,
            it_interval,
        } => json!({"timerfd": {
            "clockid": clockid, "ticks": ticks,
            "it_value_ns": it_value.as_nanos() as u64, "it_interval_ns": it_interval.as_nanos() as u64,
        }}),
        FdDetail::SignalFd { sigmask } => json!({"signalfd": {"sigmask": sigmask}}),
        FdDetail::Inotify { watches } => json!({"inotify": {"watches": watches}}),
        FdDetail::Epoll { targets } => json!({"epoll": {
            "targets": targets.iter().map(|(fd, ev)| json!({"fd": fd, "events": ev})).collect::<Vec<_>>(),
        }}),
    }
}

fn region(r: &MemoryRegion) -> Value {
    let sec = r.section.as_ref();
    let name = sec.and_then(|s| s.mapped_file_name.as_deref());
    json!({
        "base_address": r.base_address,
        "allocation_base": r.allocation_base,
        "allocation_protect": r.allocation_protect.value(),
        "region_size": r.region_size,
        "state": r.state.value(),
        "protect": r.protect.value(),
        "type": r.mem_type.value(),
        "time_date_stamp": sec.map_or(0, |s| s.time_date_stamp),
        "size_of_image": sec.map_or(0, |s| s.size_of_image),
        "image_base": sec.map_or(0, |s| s.image_base),
        "check_sum": sec.map_or(0, |s| s.check_sum),
        "mapped_file_name": name.map(p),
        "linux": r.linux.as_ref().map(|l| json!({
            "perms": String::from_utf8_lossy(&l.perms),
            "offset": l.offset,
            "dev": format!("{:02x}:{:02x}", l.dev.0, l.dev.1),
            "inode": l.inode,
            "pathname": s(&l.pathname),
            "build_id": sec.and_then(|s| s.build_id.as_ref()).map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
        })),
    })
}

fn phase(c: &PhaseCost) -> (u64, u64) {
    (c.cycles, micros(c.wall))
}

fn performance(pc: &PerformanceCounters) -> Value {
    let (tc, tw) = phase(&pc.total);
    let (cc, cw) = phase(&pc.va_clone);
    let (vc, vw) = phase(&pc.va_space);
    let (ac, aw) = phase(&pc.aux_pages);
    let (hc, hw) = phase(&pc.handles);
    let (thc, thw) = phase(&pc.threads);
    json!({
        "total_cycle_count": tc, "total_wall_clock_period": tw,
        "va_clone_cycle_count": cc, "va_clone_wall_clock_period": cw,
        "va_space_cycle_count": vc, "va_space_wall_clock_period": vw,
        "aux_pages_cycle_count": ac, "aux_pages_wall_clock_period": aw,
        "handles_cycle_count": hc, "handles_wall_clock_period": hw,
        "threads_cycle_count": thc, "threads_wall_clock_period": thw,
        "linux": {"pause_us": micros(pc.pause)},
    })
}
