//! The minidump's streams, each appended to the front blob: threads with their contexts
//! and stacks, thread names, modules with GNU build-ids, memory lists, memory info, process
//! times, and Breakpad's Linux text streams.

use minidump_common::format as md;

use super::blob::{rva, Blob};
use super::context;
use super::plan::{MemoryRange, Plan};
use pss_types::records::{MemState, MemType, MemoryRegion, ThreadEntry};
use pss_types::units;

/// `'BpEL'`: Breakpad's CodeView signature for an ELF build-id.
const CV_SIGNATURE_ELF: u32 = 0x4270_454c;

/// `MINIDUMP_THREAD_LIST`: each thread, its context, and its stack in the memory data.
pub(crate) fn thread_list(blob: &mut Blob, plan: &Plan<'_>) -> md::MINIDUMP_LOCATION_DESCRIPTOR {
    let contexts: Vec<_> = plan
        .threads
        .iter()
        .map(|t| context::put(blob, t.context.as_ref().expect("threads with registers")))
        .collect();
    let start = blob.put(plan.threads.len() as u32);
    for (t, ctx) in plan.threads.iter().zip(contexts) {
        let stack = plan
            .ranges
            .iter()
            .find(|r| r.stack_of == Some(t.thread_id))
            .map_or(md::MINIDUMP_MEMORY_DESCRIPTOR::default(), descriptor);
        blob.put(md::MINIDUMP_THREAD {
            thread_id: t.thread_id,
            suspend_count: u32::from(t.suspend_count),
            priority_class: plan.snapshot.process().priority_class.value(),
            priority: t.priority as u32,
            teb: t.teb_base_address,
            stack,
            thread_context: ctx,
        });
    }
    since(blob, start)
}

fn descriptor(r: &MemoryRange<'_>) -> md::MINIDUMP_MEMORY_DESCRIPTOR {
    md::MINIDUMP_MEMORY_DESCRIPTOR {
        start_of_memory_range: r.start,
        memory: md::MINIDUMP_LOCATION_DESCRIPTOR {
            data_size: r.len as u32,
            rva: rva(r.rva),
        },
    }
}

/// The location from file offset `start` to the end of the blob.
fn since(blob: &Blob, start: u32) -> md::MINIDUMP_LOCATION_DESCRIPTOR {
    md::MINIDUMP_LOCATION_DESCRIPTOR {
        data_size: (blob.pos() - u64::from(start)) as u32,
        rva: start,
    }
}

/// `MINIDUMP_THREAD_NAME_LIST`.
pub(crate) fn thread_names(
    blob: &mut Blob,
    threads: &[&ThreadEntry],
) -> md::MINIDUMP_LOCATION_DESCRIPTOR {
    let names: Vec<u32> = threads
        .iter()
        .map(|t| blob.string(&t.linux.name.to_string_lossy()))
        .collect();
    let start = blob.put(threads.len() as u32);
    for (t, name) in threads.iter().zip(names) {
        blob.put(md::MINIDUMP_THREAD_NAME {
            thread_id: t.thread_id,
            thread_name_rva: u64::from(name),
        });
    }
    since(blob, start)
}

/// `MINIDUMP_MODULE_LIST`: one module per ELF image of the VA space (its first mapping),
/// named by its path (the vDSO as `linux-gate.so`, as Breakpad names it), identified by its
/// GNU build-id in a `CV_INFO_ELF` record.
pub(crate) fn modules(
    blob: &mut Blob,
    regions: &[MemoryRegion],
) -> md::MINIDUMP_LOCATION_DESCRIPTOR {
    let images: Vec<&MemoryRegion> = regions
        .iter()
        .filter(|r| r.mem_type == MemType::Image)
        .filter(|r| {
            r.section
                .as_ref()
                .is_some_and(|s| s.image_base == r.base_address)
        })
        .collect();
    let mut records = Vec::with_capacity(images.len());
    for r in &images {
        let s = r.section.as_ref().expect("filtered on it");
        let name = s.mapped_file_name.as_deref().map_or(String::new(), |p| {
            let n = p.to_string_lossy();
            if n == "[vdso]" {
                "linux-gate.so".to_string()
            } else {
                n.into_owned()
            }
        });
        let name_rva = blob.string(&name);
        let cv = s.build_id.as_ref().map_or(Default::default(), |id| {
            let mut rec = CV_SIGNATURE_ELF.to_le_bytes().to_vec();
            rec.extend_from_slice(id);
            blob.raw(&rec)
        });
        records.push(md::MINIDUMP_MODULE {
            base_of_image: s.image_base,
            size_of_image: s.size_of_image,
            module_name_rva: name_rva,
            cv_record: cv,
            ..Default::default()
        });
    }
    let start = blob.put(records.len() as u32);
    for m in records {
        blob.put(m);
    }
    since(blob, start)
}

/// `MINIDUMP_MEMORY_LIST`: the ranges stored in the dump's 32-bit part (stacks, TLS pages).
pub(crate) fn memory_list(
    blob: &mut Blob,
    ranges: &[MemoryRange<'_>],
) -> md::MINIDUMP_LOCATION_DESCRIPTOR {
    let start = blob.put(ranges.len() as u32);
    for r in ranges {
        blob.put(descriptor(r));
    }
    since(blob, start)
}

/// `MINIDUMP_MEMORY64_LIST`: every range of a full-memory dump, their bytes one after the
/// other from `base`.
pub(crate) fn memory64_list(
    blob: &mut Blob,
    ranges: &[(u64, u64)],
    base: u64,
) -> md::MINIDUMP_LOCATION_DESCRIPTOR {
    let start = blob.put(ranges.len() as u64);
    blob.put(base);
    for &(start_of_memory_range, data_size) in ranges {
        blob.put(md::MINIDUMP_MEMORY_DESCRIPTOR64 {
            start_of_memory_range,
            data_size,
        });
    }
    since(blob, start)
}

/// `MINIDUMP_MEMORY_INFO_LIST`: the VA space as `VirtualQuery` describes it, mapped
/// regions only.
pub(crate) fn memory_info(
    blob: &mut Blob,
    regions: &[MemoryRegion],
) -> md::MINIDUMP_LOCATION_DESCRIPTOR {
    let mapped: Vec<&MemoryRegion> = regions
        .iter()
        .filter(|r| r.state != MemState::Free)
        .collect();
    let start = blob.put(md::MINIDUMP_MEMORY_INFO_LIST {
        size_of_header: 16,
        size_of_entry: 48,
        number_of_entries: mapped.len() as u64,
    });
    for r in mapped {
        blob.put(md::MINIDUMP_MEMORY_INFO {
            base_address: r.base_address,
            allocation_base: r.allocation_base,
            allocation_protection: r.allocation_protect.value(),
            __alignment1: 0,
            region_size: r.region_size,
            state: r.state.value(),
            protection: r.protect.value(),
            _type: r.mem_type.value(),
            __alignment2: 0,
        });
    }
    since(blob, start)
}

/// `MINIDUMP_MISC_INFO`: the process id, start time and CPU times.
pub(crate) fn misc_info(blob: &mut Blob, plan: &Plan<'_>) -> md::MINIDUMP_LOCATION_DESCRIPTOR {
    let p = plan.snapshot.process();
    let secs = |t: std::time::SystemTime| units::unix_seconds(t) as u32;
    let start = blob.put(md::MINIDUMP_MISC_INFO {
        size_of_info: 24,
        flags1: (md::MiscInfoFlags::MINIDUMP_MISC1_PROCESS_ID
            | md::MiscInfoFlags::MINIDUMP_MISC1_PROCESS_TIMES)
            .bits(),
        process_id: p.process_id,
        process_create_time: secs(p.create_time),
        process_user_time: p.user_time.as_secs() as u32,
        process_kernel_time: p.kernel_time.as_secs() as u32,
    });
    since(blob, start)
}

/// `/proc/PID/status` as the snapshot's records tell it (values of the pause; only the
/// fields the records hold — the file itself was not read at the pause).
pub(crate) fn status_text(plan: &Plan<'_>) -> Vec<u8> {
    use std::fmt::Write;
    let p = plan.snapshot.process();
    let kb = |b: u64| b / 1024;
    let mut s = String::new();
    let _ = writeln!(s, "Name:\t{}", p.linux.comm.to_string_lossy());
    let _ = writeln!(s, "State:\t{}", p.linux.state);
    let _ = writeln!(
        s,
        "Tgid:\t{}\nPid:\t{}\nPPid:\t{}",
        p.process_id, p.process_id, p.parent_process_id
    );
    let _ = writeln!(s, "Uid:\t{}", p.linux.uid);
    if let Some(proc) = &plan.proc {
        let _ = writeln!(s, "Gid:\t{}", proc.gid);
    }
    let _ = writeln!(
        s,
        "VmPeak:\t{} kB\nVmSize:\t{} kB",
        kb(p.peak_virtual_size),
        kb(p.virtual_size)
    );
    let _ = writeln!(
        s,
        "VmHWM:\t{} kB\nVmRSS:\t{} kB",
        kb(p.peak_working_set_size),
        kb(p.working_set_size)
    );
    let _ = writeln!(
        s,
        "RssAnon:\t{} kB\nVmPTE:\t{} kB",
        kb(p.linux.rss_anon),
        kb(p.quota_non_paged_pool_usage)
    );
    let _ = writeln!(s, "VmSwap:\t{} kB", kb(p.linux.vm_swap));
    let _ = writeln!(
        s,
        "Threads:\t{}\nSeccomp:\t{}",
        p.linux.num_threads, p.linux.seccomp
    );
    s.into_bytes()
}

/// `/proc/PID/maps` as the VA space records it, in the kernel's format.
pub(crate) fn maps_text(regions: &[MemoryRegion]) -> Vec<u8> {
    use std::fmt::Write;
    let mut s = String::new();
    for r in regions {
        let Some(l) = &r.linux else { continue };
        let mut line = format!(
            "{:08x}-{:08x} {} {:08x} {:02x}:{:02x} {} ",
            r.base_address,
            r.base_address + r.region_size,
            String::from_utf8_lossy(&l.perms),
            l.offset,
            l.dev.0,
            l.dev.1,
            l.inode
        );
        if !l.pathname.is_empty() {
            // The kernel pads the name to column 73 (`seq_pad`).
            while line.len() < 73 {
                line.push(' ');
            }
            line.push_str(&l.pathname.to_string_lossy());
        }
        let _ = writeln!(s, "{line}");
    }
    s.into_bytes()
}
