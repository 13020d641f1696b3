//! Records of the snapshot → the C structures, in Windows units. Pointers in walk entries
//! point into memory owned by the marker.

use std::ffi::c_void;

use pss_core::records::{
    AuxiliaryPage, HandleEntry, MemoryRegion, PerformanceCounters, ProcessInformation, ThreadEntry,
    TypeSpecific,
};
use pss_core::units::{filetime, filetime_opt, hundred_ns, micros, word};

use crate::context;
use crate::marker::Marker;
use crate::types::*;

fn ft(v: u64) -> FILETIME {
    FILETIME::from_u64(v)
}

/// `PSS_PROCESS_INFORMATION`; `ImageFileName` is the executable's path in UTF-16, cut at
/// 259 units and NUL-terminated.
pub fn process(p: &ProcessInformation) -> PSS_PROCESS_INFORMATION {
    let mut name = [0u16; 260];
    let path = p.image_file_name.to_string_lossy();
    for (dst, u) in name.iter_mut().take(259).zip(path.encode_utf16()) {
        *dst = u;
    }
    PSS_PROCESS_INFORMATION {
        ExitStatus: p.exit_status,
        PebBaseAddress: p.peb_base_address,
        AffinityMask: p.affinity_mask,
        BasePriority: p.base_priority,
        ProcessId: p.process_id,
        ParentProcessId: p.parent_process_id,
        Flags: p.flags.bits(),
        CreateTime: ft(filetime(p.create_time)),
        ExitTime: ft(filetime_opt(p.exit_time)),
        KernelTime: ft(hundred_ns(p.kernel_time)),
        UserTime: ft(hundred_ns(p.user_time)),
        PriorityClass: p.priority_class.value(),
        PeakVirtualSize: p.peak_virtual_size,
        VirtualSize: p.virtual_size,
        PageFaultCount: pss_core::units::dword(p.page_fault_count),
        PeakWorkingSetSize: p.peak_working_set_size,
        WorkingSetSize: p.working_set_size,
        QuotaPeakPagedPoolUsage: p.quota_peak_paged_pool_usage,
        QuotaPagedPoolUsage: p.quota_paged_pool_usage,
        QuotaPeakNonPagedPoolUsage: p.quota_peak_non_paged_pool_usage,
        QuotaNonPagedPoolUsage: p.quota_non_paged_pool_usage,
        PagefileUsage: p.pagefile_usage,
        PeakPagefileUsage: p.peak_pagefile_usage,
        PrivateUsage: p.private_usage,
        ExecuteFlags: p.execute_flags,
        ImageFileName: name,
    }
}

/// `PSS_PERFORMANCE_COUNTERS`: wall-clock periods in microseconds (`PSS_PERF_RESOLUTION`).
pub fn performance(p: &PerformanceCounters) -> PSS_PERFORMANCE_COUNTERS {
    PSS_PERFORMANCE_COUNTERS {
        TotalCycleCount: p.total.cycles,
        TotalWallClockPeriod: micros(p.total.wall),
        VaCloneCycleCount: p.va_clone.cycles,
        VaCloneWallClockPeriod: micros(p.va_clone.wall),
        VaSpaceCycleCount: p.va_space.cycles,
        VaSpaceWallClockPeriod: micros(p.va_space.wall),
        AuxPagesCycleCount: p.aux_pages.cycles,
        AuxPagesWallClockPeriod: micros(p.aux_pages.wall),
        HandlesCycleCount: p.handles.cycles,
        HandlesWallClockPeriod: micros(p.handles.wall),
        ThreadsCycleCount: p.threads.cycles,
        ThreadsWallClockPeriod: micros(p.threads.wall),
    }
}

/// `PSS_THREAD_ENTRY`; the `CONTEXT` record, if captured, is copied into the marker.
pub fn thread(t: &ThreadEntry, m: &mut Marker) -> PSS_THREAD_ENTRY {
    let record = t.context.as_ref().map(context::record).unwrap_or_default();
    let (ptr, size) = if record.is_empty() {
        (std::ptr::null_mut(), 0)
    } else {
        (m.copy(&record), word(record.len()))
    };
    PSS_THREAD_ENTRY {
        ExitStatus: t.exit_status,
        TebBaseAddress: t.teb_base_address,
        ProcessId: t.process_id,
        ThreadId: t.thread_id,
        AffinityMask: t.affinity_mask,
        Priority: t.priority,
        BasePriority: t.base_priority,
        LastSyscallFirstArgument: t.last_syscall_first_argument,
        LastSyscallNumber: t.last_syscall_number,
        CreateTime: ft(filetime(t.create_time)),
        ExitTime: ft(filetime_opt(t.exit_time)),
        KernelTime: ft(hundred_ns(t.kernel_time)),
        UserTime: ft(hundred_ns(t.user_time)),
        Win32StartAddress: t.win32_start_address,
        CaptureTime: ft(filetime(t.capture_time)),
        Flags: t.flags.bits(),
        SuspendCount: t.suspend_count,
        SizeOfContextRecord: if ptr.is_null() { 0 } else { size },
        ContextRecord: ptr,
    }
}

/// `PSS_THREAD_NAME`: the thread's name (`comm`) in UTF-16; the size in bytes.
pub fn thread_name(name: &std::ffi::OsStr, m: &mut Marker) -> PSS_THREAD_NAME {
    let (p, len) = m.utf16(&name.to_string_lossy());
    PSS_THREAD_NAME {
        ThreadNameSize: if p.is_null() { 0 } else { len },
        ThreadName: p,
    }
}

/// `PSS_HANDLE_ENTRY`: the type name and object name are copied into the marker.
pub fn handle(h: &HandleEntry, m: &mut Marker) -> PSS_HANDLE_ENTRY {
    let (type_name, type_len) = m.utf16(h.type_name.name());
    let (obj, obj_len) = match &h.object_name {
        Some(n) => m.utf16(&n.to_string_lossy()),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: every arm of the union is plain integers, for which all-zero bytes are valid.
    let mut tsi: TypeSpecificInformation = unsafe { std::mem::zeroed() };
    match h.type_specific {
        Some(TypeSpecific::Process {
            exit_status,
            peb_base_address,
            affinity_mask,
            base_priority,
            process_id,
            parent_process_id,
            flags,
        }) => {
            tsi.Process = HandleProcess {
                ExitStatus: exit_status,
                PebBaseAddress: peb_base_address,
                AffinityMask: affinity_mask,
                BasePriority: base_priority,
                ProcessId: process_id,
                ParentProcessId: parent_process_id,
                Flags: flags,
            }
        }
        Some(TypeSpecific::Thread {
            exit_status,
            teb_base_address,
            process_id,
            thread_id,
            affinity_mask,
            priority,
            base_priority,
            win32_start_address,
        }) => {
            tsi.Thread = HandleThread {
                ExitStatus: exit_status,
                TebBaseAddress: teb_base_address,
                ProcessId: process_id,
                ThreadId: thread_id,
                AffinityMask: affinity_mask,
                Priority: priority,
                BasePriority: base_priority,
                Win32StartAddress: win32_start_address,
            }
        }
        Some(TypeSpecific::Event {
            manual_reset,
            signaled,
        }) => tsi.Event = [i32::from(manual_reset), i32::from(signaled)],
        Some(TypeSpecific::Section {
            base_address,
            allocation_attributes,
            maximum_size,
        }) => {
            tsi.Section = HandleSection {
                BaseAddress: base_address,
                AllocationAttributes: allocation_attributes,
                MaximumSize: maximum_size,
            }
        }
        Some(TypeSpecific::Semaphore {
            current_count,
            maximum_count,
        }) => tsi.Semaphore = [current_count, maximum_count],
        None => {}
    }
    PSS_HANDLE_ENTRY {
        Handle: h.handle as u64,
        Flags: h.flags.bits(),
        ObjectType: h.object_type.value(),
        CaptureTime: ft(filetime(h.capture_time)),
        Attributes: h.attributes,
        GrantedAccess: h.granted_access,
        HandleCount: h.handle_count,
        PointerCount: h.pointer_count,
        PagedPoolCharge: h.paged_pool_charge,
        NonPagedPoolCharge: h.non_paged_pool_charge,
        CreationTime: ft(filetime_opt(h.creation_time)),
        TypeNameLength: if type_name.is_null() { 0 } else { type_len },
        TypeName: type_name,
        ObjectNameLength: if obj.is_null() { 0 } else { obj_len },
        ObjectName: obj,
        TypeSpecificInformation: tsi,
    }
}

/// `PSS_VA_SPACE_ENTRY`: the mapped file name, if any, is copied into the marker.
pub fn region(r: &MemoryRegion, m: &mut Marker) -> PSS_VA_SPACE_ENTRY {
    let sec = r.section.as_ref();
    let (name, name_len) = match sec.and_then(|s| s.mapped_file_name.as_ref()) {
        Some(p) => m.utf16(&p.to_string_lossy()),
        None => (std::ptr::null(), 0),
    };
    PSS_VA_SPACE_ENTRY {
        BaseAddress: r.base_address,
        AllocationBase: r.allocation_base,
        AllocationProtect: r.allocation_protect.value(),
        RegionSize: r.region_size,
        State: r.state.value(),
        Protect: r.protect.value(),
        Type: r.mem_type.value(),
        TimeDateStamp: sec.map_or(0, |s| s.time_date_stamp),
        SizeOfImage: sec.map_or(0, |s| s.size_of_image),
        ImageBase: sec.map_or(0, |s| s.image_base),
        CheckSum: sec.map_or(0, |s| s.check_sum),
        MappedFileNameLength: if name.is_null() { 0 } else { name_len },
        MappedFileName: name,
    }
}

/// `MEM_COMMIT`, `MEM_PRIVATE`, `PAGE_READWRITE`: what a stack or TLS page is.
const MEM_COMMIT: u32 = 0x1000;
const MEM_PRIVATE: u32 = 0x20000;
const PAGE_READWRITE: u32 = 0x04;

/// `PSS_AUXILIARY_PAGE_ENTRY`: the contents are copied into the marker.
pub fn aux_page(p: &AuxiliaryPage, m: &mut Marker) -> PSS_AUXILIARY_PAGE_ENTRY {
    let contents: *mut c_void = m.copy(&p.contents);
    PSS_AUXILIARY_PAGE_ENTRY {
        Address: p.address,
        BasicInformation: MEMORY_BASIC_INFORMATION {
            BaseAddress: p.address,
            AllocationBase: p.address,
            AllocationProtect: PAGE_READWRITE,
            PartitionId: 0,
            RegionSize: p.contents.len() as u64,
            State: MEM_COMMIT,
            Protect: PAGE_READWRITE,
            Type: MEM_PRIVATE,
        },
        CaptureTime: ft(filetime(p.capture_time)),
        PageContents: contents,
        PageSize: if contents.is_null() {
            0
        } else {
            pss_core::units::dword(p.contents.len() as u64)
        },
    }
}
