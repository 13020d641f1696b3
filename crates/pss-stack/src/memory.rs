//! The stack memory an unwind reads: the copies taken in the pause (auxiliary pages), and,
//! beyond them, the VA clone when there is one — read a page at a time and kept, since an
//! unwind reads words one by one.

use std::collections::HashMap;

use pss::VaClone;
use pss_types::records::AuxiliaryPage;

const PAGE: u64 = 4096;

/// The frozen memory of one snapshot, as words.
pub(crate) struct StackMemory<'a> {
    copies: &'a [AuxiliaryPage],
    clone: Option<&'a VaClone>,
    pages: HashMap<u64, Option<Box<[u8]>>>,
    /// The lowest address a read missed: where the copy ended.
    pub missed: Option<u64>,
}

impl<'a> StackMemory<'a> {
    /// Over the auxiliary pages `copies` and, if given, the clone.
    pub fn new(copies: &'a [AuxiliaryPage], clone: Option<&'a VaClone>) -> StackMemory<'a> {
        StackMemory {
            copies,
            clone,
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
        if let Some(p) = self
            .copies
            .iter()
            .find(|p| p.address <= addr && addr - p.address < p.contents.len() as u64)
        {
            return Some(p.contents[(addr - p.address) as usize]);
        }
        let clone = self.clone?;
        let page = addr & !(PAGE - 1);
        let bytes = self.pages.entry(page).or_insert_with(|| {
            let mut buf = vec![0u8; PAGE as usize];
            clone
                .read_exact(page, &mut buf)
                .ok()
                .map(|()| buf.into_boxed_slice())
        });
        bytes.as_ref().map(|b| b[(addr - page) as usize])
    }
}
