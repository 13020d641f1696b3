//! The pump's messages: the request that starts one, and the chunks it reports.
//!
//! A pump reads ranges of a clone's memory into a ring shared with the caller, a slot at a
//! time and in order, so that the caller writes one chunk while the next is read (on
//! another core, in the engine process: no thread of the caller's). For each slot it fills
//! it sends a [`Chunk`] on the pump's channel; the caller answers [`super::kind::PUMP_FREE`]
//! when it has written it. Pages of ranges marked `untouched_is_zero` that the clone's
//! `pagemap` shows neither present nor swapped are not read: the chunk says so.

use crate::codec::{Decoded, Reader, Writer};

/// One range to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First address.
    pub start: u64,
    /// How many bytes.
    pub len: u64,
    /// Private anonymous memory: a page the clone does not hold is zeros, not read.
    pub untouched_is_zero: bool,
}

/// What a pump is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// How many slots the ring has.
    pub slots: u32,
    /// The size of each slot.
    pub slot_size: u32,
    /// The ranges to read, in order.
    pub ranges: Vec<Range>,
}

impl Request {
    /// Its bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u32(self.slots);
        w.u32(self.slot_size);
        w.seq(&self.ranges, |w, r| {
            w.u64(r.start);
            w.u64(r.len);
            w.bool(r.untouched_is_zero);
        });
        w.buf
    }

    /// Parses a request.
    pub fn decode(bytes: &[u8]) -> Decoded<Request> {
        let mut r = Reader::new(bytes);
        Ok(Request {
            slots: r.u32()?,
            slot_size: r.u32()?,
            ranges: r.seq(|r| {
                Ok(Range {
                    start: r.u64()?,
                    len: r.u64()?,
                    untouched_is_zero: r.bool()?,
                })
            })?,
        })
    }
}

/// A filled slot: the bytes of `len` bytes from `addr`, with one bit per page for pages
/// that hold data (else zeros: never touched) and for pages that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The slot that holds the bytes.
    pub slot: u32,
    /// The address they were read at.
    pub addr: u64,
    /// How many bytes.
    pub len: u64,
    /// A bit per page: present (read), or untouched anonymous memory (left as zeros).
    pub populated: Vec<u8>,
    /// A bit per page that could not be read.
    pub unreadable: Vec<u8>,
}

impl Chunk {
    /// Its bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u32(self.slot);
        w.u64(self.addr);
        w.u64(self.len);
        w.bytes(&self.populated);
        w.bytes(&self.unreadable);
        w.buf
    }

    /// Parses a chunk message.
    pub fn decode(bytes: &[u8]) -> Decoded<Chunk> {
        let mut r = Reader::new(bytes);
        Ok(Chunk {
            slot: r.u32()?,
            addr: r.u64()?,
            len: r.u64()?,
            populated: r.bytes()?.to_vec(),
            unreadable: r.bytes()?.to_vec(),
        })
    }

    /// Whether bit `i` of `bits` is set.
    pub fn bit(bits: &[u8], i: usize) -> bool {
        bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    /// Sets bit `i` of `bits`.
    pub fn set(bits: &mut [u8], i: usize) {
        bits[i / 8] |= 1 << (i % 8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let req = Request {
            slots: 4,
            slot_size: 1 << 20,
            ranges: vec![Range {
                start: 0x1000,
                len: 0x5000,
                untouched_is_zero: true,
            }],
        };
        assert_eq!(Request::decode(&req.encode()).unwrap(), req);
        let mut bits = vec![0u8; 2];
        Chunk::set(&mut bits, 9);
        let c = Chunk {
            slot: 3,
            addr: 0x2000,
            len: 4096 * 10,
            populated: bits.clone(),
            unreadable: vec![0; 2],
        };
        assert_eq!(Chunk::decode(&c.encode()).unwrap(), c);
        assert!(Chunk::bit(&bits, 9) && !Chunk::bit(&bits, 8) && !Chunk::bit(&bits, 100));
    }
}
