//! [`HeldClone`]: a VA clone as the engine keeps it for a caller, from its adoption until it
//! is freed. Dropping it frees the clone: kill, collect its exit, reap its zombie in the
//! target — and when the target cannot be stopped right then (a debugger holds it), the
//! reap is retried ([`retry_pending`]) until it works or the target exits.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use pss_sys::pidfd;
use pss_trace::tracer::{self, Role};
use pss_types::records::{CopiedRange, MemoryHole};

use super::ledger;
use super::reap::{self, Reaped, Zombie};
use super::trampoline::Trampoline;

/// A clone the engine traces (with `PTRACE_O_EXITKILL`) on its keeper thread.
pub(crate) struct HeldClone {
    /// What reaping it takes: the target and the clone, with their start times.
    pub zombie: Zombie,
    /// A pidfd of the target: tells whether it exited (then nobody need reap in it).
    pub target_pidfd: Option<OwnedFd>,
    /// A pidfd of the clone.
    pub pidfd: OwnedFd,
    /// The syscall instruction later injections into the clone use (it has it too).
    pub site: u64,
    /// Whether the injected thread ran under a seccomp filter (so does the clone).
    pub seccomp: bool,
    /// The trampoline the clone was made from, mapped in it until its adoption ends.
    pub trampoline: Option<Trampoline>,
    /// Ranges copied from the stopped target during the pause.
    pub copies: Vec<CopiedRange>,
    /// Ranges the clone lacks.
    pub holes: Vec<MemoryHole>,
    /// Its file in the ledger, removed once it is reaped.
    pub ledger: Option<ledger::Entry>,
}

impl std::fmt::Debug for HeldClone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldClone")
            .field("zombie", &self.zombie)
            .finish()
    }
}

/// Zombies whose reap must be tried again, with their ledger files.
static PENDING: Mutex<Vec<(Zombie, Option<ledger::Entry>)>> = Mutex::new(Vec::new());

impl Drop for HeldClone {
    fn drop(&mut self) {
        let _ = pidfd::kill(self.pidfd.as_fd());
        let target_exited = self
            .target_pidfd
            .as_ref()
            .is_some_and(|fd| pidfd::has_exited(fd.as_fd()));
        let zombie = self.zombie.clone();
        let reaped = tracer::run_on(Role::Keeper, move || reap::free(zombie, target_exited))
            .unwrap_or(Reaped::Later);
        let entry = self.ledger.take();
        match reaped {
            Reaped::Gone => {
                if let Some(e) = entry {
                    e.done();
                }
            }
            Reaped::Later => lock_pending().push((self.zombie.clone(), entry)),
            // Not retried: nothing this engine can do (its ledger file stays, for a
            // `pss cleanup` with the right privileges).
            Reaped::Never(_) => {}
        }
    }
}

fn lock_pending() -> std::sync::MutexGuard<'static, Vec<(Zombie, Option<ledger::Entry>)>> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Tries once more to reap every zombie a free could not; returns how many are left.
/// One that can never be reaped by this engine is dropped from the list (its ledger file
/// stays).
pub(crate) fn retry_pending() -> usize {
    let pending = std::mem::take(&mut *lock_pending());
    let mut left = Vec::new();
    for (z, entry) in pending {
        let try_z = z.clone();
        match tracer::run_on(Role::Keeper, move || try_z.reap()).unwrap_or(Reaped::Later) {
            Reaped::Gone => {
                if let Some(e) = entry {
                    e.done();
                }
            }
            Reaped::Later => left.push((z, entry)),
            Reaped::Never(_) => {}
        }
    }
    let mut slot = lock_pending();
    slot.extend(left);
    slot.len()
}

/// How many zombies wait for a retry.
pub(crate) fn pending() -> usize {
    lock_pending().len()
}
