//! A clone's end: killed, its exit collected by its tracer, and its zombie — the target's
//! child — reaped in the target by an injected `wait4` (with every thread of the target
//! stopped first when one of them waits for clones with `__WALL`). What an attempt achieved
//! is a [`Reaped`]; the ledger and the engine's retries act on it.
//!
//! Everything here runs on the tracer thread that traces the clone.

use std::time::{Duration, Instant};

use pss_sys::procfs;
use pss_trace::inject::{self, Injection};
use pss_trace::ptrace::{self, WaitStatus};
use pss_trace::statedir::TargetLock;
use pss_trace::{failpoint, tracer};

use super::{one_thread, stop};

/// How long the second pause at free time may wait for a thread to stop.
const REAP_STOP_DEADLINE: Duration = Duration::from_millis(500);

/// Kills a clone that could not be handed out and collects its exit (tracer side only).
pub(super) fn discard(clone: i32) {
    // The clone is our tracee and not yet reaped, so its pid cannot have been reused.
    if let Ok(fd) = pss_sys::pidfd::open(clone) {
        let _ = pss_sys::pidfd::kill(std::os::fd::AsFd::as_fd(&fd));
    }
    wait_exit(clone, Instant::now() + Duration::from_secs(2));
}

/// A clone, killed or about to be, seen as the zombie it leaves in its target: the target
/// must reap it (it is the target's child), so the engine makes it do so by an injected
/// `wait4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zombie {
    /// The target pid.
    pub target: i32,
    /// The target's start time (clock ticks after boot): tells a reused pid.
    pub target_start: u64,
    /// The clone's pid in our namespace.
    pub clone: i32,
    /// The clone's pid in the target's namespace.
    pub clone_in_target: i32,
    /// The clone's start time: tells a reused pid.
    pub clone_start: u64,
}

impl Zombie {
    /// Whether nothing is left to reap: the target is gone, or the clone's pid no longer
    /// names a child of it that started when the clone did.
    pub fn gone(&self) -> bool {
        let stat = |pid: i32| procfs::stat_at(&format!("/proc/{pid}/stat"));
        let target_alive = procfs::process_alive(self.target, Some(self.target_start));
        !target_alive
            || !stat(self.clone)
                .is_some_and(|s| s.ppid == self.target && s.starttime == self.clone_start)
    }

    /// Kills the clone if it is still alive (only a stray clone is: one whose engine died
    /// before `EXITKILL` was set, without a trampoline).
    pub fn kill_if_alive(&self) {
        let Ok(fd) = pss_sys::pidfd::open(self.clone) else {
            return;
        };
        let st = procfs::stat_at(&format!("/proc/{}/stat", self.clone));
        if st.is_some_and(|s| s.starttime == self.clone_start && s.state != b'Z') {
            let _ = pss_sys::pidfd::kill(std::os::fd::AsFd::as_fd(&fd));
            let deadline = Instant::now() + Duration::from_secs(2);
            while !self.is_zombie() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn is_zombie(&self) -> bool {
        procfs::stat_at(&format!("/proc/{}/stat", self.clone)).map_or(true, |s| s.state == b'Z')
    }

    /// One attempt at reaping (on the tracer thread): one thread of the target runs
    /// `wait4(clone, NULL, WNOHANG | __WALL)` in a brief second pause.
    pub fn reap(&self) -> Reaped {
        if self.gone() {
            return Reaped::Gone;
        }
        if let Some(why) = one_thread::never_injectable(self.target) {
            return Reaped::Never(why);
        }
        let _ = one_thread::with_one_thread(self.target, REAP_STOP_DEADLINE, |inj, _| {
            self.inject_wait4(inj)
        });
        self.outcome()
    }

    /// Runs the `wait4` that reaps the clone in the thread `inj` holds.
    fn inject_wait4(&self, inj: &mut Injection) -> std::io::Result<inject::Outcome> {
        let options = (libc::WNOHANG | libc::__WALL) as u64;
        let pid = self.clone_in_target as u64;
        inj.failpoints("reap");
        inj.syscall(
            libc::SYS_wait4 as u64,
            [pid, 0, options, 0, 0, 0],
            Instant::now() + Duration::from_secs(1),
        )
    }

    /// What an attempt achieved (whatever stood in its way is taken to pass: a lasting
    /// obstacle is found before the attempt, [`one_thread::never_injectable`]).
    fn outcome(&self) -> Reaped {
        if self.gone() {
            Reaped::Gone
        } else {
            Reaped::Later
        }
    }

    /// Collects the killed clone's exit and reaps its zombie with every thread of the
    /// target stopped, so that none of them can collect it first: for a target with a
    /// thread waiting for any child with `__WALL` or `__WCLONE` (a reaper such as an init
    /// or a supervisor), which would otherwise get our clone's pid. `None` if the target
    /// could not be stopped (the exit is then not collected yet).
    fn collect_and_reap_hidden(&self) -> Option<Reaped> {
        let key = pss_sys::pidfd::identity(self.target);
        let deadline = Instant::now() + REAP_STOP_DEADLINE;
        let _turn = TargetLock::acquire(key, deadline).ok()?;
        let run = stop::with_all_stopped(self.target, REAP_STOP_DEADLINE, |tids| {
            // Only now does the zombie become the target's to see (a zombie tracee is its
            // tracer's alone until collected).
            wait_exit(self.clone, Instant::now() + Duration::from_secs(5));
            tracer::clone_released();
            failpoint::hit("free:killed");
            one_thread::with_stopped_thread(self.target, tids, |inj, _| self.inject_wait4(inj))
        });
        run.ok().map(|_| self.outcome())
    }
}

/// What an attempt at reaping a clone's zombie in its target achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaped {
    /// Nothing is left to reap.
    Gone,
    /// The target could not be stopped now (another capture or tracer, a thread in
    /// uninterruptible sleep): try again later.
    Later,
    /// It cannot be done by this engine (every usable thread runs under a seccomp filter
    /// it may not suspend): the zombie stays, recorded in the ledger, until the target
    /// exits or a `pss cleanup` with the right privileges reaps it.
    Never(String),
}

/// Whether a thread of `pid` is blocked waiting for any child with `__WALL` or `__WCLONE`
/// (`wait4` or `waitid`): it would collect a clone's zombie before our `wait4` does.
pub fn waits_for_clones(pid: i32) -> bool {
    let wants_clones = |options: u64| options & (libc::__WALL | libc::__WCLONE) as u64 != 0;
    let Ok(tids) = procfs::list_numeric(pid, &format!("/proc/{pid}/task")) else {
        return false;
    };
    tids.into_iter().any(
        |tid| match procfs::syscall::read(pid, tid).and_then(|s| s.call) {
            Some((nr, a)) if nr == libc::SYS_wait4 => wants_clones(a[2]),
            Some((nr, a)) if nr == libc::SYS_waitid => wants_clones(a[3]),
            _ => false,
        },
    )
}

/// Collects the exit of a clone killed through its pidfd (on the tracer thread that traces
/// it), then makes one attempt at reaping its zombie in the target — with every thread of
/// the target stopped first if one of them waits for clones ([`waits_for_clones`]).
pub fn free(zombie: Zombie, target_exited: bool) -> Reaped {
    if !target_exited && waits_for_clones(zombie.target) {
        if let Some(reaped) = zombie.collect_and_reap_hidden() {
            return reaped;
        }
    }
    wait_exit(zombie.clone, Instant::now() + Duration::from_secs(5));
    tracer::clone_released();
    failpoint::hit("free:killed");
    if target_exited {
        Reaped::Gone
    } else {
        zombie.reap()
    }
}

/// Waits (until `deadline`) for the tracee `pid` to report its exit, collecting it.
fn wait_exit(pid: i32, deadline: Instant) {
    while let Ok(status) = ptrace::wait_report(pid, false, deadline) {
        if matches!(status, WaitStatus::Exited(_) | WaitStatus::Signaled(_)) {
            return;
        }
    }
}
