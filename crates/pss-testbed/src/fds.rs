//! Every kind of file descriptor, announced as `fd KIND NUMBER [FACTS…]`.

use std::ffi::CString;

use crate::{check, say};

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// Opens one fd of each kind. `thread_tid` is a live thread for the thread pidfd.
pub fn open_all(thread_tid: i32) {
    // SAFETY (whole function): plain fd-creating syscalls with live, correctly sized
    // arguments; nothing is freed while the kernel uses it.
    unsafe {
        let mut p = [0i32; 2];
        check(libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) as _, "pipe2");
        say(&format!("fd pipe-r {}", p[0]));
        say(&format!("fd pipe-w {}", p[1]));

        let mut sv = [0i32; 2];
        check(
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr(),
            ) as _,
            "socketpair",
        );
        say(&format!("fd socket {}", sv[0]));

        let e = check(libc::eventfd(7, libc::EFD_CLOEXEC) as _, "eventfd");
        say(&format!("fd eventfd {e} 7"));
        let s = check(
            libc::eventfd(3, libc::EFD_CLOEXEC | libc::EFD_SEMAPHORE) as _,
            "eventfd",
        );
        say(&format!("fd eventfd-sem {s} 3"));
        let z = check(libc::eventfd(0, libc::EFD_CLOEXEC) as _, "eventfd");
        say(&format!("fd eventfd-zero {z} 0"));

        let m = check(
            libc::memfd_create(c("pss-testbed").as_ptr(), libc::MFD_CLOEXEC) as _,
            "memfd_create",
        );
        check(libc::ftruncate(m as i32, 12288) as _, "ftruncate");
        say(&format!("fd memfd {m} 12288"));

        let ppid = libc::getppid();
        let pf = check(libc::syscall(libc::SYS_pidfd_open, ppid, 0), "pidfd_open");
        say(&format!("fd pidfd {pf} {ppid}"));
        let tf = check(
            libc::syscall(libc::SYS_pidfd_open, thread_tid, libc::O_EXCL),
            "pidfd_open(PIDFD_THREAD)",
        );
        say(&format!("fd pidfd-thread {tf} {thread_tid}"));

        let t = check(
            libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC) as _,
            "timerfd_create",
        );
        let its = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 2,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: 100,
                tv_nsec: 0,
            },
        };
        check(
            libc::timerfd_settime(t as i32, 0, &its, std::ptr::null_mut()) as _,
            "timerfd_settime",
        );
        say(&format!("fd timerfd {t} 1 2"));

        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        let sf = check(libc::signalfd(-1, &set, libc::SFD_CLOEXEC) as _, "signalfd");
        let mask = (1u64 << (libc::SIGUSR1 - 1)) | (1u64 << (libc::SIGUSR2 - 1));
        say(&format!("fd signalfd {sf} {mask:x}"));

        let ep = check(
            libc::epoll_create1(libc::EPOLL_CLOEXEC) as _,
            "epoll_create1",
        );
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        check(
            libc::epoll_ctl(ep as i32, libc::EPOLL_CTL_ADD, p[0], &mut ev) as _,
            "epoll_ctl",
        );
        say(&format!("fd epoll {ep} {}", p[0]));

        let ino = check(libc::inotify_init1(libc::IN_CLOEXEC) as _, "inotify_init1");
        check(
            libc::inotify_add_watch(ino as i32, c("/tmp").as_ptr(), libc::IN_CREATE) as _,
            "inotify_add_watch",
        );
        check(
            libc::inotify_add_watch(ino as i32, c("/").as_ptr(), libc::IN_DELETE) as _,
            "inotify_add_watch",
        );
        say(&format!("fd inotify {ino} 2"));

        let path = format!("/tmp/pss-testbed-{}.txt", std::process::id());
        let fpath = c(&path);
        // No O_CLOEXEC: this fd is inheritable.
        let f = check(
            libc::open(
                fpath.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
                0o600,
            ) as _,
            "open",
        );
        check(
            libc::write(f as i32, b"hello world".as_ptr().cast(), 11) as _,
            "write",
        );
        check(libc::lseek(f as i32, 5, libc::SEEK_SET) as _, "lseek");
        libc::unlink(fpath.as_ptr());
        say(&format!("fd file {f} 5 {path}"));

        let d = check(
            libc::open(
                c("/tmp").as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            ) as _,
            "open /tmp",
        );
        say(&format!("fd dir {d} /tmp"));

        let dev = check(
            libc::open(c("/dev/null").as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) as _,
            "open /dev/null",
        );
        say(&format!("fd device {dev} /dev/null"));
    }
}

/// Opens `n` fds on one regular file (what `psutil.open_files` reports).
pub fn open_many(n: usize) {
    let lim = libc::rlimit {
        rlim_cur: (n + 256) as libc::rlim_t,
        rlim_max: (n + 256) as libc::rlim_t,
    };
    // SAFETY: lim is a live rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        say(&format!(
            "warning setrlimit {}",
            std::io::Error::last_os_error()
        ));
    }
    let path = format!("/tmp/pss-testbed-many-{}.txt", std::process::id());
    let _ = std::fs::write(&path, b"x");
    let cpath = c(&path);
    for _ in 0..n {
        // SAFETY: cpath is a live C string.
        check(
            unsafe { libc::open(cpath.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) } as _,
            "open many",
        );
    }
    // Not unlinked: psutil skips deleted files, and the benchmark compares like with like.
    // The benchmark removes it.
    say(&format!("fds {n} {path}"));
}
