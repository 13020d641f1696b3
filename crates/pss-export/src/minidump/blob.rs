//! The front of a minidump being laid out in memory: records appended at aligned offsets
//! with `scroll` (the structs are rust-minidump's), strings in the minidump's UTF-16 form,
//! and the offsets (RVAs) where each landed.

use minidump_common::format::MINIDUMP_LOCATION_DESCRIPTOR;
use scroll::ctx::{SizeWith, TryIntoCtx};
use scroll::{Endian, Pwrite};

const LE: Endian = Endian::Little;

/// Bytes whose first byte is at file offset `base`.
pub(crate) struct Blob {
    base: u64,
    pub bytes: Vec<u8>,
}

impl Blob {
    /// An empty blob that starts at file offset `base`.
    pub fn at(base: u64) -> Blob {
        Blob {
            base,
            bytes: Vec::new(),
        }
    }

    /// The file offset of the next byte.
    pub fn pos(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    /// Pads with zeros to a multiple of `to` (a file offset).
    pub fn align(&mut self, to: u64) {
        let target = self.pos().next_multiple_of(to);
        self.bytes.resize((target - self.base) as usize, 0);
    }

    /// Appends a record (4-byte aligned); returns its file offset.
    pub fn put<T>(&mut self, v: T) -> u32
    where
        T: TryIntoCtx<Endian, Error = scroll::Error> + SizeWith<Endian>,
    {
        self.align(4);
        let at = self.bytes.len();
        self.bytes.resize(at + T::size_with(&LE), 0);
        self.bytes
            .pwrite_with(v, at, LE)
            .expect("the buffer was sized for the record");
        rva(self.base + at as u64)
    }

    /// Appends raw bytes (4-byte aligned); returns where they are.
    pub fn raw(&mut self, data: &[u8]) -> MINIDUMP_LOCATION_DESCRIPTOR {
        self.align(4);
        let at = self.pos();
        self.bytes.extend_from_slice(data);
        MINIDUMP_LOCATION_DESCRIPTOR {
            data_size: data.len() as u32,
            rva: rva(at),
        }
    }

    /// Appends a `MINIDUMP_STRING` (byte length, UTF-16LE, a NUL); returns its offset.
    pub fn string(&mut self, s: &str) -> u32 {
        self.align(4);
        let at = self.pos();
        let units: Vec<u16> = s.encode_utf16().collect();
        self.bytes
            .extend_from_slice(&((units.len() * 2) as u32).to_le_bytes());
        for u in units.iter().chain(&[0]) {
            self.bytes.extend_from_slice(&u.to_le_bytes());
        }
        rva(at)
    }

    /// Overwrites a record written earlier at file offset `at`.
    pub fn patch<T>(&mut self, at: u64, v: T)
    where
        T: TryIntoCtx<Endian, Error = scroll::Error>,
    {
        let off = (at - self.base) as usize;
        self.bytes
            .pwrite_with(v, off, LE)
            .expect("patching inside the blob");
    }
}

/// A file offset as a 32-bit RVA. The front of a minidump (records, thread stacks) stays
/// far below 4 GiB; only full memory, addressed with 64-bit offsets, goes beyond.
pub(crate) fn rva(at: u64) -> u32 {
    u32::try_from(at).expect("the front of a minidump is under 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_utf16_with_a_length_and_a_nul() {
        let mut b = Blob::at(100);
        b.bytes.push(1);
        let at = b.string("ab");
        assert_eq!(at, 104, "aligned to 4");
        assert_eq!(&b.bytes[4..], &[4, 0, 0, 0, b'a', 0, b'b', 0, 0, 0]);
    }

    #[test]
    fn records_land_where_they_say() {
        let mut b = Blob::at(0);
        let at = b.put(MINIDUMP_LOCATION_DESCRIPTOR {
            data_size: 7,
            rva: 9,
        });
        assert_eq!(at, 0);
        assert_eq!(b.bytes, [7, 0, 0, 0, 9, 0, 0, 0]);
        b.patch(0, 5u32);
        assert_eq!(b.bytes[0], 5);
    }
}
