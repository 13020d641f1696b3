//! The caller's side of a pump (`pss_wire::proto::pump`), for exports (`pss-export`): the engine reads a clone's memory
//! into a ring shared with us, one slot ahead, while we write the slot before — two cores
//! at work and no thread of ours started.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use crate::client::{call, Request, SHORT_REQUEST};
use crate::va_clone::VaClone;
use pss_sys::channel::Channel;
use pss_sys::ring::Ring;
use pss_types::error::{Error, Result};
use pss_wire::proto::kind;
use pss_wire::proto::pump;
pub use pss_wire::proto::pump::{Chunk, Range};

/// Slots of the ring, and their size: the memory a pump costs each side.
pub const SLOTS: usize = 4;
/// The size of a slot.
pub const SLOT_SIZE: usize = 1 << 20;

/// A running pump: its chunks come in the order of the ranges asked for.
pub struct Pump {
    ring: Ring,
    chan: Channel,
}

impl Pump {
    /// Asks the engine that holds `clone` to read `ranges` of it ahead; `Ok(None)` if that
    /// engine is gone (the caller then reads by itself, and finds the clone gone).
    pub fn start(
        clone: &VaClone,
        pagemap: Option<BorrowedFd<'_>>,
        ranges: &[Range],
    ) -> Result<Option<Pump>> {
        let io = |e: std::io::Error| Error::Internal(format!("cannot set a pump up: {e}"));
        let (ring, ring_fd) = Ring::create(SLOTS, SLOT_SIZE).map_err(io)?;
        let (ours, theirs) = Channel::pair().map_err(io)?;
        let payload = pump::Request {
            slots: SLOTS as u32,
            slot_size: SLOT_SIZE as u32,
            ranges: ranges.to_vec(),
        }
        .encode();
        let mut fds = vec![ring_fd.as_fd(), theirs.fd(), clone.mem.as_fd()];
        fds.extend(pagemap);
        let reply = call(&Request {
            kind: kind::PUMP,
            payload: &payload,
            fds: &fds,
            timeout: SHORT_REQUEST,
            traces_caller: false,
            only: Some(clone.engine),
        })?;
        Ok(reply.map(|_| Pump { ring, chan: ours }))
    }

    /// The next chunk, once filled. The pump's end is an error here: the ranges say how
    /// many chunks to expect.
    pub fn next_chunk(&mut self) -> Result<Chunk> {
        let broken = |what: String| Error::Internal(format!("the engine's pump {what}"));
        let f = self
            .chan
            .recv(Some(Instant::now() + SHORT_REQUEST))
            .map_err(|e| broken(format!("stopped: {e}")))?;
        if f.kind != kind::PUMP_CHUNK {
            return Err(broken(format!("sent message kind {} for a chunk", f.kind)));
        }
        let c = Chunk::decode(&f.payload).map_err(|e| broken(e.to_string()))?;
        if c.slot as usize >= self.ring.slots() || c.len > self.ring.slot_size() as u64 {
            return Err(broken(format!("sent a chunk beyond its ring: {c:?}")));
        }
        Ok(c)
    }

    /// The bytes of a chunk received and not yet handed back.
    pub fn data(&self, c: &Chunk) -> &[u8] {
        &self.ring.slot(c.slot as usize)[..c.len as usize]
    }

    /// Hands a chunk's slot back to the pump. A pump that has stopped (its last chunk
    /// sent, or broken) needs it no more; a broken one shows at the next [`Pump::next`].
    pub fn free(&mut self, c: Chunk) {
        let _ = self.chan.send(kind::PUMP_FREE, &c.slot.to_le_bytes(), &[]);
    }
}
