//! The dedicated tracer thread.
//!
//! ptrace binds a tracee to the thread that attached it, so every ptrace and wait call of the
//! library runs on a long-lived OS thread: `pss-tracer` for captures without a clone,
//! `pss-keeper` for captures with one and for the clones themselves ([`Role`]). Other
//! threads hand them closures through [`run_on`] and block until the result comes
//! back; a global lock makes the two run one job at a time.
//!
//! A job that cannot release a tracee (a thread seized but never stopped, so it cannot be
//! detached) calls [`release_later`]. With no VA clone alive, the tracer thread then retires:
//! the kernel detaches every tracee of an exiting tracer (`exit_ptrace`), stopped or not, and
//! the next [`run_on`] starts a fresh thread. While VA clones are kept (they carry
//! `PTRACE_O_EXITKILL`, so a retiring tracer would kill them) the tracees are remembered
//! instead, and the idle tracer polls them every millisecond and lets each go as soon as it
//! stops or exits.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::ptrace::{self, Tid, WaitStatus};
use pss_sys::procfs;
use pss_types::error::{Error, Result};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Which tracer thread a job runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Captures without a clone. Retires whenever a job cannot release a tracee, so that
    /// the kernel releases it at once.
    Capture,
    /// Captures that make a VA clone, and everything done to clones afterwards: the clones
    /// are its tracees (with `EXITKILL`), so while any is kept it never retires and lets
    /// stuck tracees go by polling instead.
    Keeper,
}

static TRACERS: [Mutex<Option<mpsc::Sender<Job>>>; 2] = [Mutex::new(None), Mutex::new(None)];
/// Held by a tracer thread while it runs a job: jobs of both roles run one at a time, as if
/// there were one tracer (two captures of one target never race for its threads).
static JOB_LOCK: Mutex<()> = Mutex::new(());

thread_local! {
    static RETIRE: Cell<bool> = const { Cell::new(false) };
    static ON_TRACER: Cell<bool> = const { Cell::new(false) };
    /// VA clones traced by this thread.
    static KEPT: Cell<usize> = const { Cell::new(0) };
    /// Tracees still to let go: seized but not yet stopped, or with an exit to collect.
    static DEFERRED: RefCell<Vec<Tid>> = const { RefCell::new(Vec::new()) };
}

/// Blocks SIGINT, SIGTERM, SIGHUP and SIGPIPE on the calling (tracer) thread for its whole
/// life, so that a handler never runs on it while a target holds injected state. (A fatal
/// process-directed signal still ends the whole process; see docs/differences.md.)
fn block_terminal_signals() {
    // SAFETY: sigset_t is plain data; the calls only touch this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Records that this (tracer) thread now keeps a VA clone traced.
pub fn keep_clone() {
    KEPT.with(|k| k.set(k.get() + 1));
}

/// Records that a kept VA clone was killed and reaped.
pub fn clone_released() {
    KEPT.with(|k| k.set(k.get().saturating_sub(1)));
}

/// Tracees this job could not let go. With no clone kept the tracer retires (the kernel
/// detaches them all); otherwise they are polled after the job until each can be released.
pub fn release_later(tids: impl IntoIterator<Item = Tid>) {
    if KEPT.with(Cell::get) == 0 {
        retire_after_job();
    } else {
        DEFERRED.with(|d| d.borrow_mut().extend(tids));
    }
}

/// A traced thread-group leader exited and its report was left queued (see
/// [`WaitStatus::LeaderExited`]).
pub fn leader_exited(tid: Tid) {
    if KEPT.with(Cell::get) == 0 {
        retire_after_job();
    } else {
        hand_back(tid);
    }
}

/// Lets go of an exited leader without retiring: collecting its report hands the zombie to
/// its real parent — unless that parent is our own process, whose own wait sees a child
/// traced by its own thread group like any other child, so the report stays queued for it.
fn hand_back(tid: Tid) {
    let ours = procfs::stat_at(&format!("/proc/{tid}/stat"))
        .is_some_and(|s| s.ppid == std::process::id() as i32);
    if !ours {
        let _ = ptrace::collect(tid);
    }
}

/// One pass over the deferred tracees: each that stopped is detached, each that exited is
/// collected. Returns whether any are left.
fn poll_deferred() -> bool {
    DEFERRED.with(|d| {
        let mut list = d.borrow_mut();
        let mut born = Vec::new();
        list.retain(|&tid| match ptrace::wait_nohang(tid, true) {
            Ok(None) => true,
            Ok(Some(WaitStatus::Stopped { sig, event })) => {
                if event == ptrace::EVENT_CLONE {
                    // Its new thread (or a clone a stuck injection made, which exits at
                    // once from the trampoline) was auto-attached: let it go at its stop.
                    born.extend(ptrace::event_msg(tid).ok().map(|t| t as Tid));
                }
                let sig = if event == 0 && sig != ptrace::SYSCALL_STOP {
                    sig
                } else {
                    0
                };
                ptrace::detach(tid, sig).is_err()
                    && procfs::stat_at(&format!("/proc/{tid}/stat")).is_some()
            }
            Ok(Some(WaitStatus::LeaderExited)) => {
                hand_back(tid);
                false
            }
            Ok(Some(_)) | Err(_) => false,
        });
        list.extend(born);
        !list.is_empty()
    })
}

/// Runs `job` on the tracer thread of `role` and returns its result.
///
/// Jobs run one at a time, in submission order per role. A panic inside the job is caught
/// on the tracer thread (after the job's guards have released the target) and reported as
/// [`Error::Internal`]. Called on a tracer thread, the job runs inline.
pub fn run_on<R, F>(role: Role, job: F) -> Result<R>
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
    submit(role, boxed)?;
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

/// Whether thread `tid` (a `TracerPid`) belongs to another pss engine process: then the
/// target is being captured, and the capture waits for it instead of failing.
pub fn is_engine(tid: i32) -> bool {
    let Some(st) = procfs::status_at(&format!("/proc/{tid}/status")) else {
        return false;
    };
    std::fs::read(format!("/proc/{}/comm", st.tgid)).is_ok_and(|c| c == b"pss-engine\n")
}

/// Asks the tracer thread to exit once the current job returns, which makes the kernel detach
/// every remaining tracee. Only meaningful on the tracer thread.
pub fn retire_after_job() {
    RETIRE.with(|r| r.set(true));
}

fn submit(role: Role, job: Job) -> Result<()> {
    let mut slot = TRACERS[role as usize]
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let job = match slot.as_ref() {
        Some(tx) => match tx.send(job) {
            Ok(()) => return Ok(()),
            Err(mpsc::SendError(job)) => job,
        },
        None => job,
    };
    let (tx, rx) = mpsc::channel::<Job>();
    let name = match role {
        Role::Capture => "pss-tracer",
        Role::Keeper => "pss-keeper",
    };
    thread::Builder::new()
        .name(name.into())
        .spawn(move || tracer_main(role, rx))
        .map_err(|e| Error::Internal(format!("cannot start the tracer thread: {e}")))?;
    tx.send(job)
        .map_err(|_| Error::Internal("the tracer thread exited at start".into()))?;
    *slot = Some(tx);
    Ok(())
}

fn tracer_main(role: Role, rx: mpsc::Receiver<Job>) {
    ON_TRACER.with(|t| t.set(true));
    block_terminal_signals();
    let mut deferred = false;
    loop {
        let job = if deferred {
            match rx.recv_timeout(Duration::from_millis(1)) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _turn = JOB_LOCK.lock().unwrap_or_else(|p| p.into_inner());
                    deferred = poll_deferred();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        {
            let _turn = JOB_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            // A panicking job has already unwound through its guards, which released the
            // target.
            let _ = catch_unwind(AssertUnwindSafe(job));
            deferred = poll_deferred();
        }
        if RETIRE.with(Cell::get) {
            // Make the next run() start a new thread; dropping `rx` fails pending sends.
            let mut slot = TRACERS[role as usize]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *slot = None;
            let pending: Vec<Job> = rx.try_iter().collect();
            drop(slot);
            for job in pending {
                // Hand queued jobs to the next tracer thread; if that fails their callers
                // see the reply channel close and get an internal error.
                let _ = submit(role, job);
            }
            return;
        }
    }
}
