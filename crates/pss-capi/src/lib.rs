//! libpss: the C ABI of `processsnapshot.h` on Linux.
//!
//! The ten PSS functions, with the Windows names, structures and return codes, backed by the
//! `pss` library. A process `HANDLE` is a pidfd, or `(HANDLE)-1` for the calling process;
//! `HPSS` and `HPSSWALK` values are checked against a registry (`registry.rs`). Every entry
//! point catches panics and returns `ERROR_INTERNAL_ERROR` rather than unwinding into C.
//! `PssLinuxLastErrorMessage` (a libpss extension) tells why the calling thread's last
//! failing call failed; `PssLinuxOpenProcess`, `PssLinuxCloseHandle` and
//! `PssLinuxGetLastError` (`process.rs`) back the header's `OpenProcess`, `CloseHandle` and
//! `GetLastError`. Choices where Windows behaviour is unknown: `docs/capi.md`.
//!
//! `unsafe` here is the C boundary itself: reading and writing the caller's pointers, and
//! the marker's allocator. Each block says what it relies on.

mod api;
mod context;
mod convert;
mod export;
mod marker;
mod process;
mod registry;
mod shared;
mod types;
