//! `uffd-foreign`: memory registered with a userfaultfd (with `UFFD_FEATURE_EVENT_FORK`)
//! that this process handed to another process and closed itself — as a live-migration or
//! snapshot helper does. A fork of this process then waits, in the kernel, until that other
//! process reads the fork event. The helper (a child, announced as `uffd-helper PID`) reads
//! nothing until it gets SIGUSR1, then every event forever. Announces `uffd-range ADDR LEN`.

use crate::{check, say};

/// `_IOWR(0xAA, 0x3F, struct uffdio_api)`.
const UFFDIO_API: libc::c_ulong = 0xC018_AA3F;
/// `_IOWR(0xAA, 0x00, struct uffdio_register)`.
const UFFDIO_REGISTER: libc::c_ulong = 0xC020_AA00;
const UFFD_API: u64 = 0xAA;
const UFFD_FEATURE_EVENT_FORK: u64 = 1 << 1;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
const LEN: usize = 1 << 20;

/// Sets it up (before any thread of ours exists: the helper is forked first).
pub fn setup() {
    // SAFETY: plain syscalls on fds and memory made here; the structures are plain words
    // the ioctls read and fill.
    unsafe {
        // The helper first: once the memory is registered, a fork waits for the reader.
        let mut pair = [0i32; 2];
        check(
            libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM, 0, pair.as_mut_ptr()) as _,
            "socketpair",
        );
        let helper = check(libc::fork() as _, "fork") as i32;
        if helper == 0 {
            libc::close(pair[0]);
            helper_main(pair[1]);
        }
        libc::close(pair[1]);
        let uffd = check(
            libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC),
            "userfaultfd",
        ) as i32;
        let mut api = [UFFD_API, UFFD_FEATURE_EVENT_FORK, 0];
        check(
            libc::ioctl(uffd, UFFDIO_API, api.as_mut_ptr()) as _,
            "UFFDIO_API",
        );
        let region = libc::mmap(
            std::ptr::null_mut(),
            LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(region, libc::MAP_FAILED);
        let mut reg = [region as u64, LEN as u64, UFFDIO_REGISTER_MODE_MISSING, 0];
        check(
            libc::ioctl(uffd, UFFDIO_REGISTER, reg.as_mut_ptr()) as _,
            "UFFDIO_REGISTER",
        );
        send_fd(pair[0], uffd);
        libc::close(pair[0]);
        libc::close(uffd);
        say(&format!("uffd-helper {helper}"));
        say(&format!("uffd-range {:#x} {LEN}", region as u64));
    }
}

/// Room for a control message: `struct cmsghdr` needs its alignment (a byte array on the
/// stack has none: arm64 caught the misaligned header).
type ControlSpace = [u64; 8];

/// A one-byte message in `byte` with room for one fd in `space`, for `sendmsg`/`recvmsg`.
unsafe fn one_fd_message(
    byte: &mut [u8; 1],
    iov: &mut libc::iovec,
    space: &mut ControlSpace,
) -> libc::msghdr {
    *iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut msg: libc::msghdr = std::mem::zeroed();
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = space.as_mut_ptr().cast();
    msg.msg_controllen = libc::CMSG_SPACE(4) as usize;
    msg
}

/// Sends `fd` over the socket `sock` (`SCM_RIGHTS`).
unsafe fn send_fd(sock: i32, fd: i32) {
    let (mut byte, mut space) = ([0u8; 1], ControlSpace::default());
    let mut iov = std::mem::zeroed();
    let msg = one_fd_message(&mut byte, &mut iov, &mut space);
    let c = libc::CMSG_FIRSTHDR(&msg);
    (*c).cmsg_level = libc::SOL_SOCKET;
    (*c).cmsg_type = libc::SCM_RIGHTS;
    (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), fd);
    check(libc::sendmsg(sock, &msg, 0) as _, "sendmsg");
}

/// The helper: receives the userfaultfd, waits for SIGUSR1, then reads events forever.
/// Only raw syscalls (it is a fork).
unsafe fn helper_main(sock: i32) -> ! {
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigaddset(&mut set, libc::SIGUSR1);
    libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    let (mut byte, mut space) = ([0u8; 1], ControlSpace::default());
    let mut iov = std::mem::zeroed();
    let mut msg = one_fd_message(&mut byte, &mut iov, &mut space);
    if libc::recvmsg(sock, &mut msg, 0) < 0 {
        libc::_exit(3);
    }
    let uffd = std::ptr::read_unaligned(libc::CMSG_DATA(libc::CMSG_FIRSTHDR(&msg)).cast::<i32>());
    let mut sig = 0;
    libc::sigwait(&set, &mut sig);
    let mut event = [0u8; 32];
    loop {
        if libc::read(uffd, event.as_mut_ptr().cast(), event.len()) < 0 {
            libc::usleep(1000);
        }
    }
}
