//! The VA clone pipeline: preflight (target running), the injected `clone` (inside the
//! pause), adoption (after the pause: `EXITKILL`, its fds closed), and free (kill, reap,
//! then an injected `wait4` in the target so it keeps no zombie of ours).
//!
//! Everything here that touches ptrace runs on the tracer thread.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::linux::inject::{self, Injection};
use crate::linux::mem::{self, ProcMem};
use crate::linux::procfs::{self, smaps, ProcDir};
use crate::linux::ptrace::{self, Tid, WaitStatus};
use crate::linux::{arch, failpoint, tracer};
use crate::records::{CopiedRange, CopyReason, ForkedAwayCopy, MemoryHole};

use super::trampoline::Trampoline;
use super::{freeze, one_thread};
use crate::linux::statedir::TargetLock;

/// `anon_inode:[userfaultfd]`: a target holding one is refused (fork waits on its monitor).
const USERFAULTFD: &[u8] = b"anon_inode:[userfaultfd]";
/// How long the injected `clone` may take (the kernel copies page tables: ~25 ms per GiB).
const CLONE_DEADLINE: Duration = Duration::from_secs(30);
/// How long the second pause at free time may wait for a thread to stop.
const REAP_STOP_DEADLINE: Duration = Duration::from_millis(500);

/// What [`preflight`] found besides the request.
#[derive(Debug, Default)]
pub struct Preflight {
    /// Forked-away ranges over the copy limit, or not to be copied at all.
    pub holes: Vec<MemoryHole>,
    /// Forked-away ranges to copy after the pause ([`ForkedAwayCopy::AfterPause`]).
    pub after: Vec<(u64, u64, CopyReason)>,
    /// The target's `maps` lines of its `MADV_DONTFORK` mappings (absent from a clone's).
    pub dontfork_maps: Vec<u8>,
}

/// What the pause needs to make a clone; built by [`preflight`].
#[derive(Debug)]
pub struct CloneRequest {
    /// A `syscall` instruction in the target's vDSO, for when no thread is in a syscall.
    pub vdso_site: Option<u64>,
    /// The trampoline mapped in the target before the pause, or why there is none.
    pub trampoline: std::result::Result<Trampoline, String>,
    /// Ranges to copy from the stopped target (forked-away ones and shared ones, within
    /// their limits), each with a buffer of its size faulted in before the pause.
    pub copy: Vec<CopiedRange>,
    /// Set when the injected `clone` did not come back in time: the thread left in it.
    pub stuck: Arc<Mutex<Option<Tid>>>,
}

/// A clone made during the pause, before it is adopted.
#[derive(Debug)]
pub struct MadeClone {
    /// Its pid in our pid namespace.
    pub pid: i32,
    /// Its pid in the target's pid namespace (what `wait4` in the target needs).
    pub pid_in_target: i32,
    /// The syscall instruction used; the clone has it at the same address.
    pub site: u64,
    /// The trampoline it was made from, still mapped in the clone.
    pub trampoline: Option<Trampoline>,
    /// What the snapshot's warnings should say about how it was made.
    pub notes: Vec<String>,
    /// Whether the injected thread had a seccomp filter (suspended for the injection).
    pub seccomp: bool,
    /// The ranges copied from the stopped target.
    pub copies: Vec<CopiedRange>,
    /// Ranges that were to be copied but could not be read.
    pub failed_copies: Vec<MemoryHole>,
}

/// How [`preflight`] treats the ranges a clone lacks or would see live.
#[derive(Debug, Clone, Copy)]
pub struct CopyPlan {
    /// Bytes of `MADV_DONTFORK`/`MADV_WIPEONFORK` ranges to copy; larger ones are holes.
    pub forked_away_limit: u64,
    /// When to copy them.
    pub forked_away: ForkedAwayCopy,
    /// Bytes of writable shared mappings to copy during the pause (0: none).
    pub shared_limit: u64,
}

/// Checks the target can be cloned and gathers what the pause needs, buffers included.
/// Target running.
pub fn preflight(pid: i32, dir: &mut ProcDir, plan: CopyPlan) -> Result<(CloneRequest, Preflight)> {
    for fd in procfs::list_numeric(pid, &format!("/proc/{pid}/fd"))? {
        if let Ok(link) = dir.readlink(&format!("fd/{fd}")) {
            if link.as_encoded_bytes() == USERFAULTFD && !failpoint::test_skips("uffd") {
                return Err(Error::NotSupported {
                    what: format!(
                        "a VA clone of process {pid}: it holds a userfaultfd (fd {fd}), and a fork may then wait, unbounded, for the process that reads it (see docs/differences.md); refused before any pause, the target untouched"
                    ),
                });
            }
        }
    }
    // One pass over smaps: the forked-away mappings, the shared ones, the vDSO.
    let mut copy = Vec::new();
    let mut found = Preflight::default();
    let mut budget = plan.forked_away_limit;
    let mut shared_budget = plan.shared_limit;
    let mut vdso = None;
    let smaps_buf = ProcDir::open_mm(pid)?.read("smaps")?.to_vec();
    for v in smaps::vmas(&smaps_buf) {
        let m = &v.map;
        let len = m.end - m.start;
        if v.userfaultfd && !failpoint::test_skips("uffd") {
            return Err(Error::NotSupported {
                what: format!(
                    "a VA clone of process {pid}: its memory at {:#x}-{:#x} is registered with a userfaultfd, and a fork may then wait, unbounded, for the process that reads it (see docs/differences.md); refused before any pause, the target untouched",
                    m.start, m.end
                ),
            });
        }
        if m.pathname == b"[vdso]" {
            vdso = Some((m.start, m.end));
        }
        if v.dont_fork || v.wipe_on_fork {
            let reason = if v.dont_fork {
                found.dontfork_maps.extend_from_slice(v.line);
                found.dontfork_maps.push(b'\n');
                CopyReason::DontFork
            } else {
                CopyReason::WipeOnFork
            };
            let wanted = plan.forked_away != ForkedAwayCopy::Never;
            if wanted && m.read() && len <= budget {
                budget -= len;
                match plan.forked_away {
                    ForkedAwayCopy::AfterPause => found.after.push((m.start, m.end, reason)),
                    _ => copy.push(buffer_for(m.start, m.end, reason)),
                }
            } else {
                found.holes.push(MemoryHole {
                    start: m.start,
                    end: m.end,
                    reason,
                });
            }
        } else if m.shared() && m.write() && m.read() && len <= shared_budget {
            shared_budget -= len;
            copy.push(buffer_for(m.start, m.end, CopyReason::Shared));
        }
    }
    Ok((
        CloneRequest {
            vdso_site: vdso.and_then(|(start, end)| inject::vdso_site_in(pid, start, end)),
            trampoline: Err("not mapped yet".into()),
            copy,
            stuck: Arc::default(),
        },
        found,
    ))
}

/// Makes the clone: copies the requested ranges from the stopped target into their buffers,
/// then (through `mem`, its `/proc/PID/mem` opened for writing, for the trampoline) injects `clone(exit_signal = 0)` into one
/// stopped thread — from a trampoline page where it can ([`Trampoline`]) — and restores it.
/// Inside the pause.
pub fn make(pid: i32, stopped: &[Tid], req: CloneRequest, mem: &ProcMem) -> Result<MadeClone> {
    let (copies, failed_copies) = copy_ranges(pid, req.copy);
    let (tid, site, usable) = pick_thread(pid, stopped, req.vdso_site, mem)?;
    let seccomp = usable.seccomp;
    // Not self-restoring on the thread's stack (that would read its maps inside the pause):
    // the armed trampoline is where it is parked before its signals are blocked, and where
    // the clone runs, so an engine killed at any instant leaves it in its own state.
    let mut inj = Injection::prepare(
        tid,
        site,
        seccomp_option(seccomp),
        ptrace::OPT_TRACECLONE,
        None,
    )
    .map_err(|e| injection_error(pid, tid, seccomp, e))?;
    let deadline = Instant::now() + clone_deadline();
    let trampoline = match &req.trampoline {
        Err(why) => Err(why.clone()),
        Ok(_) if usable.shadow_stack => {
            Err("the thread has a shadow stack, which a signal return would check".to_string())
        }
        Ok(t) => t.arm(&inj, mem).map(|()| *t),
    };
    let parked = match &trampoline {
        Ok(t) => inj.park_at(t.return_path()),
        Err(_) => Ok(()),
    };
    parked
        .and_then(|()| inj.block_signals())
        .map_err(|e| injection_error(pid, tid, seccomp, e))?;
    let outcome = match inject_clone(&mut inj, trampoline.as_ref().ok(), deadline) {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            // The thread is inside the kernel's clone (a userfaultfd or FUSE peer, or memory
            // pressure, holds it) and cannot be restored from here.
            inj.abandon();
            *req.stuck.lock().unwrap_or_else(|p| p.into_inner()) = Some(tid);
            return Err(stuck(pid, tid, trampoline.is_ok()));
        }
        Err(e) => {
            return Err(clone_failed(
                pid,
                format!("the injected clone in thread {tid}: {e}"),
            ))
        }
    };
    let child = outcome.as_ref().and_then(|o| {
        o.events
            .iter()
            .find(|(ev, _)| *ev == ptrace::EVENT_CLONE)
            .map(|(_, msg)| *msg as i32)
    });
    if child.is_some() {
        // From here the tracer thread must not retire: that would detach the clone, which
        // has no EXITKILL yet.
        tracer::keep_clone();
    }
    let restored = inj.restore();
    let ret = outcome.map_or(-i64::from(libc::EAGAIN), |o| o.ret);
    if let Err(e) = restored {
        if let Some(child) = child {
            discard(child);
            tracer::clone_released();
        }
        return Err(clone_failed(
            pid,
            format!("thread {tid} could not be restored after the injected clone: {e}"),
        ));
    }
    if ret < 0 {
        return Err(clone_failed(
            pid,
            format!(
                "clone() in thread {tid} returned {}",
                std::io::Error::from_raw_os_error((-ret) as i32)
            ),
        ));
    }
    let Some(child) = child else {
        return Err(clone_failed(
            pid,
            format!("clone() in thread {tid} made pid {ret} but it was not reported to us"),
        ));
    };
    let mut notes = Vec::new();
    if let Err(why) = &trampoline {
        notes.push(format!(
            "the clone was injected without a trampoline ({why}): an engine killed during the clone would have left thread {tid} with injected registers (docs/engine.md)"
        ));
    }
    Ok(MadeClone {
        pid: child,
        pid_in_target: ret as i32,
        site: trampoline.as_ref().map_or(site, Trampoline::entry),
        trampoline: trampoline.ok(),
        seccomp,
        copies,
        failed_copies,
        notes,
    })
}

/// Runs the injected `clone` (retrying `EAGAIN` and a racing signal's `ERESTARTNOINTR`),
/// from `trampoline` when there is one. `None` if it never got past those.
fn inject_clone(
    inj: &mut Injection,
    trampoline: Option<&Trampoline>,
    deadline: Instant,
) -> std::io::Result<Option<inject::Outcome>> {
    const NR: u64 = libc::SYS_clone as u64;
    for _ in 0..5 {
        inj.failpoints("clone");
        let out = inj.syscall_with(NR, [0; 6], deadline, |regs| {
            if let Some(t) = trampoline {
                arch::prepare_syscall(regs, t.entry(), NR, [0; 6]);
                arch::trampoline_stack(regs, t.base);
            }
        })?;
        if out.ret == -i64::from(libc::EAGAIN) || out.ret == -513 {
            continue;
        }
        return Ok(Some(out));
    }
    Ok(None)
}

/// A range to copy during the pause, with its buffer faulted in now.
fn buffer_for(start: u64, end: u64, reason: CopyReason) -> CopiedRange {
    CopiedRange {
        start,
        data: mem::prefaulted((end - start) as usize),
        reason,
        at_pause: true,
    }
}

/// Copies `ranges` from process `pid` into their buffers (`process_vm_readv`, a few calls
/// for all of them); those that cannot be read whole become holes.
fn copy_ranges(pid: i32, ranges: Vec<CopiedRange>) -> (Vec<CopiedRange>, Vec<MemoryHole>) {
    let mut ranges = ranges;
    let mut io: Vec<(u64, &mut [u8])> = ranges
        .iter_mut()
        .map(|r| (r.start, &mut r.data[..]))
        .collect();
    let whole = mem::read_ranges(pid, &mut io);
    let mut copies = Vec::new();
    let mut failed = Vec::new();
    for (r, ok) in ranges.into_iter().zip(whole) {
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

/// Copies the forked-away ranges left for after the pause from the running target: their
/// bytes may differ from the capture instant, and say so (`at_pause` false).
pub fn copy_after_pause(
    pid: i32,
    ranges: &[(u64, u64, CopyReason)],
) -> (Vec<CopiedRange>, Vec<MemoryHole>) {
    let buffers = ranges
        .iter()
        .map(|&(start, end, reason)| CopiedRange {
            at_pause: false,
            ..buffer_for(start, end, reason)
        })
        .collect();
    copy_ranges(pid, buffers)
}

/// The ptrace option an injection into a thread under a seccomp filter needs.
pub(super) fn seccomp_option(seccomp: bool) -> u32 {
    if seccomp {
        ptrace::OPT_SUSPEND_SECCOMP
    } else {
        0
    }
}

/// What makes a stopped thread usable for an injected syscall.
#[derive(Debug, Clone, Copy)]
pub(super) struct Usable {
    /// Its own syscall instruction, or none (then the vDSO's).
    pub site: Option<u64>,
    /// It has a seccomp filter (suspended for the injection).
    pub seccomp: bool,
    /// It runs with a user shadow stack (x86 CET), whose signal return the clone's
    /// trampoline cannot satisfy.
    pub shadow_stack: bool,
}

/// Whether a stopped thread can take an injected syscall, and the instruction to run it at.
pub(super) enum Candidate {
    /// It can.
    Usable(Usable),
    /// Syscall user dispatch is on: an injected syscall would raise SIGSYS.
    Dispatching,
    /// Seccomp strict mode: only `read`, `write`, `exit` and `sigreturn` are allowed, and
    /// an injected `clone` would kill the process.
    Strict,
    /// Gone.
    Unusable,
}

pub(super) fn candidate(pid: i32, tid: Tid, mem: &ProcMem) -> Candidate {
    let Ok(regs) = arch::get_raw(tid) else {
        return Candidate::Unusable;
    };
    let status = match procfs::status_at(&format!("/proc/{pid}/task/{tid}/status")) {
        Some(s) if s.seccomp == 1 => return Candidate::Strict,
        Some(s) => s,
        None => return Candidate::Unusable,
    };
    if ptrace::syscall_user_dispatch_on(tid) {
        return Candidate::Dispatching;
    }
    Candidate::Usable(Usable {
        site: inject::find_site(mem, &regs, None),
        seccomp: status.seccomp == 2,
        shadow_stack: status.shadow_stack,
    })
}

/// A stopped thread to inject into, the syscall instruction to use, and what else is known
/// of it: one stopped in a syscall if there is one (its own instruction), else the first
/// usable one with the vDSO's.
fn pick_thread(
    pid: i32,
    stopped: &[Tid],
    vdso: Option<u64>,
    mem: &ProcMem,
) -> Result<(Tid, u64, Usable)> {
    let mut fallback = None;
    let mut dispatching = 0;
    let mut strict = 0;
    for &tid in stopped {
        match candidate(pid, tid, mem) {
            Candidate::Usable(
                u @ Usable {
                    site: Some(site), ..
                },
            ) => return Ok((tid, site, u)),
            Candidate::Usable(u) if fallback.is_none() => {
                fallback = vdso.map(|site| (tid, site, u));
            }
            Candidate::Dispatching => dispatching += 1,
            Candidate::Strict => strict += 1,
            _ => {}
        }
    }
    if let Some(found) = fallback {
        return Ok(found);
    }
    if strict == stopped.len() {
        return Err(strict_mode(pid));
    }
    if dispatching > 0 {
        return Err(Error::NotSupported {
            what: format!(
                "a VA clone of process {pid}: every usable thread has syscall user dispatch on, where an injected syscall would raise SIGSYS"
            ),
        });
    }
    Err(clone_failed(
        pid,
        "no thread is in a syscall and no syscall instruction was found in the vDSO".into(),
    ))
}

/// The refusal of a VA clone of a process whose every thread is in seccomp strict mode.
fn strict_mode(pid: i32) -> Error {
    Error::NotSupported {
        what: format!(
            "a VA clone of process {pid}: every thread is in seccomp strict mode, which allows only read, write, exit and sigreturn (an injected clone would kill the process); threads, thread contexts, handles, the VA space and auxiliary pages can still be captured"
        ),
    }
}

/// Refuses, before any pause, a clone of a process whose threads are all in seccomp
/// strict mode (`leader_seccomp` is the leader's mode; the others are read only if it is
/// strict).
pub fn refuse_strict(pid: i32, leader_seccomp: u8) -> Result<()> {
    if leader_seccomp != 1 {
        return Ok(());
    }
    let tids = procfs::list_numeric(pid, &format!("/proc/{pid}/task"))?;
    let all_strict = tids.iter().all(|t| {
        procfs::status_at(&format!("/proc/{pid}/task/{t}/status")).is_some_and(|s| s.seccomp == 1)
    });
    if all_strict {
        return Err(strict_mode(pid));
    }
    Ok(())
}

fn injection_error(pid: i32, tid: Tid, seccomp: bool, e: std::io::Error) -> Error {
    if seccomp && e.raw_os_error() == Some(libc::EPERM) {
        return Error::NotSupported {
            what: format!(
                "a VA clone of process {pid}: thread {tid} runs under a seccomp filter, which may only be suspended with CAP_SYS_ADMIN; refused rather than risk the filter killing the target"
            ),
        };
    }
    Error::Ptrace {
        request: "PTRACE_SETOPTIONS/SETSIGMASK (injection)",
        pid,
        tid,
        source: e,
    }
}

/// A clone that could not be made, the target restored and released.
fn clone_failed(pid: i32, reason: String) -> Error {
    Error::CloneFailed {
        pid,
        reason: format!("{reason}; the target was restored and released"),
    }
}

/// The truth about a thread left inside the injected `clone` past its deadline.
fn stuck(pid: i32, tid: Tid, trampoline: bool) -> Error {
    let after = if trampoline {
        format!(
            "when the call completes it returns by itself to its own registers, signal mask and syscall, and the clone it makes exits at once; that clone's zombie is recorded, and `pss cleanup {pid}` reaps it (and unmaps pss's 16 KiB trampoline page) once thread {tid} is back"
        )
    } else {
        format!(
            "there was no trampoline, so when the call completes thread {tid} resumes with injected registers and may crash; the clone it makes is recorded, and `pss cleanup {pid}` kills and reaps it"
        )
    };
    Error::CloneFailed {
        pid,
        reason: format!(
            "thread {tid} did not come back from the injected clone() within {} s: it is still inside it, blocked in the kernel (a userfaultfd or FUSE peer, or memory pressure, can hold it), and the other threads were released; {after}",
            clone_deadline().as_secs_f32()
        ),
    }
}

/// How long the injected `clone` may take: [`CLONE_DEADLINE`], or for the tests a shorter
/// one from `PSS_ENGINE_TEST_CLONE_DEADLINE_MS` ([`failpoint::test_setting`]).
fn clone_deadline() -> Duration {
    failpoint::test_setting("PSS_ENGINE_TEST_CLONE_DEADLINE_MS")
        .map_or(CLONE_DEADLINE, Duration::from_millis)
}

/// Kills a clone that could not be handed out and collects its exit (tracer side only).
fn discard(clone: i32) {
    // The clone is our tracee and not yet reaped, so its pid cannot have been reused.
    if let Ok(fd) = crate::linux::pidfd::open(clone) {
        let _ = crate::linux::pidfd::kill(std::os::fd::AsFd::as_fd(&fd));
    }
    wait_exit(clone, Instant::now() + Duration::from_secs(2));
}

/// Waits for the first stop of the freshly made clone `clone`, then puts `EXITKILL` on it.
/// After the pause. On error the caller frees the clone as usual (kill, [`free`]).
pub fn adopt(clone: i32) -> Result<()> {
    let fail = |reason: String| Error::CloneFailed {
        pid: clone,
        reason: format!("{reason}; the target had been released"),
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    match ptrace::wait_report(clone, false, deadline) {
        Ok(WaitStatus::Stopped { .. }) => {}
        Ok(other) => {
            return Err(fail(format!(
                "the clone ended before its first stop: {other:?}"
            )))
        }
        Err(e) => return Err(fail(format!("waiting for the clone's first stop: {e}"))),
    }
    ptrace::set_options(clone, ptrace::OPT_EXITKILL)
        .map_err(|e| fail(format!("PTRACE_O_EXITKILL could not be set: {e}")))
}

/// Closes every fd of the clone by injecting `close_range(0, ~0, 0)` into it, then unmaps
/// the trampoline it was made from (the last injection: the clone's instruction pointer is
/// in that page, and it never runs again).
pub fn close_fds(
    clone: i32,
    site: u64,
    seccomp: bool,
    trampoline: Option<Trampoline>,
) -> Result<()> {
    let fail = |what: String| Error::CloneFailed {
        pid: clone,
        reason: format!("closing the clone's fds: {what}; the target had been released"),
    };
    // The clone dies with the engine (EXITKILL): nothing to restore for.
    let mut inj = Injection::begin(
        clone,
        site,
        seccomp_option(seccomp),
        ptrace::OPT_EXITKILL,
        None,
    )
    .map_err(|e| fail(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let out = inj
        .syscall(
            libc::SYS_close_range as u64,
            [0, u64::from(u32::MAX), 0, 0, 0, 0],
            deadline,
        )
        .map_err(|e| fail(e.to_string()))?;
    if out.ret < 0 {
        return Err(fail(format!(
            "close_range returned {}",
            std::io::Error::from_raw_os_error((-out.ret) as i32)
        )));
    }
    if let Some(t) = trampoline {
        t.unmap_with(&mut inj, deadline).map_err(fail)?;
    }
    inj.restore().map_err(|e| fail(e.to_string()))
}

/// A clone, killed or about to be, seen as the zombie it leaves in its target: the target
/// must reap it (it is the target's child), so the engine makes it do so by an injected
/// `wait4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zombie {
    /// The target pid.
    pub target: i32,
    /// The target's start time (clock ticks after boot): tells a reused pid.
    pub target_start: u64,
    /// The clone's pid in our namespace.
    pub clone: i32,
    /// The clone's pid in the target's namespace.
    pub clone_in_target: i32,
    /// The clone's start time: tells a reused pid.
    pub clone_start: u64,
}

impl Zombie {
    /// Whether nothing is left to reap: the target is gone, or the clone's pid no longer
    /// names a child of it that started when the clone did.
    pub fn gone(&self) -> bool {
        let stat = |pid: i32| procfs::stat_at(&format!("/proc/{pid}/stat"));
        let target_alive = procfs::process_alive(self.target, Some(self.target_start));
        !target_alive
            || !stat(self.clone)
                .is_some_and(|s| s.ppid == self.target && s.starttime == self.clone_start)
    }

    /// Kills the clone if it is still alive (only a stray clone is: one whose engine died
    /// before `EXITKILL` was set, without a trampoline).
    pub fn kill_if_alive(&self) {
        let Ok(fd) = crate::linux::pidfd::open(self.clone) else {
            return;
        };
        let st = procfs::stat_at(&format!("/proc/{}/stat", self.clone));
        if st.is_some_and(|s| s.starttime == self.clone_start && s.state != b'Z') {
            let _ = crate::linux::pidfd::kill(std::os::fd::AsFd::as_fd(&fd));
            let deadline = Instant::now() + Duration::from_secs(2);
            while !self.is_zombie() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn is_zombie(&self) -> bool {
        procfs::stat_at(&format!("/proc/{}/stat", self.clone)).map_or(true, |s| s.state == b'Z')
    }

    /// One attempt at reaping (on the tracer thread): one thread of the target runs
    /// `wait4(clone, NULL, WNOHANG | __WALL)` in a brief second pause.
    pub fn reap(&self) -> Reaped {
        if self.gone() {
            return Reaped::Gone;
        }
        if let Some(why) = one_thread::never_injectable(self.target) {
            return Reaped::Never(why);
        }
        let _ = one_thread::with_one_thread(self.target, REAP_STOP_DEADLINE, |inj, _| {
            self.inject_wait4(inj)
        });
        self.outcome()
    }

    /// Runs the `wait4` that reaps the clone in the thread `inj` holds.
    fn inject_wait4(&self, inj: &mut Injection) -> std::io::Result<inject::Outcome> {
        let options = (libc::WNOHANG | libc::__WALL) as u64;
        let pid = self.clone_in_target as u64;
        inj.failpoints("reap");
        inj.syscall(
            libc::SYS_wait4 as u64,
            [pid, 0, options, 0, 0, 0],
            Instant::now() + Duration::from_secs(1),
        )
    }

    /// What an attempt achieved (whatever stood in its way is taken to pass: a lasting
    /// obstacle is found before the attempt, [`one_thread::never_injectable`]).
    fn outcome(&self) -> Reaped {
        if self.gone() {
            Reaped::Gone
        } else {
            Reaped::Later
        }
    }

    /// Collects the killed clone's exit and reaps its zombie with every thread of the
    /// target stopped, so that none of them can collect it first: for a target with a
    /// thread waiting for any child with `__WALL` or `__WCLONE` (a reaper such as an init
    /// or a supervisor), which would otherwise get our clone's pid. `None` if the target
    /// could not be stopped (the exit is then not collected yet).
    fn collect_and_reap_hidden(&self) -> Option<Reaped> {
        let key = crate::linux::pidfd::identity(self.target);
        let deadline = Instant::now() + REAP_STOP_DEADLINE;
        let _turn = TargetLock::acquire(key, deadline).ok()?;
        let run = freeze::with_all_stopped(self.target, REAP_STOP_DEADLINE, |tids| {
            // Only now does the zombie become the target's to see (a zombie tracee is its
            // tracer's alone until collected).
            wait_exit(self.clone, Instant::now() + Duration::from_secs(5));
            tracer::clone_released();
            failpoint::hit("free:killed");
            one_thread::with_stopped_thread(self.target, tids, |inj, _| self.inject_wait4(inj))
        });
        run.ok().map(|_| self.outcome())
    }
}

/// What an attempt at reaping a clone's zombie in its target achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaped {
    /// Nothing is left to reap.
    Gone,
    /// The target could not be stopped now (another capture or tracer, a thread in
    /// uninterruptible sleep): try again later.
    Later,
    /// It cannot be done by this engine (every usable thread runs under a seccomp filter
    /// it may not suspend): the zombie stays, recorded in the ledger, until the target
    /// exits or a `pss cleanup` with the right privileges reaps it.
    Never(String),
}

/// Whether a thread of `pid` is blocked waiting for any child with `__WALL` or `__WCLONE`
/// (`wait4` or `waitid`): it would collect a clone's zombie before our `wait4` does.
pub fn waits_for_clones(pid: i32) -> bool {
    let wants_clones = |options: u64| options & (libc::__WALL | libc::__WCLONE) as u64 != 0;
    let Ok(tids) = procfs::list_numeric(pid, &format!("/proc/{pid}/task")) else {
        return false;
    };
    tids.into_iter().any(
        |tid| match procfs::syscall::read(pid, tid).and_then(|s| s.call) {
            Some((nr, a)) if nr == libc::SYS_wait4 => wants_clones(a[2]),
            Some((nr, a)) if nr == libc::SYS_waitid => wants_clones(a[3]),
            _ => false,
        },
    )
}

/// Collects the exit of a clone killed through its pidfd (on the tracer thread that traces
/// it), then makes one attempt at reaping its zombie in the target — with every thread of
/// the target stopped first if one of them waits for clones ([`waits_for_clones`]).
pub fn free(zombie: Zombie, target_exited: bool) -> Reaped {
    if !target_exited && waits_for_clones(zombie.target) {
        if let Some(reaped) = zombie.collect_and_reap_hidden() {
            return reaped;
        }
    }
    wait_exit(zombie.clone, Instant::now() + Duration::from_secs(5));
    tracer::clone_released();
    failpoint::hit("free:killed");
    if target_exited {
        Reaped::Gone
    } else {
        zombie.reap()
    }
}

/// Waits (until `deadline`) for the tracee `pid` to report its exit, collecting it.
fn wait_exit(pid: i32, deadline: Instant) {
    while let Ok(status) = ptrace::wait_report(pid, false, deadline) {
        if matches!(status, WaitStatus::Exited(_) | WaitStatus::Signaled(_)) {
            return;
        }
    }
}
