//! Sampling stacks from Python (`pss.sample_stacks`): rounds of `pss stack` aggregated into
//! a profile ([`pss_profile`]), kept native so that it can be written as collapsed stacks
//! or pprof without going through Python objects.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::to_py;

/// A profile of sampled stacks.
#[pyclass(module = "pss._pss", frozen)]
pub struct NativeProfile {
    profile: pss_profile::Profile,
}

#[pymethods]
impl NativeProfile {
    /// The JSON document of `pss stack --samples N --json`.
    fn json(&self) -> String {
        serde_json::to_string(&pss_json::profile(&self.profile)).unwrap_or_default()
    }

    /// Collapsed stacks (`thread;outer;…;inner count` lines).
    fn folded(&self) -> String {
        pss_profile::folded::lines(&self.profile)
            .into_iter()
            .map(|(line, count)| format!("{line} {count}\n"))
            .collect()
    }

    /// A gzipped pprof `profile.proto`.
    fn pprof<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &pss_profile::pprof::encode(&self.profile))
    }
}

/// Samples the stacks of process `pid`: `samples` rounds `interval` seconds apart, each
/// reading the threads one at a time (`consistent`: all stopped together). A
/// `KeyboardInterrupt` (or another signal handler's exception) ends sampling and is raised.
#[pyfunction]
#[pyo3(signature = (pid, samples, interval, debug_info=true, consistent=false, timeout=2.0))]
pub fn sample_stacks(
    py: Python<'_>,
    pid: i32,
    samples: u32,
    interval: f64,
    debug_info: bool,
    consistent: bool,
    timeout: f64,
) -> PyResult<NativeProfile> {
    let seconds = |v: f64, what: &str, zero_ok: bool| {
        Duration::try_from_secs_f64(v)
            .ok()
            .filter(|d| zero_ok || !d.is_zero())
            .ok_or_else(|| PyValueError::new_err(format!("{what} must be positive, not {v}")))
    };
    if samples == 0 {
        return Err(PyValueError::new_err("samples must be at least 1"));
    }
    let how = pss_profile::Sampling {
        samples,
        interval: seconds(interval, "interval", true)?,
        live: pss_stack::LiveCapture {
            consistent,
            timeout: seconds(timeout, "timeout", false)?,
            ..pss_stack::LiveCapture::default()
        },
    };
    let mut raised = None;
    let profile = py.detach(|| {
        // Made here: a walker's symbolizers stay on the thread that made them.
        let mut walker = match debug_info {
            true => pss_stack::Walker::new(),
            false => pss_stack::Walker::symbols_only(),
        };
        pss_profile::sample(pid, &how, &mut walker, |_| {
            match Python::attach(|py| py.check_signals()) {
                Ok(()) => true,
                Err(e) => {
                    raised = Some(e);
                    false
                }
            }
        })
    });
    if let Some(e) = raised {
        return Err(e);
    }
    profile
        .map(|profile| NativeProfile { profile })
        .map_err(to_py)
}
