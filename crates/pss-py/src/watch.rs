//! Watching processes from Python (`pss.watch`): [`pss_watch`]'s watcher, polled by the
//! package's generator, each poll's events as JSON documents.

use std::time::{Duration, UNIX_EPOCH};

use pss_watch::{Condition, Event, Rules, Targets, Watcher};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use serde_json::json;

/// A watch in progress.
#[pyclass(module = "pss._pss")]
pub struct NativeWatcher {
    watcher: Watcher,
}

#[pymethods]
impl NativeWatcher {
    /// A watch of `target` (`("pid", N)`, `("name", "x")` or `("pgid", N)`) for
    /// `conditions` (`[("cpu", 80.0), ("mem", 1e9), ("every", 5.0)…]`).
    #[new]
    fn new(
        target: (String, String),
        conditions: Vec<(String, f64)>,
        hold: f64,
        cooldown: f64,
        count: u64,
    ) -> PyResult<NativeWatcher> {
        let number = |v: &str| {
            v.parse::<i32>()
                .map_err(|_| PyValueError::new_err(format!("{v:?} is not a process id")))
        };
        let targets = match target.0.as_str() {
            "pid" => Targets::Pid(number(&target.1)?),
            "pgid" => Targets::Pgid(number(&target.1)?),
            "name" => Targets::Name(target.1),
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown target kind {other:?}"
                )))
            }
        };
        let conditions = conditions
            .into_iter()
            .map(|(kind, v)| condition(&kind, v))
            .collect::<PyResult<Vec<_>>>()?;
        if conditions.is_empty() {
            return Err(PyValueError::new_err(
                "no trigger: give cpu, cpu_below, mem, mem_below, threads, fds or every",
            ));
        }
        let rules = Rules {
            conditions,
            hold: seconds(hold, "hold")?,
            cooldown: seconds(cooldown, "cooldown")?,
            count: (count > 0).then_some(count),
        };
        Ok(NativeWatcher {
            watcher: Watcher::new(targets, rules),
        })
    }

    /// Reads every target once: the events, as JSON documents.
    fn poll(&mut self, py: Python<'_>) -> Vec<String> {
        let watcher = &mut self.watcher;
        py.detach(|| watcher.poll()).iter().map(document).collect()
    }

    /// Whether the watch is over.
    fn finished(&self) -> bool {
        self.watcher.finished()
    }
}

/// A condition from its keyword and value.
fn condition(kind: &str, v: f64) -> PyResult<Condition> {
    let count = |v: f64| {
        (v >= 0.0 && v.fract() == 0.0)
            .then_some(v as u64)
            .ok_or_else(|| PyValueError::new_err(format!("{kind}={v}: not a count")))
    };
    Ok(match kind {
        "cpu" => Condition::CpuAtLeast(v),
        "cpu_below" => Condition::CpuBelow(v),
        "mem" => Condition::CommitAtLeast(count(v)?),
        "mem_below" => Condition::CommitBelow(count(v)?),
        "threads" => Condition::ThreadsAtLeast(count(v)?),
        "fds" => Condition::FdsAtLeast(count(v)?),
        "every" => Condition::Every(seconds(v, "every")?),
        other => return Err(PyValueError::new_err(format!("unknown trigger {other:?}"))),
    })
}

fn seconds(v: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| PyValueError::new_err(format!("{what}={v}: not a number of seconds")))
}

/// The JSON document of `event`.
fn document(event: &Event) -> String {
    let doc = match event {
        Event::Started { pid, name } => json!({"kind": "started", "pid": pid, "name": name}),
        Event::Exited { pid, name } => json!({"kind": "exited", "pid": pid, "name": name}),
        Event::Finished { why } => json!({"kind": "finished", "why": why}),
        Event::Trigger {
            pid,
            condition,
            time,
            usage,
            cpu_percent,
        } => json!({
            "kind": "trigger",
            "pid": pid,
            "name": usage.name,
            "trigger": condition.name(),
            "condition": condition.to_string(),
            "time": time.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
            "cpu_percent": cpu_percent,
            "commit": usage.commit,
            "threads": usage.threads,
            "fds": usage.fds,
        }),
    };
    doc.to_string()
}
