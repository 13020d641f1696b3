//! Register contexts, per architecture, by their Linux names.

use crate::flags::ContextFlags;

/// The registers of one thread, as ptrace returned them while the thread was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadContext {
    /// The `ThreadContextFlags` the capture asked for: which groups below are meaningful.
    pub flags: ContextFlags,
    /// The general-purpose registers (`NT_PRSTATUS`). Always read.
    pub general: GeneralRegisters,
    /// The FP/SIMD state (`NT_PRFPREG`: the 512-byte FXSAVE area on x86_64, the
    /// `user_fpsimd_struct` on aarch64), when `CONTEXT_FLOATING_POINT` was asked for.
    pub fp: Option<Vec<u8>>,
    /// The whole XSAVE area (`NT_X86_XSTATE`), with `THREAD_CONTEXT_EXTENDED`.
    pub xstate: Option<Vec<u8>>,
    /// `dr0`–`dr7` (x86_64), when `CONTEXT_DEBUG_REGISTERS` was asked for.
    pub debug: Option<[u64; 8]>,
}

/// x86_64 `struct user_regs_struct`, field for field.
#[cfg(target_arch = "x86_64")]
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GeneralRegisters {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

#[cfg(target_arch = "x86_64")]
impl GeneralRegisters {
    /// Every register with its Linux name, in `user_regs_struct` order.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("r15", self.r15),
            ("r14", self.r14),
            ("r13", self.r13),
            ("r12", self.r12),
            ("rbp", self.rbp),
            ("rbx", self.rbx),
            ("r11", self.r11),
            ("r10", self.r10),
            ("r9", self.r9),
            ("r8", self.r8),
            ("rax", self.rax),
            ("rcx", self.rcx),
            ("rdx", self.rdx),
            ("rsi", self.rsi),
            ("rdi", self.rdi),
            ("orig_rax", self.orig_rax),
            ("rip", self.rip),
            ("cs", self.cs),
            ("eflags", self.eflags),
            ("rsp", self.rsp),
            ("ss", self.ss),
            ("fs_base", self.fs_base),
            ("gs_base", self.gs_base),
            ("ds", self.ds),
            ("es", self.es),
            ("fs", self.fs),
            ("gs", self.gs),
        ]
    }

    /// The registers as words, in `user_regs_struct` order (the inverse of
    /// [`GeneralRegisters::from_words`]).
    pub fn to_words(&self) -> Vec<u64> {
        self.named().into_iter().map(|(_, v)| v).collect()
    }

    /// Registers from words in `user_regs_struct` order; `None` unless there are exactly 27.
    pub fn from_words(w: &[u64]) -> Option<GeneralRegisters> {
        let w: &[u64; 27] = w.try_into().ok()?;
        Some(GeneralRegisters {
            r15: w[0],
            r14: w[1],
            r13: w[2],
            r12: w[3],
            rbp: w[4],
            rbx: w[5],
            r11: w[6],
            r10: w[7],
            r9: w[8],
            r8: w[9],
            rax: w[10],
            rcx: w[11],
            rdx: w[12],
            rsi: w[13],
            rdi: w[14],
            orig_rax: w[15],
            rip: w[16],
            cs: w[17],
            eflags: w[18],
            rsp: w[19],
            ss: w[20],
            fs_base: w[21],
            gs_base: w[22],
            ds: w[23],
            es: w[24],
            fs: w[25],
            gs: w[26],
        })
    }

    /// The instruction pointer.
    pub fn instruction_pointer(&self) -> u64 {
        self.rip
    }

    /// The stack pointer.
    pub fn stack_pointer(&self) -> u64 {
        self.rsp
    }

    /// The TLS base (`fs_base`).
    pub fn tls_base(&self) -> u64 {
        self.fs_base
    }

    /// The syscall the thread is in (`orig_rax`), or `None` when it was in user code.
    pub fn syscall_number(&self) -> Option<i64> {
        let n = self.orig_rax as i64;
        (n >= 0).then_some(n)
    }

    /// The first syscall argument register (`rdi`).
    pub fn syscall_arg0(&self) -> u64 {
        self.rdi
    }

    /// What is known of the registers of a thread blocked in system call `nr` without
    /// stopping it (`/proc/PID/task/TID/syscall`): the call's number (`orig_rax`) and
    /// arguments (`rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9`), the stack pointer, and the
    /// instruction pointer (also in `rcx`, where the `syscall` instruction put it). Every
    /// other register reads 0.
    pub fn blocked_in_syscall(nr: u64, args: [u64; 6], sp: u64, pc: u64) -> GeneralRegisters {
        let [rdi, rsi, rdx, r10, r8, r9] = args;
        GeneralRegisters {
            orig_rax: nr,
            rdi,
            rsi,
            rdx,
            r10,
            r8,
            r9,
            rcx: pc,
            rip: pc,
            rsp: sp,
            ..GeneralRegisters::default()
        }
    }
}

/// aarch64 `struct user_pt_regs` plus the TLS register.
#[cfg(target_arch = "aarch64")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GeneralRegisters {
    /// `x0`–`x30`.
    pub regs: [u64; 31],
    /// `sp`.
    pub sp: u64,
    /// `pc`.
    pub pc: u64,
    /// `pstate`.
    pub pstate: u64,
    /// `tpidr_el0` (`NT_ARM_TLS`).
    pub tls: u64,
    /// The syscall number (`NT_ARM_SYSTEM_CALL`), −1 outside a syscall.
    pub syscall: i64,
}

#[cfg(target_arch = "aarch64")]
impl GeneralRegisters {
    /// Every register with its Linux name.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        const X: [&str; 31] = [
            "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
            "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25",
            "x26", "x27", "x28", "x29", "x30",
        ];
        let mut v: Vec<(&'static str, u64)> = X.iter().copied().zip(self.regs).collect();
        v.extend([
            ("sp", self.sp),
            ("pc", self.pc),
            ("pstate", self.pstate),
            ("tpidr_el0", self.tls),
        ]);
        v
    }

    /// The registers as words: `x0`–`x30`, `sp`, `pc`, `pstate`, `tpidr_el0`, the syscall
    /// number (the inverse of [`GeneralRegisters::from_words`]).
    pub fn to_words(&self) -> Vec<u64> {
        let mut v = self.regs.to_vec();
        v.extend([self.sp, self.pc, self.pstate, self.tls, self.syscall as u64]);
        v
    }

    /// Registers from the words of [`GeneralRegisters::to_words`]; `None` unless there are
    /// exactly 36.
    pub fn from_words(w: &[u64]) -> Option<GeneralRegisters> {
        if w.len() != 36 {
            return None;
        }
        let mut regs = [0u64; 31];
        regs.copy_from_slice(&w[..31]);
        Some(GeneralRegisters {
            regs,
            sp: w[31],
            pc: w[32],
            pstate: w[33],
            tls: w[34],
            syscall: w[35] as i64,
        })
    }

    /// The instruction pointer.
    pub fn instruction_pointer(&self) -> u64 {
        self.pc
    }

    /// The stack pointer.
    pub fn stack_pointer(&self) -> u64 {
        self.sp
    }

    /// The TLS base (`tpidr_el0`).
    pub fn tls_base(&self) -> u64 {
        self.tls
    }

    /// The syscall the thread is in, or `None` when it was in user code.
    pub fn syscall_number(&self) -> Option<i64> {
        (self.syscall >= 0).then_some(self.syscall)
    }

    /// The first syscall argument register (`x0`).
    pub fn syscall_arg0(&self) -> u64 {
        self.regs[0]
    }

    /// What is known of the registers of a thread blocked in system call `nr` without
    /// stopping it (`/proc/PID/task/TID/syscall`): the call's number (`x8`, and the syscall
    /// register) and arguments (`x0`–`x5`), the stack pointer and the program counter.
    /// Every other register reads 0 — the link register too.
    pub fn blocked_in_syscall(nr: u64, args: [u64; 6], sp: u64, pc: u64) -> GeneralRegisters {
        let mut regs = [0u64; 31];
        regs[..6].copy_from_slice(&args);
        regs[8] = nr;
        GeneralRegisters {
            regs,
            sp,
            pc,
            syscall: nr as i64,
            ..GeneralRegisters::default()
        }
    }
}
