//! [`Snapshot`]: the captured data, queried and walked the PSS way or read directly.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::client;
use crate::va_clone::VaClone;
use crate::walk::WalkMarker;
use crate::{CaptureOptions, Target};
use pss_sys::memfd;
use pss_types::error::{Error, Result};
use pss_types::flags::{CaptureFlags, ContextFlags, QueryClass, WalkClass};
use pss_types::memory::Layered;
use pss_types::records::{
    AuxiliaryPage, CaptureInfo, HandleEntry, MemoryRegion, PerformanceCounters, ProcessInformation,
    SnapshotRecords, ThreadEntry, Warning,
};
use pss_wire::codec::Reader;
use pss_wire::format;
use pss_wire::proto;

/// Size of the Windows `CONTEXT` record the C ABI produces for each thread: AMD64's.
#[cfg(target_arch = "x86_64")]
pub const CONTEXT_RECORD_SIZE: u32 = 1232;
/// Size of the Windows `CONTEXT` record the C ABI produces for each thread: ARM64's
/// (`ARM64_NT_CONTEXT`).
#[cfg(target_arch = "aarch64")]
pub const CONTEXT_RECORD_SIZE: u32 = 912;

/// Everything one capture produced: its records, and the clone (which is not a record: a
/// process, read through descriptors the engine passed). Immutable once built.
#[derive(Debug)]
pub(crate) struct SnapshotData {
    pub(crate) records: SnapshotRecords,
    pub(crate) va_clone: Option<VaClone>,
}

impl SnapshotData {
    /// Records without a clone (a snapshot read from bytes).
    fn without_clone(records: SnapshotRecords) -> SnapshotData {
        SnapshotData {
            records,
            va_clone: None,
        }
    }
}

impl std::ops::Deref for SnapshotData {
    type Target = SnapshotRecords;
    fn deref(&self) -> &SnapshotRecords {
        &self.records
    }
}

/// A snapshot of one process (`HPSS`).
///
/// Cloning it is `PssDuplicateSnapshot` into the same process: a second handle to the same
/// data. It is `Send + Sync`; the data is freed when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Snapshot {
    data: Arc<SnapshotData>,
}

/// The record `PssQuerySnapshot` returns for one [`QueryClass`].
#[derive(Debug, Clone, Copy)]
pub enum QueryInfo<'a> {
    /// `PSS_PROCESS_INFORMATION`.
    Process(&'a ProcessInformation),
    /// `PSS_VA_CLONE_INFORMATION`: the clone (`VaCloneHandle` is its pidfd).
    VaClone(&'a VaClone),
    /// `PSS_AUXILIARY_PAGES_INFORMATION`.
    AuxiliaryPages {
        /// `AuxPagesCaptured`.
        aux_pages_captured: u32,
    },
    /// `PSS_VA_SPACE_INFORMATION`.
    VaSpace {
        /// `RegionCount`.
        region_count: u32,
    },
    /// `PSS_HANDLE_INFORMATION`.
    Handles {
        /// `HandlesCaptured`.
        handles_captured: u32,
    },
    /// `PSS_THREAD_INFORMATION`.
    Threads {
        /// `ThreadsCaptured`.
        threads_captured: u32,
        /// `ContextLength`: bytes of each thread's `CONTEXT` record, 0 without contexts.
        context_length: u32,
    },
    /// `PSS_PERFORMANCE_COUNTERS`.
    Performance(&'a PerformanceCounters),
}

/// One entry `PssWalkSnapshot` returns.
#[derive(Debug, Clone, Copy)]
pub enum WalkEntry<'a> {
    /// `PSS_AUXILIARY_PAGE_ENTRY`.
    AuxiliaryPage(&'a AuxiliaryPage),
    /// `PSS_VA_SPACE_ENTRY`.
    VaSpace(&'a MemoryRegion),
    /// `PSS_HANDLE_ENTRY`.
    Handle(&'a HandleEntry),
    /// `PSS_THREAD_ENTRY`.
    Thread(&'a ThreadEntry),
    /// `PSS_THREAD_NAME`: a thread's name (Linux `comm`).
    ThreadName {
        /// The thread it names.
        thread_id: u32,
        /// The name.
        name: &'a OsStr,
    },
}

impl Snapshot {
    /// Captures `target` (`PssCaptureSnapshot`).
    ///
    /// ```no_run
    /// use pss::{CaptureFlags, ContextFlags, Snapshot, Target};
    /// let snap = Snapshot::capture(Target::Pid(1234), CaptureFlags::THREADS | CaptureFlags::THREAD_CONTEXT, ContextFlags::ALL)?;
    /// for t in snap.threads().unwrap_or_default() {
    ///     println!("{} rip={:#x}", t.thread_id, t.context.as_ref().unwrap().general.instruction_pointer());
    /// }
    /// # Ok::<(), pss::Error>(())
    /// ```
    pub fn capture(
        target: Target<'_>,
        flags: CaptureFlags,
        context_flags: ContextFlags,
    ) -> Result<Snapshot> {
        Self::capture_with(target, &CaptureOptions::new(flags, context_flags))
    }

    /// Captures `target` with explicit options (timeouts, rounds).
    pub fn capture_with(target: Target<'_>, options: &CaptureOptions) -> Result<Snapshot> {
        Ok(Snapshot {
            data: Arc::new(capture_through_engine(target, options)?),
        })
    }

    /// Serializes the snapshot (`docs/format.md`) under a new random identifier. A VA clone
    /// is a process and is not included; everything else is.
    pub fn to_bytes(&self) -> Vec<u8> {
        format::encode(&self.data.records, random_id())
    }

    /// Reads a serialized snapshot. Damaged or foreign bytes give [`Error::Corrupt`], another
    /// major version or architecture [`Error::NotSupported`]; never a panic. The snapshot has
    /// no VA clone.
    pub fn from_bytes(bytes: &[u8]) -> Result<Snapshot> {
        let (_, data) = format::decode(bytes)?;
        Ok(Snapshot {
            data: Arc::new(SnapshotData::without_clone(data)),
        })
    }

    /// A snapshot of `records` put together by the caller (a stack walk that read some
    /// threads again, say), without a clone.
    pub fn from_records(records: SnapshotRecords) -> Snapshot {
        Snapshot {
            data: Arc::new(SnapshotData::without_clone(records)),
        }
    }

    /// Writes the snapshot to a file at `path` ([`Snapshot::to_bytes`]), whole or not at
    /// all: the bytes go to [`Snapshot::partial_path`] first, which is renamed to `path`
    /// once written and flushed, and removed on any error (a full disk, say).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        use std::io::Write;
        let path = path.as_ref();
        let partial = Self::partial_path(path);
        let written = std::fs::File::create(&partial)
            .and_then(|mut f| {
                f.write_all(&self.to_bytes())?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&partial, path));
        written.map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            file_error(path, e)
        })
    }

    /// The file [`Snapshot::save`] writes before it becomes `path`: `PATH.partial-PID`. A
    /// program that may be killed while saving removes it (the `pss` command does on
    /// SIGINT, SIGTERM and SIGHUP).
    pub fn partial_path(path: impl AsRef<Path>) -> std::path::PathBuf {
        let mut p = path.as_ref().as_os_str().to_owned();
        p.push(format!(".partial-{}", std::process::id()));
        p.into()
    }

    /// Reads a snapshot file written by [`Snapshot::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Snapshot> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
        Snapshot::from_bytes(&bytes).map_err(|e| match e {
            Error::Corrupt { what } => Error::Corrupt {
                what: format!("{}: {what}", path.display()),
            },
            e => e,
        })
    }

    /// Serializes the snapshot into a new memfd named [`MEMFD_NAME`], sealed so that nobody
    /// can change it (close-on-exec). Returns the memfd and the identifier in its header.
    pub fn to_memfd(&self) -> Result<(OwnedFd, u64)> {
        let id = random_id();
        let bytes = format::encode(&self.data.records, id);
        let fd = memfd::sealed(crate::MEMFD_NAME, &bytes)
            .map_err(|e| file_error(Path::new("memfd:pss-snapshot"), e))?;
        Ok((fd, id))
    }

    /// Reads a snapshot from a memfd made by [`Snapshot::to_memfd`], in this process or
    /// another. Anything but a fully sealed memfd named [`MEMFD_NAME`] holding a valid
    /// snapshot is [`Error::Corrupt`] (or [`Error::NotSupported`] for another version).
    pub fn from_memfd(fd: BorrowedFd<'_>) -> Result<(Snapshot, format::Header)> {
        let header = format::Header::read_memfd(fd)?;
        let len = usize::try_from(header.total_len()).map_err(|_| Error::Corrupt {
            what: format!(
                "fd {}: its announced size does not fit in memory",
                fd.as_raw_fd()
            ),
        })?;
        let bytes = memfd::read_prefix(fd, len).map_err(|e| Error::Corrupt {
            what: format!("fd {}: cannot read it: {e}", fd.as_raw_fd()),
        })?;
        let (header, data) = format::decode(&bytes)?;
        Ok((
            Snapshot {
                data: Arc::new(SnapshotData::without_clone(data)),
            },
            header,
        ))
    }

    /// All the records (what [`Snapshot::process`], [`Snapshot::threads`]… return one by
    /// one).
    pub fn records(&self) -> &SnapshotRecords {
        &self.data.records
    }

    /// The memory the snapshot holds: the copies of the pause (auxiliary pages) over the
    /// clone's memory. Empty without either.
    pub fn memory(&self) -> Layered<&[AuxiliaryPage], Option<&VaClone>> {
        Layered {
            upper: self.auxiliary_pages().unwrap_or_default(),
            lower: self.va_clone(),
        }
    }

    /// Reads the process's memory at `address` as it was at the capture into `buf`: from
    /// the clone, or without one from the stack and TLS pages copied in the pause; how many
    /// bytes, short where what the snapshot holds ends.
    ///
    /// Nothing held at `address` is [`Error::Unreadable`]; a snapshot with neither a clone
    /// nor auxiliary pages is [`Error::NotFound`].
    pub fn read(&self, address: u64, buf: &mut [u8]) -> Result<usize> {
        if let Some(clone) = self.va_clone() {
            return clone.read(address, buf);
        }
        let copies = match self.auxiliary_pages() {
            Some(pages) if !pages.is_empty() => pages,
            _ => {
                return Err(Error::NotFound {
                    what: "memory (a VA clone, or auxiliary pages)",
                    flag: "PSS_CAPTURE_VA_CLONE",
                })
            }
        };
        match pss_types::Memory::read(copies, address, buf) {
            0 if !buf.is_empty() => Err(Error::Unreadable {
                pid: self.process().process_id as i32,
                address,
                reason: "not in the stack and TLS pages copied in the pause (capture a VA clone for the rest)".into(),
            }),
            n => Ok(n),
        }
    }

    /// Reads all of `buf` from `address`, as [`Snapshot::read`]; [`Error::Unreadable`]
    /// names the first address not held.
    pub fn read_exact(&self, address: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            done += self.read(address + done as u64, &mut buf[done..])?;
        }
        Ok(())
    }

    /// The process information; always present.
    pub fn process(&self) -> &ProcessInformation {
        &self.data.process
    }

    /// The threads, if `THREADS` was captured.
    pub fn threads(&self) -> Option<&[ThreadEntry]> {
        self.data.threads.as_deref()
    }

    /// The handles (fds), if `HANDLES` was captured.
    pub fn handles(&self) -> Option<&[HandleEntry]> {
        self.data.handles.as_deref()
    }

    /// The address space, if `VA_SPACE` was captured.
    pub fn va_space(&self) -> Option<&[MemoryRegion]> {
        self.data.va_space.as_deref()
    }

    /// The auxiliary pages (thread stacks and TLS pages copied during the pause), if
    /// `AUXILIARY_PAGES` was captured.
    pub fn auxiliary_pages(&self) -> Option<&[AuxiliaryPage]> {
        self.data.aux_pages.as_deref()
    }

    /// The copy-on-write clone, if `VA_CLONE` was captured: read the target's memory as it
    /// was during the pause.
    pub fn va_clone(&self) -> Option<&VaClone> {
        self.data.va_clone.as_ref()
    }

    /// The performance counters, if `CREATE_MEASURE_PERFORMANCE` was given.
    pub fn performance(&self) -> Option<&PerformanceCounters> {
        self.data.performance.as_ref()
    }

    /// How the capture went: the pause, the flags, the thread count.
    pub fn capture_info(&self) -> &CaptureInfo {
        &self.data.capture
    }

    /// What went wrong without failing the capture (threads or fds that vanished).
    pub fn warnings(&self) -> &[Warning] {
        &self.data.warnings
    }

    /// `PssQuerySnapshot`: the single-instance record of `class`.
    ///
    /// A class that was not captured is [`Error::NotFound`].
    pub fn query(&self, class: QueryClass) -> Result<QueryInfo<'_>> {
        Ok(match class {
            QueryClass::ProcessInformation => QueryInfo::Process(&self.data.process),
            QueryClass::VaCloneInformation => {
                QueryInfo::VaClone(self.va_clone().ok_or_else(|| not_found(class))?)
            }
            QueryClass::AuxiliaryPagesInformation => QueryInfo::AuxiliaryPages {
                aux_pages_captured: count(
                    self.auxiliary_pages()
                        .ok_or_else(|| not_found(class))?
                        .len(),
                ),
            },
            QueryClass::HandleTraceInformation => return Err(not_found(class)),
            QueryClass::VaSpaceInformation => QueryInfo::VaSpace {
                region_count: count(self.va_space().ok_or_else(|| not_found(class))?.len()),
            },
            QueryClass::HandleInformation => QueryInfo::Handles {
                handles_captured: count(self.handles().ok_or_else(|| not_found(class))?.len()),
            },
            QueryClass::ThreadInformation => {
                let threads = self.threads().ok_or_else(|| not_found(class))?;
                QueryInfo::Threads {
                    threads_captured: count(threads.len()),
                    context_length: self.context_length(),
                }
            }
            QueryClass::PerformanceCounters => {
                QueryInfo::Performance(self.performance().ok_or_else(|| not_found(class))?)
            }
        })
    }

    /// The size of each thread's Windows `CONTEXT` record: 1232 bytes, plus the XSAVE area
    /// with `THREAD_CONTEXT_EXTENDED`; 0 without contexts.
    pub fn context_length(&self) -> u32 {
        let flags = self.data.capture.flags;
        if !flags.intersects(CaptureFlags::THREAD_CONTEXT | CaptureFlags::THREAD_CONTEXT_EXTENDED) {
            return 0;
        }
        let xstate = self
            .threads()
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.context.as_ref()?.xstate.as_ref().map(Vec::len))
            .max()
            .unwrap_or(0);
        CONTEXT_RECORD_SIZE + xstate as u32
    }

    /// How many entries a walk of `class` returns, or [`Error::NotFound`].
    pub fn entry_count(&self, class: WalkClass) -> Result<usize> {
        let n = match class {
            WalkClass::AuxiliaryPages => self.auxiliary_pages().map(<[_]>::len),
            WalkClass::VaSpace => self.va_space().map(<[_]>::len),
            WalkClass::Handles => self.handles().map(<[_]>::len),
            WalkClass::Threads | WalkClass::ThreadName => self.threads().map(<[_]>::len),
        };
        n.ok_or_else(|| not_found_walk(class))
    }

    /// The entry at `index` of `class`, if there is one.
    pub fn entry(&self, class: WalkClass, index: usize) -> Result<Option<WalkEntry<'_>>> {
        Ok(match class {
            WalkClass::AuxiliaryPages => self
                .auxiliary_pages()
                .ok_or_else(|| not_found_walk(class))?
                .get(index)
                .map(WalkEntry::AuxiliaryPage),
            WalkClass::VaSpace => self
                .va_space()
                .ok_or_else(|| not_found_walk(class))?
                .get(index)
                .map(WalkEntry::VaSpace),
            WalkClass::Handles => self
                .handles()
                .ok_or_else(|| not_found_walk(class))?
                .get(index)
                .map(WalkEntry::Handle),
            WalkClass::Threads => self
                .threads()
                .ok_or_else(|| not_found_walk(class))?
                .get(index)
                .map(WalkEntry::Thread),
            WalkClass::ThreadName => self
                .threads()
                .ok_or_else(|| not_found_walk(class))?
                .get(index)
                .map(|t| WalkEntry::ThreadName {
                    thread_id: t.thread_id,
                    name: &t.linux.name,
                }),
        })
    }

    /// `PssWalkSnapshot`: the entry at the marker's position, then the marker moves on.
    ///
    /// At the end: [`Error::NoMoreItems`]. A class that was not captured:
    /// [`Error::NotFound`].
    pub fn walk(&self, marker: &mut WalkMarker, class: WalkClass) -> Result<WalkEntry<'_>> {
        let index = marker.index_for(class);
        match self.entry(class, index)? {
            Some(e) => {
                marker.set_cursor(class, index + 1);
                Ok(e)
            }
            None => {
                marker.set_cursor(class, index);
                Err(Error::NoMoreItems)
            }
        }
    }

    /// `PssWalkSnapshot` with a NULL buffer: `Ok(())` if an entry is at the marker's
    /// position (the C ABI's `ERROR_MORE_DATA`), [`Error::NoMoreItems`] at the end. The
    /// marker does not move.
    pub fn walk_probe(&self, marker: &WalkMarker, class: WalkClass) -> Result<()> {
        match self.entry(class, marker.index_for(class))? {
            Some(_) => Ok(()),
            None => Err(Error::NoMoreItems),
        }
    }

    /// An iterator over every entry of `class`, in walk order.
    pub fn entries(&self, class: WalkClass) -> Result<impl Iterator<Item = WalkEntry<'_>> + '_> {
        let n = self.entry_count(class)?;
        Ok((0..n).filter_map(move |i| self.entry(class, i).ok().flatten()))
    }
}

fn random_id() -> u64 {
    let mut b = [0u8; 8];
    if rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty()).is_err() {
        // No entropy source: the time still tells snapshots apart.
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        return t.as_nanos() as u64 ^ u64::from(std::process::id()) << 40;
    }
    u64::from_le_bytes(b)
}

fn file_error(path: &Path, source: std::io::Error) -> Error {
    Error::File {
        path: path.to_owned(),
        source,
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn not_found(class: QueryClass) -> Error {
    let (what, flag) = match class {
        QueryClass::ProcessInformation => ("process information", "nothing"),
        QueryClass::VaCloneInformation => ("VA clone", "PSS_CAPTURE_VA_CLONE"),
        QueryClass::AuxiliaryPagesInformation => ("auxiliary pages", "PSS_CAPTURE_AUXILIARY_PAGES"),
        QueryClass::VaSpaceInformation => ("VA space", "PSS_CAPTURE_VA_SPACE"),
        QueryClass::HandleInformation => ("handles", "PSS_CAPTURE_HANDLES"),
        QueryClass::ThreadInformation => ("threads", "PSS_CAPTURE_THREADS"),
        QueryClass::HandleTraceInformation => (
            "handle trace (Linux keeps no record of a process's fd operations)",
            "PSS_CAPTURE_HANDLE_TRACE, which yields none on Linux",
        ),
        QueryClass::PerformanceCounters => {
            ("performance counters", "PSS_CREATE_MEASURE_PERFORMANCE")
        }
    };
    Error::NotFound { what, flag }
}

fn not_found_walk(class: WalkClass) -> Error {
    not_found(match class {
        WalkClass::AuxiliaryPages => QueryClass::AuxiliaryPagesInformation,
        WalkClass::VaSpace => QueryClass::VaSpaceInformation,
        WalkClass::Handles => QueryClass::HandleInformation,
        WalkClass::Threads | WalkClass::ThreadName => QueryClass::ThreadInformation,
    })
}

/// Captures `target` through the engine: the snapshot's records, and the clone (read
/// through the descriptors the engine passed, freed through it).
pub(crate) fn capture_through_engine(
    target: crate::Target<'_>,
    options: &crate::CaptureOptions,
) -> Result<SnapshotData> {
    use pss_wire::proto::TargetSpec;
    let (spec, fds): (TargetSpec, Vec<BorrowedFd<'_>>) = match target {
        crate::Target::Pid(pid) if pid > 0 => (TargetSpec::Pid(pid), Vec::new()),
        crate::Target::Pid(pid) => return Err(Error::NoSuchProcess { pid }),
        crate::Target::PidFd(fd) => (TargetSpec::PidFd, vec![fd]),
        crate::Target::Current => (TargetSpec::Caller, Vec::new()),
    };
    let reply = client::call(&client::Request {
        kind: proto::kind::CAPTURE,
        payload: &proto::encode_capture(spec, options),
        fds: &fds,
        timeout: proto::capture_deadline(options),
        traces_caller: spec == TargetSpec::Caller,
        only: None,
    })?
    .expect("sent to the current engine");
    let malformed = |e: pss_wire::codec::DecodeError| {
        Error::Internal(format!("a malformed snapshot from the engine {e}"))
    };
    let mut r = Reader::new(&reply.payload);
    let bytes = r.bytes().map_err(malformed)?;
    let (_, records) = pss_wire::format::decode_with(bytes, pss_wire::format::Checksum::Skipped)?;
    let mut data = SnapshotData {
        records,
        va_clone: None,
    };
    let clone = r.opt(proto::CloneInfo::decode).map_err(malformed)?;
    if let Some(info) = clone {
        let mut fds = reply.fds.into_iter();
        let (Some(pidfd), Some(mem)) = (fds.next(), fds.next()) else {
            client::free_clone(reply.engine, info.id, spec == TargetSpec::Caller);
            return Err(Error::Internal(
                "the engine sent a clone without its descriptors".into(),
            ));
        };
        data.va_clone = Some(VaClone::held(info, pidfd, mem, reply.engine));
    }
    Ok(data)
}
