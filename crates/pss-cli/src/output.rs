//! Files the command writes from bytes it holds (a profile, stacks): whole or not at all,
//! and removed if a signal ends the command while they are written.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::interrupt;

/// Writes `bytes` to `path` through [`pss_export::write_whole`] (an existing `path` only
/// with `overwrite`).
pub fn write_file(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    interrupt::saving(path.to_owned());
    let r = pss_export::write_whole(path, overwrite, false, |mut f| {
        f.write_all(bytes).map_err(|source| pss::Error::Output {
            what: path.display().to_string(),
            source,
        })
    });
    interrupt::saved(&path.to_owned());
    r.with_context(|| format!("writing {}", path.display()))
}
