//! Walk markers (`HPSSWALK`): a cursor over the entries of a snapshot.
//!
//! A marker is independent of any snapshot, as on Windows. It holds one cursor: the class it
//! last walked and the next index. Walking a different class starts that class from its
//! beginning (so one marker can walk VA space, then handles, as Windows callers do); use one
//! marker per class to interleave walks.

use pss_types::error::{Error, Result};
use pss_types::flags::WalkClass;

/// An opaque position from [`WalkMarker::position`], only meaningful to
/// [`WalkMarker::set_position`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WalkPosition(pub usize);

const INDEX_BITS: u32 = 48;

/// A walk cursor (`PssWalkMarkerCreate` … `PssWalkMarkerFree`, which is `Drop`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkMarker {
    cursor: Option<(WalkClass, usize)>,
}

impl WalkMarker {
    /// A marker at the beginning.
    pub fn new() -> WalkMarker {
        WalkMarker::default()
    }

    /// `PssWalkMarkerGetPosition`.
    pub fn position(&self) -> WalkPosition {
        match self.cursor {
            None => WalkPosition(0),
            Some((class, index)) => {
                WalkPosition(((class.value() as usize + 1) << INDEX_BITS) | index)
            }
        }
    }

    /// `PssWalkMarkerSetPosition`: returns to a position this or another marker reported.
    pub fn set_position(&mut self, position: WalkPosition) -> Result<()> {
        if position.0 == 0 {
            self.cursor = None;
            return Ok(());
        }
        let tag = position.0 >> INDEX_BITS;
        let index = position.0 & ((1 << INDEX_BITS) - 1);
        let class = tag
            .checked_sub(1)
            .and_then(|c| WalkClass::from_value(c as i32))
            .ok_or_else(|| {
                Error::InvalidParameter(format!("{:#x} is not a walk position", position.0))
            })?;
        self.cursor = Some((class, index));
        Ok(())
    }

    /// `PssWalkMarkerSeekToBeginning`.
    pub fn seek_to_beginning(&mut self) {
        self.cursor = None;
    }

    pub(crate) fn index_for(&self, class: WalkClass) -> usize {
        match self.cursor {
            Some((c, i)) if c == class => i,
            _ => 0,
        }
    }

    pub(crate) fn set_cursor(&mut self, class: WalkClass, index: usize) {
        self.cursor = Some((class, index));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip() {
        let mut m = WalkMarker::new();
        assert_eq!(m.position(), WalkPosition(0));
        m.set_cursor(WalkClass::Handles, 7);
        let p = m.position();
        m.seek_to_beginning();
        assert_eq!(m.index_for(WalkClass::Handles), 0);
        m.set_position(p).unwrap();
        assert_eq!(m.index_for(WalkClass::Handles), 7);
        assert_eq!(m.index_for(WalkClass::Threads), 0);
        assert!(m.set_position(WalkPosition(99 << 48)).is_err());
    }
}
