"""Watching processes for ProcDump's conditions: :func:`watch` and its :class:`WatchEvent`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Iterator, Optional

from . import _pss


@dataclass(frozen=True)
class WatchEvent:
    """What a poll of :func:`watch` saw."""

    kind: str
    """``started`` (a process came under watch), ``trigger`` (a condition held long
    enough: act now), ``exited`` (a watched process is gone) or ``finished`` (the watch is
    over: ``count`` triggers fired, or no process is left)."""
    pid: Optional[int] = None
    name: Optional[str] = None
    trigger: Optional[str] = None
    """``cpu``, ``cpu-below``, ``mem``, ``mem-below``, ``threads``, ``fds`` or ``time``."""
    condition: Optional[str] = None
    """The condition in words, e.g. ``cpu >= 80%``."""
    time: Optional[float] = None
    """When it fired (seconds since the epoch)."""
    cpu_percent: Optional[float] = None
    """CPU over the last interval, percent of one CPU (every thread together)."""
    commit: Optional[int] = None
    """Private resident memory plus swap, bytes."""
    threads: Optional[int] = None
    fds: Optional[int] = None
    why: Optional[str] = None
    """For ``finished``: why the watch is over."""


def watch(
    pid: Optional[int] = None,
    *,
    name: Optional[str] = None,
    pgid: Optional[int] = None,
    cpu: Optional[float] = None,
    cpu_below: Optional[float] = None,
    mem: Optional[int] = None,
    mem_below: Optional[int] = None,
    threads: Optional[int] = None,
    fds: Optional[int] = None,
    every: Optional[float] = None,
    hold: float = 10.0,
    interval: float = 1.0,
    count: int = 1,
    cooldown: float = 0.0,
) -> Iterator[WatchEvent]:
    """Watches process ``pid`` (or every process named ``name``, including ones started
    later, or of process group ``pgid``) and yields an event each time something happens:
    a ``trigger`` when a condition has held for ``hold`` seconds (``pss watch --for``) —
    ``cpu``/``cpu_below`` percent of one CPU, ``mem``/``mem_below`` bytes of commit,
    ``threads``, ``fds``, or ``every`` seconds — polled every ``interval`` seconds from
    ``/proc`` only (nothing traces or stops the process). After ``count`` triggers (0: no
    limit), or when no process is left, it yields ``finished`` and ends. What to do on a
    trigger is the caller's: :func:`pss.capture` and ``write_core`` it, say."""
    targets = [(k, v) for k, v in (("pid", pid), ("name", name), ("pgid", pgid)) if v is not None]
    if len(targets) != 1:
        raise ValueError("give exactly one of pid, name, pgid")
    wanted = {
        "cpu": cpu, "cpu_below": cpu_below, "mem": mem, "mem_below": mem_below,
        "threads": threads, "fds": fds, "every": every,
    }
    conditions = [(k, float(v)) for k, v in wanted.items() if v is not None]
    kind, value = targets[0]
    native = _pss.NativeWatcher((kind, str(value)), conditions, hold, cooldown, count)
    while True:
        started = time.monotonic()
        for doc in native.poll():
            yield WatchEvent(**json.loads(doc))
        if native.finished():
            return
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
