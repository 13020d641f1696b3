//! The engine's side of a pump (`pss_wire::proto::pump`): a thread that reads ranges of a
//! clone's memory, through the caller's own `/proc/CLONE/mem`, into the ring the caller
//! shares, one slot ahead of the caller's writes.
//!
//! It traces nothing and touches no held clone: it only reads the descriptors it was
//! given. It ends when every range is read, or when the caller closes the pump's channel
//! (an export that failed or was cancelled, or a caller that died).

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsFd;

use pss_sys::channel::{Channel, Frame};
use pss_sys::mem::ProcMem;
use pss_sys::pagemap::Pagemap;
use pss_sys::ring::Ring;
use pss_types::error::{Error, Result};
use pss_wire::proto::kind;
use pss_wire::proto::pump::{Chunk, Range, Request};

/// The most slots, and the largest slot, a pump accepts.
const MAX_SLOTS: u32 = 16;
const MAX_SLOT: u32 = 16 << 20;

/// Starts a pump for request `f` on a thread of its own.
pub(super) fn start(f: Frame) -> Result<()> {
    let req = Request::decode(&f.payload).map_err(|e| bad(e.to_string()))?;
    let page = pss_sys::page_size();
    if !(1..=MAX_SLOTS).contains(&req.slots)
        || req.slot_size == 0
        || req.slot_size > MAX_SLOT
        || u64::from(req.slot_size) % page != 0
    {
        return Err(bad(format!(
            "{} slots of {} bytes",
            req.slots, req.slot_size
        )));
    }
    let mut fds = f.fds.into_iter();
    let (Some(ring), Some(chan), Some(mem)) = (fds.next(), fds.next(), fds.next()) else {
        return Err(bad("descriptors missing".into()));
    };
    let pagemap = fds
        .next()
        .map(|fd| Pagemap::from_file(std::fs::File::from(fd)));
    let ring = Ring::map(ring.as_fd(), req.slots as usize, req.slot_size as usize)
        .map_err(|e| bad(format!("cannot map the ring: {e}")))?;
    let pump = Pump {
        ring,
        chan: Channel::from_fd(chan),
        mem: ProcMem::from_fd(mem),
        pagemap,
        page,
    };
    std::thread::Builder::new()
        .name("pss-pump".into())
        .spawn(move || {
            // It runs at the engine's priority, which is its caller's when it was started
            // (`nice pss dump` lowers both).
            // Its channel closed or broke: the caller no longer wants the rest.
            let _ = pump.run(req.ranges);
        })
        .map_err(|e| Error::Internal(format!("the engine cannot start a pump thread: {e}")))?;
    Ok(())
}

fn bad(what: String) -> Error {
    Error::Internal(format!("a malformed pump request: {what}"))
}

struct Pump {
    ring: Ring,
    chan: Channel,
    mem: ProcMem,
    pagemap: Option<Pagemap>,
    page: u64,
}

impl Pump {
    fn run(mut self, ranges: Vec<Range>) -> io::Result<()> {
        let mut free: VecDeque<usize> = (0..self.ring.slots()).collect();
        let slot_size = self.ring.slot_size() as u64;
        for r in ranges {
            let end = r.start + r.len;
            let mut at = r.start;
            while at < end {
                let slot = match free.pop_front() {
                    Some(s) => s,
                    None => self.wait_free()?,
                };
                let len = (end - at).min(slot_size);
                let chunk = self.fill(slot, at, len, r.untouched_is_zero);
                self.chan.send(kind::PUMP_CHUNK, &chunk.encode(), &[])?;
                at += len;
            }
        }
        self.chan.send(kind::PUMP_DONE, &[], &[])
    }

    /// Waits for the caller to hand a slot back.
    fn wait_free(&self) -> io::Result<usize> {
        let f = self.chan.recv(None)?;
        let slot = (f.kind == kind::PUMP_FREE && f.payload.len() == 4)
            .then(|| u32::from_le_bytes(f.payload[..4].try_into().expect("4 bytes")) as usize)
            .filter(|&s| s < self.ring.slots());
        slot.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a slot handed back"))
    }

    /// Reads `len` bytes at `addr` into slot `slot`: the pages the clone holds (all of
    /// them unless `untouched_is_zero`), marking those that cannot be read.
    fn fill(&mut self, slot: usize, addr: u64, len: u64, untouched_is_zero: bool) -> Chunk {
        let pages = len.div_ceil(self.page) as usize;
        let bitmap_len = pages.div_ceil(8);
        let mut populated = vec![0xffu8; bitmap_len];
        let mut unreadable = vec![0u8; bitmap_len];
        let mut flags = Vec::new();
        if untouched_is_zero
            && self
                .pagemap
                .as_mut()
                .is_some_and(|pm| pm.populated(addr, pages, &mut flags).is_ok())
        {
            populated.fill(0);
            for (i, _) in flags.iter().enumerate().filter(|(_, &p)| p) {
                Chunk::set(&mut populated, i);
            }
        }
        let page = self.page as usize;
        let buf = self.ring.slot_mut(slot);
        let mut i = 0;
        while i < pages {
            if !Chunk::bit(&populated, i) {
                i += 1;
                continue;
            }
            let run = (i..pages)
                .take_while(|&j| Chunk::bit(&populated, j))
                .count();
            let from = i * page;
            let to = ((i + run) * page).min(len as usize);
            let mut off = from;
            while off < to {
                match self.mem.read_at(addr + off as u64, &mut buf[off..to]) {
                    Ok(n) if n > 0 => off += n,
                    _ => {
                        // This page cannot be read: mark it, go on with the next.
                        Chunk::set(&mut unreadable, off / page);
                        off = (off / page + 1) * page;
                    }
                }
            }
            i += run;
        }
        Chunk {
            slot: slot as u32,
            addr,
            len,
            populated,
            unreadable,
        }
    }
}
