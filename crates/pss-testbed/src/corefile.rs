//! Reading an ELF core in tests, through the `object` crate (an independent reader, not
//! the writer's own code): its segments, its notes, and the bytes it holds at an address.

use object::elf;
use object::read::elf::{ElfFile64, ProgramHeader};
use object::LittleEndian as LE;

/// One `PT_LOAD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_offset`.
    pub offset: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_flags`.
    pub flags: u32,
}

/// One note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Its name without the NUL (`CORE`, `LINUX`).
    pub name: Vec<u8>,
    /// `n_type`.
    pub kind: u32,
    /// Its descriptor.
    pub desc: Vec<u8>,
}

/// A core file read into memory.
pub struct CoreFile {
    data: Vec<u8>,
    /// Its `PT_LOAD`s, in file order.
    pub loads: Vec<Load>,
    /// Its notes, in file order.
    pub notes: Vec<Note>,
}

impl CoreFile {
    /// Reads and parses the core at `path`; panics (naming it) if it is not one.
    pub fn read(path: &std::path::Path) -> CoreFile {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self::parse(data).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Parses a core held in memory.
    pub fn parse(data: Vec<u8>) -> Result<CoreFile, String> {
        let file = ElfFile64::<LE>::parse(&data[..]).map_err(|e| e.to_string())?;
        let header = file.elf_header();
        if header.e_type.get(LE) != elf::ET_CORE {
            return Err("not an ET_CORE file".into());
        }
        let mut loads = Vec::new();
        let mut notes = Vec::new();
        for ph in file.elf_program_headers() {
            match ph.p_type(LE) {
                elf::PT_LOAD => loads.push(Load {
                    vaddr: ph.p_vaddr(LE),
                    memsz: ph.p_memsz(LE),
                    offset: ph.p_offset(LE),
                    filesz: ph.p_filesz(LE),
                    flags: ph.p_flags(LE),
                }),
                elf::PT_NOTE => {
                    let mut it = ph
                        .notes(LE, &data[..])
                        .map_err(|e| e.to_string())?
                        .ok_or("a PT_NOTE without notes")?;
                    while let Some(n) = it.next().map_err(|e| e.to_string())? {
                        notes.push(Note {
                            name: n.name().to_vec(),
                            kind: n.n_type(LE),
                            desc: n.desc().to_vec(),
                        });
                    }
                }
                _ => {}
            }
        }
        drop(file);
        Ok(CoreFile { data, loads, notes })
    }

    /// The bytes the core holds for `len` bytes at `addr`, if one segment holds them all.
    pub fn bytes_at(&self, addr: u64, len: u64) -> Option<&[u8]> {
        let l = self.loads.iter().find(|l| {
            let end = u128::from(l.vaddr) + u128::from(l.filesz);
            l.vaddr <= addr && u128::from(addr) + u128::from(len) <= end
        })?;
        let off = (l.offset + (addr - l.vaddr)) as usize;
        self.data.get(off..off + len as usize)
    }

    /// The file bytes of one segment.
    pub fn segment_bytes(&self, l: &Load) -> &[u8] {
        &self.data[l.offset as usize..(l.offset + l.filesz) as usize]
    }

    /// The notes of type `kind`.
    pub fn notes_of(&self, kind: u32) -> Vec<&Note> {
        self.notes.iter().filter(|n| n.kind == kind).collect()
    }

    /// The `pr_pid` of each `NT_PRSTATUS`, in order.
    pub fn prstatus_tids(&self) -> Vec<i32> {
        self.notes_of(elf::NT_PRSTATUS)
            .iter()
            .map(|n| i32::from_le_bytes(n.desc[32..36].try_into().expect("4 bytes")))
            .collect()
    }

    /// The general registers (`pr_reg`) of thread `tid`, as words.
    pub fn registers(&self, tid: i32) -> Option<Vec<u64>> {
        let n = self
            .notes_of(elf::NT_PRSTATUS)
            .into_iter()
            .find(|n| i32::from_le_bytes(n.desc[32..36].try_into().expect("4 bytes")) == tid)?;
        let words = (n.desc.len() - 112 - 8) / 8;
        Some(
            n.desc[112..112 + words * 8]
                .chunks_exact(8)
                .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
                .collect(),
        )
    }

    /// The `NT_FILE` entries: start, end, offset in bytes, path.
    pub fn files(&self) -> Vec<(u64, u64, u64, String)> {
        let Some(n) = self.notes_of(elf::NT_FILE).into_iter().next() else {
            return Vec::new();
        };
        let word = |i: usize| u64::from_le_bytes(n.desc[i * 8..i * 8 + 8].try_into().unwrap());
        let (count, page) = (word(0) as usize, word(1));
        let names = n.desc[16 + count * 24..].split(|&c| c == 0);
        (0..count)
            .zip(names)
            .map(|(i, name)| {
                let base = 2 + i * 3;
                (
                    word(base),
                    word(base + 1),
                    word(base + 2) * page,
                    String::from_utf8_lossy(name).into_owned(),
                )
            })
            .collect()
    }
}
