//! The dedicated tracer thread.
//!
//! ptrace binds a tracee to the thread that attached it, so every ptrace and wait call of the
//! library runs on one long-lived OS thread, `pss-tracer`. Other threads hand it closures
//! through [`run`] and block until the result comes back.
//!
//! A job that cannot release a tracee (a thread seized but never stopped, so it cannot be
//! detached) calls [`retire_after_job`]: the tracer thread then exits, and the kernel detaches
//! every tracee of an exiting tracer (`exit_ptrace`), stopped or not. The next [`run`] starts
//! a fresh tracer thread.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

type Job = Box<dyn FnOnce() + Send + 'static>;

static TRACER: Mutex<Option<mpsc::Sender<Job>>> = Mutex::new(None);

thread_local! {
    static RETIRE: Cell<bool> = const { Cell::new(false) };
    static ON_TRACER: Cell<bool> = const { Cell::new(false) };
}

/// Runs `job` on the tracer thread and returns its result.
///
/// Jobs run one at a time, in submission order. A panic inside the job is caught on the
/// tracer thread (after the job's guards have released the target) and reported as
/// [`Error::Internal`].
pub fn run<R, F>(job: F) -> Result<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    if ON_TRACER.with(Cell::get) {
        return Ok(job());
    }
    let (reply_tx, reply_rx) = mpsc::sync_channel::<(R, Option<i32>)>(1);
    let boxed: Job = Box::new(move || {
        let r = job();
        let retiring = RETIRE
            .with(Cell::get)
            .then(|| rustix::thread::gettid().as_raw_nonzero().get());
        let _ = reply_tx.send((r, retiring));
    });
    submit(boxed)?;
    let (r, retiring) = reply_rx.recv().map_err(|_| {
        Error::Internal(
            "the tracer thread panicked while running a capture job; the target was released"
                .into(),
        )
    })?;
    if let Some(tid) = retiring {
        wait_gone(tid);
    }
    Ok(r)
}

/// Waits (bounded) until the retired tracer thread `tid` has fully exited: its
/// `/proc/self/task` entry disappears only after the kernel has detached its tracees.
fn wait_gone(tid: i32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while is_own_thread(tid) && Instant::now() < deadline {
        thread::sleep(Duration::from_micros(200));
    }
}

/// Whether `tid` is a thread of the calling process (for example a tracer thread of ours).
pub fn is_own_thread(tid: i32) -> bool {
    std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
}

/// Asks the tracer thread to exit once the current job returns, which makes the kernel detach
/// every remaining tracee. Only meaningful on the tracer thread.
pub fn retire_after_job() {
    RETIRE.with(|r| r.set(true));
}

fn submit(job: Job) -> Result<()> {
    let mut slot = TRACER.lock().unwrap_or_else(|p| p.into_inner());
    let job = match slot.as_ref() {
        Some(tx) => match tx.send(job) {
            Ok(()) => return Ok(()),
            Err(mpsc::SendError(job)) => job,
        },
        None => job,
    };
    let (tx, rx) = mpsc::channel::<Job>();
    thread::Builder::new()
        .name("pss-tracer".into())
        .spawn(move || tracer_main(rx))
        .map_err(|e| Error::Internal(format!("cannot start the tracer thread: {e}")))?;
    tx.send(job)
        .map_err(|_| Error::Internal("the tracer thread exited at start".into()))?;
    *slot = Some(tx);
    Ok(())
}

fn tracer_main(rx: mpsc::Receiver<Job>) {
    ON_TRACER.with(|t| t.set(true));
    while let Ok(job) = rx.recv() {
        // A panicking job has already unwound through its guards, which released the target.
        let _ = catch_unwind(AssertUnwindSafe(job));
        if RETIRE.with(Cell::get) {
            // Make the next run() start a new thread; dropping `rx` fails pending sends.
            let mut slot = TRACER.lock().unwrap_or_else(|p| p.into_inner());
            *slot = None;
            let pending: Vec<Job> = rx.try_iter().collect();
            drop(slot);
            for job in pending {
                // Hand queued jobs to the next tracer thread; if that fails their callers
                // see the reply channel close and get an internal error.
                let _ = submit(job);
            }
            return;
        }
    }
}
