//! What an address is named: the record the symbolizer ([`super::symbols`]) makes and the
//! names kept on disk ([`super::name_cache`]) hold.

use std::path::PathBuf;

/// One name an address has: the function, and where in the source, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    pub function: Option<String>,
    pub file: Option<PathBuf>,
    pub line: Option<u32>,
}
