"""The exceptions :mod:`pss` raises: psutil's names where psutil has one
(:class:`NoSuchProcess`, :class:`ZombieProcess`, :class:`AccessDenied`,
:class:`TimeoutExpired`), and the ones it has no name for. Each carries the message and
the pid — and where there is one, the tid, address, path or errno — it concerns."""

from __future__ import annotations

from typing import Any, Dict, Optional, Type


class Error(Exception):
    """The base of every pss error."""

    msg: str
    pid: Optional[int] = None
    errno: Optional[int] = None

    def __init__(self, msg: str, pid: Optional[int] = None, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.pid = pid
        for name, value in details.items():
            setattr(self, name, value)

    def __str__(self) -> str:
        return self.msg

    def __reduce__(self) -> Any:
        details = {k: v for k, v in self.__dict__.items() if k not in ("msg", "pid")}
        return (_rebuild, (type(self), self.msg, self.pid, details))


def _rebuild(cls: Type[Error], msg: str, pid: Optional[int], details: Dict[str, Any]) -> Error:
    return cls(msg, pid, **details)


class NoSuchProcess(Error):
    """No process has this pid, or the id is a thread's (then ``tgid`` is its process)."""

    tgid: Optional[int] = None


class ZombieProcess(NoSuchProcess):
    """The process has exited and waits for its parent to reap it: nothing to capture."""


class ProcessExited(NoSuchProcess):
    """The process exited during the capture; nothing of it was left behind."""


class AccessDenied(Error):
    """The kernel refused to let this process trace the target (another user's process,
    Yama's ``ptrace_scope``, no ``CAP_SYS_PTRACE``)."""


class AlreadyTraced(AccessDenied):
    """Another tracer (a debugger, strace) holds the target: ``tracer`` is its pid,
    ``tid`` the thread found traced."""

    tid: Optional[int] = None
    tracer: Optional[int] = None


class TimeoutExpired(Error):
    """A thread (``tid``) did not stop within ``seconds`` (uninterruptible sleep, a
    vfork); the target was released."""

    tid: Optional[int] = None
    seconds: Optional[float] = None


class Busy(TimeoutExpired):
    """Another capturer (another pss engine) held the target for all ``seconds`` this
    capture could wait; try again."""


class NotSupported(Error):
    """A capture flag or request this build does not implement (``docs/differences.md``)."""


class NotCaptured(Error, LookupError):
    """The snapshot holds no such information (``what``): capture it with the flag the
    message names."""

    what: Optional[str] = None


class InvalidArgument(Error, ValueError):
    """An argument the library cannot take."""


class CorruptSnapshot(Error):
    """A snapshot file is damaged or is not a snapshot."""


class SnapshotFileError(Error):
    """A snapshot file (``path``) could not be written or read."""

    path: Optional[str] = None


class MemoryUnreadable(Error):
    """Nothing readable at ``address`` of the clone: unmapped, not readable, or a range the
    clone does not hold."""

    address: Optional[int] = None


class CloneVanished(Error):
    """The clone (``clone_pid``) went away before its memory was read."""

    clone_pid: Optional[int] = None


class CloneFailed(Error):
    """The kernel refused to make the clone (memory, a pids limit, a frozen cgroup); the
    target was restored and released."""


class OutputError(Error):
    """Writing a dump failed (``errno``: a full disk, a file size limit…); the partial
    file was removed."""


class OutputExists(OutputError):
    """The dump's file (``path``) exists and overwriting it was not asked for."""

    path: Optional[str] = None


class EngineError(Error):
    """The capture engine process could not be found, started or reached, or failed."""


__all__ = [
    "Error",
    "NoSuchProcess",
    "ZombieProcess",
    "ProcessExited",
    "AccessDenied",
    "AlreadyTraced",
    "TimeoutExpired",
    "Busy",
    "NotSupported",
    "NotCaptured",
    "InvalidArgument",
    "CorruptSnapshot",
    "SnapshotFileError",
    "MemoryUnreadable",
    "CloneVanished",
    "CloneFailed",
    "OutputError",
    "OutputExists",
    "EngineError",
]
