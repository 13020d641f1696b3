//! Threads that load known values into registers and park in `read()` on a pipe.
//!
//! Thread `i` loads `value(i, reg)` into each register it controls (general and vector),
//! then blocks in the syscall. When woken it checks that every register still holds its
//! value, which proves that the capture restored them and restarted the syscall. The main
//! thread reads its commands the same way ([`read_byte_checked`], as thread
//! [`MAIN_INDEX`]).

use std::sync::mpsc;

use crate::{check, reg_value as value, say};

/// The index whose values the main thread keeps while it reads its commands.
pub const MAIN_INDEX: usize = 0xff;

/// Parked threads and the pipe that wakes them.
#[derive(Default)]
pub struct Parked {
    /// Their tids, by index.
    pub tids: Vec<i32>,
    wake_fd: i32,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Parked {
    /// Starts `n` parked threads and announces `tid I TID` for each.
    pub fn spawn(n: usize) -> Parked {
        let mut fds = [0i32; 2];
        // SAFETY: fds is a live 2-int array.
        check(
            unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as _,
            "pipe2",
        );
        let (tx, rx) = mpsc::channel();
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let tx = tx.clone();
            let rfd = fds[0];
            let h = std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    // SAFETY: gettid has no arguments.
                    let tid = unsafe { libc::gettid() };
                    tx.send((i, tid)).expect("main thread is waiting");
                    drop(tx);
                    let report = park(i, rfd);
                    say(&report);
                })
                .expect("spawn a parked thread");
            handles.push(h);
        }
        drop(tx);
        let mut tids = vec![0; n];
        for (i, tid) in rx.iter().take(n) {
            tids[i] = tid;
        }
        for &tid in &tids {
            wait_parked(tid);
        }
        for (i, tid) in tids.iter().enumerate() {
            say(&format!("tid {i} {tid}"));
        }
        Parked {
            tids,
            wake_fd: fds[1],
            handles,
        }
    }

    /// Wakes every parked thread and waits for their reports.
    pub fn wake(&mut self) {
        let bytes = vec![b'w'; self.tids.len()];
        if !bytes.is_empty() {
            // SAFETY: bytes is a live buffer of the given length.
            check(
                unsafe { libc::write(self.wake_fd, bytes.as_ptr().cast(), bytes.len()) } as _,
                "write",
            );
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
        say("woken");
    }
}

/// Waits until thread `tid` of this process sleeps inside `read()`, so that the target is
/// quiescent (no thread still starting up, allocating or growing its heap) when it says
/// `ready`.
fn wait_parked(tid: i32) {
    let path = format!("/proc/self/task/{tid}/syscall");
    let read_nr = libc::SYS_read.to_string();
    for _ in 0..10_000 {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.split(' ').next() == Some(read_nr.as_str()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    eprintln!("pss-testbed: thread {tid} never parked in read()");
    std::process::exit(3);
}

/// Blocks in `read(fd, buf, 1)` with known values in registers; returns the report line.
fn park(i: usize, fd: i32) -> String {
    match read_byte_checked(fd, i) {
        Ok(_) => format!("thread {i} ok"),
        Err(e) => format!("thread {i} BAD {e}"),
    }
}

/// The general registers thread `i`'s checked reads load, by number: r8–r10 and r12–r15
/// (x20–x26 on aarch64). Each holds `value(i, its number)`.
#[cfg(target_arch = "x86_64")]
pub const KNOWN_REGISTERS: [u64; 7] = [8, 9, 10, 12, 13, 14, 15];
/// The general registers thread `i`'s checked reads load, by number: x20–x26.
#[cfg(target_arch = "aarch64")]
pub const KNOWN_REGISTERS: [u64; 7] = [20, 21, 22, 23, 24, 25, 26];

/// The register values thread `i`'s checked reads keep: [`KNOWN_REGISTERS`], and the low
/// halves of xmm8–xmm15 (d8–d15 on aarch64).
fn known(i: usize) -> ([u64; 7], [u64; 8]) {
    (
        KNOWN_REGISTERS.map(|r| value(i, r)),
        [0u64, 1, 2, 3, 4, 5, 6, 7].map(|r| value(i, 0x100 + r)),
    )
}

/// Reads one byte from `fd` in a raw `read` syscall while general and vector registers hold
/// values known for `i` ([`known`]), then checks that every one of them is unchanged: a
/// capture (or anything else that stopped the thread in the syscall) must restore them
/// and resume the read. The byte, or what was wrong.
pub fn read_byte_checked(fd: i32, i: usize) -> Result<u8, String> {
    let (g, x) = known(i);
    let (ret, og, ox, buf) = raw_read(fd, g, x);
    if ret == 1 && og == g && ox == x {
        Ok(buf)
    } else {
        Err(format!("ret={ret} regs={og:x?} vector={ox:x?}"))
    }
}

#[cfg(target_arch = "x86_64")]
fn raw_read(fd: i32, v: [u64; 7], x: [u64; 8]) -> (i64, [u64; 7], [u64; 8], u8) {
    let mut buf = [0u8; 1];
    let mut o = v;
    let mut ox = x.map(|w| w as i64);
    let ret: i64;
    // SAFETY: a read(2) syscall on our own fd into a live 1-byte buffer; every register the
    // syscall instruction or the kernel may change is declared as an output.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") libc::SYS_read => ret,
            in("rdi") fd,
            in("rsi") buf.as_mut_ptr(),
            in("rdx") 1usize,
            inout("r8") v[0] => o[0],
            inout("r9") v[1] => o[1],
            inout("r10") v[2] => o[2],
            inout("r12") v[3] => o[3],
            inout("r13") v[4] => o[4],
            inout("r14") v[5] => o[5],
            inout("r15") v[6] => o[6],
            inout("xmm8") ox[0],
            inout("xmm9") ox[1],
            inout("xmm10") ox[2],
            inout("xmm11") ox[3],
            inout("xmm12") ox[4],
            inout("xmm13") ox[5],
            inout("xmm14") ox[6],
            inout("xmm15") ox[7],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    (ret, o, ox.map(|w| w as u64), buf[0])
}

#[cfg(target_arch = "aarch64")]
fn raw_read(fd: i32, v: [u64; 7], x: [u64; 8]) -> (i64, [u64; 7], [u64; 8], u8) {
    let mut buf = [0u8; 1];
    let mut o = v;
    let mut ox = x.map(f64::from_bits);
    let ret: i64;
    // SAFETY: a read(2) syscall on our own fd into a live 1-byte buffer.
    unsafe {
        std::arch::asm!(
            "svc #0",
            in("x8") libc::SYS_read,
            inlateout("x0") fd as i64 => ret,
            in("x1") buf.as_mut_ptr(),
            in("x2") 1usize,
            inout("x20") v[0] => o[0],
            inout("x21") v[1] => o[1],
            inout("x22") v[2] => o[2],
            inout("x23") v[3] => o[3],
            inout("x24") v[4] => o[4],
            inout("x25") v[5] => o[5],
            inout("x26") v[6] => o[6],
            inout("d8") ox[0],
            inout("d9") ox[1],
            inout("d10") ox[2],
            inout("d11") ox[3],
            inout("d12") ox[4],
            inout("d13") ox[5],
            inout("d14") ox[6],
            inout("d15") ox[7],
            options(nostack),
        );
    }
    (ret, o, ox.map(f64::to_bits), buf[0])
}

/// A helper thread vforks a child that sleeps `ms` then exits: the helper sits in an
/// uninterruptible wait that no ptrace stop can interrupt.
pub fn vfork_in_thread(ms: u64) {
    std::thread::spawn(move || {
        // SAFETY: gettid has no arguments.
        say(&format!("vforker {}", unsafe { libc::gettid() }));
        let ts = libc::timespec {
            tv_sec: (ms / 1000) as libc::time_t,
            tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
        };
        // clone(CLONE_VFORK) without CLONE_VM: the child runs on a copy of our memory (so
        // nothing is shared or corrupted) while this thread waits, killable but not
        // interruptible, until the child exits.
        // SAFETY: fork-like clone with no stack or TLS arguments; the child only calls
        // nanosleep and _exit, both async-signal-safe.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (libc::CLONE_VFORK | libc::SIGCHLD) as libc::c_ulong,
                0,
                0,
                0,
                0,
            )
        } as libc::pid_t;
        if pid == 0 {
            // SAFETY: see above.
            unsafe {
                libc::nanosleep(&ts, std::ptr::null_mut());
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: status is a live int.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        say("vfork done");
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
}

/// `strict` mode: puts the calling (only) thread in seccomp strict mode and answers `ping`
/// with `pong` until end of input, with raw `read`/`write`/`exit` only (strict mode kills on
/// any other syscall, so nothing here allocates or locks). Its registers are checked after
/// every read, as the main thread's are in the other modes (`main BAD`, exit 4).
pub fn strict_mode_loop() -> ! {
    let mut line = [0u8; 64];
    let (g, x) = known(MAIN_INDEX);
    // SAFETY: prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) on this thread; afterwards only
    // raw read/write/exit syscalls are made, on our own fds and buffers.
    unsafe {
        crate::check(
            libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_STRICT) as _,
            "PR_SET_SECCOMP",
        );
        let mut n = 0usize;
        loop {
            let (ret, og, ox, b) = raw_read(0, g, x);
            if ret != 1 {
                libc::syscall(libc::SYS_exit, if ret == 0 { 0 } else { 4 });
            }
            if og != g || ox != x {
                libc::syscall(
                    libc::SYS_write,
                    1,
                    b"main BAD registers\n".as_ptr(),
                    19usize,
                );
                libc::syscall(libc::SYS_exit, 4);
            }
            if b == b'\n' {
                if &line[..n] == b"ping" {
                    libc::syscall(libc::SYS_write, 1, b"pong\n".as_ptr(), 5usize);
                }
                n = 0;
            } else if n < line.len() {
                line[n] = b;
                n += 1;
            }
        }
    }
}
