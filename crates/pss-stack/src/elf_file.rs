//! ELF files a target chose — its modules, their debug files — read with every size bounded:
//! by the file's own length (a header may claim anything) and by fixed caps, so that a
//! sparse file whose section headers claim a gigabyte cannot make us allocate one. Read with
//! `pread` through `object`'s read cache (never mapped: a file truncated meanwhile gives a
//! failed read, not a SIGBUS), after the section and segment tables were checked.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::{Object, ObjectSection, ReadCache, ReadCacheOps};

/// The most any one section or segment may hold (unwind tables, symbol tables, DWARF).
pub(crate) const SECTION_CAP: u64 = 512 << 20;
/// The most read from one file in all.
const FILE_CAP: u64 = 2 << 30;

/// A file, readable at most [`FILE_CAP`] bytes in all, as `object`'s read cache reads it.
pub(crate) struct Bounded {
    file: File,
    len: u64,
    pos: u64,
    left: u64,
}

impl ReadCacheOps for Bounded {
    fn len(&mut self) -> Result<u64, ()> {
        Ok(self.len)
    }

    fn seek(&mut self, pos: u64) -> Result<u64, ()> {
        self.pos = pos;
        Ok(pos)
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ()> {
        let n = (buf.len() as u64).min(self.left) as usize;
        let got = self.file.read_at(&mut buf[..n], self.pos).map_err(|_| ())?;
        self.pos += got as u64;
        self.left -= got as u64;
        Ok(got)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), ()> {
        let n = buf.len() as u64;
        if n > self.left || n > SECTION_CAP {
            return Err(());
        }
        self.file.read_exact_at(buf, self.pos).map_err(|_| ())?;
        self.pos += n;
        self.left -= n;
        Ok(())
    }
}

/// An ELF file ready for `object`, once its tables say nothing out of bounds.
pub(crate) type Cache = ReadCache<Bounded>;

/// Opens `file` for `object`: `Err` names what is wrong with it (not 64-bit ELF, or a
/// section or segment larger than the file or than [`SECTION_CAP`]).
pub(crate) fn open(file: &File) -> Result<Cache, String> {
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let reader = |f: File| Bounded {
        file: f,
        len,
        pos: 0,
        left: FILE_CAP,
    };
    let dup = || file.try_clone().map_err(|e| e.to_string());
    check_tables(&ReadCache::new(reader(dup()?)), len)?;
    Ok(ReadCache::new(reader(dup()?)))
}

/// Checks the section and program header tables of the ELF file in `cache`, `len` bytes.
fn check_tables(cache: &Cache, len: u64) -> Result<(), String> {
    type Header = object::elf::FileHeader64<object::Endianness>;
    let header = Header::parse(cache).map_err(|_| "not a 64-bit ELF file".to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let fits = |offset: u64, size: u64, what: &str| {
        if size > SECTION_CAP || offset.checked_add(size).map_or(true, |end| end > len) {
            Err(format!(
                "its {what} claims {size} bytes at offset {offset:#x}, beyond the file's {len} bytes or pss's cap of {} MiB",
                SECTION_CAP >> 20
            ))
        } else {
            Ok(())
        }
    };
    let sections = header
        .section_headers(endian, cache)
        .map_err(|e| e.to_string())?;
    for s in sections {
        if let Some((offset, size)) = s.file_range(endian) {
            fits(offset, size, "section")?;
        }
    }
    let segments = header
        .program_headers(endian, cache)
        .map_err(|e| e.to_string())?;
    for p in segments {
        let (offset, size) = p.file_range(endian);
        fits(offset, size, "segment")?;
    }
    Ok(())
}

/// The bytes of section `name` of `elf` (uncompressed; `None` if absent, or too large once
/// uncompressed), read from `file` itself rather than kept in the cache.
pub(crate) fn section<'d, R: object::ReadRef<'d>>(
    elf: &object::File<'d, R>,
    file: &File,
    name: &str,
) -> Option<Arc<[u8]>> {
    let s = elf.section_by_name(name)?;
    let c = s.compressed_file_range().ok()?;
    if c.uncompressed_size > SECTION_CAP {
        return None;
    }
    let mut raw = vec![0u8; usize::try_from(c.compressed_size).ok()?];
    file.read_exact_at(&mut raw, c.offset).ok()?;
    if c.format == object::CompressionFormat::None {
        return Some(Arc::from(raw));
    }
    if c.format == object::CompressionFormat::Zlib {
        return inflate(&raw, usize::try_from(c.uncompressed_size).ok()?);
    }
    let data = object::CompressedData {
        format: c.format,
        data: &raw,
        uncompressed_size: c.uncompressed_size,
    };
    data.decompress().ok().map(|d| Arc::from(d.into_owned()))
}

/// `zlib` inflated straight into the shared buffer it ends in (no copy of megabytes of
/// DWARF); `None` unless it is exactly `size` bytes.
fn inflate(zlib: &[u8], size: usize) -> Option<Arc<[u8]>> {
    let mut out: Arc<[u8]> = std::iter::repeat(0u8).take(size).collect();
    let buf = Arc::get_mut(&mut out)?;
    let mut z = flate2::Decompress::new(true);
    let status = z
        .decompress(zlib, buf, flate2::FlushDecompress::Finish)
        .ok()?;
    (status == flate2::Status::StreamEnd && z.total_out() == size as u64).then_some(out)
}
