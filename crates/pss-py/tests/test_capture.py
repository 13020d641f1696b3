"""Captures of spawned C and Python targets, checked against what the targets know and
against psutil's view of the same process."""

from __future__ import annotations

import os
import platform
import sys
import threading
import time

import psutil
import pytest

import pss
from pss import _pss
from conftest import IP, PARKED_REGS, SYS_READ


@pytest.fixture(params=["c", "python"])
def target(request, spawn):
    """A C target and a Python target, each with three worker threads."""
    if request.param == "c":
        return spawn("idle", "3")
    return spawn.python("3")


def test_threads_match_psutil_and_the_target(target):
    s = pss.capture(target.pid, threads=True, contexts=True)
    ours = {t.tid for t in s.threads}
    assert ours == {t.id for t in psutil.Process(target.pid).threads()}
    assert set(target.tids().values()) <= ours
    assert all(t.pid == target.pid for t in s.threads)
    assert all(t.registers and IP in t.registers for t in s.threads)
    target.assert_running()


def test_c_thread_names_and_the_registers_a_thread_set(spawn):
    t = spawn("idle", "2")
    s = pss.capture(t.pid, threads=True, contexts=True)
    by_tid = {th.tid: th for th in s.threads}
    for name, tid in t.tids().items():
        if name != "main":
            assert by_tid[tid].name == name
    parked = by_tid[t.tids()["parked"]]
    r12, r13 = (int(v, 16) for v in t.fact("regs"))
    assert parked.registers[PARKED_REGS[0]] == r12
    assert parked.registers[PARKED_REGS[1]] == r13
    assert parked.syscall == SYS_READ
    assert parked.context_flags == pss.ContextFlags.ALL
    if platform.machine() == "aarch64":
        assert parked.debug_registers is None  # not read on arm64 (docs/aarch64.md)
    else:
        assert parked.debug_registers is not None and len(parked.debug_registers) == 8
    t.assert_running()


def test_open_files_match_psutil(target):
    s = pss.capture(target.pid, handles=True)
    fd, path, pos = target.fact("file")
    # psutil leaves out files that were deleted since they were opened.
    files = {(h.name, h.fd) for h in s.handles if h.type == "File" and not h.name.endswith(" (deleted)")}
    theirs = psutil.Process(target.pid).open_files()
    assert files == {(f.path, f.fd) for f in theirs}
    held = {h.fd: h for h in s.handles}[int(fd)]
    assert (held.name, held.position) == (path, int(pos))
    assert held.position == {f.fd: f.position for f in theirs}[int(fd)]
    assert {h.fd for h in s.handles} == {int(n) for n in os.listdir(f"/proc/{target.pid}/fd")}


def test_memory_maps_match_psutil(target):
    s = pss.capture(target.pid, va_space=True)
    mapped = [r for r in s.regions if r.state != pss.MemoryState.FREE]
    theirs = psutil.Process(target.pid).memory_maps(grouped=False)
    assert [(r.address, r.end, r.perms, r.path or "") for r in mapped] == [
        # psutil names anonymous mappings "[anon]"; /proc/PID/maps leaves them unnamed.
        (int(m.addr.split("-")[0], 16), int(m.addr.split("-")[1], 16), m.perms, "" if m.path == "[anon]" else m.path)
        for m in theirs
    ]
    # Free gaps fill the rest: the regions tile the user address space (x86_64's
    # [vsyscall] page lies beyond it, past the non-canonical hole).
    assert all(a.end == b.address for a, b in zip(s.regions, s.regions[1:]) if b.path != "[vsyscall]")
    assert s.regions[0].address == 0
    exe = os.path.realpath(f"/proc/{target.pid}/exe")
    images = [r for r in mapped if r.path == exe]
    assert images and all(r.type == pss.MemoryType.IMAGE for r in images)
    assert images[0].build_id


def test_process_matches_psutil(target):
    s = pss.capture(target.pid)
    p = psutil.Process(target.pid)
    proc = s.process
    assert (proc.pid, proc.ppid, proc.name, proc.exe) == (p.pid, p.ppid(), p.name(), p.exe())
    assert proc.num_threads == p.num_threads()
    assert proc.uid == p.uids().real
    # psutil counts from /proc/stat's boot time, in whole seconds; ours is exact to the
    # kernel's clock tick, inside the window in which the test started the target.
    assert abs(proc.create_time - p.create_time()) < 1.0
    assert target.spawned - 0.011 <= proc.create_time <= target.ready_at
    assert proc.virtual_size == p.memory_info().vms
    assert proc.exit_time is None
    assert s.pid == target.pid


def test_the_clone_holds_memory_as_it_was(target):
    address, length = int(target.fact("pattern")[0], 16), int(target.fact("pattern")[1])
    with pss.capture(target.pid, va_clone=True) as s:
        before = s.read(address, length)
        target.send("scribble", "scribbled")
        # The target wrote over its pattern; the clone did not see it.
        assert s.read(address, length) == before
        with open(f"/proc/{target.pid}/mem", "rb") as mem:
            mem.seek(address)
            assert mem.read(16) == b"\xee" * 16
    step = 7 if target.proc.args[0].endswith("target") else 5
    add = 3 if step == 7 else 1
    expected = bytes((i * step + add) & 0xFF for i in range(length))
    assert before == expected
    target.assert_running()


def test_read_into_buffers(spawn):
    t = spawn("idle", "1")
    address = int(t.fact("pattern")[0], 16)
    expected = bytes((i * 7 + 3) & 0xFF for i in range(4096))
    with pss.capture(t.pid, va_clone=True) as s:
        buf = bytearray(4096)
        assert s.read_into(address, buf) == 4096
        assert bytes(buf) == expected
        import array

        words = array.array("I", [0] * 1024)
        assert s.read_into(address, words) == 4096
        assert words.tobytes() == expected
        # Short at the end of a mapping, like readinto.
        regions = pss.capture(t.pid, va_space=True).regions
        end = next(a.end for a, b in zip(regions, regions[1:]) if "r" in (a.perms or "") and b.state == pss.MemoryState.FREE)
        tail = bytearray(8192)
        assert s.read_into(end - 100, tail) == 100
        with pytest.raises(pss.MemoryUnreadable) as e:
            s.read(end - 100, 200)
        assert e.value.pid == t.pid


def test_the_context_manager_frees_the_clone(spawn):
    t = spawn("idle", "1")
    with pss.capture(t.pid, va_clone=True, threads=True) as s:
        clone = s.clone_pid
        assert clone is not None and os.path.exists(f"/proc/{clone}")
    assert s.freed
    assert not os.path.exists(f"/proc/{clone}")
    children = set()
    for tid in os.listdir(f"/proc/{t.pid}/task"):
        with open(f"/proc/{t.pid}/task/{tid}/children") as f:
            children |= set(f.read().split())
    assert not children, f"the target was left with children {children}"
    with pytest.raises(ValueError, match="freed"):
        s.read(0, 1)
    # The records outlive the clone, read or not before the block ended.
    assert s.process.pid == t.pid
    assert sorted(th.tid for th in s.threads) == sorted(t.tids().values())
    t.assert_running()


def test_keywords_read_naturally():
    fl = pss.CaptureFlags
    cases = [
        (dict(threads=True), fl.THREADS),
        (dict(contexts=True), fl.THREADS | fl.THREAD_CONTEXT),
        (dict(va_clone=True, performance=True), fl.VA_CLONE | fl.CREATE_MEASURE_PERFORMANCE),
        (dict(flags=fl.HANDLES), fl.HANDLES),
        (dict(flags=fl.HANDLES, threads=True), fl.HANDLES | fl.THREADS),
        (dict(), pss.DEFAULT_FLAGS),
    ]
    pid = os.getpid()
    for kwargs, flags in cases:
        s = pss.capture(pid, **kwargs)
        assert s.capture_info.flags == flags, kwargs
        s.free()


def test_flag_values_are_the_native_ones():
    for name, value in _pss.CAPTURE_FLAGS.items():
        assert pss.CaptureFlags[name] == value
    for name, value in _pss.CONTEXT_FLAGS.items():
        assert pss.ContextFlags[name] == value
    assert pss.__version__ == _pss.__version__


def test_sections_not_captured_say_which_keyword_captures_them(spawn):
    t = spawn("idle", "1")
    s = pss.capture(t.pid, threads=True)
    for section, keyword in [("handles", "handles=True"), ("regions", "va_space=True"), ("performance", "performance=True")]:
        with pytest.raises(pss.NotCaptured, match=keyword) as e:
            getattr(s, section)
        assert isinstance(e.value, LookupError)
    with pytest.raises(pss.NotCaptured, match="va_clone=True"):
        s.read(0, 1)
    assert {th.tid for th in s.threads} == set(t.tids().values())


def test_performance_and_capture_info(spawn):
    t = spawn("idle", "2")
    s = pss.capture(t.pid, threads=True, va_space=True, performance=True)
    perf, info = s.performance, s.capture_info
    assert 0 < perf.pause == info.pause < info.total
    assert perf.total.cycles > 0 and perf.total.seconds > 0
    assert info.threads_stopped == 4
    assert time.time() - 60 < info.started <= time.time()
    assert s.warnings == []


def test_capturing_this_process():
    ready = threading.Event()
    done = threading.Event()
    ids = []

    def worker():
        ids.append(threading.get_native_id())
        ready.set()
        done.wait()

    th = threading.Thread(target=worker)
    th.start()
    ready.wait()
    try:
        s = pss.capture(os.getpid(), threads=True, contexts=True, handles=True)
        tids = {t.tid for t in s.threads}
        assert {threading.get_native_id(), ids[0]} <= tids
        assert {h.fd for h in s.handles} >= {0, 1, 2}
    finally:
        done.set()
        th.join()


def test_save_and_load(spawn, tmp_path):
    t = spawn("idle", "1")
    s = pss.capture(t.pid, va_clone=True, threads=True, contexts=True, handles=True, va_space=True)
    path = tmp_path / "snap.pss"
    s.save(path)
    loaded = pss.load(path)
    assert loaded.threads == s.threads
    assert loaded.handles == s.handles
    assert loaded.regions == s.regions
    assert loaded.process == s.process
    assert loaded.clone_pid is None
    with pytest.raises(pss.NotCaptured):
        loaded.read(int(t.fact("pattern")[0], 16), 1)
    s.free()


@pytest.mark.parametrize("how", ["read", "read_into"])
def test_reads_release_the_gil(spawn, how):
    """Another Python thread runs while a large read is in progress. The switch interval is
    made long, so that this thread gives the GIL up only where a call releases it: held
    through the reads, the other thread could never count during one."""
    t = spawn("idle", "1")
    address = int(t.fact("pattern")[0], 16)
    counts = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counts[0] += 1
            time.sleep(0)  # gives the GIL back at once

    interval = sys.getswitchinterval()
    into = bytearray(1 << 20)
    with pss.capture(t.pid, va_clone=True) as s:
        read = (lambda: s.read(address, 1 << 20)) if how == "read" else (lambda: s.read_into(address, into))
        th = threading.Thread(target=count)
        sys.setswitchinterval(10.0)
        th.start()
        try:
            runs = 0
            for _ in range(200):
                before = counts[0]
                read()
                runs += counts[0] > before
        finally:
            stop.set()
            sys.setswitchinterval(interval)
            th.join()
    assert runs >= 20, runs
    if how == "read_into":
        assert into[:8] == bytes((i * 7 + 3) & 0xFF for i in range(8))
        into.extend(b"x")  # the export that pinned its size during the reads is gone


def test_a_forked_child_captures_with_its_own_engine(spawn):
    """After fork() (multiprocessing's default), the child's captures go to an engine of
    its own, and what it frees of the parent's snapshot leaves the parent's clone alone."""
    t = spawn("idle", "1")
    address = int(t.fact("pattern")[0], 16)
    expected = bytes((i * 7 + 3) & 0xFF for i in range(64))
    with pss.capture(t.pid, va_clone=True) as s:
        parent_engine = pss.engine_pid()
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            ok = False
            try:
                os.close(r)
                threads = pss.capture(t.pid, threads=True).threads
                s.free()
                ok = pss.engine_pid() != parent_engine and threads[0].tid == t.pid
            finally:
                os.write(w, b"1" if ok else b"0")
                os._exit(0)
        os.close(w)
        answer = os.read(r, 1)
        os.close(r)
        os.waitpid(child, 0)
        assert answer == b"1", "the child's capture failed or used the parent's engine"
        assert pss.engine_pid() == parent_engine
        assert s.read(address, 64) == expected
    t.assert_running()


def test_python_threads_capture_at_once(spawn):
    """Several Python threads capture and read at the same time (the GIL released, the
    engine shared): each gets its own target's snapshot and bytes."""
    targets = [spawn("idle", "1") for _ in range(3)]
    expected = bytes((i * 7 + 3) & 0xFF for i in range(256))
    errors: list = []
    done = [0] * len(targets)

    def work(i: int) -> None:
        t = targets[i]
        address = int(t.fact("pattern")[0], 16)
        try:
            for _ in range(5):
                with pss.capture(t.pid, va_clone=True, threads=True) as s:
                    assert s.pid == t.pid
                    assert sorted(th.tid for th in s.threads) == sorted(t.tids().values())
                    assert s.read(address, 256) == expected
                done[i] += 1
        except Exception as e:  # reported below, with the thread it happened in
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(targets))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert done == [5] * len(targets)
    for t in targets:
        t.assert_running()
