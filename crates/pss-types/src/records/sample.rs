//! A snapshot's records with every field set, and set apart from its default (feature
//! `samples`): what the projections' tests encode, render and convert, so that a field a
//! projection forgets shows. Written out field by field: a field added to a record fails
//! to build here until it is given a value.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::flags::{
    CaptureFlags, ContextFlags, HandleFlags, ObjectType, ProcessFlags, ThreadFlags,
};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn registers(seed: u64) -> GeneralRegisters {
    let words: Vec<u64> = (1..=64).map(|i| seed * 1000 + i).collect();
    let n = GeneralRegisters::default().to_words().len();
    GeneralRegisters::from_words(&words[..n]).expect("as many words as registers")
}

impl SnapshotRecords {
    /// Records with every field set (see the module's doc).
    pub fn sample() -> SnapshotRecords {
        SnapshotRecords {
            process: process(),
            threads: Some(vec![thread()]),
            handles: Some(vec![handle()]),
            va_space: Some(vec![region()]),
            aux_pages: Some(vec![AuxiliaryPage {
                address: 0x7f00_0000_1000,
                thread_id: 4242,
                kind: AuxiliaryPageKind::Tls,
                capture_time: at(7),
                contents: vec![0xab; 4096],
            }]),
            performance: Some(performance()),
            capture: CaptureInfo {
                pid: 4241,
                flags: CaptureFlags::THREADS | CaptureFlags::HANDLES,
                context_flags: ContextFlags::ALL,
                started: at(1),
                pause: Duration::from_micros(321),
                threads_stopped: 3,
                seize_rounds: 2,
                total: Duration::from_micros(4321),
            },
            warnings: vec![Warning {
                tid: Some(4242),
                fd: Some(7),
                message: "a warning".into(),
            }],
        }
    }
}

fn process() -> ProcessInformation {
    ProcessInformation {
        exit_status: 259,
        peb_base_address: 0x7ffd_0000_1000,
        affinity_mask: 3,
        base_priority: 8,
        process_id: 4241,
        parent_process_id: 1,
        flags: ProcessFlags::from_bits_retain(0x10),
        create_time: at(2),
        exit_time: Some(at(3)),
        kernel_time: Duration::from_millis(11),
        user_time: Duration::from_millis(12),
        priority_class: PriorityClass::BelowNormal,
        peak_virtual_size: 101,
        virtual_size: 102,
        page_fault_count: 103,
        peak_working_set_size: 104,
        working_set_size: 105,
        quota_peak_paged_pool_usage: 106,
        quota_paged_pool_usage: 107,
        quota_peak_non_paged_pool_usage: 108,
        quota_non_paged_pool_usage: 109,
        pagefile_usage: 110,
        peak_pagefile_usage: 111,
        private_usage: 112,
        execute_flags: 113,
        image_file_name: PathBuf::from("/usr/bin/sample"),
        linux: ProcessLinux {
            state: 'S',
            comm: OsString::from("sample"),
            nice: -3,
            policy: 1,
            num_threads: 3,
            uid: 1000,
            rss_anon: 114,
            vm_swap: 115,
            seccomp: 2,
        },
    }
}

fn thread() -> ThreadEntry {
    ThreadEntry {
        exit_status: 259,
        teb_base_address: 0x7f00_0000_2000,
        process_id: 4241,
        thread_id: 4242,
        affinity_mask: 2,
        priority: 9,
        base_priority: 8,
        last_syscall_first_argument: 5,
        last_syscall_number: 7,
        create_time: at(4),
        exit_time: Some(at(5)),
        kernel_time: Duration::from_millis(21),
        user_time: Duration::from_millis(22),
        win32_start_address: 0x40_1000,
        capture_time: at(6),
        flags: ThreadFlags::from_bits_retain(1),
        suspend_count: 1,
        context: Some(ThreadContext {
            flags: ContextFlags::ALL,
            general: registers(7),
            fp: Some(vec![1; 512]),
            xstate: Some(vec![2; 1024]),
            debug: Some([1, 2, 3, 4, 5, 6, 7, 8]),
        }),
        linux: ThreadLinux {
            name: OsString::from("worker"),
            state: 'S',
            syscall: Some(0),
            processor: 1,
            nice: 2,
            sigmask: Some(0x4000),
            read: ThreadRead::Blocked,
        },
    }
}

fn handle() -> HandleEntry {
    HandleEntry {
        handle: 7,
        flags: HandleFlags::all(),
        object_type: ObjectType::Section,
        capture_time: at(8),
        attributes: 2,
        granted_access: 3,
        handle_count: 4,
        pointer_count: 5,
        paged_pool_charge: 6,
        non_paged_pool_charge: 7,
        creation_time: Some(at(9)),
        type_name: FdKind::MemFd,
        object_name: Some(OsString::from("/memfd:sample (deleted)")),
        type_specific: Some(TypeSpecific::Section {
            base_address: 0,
            allocation_attributes: 0x800_0000,
            maximum_size: 4096,
        }),
        linux: HandleLinux {
            open_flags: 0o2,
            pos: 11,
            mnt_id: 12,
            inode: 13,
            mode: 0o100_600,
            size: 4096,
            detail: Some(FdDetail::EventFd {
                count: 3,
                semaphore: true,
            }),
        },
    }
}

fn region() -> MemoryRegion {
    MemoryRegion {
        base_address: 0x40_0000,
        allocation_base: 0x40_0000,
        allocation_protect: PageProtection(0x20),
        region_size: 0x1000,
        state: MemState::Commit,
        protect: PageProtection(0x02),
        mem_type: MemType::Image,
        section: Some(SectionInformation {
            time_date_stamp: 1,
            size_of_image: 0x3000,
            image_base: 0x40_0000,
            check_sum: 2,
            mapped_file_name: Some(PathBuf::from("/usr/bin/sample")),
            build_id: Some(vec![0xde, 0xad, 0xbe, 0xef]),
        }),
        linux: Some(RegionLinux {
            perms: *b"r-xp",
            offset: 0x1000,
            dev: (0xfe, 0x01),
            inode: 77,
            pathname: OsString::from("/usr/bin/sample"),
        }),
    }
}

fn performance() -> PerformanceCounters {
    let phase = |n: u64| PhaseCost {
        cycles: n * 1000,
        wall: Duration::from_micros(n),
    };
    PerformanceCounters {
        total: phase(1),
        va_clone: phase(2),
        va_space: phase(3),
        aux_pages: phase(4),
        handles: phase(5),
        threads: phase(6),
        pause: Duration::from_micros(7),
    }
}
