//! The stacks document (`pss stack --json`, `docs/json.md`, "pss stack").

use std::path::Path;

use pss::stack::{Frame, StackEnd, Stacks};
use pss::Snapshot;
use serde_json::{json, Value};

/// The document for `stacks`, walked from `snap`.
pub fn stacks(snap: &Snapshot, stacks: &Stacks) -> Value {
    json!({
        "schema_version": crate::SCHEMA_VERSION,
        "pid": snap.process().process_id,
        "pause_us": pss::units::micros(snap.capture_info().pause),
        "threads": stacks.threads.iter().map(|t| json!({
            "tid": t.thread_id,
            "name": t.name.to_string_lossy(),
            "state": t.state.to_string(),
            "frames": t.frames.iter().map(frame_json).collect::<Vec<_>>(),
            "end": end_json(&t.end),
        })).collect::<Vec<_>>(),
        "warnings": stacks.warnings,
    })
}

fn frame_json(f: &Frame) -> Value {
    json!({
        "address": f.address,
        "module": f.module.as_deref().map(Path::to_string_lossy),
        "module_offset": f.module_offset,
        "function": f.function,
        "file": f.file.as_deref().map(Path::to_string_lossy),
        "line": f.line,
        "inlined": f.inlined,
        "how": f.how.name(),
    })
}

fn end_json(e: &StackEnd) -> Value {
    match e {
        StackEnd::Complete => json!({"kind": "complete"}),
        StackEnd::StackCopyEnded { address } => {
            json!({"kind": "stack-copy-ended", "address": address})
        }
        StackEnd::BadFrame(why) => json!({"kind": "bad-frame", "detail": why}),
        StackEnd::TooDeep { limit } => json!({"kind": "too-deep", "limit": limit}),
        _ => json!({"kind": "other", "detail": e.to_string()}),
    }
}
