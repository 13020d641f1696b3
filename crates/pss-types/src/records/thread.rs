use std::ffi::OsString;
use std::time::{Duration, SystemTime};

use super::ThreadContext;
use crate::flags::ThreadFlags;

/// `PSS_THREAD_ENTRY`: one thread (task) of the process.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadEntry {
    /// `ExitStatus`: 259 while alive; the exit code of a terminated (zombie) thread.
    pub exit_status: u32,
    /// `TebBaseAddress`: the thread's TLS base (`fs_base` on x86_64, `tpidr_el0` on
    /// aarch64), read while the thread was stopped. 0 without a stop (self-capture).
    pub teb_base_address: u64,
    /// `ProcessId`.
    pub process_id: u32,
    /// `ThreadId`: the kernel tid.
    pub thread_id: u32,
    /// `AffinityMask`: CPUs 0–63 this thread may run on.
    pub affinity_mask: u64,
    /// `Priority`: the Windows priority level derived from the thread's nice/policy.
    pub priority: i32,
    /// `BasePriority`: same as `priority` (Linux has no dynamic boost to report).
    pub base_priority: i32,
    /// `LastSyscallFirstArgument`: first argument of the syscall the thread was in when
    /// stopped; 0 when it was running user code.
    pub last_syscall_first_argument: u64,
    /// `LastSyscallNumber`: the Linux syscall number the thread was in; 0 when none.
    pub last_syscall_number: u16,
    /// `CreateTime`.
    pub create_time: SystemTime,
    /// `ExitTime`: `None` for live threads.
    pub exit_time: Option<SystemTime>,
    /// `KernelTime`.
    pub kernel_time: Duration,
    /// `UserTime`.
    pub user_time: Duration,
    /// `Win32StartAddress`: the ELF entry point (`AT_ENTRY`) for the main thread; Linux does
    /// not record other threads' start routines, so 0 for them.
    pub win32_start_address: u64,
    /// `CaptureTime`: when this thread's registers were read.
    pub capture_time: SystemTime,
    /// `Flags`: `TERMINATED` for a zombie thread.
    pub flags: ThreadFlags,
    /// `SuspendCount`: 1 if the thread was stopped (`T`) before the capture, else 0. The
    /// capture's own brief stop is not counted.
    pub suspend_count: u16,
    /// The registers, when `THREAD_CONTEXT` was captured.
    pub context: Option<ThreadContext>,
    /// Linux facts with no Windows field.
    pub linux: ThreadLinux,
}

/// The Linux-only part of a [`ThreadEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadLinux {
    /// The thread name (`comm`), also walked by `PSS_WALK_THREAD_NAME`.
    pub name: OsString,
    /// The state letter before the capture.
    pub state: char,
    /// The syscall it was in when stopped (`orig_rax`), or `None` in user code.
    pub syscall: Option<i64>,
    /// The CPU it last ran on.
    pub processor: u32,
    /// The nice value of this thread.
    pub nice: i32,
    /// Its blocked-signal mask, read while stopped (with `THREAD_CONTEXT`).
    pub sigmask: Option<u64>,
    /// How its registers and stack were read: stopped with every other thread (the
    /// snapshot's one instant), stopped alone, or not stopped at all.
    pub read: ThreadRead,
}

/// How a thread's registers (and stack copy) were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThreadRead {
    /// Stopped together with every other thread: one instant for all (the PSS way, and
    /// what a VA clone needs). Also a thread that was not read at all (no registers asked).
    #[default]
    Together,
    /// Stopped by itself, only for its own registers and stack copy: its own instant.
    Alone,
    /// Not stopped: it was blocked in a system call the whole time its stack was copied
    /// (checked before and after). Only the instruction and stack pointers, the call's
    /// number and its arguments are known of its registers
    /// ([`ThreadContext::partial`](super::ThreadContext)); the rest read as 0.
    Blocked,
}

impl ThreadRead {
    /// Its name in the JSON document and the command's output (`together`, `alone`,
    /// `blocked`).
    pub fn name(self) -> &'static str {
        match self {
            ThreadRead::Together => "together",
            ThreadRead::Alone => "alone",
            ThreadRead::Blocked => "blocked",
        }
    }
}
