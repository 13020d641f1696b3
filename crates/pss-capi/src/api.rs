//! The ten PSS entry points and the libpss extension, each a thin front: check the
//! handles, call the library, convert, write the caller's buffer.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};

use pss_core::{
    CaptureFlags, DuplicateFlags, Error, ErrorKind, QueryClass, QueryInfo, Snapshot, Target,
    WalkClass, WalkEntry, WalkPosition,
};

use crate::marker::Marker;
use crate::types::*;
use crate::{convert, registry, shared};

pub(crate) const ERROR_SUCCESS: u32 = 0;
const ERROR_ACCESS_DENIED: u32 = 5;
pub(crate) const ERROR_INVALID_HANDLE: u32 = 6;
const ERROR_BAD_LENGTH: u32 = 24;
const ERROR_NOT_SUPPORTED: u32 = 50;
pub(crate) const ERROR_INVALID_PARAMETER: u32 = 87;
const ERROR_MORE_DATA: u32 = 234;
const ERROR_NO_MORE_ITEMS: u32 = 259;
const ERROR_NOT_FOUND: u32 = 1168;
const ERROR_INTERNAL_ERROR: u32 = 1359;
const ERROR_TIMEOUT: u32 = 1460;

/// `GetCurrentProcess()`.
const CURRENT_PROCESS: isize = -1;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    /// The code of this thread's last failed call (`GetLastError`); successes leave it.
    static LAST_CODE: Cell<u32> = const { Cell::new(ERROR_SUCCESS) };
}

/// The code of the calling thread's last failed call.
pub(crate) fn last_code() -> u32 {
    LAST_CODE.with(Cell::get)
}

/// A failed call: its code, and the message kept for `PssLinuxLastErrorMessage`.
pub(crate) struct Failure(pub(crate) u32, pub(crate) String);

pub(crate) type Outcome = Result<(), Failure>;

pub(crate) fn fail(code: u32, msg: impl Into<String>) -> Failure {
    Failure(code, msg.into())
}

/// The Win32 code of a library error (docs/capi.md lists the mapping).
fn code_of(e: &Error) -> u32 {
    match e.kind() {
        ErrorKind::NoSuchProcess => ERROR_INVALID_HANDLE,
        // A terminating process: STATUS_PROCESS_IS_TERMINATING maps to ERROR_ACCESS_DENIED.
        ErrorKind::AccessDenied | ErrorKind::ProcessExited => ERROR_ACCESS_DENIED,
        ErrorKind::Timeout => ERROR_TIMEOUT,
        ErrorKind::NotSupported => ERROR_NOT_SUPPORTED,
        ErrorKind::NotFound => ERROR_NOT_FOUND,
        ErrorKind::NoMoreItems => ERROR_NO_MORE_ITEMS,
        ErrorKind::InvalidParameter => ERROR_INVALID_PARAMETER,
        _ => ERROR_INTERNAL_ERROR,
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure(code_of(&e), e.to_string())
    }
}

/// Runs an entry point: catches panics, records the message, returns the code.
pub(crate) fn entry(name: &str, f: impl FnOnce() -> Outcome) -> u32 {
    let out = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(fail(
            ERROR_INTERNAL_ERROR,
            format!("{name}: internal panic (a libpss bug)"),
        ))
    });
    let (code, msg) = match out {
        Ok(()) => (ERROR_SUCCESS, String::new()),
        Err(Failure(code, msg)) => (code, format!("{name}: {msg}")),
    };
    LAST_ERROR.with(|l| {
        *l.borrow_mut() = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    });
    if code != ERROR_SUCCESS {
        LAST_CODE.with(|c| c.set(code));
    }
    code
}

/// The snapshot behind `h`, or `ERROR_INVALID_HANDLE`: a capture or duplicate registered
/// here, or a snapshot memfd duplicated into this process (read on first use, and again if
/// its fd has changed since).
pub(crate) fn snapshot(h: *mut c_void) -> Result<Snapshot, Failure> {
    let h = h as usize;
    if let Some(s) = registry::snapshot(h) {
        return Ok(s);
    }
    let Some((fd, _)) = shared::parse(h) else {
        return Err(not_a_snapshot(h));
    };
    if let Some((s, identity)) = registry::imported(h) {
        if shared::identity(fd) == Some(identity) {
            return Ok(s);
        }
        registry::remove_imported(h);
    }
    let (s, identity) = shared::load(h).map_err(handle_error)?;
    registry::add_imported(h, s.clone(), identity);
    Ok(s)
}

fn not_a_snapshot(h: usize) -> Failure {
    fail(
        ERROR_INVALID_HANDLE,
        format!("{h:#x} is not a live snapshot handle (HPSS)"),
    )
}

/// A handle that names no valid snapshot memfd is `ERROR_INVALID_HANDLE`; other failures
/// (no right to trace the process, …) keep their own code.
fn handle_error(e: Error) -> Failure {
    match e.kind() {
        ErrorKind::InvalidParameter | ErrorKind::Corrupt => {
            Failure(ERROR_INVALID_HANDLE, e.to_string())
        }
        _ => e.into(),
    }
}

/// Frees snapshot `h` of this process: unregisters a capture or duplicate (its clone is
/// killed with the last handle), or closes a duplicated-in memfd.
fn free_local(h: usize) -> Outcome {
    if let Some(snap) = registry::remove_snapshot(h) {
        drop(snap);
        return Ok(());
    }
    if shared::parse(h).is_none() {
        return Err(not_a_snapshot(h));
    }
    // Forgotten whatever the fd holds now: a stale entry must not outlive the handle.
    registry::remove_imported(h);
    let fd = shared::check_local(h).map_err(handle_error)?;
    shared::close(fd);
    Ok(())
}

/// What a process `HANDLE` names.
enum Process<'a> {
    Current,
    PidFd(BorrowedFd<'a>),
}

/// A process `HANDLE`: `(HANDLE)-1`, or an open pidfd. Another pidfd of the calling process
/// counts as the calling process.
fn process<'a>(h: *mut c_void) -> Result<Process<'a>, Failure> {
    let v = h as isize;
    if v == CURRENT_PROCESS {
        return Ok(Process::Current);
    }
    let bad = || {
        fail(
            ERROR_INVALID_HANDLE,
            format!("{v} is neither (HANDLE)-1 nor an open pidfd"),
        )
    };
    let fd = i32::try_from(v)
        .ok()
        .and_then(shared::borrow)
        .ok_or_else(bad)?;
    match pss_core::pidfd_pid(fd) {
        Ok(pid) if pid == std::process::id() as i32 => Ok(Process::Current),
        Ok(_) => Ok(Process::PidFd(fd)),
        Err(e) if e.kind() == ErrorKind::InvalidParameter => Err(bad()),
        Err(e) => Err(e.into()),
    }
}

/// Writes `value` to `out`, which must be non-NULL.
fn write_out<T>(out: *mut T, value: T, what: &str) -> Outcome {
    if out.is_null() {
        return Err(fail(ERROR_INVALID_PARAMETER, format!("{what} is NULL")));
    }
    // SAFETY: the caller passed a pointer to a writable T (the API's contract); NULL was
    // refused above.
    unsafe { out.write_unaligned(value) };
    Ok(())
}

/// Checks the caller's buffer for a `T`: non-NULL, and exactly `size_of::<T>()` bytes.
fn check_record<T>(buf: *mut c_void, len: u32, what: &str) -> Outcome {
    let size = std::mem::size_of::<T>();
    if buf.is_null() {
        return Err(fail(
            ERROR_INVALID_PARAMETER,
            format!("the buffer for {what} is NULL"),
        ));
    }
    if len as usize != size {
        return Err(fail(
            ERROR_BAD_LENGTH,
            format!("{what} is {size} bytes; the buffer length given is {len}"),
        ));
    }
    Ok(())
}

/// Copies `value` into the caller's buffer of `len` bytes, which must be exactly its size.
fn write_record<T>(buf: *mut c_void, len: u32, value: &T, what: &str) -> Outcome {
    check_record::<T>(buf, len, what)?;
    let size = std::mem::size_of::<T>();
    // SAFETY: the caller's buffer holds `len` == size_of::<T>() writable bytes; the copy is
    // bytewise, so its alignment does not matter.
    unsafe {
        std::ptr::copy_nonoverlapping((value as *const T).cast::<u8>(), buf.cast::<u8>(), size)
    };
    Ok(())
}

/// `PssCaptureSnapshot`.
#[no_mangle]
pub extern "C" fn PssCaptureSnapshot(
    process_handle: *mut c_void,
    capture_flags: u32,
    thread_context_flags: u32,
    snapshot_handle: *mut *mut c_void,
) -> u32 {
    entry("PssCaptureSnapshot", || {
        if snapshot_handle.is_null() {
            return Err(fail(ERROR_INVALID_PARAMETER, "SnapshotHandle is NULL"));
        }
        let flags = CaptureFlags::from_bits_retain(capture_flags);
        let ctx = crate::context::requested(thread_context_flags);
        let snap = match process(process_handle)? {
            Process::Current => Snapshot::capture(Target::Current, flags, ctx)?,
            Process::PidFd(fd) => Snapshot::capture(Target::PidFd(fd), flags, ctx)?,
        };
        write_out(
            snapshot_handle,
            registry::add_snapshot(snap) as *mut c_void,
            "SnapshotHandle",
        )
    })
}

/// `PssFreeSnapshot`.
#[no_mangle]
pub extern "C" fn PssFreeSnapshot(
    process_handle: *mut c_void,
    snapshot_handle: *mut c_void,
) -> u32 {
    entry("PssFreeSnapshot", || {
        let h = snapshot_handle as usize;
        match process(process_handle)? {
            Process::Current => free_local(h),
            // Only a snapshot memfd duplicated into that process can be freed from here.
            Process::PidFd(p) => {
                let remote = shared::fetch_remote(p, h).map_err(handle_error)?;
                pss_core::remote::close_fd(p, remote.fd)?;
                Ok(())
            }
        }
    })
}

/// `PssDuplicateSnapshot`.
#[no_mangle]
pub extern "C" fn PssDuplicateSnapshot(
    source_process_handle: *mut c_void,
    snapshot_handle: *mut c_void,
    target_process_handle: *mut c_void,
    target_snapshot_handle: *mut *mut c_void,
    flags: u32,
) -> u32 {
    entry("PssDuplicateSnapshot", || {
        let close_source = match DuplicateFlags::from_value(flags as i32) {
            Some(f) => f == DuplicateFlags::CloseSource,
            None => return Err(fail(ERROR_INVALID_PARAMETER, format!("flags {flags:#x}"))),
        };
        let h = snapshot_handle as usize;
        let target = process(target_process_handle)?;
        if target_snapshot_handle.is_null() {
            return Err(fail(
                ERROR_INVALID_PARAMETER,
                "TargetSnapshotHandle is NULL",
            ));
        }
        // What to duplicate: the data itself (a snapshot of this process), or the memfd
        // holding a snapshot duplicated into the source process. With CLOSE_SOURCE the source
        // goes once it has been read, even if the duplication then fails.
        let new = match process(source_process_handle)? {
            Process::Current => {
                let snap = snapshot(snapshot_handle)?;
                if close_source {
                    free_local(h)?;
                }
                match target {
                    Process::Current => registry::add_snapshot(snap),
                    Process::PidFd(t) => {
                        let (memfd, id) = snap.to_memfd()?;
                        shared::install(t, memfd.as_fd(), id)?
                    }
                }
            }
            Process::PidFd(s) => {
                let remote = shared::fetch_remote(s, h).map_err(handle_error)?;
                if close_source {
                    pss_core::remote::close_fd(s, remote.fd)?;
                }
                let (copy, id) = (remote.copy, remote.header.id);
                match target {
                    Process::Current => {
                        let (snap, _) = Snapshot::from_memfd(copy.as_fd())?;
                        let identity = shared::identity(copy.as_raw_fd());
                        let new = shared::handle_for(shared::keep(copy), id);
                        if let Some(identity) = identity {
                            registry::add_imported(new, snap, identity);
                        }
                        new
                    }
                    Process::PidFd(t) => shared::install(t, copy.as_fd(), id)?,
                }
            }
        };
        write_out(
            target_snapshot_handle,
            new as *mut c_void,
            "TargetSnapshotHandle",
        )
    })
}

/// `PssQuerySnapshot`.
#[no_mangle]
pub extern "C" fn PssQuerySnapshot(
    snapshot_handle: *mut c_void,
    information_class: i32,
    buffer: *mut c_void,
    buffer_length: u32,
) -> u32 {
    entry("PssQuerySnapshot", || {
        let snap = snapshot(snapshot_handle)?;
        let class = QueryClass::from_value(information_class).ok_or_else(|| {
            fail(
                ERROR_INVALID_PARAMETER,
                format!("{information_class} is not a PSS_QUERY_INFORMATION_CLASS"),
            )
        })?;
        match snap.query(class)? {
            QueryInfo::Process(p) => write_record(
                buffer,
                buffer_length,
                &convert::process(p),
                "PSS_PROCESS_INFORMATION",
            ),
            QueryInfo::VaClone(c) => {
                // The snapshot's own pidfd, the same on every query, closed by
                // PssFreeSnapshot (Windows code never closes it).
                let raw = std::os::fd::AsRawFd::as_raw_fd(&c.pidfd()) as usize;
                write_record(buffer, buffer_length, &raw, "PSS_VA_CLONE_INFORMATION")
            }
            QueryInfo::AuxiliaryPages { aux_pages_captured } => write_record(
                buffer,
                buffer_length,
                &aux_pages_captured,
                "PSS_AUXILIARY_PAGES_INFORMATION",
            ),
            QueryInfo::VaSpace { region_count } => write_record(
                buffer,
                buffer_length,
                &region_count,
                "PSS_VA_SPACE_INFORMATION",
            ),
            QueryInfo::Handles { handles_captured } => write_record(
                buffer,
                buffer_length,
                &handles_captured,
                "PSS_HANDLE_INFORMATION",
            ),
            QueryInfo::Threads {
                threads_captured,
                context_length,
            } => write_record(
                buffer,
                buffer_length,
                &[threads_captured, context_length],
                "PSS_THREAD_INFORMATION",
            ),
            QueryInfo::Performance(p) => write_record(
                buffer,
                buffer_length,
                &convert::performance(p),
                "PSS_PERFORMANCE_COUNTERS",
            ),
        }
    })
}

/// The size of the entry structure of `class`.
fn entry_size(class: WalkClass) -> usize {
    match class {
        WalkClass::AuxiliaryPages => std::mem::size_of::<PSS_AUXILIARY_PAGE_ENTRY>(),
        WalkClass::VaSpace => std::mem::size_of::<PSS_VA_SPACE_ENTRY>(),
        WalkClass::Handles => std::mem::size_of::<PSS_HANDLE_ENTRY>(),
        WalkClass::Threads => std::mem::size_of::<PSS_THREAD_ENTRY>(),
        WalkClass::ThreadName => std::mem::size_of::<PSS_THREAD_NAME>(),
    }
}

/// `PssWalkSnapshot`.
#[no_mangle]
pub extern "C" fn PssWalkSnapshot(
    snapshot_handle: *mut c_void,
    information_class: i32,
    walk_marker_handle: *mut c_void,
    buffer: *mut c_void,
    buffer_length: u32,
) -> u32 {
    entry("PssWalkSnapshot", || {
        let snap = snapshot(snapshot_handle)?;
        let marker = registry::marker(walk_marker_handle as usize).ok_or_else(|| {
            fail(
                ERROR_INVALID_HANDLE,
                format!("{walk_marker_handle:p} is not a live walk marker (HPSSWALK)"),
            )
        })?;
        let class = WalkClass::from_value(information_class).ok_or_else(|| {
            fail(
                ERROR_INVALID_PARAMETER,
                format!("{information_class} is not a PSS_WALK_INFORMATION_CLASS"),
            )
        })?;
        let mut m = marker.lock().unwrap_or_else(|p| p.into_inner());
        if buffer.is_null() {
            // A probe: is there an entry here? The marker does not move.
            snap.walk_probe(&m.walk, class)?;
            return Err(fail(ERROR_MORE_DATA, "an entry is there (NULL buffer)"));
        }
        if buffer_length as usize != entry_size(class) {
            snap.entry_count(class)?;
            return Err(fail(
                ERROR_BAD_LENGTH,
                format!(
                    "the entry is {} bytes; the buffer length given is {buffer_length}",
                    entry_size(class)
                ),
            ));
        }
        let m = &mut *m;
        let e = snap.walk(&mut m.walk, class)?;
        match e {
            WalkEntry::AuxiliaryPage(p) => {
                let v = convert::aux_page(p, m);
                write_record(buffer, buffer_length, &v, "PSS_AUXILIARY_PAGE_ENTRY")
            }
            WalkEntry::VaSpace(r) => {
                let v = convert::region(r, m);
                write_record(buffer, buffer_length, &v, "PSS_VA_SPACE_ENTRY")
            }
            WalkEntry::Handle(h) => {
                let v = convert::handle(h, m);
                write_record(buffer, buffer_length, &v, "PSS_HANDLE_ENTRY")
            }
            WalkEntry::Thread(t) => {
                let v = convert::thread(t, m);
                write_record(buffer, buffer_length, &v, "PSS_THREAD_ENTRY")
            }
            WalkEntry::ThreadName { name, .. } => {
                let v = convert::thread_name(name, m);
                write_record(buffer, buffer_length, &v, "PSS_THREAD_NAME")
            }
        }
    })
}

/// `PssWalkMarkerCreate`.
#[no_mangle]
pub extern "C" fn PssWalkMarkerCreate(
    allocator: *const PSS_ALLOCATOR,
    walk_marker_handle: *mut *mut c_void,
) -> u32 {
    entry("PssWalkMarkerCreate", || {
        if walk_marker_handle.is_null() {
            return Err(fail(ERROR_INVALID_PARAMETER, "WalkMarkerHandle is NULL"));
        }
        // SAFETY: a non-NULL allocator points to a PSS_ALLOCATOR the caller keeps valid.
        if let Some(a) = unsafe { allocator.as_ref() } {
            if a.AllocRoutine.is_none() || a.FreeRoutine.is_none() {
                return Err(fail(
                    ERROR_INVALID_PARAMETER,
                    "the allocator lacks AllocRoutine or FreeRoutine",
                ));
            }
        }
        let h = registry::add_marker(Marker::new(allocator));
        write_out(walk_marker_handle, h as *mut c_void, "WalkMarkerHandle")
    })
}

/// `PssWalkMarkerFree`: every pointer handed out through the marker is released.
#[no_mangle]
pub extern "C" fn PssWalkMarkerFree(walk_marker_handle: *mut c_void) -> u32 {
    entry("PssWalkMarkerFree", || {
        let m = registry::remove_marker(walk_marker_handle as usize).ok_or_else(|| {
            fail(
                ERROR_INVALID_HANDLE,
                format!("{walk_marker_handle:p} is not a live walk marker (HPSSWALK)"),
            )
        })?;
        m.lock().unwrap_or_else(|p| p.into_inner()).release_all();
        Ok(())
    })
}

fn with_marker(h: *mut c_void, f: impl FnOnce(&mut Marker) -> Outcome) -> Outcome {
    let m = registry::marker(h as usize).ok_or_else(|| {
        fail(
            ERROR_INVALID_HANDLE,
            format!("{h:p} is not a live walk marker (HPSSWALK)"),
        )
    })?;
    let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut g)
}

/// `PssWalkMarkerGetPosition`.
#[no_mangle]
pub extern "C" fn PssWalkMarkerGetPosition(
    walk_marker_handle: *mut c_void,
    position: *mut usize,
) -> u32 {
    entry("PssWalkMarkerGetPosition", || {
        with_marker(walk_marker_handle, |m| {
            write_out(position, m.walk.position().0, "Position")
        })
    })
}

/// `PssWalkMarkerSetPosition`.
#[no_mangle]
pub extern "C" fn PssWalkMarkerSetPosition(
    walk_marker_handle: *mut c_void,
    position: usize,
) -> u32 {
    entry("PssWalkMarkerSetPosition", || {
        with_marker(walk_marker_handle, |m| {
            Ok(m.walk.set_position(WalkPosition(position))?)
        })
    })
}

/// `PssWalkMarkerSeekToBeginning`.
#[no_mangle]
pub extern "C" fn PssWalkMarkerSeekToBeginning(walk_marker_handle: *mut c_void) -> u32 {
    entry("PssWalkMarkerSeekToBeginning", || {
        with_marker(walk_marker_handle, |m| {
            m.walk.seek_to_beginning();
            Ok(())
        })
    })
}

/// libpss extension: why the calling thread's last call failed (empty after a success).
/// The string stays valid until the thread's next call into libpss.
#[no_mangle]
pub extern "C" fn PssLinuxLastErrorMessage() -> *const c_char {
    LAST_ERROR.with(|l| l.borrow().as_ptr())
}
