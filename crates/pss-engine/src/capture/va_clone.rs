//! The VA clone's making: the preflight (target running: what may not be cloned, what must
//! be copied, the vDSO's `syscall`) and the injected `clone` itself inside the pause, from
//! the trampoline, in a thread chosen for it. Its adoption is [`super::adopt`]'s, its end
//! [`super::reap`]'s.
//!
//! Everything here that touches ptrace runs on the tracer thread.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pss_sys::mem::{self, ProcMem};
use pss_sys::procfs::{self, smaps, ProcDir};
use pss_trace::inject::{self, Injection};
use pss_trace::ptrace::{self, Tid};
use pss_trace::{arch, failpoint, tracer};
use pss_types::error::{Error, Result};
use pss_types::records::{CopiedRange, CopyReason, ForkedAwayCopy, MemoryHole};

use super::injectable::{candidate, seccomp_option, Candidate, Usable};
use super::reap::discard;
use super::trampoline::Trampoline;

/// `anon_inode:[userfaultfd]`: a target holding one is refused (fork waits on its monitor).
const USERFAULTFD: &[u8] = b"anon_inode:[userfaultfd]";

/// How long the injected `clone` may take (the kernel copies page tables: ~25 ms per GiB).
const CLONE_DEADLINE: Duration = Duration::from_secs(30);

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
