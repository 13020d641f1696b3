"""Every field of every record reaches Python, or is left out on purpose: each key of
each record of the document (``docs/json.md``; the Rust side checks that the document shows
every field of the records' one field list) is read by ``pss._records`` into a record, or
is listed in ``_records._NOT_EXPOSED`` with the reason."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Mapping, Set

import pytest

import pss
from pss import _records
from conftest import ARG1, SP


class Recording(Mapping):
    """A record's object of the document that notes which keys are read (its ``linux``
    object's as ``linux.KEY``)."""

    def __init__(self, d: Dict[str, Any], read: Set[str], prefix: str = "") -> None:
        self._d, self._read, self._prefix = d, read, prefix

    def __getitem__(self, key: str) -> Any:
        value = self._d[key]
        self._read.add(self._prefix + key)
        if key == "linux" and isinstance(value, dict) and not self._prefix:
            return Recording(value, self._read, "linux.")
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


def keys(d: Dict[str, Any]) -> Set[str]:
    """A record object's keys, and its ``linux`` object's as ``linux.KEY``."""
    out = set(d)
    if isinstance(d.get("linux"), dict):
        out |= {f"linux.{k}" for k in d["linux"]}
    return out


def check(kind: str, objects: List[Dict[str, Any]], convert: Callable[[Mapping], Any]) -> None:
    assert objects, f"the capture made no {kind} to check"
    left_out = _records._NOT_EXPOSED[kind]
    for obj in objects:
        read: Set[str] = set()
        convert(Recording(obj, read))
        unread = keys(obj) - read - set(left_out)
        assert not unread, f"{kind}: {sorted(unread)} neither read into a record nor in _NOT_EXPOSED"
    seen = set().union(*(keys(o) for o in objects))
    stale = set(left_out) - seen
    assert not stale, f"{kind}: _NOT_EXPOSED names {sorted(stale)}, which the document lacks"


def test_every_key_of_every_record_is_read_or_left_out_on_purpose(spawn):
    t = spawn("idle", "2")
    with pss.capture(
        t.pid,
        threads=True,
        contexts=True,
        handles=True,
        va_space=True,
        va_clone=True,
        auxiliary_pages=True,
        performance=True,
    ) as s:
        doc = s._document()
        check("process", [doc["process"]], _records._process)
        check("thread", doc["threads"], _records._thread)
        check("handle", doc["handles"], _records._handle)
        check("region", [r for r in doc["va_space"] if r["linux"]], _records._region)
        check("auxiliary_page", doc["auxiliary_pages"], _records._auxiliary_page)
        check("performance", [doc["performance"]], _records._performance)
        check("capture", [doc["capture"]], _records._capture_info)
        check("warning", [{"message": "m", "tid": 1, "fd": None}], _records._warning)
        # The sections: each a property of the snapshot, but for the document's version and
        # the clone, whose pid is Snapshot.clone_pid.
        assert set(doc) - {"schema_version", "va_clone"} == {
            "process", "threads", "handles", "va_space", "auxiliary_pages", "performance",
            "capture", "warnings",
        }
    t.assert_running()


def test_without_a_clone_the_stack_bytes_copied_in_the_pause_are_read(spawn):
    t = spawn("idle", "1")
    s = pss.capture(t.pid, threads=True, contexts=True, auxiliary_pages=True)
    parked = next(th for th in s.threads if th.tid == t.tids()["parked"])
    # The parked thread waits in read() into a byte of its stack set to 0xa7.
    assert s.read(parked.registers[ARG1], 1) == b"\xa7"
    stack = next(p for p in s.auxiliary_pages if p.tid == parked.tid and p.kind == "stack")
    assert stack.address <= parked.registers[SP] < stack.end
    assert len(s.read(stack.address, stack.size)) == stack.size
    with pss.capture(t.pid, threads=True) as none:
        with pytest.raises(pss.NotCaptured, match="va_clone=True"):
            none.read(stack.address, 1)
    with pytest.raises(pss.MemoryUnreadable, match="capture a VA clone"):
        s.read(int(t.fact("pattern")[0], 16), 1)
    t.assert_running()
