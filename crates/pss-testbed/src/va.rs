//! `va MIB [thp] [sleep] [seccomp] [uffd] [quiet] [jit=NxKIB] [maps=N] [threads=N]`: a
//! target for VA clone tests and benchmarks (see [`Options`]).
//!
//! It announces (then keeps) memory with known contents — `mem ADDR LEN` (the first word of
//! each 4 KiB page is its page index), `pattern ADDR` (4096 bytes, byte `i` = `i*7+3`),
//! `counter ADDR` (a word a thread increments every 50 µs), `dontfork ADDR LEN`,
//! `wipeonfork ADDR LEN`, `shared ADDR LEN` (a shared mapping), `filemap ADDR LEN OFFSET
//! PATH` (a private read-only mapping of its own executable from file offset OFFSET),
//! `tls ADDR VALUE` (a thread-local word of the main thread) — and runs threads whose
//! syscalls a capture interrupts: two parked in `read()` (see [`crate::park`]), one in
//! `epoll_wait`, one in `FUTEX_WAIT`, and with `sleep` one in a 5-second `clock_nanosleep`
//! that prints `slept MS` when it wakes. With `seccomp`, a filter that kills the process on
//! `clone`/`clone3`/`fork` is installed on every thread; with `uffd` it holds a userfaultfd.
//!
//! Extra commands: `span` (with the `span` option) → `span US`, from the start of the first
//! to the end of the last gap over 0.25 ms of two stall meters since the last `span` (one
//! meter made first, one last: how long some thread was kept stopped);
//! `sigchld` → `sigchld N` (SIGCHLDs received); `epoll` → `epoll eintr N`;
//! `futex` → wakes the futex waiter, which prints `futex woke RET`; `stall` → `stall US`,
//! the longest the counter thread went without running since the last `stall`;
//! `fork` → `fork US`, how long the process's own `fork()` took (its child exits at once);
//! `write-shared` → fills the shared mapping with 0x77, then `written`; `scribble` → fills
//! the pattern page with 0xAA (so that a capture taken before shows the old bytes), then
//! `scribbled`; `close-stdout`.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{check, say};

static SIGCHLDS: AtomicU64 = AtomicU64::new(0);
static EINTRS: AtomicU64 = AtomicU64::new(0);
static FUTEX: AtomicI32 = AtomicI32::new(0);
static MAX_STALL_NS: AtomicU64 = AtomicU64::new(0);

/// A stall meter's gaps longer than [`Gap::NOTABLE_NS`] since the last `span`: when the
/// first began and the last ended (nanoseconds since the target started).
struct Gap {
    first_start: AtomicU64,
    last_end: AtomicU64,
}

impl Gap {
    /// Gaps shorter than this are the meter's own sleep and scheduling, not a stop.
    const NOTABLE_NS: u64 = 250_000;

    const fn new() -> Gap {
        Gap {
            first_start: AtomicU64::new(u64::MAX),
            last_end: AtomicU64::new(0),
        }
    }

    /// Records a gap from `start` to `end`, if notable.
    fn record(&self, start: u64, end: u64) {
        if end - start >= Self::NOTABLE_NS {
            self.first_start.fetch_min(start, Ordering::Relaxed);
            self.last_end.fetch_max(end, Ordering::Relaxed);
        }
    }

    /// (first start, last end), forgotten; `None` without a notable gap.
    fn take(&self) -> Option<(u64, u64)> {
        let start = self.first_start.swap(u64::MAX, Ordering::Relaxed);
        let end = self.last_end.swap(0, Ordering::Relaxed);
        (start != u64::MAX).then_some((start, end))
    }
}

/// The first thread made (lowest tid) and the stall meter (made after the extra threads).
static EARLY_GAP: Gap = Gap::new();
static LATE_GAP: Gap = Gap::new();

/// When the target started, for the gaps' times.
fn since_start() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A thread that wakes every 50 µs and records its longest gap in `gap`.
fn meter(gap: &'static Gap) {
    std::thread::spawn(move || {
        let mut last = since_start();
        loop {
            std::thread::sleep(Duration::from_micros(50));
            let now = since_start();
            gap.record(last, now);
            last = now;
        }
    });
}

/// Page size assumed by the layout.
const PAGE: usize = 4096;

extern "C" fn on_sigchld(_: libc::c_int) {
    SIGCHLDS.fetch_add(1, Ordering::Relaxed);
}

fn map(len: usize, flags: libc::c_int) -> *mut u8 {
    // SAFETY: a fresh anonymous mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        check(-1, "mmap");
    }
    p.cast()
}

/// Sets the target up; returns after announcing everything.
/// What a `va` target is asked for besides its memory: `va MIB [thp] [sleep] [seccomp]
/// [uffd] [jit=NxKIB] [maps=N] [threads=N]`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options {
    /// MiB of private memory, touched.
    pub mib: usize,
    /// Transparent huge pages for it.
    pub thp: bool,
    /// A thread in a 5-second sleep.
    pub sleep: bool,
    /// A seccomp filter that kills on clone.
    pub seccomp: bool,
    /// A userfaultfd held.
    pub uffd: bool,
    /// `MADV_DONTFORK` ranges as a JIT makes them (V8's code space): how many, and KiB each.
    pub jit: Option<(usize, usize)>,
    /// Extra small mappings that do not merge (an allocator's extents).
    pub maps: usize,
    /// Extra threads waiting on a condition variable (a server's background threads).
    pub threads: usize,
    /// No thread that runs by itself (no counter and stall meter, no epoll or futex
    /// waiter): the memory changes only on command, for byte comparisons across dumps.
    pub quiet: bool,
    /// A second stall meter, made before the extra threads (the lowest tid but the parked
    /// ones'), so that `span` tells how long a tool that stops threads one at a time kept
    /// some thread stopped.
    pub span: bool,
}

impl Options {
    /// Parses the words after `va MIB`.
    pub fn parse(mib: usize, words: &[String]) -> Options {
        let mut o = Options {
            mib,
            ..Options::default()
        };
        for w in words {
            match w.split_once('=') {
                None => match w.as_str() {
                    "thp" => o.thp = true,
                    "sleep" => o.sleep = true,
                    "seccomp" => o.seccomp = true,
                    "uffd" => o.uffd = true,
                    "quiet" => o.quiet = true,
                    "span" => o.span = true,
                    _ => {}
                },
                Some(("jit", v)) => {
                    o.jit = v
                        .split_once('x')
                        .and_then(|(n, k)| Some((n.parse().ok()?, k.parse().ok()?)));
                }
                Some(("maps", v)) => o.maps = v.parse().unwrap_or(0),
                Some(("threads", v)) => o.threads = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        o
    }
}

/// JIT-like `MADV_DONTFORK` ranges: `count` separate mappings of `kib` KiB, filled; says
/// `jit COUNT BYTES`.
fn map_jit(count: usize, kib: usize) {
    let len = kib << 10;
    for i in 0..count {
        // Separate mappings with a hole between, so that they stay separate ranges.
        let raw = map(len + PAGE, libc::MAP_PRIVATE);
        // SAFETY: raw..raw+len lies inside the fresh mapping.
        unsafe {
            raw.write_bytes(i as u8, len);
            libc::munmap(raw.add(len).cast(), PAGE);
            check(
                libc::madvise(raw.cast(), len, libc::MADV_DONTFORK) as _,
                "madvise(MADV_DONTFORK)",
            );
        }
    }
    say(&format!("jit {count} {}", count * len));
}

/// `count` one-page mappings that do not merge (alternating protections), touched.
fn map_many(count: usize) {
    for i in 0..count {
        let p = map(2 * PAGE, libc::MAP_PRIVATE);
        // SAFETY: p is a fresh two-page mapping: one page touched, then the second made
        // read-only so that neighbours never merge.
        unsafe {
            p.write(i as u8);
            libc::mprotect(p.add(PAGE).cast(), PAGE, libc::PROT_READ);
        }
    }
}

/// `count` threads waiting on a condition variable that is never signalled.
fn idle_threads(count: usize) {
    static PAIR: (std::sync::Mutex<bool>, std::sync::Condvar) =
        (std::sync::Mutex::new(false), std::sync::Condvar::new());
    for _ in 0..count {
        std::thread::spawn(|| {
            let mut g = PAIR.0.lock().unwrap();
            while !*g {
                g = PAIR.1.wait(g).unwrap();
            }
        });
    }
}

/// Sets the target up; returns after announcing everything.
pub fn setup(o: Options) {
    let Options {
        mib,
        thp,
        sleep,
        seccomp,
        uffd,
        ..
    } = o;
    if let Some((count, kib)) = o.jit {
        map_jit(count, kib);
    }
    map_many(o.maps);
    if o.span {
        meter(&EARLY_GAP);
    }
    idle_threads(o.threads);
    // SAFETY: installing a handler that only touches an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigchld as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        check(
            libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut()) as _,
            "sigaction",
        );
    }

    // The big region: 2 MiB-aligned so that huge pages can back it.
    let len = mib << 20;
    if len > 0 {
        let raw = map(len + (2 << 20), libc::MAP_PRIVATE | libc::MAP_NORESERVE);
        let base = ((raw as usize + (2 << 20) - 1) & !((2 << 20) - 1)) as *mut u8;
        // SAFETY: base..base+len lies inside the mapping just made.
        unsafe {
            let advice = if thp {
                libc::MADV_HUGEPAGE
            } else {
                libc::MADV_NOHUGEPAGE
            };
            libc::madvise(base.cast(), len, advice);
            for page in 0..len / PAGE {
                base.add(page * PAGE)
                    .cast::<u64>()
                    .write_volatile(page as u64);
            }
        }
        say(&format!("mem {:#x} {len}", base as usize));
    }

    let pattern = map(PAGE, libc::MAP_PRIVATE);
    // SAFETY: pattern is a fresh PAGE-byte mapping.
    unsafe {
        for i in 0..PAGE {
            pattern.add(i).write((i * 7 + 3) as u8);
        }
    }
    say(&format!("pattern {:#x}", pattern as usize));
    PATTERN.store(pattern as u64, Ordering::Relaxed);
    map_own_file();
    announce_tls();

    let dontfork = map(2 * PAGE, libc::MAP_PRIVATE);
    let wipe = map(PAGE, libc::MAP_PRIVATE);
    let shared = map(PAGE, libc::MAP_SHARED);
    // SAFETY: fresh mappings of the sizes given.
    unsafe {
        for i in 0..2 * PAGE {
            dontfork.add(i).write(0xD0 ^ (i as u8));
        }
        wipe.write_bytes(0xEE, PAGE);
        shared.write_bytes(0x5E, PAGE);
        check(
            libc::madvise(dontfork.cast(), 2 * PAGE, libc::MADV_DONTFORK) as _,
            "madvise(MADV_DONTFORK)",
        );
        check(
            libc::madvise(wipe.cast(), PAGE, libc::MADV_WIPEONFORK) as _,
            "madvise(MADV_WIPEONFORK)",
        );
    }
    say(&format!("dontfork {:#x} {}", dontfork as usize, 2 * PAGE));
    say(&format!("wipeonfork {:#x} {PAGE}", wipe as usize));
    say(&format!("shared {:#x} {PAGE}", shared as usize));
    SHARED.store(shared as u64, Ordering::Relaxed);

    if o.quiet {
        return;
    }
    // The counter and stall meter.
    let counter = Box::leak(Box::new(AtomicU64::new(0)));
    say(&format!(
        "counter {:#x}",
        counter as *const AtomicU64 as usize
    ));
    std::thread::spawn(move || {
        let mut last = since_start();
        loop {
            std::thread::sleep(Duration::from_micros(50));
            counter.fetch_add(1, Ordering::Relaxed);
            let now = since_start();
            MAX_STALL_NS.fetch_max(now - last, Ordering::Relaxed);
            LATE_GAP.record(last, now);
            last = now;
        }
    });

    // epoll_wait on nothing: only a capture wakes it (with EINTR).
    std::thread::spawn(|| {
        // SAFETY: plain syscalls on an fd we own; `ev` is a live buffer.
        unsafe {
            let ep = check(libc::epoll_create1(libc::EPOLL_CLOEXEC) as _, "epoll") as i32;
            let mut ev: libc::epoll_event = std::mem::zeroed();
            loop {
                if libc::epoll_wait(ep, &mut ev, 1, -1) < 0
                    && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
                {
                    EINTRS.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });

    // One FUTEX_WAIT, reported when it returns.
    std::thread::spawn(|| {
        // SAFETY: FUTEX_WAIT on a live static word.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                FUTEX.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                0,
                std::ptr::null::<libc::timespec>(),
            )
        };
        let ret = if r < 0 {
            -std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as i64
        } else {
            r as i64
        };
        say(&format!(
            "futex woke {ret} {}",
            FUTEX.load(Ordering::Relaxed)
        ));
    });

    if sleep {
        std::thread::spawn(|| {
            let started = Instant::now();
            let ts = libc::timespec {
                tv_sec: 5,
                tv_nsec: 0,
            };
            // SAFETY: ts is live; a relative sleep with no remainder buffer.
            let r = unsafe {
                libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &ts, std::ptr::null_mut())
            };
            say(&format!("slept {} {r}", started.elapsed().as_millis()));
        });
    }

    if uffd {
        // SAFETY: userfaultfd takes flags only.
        let fd = check(
            unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) },
            "userfaultfd",
        );
        say(&format!("uffd {fd}"));
    }
    // Give the helper threads time to block in their syscalls.
    std::thread::sleep(Duration::from_millis(20));
    if seccomp {
        install_seccomp();
    }
}

static SHARED: AtomicU64 = AtomicU64::new(0);
static PATTERN: AtomicU64 = AtomicU64::new(0);

/// The main thread's thread-local word, with a value no other memory holds.
pub const TLS_VALUE: u64 = 0x7115_cafe_f00d_0001;

thread_local! {
    static TLS_WORD: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Sets the main thread's thread-local word and says where it is.
fn announce_tls() {
    TLS_WORD.with(|w| {
        w.set(TLS_VALUE);
        say(&format!("tls {:#x} {TLS_VALUE:#x}", w.as_ptr() as usize));
    });
}

/// Maps two pages of its own executable, privately and read-only, from file offset one
/// page: a file mapping at a known offset with known bytes.
fn map_own_file() {
    use std::os::fd::AsRawFd;
    let exe = std::env::current_exe().expect("own executable");
    let file = std::fs::File::open(&exe).expect("open own executable");
    // SAFETY: a fresh private read-only mapping of a file we opened; nothing existing moves.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * PAGE,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            PAGE as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        check(-1, "mmap of the executable");
    }
    say(&format!(
        "filemap {:#x} {} {PAGE} {}",
        p as usize,
        2 * PAGE,
        exe.display()
    ));
}

/// Handles the extra commands; `false` if `cmd` is not one of them.
pub fn command(cmd: &str) -> bool {
    match cmd {
        "sigchld" => say(&format!("sigchld {}", SIGCHLDS.load(Ordering::Relaxed))),
        "epoll" => say(&format!("epoll eintr {}", EINTRS.load(Ordering::Relaxed))),
        "futex" => {
            FUTEX.store(1, Ordering::Relaxed);
            // SAFETY: FUTEX_WAKE on a live static word.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    FUTEX.as_ptr(),
                    libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                    1,
                );
            }
        }
        "span" => {
            // From the first notable gap's start to the last one's end, over both meters:
            // how long some thread was kept from running. With `span` only.
            let gaps: Vec<(u64, u64)> = [EARLY_GAP.take(), LATE_GAP.take()]
                .into_iter()
                .flatten()
                .collect();
            let span = match (
                gaps.iter().map(|g| g.0).min(),
                gaps.iter().map(|g| g.1).max(),
            ) {
                (Some(start), Some(end)) => end - start,
                _ => 0,
            };
            say(&format!("span {}", span / 1000));
        }
        "stall" => {
            let ns = MAX_STALL_NS.swap(0, Ordering::Relaxed);
            say(&format!("stall {}", ns / 1000));
        }
        "fork" => {
            let started = Instant::now();
            // SAFETY: the child only calls _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: leaving the child at once.
                unsafe { libc::_exit(0) };
            }
            let took = started.elapsed();
            check(pid as _, "fork");
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            say(&format!("fork {}", took.as_micros()));
        }
        "write-shared" => {
            let p = SHARED.load(Ordering::Relaxed) as *mut u8;
            // SAFETY: the shared page mapped in setup.
            unsafe { p.write_bytes(0x77, PAGE) };
            say("written");
        }
        "scribble" => {
            let p = PATTERN.load(Ordering::Relaxed) as *mut u8;
            // SAFETY: the pattern page mapped in setup.
            unsafe { p.write_bytes(0xAA, PAGE) };
            say("scribbled");
        }
        "close-stdout" => {
            // SAFETY: closing our own stdout; nothing writes to it afterwards.
            unsafe { libc::close(1) };
        }
        _ => return false,
    }
    true
}

/// A filter on every thread that kills the process on `clone`, `clone3` and `fork`.
fn install_seccomp() {
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_KILL_PROCESS: u32 = 0x8000_0000;
    let stmt = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf: 0,
        k,
    };
    #[cfg(target_arch = "x86_64")]
    let fork_nr = libc::SYS_fork as u32;
    #[cfg(not(target_arch = "x86_64"))]
    let fork_nr = libc::SYS_clone as u32;
    let mut prog = [
        stmt((libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, 0),
        jeq(libc::SYS_clone as u32, 3),
        jeq(libc::SYS_clone3 as u32, 2),
        jeq(fork_nr, 1),
        stmt((libc::BPF_RET | libc::BPF_K) as u16, RET_ALLOW),
        stmt((libc::BPF_RET | libc::BPF_K) as u16, RET_KILL_PROCESS),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: fprog points to a live program; TSYNC applies it to every thread.
    unsafe {
        check(
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) as _,
            "PR_SET_NO_NEW_PRIVS",
        );
        check(
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_TSYNC,
                &fprog,
            ),
            "seccomp",
        );
    }
    say("seccomp on");
}
