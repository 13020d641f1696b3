//! [`HeldClone`]: a VA clone as the engine keeps it for a caller, from its adoption until it
//! is freed. Dropping it frees the clone: kill, collect its exit, reap its zombie in the
//! target.

use std::os::fd::{AsFd, OwnedFd};

use crate::linux::pidfd;
use crate::linux::tracer::{self, Role};
use crate::records::{CopiedRange, MemoryHole};

use super::va_clone::{self, FreeRequest};

/// A clone the engine traces (with `PTRACE_O_EXITKILL`) on its keeper thread.
pub(crate) struct HeldClone {
    /// The target pid.
    pub target: i32,
    /// A pidfd of the target: tells whether it exited (then nobody need reap in it).
    pub target_pidfd: Option<OwnedFd>,
    /// The clone's pid.
    pub pid: i32,
    /// The clone's pid in the target's pid namespace.
    pub pid_in_target: i32,
    /// A pidfd of the clone.
    pub pidfd: OwnedFd,
    /// The syscall instruction later injections into the clone use (it has it too).
    pub site: u64,
    /// Whether the injected thread ran under a seccomp filter (so does the clone).
    pub seccomp: bool,
    /// The trampoline the clone was made from, mapped in it until its adoption ends.
    pub trampoline: Option<super::trampoline::Trampoline>,
    /// Ranges copied from the stopped target during the pause.
    pub copies: Vec<CopiedRange>,
    /// Ranges the clone lacks.
    pub holes: Vec<MemoryHole>,
}

impl std::fmt::Debug for HeldClone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldClone")
            .field("target", &self.target)
            .field("pid", &self.pid)
            .field("pid_in_target", &self.pid_in_target)
            .finish()
    }
}

impl Drop for HeldClone {
    fn drop(&mut self) {
        let _ = pidfd::kill(self.pidfd.as_fd());
        let req = FreeRequest {
            target: self.target,
            target_exited: self
                .target_pidfd
                .as_ref()
                .is_some_and(|fd| pidfd::has_exited(fd.as_fd())),
            clone: self.pid,
            clone_in_target: self.pid_in_target,
        };
        let _ = tracer::run_on(Role::Keeper, move || va_clone::free(req));
    }
}
