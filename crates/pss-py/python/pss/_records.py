"""The records of a snapshot, as plain frozen dataclasses, made from the JSON document
of ``docs/json.md`` (the native module's ``document()``). Times are seconds since the
epoch and durations seconds, as :mod:`time` and psutil give them; sizes are bytes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from ._flags import (
    CaptureFlags,
    ContextFlags,
    HandleFlags,
    MemoryState,
    MemoryType,
    ObjectType,
    ProcessFlags,
    ThreadFlags,
)

# The keys of the document's records (``docs/json.md``) the records here leave out, and
# why. Every other key is read into a record: tests/test_fields.py fails when a key is
# neither read nor listed, so that a field added to the Rust records (whose JSON is checked
# against their one field list, ``pss_types::records::Fields``) reaches Python or is left
# out on purpose.
_NOT_EXPOSED: Dict[str, Dict[str, str]] = {
    "process": {
        "quota_peak_paged_pool_usage": "Windows pool quotas: always 0 on Linux",
        "quota_paged_pool_usage": "Windows pool quotas: always 0 on Linux",
        "quota_peak_non_paged_pool_usage": "Windows pool quotas: always 0 on Linux",
        "quota_non_paged_pool_usage": "Windows pool quotas: always 0 on Linux",
    },
    "thread": {
        "size_of_context_record": "the C ABI's CONTEXT size; Thread.registers holds them",
    },
    "handle": {
        "paged_pool_charge": "Windows pool charges: always 0 on Linux",
        "non_paged_pool_charge": "Windows pool charges: always 0 on Linux",
    },
    "region": {},
    "auxiliary_page": {},
    "performance": {},
    "capture": {
        "flag_names": "CaptureInfo.flags is a CaptureFlags, which names them",
        "context_length": "the C ABI's CONTEXT size; Thread.registers holds them",
    },
    "warning": {},
}

# FILETIME (100 ns since 1601-01-01) at the Unix epoch.
_EPOCH_AS_FILETIME = 116444736000000000


def _time(filetime: int) -> float:
    """A FILETIME as seconds since the epoch."""
    return (filetime - _EPOCH_AS_FILETIME) / 1e7


def _time_opt(filetime: int) -> Optional[float]:
    """0 (Windows' "none") as None."""
    return _time(filetime) if filetime else None


def _duration(hundred_ns: int) -> float:
    return hundred_ns / 1e7


@dataclass(frozen=True)
class Process:
    """The process (``PSS_PROCESS_INFORMATION``, ``docs/mapping.md``)."""

    pid: int
    ppid: int
    name: str
    """The kernel's name for it (``comm``, 15 characters at most)."""
    exe: str
    """The executable's path (``ImageFileName``)."""
    state: str
    """The kernel's one-letter state (``R``, ``S``, ``D``, ``T``…)."""
    num_threads: int
    uid: int
    create_time: float
    exit_time: Optional[float]
    user_time: float
    kernel_time: float
    virtual_size: int
    peak_virtual_size: int
    working_set_size: int
    """Resident set size."""
    peak_working_set_size: int
    private_usage: int
    pagefile_usage: int
    peak_pagefile_usage: int
    page_fault_count: int
    rss_anon: int
    vm_swap: int
    base_priority: int
    priority_class: int
    nice: int
    policy: int
    affinity_mask: int
    flags: ProcessFlags
    exit_status: int
    execute_flags: int
    seccomp: int
    peb_base_address: int


def _process(d: Mapping[str, Any]) -> Process:
    linux = d["linux"]
    return Process(
        pid=d["process_id"],
        ppid=d["parent_process_id"],
        name=linux["comm"],
        exe=d["image_file_name"],
        state=linux["state"],
        num_threads=linux["num_threads"],
        uid=linux["uid"],
        create_time=_time(d["create_time"]),
        exit_time=_time_opt(d["exit_time"]),
        user_time=_duration(d["user_time"]),
        kernel_time=_duration(d["kernel_time"]),
        virtual_size=d["virtual_size"],
        peak_virtual_size=d["peak_virtual_size"],
        working_set_size=d["working_set_size"],
        peak_working_set_size=d["peak_working_set_size"],
        private_usage=d["private_usage"],
        pagefile_usage=d["pagefile_usage"],
        peak_pagefile_usage=d["peak_pagefile_usage"],
        page_fault_count=d["page_fault_count"],
        rss_anon=linux["rss_anon"],
        vm_swap=linux["vm_swap"],
        base_priority=d["base_priority"],
        priority_class=d["priority_class"],
        nice=linux["nice"],
        policy=linux["policy"],
        affinity_mask=d["affinity_mask"],
        flags=ProcessFlags(d["flags"]),
        exit_status=d["exit_status"],
        execute_flags=d["execute_flags"],
        seccomp=linux["seccomp"],
        peb_base_address=d["peb_base_address"],
    )


# Keys of a context in the document that are not general registers.
_NOT_REGISTERS = {"context_flags", "fpregs_size", "xstate_size"}


@dataclass(frozen=True)
class Thread:
    """A thread (``PSS_THREAD_ENTRY``)."""

    tid: int
    pid: int
    name: str
    state: str
    syscall: Optional[int]
    """The system call it was in when stopped (-1: none), if known."""
    registers: Optional[Dict[str, int]]
    """Its general registers by their Linux names (``rip``, ``rsp``, ``r12``… on x86_64;
    ``x0``…``x30``, ``sp``, ``pc`` on aarch64), with ``contexts=True``."""
    debug_registers: Optional[Tuple[int, ...]]
    """``dr0``–``dr7``, with ``ContextFlags.DEBUG_REGISTERS``."""
    context_flags: Optional[ContextFlags]
    priority: int
    base_priority: int
    nice: int
    processor: int
    create_time: float
    exit_time: Optional[float]
    user_time: float
    kernel_time: float
    affinity_mask: int
    sigmask: Optional[int]
    flags: ThreadFlags
    suspend_count: int
    exit_status: int
    teb_base_address: int
    start_address: int
    last_syscall_number: int
    last_syscall_first_argument: int
    capture_time: float
    read: str
    """How its registers and stack were read: ``together`` (stopped with every other
    thread), ``alone`` (stopped by itself) or ``blocked`` (not stopped: blocked in a system
    call; only ``rip``/``rsp`` (``pc``/``sp``) and the call's number and arguments are known
    of its registers, the others read 0)."""


def _thread(d: Mapping[str, Any]) -> Thread:
    linux = d["linux"]
    ctx = d["context"]
    registers = debug = flags = None
    if ctx is not None:
        flags = ContextFlags(ctx["context_flags"])
        registers = {
            k: v
            for k, v in ctx.items()
            if k not in _NOT_REGISTERS and not (k.startswith("dr") and k[2:].isdigit())
        }
        if "dr0" in ctx:
            debug = tuple(ctx[f"dr{i}"] for i in range(8))
    return Thread(
        tid=d["thread_id"],
        pid=d["process_id"],
        name=linux["name"],
        state=linux["state"],
        syscall=linux["syscall"],
        registers=registers,
        debug_registers=debug,
        context_flags=flags,
        priority=d["priority"],
        base_priority=d["base_priority"],
        nice=linux["nice"],
        processor=linux["processor"],
        create_time=_time(d["create_time"]),
        exit_time=_time_opt(d["exit_time"]),
        user_time=_duration(d["user_time"]),
        kernel_time=_duration(d["kernel_time"]),
        affinity_mask=d["affinity_mask"],
        sigmask=linux["sigmask"],
        flags=ThreadFlags(d["flags"]),
        suspend_count=d["suspend_count"],
        exit_status=d["exit_status"],
        teb_base_address=d["teb_base_address"],
        start_address=d["win32_start_address"],
        last_syscall_number=d["last_syscall_number"],
        last_syscall_first_argument=d["last_syscall_first_argument"],
        capture_time=_time(d["capture_time"]),
        read=linux["read"],
    )


@dataclass(frozen=True)
class Handle:
    """A file descriptor (``PSS_HANDLE_ENTRY``)."""

    fd: int
    type: str
    """What it is: ``File``, ``Directory``, ``Pipe``, ``Socket``, ``EventFd``, ``PidFd``…
    (``docs/mapping.md``)."""
    object_type: ObjectType
    name: Optional[str]
    """Its path, or the kernel's name for it (``pipe:[123]``, ``socket:[456]``,
    ``anon_inode:[eventfd]``), with ``HANDLE_NAME_INFORMATION``."""
    flags: HandleFlags
    open_flags: int
    """``O_*`` flags it was opened with."""
    position: int
    mode: int
    inode: int
    size: int
    mount_id: int
    creation_time: Optional[float]
    capture_time: float
    granted_access: int
    attributes: int
    handle_count: int
    pointer_count: int
    detail: Optional[Dict[str, Any]]
    """What Linux tells of its kind: ``{"eventfd": {"count": …}}``, ``{"pidfd": …}``,
    ``{"timerfd": …}``, ``{"epoll": …}``…"""
    type_specific: Optional[Dict[str, Any]]
    """Windows' type-specific information (``{"process": …}``, ``{"event": …}``…)."""


def _handle(d: Mapping[str, Any]) -> Handle:
    linux = d["linux"]
    return Handle(
        fd=d["handle"],
        type=d["type_name"],
        object_type=ObjectType(d["object_type"]),
        name=d["object_name"],
        flags=HandleFlags(d["flags"]),
        open_flags=linux["open_flags"],
        position=linux["pos"],
        mode=linux["mode"],
        inode=linux["inode"],
        size=linux["size"],
        mount_id=linux["mnt_id"],
        creation_time=_time_opt(d["creation_time"] or 0),
        capture_time=_time(d["capture_time"]),
        granted_access=d["granted_access"],
        attributes=d["attributes"],
        handle_count=d["handle_count"],
        pointer_count=d["pointer_count"],
        detail=linux["detail"],
        type_specific=d["type_specific_information"],
    )


@dataclass(frozen=True)
class Region:
    """A region of the address space (``MEMORY_BASIC_INFORMATION`` with its section
    information): one line of ``/proc/PID/maps``, or a free gap between them."""

    address: int
    size: int
    state: MemoryState
    type: MemoryType
    protect: int
    """``PAGE_*`` protection."""
    allocation_base: int
    allocation_protect: int
    perms: Optional[str]
    """``/proc/PID/maps``'s permissions (``r-xp``); None for free regions."""
    path: Optional[str]
    """``/proc/PID/maps``'s pathname (a file, ``[heap]``, ``[stack]``…), if any."""
    offset: int
    inode: int
    dev: Optional[str]
    build_id: Optional[str]
    """The GNU build-id of an ELF image mapped here, in hex."""
    mapped_file_name: Optional[str]
    image_base: int
    size_of_image: int
    time_date_stamp: int
    check_sum: int

    @property
    def end(self) -> int:
        """The first address past the region."""
        return self.address + self.size


def _region(d: Mapping[str, Any]) -> Region:
    linux = d["linux"] or {}
    return Region(
        address=d["base_address"],
        size=d["region_size"],
        state=MemoryState(d["state"]),
        type=MemoryType(d["type"]),
        protect=d["protect"],
        allocation_base=d["allocation_base"],
        allocation_protect=d["allocation_protect"],
        perms=linux.get("perms"),
        path=linux.get("pathname") or None,
        offset=linux.get("offset", 0),
        inode=linux.get("inode", 0),
        dev=linux.get("dev"),
        build_id=linux.get("build_id"),
        mapped_file_name=d["mapped_file_name"],
        image_base=d["image_base"],
        size_of_image=d["size_of_image"],
        time_date_stamp=d["time_date_stamp"],
        check_sum=d["check_sum"],
    )


@dataclass(frozen=True)
class Phase:
    """The cost of one phase of the capture."""

    cycles: int
    seconds: float


@dataclass(frozen=True)
class Performance:
    """``PSS_PERFORMANCE_COUNTERS``: what each phase of the capture cost, and the pause."""

    total: Phase
    va_clone: Phase
    va_space: Phase
    aux_pages: Phase
    handles: Phase
    threads: Phase
    pause: float


def _performance(d: Mapping[str, Any]) -> Performance:
    def phase(name: str) -> Phase:
        return Phase(d[f"{name}_cycle_count"], d[f"{name}_wall_clock_period"] / 1e6)

    return Performance(
        total=phase("total"),
        va_clone=phase("va_clone"),
        va_space=phase("va_space"),
        aux_pages=phase("aux_pages"),
        handles=phase("handles"),
        threads=phase("threads"),
        pause=d["linux"]["pause_us"] / 1e6,
    )


@dataclass(frozen=True)
class AuxiliaryPage:
    """Memory copied during the pause (``PSS_AUXILIARY_PAGE_ENTRY``): the top of a
    thread's stack, or its TLS page. :meth:`pss.Snapshot.read` reads it, clone or not."""

    address: int
    size: int
    tid: int
    """The thread whose stack or TLS it is."""
    kind: str
    """``stack`` or ``tls``."""
    capture_time: float

    @property
    def end(self) -> int:
        """The first address past the copy."""
        return self.address + self.size


def _auxiliary_page(d: Mapping[str, Any]) -> AuxiliaryPage:
    linux = d["linux"]
    return AuxiliaryPage(
        address=d["address"],
        size=d["page_size"],
        tid=linux["thread_id"],
        kind=linux["kind"],
        capture_time=_time(d["capture_time"]),
    )


@dataclass(frozen=True)
class SnapshotWarning:
    """Something the capture could not do, for a thread or fd or the whole process."""

    message: str
    tid: Optional[int]
    fd: Optional[int]

    def __str__(self) -> str:
        return self.message


def _warning(d: Mapping[str, Any]) -> SnapshotWarning:
    return SnapshotWarning(message=d["message"], tid=d["tid"], fd=d["fd"])


@dataclass(frozen=True)
class CaptureInfo:
    """How the capture went."""

    pid: int
    flags: CaptureFlags
    context_flags: ContextFlags
    started: float
    pause: float
    """How long the target was stopped, in seconds."""
    total: float
    """How long the whole capture took, in seconds."""
    threads_stopped: int
    seize_rounds: int


def _capture_info(d: Mapping[str, Any]) -> CaptureInfo:
    return CaptureInfo(
        pid=d["pid"],
        flags=CaptureFlags(d["flags"]),
        context_flags=ContextFlags(d["context_flags"]),
        started=_time(d["started"]),
        pause=d["pause_us"] / 1e6,
        total=d["total_us"] / 1e6,
        threads_stopped=d["threads_stopped"],
        seize_rounds=d["seize_rounds"],
    )


@dataclass(frozen=True)
class Frame:
    """One frame of a call chain, innermost first."""

    address: int
    function: Optional[str]
    file: Optional[str]
    line: Optional[int]
    module: Optional[str]
    module_offset: Optional[int]
    inlined: bool
    """A call inlined into the next frame (same address)."""
    how: str
    """How it was found: ``context``, ``cfi``, ``frame-pointer``, ``signal-frame``,
    ``stack-switch`` (Go: back from ``runtime.systemstack`` to the goroutine)."""
    jit: bool = False
    """Code compiled at run time, named from the process's perf map
    (``/tmp/perf-PID.map``)."""


@dataclass(frozen=True)
class ThreadStack:
    """A thread's call chain."""

    tid: int
    name: str
    state: str
    frames: List[Frame]
    end: str
    """Why the walk stopped: ``complete``, ``stack-copy-ended`` (capture a clone for
    deeper stacks), ``bad-frame``, ``too-deep``."""
    end_detail: Optional[str]


@dataclass(frozen=True)
class Stacks:
    """Every thread's call chain, iterable as the threads'."""

    threads: List[ThreadStack]
    warnings: List[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[ThreadStack]:
        return iter(self.threads)

    def __len__(self) -> int:
        return len(self.threads)

    def __getitem__(self, index: int) -> ThreadStack:
        return self.threads[index]


def _stacks(d: Mapping[str, Any]) -> Stacks:
    def thread(t: Mapping[str, Any]) -> ThreadStack:
        end = t["end"]
        return ThreadStack(
            tid=t["tid"],
            name=t["name"],
            state=t["state"],
            frames=[Frame(**f) for f in t["frames"]],
            end=end["kind"],
            end_detail=end.get("detail"),
        )

    return Stacks(threads=[thread(t) for t in d["threads"]], warnings=list(d["warnings"]))


@dataclass(frozen=True)
class DumpSummary:
    """What :meth:`pss.Snapshot.write_core` or ``write_minidump`` wrote."""

    path: str
    format: str
    bytes: int
    memory_bytes: int
    holes: int
    segments: int
    threads: int
    filter: int
    warnings: List[str]
