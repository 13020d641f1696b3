//! The clone trampoline in the target (`linux::arch`'s page, `docs/engine.md`, "No
//! window"): mapped by an injected `mmap` inside the pause, the clone made from it, and
//! unmapped again by an injected `munmap` before the thread is restored. The page never
//! outlives the pause in the target; in the clone it is unmapped at adoption.

use std::time::Instant;

use crate::linux::arch;
use crate::linux::inject::Injection;
use crate::linux::mem::ProcMem;

/// A trampoline page mapped in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trampoline {
    /// Its address (the same in the clone).
    pub base: u64,
    /// Its length.
    pub len: u64,
}

impl Trampoline {
    /// Maps the page in the injected thread's process and fills it (through `mem`, opened
    /// for writing). `Err` says why there is none; the clone is then injected directly.
    pub fn install(inj: &mut Injection, mem: &ProcMem, deadline: Instant) -> Result<Self, String> {
        let (regs, mask) = inj.restored_state();
        let mut page = arch::trampoline_page(inj.tid(), &regs, mask)
            .map_err(|e| format!("its FPU state could not be read: {e}"))?
            .ok_or("this architecture has no clone trampoline yet")?;
        let len = page.len() as u64;
        let prot = (libc::PROT_READ | libc::PROT_EXEC) as u64;
        let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
        let out = inj
            .syscall(
                libc::SYS_mmap as u64,
                [0, len, prot, flags, u64::MAX, 0],
                deadline,
            )
            .map_err(|e| format!("the injected mmap failed: {e}"))?;
        if (-4095..0).contains(&out.ret) {
            return Err(format!(
                "mmap(PROT_EXEC) was refused: {}",
                std::io::Error::from_raw_os_error((-out.ret) as i32)
            ));
        }
        let t = Trampoline {
            base: out.ret as u64,
            len,
        };
        arch::place_trampoline(&mut page, t.base);
        if let Err(e) = mem.write_exact(t.base, &page) {
            let _ = t.remove(inj, deadline);
            return Err(format!("the page could not be written: {e}"));
        }
        Ok(t)
    }

    /// Where the clone's `syscall` is.
    pub fn entry(&self) -> u64 {
        self.base + arch::TRAMPOLINE_ENTRY
    }

    /// Unmaps the page from the injected thread's process (an injected `munmap`).
    pub fn remove(&self, inj: &mut Injection, deadline: Instant) -> Result<(), String> {
        let out = inj
            .syscall(
                libc::SYS_munmap as u64,
                [self.base, self.len, 0, 0, 0, 0],
                deadline,
            )
            .map_err(|e| format!("the injected munmap failed: {e}"))?;
        if out.ret < 0 {
            return Err(format!(
                "munmap returned {}",
                std::io::Error::from_raw_os_error((-out.ret) as i32)
            ));
        }
        Ok(())
    }
}
