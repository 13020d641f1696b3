//! Starting a program that is nobody's child in the calling process, cheaply whatever the
//! caller's size: how the engine process is started.
//!
//! A `fork()` copies the caller's page tables (about 20 ms per GiB) and, in a threaded
//! caller, leaves a child that may only make async-signal-safe calls. Instead, as glibc's
//! `posix_spawn` does, the children share the caller's memory (`CLONE_VM | CLONE_VFORK`) and
//! run on stacks of their own until they `execve`:
//!
//! 1. The calling thread makes an *intermediate* child with exit signal 0: no `SIGCHLD`
//!    reaches the caller, and `waitpid(-1)` without `__WALL` never reports it, so an
//!    application that reaps its children never sees it.
//! 2. The intermediate makes the *program's* child, which starts a new session, puts the
//!    socket at fd 3, `/dev/null` at 0–2, closes everything else and `execve`s.
//! 3. The intermediate exits once the program runs (or failed to); the program is
//!    re-parented to init (or the nearest subreaper) and is no child of the caller. The
//!    caller reaps the intermediate by pid (tolerating `ECHILD`, should an application's
//!    `__WALL` reaper have taken it).
//!
//! Every signal is blocked in the calling thread across the whole sequence, so no handler
//! of the caller ever runs on the children's stacks; the program unblocks what it needs.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// The fd number the socket has in the started program.
pub const CHILD_FD: i32 = 3;

/// Size of each child's stack.
const STACK: usize = 256 << 10;

/// What the children read, prepared before the first clone (they allocate nothing).
struct Plan {
    exe: CString,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    sock: i32,
    stack2_top: *mut libc::c_void,
    /// Set by the program's child when `execve` failed (its errno); by the intermediate
    /// when it could not make that child.
    failed: AtomicI32,
}

/// Starts `exe` with `args` and the caller's environment, as a process that is not our
/// child, with `sock` as its fd 3.
pub fn spawn_detached(exe: &CStr, args: &[CString], sock: BorrowedFd<'_>) -> io::Result<()> {
    let mut argv: Vec<*const libc::c_char> = vec![exe.as_ptr()];
    argv.extend(args.iter().map(|a| a.as_ptr()));
    argv.push(std::ptr::null());
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let stacks = Stacks::new()?;
    let mut plan = Plan {
        exe: exe.to_owned(),
        argv,
        envp,
        sock: sock.as_raw_fd(),
        stack2_top: stacks.top(1),
        failed: AtomicI32::new(0),
    };
    let plan_ptr: *mut Plan = &mut plan;
    let blocked = BlockAll::new();
    // SAFETY: a vfork-style clone: the child shares our memory and runs `intermediate` on
    // a stack of its own (mapped above, unused by anyone else) until it exits, while this
    // thread is suspended (CLONE_VFORK); `plan` outlives it. Exit signal 0: no SIGCHLD.
    let pid = unsafe {
        libc::clone(
            intermediate,
            stacks.top(0),
            libc::CLONE_VM | libc::CLONE_VFORK,
            plan_ptr.cast(),
        )
    };
    let err = io::Error::last_os_error();
    drop(blocked);
    if pid < 0 {
        return Err(err);
    }
    reap(pid);
    drop(stacks);
    match plan.failed.load(Ordering::SeqCst) {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// The intermediate child: makes the program's child and exits once it runs.
extern "C" fn intermediate(arg: *mut libc::c_void) -> libc::c_int {
    let plan = arg.cast::<Plan>();
    // SAFETY: `plan` points at the caller's Plan, alive while the caller is suspended; the
    // second clone is vfork-style like the first (its own stack, this child suspended).
    unsafe {
        let pid = libc::clone(
            program,
            (*plan).stack2_top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            arg,
        );
        if pid < 0 {
            (*plan).failed.store(errno(), Ordering::SeqCst);
        }
        libc::_exit(0)
    }
}

/// The program's child: new session, fds in place, `execve`.
extern "C" fn program(arg: *mut libc::c_void) -> libc::c_int {
    let plan = arg.cast::<Plan>();
    // SAFETY: raw system calls on this child's own fd table and session; `plan` as above.
    unsafe {
        libc::setsid();
        let sock = (*plan).sock;
        if sock == CHILD_FD {
            libc::fcntl(sock, libc::F_SETFD, 0);
        } else if libc::dup2(sock, CHILD_FD) < 0 {
            fail(plan);
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..CHILD_FD {
            if null != fd {
                libc::dup2(null, fd);
            }
        }
        libc::syscall(libc::SYS_close_range, CHILD_FD as u32 + 1, u32::MAX, 0u32);
        libc::execve(
            (*plan).exe.as_ptr(),
            (*plan).argv.as_ptr(),
            (*plan).envp.as_ptr(),
        );
        fail(plan);
    }
}

/// Records the errno for the caller and leaves the child.
///
/// # Safety
/// `plan` must point at the caller's live `Plan`.
unsafe fn fail(plan: *const Plan) -> ! {
    (*plan).failed.store(errno(), Ordering::SeqCst);
    libc::_exit(127)
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Reaps the intermediate child, which has exited by the time its vfork returns. `ECHILD`
/// (an application's `__WALL` reaper took it) is fine.
fn reap(pid: i32) {
    let mut status = 0;
    loop {
        // SAFETY: waiting on the child we just made, by pid; `status` is a live int.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Two child stacks in one anonymous mapping, with a guard page below each.
struct Stacks {
    base: *mut libc::c_void,
}

impl Stacks {
    fn new() -> io::Result<Stacks> {
        // SAFETY: a fresh private anonymous mapping, owned by this value.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * STACK,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        for i in 0..2 {
            // SAFETY: the lowest page of each stack, inside our mapping.
            unsafe {
                libc::mprotect(base.cast::<u8>().add(i * STACK).cast(), 4096, 0);
            }
        }
        Ok(Stacks { base })
    }

    /// The top (highest address, 16-byte aligned) of stack `i`.
    fn top(&self, i: usize) -> *mut libc::c_void {
        // SAFETY: the end of stack `i`, inside (one past) our mapping.
        unsafe { self.base.cast::<u8>().add((i + 1) * STACK - 64).cast() }
    }
}

impl Drop for Stacks {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer used (the children have exec'd or exited).
        unsafe { libc::munmap(self.base, 2 * STACK) };
    }
}

/// Every signal blocked on the calling thread until dropped.
struct BlockAll {
    old: libc::sigset_t,
}

impl BlockAll {
    fn new() -> BlockAll {
        // SAFETY: sigset_t is plain data; only this thread's mask changes.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            BlockAll { old }
        }
    }
}

impl Drop for BlockAll {
    fn drop(&mut self) {
        // SAFETY: restoring this thread's mask saved by `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}
