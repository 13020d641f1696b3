//! Threads read one at a time ([`ThreadReading::OneByOne`](pss_types::ThreadReading)), for
//! the shortest stall any thread sees:
//!
//! - a thread blocked in a system call is not stopped at all. Its stack pointer,
//!   instruction pointer and the call come from `/proc/PID/task/TID/syscall`; its stack is
//!   copied while it stays blocked. That it stayed blocked is checked: the `syscall` file
//!   reads the same before and after the copy, and its context-switch counts did not move
//!   (a thread that woke and blocked again, even in the same call, has switched). A thread
//!   that moved is stopped and read the other way.
//! - any other thread is stopped alone (seized, interrupted, read, let go), only for its
//!   own registers and stack copy; no other thread is stopped meanwhile, and nothing is
//!   unwound while it is.
//!
//! Copies land in a buffer faulted in before any thread is touched. Each thread is of its
//! own instant. Runs on the tracer thread.

use std::time::{Duration, Instant, SystemTime};

use pss_sys::mem::ProcMem;
use pss_sys::procfs;
use pss_sys::procfs::syscall::{self, TaskSyscall};
use pss_trace::arch;
use pss_trace::failpoint;
use pss_trace::ptrace::{self, Tid, WaitStatus};
use pss_trace::tracer;
use pss_types::error::{Error, Result};
use pss_types::flags::ContextFlags;
use pss_types::records::{
    AuxiliaryPage, AuxiliaryPageKind, GeneralRegisters, PhaseCost, ThreadContext, ThreadRead,
    Warning,
};

use super::cost;
use super::freeze::{read_thread, stack_len, FreezeCosts, Frozen, FrozenThread};
use pss_sys::clock::Stopwatch;

const PAGE: usize = 4096;

/// What to read, one thread at a time.
#[derive(Debug)]
pub struct OneByOneRequest {
    /// The target.
    pub pid: i32,
    /// Tasks not to read (a zombie leader).
    pub skip: Vec<Tid>,
    /// Only these threads, each stopped alone (a walk that needs their other registers);
    /// empty: every thread, blocked ones not stopped.
    pub only: Vec<Tid>,
    /// Register groups to read into a full context, if contexts were asked for.
    pub context: Option<(ContextFlags, bool)>,
    /// How long one thread may take to stop.
    pub timeout: Duration,
    /// Copy each thread's stack (at most this many bytes from its stack pointer up).
    pub aux_stack_limit: Option<usize>,
    /// The target's mappings as `(start, end)`, sorted: a stack copy stops where the mapping
    /// holding the stack pointer ends.
    pub mappings: Vec<(u64, u64)>,
}

/// Reads every thread of `req.pid` (or those of `req.only`) one at a time.
pub fn read_threads(req: OneByOneRequest) -> Result<Frozen> {
    let whole = Stopwatch::start();
    let tids: Vec<Tid> = if req.only.is_empty() {
        procfs::list_numeric(req.pid, &format!("/proc/{}/task", req.pid))
            .map_err(|_| Error::ProcessExited { pid: req.pid })?
    } else {
        req.only.clone()
    };
    let mem = ProcMem::open(req.pid)
        .map_err(|e| Error::from_proc_io(req.pid, format!("/proc/{}/mem", req.pid), e))?;
    let mut reader = Reader {
        req: &req,
        mem,
        // Faulted in now (every byte written), before any thread is touched.
        scratch: vec![1u8; req.aux_stack_limit.unwrap_or(0).max(PAGE)],
        tls: vec![1u8; PAGE],
        regs: arch::ContextReader::default(),
        out: Read::default(),
    };
    for tid in tids.into_iter().filter(|t| !req.skip.contains(t)) {
        reader.read(tid)?;
    }
    let mut out = reader.out;
    out.threads.sort_by_key(|t| t.tid);
    let mut costs = FreezeCosts {
        aux_pages: out.copying,
        ..FreezeCosts::default()
    };
    costs.threads = cost(&whole) - costs.aux_pages;
    Ok(Frozen {
        threads: out.threads,
        pause: out.longest_stop,
        rounds: 1,
        warnings: out.warnings,
        clone: None,
        aux_pages: req.aux_stack_limit.map(|_| out.pages),
        status_at_pause: None,
        costs,
    })
}

/// What has been read so far.
#[derive(Default)]
struct Read {
    threads: Vec<FrozenThread>,
    pages: Vec<AuxiliaryPage>,
    warnings: Vec<Warning>,
    /// The longest any one thread was stopped.
    longest_stop: Duration,
    /// Time spent copying stacks.
    copying: PhaseCost,
}

/// The reading in progress: the request, the target's memory, the buffers copies land in.
struct Reader<'r> {
    req: &'r OneByOneRequest,
    mem: ProcMem,
    scratch: Vec<u8>,
    tls: Vec<u8>,
    regs: arch::ContextReader,
    out: Read,
}

impl Reader<'_> {
    /// Reads thread `tid`: while blocked if it is, else stopped alone.
    fn read(&mut self, tid: Tid) -> Result<()> {
        if self.req.only.is_empty() && self.read_blocked(tid) {
            return Ok(());
        }
        self.read_alone(tid)
    }

    /// Reads `tid` without stopping it, if it is blocked in a system call and stays so
    /// while its stack is copied. Whether it was read.
    fn read_blocked(&mut self, tid: Tid) -> bool {
        let pid = self.req.pid;
        let Some(before) = procfs::status_at(&format!("/proc/{pid}/task/{tid}/status")) else {
            return false;
        };
        let Some(
            call @ TaskSyscall {
                call: Some((nr, args)),
                sp,
                pc,
            },
        ) = syscall::read(pid, tid)
        else {
            return false;
        };
        let sw = Stopwatch::start();
        let copied = self.copy_stack(sp);
        self.out.copying = self.out.copying + cost(&sw);
        if let Some(ms) = failpoint::test_setting("PSS_ENGINE_TEST_BLOCKED_COPY_MS") {
            // Tests: time for the thread to wake during its copy.
            std::thread::sleep(Duration::from_millis(ms));
        }
        // In this order: a thread that woke during the copy either is not blocked in the
        // same call now, or blocked again before now — and then has switched since `before`.
        if syscall::read(pid, tid) != Some(call) {
            return false;
        }
        let after = procfs::status_at(&format!("/proc/{pid}/task/{tid}/status"));
        if after.map_or(true, |a| a.switches() != before.switches()) {
            return false;
        }
        let general = GeneralRegisters::blocked_in_syscall(nr as u64, args, sp, pc);
        let context = self.req.context.map(|(flags, _)| ThreadContext {
            flags: flags & (ContextFlags::CONTROL | ContextFlags::INTEGER),
            general,
            fp: None,
            xstate: None,
            debug: None,
        });
        let captured = SystemTime::now();
        self.keep_stack(tid, copied, captured);
        self.out.threads.push(FrozenThread {
            tid,
            general: Some(general),
            sigmask: context.as_ref().map(|_| before.sig_blk),
            context,
            group_stopped: false,
            capture_time: captured,
            read: ThreadRead::Blocked,
        });
        true
    }

    /// Stops `tid` alone, reads its registers and copies its stack and TLS page, and lets
    /// it go.
    fn read_alone(&mut self, tid: Tid) -> Result<()> {
        let pid = self.req.pid;
        let Some(stop) = Alone::stop(pid, tid, self.req.timeout)? else {
            self.out.warnings.push(Warning::thread(
                tid,
                "exited during the capture; not included",
            ));
            return Ok(());
        };
        let read = read_thread(&mut self.regs, tid, self.req.context);
        let (copied, tls) = match &read {
            Ok((general, _, _)) => {
                let sw = Stopwatch::start();
                let copied = self.copy_stack(general.stack_pointer());
                let tls = self.copy_tls(general.tls_base());
                self.out.copying = self.out.copying + cost(&sw);
                (copied, tls)
            }
            Err(_) => (None, None),
        };
        let (stopped_for, group) = stop.release(pid);
        self.out.longest_stop = self.out.longest_stop.max(stopped_for);
        let captured = SystemTime::now();
        match read {
            Ok((general, context, sigmask)) => {
                self.keep_stack(tid, copied, captured);
                if let Some(address) = tls {
                    self.out.pages.push(AuxiliaryPage {
                        address,
                        thread_id: tid as u32,
                        kind: AuxiliaryPageKind::Tls,
                        capture_time: captured,
                        contents: self.tls.clone(),
                    });
                }
                self.out.threads.push(FrozenThread {
                    tid,
                    general: Some(general),
                    context,
                    sigmask,
                    group_stopped: group,
                    capture_time: captured,
                    read: ThreadRead::Alone,
                });
            }
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => self
                .out
                .warnings
                .push(Warning::thread(tid, "killed while stopped; not included")),
            Err(e) => self.out.warnings.push(Warning::thread(
                tid,
                format!("registers could not be read: {e}"),
            )),
        }
        Ok(())
    }

    /// Copies the stack from the page of `sp` up into the scratch buffer: its address and
    /// how many bytes were read (whole pages where the range runs into unreadable memory).
    fn copy_stack(&mut self, sp: u64) -> Option<(u64, usize)> {
        let limit = self.req.aux_stack_limit?;
        let address = sp & !(PAGE as u64 - 1);
        let len = stack_len(&self.req.mappings, sp, limit).max(PAGE);
        let n = copy_range(self.req.pid, &self.mem, address, &mut self.scratch[..len]);
        (n > 0).then_some((address, n))
    }

    /// Copies the TLS page at `base` (its page) into the TLS buffer: its address.
    fn copy_tls(&mut self, base: u64) -> Option<u64> {
        self.req.aux_stack_limit?;
        let address = base & !(PAGE as u64 - 1);
        if address == 0 {
            return None;
        }
        let n = copy_range(self.req.pid, &self.mem, address, &mut self.tls);
        (n == PAGE).then_some(address)
    }

    /// Keeps the stack copy in the scratch buffer as `tid`'s auxiliary page.
    fn keep_stack(&mut self, tid: Tid, copied: Option<(u64, usize)>, captured: SystemTime) {
        if let Some((address, n)) = copied {
            self.out.pages.push(AuxiliaryPage {
                address,
                thread_id: tid as u32,
                kind: AuxiliaryPageKind::Stack,
                capture_time: captured,
                contents: self.scratch[..n].to_vec(),
            });
        }
    }
}

/// Copies `buf.len()` bytes at `address` of `pid`: all of them, or as many whole pages as
/// could be read (a range running into unmapped memory). How many.
fn copy_range(pid: i32, mem: &ProcMem, address: u64, buf: &mut [u8]) -> usize {
    let len = buf.len();
    let mut ranges = [(address, &mut *buf)];
    if pss_sys::mem::read_ranges(pid, &mut ranges)[0] {
        return len;
    }
    mem.read_at(address, buf).unwrap_or(0) & !(PAGE - 1)
}

/// One thread stopped alone. Dropping it lets the thread go, on every path.
struct Alone {
    tid: Tid,
    since: Instant,
    group: bool,
    released: bool,
}

impl Alone {
    /// Seizes and interrupts `tid` of `pid` and waits up to `timeout` for its stop;
    /// `None` if it exited first.
    fn stop(pid: i32, tid: Tid, timeout: Duration) -> Result<Option<Alone>> {
        if let Err(e) = ptrace::seize(tid, 0) {
            return match e.raw_os_error() {
                Some(libc::ESRCH) => Ok(None),
                _ if !tid_alive(pid, tid) => Ok(None),
                _ => Err(super::one_thread::seize_error(pid, tid, e)),
            };
        }
        let since = Instant::now();
        let _ = ptrace::interrupt(tid);
        let deadline = since + timeout;
        let mut stop = Alone {
            tid,
            since,
            group: false,
            released: false,
        };
        loop {
            match ptrace::wait_report(tid, tid == pid, deadline) {
                Ok(WaitStatus::Stopped { sig, event }) if event == ptrace::EVENT_STOP => {
                    stop.group = ptrace::is_stop_signal(sig);
                    return Ok(Some(stop));
                }
                Ok(WaitStatus::Stopped { sig, .. }) => {
                    // A genuine signal came first: deliver it and ask again.
                    let _ = ptrace::cont(tid, sig);
                    let _ = ptrace::interrupt(tid);
                }
                Ok(WaitStatus::LeaderExited) => {
                    stop.released = true;
                    tracer::leader_exited(tid);
                    return Err(Error::ProcessExited { pid });
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    stop.released = true;
                    tracer::release_later([tid]);
                    return Err(Error::Timeout {
                        pid,
                        tid,
                        timeout_ms: timeout.as_millis() as u64,
                    });
                }
                Ok(_) | Err(_) => {
                    // Exited: its report was collected, nothing is left to let go.
                    stop.released = true;
                    return Ok(None);
                }
            }
        }
    }

    /// Lets the thread go: how long it was stopped, and whether its stop was a group stop
    /// (it is back in it once this returns).
    fn release(mut self, pid: i32) -> (Duration, bool) {
        self.released = true;
        let detached = ptrace::detach(self.tid, 0).is_ok();
        let stopped_for = self.since.elapsed();
        if !detached {
            tracer::release_later([self.tid]);
        } else if self.group {
            super::stop::wait_back_in_group_stop(pid, &[self.tid], &mut Vec::new());
        }
        (stopped_for, self.group)
    }
}

impl Drop for Alone {
    fn drop(&mut self) {
        if !self.released && ptrace::detach(self.tid, 0).is_err() {
            tracer::release_later([self.tid]);
        }
    }
}

fn tid_alive(pid: i32, tid: Tid) -> bool {
    std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists()
}
