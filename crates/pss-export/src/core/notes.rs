//! The `PT_NOTE` segment of a core: what the kernel's `elf_core_dump` writes, in its order —
//! for the first (main) thread `NT_PRSTATUS`, then the process notes (`NT_PRPSINFO`,
//! `NT_AUXV`, `NT_FILE`), then that thread's register sets; then each other thread's
//! `NT_PRSTATUS` and register sets.

use object::elf;

use super::arch;
use crate::clone_proc::CloneProc;
use crate::layout::Segment;
use pss_types::records::{ProcessInformation, ThreadEntry};

/// Notes being laid out, 4-byte aligned as in every Linux core.
#[derive(Default)]
pub(crate) struct Notes {
    pub bytes: Vec<u8>,
}

impl Notes {
    /// Appends one note: the header, `name` with its NUL, `desc`, each padded to 4 bytes.
    pub fn add(&mut self, name: &[u8], kind: u32, desc: &[u8]) {
        let b = &mut self.bytes;
        b.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        b.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(name);
        b.push(0);
        pad4(b);
        b.extend_from_slice(desc);
        pad4(b);
    }
}

fn pad4(b: &mut Vec<u8>) {
    b.resize(b.len().next_multiple_of(4), 0);
}

/// The process facts the notes need beyond the records.
pub(crate) struct ProcessFacts<'a> {
    pub process: &'a ProcessInformation,
    pub proc: &'a CloneProc,
}

/// All the notes of a core of `threads` (the main thread first), `segments` the mappings.
pub(crate) fn build(
    facts: &ProcessFacts<'_>,
    threads: &[&ThreadEntry],
    segments: &[Segment],
) -> Notes {
    let mut notes = Notes::default();
    for (i, t) in threads.iter().enumerate() {
        notes.add(b"CORE", elf::NT_PRSTATUS, &prstatus(facts, t));
        if i == 0 {
            notes.add(b"CORE", elf::NT_PRPSINFO, &prpsinfo(facts));
            notes.add(b"CORE", elf::NT_AUXV, &facts.proc.auxv);
            notes.add(b"CORE", elf::NT_FILE, &file_note(segments));
        }
        if let Some(ctx) = &t.context {
            for (name, kind, bytes) in arch::register_notes(ctx) {
                notes.add(name, kind, &bytes);
            }
        }
    }
    notes
}

/// `struct elf_prstatus`: signal facts (none: the threads were stopped by ptrace, not a
/// signal), the blocked mask, ids, CPU times, and the registers the thread had when stopped.
fn prstatus(facts: &ProcessFacts<'_>, t: &ThreadEntry) -> Vec<u8> {
    let mut d = Vec::with_capacity(arch::PRSTATUS_SIZE);
    d.extend_from_slice(&[0u8; 12]); // pr_info: si_signo, si_code, si_errno
    d.extend_from_slice(&[0u8; 4]); // pr_cursig and padding
    d.extend_from_slice(&0u64.to_le_bytes()); // pr_sigpend
    d.extend_from_slice(&t.linux.sigmask.unwrap_or(0).to_le_bytes()); // pr_sighold
    for id in [
        t.thread_id as i32,
        facts.process.parent_process_id as i32,
        facts.proc.pgrp,
        facts.proc.session,
    ] {
        d.extend_from_slice(&id.to_le_bytes());
    }
    for time in [
        t.user_time,
        t.kernel_time,
        Default::default(),
        Default::default(),
    ] {
        d.extend_from_slice(&time.as_secs().to_le_bytes());
        d.extend_from_slice(&u64::from(time.subsec_micros()).to_le_bytes());
    }
    let regs = t.context.as_ref().map(|c| arch::pr_reg(&c.general));
    for w in regs.unwrap_or_else(|| vec![0; arch::PR_REG_WORDS]) {
        d.extend_from_slice(&w.to_le_bytes());
    }
    let fpvalid = t.context.as_ref().is_some_and(|c| c.fp.is_some());
    d.extend_from_slice(&u32::from(fpvalid).to_le_bytes());
    d.resize(arch::PRSTATUS_SIZE, 0);
    d
}

/// `struct elf_prpsinfo` (136 bytes).
fn prpsinfo(facts: &ProcessFacts<'_>) -> Vec<u8> {
    let p = facts.process;
    let state = p.linux.state;
    let numeric = b"RSDTZW"
        .iter()
        .position(|&c| c == state as u8)
        .unwrap_or(0);
    let mut d = Vec::with_capacity(136);
    d.push(numeric as u8);
    d.push(state as u8);
    d.push(u8::from(state == 'Z'));
    d.push(p.linux.nice as i8 as u8);
    d.extend_from_slice(&[0u8; 4]);
    d.extend_from_slice(&0u64.to_le_bytes()); // pr_flag
    d.extend_from_slice(&p.linux.uid.to_le_bytes());
    d.extend_from_slice(&facts.proc.gid.to_le_bytes());
    for id in [
        p.process_id as i32,
        p.parent_process_id as i32,
        facts.proc.pgrp,
        facts.proc.session,
    ] {
        d.extend_from_slice(&id.to_le_bytes());
    }
    d.extend_from_slice(&fixed::<16>(p.linux.comm.as_encoded_bytes()));
    let args: Vec<u8> = facts
        .proc
        .cmdline
        .iter()
        .map(|&c| if c == 0 { b' ' } else { c })
        .collect();
    d.extend_from_slice(&fixed::<80>(trim_end_spaces(&args)));
    d
}

/// `bytes` cut or NUL-padded to `N` bytes, with at least one NUL at the end.
fn fixed<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = bytes.len().min(N - 1);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

fn trim_end_spaces(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1);
    &b[..end]
}

/// `NT_FILE`: the file-backed mappings — count, page size, then (start, end, offset in
/// pages) for each, then their NUL-terminated names.
fn file_note(segments: &[Segment]) -> Vec<u8> {
    let page = pss_sys::page_size();
    let files: Vec<&Segment> = segments.iter().filter(|s| s.is_file()).collect();
    let mut d = Vec::new();
    d.extend_from_slice(&(files.len() as u64).to_le_bytes());
    d.extend_from_slice(&page.to_le_bytes());
    for s in &files {
        for v in [s.vma.start, s.vma.end, s.vma.offset / page] {
            d.extend_from_slice(&v.to_le_bytes());
        }
    }
    for s in &files {
        d.extend_from_slice(s.vma.pathname.as_encoded_bytes());
        d.push(0);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_padded_to_four() {
        let mut n = Notes::default();
        n.add(b"CORE", 1, &[1, 2, 3]);
        // 12 header + "CORE\0" padded to 8 + 3 desc padded to 4.
        assert_eq!(n.bytes.len(), 12 + 8 + 4);
        assert_eq!(&n.bytes[0..4], &5u32.to_le_bytes());
        assert_eq!(&n.bytes[4..8], &3u32.to_le_bytes());
        n.add(b"LINUX", 0x202, &[]);
        assert_eq!(n.bytes.len(), 24 + 12 + 8);
    }

    #[test]
    fn fixed_fields_end_in_nul() {
        assert_eq!(&fixed::<4>(b"abcdef"), b"abc\0");
        assert_eq!(trim_end_spaces(b"a b  "), b"a b");
    }
}
