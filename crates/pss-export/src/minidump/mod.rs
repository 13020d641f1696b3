//! The minidump writer: the streams Breakpad, Crashpad and rust-minidump read from a Linux
//! dump — system info, threads with their registers as they were when stopped, thread
//! names, modules with GNU build-ids, memory info, each thread's stack (and TLS page), the
//! process's times, Breakpad's Linux streams (`/proc` maps, status, auxv, cmdline,
//! environ, cpuinfo, lsb-release) — and, on request, the whole memory (`Memory64List`).
//!
//! A dump of a live process has no exception stream: readers report it as "no crash".
//!
//! Layout: the header, the stream directory and every stream's records first (laid out in
//! memory: they are small), then the memory list's bytes (stacks), then full memory,
//! streamed from the clone a chunk at a time.

mod blob;
mod context;
mod plan;
mod streams;
mod system;

use minidump_common::format as md;

use super::copy::{Control, Copier};
use super::sink::Sink;
use super::{ExportOptions, ExportSummary, Format};
use blob::Blob;
use plan::{Plan, RangeSource};
use pss::Snapshot;
use pss_types::error::{Error, Result};

/// Writes a minidump of `snapshot` into `sink`.
pub(crate) fn write(
    snapshot: &Snapshot,
    sink: &mut Sink<'_>,
    options: &mut ExportOptions<'_, '_>,
    output: String,
) -> Result<ExportSummary> {
    let mut plan = Plan::new(snapshot, options)?;
    // The front's size does not depend on the offsets in it: lay it out once to learn it.
    let front_len = front(&plan, 0).bytes.len() as u64;
    let data_base = front_len.next_multiple_of(16);
    let ranges_end = plan.assign(data_base);
    let full_base = ranges_end.next_multiple_of(16);
    let head = front(&plan, full_base);
    let full_len: u64 = plan.full.iter().map(|s| s.file_size).sum();
    let mut ctl = Control {
        cancel: options.cancel,
        progress: options.progress.as_deref_mut(),
        total: full_base + full_len,
        output,
    };
    sink.reserve(ctl.total).map_err(|e| ctl.output_error(e))?;
    sink.write(&head.bytes).map_err(|e| ctl.output_error(e))?;
    sink.zeros(data_base - front_len);
    let mut proc_pagemap = plan.proc.as_mut().and_then(|p| p.pagemap.take());
    let clone = snapshot.va_clone();
    let direct = plan.direct_ranges();
    let mut copier = clone.map(|c| Copier::new(c, proc_pagemap.as_mut(), direct));
    let no_clone = || Error::Internal("a minidump range planned from a clone without one".into());
    for r in &plan.ranges {
        match r.from {
            RangeSource::Bytes(b) => sink.write(b).map_err(|e| ctl.output_error(e))?,
            RangeSource::Clone => {
                let c = copier.as_mut().ok_or_else(no_clone)?;
                c.copy(r.start, r.len, false, sink, &mut ctl)?;
            }
        }
    }
    sink.zeros(full_base - ranges_end);
    for s in &plan.full {
        let c = copier.as_mut().ok_or_else(no_clone)?;
        c.copy(
            s.vma.start,
            s.file_size,
            s.untouched_pages_are_zero(),
            sink,
            &mut ctl,
        )?;
    }
    if let Some(c) = &copier {
        c.check_clone()?;
    }
    ctl.tick(sink.emitted)?;
    sink.finish().map_err(|e| ctl.output_error(e))?;
    let mut warnings = std::mem::take(&mut plan.warnings);
    if let Some(c) = &copier {
        warnings.extend(super::core::unreadable_warning(&c.unreadable));
    }
    Ok(ExportSummary {
        format: Format::Minidump,
        bytes: sink.emitted,
        memory_bytes: plan.ranges.iter().map(|r| r.len).sum::<u64>() + full_len,
        holes: sink.holes,
        segments: plan.ranges.len() + plan.full.len(),
        threads: plan.threads.len(),
        read_ahead: copier.as_ref().is_some_and(|c| c.reads_ahead()),
        filter: options
            .filter
            .or(plan.proc.as_ref().map(|p| p.filter))
            .unwrap_or(super::DumpFilter::KERNEL_DEFAULT),
        warnings,
    })
}

/// The streams a dump of this plan has, in directory order.
#[derive(Debug, Clone, Copy)]
enum Stream {
    ThreadList,
    ThreadNames,
    Modules,
    SystemInfo,
    MiscInfo,
    MemoryList,
    Memory64List,
    MemoryInfo,
    CpuInfo,
    ProcStatus,
    LsbRelease,
    CmdLine,
    Environ,
    Auxv,
    Maps,
}

impl Stream {
    fn kind(self) -> md::MINIDUMP_STREAM_TYPE {
        use md::MINIDUMP_STREAM_TYPE as T;
        match self {
            Stream::ThreadList => T::ThreadListStream,
            Stream::ThreadNames => T::ThreadNamesStream,
            Stream::Modules => T::ModuleListStream,
            Stream::SystemInfo => T::SystemInfoStream,
            Stream::MiscInfo => T::MiscInfoStream,
            Stream::MemoryList => T::MemoryListStream,
            Stream::Memory64List => T::Memory64ListStream,
            Stream::MemoryInfo => T::MemoryInfoListStream,
            Stream::CpuInfo => T::LinuxCpuInfo,
            Stream::ProcStatus => T::LinuxProcStatus,
            Stream::LsbRelease => T::LinuxLsbRelease,
            Stream::CmdLine => T::LinuxCmdLine,
            Stream::Environ => T::LinuxEnviron,
            Stream::Auxv => T::LinuxAuxv,
            Stream::Maps => T::LinuxMaps,
        }
    }
}

fn streams(plan: &Plan<'_>) -> Vec<Stream> {
    let mut v = vec![
        Stream::ThreadList,
        Stream::ThreadNames,
        Stream::SystemInfo,
        Stream::MiscInfo,
        Stream::MemoryList,
        Stream::CpuInfo,
        Stream::ProcStatus,
        Stream::LsbRelease,
    ];
    if plan.snapshot.va_space().is_some() {
        v.extend([Stream::Modules, Stream::MemoryInfo, Stream::Maps]);
    }
    if !plan.full.is_empty() {
        v.push(Stream::Memory64List);
    }
    if plan.proc.is_some() {
        v.extend([Stream::CmdLine, Stream::Environ, Stream::Auxv]);
    }
    v
}

/// The header, directory and every stream's records, with full memory from `full_base`.
fn front(plan: &Plan<'_>, full_base: u64) -> Blob {
    let list = streams(plan);
    let mut blob = Blob::at(0);
    let header_len = 32 + 12 * list.len();
    blob.bytes.resize(header_len, 0);
    let mut dir = Vec::with_capacity(list.len());
    for s in &list {
        let location = stream(&mut blob, plan, *s, full_base);
        dir.push(md::MINIDUMP_DIRECTORY {
            stream_type: s.kind() as u32,
            location,
        });
    }
    blob.patch(
        0,
        md::MINIDUMP_HEADER {
            signature: md::MINIDUMP_SIGNATURE,
            version: md::MINIDUMP_VERSION,
            stream_count: list.len() as u32,
            stream_directory_rva: 32,
            checksum: 0,
            time_date_stamp: pss_types::units::unix_seconds(plan.snapshot.capture_info().started)
                as u32,
            flags: if plan.full.is_empty() { 0 } else { 2 }, // MiniDumpWithFullMemory
        },
    );
    for (i, d) in dir.into_iter().enumerate() {
        blob.patch(32 + 12 * i as u64, d);
    }
    blob
}

fn stream(
    blob: &mut Blob,
    plan: &Plan<'_>,
    s: Stream,
    full_base: u64,
) -> md::MINIDUMP_LOCATION_DESCRIPTOR {
    let regions = plan.snapshot.va_space().unwrap_or_default();
    let proc = plan.proc.as_ref();
    match s {
        Stream::ThreadList => streams::thread_list(blob, plan),
        Stream::ThreadNames => streams::thread_names(blob, &plan.threads),
        Stream::Modules => streams::modules(blob, regions),
        Stream::SystemInfo => plan.host.put_system_info(blob),
        Stream::MiscInfo => streams::misc_info(blob, plan),
        Stream::MemoryList => streams::memory_list(blob, &plan.ranges),
        Stream::Memory64List => streams::memory64_list(blob, &plan.full_ranges(), full_base),
        Stream::MemoryInfo => streams::memory_info(blob, regions),
        Stream::CpuInfo => blob.raw(&plan.host.cpuinfo),
        Stream::ProcStatus => blob.raw(&streams::status_text(plan)),
        Stream::LsbRelease => blob.raw(&plan.host.lsb_release),
        Stream::CmdLine => blob.raw(proc.map_or(&[][..], |p| &p.cmdline)),
        Stream::Environ => blob.raw(proc.map_or(&[][..], |p| &p.environ)),
        Stream::Auxv => blob.raw(proc.map_or(&[][..], |p| &p.auxv)),
        Stream::Maps => blob.raw(&streams::maps_text(regions)),
    }
}
