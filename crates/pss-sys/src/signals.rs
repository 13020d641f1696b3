//! Signals a write can raise ([`WriteSignalsBlocked`]): an export to a full disk or a
//! closed pipe fails with an error instead of ending the caller's process.

/// The signals a write can raise at the writing thread: `SIGXFSZ` (past `RLIMIT_FSIZE`) and
/// `SIGPIPE` (a closed pipe), whose default actions end the process.
const WRITE_SIGNALS: [i32; 2] = [libc::SIGXFSZ, libc::SIGPIPE];

/// Blocks [`WRITE_SIGNALS`] in the calling thread while it lives, so that a failed write
/// returns `EFBIG` or `EPIPE` instead of ending the caller's process; on drop it takes off
/// the thread any of them raised meanwhile (and pending only because of the block) and
/// restores the mask.
pub struct WriteSignalsBlocked {
    old: libc::sigset_t,
    pending_before: libc::sigset_t,
}

impl WriteSignalsBlocked {
    /// Blocks them.
    pub fn new() -> WriteSignalsBlocked {
        // SAFETY: sigset_t is plain data; the calls only change this thread's mask and read
        // the pending set.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in WRITE_SIGNALS {
                libc::sigaddset(&mut set, sig);
            }
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            let mut pending_before: libc::sigset_t = std::mem::zeroed();
            libc::sigpending(&mut pending_before);
            WriteSignalsBlocked {
                old,
                pending_before,
            }
        }
    }
}

impl Default for WriteSignalsBlocked {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for WriteSignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: as in `new`; `sigtimedwait` with a zero timeout only dequeues a pending
        // signal of the one kind asked for, without waiting.
        unsafe {
            let mut pending: libc::sigset_t = std::mem::zeroed();
            libc::sigpending(&mut pending);
            for sig in WRITE_SIGNALS {
                let ours = libc::sigismember(&pending, sig) == 1
                    && libc::sigismember(&self.pending_before, sig) == 0
                    && libc::sigismember(&self.old, sig) == 0;
                if ours {
                    let mut one: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut one);
                    libc::sigaddset(&mut one, sig);
                    let now = libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    };
                    libc::sigtimedwait(&one, std::ptr::null_mut(), &now);
                }
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}
