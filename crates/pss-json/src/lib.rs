//! The JSON documents of pss (schema: `docs/json.md`): a snapshot ([`snapshot`]), the
//! stacks walked from one ([`stacks`]) and a profile of sampled stacks ([`profile`]). The `pss` command prints them with `--json`; the
//! Python package builds its records from them. Each is a `Serialize` that writes straight
//! from the records (no tree of values first): serialize it into a buffered writer.

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod doc;
mod profile;
mod snapshot;
mod stack;

pub use profile::profile;
pub use snapshot::snapshot;
pub use stack::stacks;

/// Version of the documents' shape; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;
