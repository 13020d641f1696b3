"""pss: snapshots of live Linux processes, after the Windows Process Snapshotting API.

Stop a process for microseconds (or for the kernel's page-table copy, with a clone), then
read its threads, registers, file descriptors, memory map and frozen memory at leisure::

    import pss
    with pss.capture(pid, va_clone=True) as s:
        print(s.process.exe, [t.tid for t in s.threads], s.read(address, 16))

The target is never left stopped, traced or with a child it did not make: everything
that stops or clones it happens in a private engine process (``docs/engine.md``).
"""

from . import _errors
from ._errors import (
    AccessDenied,
    AlreadyTraced,
    Busy,
    CloneFailed,
    CloneVanished,
    CorruptSnapshot,
    EngineError,
    Error,
    InvalidArgument,
    MemoryUnreadable,
    NoSuchProcess,
    NotCaptured,
    NotSupported,
    OutputError,
    OutputExists,
    ProcessExited,
    SnapshotFileError,
    TimeoutExpired,
    ZombieProcess,
)
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
from ._pss import __version__, engine_pid, shutdown_engine
from ._records import (
    AuxiliaryPage,
    CaptureInfo,
    DumpSummary,
    Frame,
    Handle,
    Performance,
    Phase,
    Process,
    Region,
    SnapshotWarning,
    Stacks,
    Thread,
    ThreadStack,
)
from ._profile import Profile, SampledStack, SampledThread, sample_stacks
from ._snapshot import DEFAULT_FLAGS, Snapshot, capture, load
from ._watch import WatchEvent, watch

__all__ = [
    "__version__",
    "capture",
    "load",
    "sample_stacks",
    "watch",
    "WatchEvent",
    "Snapshot",
    "Profile",
    "SampledThread",
    "SampledStack",
    "DEFAULT_FLAGS",
    "engine_pid",
    "shutdown_engine",
    # records
    "Process",
    "Thread",
    "Handle",
    "Region",
    "Performance",
    "Phase",
    "AuxiliaryPage",
    "CaptureInfo",
    "SnapshotWarning",
    "Stacks",
    "ThreadStack",
    "Frame",
    "DumpSummary",
    # flags
    "CaptureFlags",
    "ContextFlags",
    "ProcessFlags",
    "ThreadFlags",
    "HandleFlags",
    "ObjectType",
    "MemoryState",
    "MemoryType",
]
__all__ += _errors.__all__
