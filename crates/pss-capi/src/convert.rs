//! Records of the snapshot → the C structures, in Windows units. Pointers in walk entries
//! point into memory owned by the marker.
//!
//! Each conversion destructures its record naming every field (those with no place in the
//! Windows structure as `field: _` with the reason), so that a field added to a record
//! fails this crate's build until it is placed or explicitly left out — the C side of the
//! one field list per record (`pss_types::records::Fields`).

use std::ffi::c_void;

use pss_core::records::{
    AuxiliaryPage, HandleEntry, MemoryRegion, PerformanceCounters, ProcessInformation,
    SectionInformation, ThreadEntry, TypeSpecific,
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
    // Every field named: a field added to the record fails the build until placed here.
    let ProcessInformation {
        exit_status,
        peb_base_address,
        affinity_mask,
        base_priority,
        process_id,
        parent_process_id,
        flags,
        create_time,
        exit_time,
        kernel_time,
        user_time,
        priority_class,
        peak_virtual_size,
        virtual_size,
        page_fault_count,
        peak_working_set_size,
        working_set_size,
        quota_peak_paged_pool_usage,
        quota_paged_pool_usage,
        quota_peak_non_paged_pool_usage,
        quota_non_paged_pool_usage,
        pagefile_usage,
        peak_pagefile_usage,
        private_usage,
        execute_flags,
        image_file_name,
        linux: _, // Linux-only facts: no place in the Windows structure.
    } = p;
    let mut name = [0u16; 260];
    let path = image_file_name.to_string_lossy();
    for (dst, u) in name.iter_mut().take(259).zip(path.encode_utf16()) {
        *dst = u;
    }
    PSS_PROCESS_INFORMATION {
        ExitStatus: *exit_status,
        PebBaseAddress: *peb_base_address,
        AffinityMask: *affinity_mask,
        BasePriority: *base_priority,
        ProcessId: *process_id,
        ParentProcessId: *parent_process_id,
        Flags: flags.bits(),
        CreateTime: ft(filetime(*create_time)),
        ExitTime: ft(filetime_opt(*exit_time)),
        KernelTime: ft(hundred_ns(*kernel_time)),
        UserTime: ft(hundred_ns(*user_time)),
        PriorityClass: priority_class.value(),
        PeakVirtualSize: *peak_virtual_size,
        VirtualSize: *virtual_size,
        PageFaultCount: pss_core::units::dword(*page_fault_count),
        PeakWorkingSetSize: *peak_working_set_size,
        WorkingSetSize: *working_set_size,
        QuotaPeakPagedPoolUsage: *quota_peak_paged_pool_usage,
        QuotaPagedPoolUsage: *quota_paged_pool_usage,
        QuotaPeakNonPagedPoolUsage: *quota_peak_non_paged_pool_usage,
        QuotaNonPagedPoolUsage: *quota_non_paged_pool_usage,
        PagefileUsage: *pagefile_usage,
        PeakPagefileUsage: *peak_pagefile_usage,
        PrivateUsage: *private_usage,
        ExecuteFlags: *execute_flags,
        ImageFileName: name,
    }
}

/// `PSS_PERFORMANCE_COUNTERS`: wall-clock periods in microseconds (`PSS_PERF_RESOLUTION`).
pub fn performance(p: &PerformanceCounters) -> PSS_PERFORMANCE_COUNTERS {
    let PerformanceCounters {
        total,
        va_clone,
        va_space,
        aux_pages,
        handles,
        threads,
        pause: _, // Linux-only: how long the target was stopped.
    } = p;
    PSS_PERFORMANCE_COUNTERS {
        TotalCycleCount: total.cycles,
        TotalWallClockPeriod: micros(total.wall),
        VaCloneCycleCount: va_clone.cycles,
        VaCloneWallClockPeriod: micros(va_clone.wall),
        VaSpaceCycleCount: va_space.cycles,
        VaSpaceWallClockPeriod: micros(va_space.wall),
        AuxPagesCycleCount: aux_pages.cycles,
        AuxPagesWallClockPeriod: micros(aux_pages.wall),
        HandlesCycleCount: handles.cycles,
        HandlesWallClockPeriod: micros(handles.wall),
        ThreadsCycleCount: threads.cycles,
        ThreadsWallClockPeriod: micros(threads.wall),
    }
}

/// `PSS_THREAD_ENTRY`; the `CONTEXT` record, if captured, is copied into the marker.
pub fn thread(t: &ThreadEntry, m: &mut Marker) -> PSS_THREAD_ENTRY {
    let ThreadEntry {
        exit_status,
        teb_base_address,
        process_id,
        thread_id,
        affinity_mask,
        priority,
        base_priority,
        last_syscall_first_argument,
        last_syscall_number,
        create_time,
        exit_time,
        kernel_time,
        user_time,
        win32_start_address,
        capture_time,
        flags,
        suspend_count,
        context,
        linux: _, // Linux-only; the name reaches C through `thread_name`.
    } = t;
    let record = context.as_ref().map(context::record).unwrap_or_default();
    let (ptr, size) = if record.is_empty() {
        (std::ptr::null_mut(), 0)
    } else {
        (m.copy(&record), word(record.len()))
    };
    PSS_THREAD_ENTRY {
        ExitStatus: *exit_status,
        TebBaseAddress: *teb_base_address,
        ProcessId: *process_id,
        ThreadId: *thread_id,
        AffinityMask: *affinity_mask,
        Priority: *priority,
        BasePriority: *base_priority,
        LastSyscallFirstArgument: *last_syscall_first_argument,
        LastSyscallNumber: *last_syscall_number,
        CreateTime: ft(filetime(*create_time)),
        ExitTime: ft(filetime_opt(*exit_time)),
        KernelTime: ft(hundred_ns(*kernel_time)),
        UserTime: ft(hundred_ns(*user_time)),
        Win32StartAddress: *win32_start_address,
        CaptureTime: ft(filetime(*capture_time)),
        Flags: flags.bits(),
        SuspendCount: *suspend_count,
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
    let HandleEntry {
        handle,
        flags,
        object_type,
        capture_time,
        attributes,
        granted_access,
        handle_count,
        pointer_count,
        paged_pool_charge,
        non_paged_pool_charge,
        creation_time,
        type_name,
        object_name,
        type_specific,
        linux: _, // Linux-only: open flags, position, inode, mode, size, detail.
    } = h;
    let (type_name, type_len) = m.utf16(type_name.name());
    let (obj, obj_len) = match object_name {
        Some(n) => m.utf16(&n.to_string_lossy()),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: every arm of the union is plain integers, for which all-zero bytes are valid.
    let mut tsi: TypeSpecificInformation = unsafe { std::mem::zeroed() };
    match *type_specific {
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
        Handle: *handle as u64,
        Flags: flags.bits(),
        ObjectType: object_type.value(),
        CaptureTime: ft(filetime(*capture_time)),
        Attributes: *attributes,
        GrantedAccess: *granted_access,
        HandleCount: *handle_count,
        PointerCount: *pointer_count,
        PagedPoolCharge: *paged_pool_charge,
        NonPagedPoolCharge: *non_paged_pool_charge,
        CreationTime: ft(filetime_opt(*creation_time)),
        TypeNameLength: if type_name.is_null() { 0 } else { type_len },
        TypeName: type_name,
        ObjectNameLength: if obj.is_null() { 0 } else { obj_len },
        ObjectName: obj,
        TypeSpecificInformation: tsi,
    }
}

/// `PSS_VA_SPACE_ENTRY`: the mapped file name, if any, is copied into the marker.
pub fn region(r: &MemoryRegion, m: &mut Marker) -> PSS_VA_SPACE_ENTRY {
    let MemoryRegion {
        base_address,
        allocation_base,
        allocation_protect,
        region_size,
        state,
        protect,
        mem_type,
        section,
        linux: _, // Linux-only: permissions string, offset, device, inode, pathname.
    } = r;
    let section = section.as_ref().map(section_fields).unwrap_or_default();
    let (name, name_len) = match section.mapped_file_name {
        Some(p) => m.utf16(&p.to_string_lossy()),
        None => (std::ptr::null(), 0),
    };
    PSS_VA_SPACE_ENTRY {
        BaseAddress: *base_address,
        AllocationBase: *allocation_base,
        AllocationProtect: allocation_protect.value(),
        RegionSize: *region_size,
        State: state.value(),
        Protect: protect.value(),
        Type: mem_type.value(),
        TimeDateStamp: section.time_date_stamp,
        SizeOfImage: section.size_of_image,
        ImageBase: section.image_base,
        CheckSum: section.check_sum,
        MappedFileNameLength: if name.is_null() { 0 } else { name_len },
        MappedFileName: name,
    }
}

/// The image facts of a mapping's `SectionInformation` that `PSS_VA_SPACE_ENTRY` carries
/// (all zero for a mapping without one).
#[derive(Default)]
struct SectionFields<'a> {
    time_date_stamp: u32,
    size_of_image: u32,
    image_base: u64,
    check_sum: u32,
    mapped_file_name: Option<&'a std::ffi::OsStr>,
}

fn section_fields(s: &SectionInformation) -> SectionFields<'_> {
    let SectionInformation {
        time_date_stamp,
        size_of_image,
        image_base,
        check_sum,
        mapped_file_name,
        build_id: _, // Linux-only: the GNU build ID.
    } = s;
    SectionFields {
        time_date_stamp: *time_date_stamp,
        size_of_image: *size_of_image,
        image_base: *image_base,
        check_sum: *check_sum,
        mapped_file_name: mapped_file_name.as_deref().map(|p| p.as_os_str()),
    }
}

/// `MEM_COMMIT`, `MEM_PRIVATE`, `PAGE_READWRITE`: what a stack or TLS page is.
const MEM_COMMIT: u32 = 0x1000;
const MEM_PRIVATE: u32 = 0x20000;
const PAGE_READWRITE: u32 = 0x04;

/// `PSS_AUXILIARY_PAGE_ENTRY`: the contents are copied into the marker.
pub fn aux_page(p: &AuxiliaryPage, m: &mut Marker) -> PSS_AUXILIARY_PAGE_ENTRY {
    let AuxiliaryPage {
        address,
        thread_id: _, // Linux-only: which thread's stack or TLS the page is.
        kind: _,      // Linux-only: stack, TLS or requested.
        capture_time,
        contents,
    } = p;
    let copy: *mut c_void = m.copy(contents);
    PSS_AUXILIARY_PAGE_ENTRY {
        Address: *address,
        BasicInformation: MEMORY_BASIC_INFORMATION {
            BaseAddress: *address,
            AllocationBase: *address,
            AllocationProtect: PAGE_READWRITE,
            PartitionId: 0,
            RegionSize: contents.len() as u64,
            State: MEM_COMMIT,
            Protect: PAGE_READWRITE,
            Type: MEM_PRIVATE,
        },
        CaptureTime: ft(filetime(*capture_time)),
        PageContents: copy,
        PageSize: if copy.is_null() {
            0
        } else {
            pss_core::units::dword(contents.len() as u64)
        },
    }
}
