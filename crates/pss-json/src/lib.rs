//! The JSON documents of pss (schema: `docs/json.md`): a snapshot ([`snapshot`]) and the
//! stacks walked from one ([`stacks`]). The `pss` command prints them with `--json`; the
//! Python package builds its records from them.

#![warn(missing_docs)]

mod snapshot;
mod stack;

pub use snapshot::snapshot;
pub use stack::stacks;

/// Version of the documents' shape; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;
