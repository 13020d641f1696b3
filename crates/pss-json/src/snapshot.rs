//! The snapshot document (`pss capture --json`, `docs/json.md`). PSS structure fields in
//! snake_case with the values the Windows structures hold; Linux additions under `linux`.
//! Written straight from the records as it is serialized.

use pss::records::{
    AuxiliaryPage, AuxiliaryPageKind, CopiedRange, FdDetail, HandleEntry, MemoryHole, MemoryRegion,
    PerformanceCounters, ProcessInformation, RegionLinux as RegionLinuxRecord, ThreadContext,
    ThreadEntry, TypeSpecific, Warning,
};
use pss::units::{filetime, filetime_opt, hundred_ns, micros};
use pss::{Snapshot, VaClone};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::doc::{object, text, Each};

/// The whole document of `snap`, written as it is serialized.
pub fn snapshot(snap: &Snapshot) -> impl Serialize + '_ {
    Document(snap)
}

object!(
    /// The document.
    Document(Snapshot) |snap| {
        "schema_version": crate::SCHEMA_VERSION,
        "process": Process(snap.process()),
        "threads": snap.threads().map(|t| Each(t, Thread)),
        "handles": snap.handles().map(|h| Each(h, Handle)),
        "va_space": snap.va_space().map(|r| Each(r, Region)),
        "performance": snap.performance().map(Performance),
        "auxiliary_pages": snap.auxiliary_pages().map(|p| Each(p, AuxPage)),
        "va_clone": snap.va_clone().map(Clone),
        "capture": Capture(snap),
        "warnings": Each(snap.warnings(), WarningDoc),
    }
);

object!(AuxPage(AuxiliaryPage) |a| {
    "address": a.address,
    "page_size": a.contents.len(),
    "capture_time": filetime(a.capture_time),
    "linux": AuxPageLinux(a),
});

object!(AuxPageLinux(AuxiliaryPage) |a| {
    "thread_id": a.thread_id,
    "kind": match a.kind {
        AuxiliaryPageKind::Stack => "stack",
        AuxiliaryPageKind::Tls => "tls",
    },
});

object!(Clone(VaClone) |c| {
    "pid": c.pid(),
    "pid_in_target": c.pid_in_target(),
    "copies": Each(c.copies(), Copy),
    "holes": Each(c.holes(), Hole),
});

object!(Copy(CopiedRange) |r| {
    "base_address": r.start, "size": r.data.len(), "reason": r.reason.name(),
    "at_pause": r.at_pause,
});

object!(Hole(MemoryHole) |h| {
    "base_address": h.start, "size": h.end - h.start, "reason": h.reason.name(),
});

object!(Capture(Snapshot) |snap| {
    "pid": snap.capture_info().pid,
    "flags": snap.capture_info().flags.bits(),
    "flag_names": snap.capture_info().flags.iter().filter_map(|f| f.cli_name()).collect::<Vec<_>>(),
    "context_flags": snap.capture_info().context_flags.bits(),
    "context_length": snap.context_length(),
    "started": filetime(snap.capture_info().started),
    "pause_us": micros(snap.capture_info().pause),
    "threads_stopped": snap.capture_info().threads_stopped,
    "seize_rounds": snap.capture_info().seize_rounds,
    "total_us": micros(snap.capture_info().total),
});

object!(WarningDoc(Warning) |w| {
    "tid": w.tid, "fd": w.fd, "message": w.message,
});

object!(Process(ProcessInformation) |p| {
    "exit_status": p.exit_status,
    "peb_base_address": p.peb_base_address,
    "affinity_mask": p.affinity_mask,
    "base_priority": p.base_priority,
    "process_id": p.process_id,
    "parent_process_id": p.parent_process_id,
    "flags": p.flags.bits(),
    "create_time": filetime(p.create_time),
    "exit_time": filetime_opt(p.exit_time),
    "kernel_time": hundred_ns(p.kernel_time),
    "user_time": hundred_ns(p.user_time),
    "priority_class": p.priority_class.value(),
    "peak_virtual_size": p.peak_virtual_size,
    "virtual_size": p.virtual_size,
    "page_fault_count": pss::units::dword(p.page_fault_count),
    "peak_working_set_size": p.peak_working_set_size,
    "working_set_size": p.working_set_size,
    "quota_peak_paged_pool_usage": p.quota_peak_paged_pool_usage,
    "quota_paged_pool_usage": p.quota_paged_pool_usage,
    "quota_peak_non_paged_pool_usage": p.quota_peak_non_paged_pool_usage,
    "quota_non_paged_pool_usage": p.quota_non_paged_pool_usage,
    "pagefile_usage": p.pagefile_usage,
    "peak_pagefile_usage": p.peak_pagefile_usage,
    "private_usage": p.private_usage,
    "execute_flags": p.execute_flags,
    "image_file_name": text(p.image_file_name.as_os_str()),
    "linux": ProcessLinux(p),
});

object!(ProcessLinux(ProcessInformation) |p| {
    "state": p.linux.state.to_string(),
    "comm": text(&p.linux.comm),
    "nice": p.linux.nice,
    "policy": p.linux.policy,
    "num_threads": p.linux.num_threads,
    "uid": p.linux.uid,
    "rss_anon": p.linux.rss_anon,
    "vm_swap": p.linux.vm_swap,
    "seccomp": p.linux.seccomp,
});

object!(Thread(ThreadEntry) |t| {
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
    "context": t.context.as_ref().map(Context),
    "linux": ThreadLinux(t),
});

object!(ThreadLinux(ThreadEntry) |t| {
    "name": text(&t.linux.name),
    "state": t.linux.state.to_string(),
    "syscall": t.linux.syscall,
    "processor": t.linux.processor,
    "nice": t.linux.nice,
    "sigmask": t.linux.sigmask,
    "read": t.linux.read.name(),
});

/// A register context: its flags, every general register by its Linux name, the debug
/// registers, the sizes of the FPU and XSAVE images.
struct Context<'a>(&'a ThreadContext);

impl Serialize for Context<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("context_flags", &c.flags.bits())?;
        for (name, v) in c.general.named() {
            m.serialize_entry(name, &v)?;
        }
        if let Some(dr) = &c.debug {
            for (i, v) in dr.iter().enumerate() {
                m.serialize_entry(&format!("dr{i}"), v)?;
            }
        }
        if let Some(fp) = &c.fp {
            m.serialize_entry("fpregs_size", &fp.len())?;
        }
        if let Some(x) = &c.xstate {
            m.serialize_entry("xstate_size", &x.len())?;
        }
        m.end()
    }
}

object!(Handle(HandleEntry) |h| {
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
    "object_name": h.object_name.as_deref().map(text),
    "type_specific_information": h.type_specific.as_ref().map(Specific),
    "linux": HandleLinux(h),
});

object!(HandleLinux(HandleEntry) |h| {
    "open_flags": h.linux.open_flags,
    "pos": h.linux.pos,
    "mnt_id": h.linux.mnt_id,
    "inode": h.linux.inode,
    "mode": h.linux.mode,
    "size": h.linux.size,
    "detail": h.linux.detail.as_ref().map(Detail),
});

/// `{"KIND": {FIELDS}}`: one entry naming the variant, its fields an object.
fn variant<S: Serializer>(s: S, kind: &str, fields: &impl Serialize) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(1))?;
    m.serialize_entry(kind, fields)?;
    m.end()
}

/// A handle's type-specific information (`PSS_HANDLE_ENTRY`'s union). Small and rare:
/// built as values.
struct Specific<'a>(&'a TypeSpecific);

impl Serialize for Specific<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde_json::json;
        let (kind, fields) = match *self.0 {
            TypeSpecific::Process {
                exit_status,
                peb_base_address,
                affinity_mask,
                base_priority,
                process_id,
                parent_process_id,
                flags,
            } => (
                "process",
                json!({
                    "exit_status": exit_status, "peb_base_address": peb_base_address,
                    "affinity_mask": affinity_mask, "base_priority": base_priority,
                    "process_id": process_id, "parent_process_id": parent_process_id,
                    "flags": flags,
                }),
            ),
            TypeSpecific::Thread {
                exit_status,
                teb_base_address,
                process_id,
                thread_id,
                affinity_mask,
                priority,
                base_priority,
                win32_start_address,
            } => (
                "thread",
                json!({
                    "exit_status": exit_status, "teb_base_address": teb_base_address,
                    "process_id": process_id, "thread_id": thread_id,
                    "affinity_mask": affinity_mask, "priority": priority,
                    "base_priority": base_priority, "win32_start_address": win32_start_address,
                }),
            ),
            TypeSpecific::Event {
                manual_reset,
                signaled,
            } => (
                "event",
                json!({"manual_reset": manual_reset, "signaled": signaled}),
            ),
            TypeSpecific::Section {
                base_address,
                allocation_attributes,
                maximum_size,
            } => (
                "section",
                json!({
                    "base_address": base_address, "allocation_attributes": allocation_attributes,
                    "maximum_size": maximum_size,
                }),
            ),
            TypeSpecific::Semaphore {
                current_count,
                maximum_count,
            } => (
                "semaphore",
                json!({"current_count": current_count, "maximum_count": maximum_count}),
            ),
        };
        variant(s, kind, &fields)
    }
}

/// The Linux detail of an fd kind (`eventfd`, `pidfd`, `timerfd`, …).
struct Detail<'a>(&'a FdDetail);

impl Serialize for Detail<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde_json::json;
        // Small and rare: built as values.
        let (kind, fields) = match self.0 {
            FdDetail::EventFd { count, semaphore } => {
                ("eventfd", json!({"count": count, "semaphore": semaphore}))
            }
            FdDetail::PidFd { pid, thread } => ("pidfd", json!({"pid": pid, "thread": thread})),
            FdDetail::TimerFd {
                clockid,
                ticks,
                it_value,
                it_interval,
            } => (
                "timerfd",
                json!({
                    "clockid": clockid, "ticks": ticks,
                    "it_value_ns": it_value.as_nanos() as u64,
                    "it_interval_ns": it_interval.as_nanos() as u64,
                }),
            ),
            FdDetail::SignalFd { sigmask } => ("signalfd", json!({"sigmask": sigmask})),
            FdDetail::Inotify { watches } => ("inotify", json!({"watches": watches})),
            FdDetail::Epoll { targets } => (
                "epoll",
                json!({"targets": targets.iter()
                    .map(|(fd, ev)| json!({"fd": fd, "events": ev}))
                    .collect::<Vec<_>>()}),
            ),
        };
        variant(s, kind, &fields)
    }
}

object!(Region(MemoryRegion) |r| {
    "base_address": r.base_address,
    "allocation_base": r.allocation_base,
    "allocation_protect": r.allocation_protect.value(),
    "region_size": r.region_size,
    "state": r.state.value(),
    "protect": r.protect.value(),
    "type": r.mem_type.value(),
    "time_date_stamp": r.section.as_ref().map_or(0, |s| s.time_date_stamp),
    "size_of_image": r.section.as_ref().map_or(0, |s| s.size_of_image),
    "image_base": r.section.as_ref().map_or(0, |s| s.image_base),
    "check_sum": r.section.as_ref().map_or(0, |s| s.check_sum),
    "mapped_file_name": r.section.as_ref().and_then(|s| s.mapped_file_name.as_deref()).map(|p| text(p.as_os_str())),
    "linux": r.linux.as_ref().map(|l| RegionLinux(l, r.section.as_ref().and_then(|s| s.build_id.as_deref()))),
});

/// A region's `maps` line, and its image's build-id.
struct RegionLinux<'a>(&'a RegionLinuxRecord, Option<&'a [u8]>);

impl Serialize for RegionLinux<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let l = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("perms", &String::from_utf8_lossy(&l.perms))?;
        m.serialize_entry("offset", &l.offset)?;
        m.serialize_entry("dev", &format!("{:02x}:{:02x}", l.dev.0, l.dev.1))?;
        m.serialize_entry("inode", &l.inode)?;
        m.serialize_entry("pathname", &text(&l.pathname))?;
        m.serialize_entry("build_id", &self.1.map(hex))?;
        m.end()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

object!(Performance(PerformanceCounters) |pc| {
    "total_cycle_count": pc.total.cycles, "total_wall_clock_period": micros(pc.total.wall),
    "va_clone_cycle_count": pc.va_clone.cycles, "va_clone_wall_clock_period": micros(pc.va_clone.wall),
    "va_space_cycle_count": pc.va_space.cycles, "va_space_wall_clock_period": micros(pc.va_space.wall),
    "aux_pages_cycle_count": pc.aux_pages.cycles, "aux_pages_wall_clock_period": micros(pc.aux_pages.wall),
    "handles_cycle_count": pc.handles.cycles, "handles_wall_clock_period": micros(pc.handles.wall),
    "threads_cycle_count": pc.threads.cycles, "threads_wall_clock_period": micros(pc.threads.wall),
    "linux": PerformanceLinux(pc),
});

object!(PerformanceLinux(PerformanceCounters) |pc| {
    "pause_us": micros(pc.pause),
});
