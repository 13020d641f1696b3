//! The log of a watch: every event as one JSON line appended to `DIR/pss-watch.jsonl`, and
//! as text (or the same JSON line, `--json`) on standard output.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};
use pss_watch::Event;
use serde_json::{json, Value};

use super::dump::Written;
use crate::escape::shown;
use crate::units;

/// Where events go.
pub struct Log {
    file: File,
    json: bool,
}

impl Log {
    /// Appends to `dir/pss-watch.jsonl` (made 0600 if new); `json`: JSON lines on standard
    /// output too, rather than text.
    pub fn open(dir: &Path, json: bool) -> Result<Log> {
        let path = dir.join("pss-watch.jsonl");
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("opening the log {}", path.display()))?;
        Ok(Log { file, json })
    }

    /// Logs an event that is not a trigger.
    pub fn event(&mut self, event: &Event) -> Result<()> {
        let (doc, text) = match event {
            Event::Started { pid, name } => (
                json!({"event": "started", "pid": pid, "name": name}),
                format!("watching process {pid} ({})", shown(name)),
            ),
            Event::Exited { pid, name } => (
                json!({"event": "exited", "pid": pid, "name": name}),
                format!("process {pid} ({}) exited", shown(name)),
            ),
            Event::Finished { why } => (
                json!({"event": "finished", "why": why}),
                format!("done: {why}"),
            ),
            Event::Trigger { .. } => unreachable!("triggers are logged by `trigger`"),
        };
        self.write(doc, &text)
    }

    /// Logs a trigger and what its dump wrote (`Err`: why it failed).
    pub fn trigger(
        &mut self,
        event: &Event,
        hold: f64,
        path: &Path,
        written: Result<&Written, String>,
    ) -> Result<()> {
        let (mut doc, head) = trigger_doc(event);
        doc["for_s"] = json!(hold);
        let tail = match written {
            Ok(w) => {
                doc["file"] = json!(path.display().to_string());
                doc["bytes"] = json!(w.bytes);
                doc["stall_us"] = json!(pss::units::micros(w.stall));
                format!(
                    "wrote {} ({}; the process was stopped {})",
                    shown(&path.display().to_string()),
                    units::size(w.bytes),
                    units::duration(w.stall)
                )
            }
            Err(e) => {
                doc["error"] = json!(e);
                format!("the dump failed: {}", shown(&e))
            }
        };
        self.write(doc, &format!("{head}: {tail}"))
    }

    /// Logs a trigger whose dump was not written: `why`.
    pub fn skipped(&mut self, event: &Event, why: &str) -> Result<()> {
        let (mut doc, head) = trigger_doc(event);
        doc["event"] = json!("skipped");
        doc["why"] = json!(why);
        self.write(
            doc,
            &format!("{head}: not dumped, and watching ends: {why}"),
        )
    }

    fn write(&mut self, mut doc: Value, text: &str) -> Result<()> {
        let now = SystemTime::now();
        doc["time"] = json!(units::utc(now));
        doc["unix_ms"] = json!(now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64));
        let line = format!("{doc}\n");
        self.file
            .write_all(line.as_bytes())
            .context("writing the log pss-watch.jsonl")?;
        let mut out = std::io::stdout().lock();
        if self.json {
            out.write_all(line.as_bytes())?;
        } else {
            let clock = units::utc(now);
            writeln!(out, "pss watch: {} {text}", &clock[11..19])?;
        }
        out.flush()?;
        Ok(())
    }
}

/// A trigger's document and the head of its text line.
fn trigger_doc(event: &Event) -> (Value, String) {
    let Event::Trigger {
        pid,
        condition,
        usage,
        cpu_percent,
        time,
    } = event
    else {
        unreachable!("only triggers");
    };
    let doc = json!({
        "event": "trigger",
        "pid": pid,
        "name": usage.name,
        "trigger": condition.name(),
        "condition": condition.to_string(),
        "values": {
            "cpu_percent": cpu_percent,
            "commit_bytes": usage.commit,
            "threads": usage.threads,
            "fds": usage.fds,
        },
        "fired_unix_ms": time
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    });
    let cpu = cpu_percent.map_or("-".into(), |c| format!("{c:.0}%"));
    let fds = usage.fds.map_or("-".into(), |n| n.to_string());
    let head = format!(
        "process {pid} ({}): {condition} (cpu {cpu}, commit {}, {} threads, {fds} fds)",
        shown(&usage.name),
        units::size(usage.commit),
        usage.threads
    );
    (doc, head)
}
