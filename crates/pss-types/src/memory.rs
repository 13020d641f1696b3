//! [`Memory`]: a snapshot's frozen memory as its readers see it — one call that reads what
//! is held at an address. Stacks are walked over it (framehop's model is a memory-read
//! closure), so that a walk needs a snapshot's records and some memory, not a snapshot:
//! the copies taken in the pause (a slice of [`AuxiliaryPage`]s implements it), a VA clone
//! (the caller's library implements it), or both, one over the other ([`Layered`]).

use crate::records::AuxiliaryPage;

/// The granule at which [`Layered`] looks at its upper memory again.
const PAGE: u64 = 4096;

/// Memory as it was at the capture instant.
pub trait Memory {
    /// Reads the bytes held at `address` into the start of `buf`, stopping at the first
    /// byte not held; how many were read (0: nothing is held at `address`).
    fn read(&self, address: u64, buf: &mut [u8]) -> usize;
}

impl<M: Memory + ?Sized> Memory for &M {
    fn read(&self, address: u64, buf: &mut [u8]) -> usize {
        (**self).read(address, buf)
    }
}

impl<M: Memory> Memory for Option<M> {
    fn read(&self, address: u64, buf: &mut [u8]) -> usize {
        self.as_ref().map_or(0, |m| m.read(address, buf))
    }
}

/// The copies of the pause: each page's bytes, contiguous copies read across.
impl Memory for [AuxiliaryPage] {
    fn read(&self, address: u64, buf: &mut [u8]) -> usize {
        let mut done = 0;
        while done < buf.len() {
            let at = address.wrapping_add(done as u64);
            let Some(page) = self
                .iter()
                .find(|p| p.address <= at && at - p.address < p.contents.len() as u64)
            else {
                break;
            };
            let from = &page.contents[(at - page.address) as usize..];
            let n = from.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&from[..n]);
            done += n;
        }
        done
    }
}

/// `upper`'s bytes where it holds them, and `lower`'s elsewhere: the copies of the pause
/// over a clone, say. `upper` is looked at again at each 4 KiB page boundary, so it wins
/// wherever it holds whole pages (as copies of the pause do).
#[derive(Debug, Clone, Copy)]
pub struct Layered<U, L> {
    /// Read first.
    pub upper: U,
    /// Read where `upper` holds nothing.
    pub lower: L,
}

impl<U: Memory, L: Memory> Memory for Layered<U, L> {
    fn read(&self, address: u64, buf: &mut [u8]) -> usize {
        let mut done = 0;
        while done < buf.len() {
            let at = address.wrapping_add(done as u64);
            let n = match self.upper.read(at, &mut buf[done..]) {
                0 => {
                    let to_page_end = (PAGE - at % PAGE).min((buf.len() - done) as u64);
                    self.lower
                        .read(at, &mut buf[done..done + to_page_end as usize])
                }
                n => n,
            };
            if n == 0 {
                break;
            }
            done += n;
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::AuxiliaryPageKind;
    use std::time::UNIX_EPOCH;

    fn page(address: u64, fill: u8, len: usize) -> AuxiliaryPage {
        AuxiliaryPage {
            address,
            thread_id: 1,
            kind: AuxiliaryPageKind::Stack,
            capture_time: UNIX_EPOCH,
            contents: vec![fill; len],
        }
    }

    #[test]
    fn copies_are_read_across_and_stop_where_none_holds() {
        let copies = [page(0x2000, 2, 0x1000), page(0x1000, 1, 0x1000)];
        let mut buf = [0u8; 0x3000];
        assert_eq!(copies[..].read(0x1ffe, &mut buf), 0x1002);
        assert_eq!(&buf[..3], &[1, 1, 2]);
        assert_eq!(copies[..].read(0x3000, &mut buf), 0);
    }

    #[test]
    fn the_lower_memory_is_read_where_the_upper_holds_nothing() {
        let upper = [page(0x1000, 1, 0x800), page(0x2000, 2, 0x1000)];
        let lower = [page(0x0, 9, 0x4000)];
        let both = Layered {
            upper: &upper[..],
            lower: &lower[..],
        };
        let mut buf = [0u8; 0x1000];
        assert_eq!(both.read(0xff0, &mut buf), 0x1000);
        assert_eq!((buf[0], buf[0x10], buf[0x80f], buf[0x810]), (9, 1, 1, 9));
        assert_eq!((buf[0xfff], both.read(0x1ff0, &mut buf[..0x20])), (9, 0x20));
        assert_eq!((buf[0xf], buf[0x10]), (9, 2));
        assert_eq!(both.read(0x3ff0, &mut buf), 0x10);
        let none: Option<&[AuxiliaryPage]> = None;
        assert_eq!(none.read(0x1000, &mut buf), 0);
    }
}
