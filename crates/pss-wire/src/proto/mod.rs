//! The engine protocol: what a caller and its engine process say to each other over a
//! [`Channel`](pss_sys::channel::Channel) (`docs/engine.md`, "Protocol").
//!
//! Every request gets exactly one answer, [`kind::OK`] with the request's result or
//! [`kind::ERROR`] with an error encoded field by field ([`encode_error`]), so that the
//! caller sees the same error it would have seen had the capture run in its own process.
//! Payloads use the [`crate::codec`] encoding; a snapshot travels in the snapshot format
//! (`docs/format.md`).

use std::time::Duration;

use crate::codec::{Decoded, Reader, Writer};
use pss_types::flags::{CaptureFlags, ContextFlags};
use pss_types::options::{CaptureOptions, ThreadReading};
use pss_types::records::{CopiedRange, CopyReason, ForkedAwayCopy, MemoryHole};

mod error;
pub mod pump;

pub use error::{decode_error, encode_error};

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
    w.u8(match o.thread_reading {
        ThreadReading::Together => 0,
        ThreadReading::OneByOne => 1,
    });
    w.seq(&o.only_threads, |w, &t| w.u32(t));
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
    o.thread_reading = match r.u8()? {
        0 => ThreadReading::Together,
        1 => ThreadReading::OneByOne,
        t => return Err(r.error(format!("a thread reading, found {t}"))),
    };
    o.only_threads = r.seq(|r| r.u32())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_request_round_trips() {
        let mut o = CaptureOptions::new(CaptureFlags::VA_CLONE, ContextFlags::ALL);
        o.stop_timeout = Duration::from_millis(1234);
        o.aux_stack_limit = 4096;
        o.forked_away = ForkedAwayCopy::AfterPause;
        o.thread_reading = ThreadReading::OneByOne;
        o.only_threads = vec![7, 9];
        let (t, back) = decode_capture(&encode_capture(TargetSpec::Pid(42), &o)).unwrap();
        assert_eq!((t, back), (TargetSpec::Pid(42), o));
    }
}
