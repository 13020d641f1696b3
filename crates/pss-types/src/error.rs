//! The library's one error type: the cause, and the pid/tid/fd it concerns.

use std::io;
use std::path::PathBuf;

/// What went wrong, with the process, thread or file it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No process has this pid (or it exited before the capture began).
    #[error("no process with pid {pid}")]
    NoSuchProcess {
        /// The pid asked for.
        pid: i32,
    },
    /// The kernel refused access (ptrace permission, Yama, a foreign user's process…).
    #[error("permission denied to {action} process {pid}: {source} (run as the process's user or with CAP_SYS_PTRACE)")]
    PermissionDenied {
        /// The target pid.
        pid: i32,
        /// What was being attempted ("trace", "read /proc/…/fd of").
        action: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Another tracer (a debugger, strace, …) already traces the target.
    #[error(
        "process {pid} is already traced by pid {tracer} (thread {tid}); detach that tracer first"
    )]
    AlreadyTraced {
        /// The target pid.
        pid: i32,
        /// The thread found traced.
        tid: i32,
        /// The tracer's pid, from `/proc/TID/status`.
        tracer: i32,
    },
    /// The target exited while it was being captured; nothing was left behind.
    #[error("process {pid} exited during the capture")]
    ProcessExited {
        /// The target pid.
        pid: i32,
    },
    /// The id names a thread of another process, not a process.
    #[error("{tid} is a thread of process {tgid}, not a process id")]
    NotAProcess {
        /// The id given.
        tid: i32,
        /// The process it belongs to.
        tgid: i32,
    },
    /// The target is a zombie: it has exited and there is nothing to capture.
    #[error("process {pid} is a zombie (it has exited and waits for its parent to reap it)")]
    Zombie {
        /// The target pid.
        pid: i32,
    },
    /// A thread did not stop (or a stopped thread did not report) before the deadline.
    #[error("thread {tid} of process {pid} did not stop within {timeout_ms} ms (uninterruptible sleep or vfork?); the target was released")]
    Timeout {
        /// The target pid.
        pid: i32,
        /// The thread that did not stop.
        tid: i32,
        /// The deadline that passed.
        timeout_ms: u64,
    },
    /// Another capture of the same process (by another pss engine) went on for as long as
    /// this one could wait.
    #[error("process {pid} was being captured by another pss engine for {waited_ms} ms, the limit of this capture; try again")]
    Busy {
        /// The target pid.
        pid: i32,
        /// How long this capture waited.
        waited_ms: u64,
    },
    /// A capture flag or request that this build does not implement.
    #[error("not supported: {what}")]
    NotSupported {
        /// What is not supported, and where the docs say so.
        what: String,
    },
    /// The snapshot does not hold this class of information (it was not captured).
    #[error("not found: the snapshot holds no {what} (capture it with {flag})")]
    NotFound {
        /// The class asked for.
        what: &'static str,
        /// The capture flag that would have captured it.
        flag: &'static str,
    },
    /// A walk reached its end.
    #[error("no more items")]
    NoMoreItems,
    /// An argument is not valid (an unknown class, a position from elsewhere…).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// A ptrace request failed in a way that is not one of the cases above.
    #[error("ptrace {request} on thread {tid} of process {pid} failed: {source}")]
    Ptrace {
        /// The request name (`PTRACE_SEIZE`, …).
        request: &'static str,
        /// The target pid.
        pid: i32,
        /// The thread concerned.
        tid: i32,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// Reading a file (usually under `/proc`) failed.
    #[error("reading {} for process {pid} failed: {source}", path.display())]
    Io {
        /// The target pid.
        pid: i32,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A `/proc` file had a shape we do not understand.
    #[error("cannot parse {} for process {pid}: {detail}", path.display())]
    Parse {
        /// The target pid.
        pid: i32,
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The VA clone could not be made inside the target (`clone` returned an error: out of
    /// memory, `pids.max` reached…; or it did not come back in time). The reason says what
    /// state the target was left in: restored and released, or a thread still inside the
    /// injected call.
    #[error("the VA clone of process {pid} could not be made: {reason}")]
    CloneFailed {
        /// The target pid.
        pid: i32,
        /// Why (the errno of the injected `clone`, or what failed around it).
        reason: String,
    },
    /// A range of the snapshot's memory cannot be read: nothing is mapped there, the mapping
    /// is not readable, or it was not captured (an `MADV_DONTFORK` range too large to copy;
    /// without a clone, anything but the stack and TLS pages copied in the pause).
    #[error("address {address:#x} of the snapshot of process {pid} cannot be read: {reason}")]
    Unreadable {
        /// The target pid.
        pid: i32,
        /// The first address that could not be read.
        address: u64,
        /// Why.
        reason: String,
    },
    /// The VA clone went away before its memory was read: its engine died, or something
    /// killed it. The target itself was not touched.
    #[error("the VA clone (pid {clone}) of process {pid} is gone (its engine died or it was killed); its memory can no longer be read")]
    CloneVanished {
        /// The target pid.
        pid: i32,
        /// The clone's pid.
        clone: i32,
    },
    /// Writing an export (a core, a minidump) failed: a full disk, a file size limit, a
    /// closed pipe, an I/O error. Whatever was partly written has been removed.
    #[error("writing {what} failed: {}", describe_write_error(source))]
    Output {
        /// The file or descriptor (`core.1234`, `fd 5`, `standard output`).
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The output file exists and overwriting it was not asked for.
    #[error("{} exists; not overwritten", path.display())]
    OutputExists {
        /// The file.
        path: PathBuf,
    },
    /// The operation was cancelled by its caller (an interrupt flag it set).
    #[error("interrupted while {what}")]
    Interrupted {
        /// What was interrupted (`writing core.1234`).
        what: String,
    },
    /// A system call injected into another process (outside a capture) failed there.
    #[error("{action} inside process {pid} failed: {source}")]
    Remote {
        /// The process.
        pid: i32,
        /// What it was made to do (`openat("/proc/…")`, `close(7)`).
        action: String,
        /// The errno it got.
        #[source]
        source: io::Error,
    },
    /// A snapshot file could not be written or read.
    #[error("snapshot file {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A serialized snapshot (a file, or a memfd from another process) is damaged or is not
    /// a snapshot (`docs/format.md`).
    #[error("not a valid snapshot: {what}")]
    Corrupt {
        /// What is wrong, and where.
        what: String,
    },
    /// The capture engine process could not be found, started or reached, or died
    /// (`docs/engine.md`).
    #[error("capture engine: {what}")]
    Engine {
        /// What went wrong, and where the engine was looked for.
        what: String,
    },
    /// The capture engine itself failed (its tracer thread panicked or is gone).
    #[error("internal error in the capture engine: {0}")]
    Internal(String),
}

/// A convenient alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The broad class of an [`Error`], for the C ABI's Win32 codes and the CLI's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// [`Error::NoSuchProcess`], [`Error::NotAProcess`], [`Error::Zombie`].
    NoSuchProcess,
    /// [`Error::PermissionDenied`], [`Error::AlreadyTraced`].
    AccessDenied,
    /// [`Error::ProcessExited`].
    ProcessExited,
    /// [`Error::Timeout`], [`Error::Busy`].
    Timeout,
    /// [`Error::NotSupported`].
    NotSupported,
    /// [`Error::NotFound`].
    NotFound,
    /// [`Error::NoMoreItems`].
    NoMoreItems,
    /// [`Error::InvalidParameter`].
    InvalidParameter,
    /// [`Error::Corrupt`].
    Corrupt,
    /// Everything else.
    Other,
}

/// A write error in words a user acts on.
fn describe_write_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOSPC) => "no space left on the device".into(),
        Some(libc::EDQUOT) => "disk quota exceeded".into(),
        Some(libc::EFBIG) => {
            "file too large (the file size limit, RLIMIT_FSIZE / ulimit -f, was reached)".into()
        }
        Some(libc::EPIPE) => "the reading end was closed (broken pipe)".into(),
        _ => e.to_string(),
    }
}

impl Error {
    /// The broad class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NoSuchProcess { .. } | Error::NotAProcess { .. } | Error::Zombie { .. } => {
                ErrorKind::NoSuchProcess
            }
            Error::PermissionDenied { .. } | Error::AlreadyTraced { .. } => ErrorKind::AccessDenied,
            Error::ProcessExited { .. } => ErrorKind::ProcessExited,
            Error::Timeout { .. } | Error::Busy { .. } => ErrorKind::Timeout,
            Error::NotSupported { .. } => ErrorKind::NotSupported,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::NoMoreItems => ErrorKind::NoMoreItems,
            Error::InvalidParameter(_) => ErrorKind::InvalidParameter,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Ptrace { .. }
            | Error::Io { .. }
            | Error::Parse { .. }
            | Error::CloneFailed { .. }
            | Error::Unreadable { .. }
            | Error::File { .. }
            | Error::Remote { .. }
            | Error::CloneVanished { .. }
            | Error::Output { .. }
            | Error::OutputExists { .. }
            | Error::Interrupted { .. }
            | Error::Engine { .. }
            | Error::Internal(_) => ErrorKind::Other,
        }
    }

    /// Builds the error for a failed read of `path`, classifying ENOENT/ESRCH as the process
    /// being gone and EACCES/EPERM as a permission problem.
    pub fn from_proc_io(pid: i32, path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        match source.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => Error::NoSuchProcess { pid },
            Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
                pid,
                action: format!("read {} of", path.display()),
                source,
            },
            _ => Error::Io { pid, path, source },
        }
    }
}
