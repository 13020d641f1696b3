//! The snapshot serialization (`docs/format.md`): a fixed header, then tagged sections, each
//! holding one part of the snapshot in the [`crate::codec`] encoding.
//!
//! The same bytes are a snapshot file on disk and the content of the sealed memfd that
//! carries a snapshot into another process (`pss::Snapshot::to_memfd`).
//!
//! Versioning: the major version changes when an existing field changes meaning or shape; a
//! reader refuses another major version. The minor version grows when sections are added or
//! fields are appended at the end of a section; a reader skips unknown sections and, for a
//! file of a newer minor version, ignores bytes after the fields it knows.

pub mod records;

use std::os::fd::{AsRawFd, BorrowedFd};

use crate::codec::{Decoded, Reader, Writer};
use pss_sys::memfd;
use pss_types::error::{Error, Result};
use pss_types::records::{SnapshotRecords, ThreadRead};

/// The name of the memfd that carries a serialized snapshot into another process;
/// `/proc/PID/fd` shows it as `/memfd:pss-snapshot (deleted)`.
pub const MEMFD_NAME: &str = "pss-snapshot";

/// The first eight bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"PSSSNAP\0";
/// The major version this build writes and reads.
pub const VERSION_MAJOR: u16 = 1;
/// The minor version this build writes.
pub const VERSION_MINOR: u16 = 1;
/// The size of the fixed header.
pub const HEADER_SIZE: usize = 48;

/// The architecture whose registers the file holds, as an ELF `e_machine` value.
#[cfg(target_arch = "x86_64")]
const ARCH: u16 = 62; // EM_X86_64
#[cfg(target_arch = "aarch64")]
const ARCH: u16 = 183; // EM_AARCH64

/// Section tags (`docs/format.md` §3).
mod tag {
    pub const CAPTURE: u32 = 1;
    pub const PROCESS: u32 = 2;
    pub const THREADS: u32 = 3;
    pub const HANDLES: u32 = 4;
    pub const VA_SPACE: u32 = 5;
    pub const AUX_PAGES: u32 = 6;
    pub const PERFORMANCE: u32 = 7;
    pub const WARNINGS: u32 = 8;
    /// Since 1.1: how each thread was read, in the threads section's order.
    pub const THREAD_READS: u32 = 9;
}

/// The fixed header of a serialized snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Major version of the format.
    pub major: u16,
    /// Minor version of the format.
    pub minor: u16,
    /// ELF `e_machine` of the captured process's registers (62 x86_64, 183 aarch64).
    pub arch: u16,
    /// A random number chosen when the snapshot was serialized; the C ABI puts part of it in
    /// the `HPSS` of a duplicated snapshot.
    pub id: u64,
    /// Bytes of sections after the header.
    pub body_len: u64,
    /// FNV-1a (64-bit) of the body.
    pub checksum: u64,
}

impl Header {
    /// Parses and checks the header at the start of `bytes` (magic, version, architecture,
    /// header size). The body is not looked at.
    pub fn parse(bytes: &[u8]) -> Result<Header> {
        if bytes.len() < HEADER_SIZE {
            return Err(corrupt(format!(
                "{} bytes is shorter than the {HEADER_SIZE}-byte header",
                bytes.len()
            )));
        }
        if bytes[..8] != MAGIC {
            return Err(corrupt("it does not start with the PSSSNAP magic"));
        }
        let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap_or_default());
        let h = Header {
            major: u16_at(8),
            minor: u16_at(10),
            arch: u16_at(12),
            id: u64_at(16),
            body_len: u64_at(24),
            checksum: u64_at(32),
        };
        if h.major != VERSION_MAJOR {
            return Err(Error::NotSupported {
                what: format!(
                    "snapshot format version {}.{} (this build reads {VERSION_MAJOR}.x)",
                    h.major, h.minor
                ),
            });
        }
        if u16_at(14) as usize != HEADER_SIZE {
            return Err(corrupt(format!(
                "header size {} (expected {HEADER_SIZE})",
                u16_at(14)
            )));
        }
        if h.arch != ARCH {
            return Err(Error::NotSupported {
                what: format!(
                    "a snapshot of a process of another architecture (ELF machine {}; this build is {ARCH})",
                    h.arch
                ),
            });
        }
        Ok(h)
    }

    /// Checks that `fd` is a snapshot memfd (`pss::Snapshot::to_memfd`): named
    /// [`MEMFD_NAME`], sealed against any change, starting with a valid header; and
    /// returns the header. The body is not read.
    pub fn read_memfd(fd: BorrowedFd<'_>) -> Result<Header> {
        let refuse = |what: String| Error::Corrupt {
            what: format!("fd {}: {what}", fd.as_raw_fd()),
        };
        if memfd::name_of(fd).as_deref() != Some(MEMFD_NAME) {
            return Err(refuse(format!("not a memfd named {}", MEMFD_NAME)));
        }
        if !memfd::is_sealed(fd) {
            return Err(refuse("the memfd is not sealed against writes".into()));
        }
        let head = memfd::read_prefix(fd, HEADER_SIZE)
            .map_err(|e| refuse(format!("cannot read it: {e}")))?;
        Header::parse(&head)
    }

    /// The total size of the serialized snapshot: header and body.
    pub fn total_len(&self) -> u64 {
        HEADER_SIZE as u64 + self.body_len
    }
}

fn corrupt(what: impl Into<String>) -> Error {
    Error::Corrupt { what: what.into() }
}

/// FNV-1a, 64-bit: cheap, dependency-free, and enough to tell a damaged file from a good one
/// (it is not a defence against a forger, who can also rewrite the checksum).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Serializes `d` with identifier `id`, for a file: with its checksum.
pub fn encode(d: &SnapshotRecords, id: u64) -> Vec<u8> {
    encode_with(d, id, Checksum::Computed)
}

/// Whether a serialized snapshot's body is checksummed: a file's is, to tell a damaged file
/// from a good one; the engine's reply over its socket need not be (nothing damages it,
/// and a sampling profiler would spend a good part of each round hashing stack copies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// Computed when written, checked when read.
    Computed,
    /// Written as 0, not checked.
    Skipped,
}

/// Serializes `d` with identifier `id`, its checksum as `checksum` says.
pub fn encode_with(d: &SnapshotRecords, id: u64, checksum: Checksum) -> Vec<u8> {
    use records::*;
    let mut body = Writer::default();
    let mut section = |tag: u32, f: &dyn Fn(&mut Writer)| {
        let mut w = Writer::default();
        f(&mut w);
        body.u32(tag);
        body.bytes(&w.buf);
    };
    section(tag::CAPTURE, &|w| encode_capture(w, &d.capture));
    section(tag::PROCESS, &|w| encode_process(w, &d.process));
    if let Some(t) = &d.threads {
        section(tag::THREADS, &|w| w.seq(t, encode_thread));
        if t.iter().any(|t| t.linux.read != ThreadRead::Together) {
            section(tag::THREAD_READS, &|w| w.seq(t, encode_thread_read));
        }
    }
    if let Some(h) = &d.handles {
        section(tag::HANDLES, &|w| w.seq(h, encode_handle));
    }
    if let Some(v) = &d.va_space {
        section(tag::VA_SPACE, &|w| w.seq(v, encode_region));
    }
    if let Some(a) = &d.aux_pages {
        section(tag::AUX_PAGES, &|w| w.seq(a, encode_aux_page));
    }
    if let Some(p) = &d.performance {
        section(tag::PERFORMANCE, &|w| encode_performance(w, p));
    }
    section(tag::WARNINGS, &|w| w.seq(&d.warnings, encode_warning));

    let body = body.buf;
    let mut out = Vec::with_capacity(HEADER_SIZE + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION_MAJOR.to_le_bytes());
    out.extend_from_slice(&VERSION_MINOR.to_le_bytes());
    out.extend_from_slice(&ARCH.to_le_bytes());
    out.extend_from_slice(&(HEADER_SIZE as u16).to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    let sum = match checksum {
        Checksum::Computed => fnv1a(&body),
        Checksum::Skipped => 0,
    };
    out.extend_from_slice(&sum.to_le_bytes());
    out.extend_from_slice(&[0u8; 8]);
    debug_assert_eq!(out.len(), HEADER_SIZE);
    out.extend_from_slice(&body);
    out
}

/// Parses a serialized snapshot (a file's: its checksum checked). The result has no VA
/// clone: a clone is a process and does not travel in bytes (`docs/format.md` §5).
pub fn decode(bytes: &[u8]) -> Result<(Header, SnapshotRecords)> {
    decode_with(bytes, Checksum::Computed)
}

/// [`decode`], checking the checksum only if `checksum` says it was computed.
pub fn decode_with(bytes: &[u8], checksum: Checksum) -> Result<(Header, SnapshotRecords)> {
    let h = Header::parse(bytes)?;
    let body = &bytes[HEADER_SIZE..];
    if body.len() as u64 != h.body_len {
        return Err(corrupt(format!(
            "the header announces {} bytes after it, there are {}",
            h.body_len,
            body.len()
        )));
    }
    if checksum == Checksum::Computed && fnv1a(body) != h.checksum {
        return Err(corrupt("the checksum does not match: the file is damaged"));
    }
    let lenient = h.minor > VERSION_MINOR;
    let d = decode_body(body, lenient).map_err(|e| corrupt(format!("in the body, {e}")))?;
    Ok((h, d))
}

/// The sections, in any order; each known one at most once; unknown ones skipped.
fn decode_body(body: &[u8], lenient: bool) -> Decoded<SnapshotRecords> {
    use records::*;
    let mut r = Reader::new(body);
    let mut capture = None;
    let mut process = None;
    let mut threads = None;
    let mut handles = None;
    let mut va_space = None;
    let mut aux_pages = None;
    let mut performance = None;
    let mut warnings = None;
    let mut thread_reads = None;
    while !r.at_end() {
        let t = r.u32()?;
        let bytes = r.bytes()?;
        let mut s = Reader::new(bytes);
        let seen = match t {
            tag::CAPTURE => set(&mut capture, decode_capture(&mut s)?),
            tag::PROCESS => set(&mut process, decode_process(&mut s)?),
            tag::THREADS => set(&mut threads, s.seq(decode_thread)?),
            tag::HANDLES => set(&mut handles, s.seq(decode_handle)?),
            tag::VA_SPACE => set(&mut va_space, s.seq(decode_region)?),
            tag::AUX_PAGES => set(&mut aux_pages, s.seq(decode_aux_page)?),
            tag::PERFORMANCE => set(&mut performance, decode_performance(&mut s)?),
            tag::WARNINGS => set(&mut warnings, s.seq(decode_warning)?),
            tag::THREAD_READS => set(&mut thread_reads, s.seq(decode_thread_read)?),
            _ => continue,
        };
        if seen {
            return Err(r.error(format!("section {t} appears twice")));
        }
        if !s.at_end() && !lenient {
            return Err(s.error(format!("the end of section {t}")));
        }
    }
    if let Some(reads) = thread_reads {
        let threads = threads
            .as_mut()
            .filter(|t| t.len() == reads.len())
            .ok_or_else(|| r.error("as many thread reads (tag 9) as threads (tag 3)"))?;
        for (t, read) in threads.iter_mut().zip(reads) {
            t.linux.read = read;
        }
    }
    Ok(SnapshotRecords {
        capture: capture.ok_or_else(|| r.error("a capture section (tag 1)"))?,
        process: process.ok_or_else(|| r.error("a process section (tag 2)"))?,
        threads,
        handles,
        va_space,
        aux_pages,
        performance,
        warnings: warnings.unwrap_or_default(),
    })
}

/// Stores `v` in `slot`; whether the slot was already full.
fn set<T>(slot: &mut Option<T>, v: T) -> bool {
    slot.replace(v).is_some()
}
