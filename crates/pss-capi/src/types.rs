//! The C structures of `processsnapshot.h`, field for field (x64 layouts), with their sizes
//! checked at compile time against spec §6–7.

#![allow(non_snake_case, non_camel_case_types, clippy::upper_case_acronyms)]

use std::ffi::c_void;

/// `FILETIME`: two DWORDs, so 4-byte aligned.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct FILETIME {
    pub dwLowDateTime: u32,
    pub dwHighDateTime: u32,
}

impl FILETIME {
    /// From a 64-bit FILETIME value.
    pub fn from_u64(v: u64) -> FILETIME {
        let (lo, hi) = pss_core::units::filetime_parts(v);
        FILETIME {
            dwLowDateTime: lo,
            dwHighDateTime: hi,
        }
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MEMORY_BASIC_INFORMATION {
    pub BaseAddress: u64,
    pub AllocationBase: u64,
    pub AllocationProtect: u32,
    pub PartitionId: u16,
    pub RegionSize: u64,
    pub State: u32,
    pub Protect: u32,
    pub Type: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct PSS_PROCESS_INFORMATION {
    pub ExitStatus: u32,
    pub PebBaseAddress: u64,
    pub AffinityMask: u64,
    pub BasePriority: i32,
    pub ProcessId: u32,
    pub ParentProcessId: u32,
    pub Flags: u32,
    pub CreateTime: FILETIME,
    pub ExitTime: FILETIME,
    pub KernelTime: FILETIME,
    pub UserTime: FILETIME,
    pub PriorityClass: u32,
    pub PeakVirtualSize: u64,
    pub VirtualSize: u64,
    pub PageFaultCount: u32,
    pub PeakWorkingSetSize: u64,
    pub WorkingSetSize: u64,
    pub QuotaPeakPagedPoolUsage: u64,
    pub QuotaPagedPoolUsage: u64,
    pub QuotaPeakNonPagedPoolUsage: u64,
    pub QuotaNonPagedPoolUsage: u64,
    pub PagefileUsage: u64,
    pub PeakPagefileUsage: u64,
    pub PrivateUsage: u64,
    pub ExecuteFlags: u32,
    pub ImageFileName: [u16; 260],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct PSS_PERFORMANCE_COUNTERS {
    pub TotalCycleCount: u64,
    pub TotalWallClockPeriod: u64,
    pub VaCloneCycleCount: u64,
    pub VaCloneWallClockPeriod: u64,
    pub VaSpaceCycleCount: u64,
    pub VaSpaceWallClockPeriod: u64,
    pub AuxPagesCycleCount: u64,
    pub AuxPagesWallClockPeriod: u64,
    pub HandlesCycleCount: u64,
    pub HandlesWallClockPeriod: u64,
    pub ThreadsCycleCount: u64,
    pub ThreadsWallClockPeriod: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct PSS_AUXILIARY_PAGE_ENTRY {
    pub Address: u64,
    pub BasicInformation: MEMORY_BASIC_INFORMATION,
    pub CaptureTime: FILETIME,
    pub PageContents: *mut c_void,
    pub PageSize: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct PSS_VA_SPACE_ENTRY {
    pub BaseAddress: u64,
    pub AllocationBase: u64,
    pub AllocationProtect: u32,
    pub RegionSize: u64,
    pub State: u32,
    pub Protect: u32,
    pub Type: u32,
    pub TimeDateStamp: u32,
    pub SizeOfImage: u32,
    pub ImageBase: u64,
    pub CheckSum: u32,
    pub MappedFileNameLength: u16,
    pub MappedFileName: *const u16,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct HandleProcess {
    pub ExitStatus: u32,
    pub PebBaseAddress: u64,
    pub AffinityMask: u64,
    pub BasePriority: i32,
    pub ProcessId: u32,
    pub ParentProcessId: u32,
    pub Flags: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct HandleThread {
    pub ExitStatus: u32,
    pub TebBaseAddress: u64,
    pub ProcessId: u32,
    pub ThreadId: u32,
    pub AffinityMask: u64,
    pub Priority: i32,
    pub BasePriority: i32,
    pub Win32StartAddress: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct HandleSection {
    pub BaseAddress: u64,
    pub AllocationAttributes: u32,
    pub MaximumSize: i64,
}

/// The `TypeSpecificInformation` union (48 bytes, 8-aligned).
#[repr(C)]
#[derive(Clone, Copy)]
pub union TypeSpecificInformation {
    pub Process: HandleProcess,
    pub Thread: HandleThread,
    /// Mutant: CurrentCount, Abandoned, OwnerProcessId, OwnerThreadId.
    pub Mutant: [u32; 4],
    /// Event: ManualReset, Signaled.
    pub Event: [i32; 2],
    pub Section: HandleSection,
    /// Semaphore: CurrentCount, MaximumCount.
    pub Semaphore: [i32; 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct PSS_HANDLE_ENTRY {
    pub Handle: u64,
    pub Flags: u32,
    pub ObjectType: i32,
    pub CaptureTime: FILETIME,
    pub Attributes: u32,
    pub GrantedAccess: u32,
    pub HandleCount: u32,
    pub PointerCount: u32,
    pub PagedPoolCharge: u32,
    pub NonPagedPoolCharge: u32,
    pub CreationTime: FILETIME,
    pub TypeNameLength: u16,
    pub TypeName: *const u16,
    pub ObjectNameLength: u16,
    pub ObjectName: *const u16,
    pub TypeSpecificInformation: TypeSpecificInformation,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct PSS_THREAD_ENTRY {
    pub ExitStatus: u32,
    pub TebBaseAddress: u64,
    pub ProcessId: u32,
    pub ThreadId: u32,
    pub AffinityMask: u64,
    pub Priority: i32,
    pub BasePriority: i32,
    pub LastSyscallFirstArgument: u64,
    pub LastSyscallNumber: u16,
    pub CreateTime: FILETIME,
    pub ExitTime: FILETIME,
    pub KernelTime: FILETIME,
    pub UserTime: FILETIME,
    pub Win32StartAddress: u64,
    pub CaptureTime: FILETIME,
    pub Flags: u32,
    pub SuspendCount: u16,
    pub SizeOfContextRecord: u16,
    pub ContextRecord: *mut c_void,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct PSS_THREAD_NAME {
    pub ThreadNameSize: u16,
    pub ThreadName: *const u16,
}

/// `PSS_ALLOCATOR`: the routines use the C calling convention (`WINAPI` is empty on Linux).
#[repr(C)]
pub struct PSS_ALLOCATOR {
    pub Context: *mut c_void,
    pub AllocRoutine: Option<unsafe extern "C" fn(*mut c_void, u32) -> *mut c_void>,
    pub FreeRoutine: Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
}

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<MEMORY_BASIC_INFORMATION>() == 48);
    assert!(size_of::<PSS_PROCESS_INFORMATION>() == 704);
    assert!(offset_of!(PSS_PROCESS_INFORMATION, CreateTime) == 40);
    assert!(offset_of!(PSS_PROCESS_INFORMATION, PageFaultCount) == 96);
    assert!(offset_of!(PSS_PROCESS_INFORMATION, ImageFileName) == 180);
    assert!(size_of::<PSS_PERFORMANCE_COUNTERS>() == 96);
    assert!(size_of::<PSS_AUXILIARY_PAGE_ENTRY>() == 80);
    assert!(offset_of!(PSS_AUXILIARY_PAGE_ENTRY, CaptureTime) == 56);
    assert!(offset_of!(PSS_AUXILIARY_PAGE_ENTRY, PageSize) == 72);
    assert!(size_of::<PSS_VA_SPACE_ENTRY>() == 80);
    assert!(offset_of!(PSS_VA_SPACE_ENTRY, RegionSize) == 24);
    assert!(offset_of!(PSS_VA_SPACE_ENTRY, MappedFileName) == 72);
    assert!(size_of::<TypeSpecificInformation>() == 48);
    assert!(size_of::<PSS_HANDLE_ENTRY>() == 136);
    assert!(offset_of!(PSS_HANDLE_ENTRY, TypeName) == 64);
    assert!(offset_of!(PSS_HANDLE_ENTRY, TypeSpecificInformation) == 88);
    assert!(size_of::<PSS_THREAD_ENTRY>() == 120);
    assert!(offset_of!(PSS_THREAD_ENTRY, CreateTime) == 52);
    assert!(offset_of!(PSS_THREAD_ENTRY, Win32StartAddress) == 88);
    assert!(offset_of!(PSS_THREAD_ENTRY, ContextRecord) == 112);
    assert!(size_of::<PSS_THREAD_NAME>() == 16);
    assert!(size_of::<PSS_ALLOCATOR>() == 24);
};
