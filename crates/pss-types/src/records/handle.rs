use std::ffi::OsString;
use std::time::{Duration, SystemTime};

use crate::flags::{HandleFlags, ObjectType};

/// `PSS_HANDLE_ENTRY`: one file descriptor of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleEntry {
    /// `Handle`: the fd number in the target.
    pub handle: i32,
    /// `Flags`: which parts below are valid.
    pub flags: HandleFlags,
    /// `ObjectType`: the Windows object kind, `Unknown` for Linux-only kinds.
    pub object_type: ObjectType,
    /// `CaptureTime`: when this fd was read.
    pub capture_time: SystemTime,
    /// `Attributes`: `OBJ_INHERIT` (0x2) when the fd is not close-on-exec.
    pub attributes: u32,
    /// `GrantedAccess`: the open mode as Windows file rights (see `docs/mapping.md`).
    pub granted_access: u32,
    /// `HandleCount`: not exposed by Linux, 0.
    pub handle_count: u32,
    /// `PointerCount`: not exposed by Linux, 0.
    pub pointer_count: u32,
    /// `PagedPoolCharge`: no Linux counterpart, 0.
    pub paged_pool_charge: u32,
    /// `NonPagedPoolCharge`: no Linux counterpart, 0.
    pub non_paged_pool_charge: u32,
    /// `CreationTime`: Linux records none for an open file, `None`.
    pub creation_time: Option<SystemTime>,
    /// `TypeName`: the Linux kind of the fd.
    pub type_name: FdKind,
    /// `ObjectName`: what `/proc/PID/fd/N` links to, with `HANDLE_NAME_INFORMATION`.
    pub object_name: Option<OsString>,
    /// `TypeSpecificInformation`, for the kinds with a Windows counterpart.
    pub type_specific: Option<TypeSpecific>,
    /// Linux facts with no Windows field.
    pub linux: HandleLinux,
}

/// The Linux kind of a file descriptor: `TypeName` of a handle entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FdKind {
    /// A regular file.
    File,
    /// A directory (or an `O_PATH` fd on one).
    Directory,
    /// A character or block device.
    Device,
    /// An anonymous pipe.
    Pipe,
    /// A named pipe (FIFO).
    Fifo,
    /// A socket.
    Socket,
    /// An eventfd.
    EventFd,
    /// An epoll instance.
    Epoll,
    /// A timerfd.
    TimerFd,
    /// A signalfd.
    SignalFd,
    /// An inotify instance.
    Inotify,
    /// A fanotify instance.
    Fanotify,
    /// A pidfd.
    PidFd,
    /// A memfd.
    MemFd,
    /// A userfaultfd.
    Userfaultfd,
    /// An io_uring instance.
    IoUring,
    /// A file of a tmpfs shared-memory mount (`/dev/shm`).
    SharedMemory,
    /// Another anonymous inode (`perf_event`, `bpf-map`, …).
    AnonInode,
    /// Anything else.
    Other,
}

impl FdKind {
    /// The `TypeName` string.
    pub fn name(self) -> &'static str {
        match self {
            FdKind::File => "File",
            FdKind::Directory => "Directory",
            FdKind::Device => "Device",
            FdKind::Pipe => "Pipe",
            FdKind::Fifo => "Fifo",
            FdKind::Socket => "Socket",
            FdKind::EventFd => "EventFd",
            FdKind::Epoll => "Epoll",
            FdKind::TimerFd => "TimerFd",
            FdKind::SignalFd => "SignalFd",
            FdKind::Inotify => "Inotify",
            FdKind::Fanotify => "Fanotify",
            FdKind::PidFd => "PidFd",
            FdKind::MemFd => "MemFd",
            FdKind::Userfaultfd => "Userfaultfd",
            FdKind::IoUring => "IoUring",
            FdKind::SharedMemory => "SharedMemory",
            FdKind::AnonInode => "AnonInode",
            FdKind::Other => "Other",
        }
    }
}

/// The union `TypeSpecificInformation`, in the arm chosen by the object type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeSpecific {
    /// A process pidfd: facts about the process it refers to.
    Process {
        /// `ExitStatus`: 259 while it runs; its exit code once it is a zombie; 0 once reaped.
        exit_status: u32,
        /// `PebBaseAddress`: its argument block.
        peb_base_address: u64,
        /// `AffinityMask`.
        affinity_mask: u64,
        /// `BasePriority`.
        base_priority: i32,
        /// `ProcessId` (0 once reaped).
        process_id: u32,
        /// `ParentProcessId`.
        parent_process_id: u32,
        /// `Flags` (`PSS_PROCESS_FLAGS` bits).
        flags: u32,
    },
    /// A thread pidfd.
    Thread {
        /// `ExitStatus`.
        exit_status: u32,
        /// `TebBaseAddress`: the TLS base when the thread belongs to the captured (and
        /// stopped) process, else 0.
        teb_base_address: u64,
        /// `ProcessId`: the thread group.
        process_id: u32,
        /// `ThreadId`.
        thread_id: u32,
        /// `AffinityMask`.
        affinity_mask: u64,
        /// `Priority`.
        priority: i32,
        /// `BasePriority`.
        base_priority: i32,
        /// `Win32StartAddress`: not recorded by Linux, 0.
        win32_start_address: u64,
    },
    /// An eventfd without `EFD_SEMAPHORE`.
    Event {
        /// `ManualReset`: false — a read resets the counter (auto-reset).
        manual_reset: bool,
        /// `Signaled`: the counter is non-zero.
        signaled: bool,
    },
    /// A memfd or shared-memory file.
    Section {
        /// `BaseAddress`: 0 (Linux sections are not based).
        base_address: u64,
        /// `AllocationAttributes`: `SEC_COMMIT` (0x8000000).
        allocation_attributes: u32,
        /// `MaximumSize`: the file size.
        maximum_size: i64,
    },
    /// An eventfd with `EFD_SEMAPHORE`.
    Semaphore {
        /// `CurrentCount`: the counter, clamped to `i32::MAX`.
        current_count: i32,
        /// `MaximumCount`: `i32::MAX` (the kernel's limit is 2^64 − 2).
        maximum_count: i32,
    },
}

/// The Linux-only part of a [`HandleEntry`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandleLinux {
    /// The open flags (`O_*`), from `fdinfo`.
    pub open_flags: u32,
    /// The file position (live: it belongs to the shared open file description).
    pub pos: u64,
    /// The mount id.
    pub mnt_id: u64,
    /// The inode number.
    pub inode: u64,
    /// `st_mode` of the object, when it could be stat'ed.
    pub mode: u32,
    /// `st_size` of the object, when it could be stat'ed.
    pub size: u64,
    /// Per-kind details (timers, signal masks, watches, …).
    pub detail: Option<FdDetail>,
}

/// Type-specific facts of fd kinds, including those with no Windows counterpart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdDetail {
    /// eventfd counter and mode.
    EventFd {
        /// The counter.
        count: u64,
        /// `EFD_SEMAPHORE`.
        semaphore: bool,
    },
    /// The process a pidfd refers to.
    PidFd {
        /// Its pid, −1 once reaped.
        pid: i64,
        /// `PIDFD_THREAD`: refers to one thread.
        thread: bool,
    },
    /// timerfd settings.
    TimerFd {
        /// The clock (`CLOCK_*`).
        clockid: i64,
        /// Expirations not yet read.
        ticks: u64,
        /// Time to the next expiry.
        it_value: Duration,
        /// The period.
        it_interval: Duration,
    },
    /// signalfd mask (bit n−1 is signal n).
    SignalFd {
        /// The mask.
        sigmask: u64,
    },
    /// inotify watches.
    Inotify {
        /// How many watches are registered.
        watches: u32,
    },
    /// epoll interest list.
    Epoll {
        /// (fd, event mask) pairs.
        targets: Vec<(i32, u32)>,
    },
}
