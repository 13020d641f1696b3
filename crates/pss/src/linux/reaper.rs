//! The reaper: a small detached helper process that cleans up after a capturing process that
//! died (SIGKILL, crash) while it held VA clones.
//!
//! The kernel kills such clones itself (`PTRACE_O_EXITKILL`), but each leaves a zombie in its
//! target, whose child it is: only the target can reap it, so something must inject a
//! `wait4` into the target once the capturer is gone. The reaper does that. It is started
//! with the first VA clone: `fork()` twice (so that it is nobody's child in the capturer and
//! never shows up in its `wait()`), `setsid()` (out of the capturer's terminal signals), every
//! fd but one pipe closed. The capturer tells it about each clone made and freed through
//! the pipe; when the pipe reaches end-of-file (the capturer is gone), it reaps the zombie of
//! every clone still registered, then exits. A capturer that frees its clones itself leaves
//! it nothing to do.
//!
//! It runs after `fork()` in a copy of a possibly multi-threaded process: it uses only
//! system calls and the allocator (glibc's `fork` leaves the allocator usable in the child),
//! never a lock another thread might have held.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the reaper does for an orphaned clone: `(target, clone_in_target)`.
pub type ReapFn = fn(i32, i32);

static PIPE: Mutex<Option<OwnedFd>> = Mutex::new(None);

const ADD: i32 = 1;
const DEL: i32 = 2;

/// Tells the reaper (starting it if needed) that `clone` (`clone_in_target` inside `target`)
/// exists. Best effort: without a reaper a killed capturer leaves the zombie.
pub fn register(target: i32, clone: i32, clone_in_target: i32, reap: ReapFn) {
    let mut slot = PIPE.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_none() {
        *slot = start(reap);
    }
    if let Some(fd) = slot.as_ref() {
        send(fd, [ADD, target, clone, clone_in_target]);
    }
}

/// Tells the reaper that `clone` was freed.
pub fn unregister(clone: i32) {
    let slot = PIPE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(fd) = slot.as_ref() {
        send(fd, [DEL, 0, clone, 0]);
    }
}

fn send(fd: &OwnedFd, rec: [i32; 4]) {
    let mut bytes = [0u8; 16];
    for (i, v) in rec.iter().enumerate() {
        bytes[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
    }
    // 16 bytes is below PIPE_BUF: the write is atomic.
    let _ = rustix::io::write(fd, &bytes);
}

/// Starts the reaper; returns the write end of its pipe.
fn start(reap: ReapFn) -> Option<OwnedFd> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ok()?;
    // SAFETY: fork() in a possibly multi-threaded process; the child only runs `child`,
    // which uses system calls and the allocator (see the module docs).
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => None,
        0 => {
            // First child: fork the reaper and leave at once, so that it is re-parented.
            // SAFETY: as above.
            if unsafe { libc::fork() } == 0 {
                drop(w);
                child(r, reap);
            }
            // SAFETY: leaving the intermediate child without running any exit handler.
            unsafe { libc::_exit(0) }
        }
        pid => {
            drop(r);
            let mut status = 0;
            // SAFETY: reaping the intermediate child we just made; status is a live int.
            unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
            Some(w)
        }
    }
}

fn child(r: OwnedFd, reap: ReapFn) -> ! {
    let keep = r.as_raw_fd() as u32;
    // SAFETY: plain system calls on our own process: a new session, a name, and closing every
    // fd inherited from the capturer but the pipe.
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_NAME, c"pss-reaper".as_ptr(), 0, 0, 0);
        if keep > 0 {
            libc::syscall(libc::SYS_close_range, 0u32, keep - 1, 0u32);
        }
        libc::syscall(libc::SYS_close_range, keep + 1, u32::MAX, 0u32);
    }
    let mut live: Vec<[i32; 4]> = Vec::new();
    // SAFETY: the fd is ours alone from here on.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(r)) };
    let mut rec = [0u8; 16];
    while pipe.read_exact(&mut rec).is_ok() {
        let v: [i32; 4] = std::array::from_fn(|i| {
            i32::from_ne_bytes(rec[i * 4..i * 4 + 4].try_into().expect("4 bytes"))
        });
        match v[0] {
            ADD => live.push(v),
            DEL => live.retain(|e| e[2] != v[2]),
            _ => {}
        }
    }
    // The capturer is gone; its clones were killed by EXITKILL. Reap their zombies.
    for [_, target, clone, clone_in_target] in live {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_zombie_or_gone(clone) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        reap(target, clone_in_target);
    }
    // SAFETY: leaving without running the capturer's exit handlers.
    unsafe { libc::_exit(0) }
}

fn is_zombie_or_gone(pid: i32) -> bool {
    super::procfs::stat_at(&format!("/proc/{pid}/stat"))
        .map_or(true, |s| matches!(s.state, b'Z' | b'X'))
}
