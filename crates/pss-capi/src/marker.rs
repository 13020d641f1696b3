//! A walk marker of the C ABI: the Rust cursor, and the memory handed out through it.
//!
//! Every string, `CONTEXT` record and page copy that a walk returns is allocated here,
//! through the marker's `PSS_ALLOCATOR` if it has one (else `malloc`), and stays valid until
//! `PssWalkMarkerFree` releases all of it through the same allocator.

use std::ffi::c_void;

use pss_core::WalkMarker;

use crate::types::PSS_ALLOCATOR;

/// Every block is aligned to this (a `CONTEXT` needs 16), whatever the allocator returns.
const ALIGN: usize = 16;

/// A marker and its blocks.
pub struct Marker {
    /// The cursor.
    pub walk: WalkMarker,
    /// The caller's allocator; it must stay valid until the marker is freed (as on Windows).
    allocator: *const PSS_ALLOCATOR,
    /// What each allocation returned (to free), in allocation order.
    blocks: Vec<*mut c_void>,
}

// SAFETY: the raw pointers are only used by the thread calling into the marker (the
// registry hands it out under a mutex); the allocator's routines are called on the thread
// making the Create/Walk/Free call, as Windows documents.
unsafe impl Send for Marker {}

impl Marker {
    /// A marker using `allocator` (NULL: malloc/free).
    pub fn new(allocator: *const PSS_ALLOCATOR) -> Marker {
        Marker {
            walk: WalkMarker::new(),
            allocator,
            blocks: Vec::new(),
        }
    }

    /// A copy of `bytes` in memory owned by the marker, 16-byte aligned; NULL if the
    /// allocator failed.
    pub fn copy(&mut self, bytes: &[u8]) -> *mut c_void {
        let Ok(size) = u32::try_from(bytes.len() + ALIGN) else {
            return std::ptr::null_mut();
        };
        let raw = self.alloc(size);
        if raw.is_null() {
            return raw;
        }
        self.blocks.push(raw);
        let offset = (ALIGN - raw as usize % ALIGN) % ALIGN;
        // SAFETY: `raw` is a fresh block of `bytes.len() + 16` bytes; `offset` < 16, so the
        // copy stays inside it.
        unsafe {
            let dst = raw.cast::<u8>().add(offset);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
            dst.cast()
        }
    }

    /// A NUL-terminated UTF-16 copy of `s`; its length in bytes without the NUL.
    pub fn utf16(&mut self, s: &str) -> (*const u16, u16) {
        let bytes: Vec<u8> = s
            .encode_utf16()
            .chain(std::iter::once(0))
            .flat_map(u16::to_ne_bytes)
            .collect();
        let len = u16::try_from(bytes.len() - 2).unwrap_or(0xFFFE);
        (self.copy(&bytes).cast_const().cast(), len)
    }

    fn alloc(&mut self, size: u32) -> *mut c_void {
        // SAFETY: the allocator pointer was given by the caller, who keeps it valid for the
        // marker's life (PSS_ALLOCATOR contract); malloc has no preconditions.
        unsafe {
            match self
                .allocator
                .as_ref()
                .and_then(|a| a.AllocRoutine.map(|f| (a, f)))
            {
                Some((a, f)) => f(a.Context, size),
                None => libc::malloc(size as usize),
            }
        }
    }

    /// Releases every block handed out.
    pub fn release_all(&mut self) {
        for p in self.blocks.drain(..) {
            // SAFETY: each block came from the matching allocation routine and is freed
            // once.
            unsafe {
                match self.allocator.as_ref() {
                    Some(a) => {
                        if let Some(f) = a.FreeRoutine {
                            f(a.Context, p);
                        }
                    }
                    None => libc::free(p),
                }
            }
        }
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        self.release_all();
    }
}
