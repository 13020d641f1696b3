//! The library's errors as the exception classes of `pss._errors` (psutil's names where
//! psutil has one: `NoSuchProcess`, `ZombieProcess`, `AccessDenied`, `TimeoutExpired`),
//! each with the pid, tid, address, path or errno it concerns as attributes.

use pss::Error;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// `e` as the Python exception to raise.
pub fn to_py(e: Error) -> PyErr {
    Python::attach(|py| build(py, &e).unwrap_or_else(|failed| failed))
}

fn build(py: Python<'_>, e: &Error) -> PyResult<PyErr> {
    let details = PyDict::new(py);
    let class = classify(e, &details)?;
    let module = py.import("pss._errors")?;
    let exc = module
        .getattr(class)?
        .call((e.to_string(),), Some(&details))?;
    Ok(PyErr::from_value(exc))
}

/// Seconds, as Python states durations.
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// The class for `e`, with its attributes put in `d`.
fn classify(e: &Error, d: &Bound<'_, PyDict>) -> PyResult<&'static str> {
    let errno = |source: &std::io::Error| source.raw_os_error();
    Ok(match e {
        Error::NoSuchProcess { pid } => {
            d.set_item("pid", pid)?;
            "NoSuchProcess"
        }
        Error::NotAProcess { tid, tgid } => {
            d.set_item("pid", tid)?;
            d.set_item("tgid", tgid)?;
            "NoSuchProcess"
        }
        Error::Zombie { pid } => {
            d.set_item("pid", pid)?;
            "ZombieProcess"
        }
        Error::ProcessExited { pid } => {
            d.set_item("pid", pid)?;
            "ProcessExited"
        }
        Error::PermissionDenied { pid, source, .. } => {
            d.set_item("pid", pid)?;
            d.set_item("errno", errno(source))?;
            "AccessDenied"
        }
        Error::AlreadyTraced { pid, tid, tracer } => {
            d.set_item("pid", pid)?;
            d.set_item("tid", tid)?;
            d.set_item("tracer", tracer)?;
            "AlreadyTraced"
        }
        Error::Timeout {
            pid,
            tid,
            timeout_ms,
        } => {
            d.set_item("pid", pid)?;
            d.set_item("tid", tid)?;
            d.set_item("seconds", seconds(*timeout_ms))?;
            "TimeoutExpired"
        }
        Error::Busy { pid, waited_ms } => {
            d.set_item("pid", pid)?;
            d.set_item("seconds", seconds(*waited_ms))?;
            "Busy"
        }
        Error::NotSupported { .. } => "NotSupported",
        Error::NotFound { what, .. } => {
            d.set_item("what", what)?;
            "NotCaptured"
        }
        Error::InvalidParameter(_) => "InvalidArgument",
        Error::Corrupt { .. } => "CorruptSnapshot",
        Error::File { path, source } => {
            d.set_item("path", path.to_string_lossy())?;
            d.set_item("errno", errno(source))?;
            "SnapshotFileError"
        }
        Error::Unreadable { pid, address, .. } => {
            d.set_item("pid", pid)?;
            d.set_item("address", address)?;
            "MemoryUnreadable"
        }
        Error::CloneVanished { pid, clone } => {
            d.set_item("pid", pid)?;
            d.set_item("clone_pid", clone)?;
            "CloneVanished"
        }
        Error::CloneFailed { pid, .. } => {
            d.set_item("pid", pid)?;
            "CloneFailed"
        }
        Error::Output { source, .. } => {
            d.set_item("errno", errno(source))?;
            "OutputError"
        }
        Error::OutputExists { path } => {
            d.set_item("path", path.to_string_lossy())?;
            "OutputExists"
        }
        Error::Engine { .. } | Error::Internal(_) => "EngineError",
        Error::Ptrace {
            pid, tid, source, ..
        } => {
            d.set_item("pid", pid)?;
            d.set_item("tid", tid)?;
            d.set_item("errno", errno(source))?;
            "Error"
        }
        Error::Io { pid, path, source } => {
            d.set_item("pid", pid)?;
            d.set_item("path", path.to_string_lossy())?;
            d.set_item("errno", errno(source))?;
            "Error"
        }
        Error::Parse { pid, path, .. } => {
            d.set_item("pid", pid)?;
            d.set_item("path", path.to_string_lossy())?;
            "Error"
        }
        Error::Remote { pid, source, .. } => {
            d.set_item("pid", pid)?;
            d.set_item("errno", errno(source))?;
            "Error"
        }
        _ => "Error",
    })
}
