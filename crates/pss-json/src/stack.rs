//! The stacks document (`pss stack --json`, `docs/json.md`, "pss stack"), written straight
//! from the stacks as it is serialized.

use pss::Snapshot;
use pss_stack::{Frame, StackEnd, Stacks, ThreadStack};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::doc::{object, text, Each};

/// The document for `stacks`, walked from `snap`.
pub fn stacks<'a>(snap: &'a Snapshot, stacks: &'a Stacks) -> impl Serialize + 'a {
    Document { snap, stacks }
}

/// The document.
struct Document<'a> {
    snap: &'a Snapshot,
    stacks: &'a Stacks,
}

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("schema_version", &crate::SCHEMA_VERSION)?;
        m.serialize_entry("pid", &self.snap.process().process_id)?;
        m.serialize_entry(
            "pause_us",
            &pss::units::micros(self.snap.capture_info().pause),
        )?;
        m.serialize_entry("threads", &Each(&self.stacks.threads, Thread))?;
        m.serialize_entry("warnings", &self.stacks.warnings)?;
        m.end()
    }
}

object!(Thread(ThreadStack) |t| {
    "tid": t.thread_id,
    "name": text(&t.name),
    "state": t.state.to_string(),
    "read": t.read.name(),
    "frames": Each(&t.frames, FrameDoc),
    "end": End(&t.end),
});

object!(
    /// One frame (`docs/json.md`, "pss stack").
    FrameDoc(Frame) |f| {
    "address": f.address,
    "module": f.module.as_deref().map(|m| text(m.as_os_str())),
    "module_offset": f.module_offset,
    "function": f.function,
    "file": f.file.as_deref().map(|p| text(p.as_os_str())),
    "line": f.line,
    "inlined": f.inlined,
    "how": f.how.name(),
    "jit": f.jit,
});

/// Why a walk ended: `{"kind": …}` with the detail the kind has.
struct End<'a>(&'a StackEnd);

impl Serialize for End<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.0 {
            StackEnd::Complete => m.serialize_entry("kind", "complete")?,
            StackEnd::StackCopyEnded { address } => {
                m.serialize_entry("kind", "stack-copy-ended")?;
                m.serialize_entry("address", address)?;
            }
            StackEnd::BadFrame(why) => {
                m.serialize_entry("kind", "bad-frame")?;
                m.serialize_entry("detail", why)?;
            }
            StackEnd::TooDeep { limit } => {
                m.serialize_entry("kind", "too-deep")?;
                m.serialize_entry("limit", limit)?;
            }
            StackEnd::NeedsRegisters => m.serialize_entry("kind", "needs-registers")?,
            e => {
                m.serialize_entry("kind", "other")?;
                m.serialize_entry("detail", &e.to_string())?;
            }
        }
        m.end()
    }
}
