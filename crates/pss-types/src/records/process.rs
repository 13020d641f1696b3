use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::flags::ProcessFlags;

/// `PSS_PROCESS_INFORMATION`: facts about the captured process. Always present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInformation {
    /// `ExitStatus`: `STILL_ACTIVE` (259) for a live process.
    pub exit_status: u32,
    /// `PebBaseAddress`: the start of the argument block (`arg_start` of `/proc/PID/stat`).
    pub peb_base_address: u64,
    /// `AffinityMask`: CPUs 0–63 the leader may run on.
    pub affinity_mask: u64,
    /// `BasePriority`: the base priority of the priority class (8 for nice 0).
    pub base_priority: i32,
    /// `ProcessId`.
    pub process_id: u32,
    /// `ParentProcessId`.
    pub parent_process_id: u32,
    /// `Flags`: `FROZEN` when the process was stopped (state `T`).
    pub flags: ProcessFlags,
    /// `CreateTime`.
    pub create_time: SystemTime,
    /// `ExitTime`: `None` for a live process.
    pub exit_time: Option<SystemTime>,
    /// `KernelTime`: system CPU time of all threads.
    pub kernel_time: Duration,
    /// `UserTime`: user CPU time of all threads.
    pub user_time: Duration,
    /// `PriorityClass`.
    pub priority_class: PriorityClass,
    /// `PeakVirtualSize` (`VmPeak`).
    pub peak_virtual_size: u64,
    /// `VirtualSize` (`VmSize`).
    pub virtual_size: u64,
    /// `PageFaultCount`: minor + major faults.
    pub page_fault_count: u64,
    /// `PeakWorkingSetSize` (`VmHWM`).
    pub peak_working_set_size: u64,
    /// `WorkingSetSize` (`VmRSS`).
    pub working_set_size: u64,
    /// `QuotaPeakPagedPoolUsage`: no Linux counterpart, 0.
    pub quota_peak_paged_pool_usage: u64,
    /// `QuotaPagedPoolUsage`: no Linux counterpart, 0.
    pub quota_paged_pool_usage: u64,
    /// `QuotaPeakNonPagedPoolUsage`: no Linux counterpart, 0.
    pub quota_peak_non_paged_pool_usage: u64,
    /// `QuotaNonPagedPoolUsage`: the page tables (`VmPTE`), the process's unswappable
    /// kernel memory.
    pub quota_non_paged_pool_usage: u64,
    /// `PagefileUsage`: the commit charge, private writable memory (`VmData + VmStk`).
    pub pagefile_usage: u64,
    /// `PeakPagefileUsage`: Linux keeps no peak of the commit charge, 0.
    pub peak_pagefile_usage: u64,
    /// `PrivateUsage`: same as `pagefile_usage`, as on Windows.
    pub private_usage: u64,
    /// `ExecuteFlags`: reserved, 0.
    pub execute_flags: u32,
    /// `ImageFileName`: the executable (`/proc/PID/exe`).
    pub image_file_name: PathBuf,
    /// Linux facts with no Windows field.
    pub linux: ProcessLinux,
}

/// The Linux-only part of [`ProcessInformation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessLinux {
    /// The state letter before the capture (`R`, `S`, `T`, …).
    pub state: char,
    /// `comm`.
    pub comm: OsString,
    /// The nice value of the leader.
    pub nice: i32,
    /// The scheduling policy (`SCHED_*`).
    pub policy: u32,
    /// Number of threads.
    pub num_threads: u32,
    /// Real uid.
    pub uid: u32,
    /// Resident anonymous memory (`RssAnon`).
    pub rss_anon: u64,
    /// Swapped-out memory (`VmSwap`).
    pub vm_swap: u64,
    /// Seccomp mode (0 none, 1 strict, 2 filter).
    pub seccomp: u8,
}

/// `PriorityClass` values (spec §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum PriorityClass {
    /// `IDLE_PRIORITY_CLASS`: nice 15..19 or `SCHED_IDLE`.
    Idle = 0x40,
    /// `BELOW_NORMAL_PRIORITY_CLASS`: nice 1..14.
    BelowNormal = 0x4000,
    /// `NORMAL_PRIORITY_CLASS`: nice 0.
    Normal = 0x20,
    /// `ABOVE_NORMAL_PRIORITY_CLASS`: nice −1..−14.
    AboveNormal = 0x8000,
    /// `HIGH_PRIORITY_CLASS`: nice −15..−20.
    High = 0x80,
    /// `REALTIME_PRIORITY_CLASS`: `SCHED_FIFO`/`SCHED_RR`.
    Realtime = 0x100,
}

impl PriorityClass {
    /// The Windows value.
    pub fn value(self) -> u32 {
        self as u32
    }

    /// The base priority level of the class (4, 6, 8, 10, 13, 24).
    pub fn base_priority(self) -> i32 {
        match self {
            PriorityClass::Idle => 4,
            PriorityClass::BelowNormal => 6,
            PriorityClass::Normal => 8,
            PriorityClass::AboveNormal => 10,
            PriorityClass::High => 13,
            PriorityClass::Realtime => 24,
        }
    }
}
