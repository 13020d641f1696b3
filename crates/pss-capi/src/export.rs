//! The libpss extension that hands a snapshot to the tools of crash analysis, as Windows
//! code hands one to `MiniDumpWriteDump`: `PssLinuxWriteCoreDump` (an ELF core) and
//! `PssLinuxWriteMiniDump` (a minidump), each into an open file descriptor.

use std::ffi::c_void;

use pss_core::Error;
use pss_export::{self as export, DumpFilter, ExportOptions, Format};

use crate::api::{entry, fail, snapshot, Failure, Outcome};
use crate::api::{ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER};
use crate::shared;

const ERROR_WRITE_FAULT: u32 = 29;
const ERROR_DISK_FULL: u32 = 112;
const ERROR_BROKEN_PIPE: u32 = 109;
const ERROR_FILE_TOO_LARGE: u32 = 223;
const ERROR_PARTIAL_COPY: u32 = 299;

/// `MiniDumpWithFullMemory`: the one `MINIDUMP_TYPE` bit that changes what is written.
const MINIDUMP_WITH_FULL_MEMORY: u32 = 0x2;
/// Every `MINIDUMP_TYPE` bit Windows defines (through `MiniDumpWithIptTrace`); the others
/// are accepted and change nothing here (`docs/capi.md`).
const MINIDUMP_TYPE_KNOWN: u32 = 0x00ff_ffff;

/// `PssLinuxWriteCoreDump`: writes an ELF core of the snapshot (from its VA clone) to the
/// file descriptor `FileHandle` (cast to `HANDLE`), from its position; `CoreDumpFilter` 0
/// follows the target's own `coredump_filter`, other values are its bits.
#[no_mangle]
pub extern "C" fn PssLinuxWriteCoreDump(
    snapshot_handle: *mut c_void,
    file_handle: *mut c_void,
    core_dump_filter: u32,
) -> u32 {
    entry("PssLinuxWriteCoreDump", || {
        let filter = match core_dump_filter {
            0 => None,
            bits => Some(DumpFilter::from_bits(bits).ok_or_else(|| {
                fail(
                    ERROR_INVALID_PARAMETER,
                    format!("{bits:#x} has bits no coredump_filter has (valid: 0x1ff)"),
                )
            })?),
        };
        write(snapshot_handle, file_handle, Format::Core, filter, false)
    })
}

/// `PssLinuxWriteMiniDump`: writes a minidump of the snapshot to the file descriptor
/// `FileHandle`, from its position. `DumpType` takes `MINIDUMP_TYPE` values;
/// `MiniDumpWithFullMemory` adds every mapping's bytes (needs a VA clone).
#[no_mangle]
pub extern "C" fn PssLinuxWriteMiniDump(
    snapshot_handle: *mut c_void,
    file_handle: *mut c_void,
    dump_type: u32,
) -> u32 {
    entry("PssLinuxWriteMiniDump", || {
        if dump_type & !MINIDUMP_TYPE_KNOWN != 0 {
            return Err(fail(
                ERROR_INVALID_PARAMETER,
                format!("{dump_type:#x} is not a MINIDUMP_TYPE"),
            ));
        }
        let full = dump_type & MINIDUMP_WITH_FULL_MEMORY != 0;
        write(snapshot_handle, file_handle, Format::Minidump, None, full)
    })
}

fn write(
    snapshot_handle: *mut c_void,
    file_handle: *mut c_void,
    format: Format,
    filter: Option<DumpFilter>,
    full_memory: bool,
) -> Outcome {
    let snap = snapshot(snapshot_handle)?;
    let fd = i32::try_from(file_handle as isize)
        .ok()
        .and_then(shared::borrow)
        .ok_or_else(|| {
            fail(
                ERROR_INVALID_HANDLE,
                format!("{} is not an open file descriptor", file_handle as isize),
            )
        })?;
    let mut options = ExportOptions {
        filter,
        full_memory,
        ..Default::default()
    };
    export::write(&snap, format, fd, &mut options)
        .map(drop)
        .map_err(export_failure)
}

/// The Win32 code of an export failure: the write's own cause where it has one.
fn export_failure(e: Error) -> Failure {
    let code = match &e {
        Error::Output { source, .. } => match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => ERROR_DISK_FULL,
            Some(libc::EFBIG) => ERROR_FILE_TOO_LARGE,
            Some(libc::EPIPE) => ERROR_BROKEN_PIPE,
            Some(libc::EBADF) => ERROR_INVALID_HANDLE,
            _ => ERROR_WRITE_FAULT,
        },
        Error::CloneVanished { .. } => ERROR_PARTIAL_COPY,
        _ => return e.into(),
    };
    Failure(code, e.to_string())
}
