//! The registry of live `HPSS` and `HPSSWALK` values.
//!
//! A handle is a number, never a pointer: each new one is the next value of a counter,
//! tagged by kind, so a freed handle is never valid again and a marker is never taken for a
//! snapshot. Every entry point looks its handles up here first; any other value is
//! `ERROR_INVALID_HANDLE`.
//!
//! Snapshots duplicated into this process are named by their memfd instead
//! ([`crate::shared`]); once read, they are cached here with the memfd's identity, so that a
//! closed or reused fd is noticed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use pss_core::Snapshot;

use crate::marker::Marker;
use crate::shared::Identity;

const SNAPSHOT_TAG: usize = 0x5053_5300; // "PSS\0"
const MARKER_TAG: usize = 0x5053_5357; // "PSSW"

#[derive(Default)]
struct Registry {
    next: usize,
    snapshots: HashMap<usize, Snapshot>,
    markers: HashMap<usize, Arc<Mutex<Marker>>>,
    imported: HashMap<usize, (Snapshot, Identity)>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<Registry>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut g = lock();
    f(g.get_or_insert_with(Registry::default))
}

/// A new handle value of the given tag: `(counter << 32) | tag` on 64-bit.
fn new_value(r: &mut Registry, tag: usize) -> usize {
    r.next += 1;
    (r.next << 32) | tag
}

/// Registers a snapshot; returns its `HPSS` value.
pub fn add_snapshot(s: Snapshot) -> usize {
    with(|r| {
        let v = new_value(r, SNAPSHOT_TAG);
        r.snapshots.insert(v, s);
        v
    })
}

/// The snapshot behind `h` (a second reference to it), if `h` is live.
pub fn snapshot(h: usize) -> Option<Snapshot> {
    with(|r| r.snapshots.get(&h).cloned())
}

/// Unregisters `h`; the snapshot is freed (its clone killed) when no other handle holds it.
pub fn remove_snapshot(h: usize) -> Option<Snapshot> {
    with(|r| r.snapshots.remove(&h))
}

/// The cached snapshot of memfd handle `h`, with the identity of the memfd it was read from.
pub fn imported(h: usize) -> Option<(Snapshot, Identity)> {
    with(|r| r.imported.get(&h).cloned())
}

/// Caches the snapshot read from memfd handle `h`. Entries whose memfd has been closed
/// meanwhile (freed from another process) are dropped at the same time.
pub fn add_imported(h: usize, s: Snapshot, identity: Identity) {
    with(|r| {
        r.imported.retain(|&old, (_, id)| {
            crate::shared::parse(old)
                .is_some_and(|(fd, _)| crate::shared::identity(fd) == Some(*id))
        });
        r.imported.insert(h, (s, identity));
    });
}

/// Forgets the cached snapshot of memfd handle `h`.
pub fn remove_imported(h: usize) {
    with(|r| r.imported.remove(&h));
}

/// Registers a marker; returns its `HPSSWALK` value.
pub fn add_marker(m: Marker) -> usize {
    with(|r| {
        let v = new_value(r, MARKER_TAG);
        r.markers.insert(v, Arc::new(Mutex::new(m)));
        v
    })
}

/// The marker behind `h`, if `h` is live.
pub fn marker(h: usize) -> Option<Arc<Mutex<Marker>>> {
    with(|r| r.markers.get(&h).cloned())
}

/// Unregisters `h`.
pub fn remove_marker(h: usize) -> Option<Arc<Mutex<Marker>>> {
    with(|r| r.markers.remove(&h))
}
