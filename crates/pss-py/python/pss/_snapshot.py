""":func:`capture`, :func:`load` and :class:`Snapshot`."""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Optional, TypeVar, Union, cast

from . import _pss
from ._errors import NotCaptured
from ._flags import CaptureFlags, ContextFlags
from ._records import (
    AuxiliaryPage,
    CaptureInfo,
    DumpSummary,
    Handle,
    Performance,
    Process,
    Region,
    SnapshotWarning,
    Stacks,
    Thread,
    _auxiliary_page,
    _capture_info,
    _handle,
    _performance,
    _process,
    _region,
    _stacks,
    _thread,
    _warning,
)

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")

#: What :func:`capture` takes when no flag is given: threads with their registers, the
#: descriptors with everything known of them, and the address space with its images.
DEFAULT_FLAGS = (
    CaptureFlags.THREADS
    | CaptureFlags.THREAD_CONTEXT
    | CaptureFlags.HANDLES
    | CaptureFlags.HANDLE_NAME_INFORMATION
    | CaptureFlags.HANDLE_BASIC_INFORMATION
    | CaptureFlags.HANDLE_TYPE_SPECIFIC_INFORMATION
    | CaptureFlags.VA_SPACE
    | CaptureFlags.VA_SPACE_SECTION_INFORMATION
)

_KEYWORD_FLAGS = {
    "threads": CaptureFlags.THREADS,
    "contexts": CaptureFlags.THREADS | CaptureFlags.THREAD_CONTEXT,
    "handles": CaptureFlags.HANDLES
    | CaptureFlags.HANDLE_NAME_INFORMATION
    | CaptureFlags.HANDLE_BASIC_INFORMATION
    | CaptureFlags.HANDLE_TYPE_SPECIFIC_INFORMATION,
    "va_space": CaptureFlags.VA_SPACE | CaptureFlags.VA_SPACE_SECTION_INFORMATION,
    "va_clone": CaptureFlags.VA_CLONE,
    "auxiliary_pages": CaptureFlags.AUXILIARY_PAGES,
    "performance": CaptureFlags.CREATE_MEASURE_PERFORMANCE,
}

# What each class of information is called in the document, and the keyword capturing it.
_SECTIONS = {
    "threads": ("threads", "threads=True"),
    "handles": ("handles", "handles=True"),
    "regions": ("va_space", "va_space=True"),
    "performance": ("performance", "performance=True"),
    "auxiliary_pages": ("auxiliary_pages", "auxiliary_pages=True"),
}


def capture(
    pid: int,
    flags: Optional[Union[CaptureFlags, int]] = None,
    *,
    threads: bool = False,
    contexts: bool = False,
    handles: bool = False,
    va_space: bool = False,
    va_clone: bool = False,
    auxiliary_pages: bool = False,
    performance: bool = False,
    context_flags: Union[ContextFlags, int] = ContextFlags.ALL,
    timeout: float = 2.0,
    stack_bytes: int = 256 * 1024,
) -> Snapshot:
    """Captures process ``pid`` — this process too — stopping it only as long as the
    kernel needs (microseconds per thread; a clone's page-table copy with
    ``va_clone=True``), then reading the rest while it runs on.

    What is captured is ``flags`` together with the keywords: ``threads``, ``contexts``
    (threads with their registers), ``handles`` (file descriptors with their names, types
    and details), ``va_space`` (the memory map with each image's build-id), ``va_clone``
    (a frozen copy-on-write copy of the whole memory, for :meth:`Snapshot.read`, dumps and
    deep stacks), ``auxiliary_pages`` (each thread's stack bytes), ``performance`` (what
    each phase cost). With neither, :data:`DEFAULT_FLAGS`. ``timeout`` is how long (in
    seconds) its threads may take to stop; ``stack_bytes`` how much of each stack
    ``auxiliary_pages`` copies.

    The GIL is released while the capture runs.
    """
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise TypeError(f"pid must be an int, not {type(pid).__name__}")
    chosen = CaptureFlags(flags if flags is not None else 0)
    asked = dict(
        threads=threads,
        contexts=contexts,
        handles=handles,
        va_space=va_space,
        va_clone=va_clone,
        auxiliary_pages=auxiliary_pages,
        performance=performance,
    )
    for name, wanted in asked.items():
        if wanted:
            chosen |= _KEYWORD_FLAGS[name]
    if flags is None and not any(asked.values()):
        chosen = DEFAULT_FLAGS
    native = _pss.capture(pid, int(chosen), int(context_flags), timeout, stack_bytes)
    return Snapshot(native)


def load(path: PathLike) -> Snapshot:
    """Reads a snapshot saved with :meth:`Snapshot.save` (or ``pss capture --save``). It has
    every record; it has no clone (its memory cannot be read)."""
    return Snapshot(_pss.load(os.fspath(path)))


class Snapshot:
    """A snapshot of a process: its records, and with ``va_clone=True`` its frozen memory.

    Use it as a context manager, or call :meth:`free`, to let go of the clone (a process
    holding the target's memory) as soon as it is no longer needed::

        with pss.capture(pid, va_clone=True) as s:
            data = s.read(address, 64)
    """

    def __init__(self, native: _pss.NativeSnapshot) -> None:
        self._native = native
        self._doc: Optional[Dict[str, Any]] = None
        self._cache: Dict[str, Any] = {}

    # -- records -------------------------------------------------------------------------

    def _document(self) -> Dict[str, Any]:
        if self._doc is None:
            self._doc = json.loads(self._native.document())
        return self._doc

    def _cached(self, name: str, make: Callable[[], T]) -> T:
        if name not in self._cache:
            self._cache[name] = make()
        return cast(T, self._cache[name])

    def _raw(self, name: str) -> Any:
        """The document's section for ``name``; :class:`NotCaptured` if it holds none."""
        key, keyword = _SECTIONS[name]
        raw = self._document()[key]
        if raw is None:
            raise NotCaptured(f"the snapshot holds no {name} (capture with {keyword})", what=name)
        return raw

    @property
    def pid(self) -> int:
        """The captured process's pid."""
        return self.capture_info.pid

    @property
    def process(self) -> Process:
        """The process's facts (always captured)."""
        return self._cached("process", lambda: _process(self._document()["process"]))

    @property
    def threads(self) -> List[Thread]:
        """Its threads (``threads=True``; registers with ``contexts=True``)."""
        return self._cached("threads", lambda: [_thread(r) for r in self._raw("threads")])

    @property
    def handles(self) -> List[Handle]:
        """Its file descriptors (``handles=True``)."""
        return self._cached("handles", lambda: [_handle(r) for r in self._raw("handles")])

    @property
    def regions(self) -> List[Region]:
        """Its address space, free gaps included (``va_space=True``)."""
        return self._cached("regions", lambda: [_region(r) for r in self._raw("regions")])

    @property
    def performance(self) -> Performance:
        """What the capture cost (``performance=True``)."""
        return self._cached("performance", lambda: _performance(self._raw("performance")))

    @property
    def auxiliary_pages(self) -> List[AuxiliaryPage]:
        """The stack and TLS pages copied in the pause (``auxiliary_pages=True``); their
        bytes are read with :meth:`read`."""
        return self._cached(
            "auxiliary_pages", lambda: [_auxiliary_page(p) for p in self._raw("auxiliary_pages")]
        )

    @property
    def warnings(self) -> List[SnapshotWarning]:
        """What the capture could not do (never an error: the rest is there)."""
        return self._cached("warnings", lambda: [_warning(w) for w in self._document()["warnings"]])

    @property
    def capture_info(self) -> CaptureInfo:
        """How the capture went: flags, the pause, the time taken."""
        return self._cached("capture", lambda: _capture_info(self._document()["capture"]))

    @property
    def pause(self) -> float:
        """How long the process was stopped, in seconds."""
        return self.capture_info.pause

    # -- memory --------------------------------------------------------------------------

    @property
    def clone_pid(self) -> Optional[int]:
        """The pid of the clone holding the frozen memory, while there is one."""
        return self._native.clone_pid()

    def read(self, address: int, size: int) -> bytes:
        """``size`` bytes of the process's memory at ``address`` as it was at the capture,
        read straight into the returned ``bytes`` without the GIL: from the clone
        (``va_clone=True``), or without one from the stack and TLS pages copied in the
        pause (``auxiliary_pages=True``). :class:`pss.MemoryUnreadable` if any of it cannot
        be read; :class:`pss.NotCaptured` with neither."""
        if size < 0:
            raise ValueError(f"size must not be negative, not {size}")
        return self._native.read(address, size)

    def read_into(self, address: int, buffer: Any) -> int:
        """Reads the memory at ``address`` into ``buffer`` (any writable buffer: a
        ``bytearray`` is filled in place without the GIL, others through one copy), as
        much of it as is readable there; how many bytes. :class:`pss.MemoryUnreadable` if
        nothing is."""
        if isinstance(buffer, bytearray):
            return self._native.read_into(address, buffer)
        view = memoryview(buffer).cast("B")
        data = bytearray(len(view))
        n = self._native.read_into(address, data)
        view[:n] = data[:n]
        return n

    # -- files ---------------------------------------------------------------------------

    def save(self, path: PathLike) -> None:
        """Writes the snapshot's records to ``path`` (``docs/format.md``), whole or not at
        all; :func:`load` reads it back. The clone's memory is not saved (write a core for
        that)."""
        self._native.save(os.fspath(path))

    def write_core(
        self,
        path: PathLike,
        *,
        filter: Optional[str] = None,
        full_memory: bool = False,
        overwrite: bool = False,
        sync: bool = False,
    ) -> DumpSummary:
        """Writes an ELF core of the process as it was (``va_clone=True``, ``threads``,
        ``contexts``, ``va_space``) that gdb, lldb and eu-stack open, like ``gcore`` but
        with the process paused only for the capture. ``filter`` is a ``coredump_filter``
        (``"0x33"``, ``"anon"``, ``"all"``, ``"anon-private+elf-headers"``; by default the
        process's own). Whole or not at all; :class:`pss.OutputExists` unless
        ``overwrite``. Ctrl-C stops it (``KeyboardInterrupt``) and removes the partial
        file. The GIL is released while it writes."""
        return self._dump(path, "core", filter, full_memory, overwrite, sync)

    def write_minidump(
        self,
        path: PathLike,
        *,
        full_memory: bool = False,
        overwrite: bool = False,
        sync: bool = False,
    ) -> DumpSummary:
        """Writes a minidump (Breakpad, Crashpad, rust-minidump, WinDbg read it): threads,
        their stacks, modules; the whole memory with ``full_memory``."""
        return self._dump(path, "minidump", None, full_memory, overwrite, sync)

    def _dump(
        self,
        path: PathLike,
        format: str,
        filter: Optional[str],
        full_memory: bool,
        overwrite: bool,
        sync: bool,
    ) -> DumpSummary:
        path = os.fspath(path)
        s = self._native.write_dump(path, format, filter, full_memory, overwrite, sync)
        return DumpSummary(
            path=path,
            format=s["format"],
            bytes=s["bytes"],
            memory_bytes=s["memory_bytes"],
            holes=s["holes"],
            segments=s["segments"],
            threads=s["threads"],
            filter=s["filter"],
            warnings=s["warnings"],
        )

    # -- stacks --------------------------------------------------------------------------

    def stacks(self, *, debug_info: bool = True) -> Stacks:
        """Every thread's call chain, innermost frame first, with function names and (with
        ``debug_info``, from the modules' DWARF) source lines and inlined calls. Needs
        ``contexts=True`` and the stacks' memory (``auxiliary_pages=True`` or
        ``va_clone=True``) and ``va_space=True`` for the modules."""
        return _stacks(json.loads(self._native.stacks(debug_info)))

    # -- lifetime ------------------------------------------------------------------------

    def free(self) -> None:
        """Lets go of the snapshot's clone now: it is killed and reaped. The records
        (``process``, ``threads``…) stay readable; reading memory, saving, dumping and
        stacks afterwards raise ``ValueError``."""
        if not self._native.freed():
            self._document()
        self._native.free()

    @property
    def freed(self) -> bool:
        """Whether :meth:`free` was called (or the ``with`` block left)."""
        return self._native.freed()

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.free()

    def __repr__(self) -> str:
        info = self.capture_info
        parts = [f"pid={info.pid}", f"pause={info.pause * 1e6:.0f}µs"]
        if not self.freed and self.clone_pid is not None:
            parts.append(f"clone_pid={self.clone_pid}")
        if self.freed:
            parts.append("freed")
        return f"<pss.Snapshot {' '.join(parts)}>"
