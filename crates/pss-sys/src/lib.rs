//! The Linux layer pss's caller and engine share: procfs parsers, `/proc/PID/mem`, pidfds,
//! memfds, the engine's socket and its spawning, files a target names opened the careful
//! way, clocks. Thin safe wrappers over the syscalls, each named for what it calls; with
//! `pss-trace` (what only the engine uses: ptrace, injection) the only place `unsafe` lives.

#![warn(missing_docs)]

pub mod channel;
pub mod clock;
pub mod elf;
pub mod files;
pub mod mem;
pub mod memfd;
pub mod pagemap;
pub mod pidfd;
pub mod procfs;
pub mod ring;
pub mod signals;
pub mod spawn;
pub mod vdso;
pub mod yama;

use std::os::fd::{FromRawFd, OwnedFd};

/// The size of a page.
pub fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// Takes ownership of fd `fd`, inherited at `execve` (the engine's socket), if it is open.
pub fn take_inherited_fd(fd: i32) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only asks whether the fd is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the fd is open, and was handed to this process at exec for it alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let _ = rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC);
    Some(fd)
}

/// Whether the process runs with elevated privileges it did not get from its caller
/// (setuid, file capabilities: `AT_SECURE`); then no environment variable may steer it.
pub fn is_secure_exec() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// Whether `path` names a regular file we may execute.
pub fn is_executable(path: &std::path::Path) -> bool {
    use rustix::fs::{access, Access};
    path.is_file() && access(path, Access::EXEC_OK).is_ok()
}

/// The file of the loaded object that holds this code: `libpss.so` when the library was
/// linked into one, otherwise the executable (`dladdr`).
pub fn own_object_path() -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: dladdr only reads the loader's tables; `info` is plain data it fills in.
    let name = unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        let here = own_object_path as *const libc::c_void;
        if libc::dladdr(here, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(info.dli_fname).to_bytes().to_vec()
    };
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&name));
    // The main program's name may be relative or bare (argv[0]); the kernel knows better.
    if !path.is_absolute() || std::env::current_exe().is_ok_and(|e| e == path) {
        return std::env::current_exe().ok();
    }
    std::fs::canonicalize(path).ok()
}
