//! A small, explicit byte encoding: little-endian integers, length-prefixed byte strings,
//! and tagged options. It is the base of the snapshot serialization (`docs/format.md`) and
//! of the engine protocol (`crate::proto`).
//!
//! Decoding never panics: a short or malformed input is an error naming what was being read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Appends encoded values to a byte buffer.
#[derive(Debug, Default)]
pub struct Writer {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// Appends a byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a little-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a little-endian `i32`.
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a little-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a boolean as one byte.
    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    /// A `u64` length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// Appends a string: its length, then its bytes.
    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    /// Nanoseconds since the Unix epoch (0 for earlier times).
    pub fn time(&mut self, t: SystemTime) {
        let ns = t
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        self.u64(ns);
    }

    /// Appends a duration in nanoseconds.
    pub fn duration(&mut self, d: Duration) {
        self.u64(d.as_nanos() as u64);
    }

    /// A `u8` tag (0 none, 1 some), then the value.
    pub fn opt<T>(&mut self, v: &Option<T>, mut f: impl FnMut(&mut Writer, &T)) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                f(self, x);
            }
        }
    }

    /// A `u64` count, then the values.
    pub fn seq<T>(&mut self, v: &[T], mut f: impl FnMut(&mut Writer, &T)) {
        self.u64(v.len() as u64);
        for x in v {
            f(self, x);
        }
    }
}

/// Why decoding failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Where in the input.
    pub offset: usize,
    /// What was expected there.
    pub what: String,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.what)
    }
}

impl std::error::Error for DecodeError {}

/// Reads encoded values from a byte slice.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// What a read gives: the value, or where and why the bytes are not what was expected.
pub type Decoded<T> = std::result::Result<T, DecodeError>;

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// An error at the current position.
    pub fn error(&self, what: impl Into<String>) -> DecodeError {
        DecodeError {
            offset: self.pos,
            what: what.into(),
        }
    }

    /// Whether every byte was consumed.
    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn take(&mut self, n: usize) -> Decoded<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.error(format!("{n} more bytes (the input is truncated)")))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Decoded<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Reads a byte.
    pub fn u8(&mut self) -> Decoded<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Decoded<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `i32`.
    pub fn i32(&mut self) -> Decoded<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self) -> Decoded<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Reads a boolean byte (0 or 1).
    pub fn bool(&mut self) -> Decoded<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.error(format!("a boolean (0 or 1), found {b}"))),
        }
    }

    /// A length-prefixed byte string, borrowed from the input.
    pub fn bytes(&mut self) -> Decoded<&'a [u8]> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| self.error("a byte-string length"))?;
        self.take(n)
    }

    /// Reads a string (UTF-8).
    pub fn str(&mut self) -> Decoded<String> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.error("UTF-8 text"))
    }

    /// Reads a time.
    pub fn time(&mut self) -> Decoded<SystemTime> {
        Ok(UNIX_EPOCH + Duration::from_nanos(self.u64()?))
    }

    /// Reads a duration.
    pub fn duration(&mut self) -> Decoded<Duration> {
        Ok(Duration::from_nanos(self.u64()?))
    }

    /// Reads an optional value: a presence byte, then `f`'s value.
    pub fn opt<T>(&mut self, f: impl FnOnce(&mut Reader<'a>) -> Decoded<T>) -> Decoded<Option<T>> {
        match self.u8()? {
            0 => Ok(None),
            1 => f(self).map(Some),
            b => Err(self.error(format!("an option tag (0 or 1), found {b}"))),
        }
    }

    /// A counted sequence. The count is checked against the bytes left (each element takes
    /// at least one byte), so a corrupt count cannot make it allocate without bound.
    pub fn seq<T>(&mut self, mut f: impl FnMut(&mut Reader<'a>) -> Decoded<T>) -> Decoded<Vec<T>> {
        let n = self.u64()?;
        if n > (self.buf.len() - self.pos) as u64 {
            return Err(self.error(format!("a count of {n} elements (more than bytes left)")));
        }
        let mut v = Vec::with_capacity(n as usize);
        for _ in 0..n {
            v.push(f(self)?);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut w = Writer::default();
        w.u8(7);
        w.i32(-5);
        w.u64(u64::MAX);
        w.str("héllo");
        w.opt(&Some(3u32), |w, v| w.u32(*v));
        w.opt(&None::<u32>, |w, v| w.u32(*v));
        w.seq(&[1u64, 2, 3], |w, v| w.u64(*v));
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.i32(), Ok(-5));
        assert_eq!(r.u64(), Ok(u64::MAX));
        assert_eq!(r.str().as_deref(), Ok("héllo"));
        assert_eq!(r.opt(|r| r.u32()), Ok(Some(3)));
        assert_eq!(r.opt(|r| r.u32()), Ok(None));
        assert_eq!(r.seq(|r| r.u64()), Ok(vec![1, 2, 3]));
        assert!(r.at_end());
        // Every truncation is an error, never a panic.
        for cut in 0..w.buf.len() {
            let mut r = Reader::new(&w.buf[..cut]);
            let all = (|| -> Decoded<()> {
                r.u8()?;
                r.i32()?;
                r.u64()?;
                r.str()?;
                r.opt(|r| r.u32())?;
                r.opt(|r| r.u32())?;
                r.seq(|r| r.u64())?;
                Ok(())
            })();
            assert!(all.is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn corrupt_count_is_refused() {
        let mut w = Writer::default();
        w.u64(u64::MAX);
        assert!(Reader::new(&w.buf).seq(|r| r.u8()).is_err());
        assert!(Reader::new(&w.buf).bytes().is_err());
    }
}
