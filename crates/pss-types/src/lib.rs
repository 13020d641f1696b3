//! The plain types of pss, shared by the caller's library, the engine and the wire between
//! them: the PSS enumerations and flags with their Windows values ([`flags`]), the records
//! of a snapshot ([`records`]), conversions to Windows units ([`units`]), the one error type
//! ([`error`]), what a capture is asked for ([`options`]) and the trait its frozen memory
//! is read through ([`memory`]). No code that touches a process lives here.

#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod error;
pub mod flags;
pub mod memory;
pub mod options;
pub mod records;
pub mod units;

pub use error::{Error, ErrorKind, Result};
pub use memory::Memory;
pub use options::{CaptureOptions, Target, ThreadReading};
