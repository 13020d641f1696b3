//! The encoding of each record of a snapshot, field by field in declaration order
//! (`docs/format.md` §4). Every `decode_*` is the exact inverse of its `encode_*`.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use crate::codec::{Decoded, Reader, Writer};
use pss_types::flags::{
    CaptureFlags, ContextFlags, HandleFlags, ObjectType, ProcessFlags, ThreadFlags,
};
use pss_types::records::{
    AuxiliaryPage, AuxiliaryPageKind, CaptureInfo, FdDetail, FdKind, GeneralRegisters, HandleEntry,
    HandleLinux, MemState, MemType, MemoryRegion, PageProtection, PerformanceCounters, PhaseCost,
    PriorityClass, ProcessInformation, ProcessLinux, RegionLinux, SectionInformation,
    ThreadContext, ThreadEntry, ThreadLinux, ThreadRead, TypeSpecific, Warning,
};

// ---- small shared pieces ----

fn os(w: &mut Writer, s: &std::ffi::OsStr) {
    w.bytes(s.as_bytes());
}

fn os_dec(r: &mut Reader<'_>) -> Decoded<OsString> {
    Ok(OsString::from_vec(r.bytes()?.to_vec()))
}

fn path_dec(r: &mut Reader<'_>) -> Decoded<PathBuf> {
    os_dec(r).map(PathBuf::from)
}

fn vec_dec(r: &mut Reader<'_>) -> Decoded<Vec<u8>> {
    r.bytes().map(<[u8]>::to_vec)
}

fn char_dec(r: &mut Reader<'_>) -> Decoded<char> {
    let v = r.u32()?;
    char::from_u32(v).ok_or_else(|| r.error(format!("a state letter, found {v:#x}")))
}

/// A value from a fixed table, stored as its index.
fn index_of<T: PartialEq>(table: &[T], v: &T) -> u8 {
    table.iter().position(|x| x == v).unwrap_or(0) as u8
}

fn from_table<T: Copy>(r: &mut Reader<'_>, table: &[T], what: &str) -> Decoded<T> {
    let i = r.u8()?;
    table
        .get(usize::from(i))
        .copied()
        .ok_or_else(|| r.error(format!("{what}, found index {i}")))
}

// ---- capture info and warnings ----

/// Writes the capture facts.
pub fn encode_capture(w: &mut Writer, c: &CaptureInfo) {
    w.i32(c.pid);
    w.u32(c.flags.bits());
    w.u32(c.context_flags.bits());
    w.time(c.started);
    w.duration(c.pause);
    w.u64(c.threads_stopped as u64);
    w.u32(c.seize_rounds);
    w.duration(c.total);
}

/// Reads what [`encode_capture`] wrote.
pub fn decode_capture(r: &mut Reader<'_>) -> Decoded<CaptureInfo> {
    Ok(CaptureInfo {
        pid: r.i32()?,
        flags: CaptureFlags::from_bits_retain(r.u32()?),
        context_flags: ContextFlags::from_bits_retain(r.u32()?),
        started: r.time()?,
        pause: r.duration()?,
        threads_stopped: r.u64()? as usize,
        seize_rounds: r.u32()?,
        total: r.duration()?,
    })
}

/// Writes a warning.
pub fn encode_warning(w: &mut Writer, x: &Warning) {
    w.opt(&x.tid, |w, &t| w.i32(t));
    w.opt(&x.fd, |w, &d| w.i32(d));
    w.str(&x.message);
}

/// Reads what [`encode_warning`] wrote.
pub fn decode_warning(r: &mut Reader<'_>) -> Decoded<Warning> {
    Ok(Warning {
        tid: r.opt(|r| r.i32())?,
        fd: r.opt(|r| r.i32())?,
        message: r.str()?,
    })
}

// ---- process ----

const PRIORITY_CLASSES: [PriorityClass; 6] = [
    PriorityClass::Idle,
    PriorityClass::BelowNormal,
    PriorityClass::Normal,
    PriorityClass::AboveNormal,
    PriorityClass::High,
    PriorityClass::Realtime,
];

/// Writes the process information.
pub fn encode_process(w: &mut Writer, p: &ProcessInformation) {
    w.u32(p.exit_status);
    w.u64(p.peb_base_address);
    w.u64(p.affinity_mask);
    w.i32(p.base_priority);
    w.u32(p.process_id);
    w.u32(p.parent_process_id);
    w.u32(p.flags.bits());
    w.time(p.create_time);
    w.opt(&p.exit_time, |w, &t| w.time(t));
    w.duration(p.kernel_time);
    w.duration(p.user_time);
    w.u8(index_of(&PRIORITY_CLASSES, &p.priority_class));
    for v in [
        p.peak_virtual_size,
        p.virtual_size,
        p.page_fault_count,
        p.peak_working_set_size,
        p.working_set_size,
        p.quota_peak_paged_pool_usage,
        p.quota_paged_pool_usage,
        p.quota_peak_non_paged_pool_usage,
        p.quota_non_paged_pool_usage,
        p.pagefile_usage,
        p.peak_pagefile_usage,
        p.private_usage,
    ] {
        w.u64(v);
    }
    w.u32(p.execute_flags);
    os(w, p.image_file_name.as_os_str());
    let l = &p.linux;
    w.u32(u32::from(l.state));
    os(w, &l.comm);
    w.i32(l.nice);
    w.u32(l.policy);
    w.u32(l.num_threads);
    w.u32(l.uid);
    w.u64(l.rss_anon);
    w.u64(l.vm_swap);
    w.u8(l.seccomp);
}

/// Reads what [`encode_process`] wrote.
pub fn decode_process(r: &mut Reader<'_>) -> Decoded<ProcessInformation> {
    Ok(ProcessInformation {
        exit_status: r.u32()?,
        peb_base_address: r.u64()?,
        affinity_mask: r.u64()?,
        base_priority: r.i32()?,
        process_id: r.u32()?,
        parent_process_id: r.u32()?,
        flags: ProcessFlags::from_bits_retain(r.u32()?),
        create_time: r.time()?,
        exit_time: r.opt(|r| r.time())?,
        kernel_time: r.duration()?,
        user_time: r.duration()?,
        priority_class: from_table(r, &PRIORITY_CLASSES, "a priority class")?,
        peak_virtual_size: r.u64()?,
        virtual_size: r.u64()?,
        page_fault_count: r.u64()?,
        peak_working_set_size: r.u64()?,
        working_set_size: r.u64()?,
        quota_peak_paged_pool_usage: r.u64()?,
        quota_paged_pool_usage: r.u64()?,
        quota_peak_non_paged_pool_usage: r.u64()?,
        quota_non_paged_pool_usage: r.u64()?,
        pagefile_usage: r.u64()?,
        peak_pagefile_usage: r.u64()?,
        private_usage: r.u64()?,
        execute_flags: r.u32()?,
        image_file_name: path_dec(r)?,
        linux: ProcessLinux {
            state: char_dec(r)?,
            comm: os_dec(r)?,
            nice: r.i32()?,
            policy: r.u32()?,
            num_threads: r.u32()?,
            uid: r.u32()?,
            rss_anon: r.u64()?,
            vm_swap: r.u64()?,
            seccomp: r.u8()?,
        },
    })
}

// ---- threads ----

/// The general registers, as a counted list of words (27 on x86_64, 34 on aarch64).
pub fn encode_regs(w: &mut Writer, g: &GeneralRegisters) {
    w.seq(&g.to_words(), |w, &v| w.u64(v));
}

/// Reads the general registers.
pub fn decode_regs(r: &mut Reader<'_>) -> Decoded<GeneralRegisters> {
    let words = r.seq(|r| r.u64())?;
    GeneralRegisters::from_words(&words)
        .ok_or_else(|| r.error(format!("a register set, found {} words", words.len())))
}

/// Writes a register context.
pub fn encode_context(w: &mut Writer, c: &ThreadContext) {
    w.u32(c.flags.bits());
    encode_regs(w, &c.general);
    w.opt(&c.fp, |w, b| w.bytes(b));
    w.opt(&c.xstate, |w, b| w.bytes(b));
    w.opt(&c.debug, |w, d| d.iter().for_each(|&v| w.u64(v)));
}

/// Reads what [`encode_context`] wrote.
pub fn decode_context(r: &mut Reader<'_>) -> Decoded<ThreadContext> {
    Ok(ThreadContext {
        flags: ContextFlags::from_bits_retain(r.u32()?),
        general: decode_regs(r)?,
        fp: r.opt(vec_dec)?,
        xstate: r.opt(vec_dec)?,
        debug: r.opt(|r| {
            let mut d = [0u64; 8];
            for v in &mut d {
                *v = r.u64()?;
            }
            Ok(d)
        })?,
    })
}

/// Writes a thread entry.
pub fn encode_thread(w: &mut Writer, t: &ThreadEntry) {
    w.u32(t.exit_status);
    w.u64(t.teb_base_address);
    w.u32(t.process_id);
    w.u32(t.thread_id);
    w.u64(t.affinity_mask);
    w.i32(t.priority);
    w.i32(t.base_priority);
    w.u64(t.last_syscall_first_argument);
    w.u32(u32::from(t.last_syscall_number));
    w.time(t.create_time);
    w.opt(&t.exit_time, |w, &e| w.time(e));
    w.duration(t.kernel_time);
    w.duration(t.user_time);
    w.u64(t.win32_start_address);
    w.time(t.capture_time);
    w.u32(t.flags.bits());
    w.u32(u32::from(t.suspend_count));
    w.opt(&t.context, encode_context);
    let l = &t.linux;
    os(w, &l.name);
    w.u32(u32::from(l.state));
    w.opt(&l.syscall, |w, &s| w.u64(s as u64));
    w.u32(l.processor);
    w.i32(l.nice);
    w.opt(&l.sigmask, |w, &m| w.u64(m));
}

fn u16_dec(r: &mut Reader<'_>, what: &str) -> Decoded<u16> {
    let v = r.u32()?;
    u16::try_from(v).map_err(|_| r.error(format!("{what} (16 bits), found {v}")))
}

/// Reads what [`encode_thread`] wrote.
pub fn decode_thread(r: &mut Reader<'_>) -> Decoded<ThreadEntry> {
    Ok(ThreadEntry {
        exit_status: r.u32()?,
        teb_base_address: r.u64()?,
        process_id: r.u32()?,
        thread_id: r.u32()?,
        affinity_mask: r.u64()?,
        priority: r.i32()?,
        base_priority: r.i32()?,
        last_syscall_first_argument: r.u64()?,
        last_syscall_number: u16_dec(r, "a syscall number")?,
        create_time: r.time()?,
        exit_time: r.opt(|r| r.time())?,
        kernel_time: r.duration()?,
        user_time: r.duration()?,
        win32_start_address: r.u64()?,
        capture_time: r.time()?,
        flags: ThreadFlags::from_bits_retain(r.u32()?),
        suspend_count: u16_dec(r, "a suspend count")?,
        context: r.opt(decode_context)?,
        linux: ThreadLinux {
            name: os_dec(r)?,
            state: char_dec(r)?,
            syscall: r.opt(|r| r.u64().map(|v| v as i64))?,
            processor: r.u32()?,
            nice: r.i32()?,
            sigmask: r.opt(|r| r.u64())?,
            // Section 9, when there is one (`format::decode`).
            read: ThreadRead::Together,
        },
    })
}

/// Writes how a thread was read (section 9).
pub fn encode_thread_read(w: &mut Writer, t: &ThreadEntry) {
    w.u8(match t.linux.read {
        ThreadRead::Together => 0,
        ThreadRead::Alone => 1,
        ThreadRead::Blocked => 2,
    });
}

/// Reads what [`encode_thread_read`] wrote.
pub fn decode_thread_read(r: &mut Reader<'_>) -> Decoded<ThreadRead> {
    Ok(match r.u8()? {
        0 => ThreadRead::Together,
        1 => ThreadRead::Alone,
        2 => ThreadRead::Blocked,
        v => return Err(r.error(format!("a thread read (0-2), found {v}"))),
    })
}

// ---- handles ----

const FD_KINDS: [FdKind; 19] = [
    FdKind::File,
    FdKind::Directory,
    FdKind::Device,
    FdKind::Pipe,
    FdKind::Fifo,
    FdKind::Socket,
    FdKind::EventFd,
    FdKind::Epoll,
    FdKind::TimerFd,
    FdKind::SignalFd,
    FdKind::Inotify,
    FdKind::Fanotify,
    FdKind::PidFd,
    FdKind::MemFd,
    FdKind::Userfaultfd,
    FdKind::IoUring,
    FdKind::SharedMemory,
    FdKind::AnonInode,
    FdKind::Other,
];

fn encode_type_specific(w: &mut Writer, t: &TypeSpecific) {
    match *t {
        TypeSpecific::Process {
            exit_status,
            peb_base_address,
            affinity_mask,
            base_priority,
            process_id,
            parent_process_id,
            flags,
        } => {
            w.u8(1);
            w.u32(exit_status);
            w.u64(peb_base_address);
            w.u64(affinity_mask);
            w.i32(base_priority);
            w.u32(process_id);
            w.u32(parent_process_id);
            w.u32(flags);
        }
        TypeSpecific::Thread {
            exit_status,
            teb_base_address,
            process_id,
            thread_id,
            affinity_mask,
            priority,
            base_priority,
            win32_start_address,
        } => {
            w.u8(2);
            w.u32(exit_status);
            w.u64(teb_base_address);
            w.u32(process_id);
            w.u32(thread_id);
            w.u64(affinity_mask);
            w.i32(priority);
            w.i32(base_priority);
            w.u64(win32_start_address);
        }
        TypeSpecific::Event {
            manual_reset,
            signaled,
        } => {
            w.u8(4);
            w.bool(manual_reset);
            w.bool(signaled);
        }
        TypeSpecific::Section {
            base_address,
            allocation_attributes,
            maximum_size,
        } => {
            w.u8(5);
            w.u64(base_address);
            w.u32(allocation_attributes);
            w.u64(maximum_size as u64);
        }
        TypeSpecific::Semaphore {
            current_count,
            maximum_count,
        } => {
            w.u8(6);
            w.i32(current_count);
            w.i32(maximum_count);
        }
    }
}

fn decode_type_specific(r: &mut Reader<'_>) -> Decoded<TypeSpecific> {
    Ok(match r.u8()? {
        1 => TypeSpecific::Process {
            exit_status: r.u32()?,
            peb_base_address: r.u64()?,
            affinity_mask: r.u64()?,
            base_priority: r.i32()?,
            process_id: r.u32()?,
            parent_process_id: r.u32()?,
            flags: r.u32()?,
        },
        2 => TypeSpecific::Thread {
            exit_status: r.u32()?,
            teb_base_address: r.u64()?,
            process_id: r.u32()?,
            thread_id: r.u32()?,
            affinity_mask: r.u64()?,
            priority: r.i32()?,
            base_priority: r.i32()?,
            win32_start_address: r.u64()?,
        },
        4 => TypeSpecific::Event {
            manual_reset: r.bool()?,
            signaled: r.bool()?,
        },
        5 => TypeSpecific::Section {
            base_address: r.u64()?,
            allocation_attributes: r.u32()?,
            maximum_size: r.u64()? as i64,
        },
        6 => TypeSpecific::Semaphore {
            current_count: r.i32()?,
            maximum_count: r.i32()?,
        },
        t => return Err(r.error(format!("a type-specific tag (1, 2, 4, 5, 6), found {t}"))),
    })
}

fn encode_detail(w: &mut Writer, d: &FdDetail) {
    match d {
        FdDetail::EventFd { count, semaphore } => {
            w.u8(1);
            w.u64(*count);
            w.bool(*semaphore);
        }
        FdDetail::PidFd { pid, thread } => {
            w.u8(2);
            w.u64(*pid as u64);
            w.bool(*thread);
        }
        FdDetail::TimerFd {
            clockid,
            ticks,
            it_value,
            it_interval,
        } => {
            w.u8(3);
            w.u64(*clockid as u64);
            w.u64(*ticks);
            w.duration(*it_value);
            w.duration(*it_interval);
        }
        FdDetail::SignalFd { sigmask } => {
            w.u8(4);
            w.u64(*sigmask);
        }
        FdDetail::Inotify { watches } => {
            w.u8(5);
            w.u32(*watches);
        }
        FdDetail::Epoll { targets } => {
            w.u8(6);
            w.seq(targets, |w, &(fd, events)| {
                w.i32(fd);
                w.u32(events);
            });
        }
    }
}

fn decode_detail(r: &mut Reader<'_>) -> Decoded<FdDetail> {
    Ok(match r.u8()? {
        1 => FdDetail::EventFd {
            count: r.u64()?,
            semaphore: r.bool()?,
        },
        2 => FdDetail::PidFd {
            pid: r.u64()? as i64,
            thread: r.bool()?,
        },
        3 => FdDetail::TimerFd {
            clockid: r.u64()? as i64,
            ticks: r.u64()?,
            it_value: r.duration()?,
            it_interval: r.duration()?,
        },
        4 => FdDetail::SignalFd { sigmask: r.u64()? },
        5 => FdDetail::Inotify { watches: r.u32()? },
        6 => FdDetail::Epoll {
            targets: r.seq(|r| Ok((r.i32()?, r.u32()?)))?,
        },
        t => return Err(r.error(format!("an fd detail tag (1–6), found {t}"))),
    })
}

/// Writes a handle entry.
pub fn encode_handle(w: &mut Writer, h: &HandleEntry) {
    w.i32(h.handle);
    w.u32(h.flags.bits());
    w.i32(h.object_type.value());
    w.time(h.capture_time);
    for v in [
        h.attributes,
        h.granted_access,
        h.handle_count,
        h.pointer_count,
        h.paged_pool_charge,
        h.non_paged_pool_charge,
    ] {
        w.u32(v);
    }
    w.opt(&h.creation_time, |w, &t| w.time(t));
    w.u8(index_of(&FD_KINDS, &h.type_name));
    w.opt(&h.object_name, |w, n| os(w, n));
    w.opt(&h.type_specific, encode_type_specific);
    let l = &h.linux;
    w.u32(l.open_flags);
    w.u64(l.pos);
    w.u64(l.mnt_id);
    w.u64(l.inode);
    w.u32(l.mode);
    w.u64(l.size);
    w.opt(&l.detail, encode_detail);
}

/// Reads what [`encode_handle`] wrote.
pub fn decode_handle(r: &mut Reader<'_>) -> Decoded<HandleEntry> {
    Ok(HandleEntry {
        handle: r.i32()?,
        flags: HandleFlags::from_bits_retain(r.u32()?),
        object_type: {
            let v = r.i32()?;
            ObjectType::from_value(v)
                .ok_or_else(|| r.error(format!("an object type, found {v}")))?
        },
        capture_time: r.time()?,
        attributes: r.u32()?,
        granted_access: r.u32()?,
        handle_count: r.u32()?,
        pointer_count: r.u32()?,
        paged_pool_charge: r.u32()?,
        non_paged_pool_charge: r.u32()?,
        creation_time: r.opt(|r| r.time())?,
        type_name: from_table(r, &FD_KINDS, "an fd kind")?,
        object_name: r.opt(os_dec)?,
        type_specific: r.opt(decode_type_specific)?,
        linux: HandleLinux {
            open_flags: r.u32()?,
            pos: r.u64()?,
            mnt_id: r.u64()?,
            inode: r.u64()?,
            mode: r.u32()?,
            size: r.u64()?,
            detail: r.opt(decode_detail)?,
        },
    })
}

// ---- address space ----

const MEM_STATES: [MemState; 3] = [MemState::Commit, MemState::Reserve, MemState::Free];
const MEM_TYPES: [MemType; 4] = [
    MemType::None,
    MemType::Private,
    MemType::Mapped,
    MemType::Image,
];

/// Writes a VA space region.
pub fn encode_region(w: &mut Writer, m: &MemoryRegion) {
    w.u64(m.base_address);
    w.u64(m.allocation_base);
    w.u32(m.allocation_protect.value());
    w.u64(m.region_size);
    w.u8(index_of(&MEM_STATES, &m.state));
    w.u32(m.protect.value());
    w.u8(index_of(&MEM_TYPES, &m.mem_type));
    w.opt(&m.section, |w, s| {
        w.u32(s.time_date_stamp);
        w.u32(s.size_of_image);
        w.u64(s.image_base);
        w.u32(s.check_sum);
        w.opt(&s.mapped_file_name, |w, p| os(w, p.as_os_str()));
        w.opt(&s.build_id, |w, b| w.bytes(b));
    });
    w.opt(&m.linux, |w, l| {
        w.buf.extend_from_slice(&l.perms);
        w.u64(l.offset);
        w.u32(l.dev.0);
        w.u32(l.dev.1);
        w.u64(l.inode);
        os(w, &l.pathname);
    });
}

/// Reads what [`encode_region`] wrote.
pub fn decode_region(r: &mut Reader<'_>) -> Decoded<MemoryRegion> {
    Ok(MemoryRegion {
        base_address: r.u64()?,
        allocation_base: r.u64()?,
        allocation_protect: PageProtection(r.u32()?),
        region_size: r.u64()?,
        state: from_table(r, &MEM_STATES, "a memory state")?,
        protect: PageProtection(r.u32()?),
        mem_type: from_table(r, &MEM_TYPES, "a memory type")?,
        section: r.opt(|r| {
            Ok(SectionInformation {
                time_date_stamp: r.u32()?,
                size_of_image: r.u32()?,
                image_base: r.u64()?,
                check_sum: r.u32()?,
                mapped_file_name: r.opt(path_dec)?,
                build_id: r.opt(vec_dec)?,
            })
        })?,
        linux: r.opt(|r| {
            Ok(RegionLinux {
                perms: [r.u8()?, r.u8()?, r.u8()?, r.u8()?],
                offset: r.u64()?,
                dev: (r.u32()?, r.u32()?),
                inode: r.u64()?,
                pathname: os_dec(r)?,
            })
        })?,
    })
}

// ---- auxiliary pages, performance ----

/// Writes an auxiliary page.
pub fn encode_aux_page(w: &mut Writer, p: &AuxiliaryPage) {
    w.u64(p.address);
    w.u32(p.thread_id);
    w.u8(match p.kind {
        AuxiliaryPageKind::Stack => 0,
        AuxiliaryPageKind::Tls => 1,
    });
    w.time(p.capture_time);
    w.bytes(&p.contents);
}

/// Reads what [`encode_aux_page`] wrote.
pub fn decode_aux_page(r: &mut Reader<'_>) -> Decoded<AuxiliaryPage> {
    Ok(AuxiliaryPage {
        address: r.u64()?,
        thread_id: r.u32()?,
        kind: match r.u8()? {
            0 => AuxiliaryPageKind::Stack,
            1 => AuxiliaryPageKind::Tls,
            k => return Err(r.error(format!("an auxiliary page kind (0, 1), found {k}"))),
        },
        capture_time: r.time()?,
        contents: vec_dec(r)?,
    })
}

/// Writes the performance counters.
pub fn encode_performance(w: &mut Writer, p: &PerformanceCounters) {
    for c in [
        p.total,
        p.va_clone,
        p.va_space,
        p.aux_pages,
        p.handles,
        p.threads,
    ] {
        w.u64(c.cycles);
        w.duration(c.wall);
    }
    w.duration(p.pause);
}

/// Reads what [`encode_performance`] wrote.
pub fn decode_performance(r: &mut Reader<'_>) -> Decoded<PerformanceCounters> {
    let mut phase = || -> Decoded<PhaseCost> {
        Ok(PhaseCost {
            cycles: r.u64()?,
            wall: r.duration()?,
        })
    };
    Ok(PerformanceCounters {
        total: phase()?,
        va_clone: phase()?,
        va_space: phase()?,
        aux_pages: phase()?,
        handles: phase()?,
        threads: phase()?,
        pause: r.duration()?,
    })
}
