//! The engine protocol: what a caller and its engine process say to each other over a
//! [`Channel`](pss_sys::channel::Channel) (`docs/engine.md`, "Protocol").
//!
//! Every request gets exactly one answer, [`kind::OK`] with the request's result or
//! [`kind::ERROR`] with an [`Error`] encoded field by field, so that the caller sees the
//! same error it would have seen had the capture run in its own process. Payloads use the
//! [`crate::codec`] encoding; a snapshot travels in the snapshot format (`docs/format.md`).

use std::io;
use std::time::Duration;

use crate::codec::{Decoded, Reader, Writer};
use pss_types::error::Error;
use pss_types::flags::{CaptureFlags, ContextFlags};
use pss_types::options::CaptureOptions;
use pss_types::records::{CopiedRange, CopyReason, ForkedAwayCopy, MemoryHole};

pub mod pump;

/// The protocol version; a caller and an engine that disagree refuse each other.
pub const VERSION: u32 = 1;

/// The command-line argument that makes an executable serve as the engine
/// (`EXE --pss-engine-serve FD`).
pub const SERVE_ARG: &str = "--pss-engine-serve";

/// Frame kinds.
pub mod kind {
    /// Caller → engine: protocol version, library version, caller pid. Answer: the same
    /// of the engine (its pid).
    pub const HELLO: u8 = 1;
    /// Capture a process. Answer: the snapshot bytes and the clone, if any (with its pidfd
    /// and its `/proc/PID/mem` as fds).
    pub const CAPTURE: u8 = 2;
    /// Free a clone the engine holds for the caller.
    pub const FREE: u8 = 3;
    /// Put an fd (attached) into a process (pidfd attached). Answer: its number there.
    pub const INSTALL_FD: u8 = 4;
    /// Close an fd in a process (pidfd attached).
    pub const CLOSE_FD: u8 = 5;
    /// Reap the clones that engines which died left behind (in one process, or in all).
    /// Answer: one line per clone found.
    pub const CLEANUP: u8 = 6;
    /// Read ranges of a clone's memory ahead of an export, into a shared ring
    /// ([`super::pump`]; the ring, a channel, the clone's `mem` and maybe its `pagemap`
    /// attached). Answer: empty, once the pump has started.
    pub const PUMP: u8 = 7;
    /// Pump → caller, on the pump's channel: a slot was filled ([`super::pump::Chunk`]).
    pub const PUMP_CHUNK: u8 = 20;
    /// Caller → pump: a slot is free again (its number, `u32`).
    pub const PUMP_FREE: u8 = 21;
    /// Pump → caller: every range was read.
    pub const PUMP_DONE: u8 = 22;
    /// The request succeeded; its result follows.
    pub const OK: u8 = 100;
    /// The request failed; the error follows.
    pub const ERROR: u8 = 101;
}

/// The library's build id: a hash of its sources (`build.rs`).
/// Set once the running executable declared it can serve as the engine.
static SELF_SERVING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records that the running executable can serve as the engine (it calls
/// `pss_engine::main_if_requested` first thing in `main`), so that the library may start
/// it instead of looking for `pss-engine`.
pub fn mark_self_serving() {
    SELF_SERVING.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the running executable can serve as the engine ([`mark_self_serving`]).
pub fn self_serving() -> bool {
    SELF_SERVING.load(std::sync::atomic::Ordering::Relaxed)
}

/// This build's id: a hash of the sources of every crate that speaks or serves the
/// protocol (`build.rs`); caller and engine refuse each other unless they agree.
pub const BUILD_ID: &str = env!("PSS_BUILD_ID");

/// Both sides' greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// [`VERSION`].
    pub protocol: u32,
    /// [`BUILD_ID`]: the two sides must be built from the same sources.
    pub build: String,
    /// The sender's pid.
    pub pid: i32,
}

impl Hello {
    /// This side's greeting.
    pub fn ours() -> Hello {
        Hello {
            protocol: VERSION,
            build: BUILD_ID.to_string(),
            pid: std::process::id() as i32,
        }
    }

    /// Its bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u32(self.protocol);
        w.str(&self.build);
        w.i32(self.pid);
        w.buf
    }

    /// Parses a greeting.
    pub fn decode(bytes: &[u8]) -> Decoded<Hello> {
        let mut r = Reader::new(bytes);
        Ok(Hello {
            protocol: r.u32()?,
            build: r.str()?,
            pid: r.i32()?,
        })
    }
}

/// Which process a capture request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSpec {
    /// By pid (the caller and the engine share a pid namespace).
    Pid(i32),
    /// By the pidfd attached to the request.
    PidFd,
    /// The caller itself.
    Caller,
}

/// A capture request.
pub fn encode_capture(target: TargetSpec, o: &CaptureOptions) -> Vec<u8> {
    let mut w = Writer::default();
    match target {
        TargetSpec::Pid(pid) => {
            w.u8(0);
            w.i32(pid);
        }
        TargetSpec::PidFd => w.u8(1),
        TargetSpec::Caller => w.u8(2),
    }
    w.u32(o.flags.bits());
    w.u32(o.context_flags.bits());
    w.duration(o.stop_timeout);
    w.u32(o.max_rounds);
    w.u64(o.fork_copy_limit);
    w.u64(o.shared_copy_limit);
    w.u64(o.aux_stack_limit as u64);
    w.u8(match o.forked_away {
        ForkedAwayCopy::DuringPause => 0,
        ForkedAwayCopy::AfterPause => 1,
        ForkedAwayCopy::Never => 2,
    });
    w.buf
}

/// Parses what [`encode_capture`] wrote.
pub fn decode_capture(bytes: &[u8]) -> Decoded<(TargetSpec, CaptureOptions)> {
    let mut r = Reader::new(bytes);
    let target = match r.u8()? {
        0 => TargetSpec::Pid(r.i32()?),
        1 => TargetSpec::PidFd,
        2 => TargetSpec::Caller,
        t => return Err(r.error(format!("a target kind, found {t}"))),
    };
    let mut o = CaptureOptions::new(
        CaptureFlags::from_bits_retain(r.u32()?),
        ContextFlags::from_bits_retain(r.u32()?),
    );
    o.stop_timeout = r.duration()?;
    o.max_rounds = r.u32()?;
    o.fork_copy_limit = r.u64()?;
    o.shared_copy_limit = r.u64()?;
    o.aux_stack_limit = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
    o.forked_away = match r.u8()? {
        0 => ForkedAwayCopy::DuringPause,
        1 => ForkedAwayCopy::AfterPause,
        2 => ForkedAwayCopy::Never,
        t => return Err(r.error(format!("a forked-away copy policy, found {t}"))),
    };
    Ok((target, o))
}

/// How long a caller waits for the answer to a capture with `o`: every bound the engine
/// applies, plus slack for reading `/proc` and encoding.
pub fn capture_deadline(o: &CaptureOptions) -> Duration {
    o.stop_timeout + Duration::from_secs(90)
}

/// What the caller learns of a clone the engine keeps for it.
#[derive(Debug)]
pub struct CloneInfo {
    /// The engine's name for it (what [`kind::FREE`] takes).
    pub id: u64,
    /// The target's pid.
    pub target: i32,
    /// The clone's pid.
    pub pid: i32,
    /// The clone's pid in the target's namespace.
    pub pid_in_target: i32,
    /// Ranges copied during the pause.
    pub copies: Vec<CopiedRange>,
    /// Ranges the clone lacks.
    pub holes: Vec<MemoryHole>,
}

fn reason_code(r: CopyReason) -> u8 {
    match r {
        CopyReason::DontFork => 0,
        CopyReason::WipeOnFork => 1,
        CopyReason::Shared => 2,
    }
}

fn decode_reason(r: &mut Reader<'_>) -> Decoded<CopyReason> {
    Ok(match r.u8()? {
        0 => CopyReason::DontFork,
        1 => CopyReason::WipeOnFork,
        2 => CopyReason::Shared,
        t => return Err(r.error(format!("a copy reason, found {t}"))),
    })
}

impl CloneInfo {
    /// Writes it.
    pub fn encode(&self, w: &mut Writer) {
        w.u64(self.id);
        w.i32(self.target);
        w.i32(self.pid);
        w.i32(self.pid_in_target);
        w.seq(&self.copies, |w, c| {
            w.u64(c.start);
            w.u8(reason_code(c.reason));
            w.bool(c.at_pause);
            w.bytes(&c.data);
        });
        w.seq(&self.holes, |w, h| {
            w.u64(h.start);
            w.u64(h.end);
            w.u8(reason_code(h.reason));
        });
    }

    /// Reads what [`CloneInfo::encode`] wrote.
    pub fn decode(r: &mut Reader<'_>) -> Decoded<CloneInfo> {
        Ok(CloneInfo {
            id: r.u64()?,
            target: r.i32()?,
            pid: r.i32()?,
            pid_in_target: r.i32()?,
            copies: r.seq(|r| {
                Ok(CopiedRange {
                    start: r.u64()?,
                    reason: decode_reason(r)?,
                    at_pause: r.bool()?,
                    data: r.bytes()?.to_vec(),
                })
            })?,
            holes: r.seq(|r| {
                Ok(MemoryHole {
                    start: r.u64()?,
                    end: r.u64()?,
                    reason: decode_reason(r)?,
                })
            })?,
        })
    }
}

/// The ptrace request names the engine's errors use: a decoded [`Error::Ptrace`] names one
/// of these (its field is a `&'static str`).
const PTRACE_REQUESTS: &[&str] = &[
    "PTRACE_SEIZE",
    "PTRACE_INTERRUPT",
    "PTRACE_GETREGS",
    "PTRACE_SETREGS (restore)",
    "PTRACE_SETOPTIONS/SETSIGMASK (injection)",
    "injected syscall",
    "waitpid",
];

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// An error, field by field.
pub fn encode_error(e: &Error) -> Vec<u8> {
    let mut w = Writer::default();
    match e {
        Error::NoSuchProcess { pid } => {
            w.u8(0);
            w.i32(*pid);
        }
        Error::PermissionDenied {
            pid,
            action,
            source,
        } => {
            w.u8(1);
            w.i32(*pid);
            w.str(action);
            w.i32(errno_of(source));
        }
        Error::AlreadyTraced { pid, tid, tracer } => {
            w.u8(2);
            w.i32(*pid);
            w.i32(*tid);
            w.i32(*tracer);
        }
        Error::ProcessExited { pid } => {
            w.u8(3);
            w.i32(*pid);
        }
        Error::NotAProcess { tid, tgid } => {
            w.u8(4);
            w.i32(*tid);
            w.i32(*tgid);
        }
        Error::Zombie { pid } => {
            w.u8(5);
            w.i32(*pid);
        }
        Error::Timeout {
            pid,
            tid,
            timeout_ms,
        } => {
            w.u8(6);
            w.i32(*pid);
            w.i32(*tid);
            w.u64(*timeout_ms);
        }
        Error::NotSupported { what } => {
            w.u8(7);
            w.str(what);
        }
        Error::InvalidParameter(what) => {
            w.u8(8);
            w.str(what);
        }
        Error::Ptrace {
            request,
            pid,
            tid,
            source,
        } => {
            w.u8(9);
            w.str(request);
            w.i32(*pid);
            w.i32(*tid);
            w.i32(errno_of(source));
        }
        Error::Io { pid, path, source } => {
            w.u8(10);
            w.i32(*pid);
            w.str(&path.to_string_lossy());
            w.i32(errno_of(source));
        }
        Error::Parse { pid, path, detail } => {
            w.u8(11);
            w.i32(*pid);
            w.str(&path.to_string_lossy());
            w.str(detail);
        }
        Error::CloneFailed { pid, reason } => {
            w.u8(12);
            w.i32(*pid);
            w.str(reason);
        }
        Error::Remote {
            pid,
            action,
            source,
        } => {
            w.u8(13);
            w.i32(*pid);
            w.str(action);
            w.i32(errno_of(source));
        }
        Error::Corrupt { what } => {
            w.u8(14);
            w.str(what);
        }
        Error::Engine { what } => {
            w.u8(15);
            w.str(what);
        }
        Error::Internal(what) => {
            w.u8(16);
            w.str(what);
        }
        Error::Busy { pid, waited_ms } => {
            w.u8(17);
            w.i32(*pid);
            w.u64(*waited_ms);
        }
        e => {
            w.u8(255);
            w.str(&e.to_string());
        }
    }
    w.buf
}

/// The error [`encode_error`] wrote.
pub fn decode_error(bytes: &[u8]) -> Decoded<Error> {
    let mut r = Reader::new(bytes);
    let errno = |r: &mut Reader<'_>| r.i32().map(io::Error::from_raw_os_error);
    Ok(match r.u8()? {
        0 => Error::NoSuchProcess { pid: r.i32()? },
        1 => Error::PermissionDenied {
            pid: r.i32()?,
            action: r.str()?,
            source: errno(&mut r)?,
        },
        2 => Error::AlreadyTraced {
            pid: r.i32()?,
            tid: r.i32()?,
            tracer: r.i32()?,
        },
        3 => Error::ProcessExited { pid: r.i32()? },
        4 => Error::NotAProcess {
            tid: r.i32()?,
            tgid: r.i32()?,
        },
        5 => Error::Zombie { pid: r.i32()? },
        6 => Error::Timeout {
            pid: r.i32()?,
            tid: r.i32()?,
            timeout_ms: r.u64()?,
        },
        7 => Error::NotSupported { what: r.str()? },
        8 => Error::InvalidParameter(r.str()?),
        9 => {
            let name = r.str()?;
            Error::Ptrace {
                request: PTRACE_REQUESTS
                    .iter()
                    .find(|&&n| n == name)
                    .copied()
                    .unwrap_or("ptrace request"),
                pid: r.i32()?,
                tid: r.i32()?,
                source: errno(&mut r)?,
            }
        }
        10 => Error::Io {
            pid: r.i32()?,
            path: r.str()?.into(),
            source: errno(&mut r)?,
        },
        11 => Error::Parse {
            pid: r.i32()?,
            path: r.str()?.into(),
            detail: r.str()?,
        },
        12 => Error::CloneFailed {
            pid: r.i32()?,
            reason: r.str()?,
        },
        13 => Error::Remote {
            pid: r.i32()?,
            action: r.str()?,
            source: errno(&mut r)?,
        },
        14 => Error::Corrupt { what: r.str()? },
        15 => Error::Engine { what: r.str()? },
        16 => Error::Internal(r.str()?),
        17 => Error::Busy {
            pid: r.i32()?,
            waited_ms: r.u64()?,
        },
        255 => Error::Internal(r.str()?),
        t => return Err(r.error(format!("an error tag, found {t}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_crosses_with_its_fields_and_message() {
        let errors = vec![
            Error::NoSuchProcess { pid: 7 },
            Error::PermissionDenied {
                pid: 7,
                action: "trace thread 8 of".into(),
                source: io::Error::from_raw_os_error(libc::EPERM),
            },
            Error::AlreadyTraced {
                pid: 7,
                tid: 8,
                tracer: 9,
            },
            Error::ProcessExited { pid: 7 },
            Error::NotAProcess { tid: 8, tgid: 7 },
            Error::Zombie { pid: 7 },
            Error::Timeout {
                pid: 7,
                tid: 8,
                timeout_ms: 2000,
            },
            Error::NotSupported { what: "x".into() },
            Error::InvalidParameter("y".into()),
            Error::Ptrace {
                request: "PTRACE_SEIZE",
                pid: 7,
                tid: 8,
                source: io::Error::from_raw_os_error(libc::ESRCH),
            },
            Error::Io {
                pid: 7,
                path: "/proc/7/maps".into(),
                source: io::Error::from_raw_os_error(libc::EIO),
            },
            Error::Parse {
                pid: 7,
                path: "/proc/7/stat".into(),
                detail: "z".into(),
            },
            Error::CloneFailed {
                pid: 7,
                reason: "r".into(),
            },
            Error::Remote {
                pid: 7,
                action: "close(3)".into(),
                source: io::Error::from_raw_os_error(libc::EBADF),
            },
            Error::Corrupt { what: "w".into() },
            Error::Engine { what: "e".into() },
            Error::Internal("i".into()),
            Error::Busy {
                pid: 7,
                waited_ms: 2000,
            },
        ];
        for e in errors {
            let back = decode_error(&encode_error(&e)).unwrap();
            assert_eq!(back.to_string(), e.to_string());
            assert_eq!(back.kind(), e.kind());
        }
    }

    #[test]
    fn a_capture_request_round_trips() {
        let mut o = CaptureOptions::new(CaptureFlags::VA_CLONE, ContextFlags::ALL);
        o.stop_timeout = Duration::from_millis(1234);
        o.aux_stack_limit = 4096;
        o.forked_away = ForkedAwayCopy::AfterPause;
        let (t, back) = decode_capture(&encode_capture(TargetSpec::Pid(42), &o)).unwrap();
        assert_eq!((t, back), (TargetSpec::Pid(42), o));
    }
}
