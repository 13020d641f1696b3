//! `NativeSnapshot`: a captured or loaded snapshot as the Python package holds it. Its
//! records cross to Python as the JSON documents of `docs/json.md` (`pss-json`), which
//! `pss/_records.py` turns into records; its clone's memory crosses as bytes. Every call
//! that waits (a capture, a read, a file, a dump, a stack walk) runs with the GIL released.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pss::{Error, Snapshot};
use pss_export::{self as export, ExportOptions, Format};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyMemoryView};

use crate::errors::to_py;

/// A snapshot; `free()` lets go of it (and so of its clone) before Python's garbage
/// collector would.
#[pyclass(module = "pss._pss", frozen)]
pub struct NativeSnapshot {
    inner: Mutex<Option<Snapshot>>,
}

impl NativeSnapshot {
    /// Wraps `snapshot`.
    pub fn new(snapshot: Snapshot) -> NativeSnapshot {
        NativeSnapshot {
            inner: Mutex::new(Some(snapshot)),
        }
    }

    /// A handle to the snapshot (cheap: the data is shared), unless it was freed. Calls
    /// work on their own handle, so `free()` never waits for one, and the clone goes when
    /// the last handle does.
    fn get(&self) -> PyResult<Snapshot> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| PyValueError::new_err("the snapshot was freed"))
    }
}

/// The error for reading memory from a snapshot without a clone or copies, named as
/// Python asks for them.
fn no_memory(e: Error) -> PyErr {
    match e {
        Error::NotFound { .. } => to_py(Error::NotFound {
            what: "memory (a VA clone, or auxiliary pages)",
            flag: "va_clone=True",
        }),
        e => to_py(e),
    }
}

#[pymethods]
impl NativeSnapshot {
    /// The snapshot as the JSON document of `docs/json.md`.
    fn document(&self, py: Python<'_>) -> PyResult<String> {
        let snap = self.get()?;
        py.detach(|| serde_json::to_string(&pss_json::snapshot(&snap)))
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))
    }

    /// The clone's pid, if the snapshot holds a live clone.
    fn clone_pid(&self) -> PyResult<Option<i32>> {
        Ok(self.get()?.va_clone().map(|c| c.pid()))
    }

    /// `size` bytes of the memory at `address` (the clone's, or the pause's copies), read
    /// straight into a new `bytes`.
    fn read<'py>(
        &self,
        py: Python<'py>,
        address: u64,
        size: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let snap = self.get()?;
        PyBytes::new_with(py, size, |buf| {
            py.detach(|| snap.read_exact(address, buf))
                .map_err(no_memory)
        })
    }

    /// Reads the memory at `address` (the clone's, or the pause's copies) into `buffer`, in
    /// place and with the GIL released, as much as is readable there; how many bytes.
    fn read_into(
        &self,
        py: Python<'_>,
        address: u64,
        buffer: &Bound<'_, PyByteArray>,
    ) -> PyResult<usize> {
        let snap = self.get()?;
        // A buffer export of the bytearray: while it lives, CPython refuses to resize it.
        let export = PyMemoryView::from(buffer.as_any())?;
        let (data, len) = (buffer.data() as usize, buffer.len());
        let n = py.detach(|| {
            // SAFETY: `buffer` is referenced (alive) and exported (its storage neither
            // moves nor shrinks) until after this closure, so `data..data+len` stays valid
            // without the GIL. Other Python threads may write into it meanwhile, as they
            // may during io.FileIO.readinto; the bytes are plain u8s either way.
            let buf = match len {
                0 => &mut [],
                _ => unsafe { std::slice::from_raw_parts_mut(data as *mut u8, len) },
            };
            snap.read(address, buf)
        });
        drop(export);
        n.map_err(no_memory)
    }

    /// Writes the snapshot to a file (`docs/format.md`), whole or not at all.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let snap = self.get()?;
        py.detach(|| snap.save(&path)).map_err(to_py)
    }

    /// Every thread's call chain, as the JSON document of `pss stack --json`.
    fn stacks(&self, py: Python<'_>, debug_info: bool) -> PyResult<String> {
        let snap = self.get()?;
        py.detach(|| {
            let mut walker = if debug_info {
                pss_stack::Walker::new()
            } else {
                pss_stack::Walker::symbols_only()
            };
            walker.stacks(&snap).map(|stacks| {
                serde_json::to_string(&pss_json::stacks(&snap, &stacks)).unwrap_or_default()
            })
        })
        .map_err(to_py)
    }

    /// Writes an ELF core (`format="core"`) or a minidump to `path`; a summary. A
    /// `KeyboardInterrupt` (or another signal handler's exception) during the write stops
    /// it, removes the partial file and is raised.
    #[pyo3(signature = (path, format, filter=None, full_memory=false, overwrite=false, sync=false))]
    #[allow(clippy::too_many_arguments)]
    fn write_dump<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        format: &str,
        filter: Option<&str>,
        full_memory: bool,
        overwrite: bool,
        sync: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let snap = self.get()?;
        let format = match format {
            "core" => Format::Core,
            "minidump" => Format::Minidump,
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown dump format {other:?} (core or minidump)"
                )))
            }
        };
        let filter = filter
            .map(export::DumpFilter::parse)
            .transpose()
            .map_err(to_py)?;
        let cancel = AtomicBool::new(false);
        let mut signal_error = None;
        let result = py.detach(|| {
            let mut watch = SignalWatch::new(&cancel, &mut signal_error);
            let mut progress = |_: export::Progress| watch.check();
            let mut options = ExportOptions {
                filter,
                full_memory,
                sync,
                cancel: Some(&cancel),
                progress: Some(&mut progress),
            };
            export::write_file(&snap, format, &path, overwrite, &mut options)
        });
        if let Some(e) = signal_error {
            return Err(e);
        }
        let s = result.map_err(to_py)?;
        let d = PyDict::new(py);
        d.set_item("format", s.format.name())?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("memory_bytes", s.memory_bytes)?;
        d.set_item("holes", s.holes)?;
        d.set_item("segments", s.segments)?;
        d.set_item("threads", s.threads)?;
        d.set_item("filter", s.filter.bits())?;
        d.set_item("warnings", s.warnings)?;
        Ok(d)
    }

    /// Lets go of the snapshot: its clone is killed and reaped once no call is reading it.
    /// Later calls raise `ValueError`.
    fn free(&self) {
        let taken = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(taken);
    }

    /// Whether `free()` was called.
    fn freed(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }
}

/// Runs Python's signal handlers now and then during a long call made without the GIL,
/// and cancels the call when one raises (Ctrl-C's `KeyboardInterrupt`).
struct SignalWatch<'a> {
    cancel: &'a AtomicBool,
    error: &'a mut Option<PyErr>,
    last: Instant,
}

impl<'a> SignalWatch<'a> {
    /// How often the handlers run: often enough for a prompt Ctrl-C, rarely enough that
    /// taking the GIL costs nothing.
    const EVERY: Duration = Duration::from_millis(50);

    fn new(cancel: &'a AtomicBool, error: &'a mut Option<PyErr>) -> SignalWatch<'a> {
        SignalWatch {
            cancel,
            error,
            last: Instant::now(),
        }
    }

    fn check(&mut self) {
        if self.error.is_some() || self.last.elapsed() < Self::EVERY {
            return;
        }
        self.last = Instant::now();
        if let Err(e) = Python::attach(|py| py.check_signals()) {
            *self.error = Some(e);
            self.cancel.store(true, Ordering::Relaxed);
        }
    }
}
