//! The clone trampoline in the target (`linux::arch`'s page; `docs/engine.md`, "No
//! window"). It is mapped before the pause by an injected `mmap` in one thread (the others
//! keep running), filled inside the pause with the code and the signal frame of the thread
//! that makes the clone, and unmapped after the pause by an injected `munmap` — so the
//! pause pays for neither syscall. In the clone it is unmapped at adoption.

use std::time::{Duration, Instant};

use pss_sys::mem::ProcMem;
use pss_trace::arch;
use pss_trace::inject::Injection;
use pss_trace::tracer::{self, Role};

use super::one_thread::with_one_thread;

/// How long a thread of the target may take to stop for the `mmap` or `munmap`.
const STOP_DEADLINE: Duration = Duration::from_millis(500);

/// A trampoline page mapped in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trampoline {
    /// Its address (the same in the clone).
    pub base: u64,
    /// Its length.
    pub len: u64,
}

impl Trampoline {
    /// The mapping's length: room for the code, the frame and the largest XSAVE layout a
    /// signal frame holds.
    const LEN: u64 = 16 << 10;

    /// Maps an empty trampoline in process `pid` (before the pause), its pages already
    /// written once, so that filling it in the pause costs no page fault. `Err` says why
    /// there is none; the clone is then injected directly.
    pub fn map(pid: i32) -> Result<Self, String> {
        if !arch::HAS_TRAMPOLINE {
            return Err("this architecture has no clone trampoline yet".into());
        }
        let prot = (libc::PROT_READ | libc::PROT_EXEC) as u64;
        let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
        let args = [0, Self::LEN, prot, flags, u64::MAX, 0];
        let run = move || {
            with_one_thread(pid, STOP_DEADLINE, |inj, stopped| {
                inj.failpoints("map");
                let ret = inj
                    .syscall(libc::SYS_mmap as u64, args, Instant::now() + STOP_DEADLINE)?
                    .ret;
                if !(-4095..0).contains(&ret) {
                    stopped
                        .mem
                        .write_exact(ret as u64, &vec![0u8; Self::LEN as usize])?;
                }
                Ok(ret)
            })
        };
        let ret = match tracer::run_on(Role::Capture, run) {
            Ok(Ok(ret)) => ret,
            Ok(Err(e)) | Err(e) => return Err(e.to_string()),
        };
        if (-4095..0).contains(&ret) {
            return Err(format!(
                "mmap(PROT_EXEC) was refused: {}",
                std::io::Error::from_raw_os_error((-ret) as i32)
            ));
        }
        Ok(Trampoline {
            base: ret as u64,
            len: Self::LEN,
        })
    }

    /// Fills the page for the thread `inj` holds (inside the pause), through `mem` (opened
    /// for writing).
    pub fn arm(&self, inj: &Injection, mem: &ProcMem) -> Result<(), String> {
        let (regs, mask) = inj.restored_state();
        let mut page = arch::trampoline_page(inj.tid(), &regs, mask)
            .map_err(|e| format!("the thread's FPU state could not be read: {e}"))?
            .ok_or("this architecture has no clone trampoline yet")?;
        if page.len() as u64 > self.len {
            return Err(format!("its XSAVE state needs a {}-byte page", page.len()));
        }
        arch::place_trampoline(&mut page, self.base);
        mem.write_exact(self.base, &page)
            .map_err(|e| format!("the page could not be written: {e}"))
    }

    /// Where the clone's `syscall` is.
    pub fn entry(&self) -> u64 {
        self.base + arch::TRAMPOLINE_ENTRY
    }

    /// Where the armed page's code gives the injected thread its own state back.
    pub fn return_path(&self) -> u64 {
        self.base + arch::TRAMPOLINE_RETURN
    }

    /// Unmaps the page from process `pid` (after the pause).
    pub fn unmap(&self, pid: i32) -> Result<(), String> {
        let args = [self.base, self.len, 0, 0, 0, 0];
        let ret = inject_one(pid, "unmap", libc::SYS_munmap, args)?;
        errno(ret, "munmap")
    }

    /// Unmaps the page from the process `inj` is injecting into (the clone, at adoption).
    pub fn unmap_with(&self, inj: &mut Injection, deadline: Instant) -> Result<(), String> {
        let out = inj
            .syscall(
                libc::SYS_munmap as u64,
                [self.base, self.len, 0, 0, 0, 0],
                deadline,
            )
            .map_err(|e| format!("the injected munmap failed: {e}"))?;
        errno(out.ret, "munmap")
    }
}

/// Runs syscall `nr` in one thread of `pid` (on the tracer thread), under failpoint name
/// `name`; its return value.
fn inject_one(
    pid: i32,
    name: &'static str,
    nr: libc::c_long,
    args: [u64; 6],
) -> Result<i64, String> {
    let run = move || {
        with_one_thread(pid, STOP_DEADLINE, |inj, _| {
            inj.failpoints(name);
            inj.syscall(nr as u64, args, Instant::now() + STOP_DEADLINE)
                .map(|o| o.ret)
        })
    };
    match tracer::run_on(Role::Capture, run) {
        Ok(Ok(ret)) => Ok(ret),
        Ok(Err(e)) | Err(e) => Err(e.to_string()),
    }
}

fn errno(ret: i64, what: &str) -> Result<(), String> {
    if ret < 0 {
        return Err(format!(
            "{what} returned {}",
            std::io::Error::from_raw_os_error((-ret) as i32)
        ));
    }
    Ok(())
}
