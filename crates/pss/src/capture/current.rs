//! Capture of the calling process (Windows' `(HANDLE)-1`) with thread contexts, auxiliary
//! pages or a VA clone.
//!
//! A thread cannot ptrace its own process, so a helper process does the pause:
//!
//! 1. The caller prepares everything the pause needs (buffers for the ranges to copy, an
//!    open `/proc/self/mem`), takes the tracer lock (so our tracer threads are idle), and
//!    forks the helper (`pss-helper`), naming it as allowed tracer under Yama.
//! 2. The helper stops every thread of the caller, the calling thread included (it waits in
//!    a `read` on the socket, which is the context it reports), reads registers and
//!    auxiliary pages, lets the calling thread go and tells it `P`.
//! 3. The calling thread, alone running, copies the forked-away ranges from its own memory
//!    and forks itself with a raw `clone` (no `atfork` handler; the child parks itself with
//!    every signal blocked). It neither allocates nor takes a lock while the others are
//!    stopped. It answers `R`.
//! 4. The helper releases the other threads and sends back what it read ([`crate::codec`]),
//!    then exits. The keeper thread adopts the parked child as the VA clone.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::codec::{Decoded, Reader, Writer};
use crate::error::{Error, Result};
use crate::format::records;
use crate::linux::helper::{self, Helper};
use crate::linux::mem::ProcMem;
use crate::linux::procfs;
use crate::linux::tracer;
use crate::records::{CopiedRange, MemoryHole};

use super::freeze::{self, FreezeRequest, Frozen, FrozenThread};
use super::va_clone::{CloneRequest, MadeClone};

/// How long the helper waits for the calling thread to make the clone.
const CLONE_DEADLINE: Duration = Duration::from_secs(30);
/// Slack over the stop timeout for the helper to start, read and send back.
const HELPER_SLACK: Duration = Duration::from_secs(10);

/// Stops the calling process's other threads through a helper process, reads what `req`
/// asks for, and makes the clone `req.clone` asks for. On the calling thread.
pub(super) fn freeze(mut req: FreezeRequest) -> Result<Frozen> {
    let pid = req.pid;
    let clone = req.clone.take();
    req.release_first = Some(rustix::thread::gettid().as_raw_nonzero().get());
    let deadline = Instant::now() + req.timeout + HELPER_SLACK + CLONE_DEADLINE;
    let timeout_ms = req.timeout.as_millis() as u64;

    // Everything the pause needs is prepared now: nothing allocates while our other threads
    // are stopped (one of them may hold the allocator's lock).
    let mut prepared = clone.as_ref().map(Prepared::new).transpose()?;

    let (answer, parked) = tracer::exclusive(|| -> Result<(Result<Vec<u8>>, Option<i32>)> {
        let mut h = helper::fork_helper(move |sock| helper_main(sock, req))
            .map_err(|e| Error::Internal(format!("cannot fork the self-capture helper: {e}")))?;
        let allowed = h.allow_tracing();
        let mut parked = None;
        let talk = converse(&mut h, prepared.as_mut(), &mut parked, deadline);
        if allowed {
            h.disallow_tracing();
        }
        let helper_pid = h.pid;
        let code = h.finish(deadline);
        let answer = talk.map_err(|e| {
            Error::Internal(format!(
                "the self-capture helper (pid {helper_pid}) failed: {e} (exit code {code:?})"
            ))
        });
        Ok((answer, parked))
    })?;
    let frozen = answer.and_then(|bytes| decode_outcome(&bytes, pid, timeout_ms)?);
    let mut frozen = match frozen {
        Ok(frozen) => frozen,
        Err(e) => {
            if let Some(child) = parked {
                helper::discard_parked(child);
            }
            return Err(e);
        }
    };
    match (parked, prepared) {
        (Some(child), Some(p)) => {
            let (copies, failed_copies) = p.finish();
            frozen.clone = Some(MadeClone {
                pid: child,
                pid_in_target: child,
                site: 0,
                seccomp: own_seccomp(pid),
                copies,
                failed_copies,
            });
        }
        (None, Some(p)) => {
            return Err(Error::CloneFailed {
                pid,
                reason: match p.fork_error {
                    Some(e) => format!("the calling thread's fork failed: {e}"),
                    None => {
                        "the calling thread was never told to fork (the helper ended early)".into()
                    }
                },
            })
        }
        _ => {}
    }
    Ok(frozen)
}

/// The caller's side of the conversation: start the helper, and when it says the other
/// threads are stopped, copy and fork. Returns what the helper sent back.
fn converse(
    h: &mut Helper,
    prepared: Option<&mut Prepared>,
    parked: &mut Option<i32>,
    deadline: Instant,
) -> std::io::Result<Vec<u8>> {
    h.write_all(b"G")?;
    let mut b = [0u8];
    h.read_exact(&mut b, deadline)?;
    if b[0] == b'P' {
        // Paused. From here to the `R`: no allocation, no lock.
        if let Some(p) = prepared {
            p.copy();
            match helper::fork_parked() {
                Ok(child) => *parked = Some(child),
                Err(e) => p.fork_error = Some(e),
            }
        }
        h.write_all(b"R")?;
        return h.read_to_end(deadline);
    }
    // It never paused: the byte was the start of its answer.
    let mut out = vec![b[0]];
    out.extend(h.read_to_end(deadline)?);
    Ok(out)
}

/// Buffers for the ranges to copy from our own memory during the pause.
struct Prepared {
    mem: ProcMem,
    ranges: Vec<CopiedRange>,
    ok: Vec<bool>,
    fork_error: Option<std::io::Error>,
}

impl Prepared {
    fn new(req: &CloneRequest) -> Result<Prepared> {
        let mem = ProcMem::open(std::process::id() as i32)
            .map_err(|e| Error::from_proc_io(std::process::id() as i32, "/proc/self/mem", e))?;
        let ranges: Vec<CopiedRange> = req
            .copy
            .iter()
            .map(|&(start, end, reason)| CopiedRange {
                start,
                data: vec![0u8; (end - start) as usize],
                reason,
            })
            .collect();
        let ok = vec![false; ranges.len()];
        Ok(Prepared {
            mem,
            ranges,
            ok,
            fork_error: None,
        })
    }

    /// Inside the pause: reads into the prepared buffers.
    fn copy(&mut self) {
        for (r, ok) in self.ranges.iter_mut().zip(self.ok.iter_mut()) {
            *ok = self.mem.read_exact(r.start, &mut r.data);
        }
    }

    /// The copies made, and the ranges that could not be read.
    fn finish(self) -> (Vec<CopiedRange>, Vec<MemoryHole>) {
        let mut copies = Vec::new();
        let mut failed = Vec::new();
        for (r, ok) in self.ranges.into_iter().zip(self.ok) {
            if ok {
                copies.push(r);
            } else {
                failed.push(MemoryHole {
                    start: r.start,
                    end: r.end(),
                    reason: r.reason,
                });
            }
        }
        (copies, failed)
    }
}

fn own_seccomp(pid: i32) -> bool {
    let tid = rustix::thread::gettid().as_raw_nonzero().get();
    procfs::status_at(&format!("/proc/{pid}/task/{tid}/status")).is_some_and(|s| s.seccomp == 2)
}

/// The helper process: waits for `G`, freezes the caller, says `P` and waits for `R` while
/// the caller forks, then sends the outcome and exits.
fn helper_main(mut sock: UnixStream, req: FreezeRequest) -> i32 {
    let mut b = [0u8];
    if sock.read_exact(&mut b).is_err() {
        return 1;
    }
    let result = freeze::freeze_with(req, || {
        if sock.write_all(b"P").is_ok()
            && helper::poll_readable(&sock, CLONE_DEADLINE).unwrap_or(false)
        {
            let _ = sock.read(&mut b);
        }
    });
    let mut w = Writer::default();
    match &result {
        Ok(frozen) => {
            w.u8(0);
            encode_frozen(&mut w, frozen);
        }
        Err(e) => {
            w.u8(1);
            encode_error(&mut w, e);
        }
    }
    // The first byte the caller reads tells "paused" from "done": `X` when it never paused.
    let mut out = Vec::with_capacity(w.buf.len() + 1);
    if result.is_err() {
        out.push(b'X');
    }
    out.extend_from_slice(&w.buf);
    match sock.write_all(&out) {
        Ok(()) => 0,
        Err(_) => 2,
    }
}

fn encode_frozen(w: &mut Writer, f: &Frozen) {
    w.seq(&f.threads, |w, t| {
        w.i32(t.tid);
        w.opt(&t.general, records::encode_regs);
        w.opt(&t.context, records::encode_context);
        w.opt(&t.sigmask, |w, &m| w.u64(m));
        w.bool(t.group_stopped);
        w.time(t.capture_time);
    });
    w.duration(f.pause);
    w.u32(f.rounds);
    w.seq(&f.warnings, records::encode_warning);
    w.opt(&f.aux_pages, |w, pages| {
        w.seq(pages, records::encode_aux_page)
    });
}

fn decode_frozen(r: &mut Reader<'_>) -> Decoded<Frozen> {
    let threads = r.seq(|r| {
        Ok(FrozenThread {
            tid: r.i32()?,
            general: r.opt(records::decode_regs)?,
            context: r.opt(records::decode_context)?,
            sigmask: r.opt(|r| r.u64())?,
            group_stopped: r.bool()?,
            capture_time: r.time()?,
        })
    })?;
    let pause = r.duration()?;
    let rounds = r.u32()?;
    let warnings = r.seq(records::decode_warning)?;
    let aux_pages = r.opt(|r| r.seq(records::decode_aux_page))?;
    Ok(Frozen {
        threads,
        pause,
        rounds,
        warnings,
        clone: None,
        aux_pages,
    })
}

const ERR_OTHER: u8 = 0;
const ERR_TIMEOUT: u8 = 1;
const ERR_TRACED: u8 = 2;
const ERR_DENIED: u8 = 3;

fn encode_error(w: &mut Writer, e: &Error) {
    match e {
        Error::Timeout { tid, .. } => {
            w.u8(ERR_TIMEOUT);
            w.i32(*tid);
        }
        Error::AlreadyTraced { tid, tracer, .. } => {
            w.u8(ERR_TRACED);
            w.i32(*tid);
            w.i32(*tracer);
        }
        Error::PermissionDenied { action, source, .. } => {
            w.u8(ERR_DENIED);
            w.str(action);
            w.i32(source.raw_os_error().unwrap_or(libc::EPERM));
        }
        e => {
            w.u8(ERR_OTHER);
            w.str(&e.to_string());
        }
    }
}

fn decode_error(r: &mut Reader<'_>, pid: i32, timeout_ms: u64) -> Decoded<Error> {
    Ok(match r.u8()? {
        ERR_TIMEOUT => Error::Timeout {
            pid,
            tid: r.i32()?,
            timeout_ms,
        },
        ERR_TRACED => Error::AlreadyTraced {
            pid,
            tid: r.i32()?,
            tracer: r.i32()?,
        },
        ERR_DENIED => Error::PermissionDenied {
            pid,
            action: r.str()?,
            source: std::io::Error::from_raw_os_error(r.i32()?),
        },
        ERR_OTHER => Error::Internal(format!("the self-capture helper: {}", r.str()?)),
        t => return Err(r.error(format!("an error tag, found {t}"))),
    })
}

/// What the helper sent after the handshake: the frozen threads, or its error.
fn decode_outcome(bytes: &[u8], pid: i32, timeout_ms: u64) -> Result<Result<Frozen>> {
    let body = match bytes.first() {
        Some(b'X') => &bytes[1..],
        _ => bytes,
    };
    let bad = |e: crate::codec::DecodeError| {
        Error::Internal(format!("the self-capture helper's answer is malformed {e}"))
    };
    let mut r = Reader::new(body);
    let out = match r.u8().map_err(bad)? {
        0 => Ok(decode_frozen(&mut r).map_err(bad)?),
        1 => Err(decode_error(&mut r, pid, timeout_ms).map_err(bad)?),
        t => return Err(bad(r.error(format!("an outcome tag, found {t}")))),
    };
    if !r.at_end() {
        return Err(bad(r.error("the end of the answer")));
    }
    Ok(out)
}
