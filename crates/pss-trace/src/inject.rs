//! Running one syscall inside a stopped tracee, at a `syscall` instruction that already
//! exists in it (the one an interrupted syscall returns to, or one in the vDSO). The target's
//! code is never written.
//!
//! [`Injection::begin`] saves the thread's registers and signal mask and blocks every signal;
//! [`Injection::syscall`] runs one syscall through its enter and exit stops
//! (`PTRACE_SYSCALL`, no SIGTRAP is ever raised); [`Injection::restore`] — or `Drop`, on
//! error and panic paths — puts the mask and then the registers back, with the
//! syscall-restart fix-up. All waits have a deadline.
//!
//! **Self-restoring** (x86_64, when the process's code has the two gadgets
//! [`super::gadgets`] finds, and the thread no shadow stack): before the mask is touched,
//! a signal frame giving back the thread's own state is written on its stack below the red
//! zone, and the thread is parked on a chain: its syscalls run at a `syscall; ret` with the
//! stack pointer on the frame, whose return slot holds a `rt_sigreturn`. With the engine
//! alive the `ret` never runs (the engine restores the thread at the syscall-exit stop). If
//! the engine dies at any instant — the kernel then lets the thread go — the thread finishes
//! the syscall, returns into `rt_sigreturn` and is back in its own registers, mask and FPU
//! state, its interrupted syscall restarting: the windows `docs/engine.md` lists under "What
//! remains" are closed for every injection made this way.

use std::io;
use std::time::Instant;

use super::arch::{self, RawRegs, SYSCALL_INSN};
use super::failpoint;
use super::gadgets;
use super::own_stack::OwnStack;
use super::ptrace::{self, Tid, WaitStatus};
use pss_sys::mem::ProcMem;
use pss_sys::procfs::maps;

/// Where to run an injected syscall: the instruction a thread stopped in a syscall returns
/// to (verified through `mem`, the process's `/proc/PID/mem`), else `vdso_site`.
pub fn find_site(mem: &ProcMem, regs: &RawRegs, vdso_site: Option<u64>) -> Option<u64> {
    if let Some(site) = arch::syscall_return_site(regs) {
        let mut insn = [0u8; SYSCALL_INSN.len()];
        if mem.read_exact(site, &mut insn) && insn == SYSCALL_INSN {
            return Some(site);
        }
    }
    vdso_site
}

/// The address of a `syscall` instruction in the vDSO of `pid` (read before the pause).
#[cfg(all(test, target_arch = "x86_64"))]
pub fn vdso_site(pid: i32) -> Option<u64> {
    let mut dir = pss_sys::procfs::ProcDir::open_mm(pid).ok()?;
    let buf = dir.read("maps").ok()?.to_vec();
    vdso_site_from_maps(pid, &buf)
}

/// [`vdso_site`] for a caller that has read the process's `maps`.
pub fn vdso_site_from_maps(pid: i32, maps_buf: &[u8]) -> Option<u64> {
    let vdso = maps::parse(maps_buf).find(|l| l.pathname == b"[vdso]")?;
    vdso_site_in(pid, vdso.start, vdso.end)
}

/// [`vdso_site`] for a caller that already knows where the vDSO is mapped.
pub fn vdso_site_in(pid: i32, start: u64, end: u64) -> Option<u64> {
    let mut image = vec![0u8; usize::try_from(end - start).ok()?];
    if !ProcMem::open(pid).ok()?.read_exact(start, &mut image) {
        return None;
    }
    image
        .windows(SYSCALL_INSN.len())
        .position(|w| w == SYSCALL_INSN)
        .map(|off| start + off as u64)
}

/// What makes an injection self-restoring: the process (its pid and writable
/// `/proc/PID/mem`) and the part of the thread's own stack its signal frame may go on
/// ([`super::own_stack`]: never the mapping that merely holds the stack pointer).
pub struct SelfRestore<'a> {
    /// The process.
    pub pid: i32,
    /// Its `/proc/PID/mem`, writable.
    pub mem: &'a ProcMem,
    /// The thread's own stack.
    pub stack: OwnStack,
}

/// What one injected syscall did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The return value (`-errno` on failure).
    pub ret: i64,
    /// ptrace events reported on the way (`PTRACE_EVENT_CLONE` with the new pid, …).
    pub events: Vec<(u32, u64)>,
}

/// Where a self-restoring injection parks its thread: the `syscall; ret` its syscalls run
/// at, and the stack pointer (the signal frame's return slot) they run with.
#[derive(Debug, Clone, Copy)]
struct Chain {
    gadget: u64,
    sp: u64,
    /// The `rt_sigreturn` sequence the code after the gadget's syscall reaches (from the
    /// frame on x86_64, from the link register on aarch64).
    restorer: u64,
}

/// A thread holding injected state. Dropping it restores the thread.
pub struct Injection {
    tid: Tid,
    saved: RawRegs,
    saved_mask: u64,
    site: u64,
    chain: Option<Chain>,
    /// The bytes of the thread's stack the chain's frame covers, put back after the
    /// registers, and the `/proc/PID/mem` to put them back through.
    covered: Option<(u64, Vec<u8>, ProcMem)>,
    restore_options: u32,
    restored: bool,
    /// The failpoint name prefix of the next syscall (`NAME:armed`, `NAME:entered`,
    /// `NAME:exited`: [`super::failpoint`]).
    failpoints: Option<&'static str>,
    /// The failpoint name of the restore (`NAME:unmasked`, between mask and registers).
    restore_point: Option<&'static str>,
}

impl Injection {
    /// Prepares stopped tracee `tid` for injected syscalls at `site`: saves registers and
    /// mask, blocks all signals, turns on `TRACESYSGOOD` (plus `extra_options`, e.g.
    /// `SUSPEND_SECCOMP`). `restore_options` are the ptrace options to put back. With
    /// `process` (never for a thread with a user shadow stack, whose `ret` and
    /// `rt_sigreturn` would be checked against it — the caller knows from the thread's
    /// status), the injection is made self-restoring where it can be (the module's doc).
    pub fn begin(
        tid: Tid,
        site: u64,
        extra_options: u32,
        restore_options: u32,
        process: Option<SelfRestore<'_>>,
    ) -> io::Result<Injection> {
        let inj = Self::prepare(tid, site, extra_options, restore_options, process)?;
        inj.block_signals()?;
        Ok(inj)
    }

    /// [`Injection::begin`] without blocking the signals: for a caller that first parks the
    /// thread somewhere that gives its state back ([`Injection::park_at`]), then calls
    /// [`Injection::block_signals`].
    pub fn prepare(
        tid: Tid,
        site: u64,
        extra_options: u32,
        restore_options: u32,
        process: Option<SelfRestore<'_>>,
    ) -> io::Result<Injection> {
        let saved = arch::get_raw(tid)?;
        let saved_mask = ptrace::sigmask(tid)?;
        ptrace::set_options(
            tid,
            restore_options | ptrace::OPT_TRACESYSGOOD | extra_options,
        )?;
        let mut inj = Injection {
            tid,
            saved,
            saved_mask,
            site,
            chain: None,
            covered: None,
            restore_options,
            restored: false,
            failpoints: None,
            restore_point: None,
        };
        if let Some(process) = process {
            inj.chain = inj.park_on_chain(&process);
        }
        Ok(inj)
    }

    /// Blocks every signal in the thread (they stay pending until the restore).
    pub fn block_signals(&self) -> io::Result<()> {
        ptrace::set_sigmask(self.tid, !0)
    }

    /// Points the thread at `at`, code that gives the thread its own state back if it runs
    /// (a trampoline's return path), until the next syscall.
    pub fn park_at(&self, at: u64) -> io::Result<()> {
        let mut parked = self.saved;
        arch::prepare_syscall(&mut parked, at, libc::SYS_getpid as u64, [0; 6]);
        arch::set_raw(self.tid, &parked)
    }

    /// Writes the thread's signal frame on its own stack (saving the bytes it covers) and
    /// parks it on the chain (a harmless `getpid` armed), if the process and thread allow;
    /// `None` leaves the thread and its stack as they were.
    fn park_on_chain(&mut self, p: &SelfRestore<'_>) -> Option<Chain> {
        let g = gadgets::find(p.pid, p.mem)?;
        let (regs, mask) = self.restored_state();
        let (at, frame) = arch::restore_frame(self.tid, &regs, mask, g.restorer).ok()??;
        if !p.stack.holds(at, frame.len() as u64) {
            return None;
        }
        let mut before = vec![0u8; frame.len()];
        if !p.mem.read_exact(at, &mut before) {
            return None;
        }
        let put_back = p.mem.try_clone().ok()?;
        p.mem.write_exact(at, &frame).ok()?;
        self.covered = Some((at, before, put_back));
        let chain = Chain {
            gadget: g.syscall_ret,
            sp: at,
            restorer: g.restorer,
        };
        let mut parked = self.saved;
        arch::prepare_syscall(&mut parked, chain.gadget, libc::SYS_getpid as u64, [0; 6]);
        arch::set_stack_pointer(&mut parked, chain.sp);
        arch::set_chain_return(&mut parked, chain.restorer);
        if arch::set_raw(self.tid, &parked).is_err() {
            self.put_back_covered();
            return None;
        }
        Some(chain)
    }

    /// Puts back the stack bytes the chain's frame covered (once the thread no longer
    /// needs the frame). Below the stack pointer, so a failure harms nothing.
    fn put_back_covered(&mut self) {
        if let Some((at, bytes, mem)) = self.covered.take() {
            let _ = mem.write_exact(at, &bytes);
        }
    }

    /// Whether the injection is self-restoring (the module's doc).
    #[cfg(all(test, target_arch = "x86_64"))]
    pub fn self_restoring(&self) -> bool {
        self.chain.is_some()
    }

    /// Runs syscall `nr` with `args`; `deadline` bounds every wait.
    pub fn syscall(&mut self, nr: u64, args: [u64; 6], deadline: Instant) -> io::Result<Outcome> {
        self.syscall_with(nr, args, deadline, |_| {})
    }

    /// [`Injection::syscall`], with the prepared registers changed by `adjust` first (to
    /// run at another instruction, on another stack).
    pub fn syscall_with(
        &mut self,
        nr: u64,
        args: [u64; 6],
        deadline: Instant,
        adjust: impl FnOnce(&mut RawRegs),
    ) -> io::Result<Outcome> {
        let mut regs = self.saved;
        match self.chain {
            Some(c) => {
                arch::prepare_syscall(&mut regs, c.gadget, nr, args);
                arch::set_stack_pointer(&mut regs, c.sp);
                arch::set_chain_return(&mut regs, c.restorer);
            }
            None => arch::prepare_syscall(&mut regs, self.site, nr, args),
        }
        adjust(&mut regs);
        let point = self.failpoints.take();
        let hit = |stage: &str| {
            if let Some(p) = point {
                failpoint::hit(&format!("{p}:{stage}"));
            }
        };
        arch::set_raw(self.tid, &regs)?;
        hit("armed");
        ptrace::syscall(self.tid, 0)?;
        self.wait_syscall_stop(deadline, &mut Vec::new())?;
        hit("entered");
        ptrace::syscall(self.tid, 0)?;
        let mut events = Vec::new();
        self.wait_syscall_stop(deadline, &mut events)?;
        hit("exited");
        let regs = arch::get_raw(self.tid)?;
        Ok(Outcome {
            ret: arch::syscall_result(&regs),
            events,
        })
    }

    /// Waits for the next syscall stop, stepping over (and recording) event stops.
    fn wait_syscall_stop(&self, deadline: Instant, events: &mut Vec<(u32, u64)>) -> io::Result<()> {
        loop {
            // Peek first: the injected thread may be a leader whose process is exiting, and
            // its exit must not be consumed here (it may be our own caller's child).
            match ptrace::wait_report(self.tid, true, deadline)? {
                WaitStatus::LeaderExited => {
                    super::tracer::leader_exited(self.tid);
                    return Err(io::Error::other(format!(
                        "thread {} (its process's leader) exited during an injected syscall",
                        self.tid
                    )));
                }
                WaitStatus::Stopped {
                    sig: ptrace::SYSCALL_STOP,
                    event: 0,
                } => return Ok(()),
                WaitStatus::Stopped { event, .. } if event != 0 => {
                    events.push((event, ptrace::event_msg(self.tid).unwrap_or(0)));
                    ptrace::syscall(self.tid, 0)?;
                }
                WaitStatus::Stopped { sig, .. } => {
                    // Every signal is blocked; only a stop signal can arrive. Keep it pending
                    // for after the restore by not delivering it now.
                    let _ = sig;
                    ptrace::syscall(self.tid, 0)?;
                }
                other => {
                    return Err(io::Error::other(format!(
                        "thread {} ended during an injected syscall: {other:?}",
                        self.tid
                    )))
                }
            }
        }
    }

    /// The registers [`Injection::restore`] puts back (the saved ones after the
    /// syscall-restart fix-up), and the signal mask.
    pub fn restored_state(&self) -> (RawRegs, u64) {
        let mut regs = self.saved;
        arch::restart_fixup(&mut regs);
        (regs, self.saved_mask)
    }

    /// The thread injected into.
    pub fn tid(&self) -> Tid {
        self.tid
    }

    /// Names the next syscall for the engine's test failpoints ([`super::failpoint`]).
    pub fn failpoints(&mut self, name: &'static str) {
        self.failpoints = Some(name);
        self.restore_point = Some(name);
    }

    /// Gives up on a thread that is still inside an injected syscall (it did not come back
    /// before the deadline): nothing is restored by us. A self-restoring injection (the
    /// chain, or a trampoline's return path) gives the thread its own state back by itself
    /// when the syscall completes; its frame then stays below its stack pointer.
    pub fn abandon(mut self) {
        self.restored = true;
        self.covered = None;
    }

    /// Puts the thread back exactly as it was (interrupted syscalls resume).
    pub fn restore(mut self) -> io::Result<()> {
        self.restore_inner()
    }

    fn restore_inner(&mut self) -> io::Result<()> {
        if self.restored {
            return Ok(());
        }
        self.restored = true;
        let (regs, mask) = self.restored_state();
        // The mask first: a thread let go between the two is still on its chain, which
        // gives its registers back (a signal it takes meanwhile returns to the chain too).
        ptrace::set_sigmask(self.tid, mask)?;
        if let Some(p) = self.restore_point {
            failpoint::hit(&format!("{p}:unmasked"));
        }
        arch::set_raw(self.tid, &regs)?;
        self.put_back_covered();
        ptrace::set_options(self.tid, self.restore_options)
    }
}

impl Drop for Injection {
    fn drop(&mut self) {
        let _ = self.restore_inner();
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    use std::time::Duration;

    /// Seizes and stops the single-threaded process `pid` from this (test) thread.
    fn stop(pid: i32) {
        ptrace::seize(pid, ptrace::OPT_TRACECLONE).unwrap();
        ptrace::interrupt(pid).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        match ptrace::wait_report(pid, false, deadline).unwrap() {
            WaitStatus::Stopped {
                event: ptrace::EVENT_STOP,
                ..
            } => {}
            other => panic!("unexpected stop {other:?}"),
        }
    }

    /// Stops `pid` and begins an injection at the syscall instruction its interrupted syscall
    /// returns to (or, with `vdso`, one in its vDSO if there is none); self-restoring with
    /// `chain`.
    fn stop_and_begin(pid: i32, vdso: bool, chain: bool) -> (RawRegs, Injection) {
        stop(pid);
        let regs = arch::get_raw(pid).unwrap();
        let fallback = if vdso { vdso_site(pid) } else { None };
        let mem = ProcMem::open_rw(pid).unwrap();
        let site = find_site(&mem, &regs, fallback).expect("a syscall instruction to inject at");
        let maps = std::fs::read(format!("/proc/{pid}/maps")).unwrap();
        let stack = crate::own_stack::find(pid, pid, &regs, &maps, &mem).unwrap();
        let process = chain.then_some(SelfRestore {
            pid,
            mem: &mem,
            stack,
        });
        let inj = Injection::begin(pid, site, 0, ptrace::OPT_TRACECLONE, process).unwrap();
        assert_eq!(inj.self_restoring(), chain);
        (regs, inj)
    }

    /// `cat`, blocked reading its stdin.
    fn cat() -> std::process::Child {
        let cat = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wait_in_syscall(cat.id() as i32);
        cat
    }

    /// `cat` echoes what it is given and exits cleanly: its read() was resumed, not failed.
    fn still_echoes(mut cat: std::process::Child) {
        let mut stdin = cat.stdin.take().unwrap();
        stdin.write_all(b"after the injection\n").unwrap();
        drop(stdin);
        let mut out = String::new();
        cat.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "after the injection\n");
        assert!(cat.wait().unwrap().success());
    }

    /// The signals `pid` blocks (`SigBlk` of its status).
    fn blocked(pid: i32) -> String {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("SigBlk:")).unwrap();
        line.split_whitespace().nth(1).unwrap().to_string()
    }

    fn wait_in_syscall(pid: i32) {
        // Until the process sleeps in its syscall.
        for _ in 0..500 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            if stat
                .rsplit(')')
                .next()
                .unwrap()
                .trim_start()
                .starts_with('S')
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("{pid} never slept");
    }

    #[test]
    fn getpid_in_a_thread_blocked_in_read_which_then_resumes() {
        let cat = cat();
        let pid = cat.id() as i32;
        // No vDSO fallback: read() returns to a syscall instruction.
        let (regs, mut inj) = stop_and_begin(pid, false, false);
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            inj.syscall(libc::SYS_getpid as u64, [0; 6], deadline)
                .unwrap()
                .ret,
            pid as i64
        );
        assert_eq!(
            inj.syscall(libc::SYS_getppid as u64, [0; 6], deadline)
                .unwrap()
                .ret,
            std::process::id() as i64
        );
        inj.restore().unwrap();
        assert_eq!(
            arch::get_raw(pid).unwrap()[16],
            regs[16] - 2,
            "rip rewound onto the syscall"
        );
        ptrace::detach(pid, 0).unwrap();
        still_echoes(cat);
    }

    /// A self-restoring injection whose tracer lets the thread go without restoring it —
    /// parked, or after a syscall — as the kernel does when the tracer dies: the thread
    /// returns through its frame to its own mask and registers, its read() resumed.
    #[test]
    fn a_self_restoring_injection_let_go_gives_the_thread_back_its_state() {
        for after_a_syscall in [false, true] {
            let cat = cat();
            let pid = cat.id() as i32;
            let mask = blocked(pid);
            let (_, mut inj) = stop_and_begin(pid, false, true);
            assert_eq!(
                blocked(pid),
                "fffffffffffbfeff",
                "all blocked but KILL and STOP"
            );
            if after_a_syscall {
                let deadline = Instant::now() + Duration::from_secs(5);
                let out = inj.syscall(libc::SYS_getppid as u64, [0; 6], deadline);
                assert_eq!(out.unwrap().ret, std::process::id() as i64);
            }
            std::mem::forget(inj);
            ptrace::detach(pid, 0).unwrap();
            wait_in_syscall(pid);
            assert_eq!(blocked(pid), mask, "the mask came back");
            still_echoes(cat);
        }
    }

    /// A self-restoring injection writes its frame below the stack pointer and puts back
    /// what was there: after the restore, not one byte below the stack pointer differs.
    #[test]
    fn the_bytes_under_a_self_restoring_frame_are_put_back() {
        let cat = cat();
        let pid = cat.id() as i32;
        stop(pid);
        let regs = arch::get_raw(pid).unwrap();
        let sp = arch::stack_pointer(&regs);
        let mem = ProcMem::open_rw(pid).unwrap();
        let below = |mem: &ProcMem| {
            let mut b = vec![0u8; 16 << 10];
            assert!(mem.read_exact(sp - b.len() as u64, &mut b));
            b
        };
        let before = below(&mem);
        let site = find_site(&mem, &regs, None).unwrap();
        let maps = std::fs::read(format!("/proc/{pid}/maps")).unwrap();
        let stack = crate::own_stack::find(pid, pid, &regs, &maps, &mem).unwrap();
        let process = SelfRestore {
            pid,
            mem: &mem,
            stack,
        };
        let mut inj =
            Injection::begin(pid, site, 0, ptrace::OPT_TRACECLONE, Some(process)).unwrap();
        assert!(inj.self_restoring());
        assert_ne!(
            below(&mem),
            before,
            "the frame is on the stack while injected"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        inj.syscall(libc::SYS_getppid as u64, [0; 6], deadline)
            .unwrap();
        inj.restore().unwrap();
        assert_eq!(below(&mem), before, "put back");
        ptrace::detach(pid, 0).unwrap();
        still_echoes(cat);
    }

    #[test]
    fn a_relative_sleep_still_ends_on_time() {
        let started = Instant::now();
        let mut sleeper = Command::new("sleep").arg("1.5").spawn().unwrap();
        let pid = sleeper.id() as i32;
        wait_in_syscall(pid);
        std::thread::sleep(Duration::from_millis(300));
        let (_, mut inj) = stop_and_begin(pid, true, true);
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            inj.syscall(libc::SYS_getpid as u64, [0; 6], deadline)
                .unwrap()
                .ret,
            pid as i64
        );
        drop(inj); // restore by guard
        ptrace::detach(pid, 0).unwrap();
        assert!(sleeper.wait().unwrap().success());
        let took = started.elapsed();
        // restart_syscall resumed the remaining time: neither cut short nor restarted in full.
        assert!(
            took >= Duration::from_millis(1450) && took < Duration::from_millis(1750),
            "{took:?}"
        );
    }
}
