//! `pss._pss`, the native module under the `pss` Python package (`python/pss/`): capture
//! and load snapshots, and the flag values for the package's `IntFlag`s to be checked
//! against. The package's public API is in Python; this module is its engine room.

mod errors;
mod profile;
mod snapshot;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use pss::{CaptureFlags, CaptureOptions, ContextFlags, Snapshot, Target};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use errors::to_py;
use snapshot::NativeSnapshot;

/// Captures process `pid` (the calling process itself when it is its own pid) with the
/// `PSS_CAPTURE_*` bits `flags` and `CONTEXT_*` bits `context_flags`; `timeout` is how
/// long, in seconds, its threads together may take to stop, and `stack_bytes` how much of
/// each thread's stack the auxiliary pages copy.
#[pyfunction]
#[pyo3(signature = (pid, flags, context_flags, timeout=2.0, stack_bytes=262_144))]
fn capture(
    py: Python<'_>,
    pid: i32,
    flags: u32,
    context_flags: u32,
    timeout: f64,
    stack_bytes: usize,
) -> PyResult<NativeSnapshot> {
    let stop_timeout = Duration::try_from_secs_f64(timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| PyValueError::new_err(format!("timeout must be positive, not {timeout}")))?;
    let mut options = CaptureOptions::new(
        CaptureFlags::from_bits_retain(flags),
        ContextFlags::from_bits_retain(context_flags),
    );
    options.stop_timeout = stop_timeout;
    options.aux_stack_limit = stack_bytes;
    let target = if u32::try_from(pid).ok() == Some(std::process::id()) {
        Target::Current
    } else {
        Target::Pid(pid)
    };
    py.detach(|| Snapshot::capture_with(target, &options))
        .map(NativeSnapshot::new)
        .map_err(to_py)
}

/// Reads a snapshot file written by `save` (or `pss capture --save`).
#[pyfunction]
fn load(py: Python<'_>, path: PathBuf) -> PyResult<NativeSnapshot> {
    py.detach(|| Snapshot::load(&path))
        .map(NativeSnapshot::new)
        .map_err(to_py)
}

/// Stops this process's capture engine and waits up to `timeout` seconds for it to exit
/// (every clone it held freed); whether it did. The next capture starts a new one.
#[pyfunction]
#[pyo3(signature = (timeout=5.0))]
fn shutdown_engine(py: Python<'_>, timeout: f64) -> bool {
    let timeout = Duration::try_from_secs_f64(timeout).unwrap_or_default();
    py.detach(|| pss::shutdown_engine(timeout))
}

/// The pid of this process's capture engine, starting it if none runs.
#[pyfunction]
fn engine_pid(py: Python<'_>) -> PyResult<i32> {
    py.detach(pss::engine_pid).map_err(to_py)
}

/// `{NAME: value}` for every named flag of a bitflags type.
fn flag_table<'py, F: bitflags::Flags<Bits = u32>>(
    py: Python<'py>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for flag in F::FLAGS {
        d.set_item(flag.name(), flag.value().bits())?;
    }
    Ok(d)
}

#[pymodule]
fn _pss(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(capture, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(shutdown_engine, m)?)?;
    m.add_function(wrap_pyfunction!(engine_pid, m)?)?;
    m.add_function(wrap_pyfunction!(profile::sample_stacks, m)?)?;
    m.add_class::<NativeSnapshot>()?;
    m.add_class::<profile::NativeProfile>()?;
    m.add_class::<watch::NativeWatcher>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CAPTURE_FLAGS", flag_table::<CaptureFlags>(m.py())?)?;
    m.add("CONTEXT_FLAGS", flag_table::<ContextFlags>(m.py())?)?;
    Ok(())
}
