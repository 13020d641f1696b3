//! The pause: stop every thread of the target together, read registers, let them go.
//!
//! Runs on the tracer thread. Only O(threads) work happens between the first
//! `PTRACE_INTERRUPT` and the last `PTRACE_DETACH`: listing `/proc/PID/task`, seizing,
//! collecting stop reports, reading register sets. Everything else is read after the target
//! runs again.
//!
//! Safety of the target: every seized thread is owned by [`Seized`], whose `Drop` detaches it
//! on every path (errors and panics included; [`super::stop`]).

use std::io;
use std::time::{Duration, SystemTime};

use pss_sys::mem::ProcMem;
use pss_sys::procfs;
use pss_trace::arch;
use pss_trace::failpoint;
use pss_trace::ptrace::{self, Tid};
use pss_types::error::{Error, Result};
use pss_types::flags::ContextFlags;
use pss_types::records::{
    AuxiliaryPage, AuxiliaryPageKind, GeneralRegisters, PhaseCost, ThreadContext, ThreadRead,
    Warning,
};

use super::cost;
use super::stop::{stop_all, wait_back_in_group_stop};
use super::va_clone::{self, CloneRequest, MadeClone};
use pss_sys::clock::Stopwatch;

/// What to stop and what to read while stopped.
#[derive(Debug)]
pub struct FreezeRequest {
    /// The target.
    pub pid: i32,
    /// Tasks not to seize (a zombie leader never stops).
    pub skip: Vec<Tid>,
    /// Register groups to read into a full context, if contexts were asked for.
    pub context: Option<(ContextFlags, bool)>,
    /// How long all threads together may take to stop.
    pub timeout: Duration,
    /// How many times `/proc/PID/task` is re-listed for newcomers.
    pub max_rounds: u32,
    /// Make a VA clone before letting the threads go.
    pub clone: Option<CloneRequest>,
    /// Copy each thread's stack (at most this many bytes from its stack pointer up) and TLS
    /// page.
    pub aux_stack_limit: Option<usize>,
    /// The target's mappings as `(start, end)`, sorted, read before the pause: a stack copy
    /// stops where the mapping holding the stack pointer ends.
    pub mappings: Vec<(u64, u64)>,
}

/// One stopped thread and what was read from it.
#[derive(Debug, Clone)]
pub struct FrozenThread {
    /// The tid.
    pub tid: Tid,
    /// The general registers (always read: they give the TLS base and the syscall).
    pub general: Option<GeneralRegisters>,
    /// The full context, when asked for.
    pub context: Option<ThreadContext>,
    /// The blocked-signal mask.
    pub sigmask: Option<u64>,
    /// Whether it reported a group-stop (the process was stopped by a signal).
    pub group_stopped: bool,
    /// When its registers were read.
    pub capture_time: SystemTime,
    /// How: stopped with the others, alone, or read while blocked.
    pub read: ThreadRead,
}

/// The result of a pause.
#[derive(Debug)]
pub struct Frozen {
    /// The threads that were stopped, ascending by tid.
    pub threads: Vec<FrozenThread>,
    /// From the first interrupt to the last detach.
    pub pause: Duration,
    /// Listing rounds until the thread set was stable.
    pub rounds: u32,
    /// Threads that vanished or could not be read.
    pub warnings: Vec<Warning>,
    /// The VA clone, if one was asked for.
    pub clone: Option<MadeClone>,
    /// Stack and TLS copies, if asked for.
    pub aux_pages: Option<Vec<AuxiliaryPage>>,
    /// The target's `/proc/PID/status` as it read while its threads were stopped (with a
    /// clone: the memory counters at the capture instant come from it), and the bytes of
    /// mappings of ours it counts (the clone's trampoline, mapped and resident).
    pub status_at_pause: Option<(Vec<u8>, u64)>,
    /// What each part of the pause cost.
    pub costs: FreezeCosts,
}

/// What the parts of a pause cost (the performance counters).
#[derive(Debug, Clone, Copy, Default)]
pub struct FreezeCosts {
    /// Stopping the threads, reading their registers, and letting them go.
    pub threads: PhaseCost,
    /// Copying the auxiliary pages.
    pub aux_pages: PhaseCost,
    /// Making the clone (the ranges copied for it, the trampoline, the injected `clone`).
    pub va_clone: PhaseCost,
}

/// Stops every thread of `req.pid`, reads what was asked, and lets them go.
pub fn freeze(req: FreezeRequest) -> Result<Frozen> {
    // The whole pause's work: what the auxiliary pages and the clone do not take is thread
    // work (stopping, reading, and letting go), so that no instant of the pause is in no
    // phase.
    let whole = Stopwatch::start();
    let mut costs = FreezeCosts::default();
    // Allocated now: the pause reads into it.
    let mut status_buf = Vec::with_capacity(if req.clone.is_some() { 8192 } else { 0 });
    let mut warnings = Vec::new();
    let (mut set, rounds) = stop_all(
        req.pid,
        &req.skip,
        req.timeout,
        req.max_rounds,
        &mut warnings,
    )?;
    failpoint::hit("seized");
    let stopped = set.stopped();
    let mut threads = Vec::with_capacity(stopped.len());
    let mut reader = arch::ContextReader::default();
    for (tid, group_stopped) in stopped {
        match read_thread(&mut reader, tid, req.context) {
            Ok((general, context, sigmask)) => threads.push(FrozenThread {
                tid,
                general: Some(general),
                context,
                sigmask,
                group_stopped,
                capture_time: SystemTime::now(),
                read: ThreadRead::Together,
            }),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                warnings.push(Warning::thread(tid, "killed while stopped; not included"))
            }
            Err(e) => {
                warnings.push(Warning::thread(
                    tid,
                    format!("registers could not be read: {e}"),
                ));
                threads.push(FrozenThread {
                    tid,
                    general: None,
                    context: None,
                    sigmask: None,
                    group_stopped,
                    capture_time: SystemTime::now(),
                    read: ThreadRead::Together,
                });
            }
        }
    }
    // The memory counters at the capture instant (the clone's own differ: a fork maps no
    // file page until it is touched). One read of a small file, O(1) in the kernel.
    let status_at_pause = req.clone.is_some().then(|| {
        let path = format!("/proc/{}/status", req.pid);
        procfs::read_at(&rustix::fs::CWD, &path, &mut status_buf).map(|()| status_buf)
    });
    // One /proc/PID/mem for everything copied from the stopped target (writable for the
    // clone's trampoline).
    let mem = (req.clone.is_some() || req.aux_stack_limit.is_some()).then(|| {
        let path = format!("/proc/{}/mem", req.pid);
        let opened = match req.clone {
            Some(_) => ProcMem::open_rw(req.pid),
            None => ProcMem::open(req.pid),
        };
        opened.map_err(|e| Error::from_proc_io(req.pid, path, e))
    });
    let sw = Stopwatch::start();
    let aux_pages = req.aux_stack_limit.map(|limit| match &mem {
        Some(Ok(mem)) => copy_aux_pages(req.pid, mem, &threads, limit, &req.mappings),
        _ => Vec::new(),
    });
    costs.aux_pages = cost(&sw);
    // The clone last: it takes the longest (the kernel copies the page tables).
    let sw = Stopwatch::start();
    let ours = req
        .clone
        .as_ref()
        .and_then(|c| c.trampoline.as_ref().ok())
        .map_or(0, |t| t.len);
    let clone = match (req.clone, mem) {
        (Some(c), Some(Ok(mem))) => {
            let tids: Vec<Tid> = threads.iter().map(|t| t.tid).collect();
            Some(va_clone::make(req.pid, &tids, c, &mem))
        }
        (Some(_), Some(Err(e))) => Some(Err(e)),
        _ => None,
    };
    costs.va_clone = cost(&sw);
    let first = set.first_interrupt;
    let group_stopped: Vec<Tid> = threads
        .iter()
        .filter(|t| t.group_stopped)
        .map(|t| t.tid)
        .collect();
    let (last, all_released) = set.release();
    costs.threads = cost(&whole) - costs.aux_pages - costs.va_clone;
    set.clean = all_released && set.first_pending().is_none();
    wait_back_in_group_stop(req.pid, &group_stopped, &mut warnings);
    let clone = clone.transpose()?;
    Ok(Frozen {
        threads,
        pause: first.map_or(Duration::ZERO, |f| last.duration_since(f)),
        rounds,
        warnings,
        clone,
        aux_pages,
        status_at_pause: status_at_pause
            .and_then(std::io::Result::ok)
            .map(|b| (b, ours)),
        costs,
    })
}

/// Copies, from the stopped target, each thread's stack from the page of its stack pointer
/// upward (at most `limit` bytes, less where its mapping ends) and the page at its TLS base:
/// all in as few `process_vm_readv` calls as the kernel allows (a thousand threads cost a
/// few calls, not two thousand `pread`s), with a `pread` of what it can for a range that
/// could not be read whole.
fn copy_aux_pages(
    pid: i32,
    mem: &ProcMem,
    threads: &[FrozenThread],
    limit: usize,
    mappings: &[(u64, u64)],
) -> Vec<AuxiliaryPage> {
    const PAGE: u64 = 4096;
    let mut wanted: Vec<(u32, u64, AuxiliaryPageKind, Vec<u8>)> = Vec::new();
    for t in threads {
        let Some(g) = &t.general else { continue };
        let sp = g.stack_pointer();
        let stack_len = stack_len(mappings, sp, limit);
        let tls = g.tls_base() & !(PAGE - 1);
        for (address, len, kind) in [
            (sp & !(PAGE - 1), stack_len, AuxiliaryPageKind::Stack),
            (tls, PAGE as usize, AuxiliaryPageKind::Tls),
        ] {
            if address != 0 {
                wanted.push((
                    t.tid as u32,
                    address,
                    kind,
                    vec![0u8; len.max(PAGE as usize)],
                ));
            }
        }
    }
    let mut ranges: Vec<(u64, &mut [u8])> = wanted
        .iter_mut()
        .map(|(_, a, _, b)| (*a, b.as_mut_slice()))
        .collect();
    let whole = pss_sys::mem::read_ranges(pid, &mut ranges);
    let captured = SystemTime::now();
    wanted
        .into_iter()
        .zip(whole)
        .filter_map(|((thread_id, address, kind, mut buf), whole)| {
            if !whole {
                // A short read stops at the end of the mapping: keep whole pages of what came.
                let n = mem.read_at(address, &mut buf).unwrap_or(0) & !(PAGE as usize - 1);
                buf.truncate(n);
            }
            (!buf.is_empty()).then_some(AuxiliaryPage {
                address,
                thread_id,
                kind,
                capture_time: captured,
                contents: buf,
            })
        })
        .collect()
}

/// A stopped thread's general registers, context and signal mask.
pub(super) type ThreadRegs = (GeneralRegisters, Option<ThreadContext>, Option<u64>);

/// How many bytes of a stack to copy from the page of `sp` up: at most `limit`, less
/// where the mapping holding `sp` ends (`mappings`: `(start, end)`, sorted).
pub(super) fn stack_len(mappings: &[(u64, u64)], sp: u64, limit: usize) -> usize {
    const PAGE: u64 = 4096;
    let i = mappings.partition_point(|&(start, _)| start <= sp);
    match i.checked_sub(1).map(|i| mappings[i]) {
        Some((_, end)) if sp < end => limit.min((end - (sp & !(PAGE - 1))) as usize),
        _ => limit,
    }
}

/// Reads the registers of stopped thread `tid`: the general ones, and with `context` the
/// groups asked for and the signal mask.
pub(super) fn read_thread(
    reader: &mut arch::ContextReader,
    tid: Tid,
    context: Option<(ContextFlags, bool)>,
) -> io::Result<ThreadRegs> {
    Ok(match context {
        Some((flags, extended)) => {
            let ctx = reader.read(tid, flags, extended)?;
            (ctx.general, Some(ctx), ptrace::sigmask(tid).ok())
        }
        // Without contexts only what thread entries need: TLS base and syscall.
        None => (arch::read_general(tid)?, None, None),
    })
}
