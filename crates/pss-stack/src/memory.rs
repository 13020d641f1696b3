//! The stack memory an unwind reads, as words: any [`Memory`] (a snapshot's copies of the
//! pause over its clone, say), read a page at a time and kept, since an unwind reads words
//! one by one.

use std::collections::HashMap;

use pss_types::memory::Memory;

const PAGE: u64 = 4096;

/// A page as read: its bytes, of which the first `held` are the memory's.
struct Page {
    bytes: Box<[u8]>,
    held: usize,
}

/// The frozen memory of one snapshot, as words.
pub(crate) struct StackMemory<'a> {
    memory: &'a dyn Memory,
    pages: HashMap<u64, Page>,
    /// The lowest address a read missed: where the copy ended.
    pub missed: Option<u64>,
}

impl<'a> StackMemory<'a> {
    /// Over `memory`.
    pub fn new(memory: &'a dyn Memory) -> StackMemory<'a> {
        StackMemory {
            memory,
            pages: HashMap::new(),
            missed: None,
        }
    }

    /// The word at `addr` (any alignment), or `Err` if the snapshot does not hold it.
    pub fn word(&mut self, addr: u64) -> Result<u64, ()> {
        let mut b = [0u8; 8];
        for (i, byte) in b.iter_mut().enumerate() {
            let Some(a) = addr.checked_add(i as u64) else {
                return Err(());
            };
            match self.byte(a) {
                Some(v) => *byte = v,
                None => {
                    self.missed = Some(self.missed.map_or(a, |m| m.min(a)));
                    return Err(());
                }
            }
        }
        Ok(u64::from_le_bytes(b))
    }

    fn byte(&mut self, addr: u64) -> Option<u8> {
        let start = addr & !(PAGE - 1);
        let memory = self.memory;
        let page = self.pages.entry(start).or_insert_with(|| {
            let mut bytes = vec![0u8; PAGE as usize].into_boxed_slice();
            let held = memory.read(start, &mut bytes);
            Page { bytes, held }
        });
        let offset = (addr - start) as usize;
        (offset < page.held).then(|| page.bytes[offset])
    }
}
