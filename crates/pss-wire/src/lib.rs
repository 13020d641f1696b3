//! The wire of pss, owned by neither side: the codec ([`codec`]), the snapshot format
//! ([`format`](mod@format): files, snapshots duplicated into another process, the engine's answers;
//! `docs/format.md`) and the engine protocol ([`proto`]: requests, answers, errors,
//! `docs/engine.md`).

#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod codec;
pub mod format;
pub mod proto;
