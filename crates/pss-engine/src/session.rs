//! One caller's session with its engine: the greeting, then one request at a time until
//! the caller is gone (its socket closed, or the process exited) or a terminal signal
//! arrives; then every clone still held for it is freed.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::capture::held::{self, HeldClone};
use crate::capture::{self, ledger, Target};
use pss_sys::channel::{Channel, Frame};
use pss_sys::pidfd;
use pss_trace::failpoint;
use pss_types::error::{Error, Result};
use pss_wire::codec::{Reader, Writer};
use pss_wire::format;
use pss_wire::proto::{self, kind, CloneInfo, Hello, TargetSpec};

/// How long a new engine waits for its caller's greeting.
const HELLO_DEADLINE: Duration = Duration::from_secs(10);
/// How often a reap that could not be done (the target held by a debugger) is retried.
const RETRY_EVERY: Duration = Duration::from_millis(200);
/// How long an engine whose caller is gone goes on retrying such reaps; what is left then
/// stays in the ledger for the next engine (`docs/engine.md`, "Strays").
const LINGER: Duration = Duration::from_secs(600);

/// Serves the caller at the other end of `sock`; returns the process's exit code.
pub(super) fn serve(sock: OwnedFd) -> i32 {
    let _ = rustix::thread::set_name(c"pss-engine");
    let Ok(signals) = pss_trace::engine_signals::setup_engine() else {
        return 1;
    };
    let mut session = match Session::open(Channel::from_fd(sock)) {
        Ok(s) => s,
        Err(_) => return 1,
    };
    // Clones that engines which died left behind, in any target.
    session.swept = ledger::sweep(None);
    let signalled = session.run(&signals);
    // Every clone still held is freed, then reaps that could not be done are retried.
    drop(session);
    if !signalled {
        linger(&signals);
    }
    0
}

/// Retries the reaps left pending, every [`RETRY_EVERY`], until none is left, [`LINGER`]
/// passed, or a terminal signal came.
fn linger(signals: &OwnedFd) {
    let until = Instant::now() + LINGER;
    while held::pending() > 0 && Instant::now() < until {
        if let Ok(Some(_)) = wait_any([signals.as_fd()], Some(RETRY_EVERY)) {
            return;
        }
        held::retry_pending();
    }
}

/// The engine's state for its caller.
struct Session {
    chan: Channel,
    /// The caller's pidfd: its exit ends the session even if a child it forked still holds
    /// the socket.
    caller_pidfd: OwnedFd,
    /// The clones held for the caller, by the id it knows them by.
    clones: HashMap<u64, HeldClone>,
    next_id: u64,
    /// What the sweep at start reaped, for the first cleanup request to report.
    swept: Vec<String>,
}

/// A request's successful answer: its bytes and the descriptors that go with them.
type Answer = (Vec<u8>, Vec<OwnedFd>);

impl Session {
    /// Learns the caller from the socket pair's credentials and exchanges greetings.
    fn open(chan: Channel) -> io::Result<Session> {
        let caller = chan.creator_pid()?;
        let caller_pidfd = pidfd::open(caller).map_err(io::Error::other)?;
        let hello = chan.recv(Some(Instant::now() + HELLO_DEADLINE))?;
        let theirs = match hello.kind {
            kind::HELLO => Hello::decode(&hello.payload).map_err(io::Error::other)?,
            k => return Err(io::Error::other(format!("expected a greeting, got {k}"))),
        };
        let ours = Hello::ours();
        let refusal = if theirs.protocol != ours.protocol || theirs.build != ours.build {
            Some(format!(
                "this engine (pid {}) is build {} speaking protocol {}, the library is build {} speaking protocol {}: rebuild the engine from the library's sources (`cargo build -p pss-engine`) or point $PSS_ENGINE at a matching one (docs/engine.md, \"Finding the engine\")",
                ours.pid, ours.build, ours.protocol, theirs.build, theirs.protocol
            ))
        } else if theirs.pid != caller {
            Some(format!(
                "the engine (pid {}) runs in another pid namespace than its caller (pid {} there, {caller} here)",
                ours.pid, theirs.pid
            ))
        } else {
            None
        };
        if let Some(what) = refusal {
            let e = Error::NotSupported { what };
            chan.send(kind::ERROR, &proto::encode_error(&e), &[])?;
            return Err(io::Error::other(e));
        }
        chan.send(kind::OK, &ours.encode(), &[])?;
        Ok(Session {
            chan,
            caller_pidfd,
            clones: HashMap::new(),
            next_id: 1,
            swept: Vec::new(),
        })
    }

    /// Answers requests until the caller is gone or a terminal signal arrives (then
    /// `true`), retrying pending reaps in between.
    fn run(&mut self, signals: &OwnedFd) -> bool {
        loop {
            let every = (held::pending() > 0).then_some(RETRY_EVERY);
            let fds = [self.chan.fd(), self.caller_pidfd.as_fd(), signals.as_fd()];
            match wait_any(fds, every) {
                Ok(None) => {
                    held::retry_pending();
                    continue;
                }
                Ok(Some(0)) => {}
                Ok(Some(2)) => return true,
                Ok(Some(_)) | Err(_) => return false,
            }
            let Ok(frame) = self.chan.recv(None) else {
                return false;
            };
            let answer = self.handle(frame);
            let sent = match &answer {
                Ok((bytes, fds)) => {
                    let fds: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
                    self.chan.send(kind::OK, bytes, &fds)
                }
                Err(e) => self.chan.send(kind::ERROR, &proto::encode_error(e), &[]),
            };
            if sent.is_err() {
                return false;
            }
            if answer.is_ok() {
                failpoint::hit("answered");
            }
        }
    }

    fn handle(&mut self, f: Frame) -> Result<Answer> {
        match f.kind {
            kind::CAPTURE => self.capture(f),
            kind::FREE => {
                let id = Reader::new(&f.payload).u64().map_err(bad_request)?;
                // Dropping it frees it. An unknown id was freed already.
                drop(self.clones.remove(&id));
                Ok((Vec::new(), Vec::new()))
            }
            kind::INSTALL_FD => {
                let [target, fd] = two_fds(f.fds)?;
                let n = super::remote::install_fd(target.as_fd(), fd.as_fd())?;
                Ok((n.to_le_bytes().to_vec(), Vec::new()))
            }
            kind::CLEANUP => {
                let target = Reader::new(&f.payload)
                    .opt(|r| r.i32())
                    .map_err(bad_request)?;
                let mut lines = std::mem::take(&mut self.swept);
                lines.retain(|l| target.map_or(true, |p| l.contains(&format!(" of process {p} "))));
                for line in ledger::sweep_all(target) {
                    // The start's sweep may have reported the same clone already.
                    if !lines.contains(&line) {
                        lines.push(line);
                    }
                }
                let mut w = Writer::default();
                w.seq(&lines, |w, line| w.str(line));
                Ok((w.buf, Vec::new()))
            }
            kind::PUMP => {
                super::pump::start(f)?;
                Ok((Vec::new(), Vec::new()))
            }
            kind::CLOSE_FD => {
                let target = f.fds.into_iter().next().ok_or_else(missing_fd)?;
                let fd = Reader::new(&f.payload).i32().map_err(bad_request)?;
                super::remote::close_fd(target.as_fd(), fd)?;
                Ok((Vec::new(), Vec::new()))
            }
            k => Err(Error::Internal(format!("unknown request kind {k}"))),
        }
    }

    fn capture(&mut self, f: Frame) -> Result<Answer> {
        let (spec, opts) = proto::decode_capture(&f.payload).map_err(bad_request)?;
        let given = f.fds.into_iter().next();
        let target = match spec {
            TargetSpec::Pid(pid) => Target::Pid(pid),
            TargetSpec::PidFd => Target::PidFd(given.as_ref().ok_or_else(missing_fd)?.as_fd()),
            TargetSpec::Caller => Target::PidFd(self.caller_pidfd.as_fd()),
        };
        let captured = capture::capture(target, &opts)?;
        let mut w = Writer::default();
        w.bytes(&format::encode_with(
            &captured.data,
            0,
            format::Checksum::Skipped,
        ));
        let mut fds = Vec::new();
        match captured.clone {
            Some(mut clone) => {
                let id = self.next_id;
                self.next_id += 1;
                fds.push(clone.pidfd.try_clone().map_err(|e| internal("pidfd", e))?);
                fds.push(clone_mem(clone.zombie.clone)?);
                w.u8(1);
                CloneInfo {
                    id,
                    target: clone.zombie.target,
                    pid: clone.zombie.clone,
                    pid_in_target: clone.zombie.clone_in_target,
                    copies: std::mem::take(&mut clone.copies),
                    holes: std::mem::take(&mut clone.holes),
                }
                .encode(&mut w);
                self.clones.insert(id, clone);
            }
            None => w.u8(0),
        }
        Ok((w.buf, fds))
    }
}

/// `/proc/CLONE/mem`, opened here (the engine traces the clone) for the caller to `pread`.
fn clone_mem(clone: i32) -> Result<OwnedFd> {
    let path = format!("/proc/{clone}/mem");
    std::fs::File::open(&path)
        .map(OwnedFd::from)
        .map_err(|e| Error::from_proc_io(clone, path, e))
}

/// Waits until one of `fds` is readable (its index) or `timeout` passes (`None`).
fn wait_any<const N: usize>(
    fds: [BorrowedFd<'_>; N],
    timeout: Option<Duration>,
) -> io::Result<Option<usize>> {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut polled = fds.map(|fd| PollFd::from_borrowed_fd(fd, PollFlags::IN));
    let ts = timeout.map(|t| rustix::time::Timespec {
        tv_sec: t.as_secs() as i64,
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    loop {
        match poll(&mut polled, ts.as_ref()) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(polled.iter().position(|p| !p.revents().is_empty()))
}

fn two_fds(fds: Vec<OwnedFd>) -> Result<[OwnedFd; 2]> {
    fds.try_into().map_err(|_| missing_fd())
}

fn missing_fd() -> Error {
    Error::Internal("a request came without the descriptor it needs".into())
}

fn bad_request(e: pss_wire::codec::DecodeError) -> Error {
    Error::Internal(format!("a malformed request {e}"))
}

fn internal(what: &str, e: io::Error) -> Error {
    Error::Internal(format!(
        "the engine could not duplicate the clone's {what}: {e}"
    ))
}
