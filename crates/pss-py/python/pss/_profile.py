"""Sampled stacks: :func:`sample_stacks` and the :class:`Profile` it returns."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterator, List, Mapping, Union

from . import _pss
from ._records import Frame


@dataclass(frozen=True)
class SampledStack:
    """One call chain of a thread, and how many rounds found the thread in it."""

    count: int
    frames: List[Frame]
    """Innermost first."""


@dataclass(frozen=True)
class SampledThread:
    """A thread's chains, most sampled first."""

    tid: int
    name: str
    samples: int
    """Rounds the thread was found in (the sum of its chains' counts)."""
    stacks: List[SampledStack]


@dataclass(frozen=True)
class Profile:
    """Stacks sampled from one process (``pss stack --samples N``), iterable as its
    threads. :meth:`folded` and :meth:`pprof` write it for flame graphs and pprof tools."""

    pid: int
    name: str
    rounds: int
    interval: float
    """Seconds between the starts of two rounds, as asked."""
    duration: float
    """Seconds from the first round to the end of the last."""
    longest_stop: float
    """The longest any thread was stopped in any round, in seconds (a thread read while
    blocked in a system call is not stopped)."""
    threads_stopped: int
    threads: List[SampledThread]
    warnings: List[str] = field(default_factory=list)
    _native: Any = field(default=None, repr=False, compare=False)

    def __iter__(self) -> Iterator[SampledThread]:
        return iter(self.threads)

    def __len__(self) -> int:
        return len(self.threads)

    def folded(self) -> str:
        """Collapsed stacks, ``NAME-TID;outer;…;inner COUNT`` a line: the input of
        ``flamegraph.pl`` and ``inferno-flamegraph``."""
        return str(self._native.folded())

    def pprof(self) -> bytes:
        """A gzipped pprof ``profile.proto`` (``go tool pprof``, Pyroscope, Parca)."""
        return bytes(self._native.pprof())

    def write_pprof(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes :meth:`pprof` to ``path``."""
        with open(path, "wb") as f:
            f.write(self.pprof())


def sample_stacks(
    pid: int,
    samples: int = 100,
    interval: float = 0.01,
    *,
    debug_info: bool = True,
    consistent: bool = False,
    timeout: float = 2.0,
) -> Profile:
    """Samples the stacks of process ``pid``: ``samples`` rounds, ``interval`` seconds
    apart (a round that takes longer delays the next), aggregated. Each round reads the
    threads as ``pss stack`` does: a thread blocked in a system call is not stopped, any
    other is stopped alone for its registers and stack (``consistent=True``: all stopped
    together). A process that exits ends sampling with a warning in
    :attr:`Profile.warnings`; a ``KeyboardInterrupt`` ends it and is raised."""
    native = _pss.sample_stacks(pid, samples, interval, debug_info, consistent, timeout)
    return _profile(json.loads(native.json()), native)


def _profile(d: Mapping[str, Any], native: Any) -> Profile:
    def thread(t: Mapping[str, Any]) -> SampledThread:
        return SampledThread(
            tid=t["tid"],
            name=t["name"],
            samples=t["samples"],
            stacks=[
                SampledStack(count=s["count"], frames=[Frame(**f) for f in s["frames"]])
                for s in t["stacks"]
            ],
        )

    return Profile(
        pid=d["pid"],
        name=d["name"],
        rounds=d["rounds"],
        interval=d["interval_us"] / 1e6,
        duration=d["duration_us"] / 1e6,
        longest_stop=d["longest_stop_us"] / 1e6,
        threads_stopped=d["threads_stopped"],
        threads=[thread(t) for t in d["threads"]],
        warnings=list(d["warnings"]),
        _native=native,
    )
