//! The ELF core writer: a core of the target as it was in the pause, written from the VA
//! clone after the target runs again, in the layout the kernel writes (`fs/binfmt_elf.c`)
//! and gdb, lldb and elfutils read.
//!
//! Layout: the ELF header, the program headers (one `PT_NOTE`, then one `PT_LOAD` per
//! mapping in address order; past 65,534 of them `e_phnum` is `PN_XNUM` and the count is in
//! the one section header that follows), the notes, then each segment's bytes from the next
//! page boundary on.

mod arch;
mod notes;

use object::elf;
use object::endian::{LittleEndian as LE, U16, U32, U64};
use object::pod::bytes_of;

use super::clone_proc::CloneProc;
use super::copy::{Control, Copier};
use super::layout::{self, Segment};
use super::sink::Sink;
use super::{ExportOptions, ExportSummary, Format};
use pss::pump::Range;
use pss::Snapshot;
use pss::VaClone;
use pss_types::error::{Error, Result};

const EHDR: u64 = 64;
const PHDR: u64 = 56;
const SHDR: u64 = 64;

/// Writes a core of `snapshot` into `sink`.
pub(crate) fn write(
    snapshot: &Snapshot,
    sink: &mut Sink<'_>,
    options: &mut ExportOptions<'_, '_>,
    output: String,
) -> Result<ExportSummary> {
    let clone = snapshot.va_clone().ok_or(Error::NotFound {
        what: "VA clone (a core is written from the clone's memory)",
        flag: "PSS_CAPTURE_VA_CLONE",
    })?;
    let threads = super::threads_with_registers(snapshot)?;
    let mut proc = CloneProc::read(clone)?;
    let filter = options.filter.unwrap_or(proc.filter);
    let (segments, mut warnings) = layout::segments(&proc, clone, snapshot.va_space(), filter);
    let facts = notes::ProcessFacts {
        process: snapshot.process(),
        proc: &proc,
    };
    let notes = notes::build(&facts, &threads, &segments);
    let head = headers(&segments, notes.bytes.len() as u64);
    let data: u64 = segments.iter().map(|s| s.file_size).sum();
    let mut ctl = Control {
        cancel: options.cancel,
        progress: options.progress.as_deref_mut(),
        total: head.data_start + data,
        output,
    };
    let out_err = |ctl: &Control<'_, '_>, e| ctl.output_error(e);
    sink.reserve(ctl.total).map_err(|e| out_err(&ctl, e))?;
    sink.write(&head.bytes).map_err(|e| out_err(&ctl, e))?;
    sink.write(&notes.bytes).map_err(|e| out_err(&ctl, e))?;
    sink.zeros(head.data_start - sink.emitted);
    let (unreadable, read_ahead) = copy_segments(clone, &mut proc, &segments, sink, &mut ctl)?;
    sink.finish().map_err(|e| out_err(&ctl, e))?;
    warnings.extend(unreadable);
    Ok(ExportSummary {
        format: Format::Core,
        bytes: sink.emitted,
        memory_bytes: data,
        holes: sink.holes,
        segments: segments.len(),
        threads: threads.len(),
        filter,
        read_ahead,
        warnings,
    })
}

/// The ELF header and program headers, and where the segments' bytes begin.
struct Headers {
    bytes: Vec<u8>,
    data_start: u64,
}

fn headers(segments: &[Segment], notes_len: u64) -> Headers {
    let phnum = segments.len() as u64 + 1;
    let extended = phnum >= u64::from(elf::PN_XNUM);
    let notes_at = EHDR + phnum * PHDR + if extended { SHDR } else { 0 };
    let page = pss_sys::page_size();
    let data_start = (notes_at + notes_len).next_multiple_of(page);
    let mut bytes = Vec::with_capacity(notes_at as usize);
    bytes.extend_from_slice(bytes_of(&file_header(phnum, extended)));
    bytes.extend_from_slice(bytes_of(&program_header(
        elf::PT_NOTE,
        0,
        notes_at,
        0,
        notes_len,
        0,
        4,
    )));
    let mut offset = data_start;
    for s in segments {
        bytes.extend_from_slice(bytes_of(&program_header(
            elf::PT_LOAD,
            segment_flags(&s.vma.perms),
            offset,
            s.vma.start,
            s.file_size,
            s.len(),
            page,
        )));
        offset += s.file_size;
    }
    if extended {
        bytes.extend_from_slice(bytes_of(&extension_section(phnum)));
    }
    Headers { bytes, data_start }
}

fn file_header(phnum: u64, extended: bool) -> elf::FileHeader64<LE> {
    elf::FileHeader64 {
        e_ident: elf::Ident {
            magic: elf::ELFMAG,
            class: elf::ELFCLASS64,
            data: elf::ELFDATA2LSB,
            version: elf::EV_CURRENT,
            os_abi: elf::ELFOSABI_NONE,
            abi_version: 0,
            padding: [0; 7],
        },
        e_type: U16::new(LE, elf::ET_CORE),
        e_machine: U16::new(LE, arch::MACHINE),
        e_version: U32::new(LE, u32::from(elf::EV_CURRENT)),
        e_entry: U64::new(LE, 0),
        e_phoff: U64::new(LE, EHDR),
        e_shoff: U64::new(LE, if extended { EHDR + phnum * PHDR } else { 0 }),
        e_flags: U32::new(LE, 0),
        e_ehsize: U16::new(LE, EHDR as u16),
        e_phentsize: U16::new(LE, PHDR as u16),
        e_phnum: U16::new(LE, if extended { elf::PN_XNUM } else { phnum as u16 }),
        e_shentsize: U16::new(LE, if extended { SHDR as u16 } else { 0 }),
        e_shnum: U16::new(LE, u16::from(extended)),
        e_shstrndx: U16::new(LE, elf::SHN_UNDEF),
    }
}

fn program_header(
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
) -> elf::ProgramHeader64<LE> {
    elf::ProgramHeader64 {
        p_type: U32::new(LE, kind),
        p_flags: U32::new(LE, flags),
        p_offset: U64::new(LE, offset),
        p_vaddr: U64::new(LE, vaddr),
        p_paddr: U64::new(LE, 0),
        p_filesz: U64::new(LE, filesz),
        p_memsz: U64::new(LE, memsz),
        p_align: U64::new(LE, align),
    }
}

/// Section 0 carrying the real program header count (`sh_info`) when it exceeds 65,534.
fn extension_section(phnum: u64) -> elf::SectionHeader64<LE> {
    elf::SectionHeader64 {
        sh_name: U32::new(LE, 0),
        sh_type: U32::new(LE, elf::SHT_NULL),
        sh_flags: U64::new(LE, 0),
        sh_addr: U64::new(LE, 0),
        sh_offset: U64::new(LE, 0),
        sh_size: U64::new(LE, 0),
        sh_link: U32::new(LE, 0),
        sh_info: U32::new(LE, phnum as u32),
        sh_addralign: U64::new(LE, 0),
        sh_entsize: U64::new(LE, 0),
    }
}

fn segment_flags(perms: &[u8; 4]) -> u32 {
    let mut f = 0;
    if perms[0] == b'r' {
        f |= elf::PF_R;
    }
    if perms[1] == b'w' {
        f |= elf::PF_W;
    }
    if perms[2] == b'x' {
        f |= elf::PF_X;
    }
    f
}

/// Streams every segment's bytes; returns warnings for ranges that could not be read, and
/// whether the engine read ahead.
fn copy_segments(
    clone: &VaClone,
    proc: &mut CloneProc,
    segments: &[Segment],
    sink: &mut Sink<'_>,
    ctl: &mut Control<'_, '_>,
) -> Result<(Vec<String>, bool)> {
    let direct = segments
        .iter()
        .filter(|s| s.file_size > 0 && s.source == layout::Source::Clone)
        .map(|s| Range {
            start: s.vma.start,
            len: s.file_size,
            untouched_is_zero: s.untouched_pages_are_zero(),
        })
        .collect();
    let mut copier = Copier::new(clone, proc.pagemap.as_mut(), direct);
    let mut quiet = Vec::new();
    for s in segments.iter().filter(|s| s.file_size > 0) {
        let before = copier.unreadable.len();
        copier.copy(
            s.vma.start,
            s.file_size,
            s.untouched_pages_are_zero(),
            sink,
            ctl,
        )?;
        // The kernel writes zeros for [vsyscall] too (it cannot be read in xonly mode).
        if s.vma.pathname == "[vsyscall]" {
            quiet.extend(copier.unreadable.drain(before..));
        }
    }
    copier.check_clone()?;
    Ok((unreadable_warning(&copier.unreadable), copier.reads_ahead()))
}

pub(crate) fn unreadable_warning(ranges: &[(u64, u64)]) -> Vec<String> {
    let Some(first) = ranges.first() else {
        return Vec::new();
    };
    let bytes: u64 = ranges.iter().map(|(s, e)| e - s).sum();
    vec![format!(
        "{bytes} bytes in {} ranges (the first at {:#x}) could not be read from the clone and are zeros in the core, as the kernel writes them",
        ranges.len(),
        first.0
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prstatus_has_the_kernel_size() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(arch::PRSTATUS_SIZE, 336);
        #[cfg(target_arch = "aarch64")]
        assert_eq!(arch::PRSTATUS_SIZE, 392);
    }

    #[test]
    fn flags_from_perms() {
        assert_eq!(segment_flags(b"r-xp"), elf::PF_R | elf::PF_X);
        assert_eq!(segment_flags(b"rw-s"), elf::PF_R | elf::PF_W);
        assert_eq!(segment_flags(b"---p"), 0);
    }
}
