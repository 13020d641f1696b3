//! The caller's side of the engine process (`pss-engine`): finding and starting it,
//! and one request at a time over its socket.
//!
//! One engine serves one calling process. It is started on the first request (and again
//! after it died) by [`pss_sys::spawn`], which costs the same whatever the caller's
//! size and leaves no child of ours behind. A process forked from the caller does not share
//! its engine: it starts its own on its first request.

mod locate;

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pss_sys::channel::Channel;
use pss_sys::{spawn, yama};
use pss_types::error::{Error, Result};
use pss_wire::codec::{Reader, Writer};
use pss_wire::proto::{self, kind, Hello};

pub use locate::set_engine_path;

/// How long a new engine may take to start and greet.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// How long a request that stops nothing may take (freeing a clone, an fd injection).
pub(crate) const SHORT_REQUEST: Duration = Duration::from_secs(30);

/// The connection to this process's engine.
static CONN: Mutex<Option<Conn>> = Mutex::new(None);
/// A duplicate of the connection's socket and the engine's pid, for [`interrupt`], which
/// must not wait for [`CONN`] (a request may hold it for seconds).
static ABORT: Mutex<Option<(OwnedFd, i32, u32)>> = Mutex::new(None);
/// Counts engines started by this process; a clone remembers the one that holds it.
static GENERATION: AtomicU64 = AtomicU64::new(0);

struct Conn {
    chan: Channel,
    /// The engine's pid.
    engine: i32,
    /// A pidfd of the engine: when it died, its exit tells when the kernel has released
    /// everything it traced (the socket closes before that).
    pidfd: Option<OwnedFd>,
    /// The process that started it (a forked child must not use its parent's).
    owner: u32,
    generation: u64,
}

impl Conn {
    /// Whether the engine process has exited.
    fn exited(&self) -> bool {
        self.pidfd
            .as_ref()
            .is_some_and(|fd| pss_sys::pidfd::has_exited(fd.as_fd()))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The duplicate would keep the socket open: the engine must see it close.
        let mut abort = ABORT.lock().unwrap_or_else(|p| p.into_inner());
        if abort
            .as_ref()
            .is_some_and(|(_, pid, _)| *pid == self.engine)
        {
            *abort = None;
        }
    }
}

/// Which engine answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EngineRef {
    /// Its pid.
    pub pid: i32,
    /// Which of this process's engines it is.
    pub generation: u64,
    /// The process that talks to it.
    pub owner: u32,
}

impl EngineRef {
    /// Whether this is the calling process's current engine.
    fn is_current(&self, conn: &Conn) -> bool {
        conn.generation == self.generation && conn.owner == std::process::id()
    }
}

/// A successful answer.
pub(crate) struct Reply {
    /// The answer's bytes.
    pub payload: Vec<u8>,
    /// The descriptors that came with it.
    pub fds: Vec<OwnedFd>,
    /// The engine that answered.
    pub engine: EngineRef,
}

/// How a request is sent.
pub(crate) struct Request<'a> {
    /// What is asked ([`kind`]).
    pub kind: u8,
    /// Its arguments, encoded.
    pub payload: &'a [u8],
    /// The descriptors it passes.
    pub fds: &'a [BorrowedFd<'a>],
    /// How long the answer may take.
    pub timeout: Duration,
    /// The request stops the calling process itself: under Yama `ptrace_scope` 1 the
    /// engine is named as allowed tracer for its duration.
    pub traces_caller: bool,
    /// Only send it to this engine (freeing a clone it holds); with another (or none),
    /// nothing is sent and `Ok(None)` returned.
    pub only: Option<EngineRef>,
}

/// Sends `req` to the engine (starting one if needed) and waits for its answer.
/// `Ok(None)` only when `req.only` names an engine that is gone.
pub(crate) fn call(req: &Request<'_>) -> Result<Option<Reply>> {
    let mut slot = CONN.lock().unwrap_or_else(|p| p.into_inner());
    if slot.as_ref().is_some_and(|c| c.owner != std::process::id()) {
        // Inherited across fork(): the parent's, not ours. Closing our copy of the socket
        // leaves the parent's connection as it was.
        *slot = None;
    }
    if slot.as_ref().is_some_and(Conn::exited) {
        // It died between requests (its clones with it): start another.
        *slot = None;
    }
    if let Some(only) = req.only {
        if !slot.as_ref().is_some_and(|c| only.is_current(c)) {
            return Ok(None);
        }
    }
    if slot.is_none() {
        *slot = Some(connect()?);
    }
    let conn = slot.as_ref().expect("connected");
    let allowed = req.traces_caller && yama::restricted() && yama::allow(conn.engine);
    let result = exchange(conn, req);
    if allowed {
        yama::disallow();
    }
    match result {
        Ok(reply) => Ok(Some(reply)),
        Err(Failure::Refused(e)) => Err(e),
        Err(Failure::Broken(e)) => {
            // The engine died or hung: forget it (closing our end makes a hung one finish
            // its request, release everything and exit). The next request starts another.
            *slot = None;
            Err(e)
        }
    }
}

/// How an exchange failed.
enum Failure {
    /// The engine answered with an error.
    Refused(Error),
    /// The connection is unusable.
    Broken(Error),
}

fn exchange(conn: &Conn, req: &Request<'_>) -> std::result::Result<Reply, Failure> {
    let engine = conn.engine;
    let broken = |what: String| {
        Failure::Broken(Error::Engine {
            what: format!("the engine (pid {engine}) {what}"),
        })
    };
    conn.chan
        .send(req.kind, req.payload, req.fds)
        .map_err(|e| broken(format!("cannot be reached: {e}")))?;
    let frame = conn
        .chan
        .recv(Some(Instant::now() + req.timeout))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut => broken(format!(
                "did not answer within {} s; it was left to finish and release the target",
                req.timeout.as_secs()
            )),
            std::io::ErrorKind::UnexpectedEof => {
                if let Some(fd) = &conn.pidfd {
                    let _ = pss_sys::channel::wait_readable(
                        fd.as_fd(),
                        Some(Instant::now() + START_DEADLINE),
                    );
                }
                broken("exited during the request; the kernel released the target".into())
            }
            _ => broken(format!("cannot be read from: {e}")),
        })?;
    match frame.kind {
        kind::OK => Ok(Reply {
            payload: frame.payload,
            fds: frame.fds,
            engine: EngineRef {
                pid: engine,
                generation: conn.generation,
                owner: conn.owner,
            },
        }),
        kind::ERROR => Err(Failure::Refused(
            proto::decode_error(&frame.payload)
                .unwrap_or_else(|e| Error::Internal(format!("a malformed error {e}"))),
        )),
        k => Err(broken(format!("answered with an unknown kind {k}"))),
    }
}

/// Starts an engine and exchanges greetings with it.
fn connect() -> Result<Conn> {
    let exe = locate::engine_path()?;
    let failed = |what: String| Error::Engine {
        what: format!("{} {what}", exe.display()),
    };
    let (ours, theirs) = Channel::pair().map_err(|e| failed(format!("(socket pair: {e})")))?;
    let path = CString::new(exe.as_os_str().as_encoded_bytes())
        .map_err(|_| failed("has a NUL byte in its path".into()))?;
    let args = [
        CString::new(proto::SERVE_ARG).expect("no NUL"),
        CString::new(spawn::CHILD_FD.to_string()).expect("no NUL"),
    ];
    spawn::spawn_detached(&path, &args, theirs.fd())
        .map_err(|e| failed(format!("could not be started: {e}")))?;
    drop(theirs);
    let no_answer = |e: std::io::Error| {
        failed(format!(
            "did not answer its greeting ({e}): is it a pss engine? (docs/engine.md)"
        ))
    };
    ours.send(kind::HELLO, &Hello::ours().encode(), &[])
        .map_err(no_answer)?;
    let frame = ours
        .recv(Some(Instant::now() + START_DEADLINE))
        .map_err(no_answer)?;
    let hello = match frame.kind {
        kind::OK => Hello::decode(&frame.payload)
            .map_err(|e| failed(format!("sent a malformed greeting {e}")))?,
        _ => {
            return Err(proto::decode_error(&frame.payload)
                .unwrap_or_else(|e| failed(format!("sent a malformed refusal {e}"))))
        }
    };
    if let Ok(dup) = ours.fd().try_clone_to_owned() {
        *ABORT.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((dup, hello.pid, std::process::id()));
    }
    Ok(Conn {
        chan: ours,
        engine: hello.pid,
        pidfd: pss_sys::pidfd::open(hello.pid).ok(),
        owner: std::process::id(),
        generation: GENERATION.fetch_add(1, Ordering::Relaxed) + 1,
    })
}

/// Ends the request in flight, if any, as if this process had died, and waits (up to
/// `timeout`) until the engine has exited: it finishes the step it is in, releases the
/// target, frees every clone it held and exits. Returns whether it did so in time. For a
/// program's signal-handling thread (the `pss` command calls it on SIGINT, SIGTERM and
/// SIGHUP); the request in flight fails with [`Error::Engine`].
pub fn interrupt(timeout: Duration) -> bool {
    let Some((sock, engine, owner)) = ABORT.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return true;
    };
    if owner != std::process::id() {
        return true;
    }
    let pidfd = pss_sys::pidfd::open(engine).ok();
    let _ = rustix::net::shutdown(&sock, rustix::net::Shutdown::Both);
    drop(sock);
    let Some(pidfd) = pidfd else { return true };
    pss_sys::channel::wait_readable(pidfd.as_fd(), Some(Instant::now() + timeout)).is_ok()
}

/// Asks the engine to reap the clones that engines which died left behind (`docs/engine.md`,
/// "Strays"), in process `target` or in every process; one line per clone found.
pub fn cleanup(target: Option<i32>) -> Result<Vec<String>> {
    let mut w = Writer::default();
    w.opt(&target, |w, &p| w.i32(p));
    let reply = call(&Request {
        kind: kind::CLEANUP,
        payload: &w.buf,
        fds: &[],
        timeout: Duration::from_secs(120),
        traces_caller: false,
        only: None,
    })?
    .expect("sent to the current engine");
    Reader::new(&reply.payload)
        .seq(|r| r.str())
        .map_err(|e| Error::Internal(format!("a malformed answer {e}")))
}

/// The engine's pid, starting it if needed (for tests and the `pss engine` command).
pub fn engine_pid() -> Result<i32> {
    let mut slot = CONN.lock().unwrap_or_else(|p| p.into_inner());
    if slot.as_ref().is_some_and(|c| c.owner != std::process::id()) {
        *slot = None;
    }
    if slot.is_none() {
        *slot = Some(connect()?);
    }
    Ok(slot.as_ref().expect("connected").engine)
}

/// Closes the connection to the engine, if any, and waits (up to `timeout`) until the
/// engine has exited: every clone it held is freed and every target released by then.
/// Returns whether it exited in time. The next request starts a new engine.
pub fn shutdown(timeout: Duration) -> bool {
    let conn = CONN.lock().unwrap_or_else(|p| p.into_inner()).take();
    let Some(conn) = conn.filter(|c| c.owner == std::process::id()) else {
        return true;
    };

    let pidfd = pss_sys::pidfd::open(conn.engine).ok();
    drop(conn);
    let Some(pidfd) = pidfd else { return true };
    pss_sys::channel::wait_readable(pidfd.as_fd(), Some(Instant::now() + timeout)).is_ok()
}

/// Frees clone `id` held by `engine`; nothing when that engine is gone (its clones died
/// with it). `of_caller`: the clone is of the calling process (freeing it runs a `wait4`
/// in one of our threads).
pub(crate) fn free_clone(engine: EngineRef, id: u64, of_caller: bool) {
    let mut w = Writer::default();
    w.u64(id);
    let _ = call(&Request {
        kind: kind::FREE,
        payload: &w.buf,
        fds: &[],
        timeout: SHORT_REQUEST,
        traces_caller: of_caller,
        only: Some(engine),
    });
}

/// Reads the `i32` an answer holds.
pub(crate) fn reply_i32(reply: &Reply) -> Result<i32> {
    Reader::new(&reply.payload)
        .i32()
        .map_err(|e| Error::Internal(format!("a malformed answer {e}")))
}
