"""Cores, minidumps and stacks from Python, judged by gdb and eu-stack; Ctrl-C during a
dump; the example program."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import pss
from conftest import HERE, REPO


def park_line() -> int:
    """The line of target.c where park_here blocks."""
    lines = (HERE / "target.c").read_text().splitlines()
    return next(i for i, l in enumerate(lines, 1) if "if (read(block_fd, &b, 1) < 0) _exit(4);" in l)


def dump_flags() -> dict:
    return dict(va_clone=True, contexts=True, va_space=True)


def test_a_core_opens_in_gdb_with_the_threads_and_the_memory(spawn, tmp_path):
    t = spawn("idle", "2")
    address = int(t.fact("pattern")[0], 16)
    core = tmp_path / "core"
    with pss.capture(t.pid, **dump_flags()) as s:
        summary = s.write_core(core)
    assert summary.format == "core" and summary.threads == 4
    assert summary.path == str(core) and core.stat().st_size == summary.bytes
    out = subprocess.run(
        ["gdb", "-nx", "-batch", "-ex", "info threads", "-ex", f"x/4xb {address:#x}", str(spawn.exe), str(core)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=True,
    ).stdout
    for tid in t.tids().values():
        assert f"LWP {tid}" in out, out
    assert re.search(r":\s+0x03\s+0x0a\s+0x11\s+0x18", out), out
    t.assert_running()


def test_eu_stack_reads_the_core(spawn, tmp_path):
    t = spawn("idle", "1")
    core = tmp_path / "core"
    with pss.capture(t.pid, **dump_flags()) as s:
        s.write_core(core, filter="anon")
    out = subprocess.run(
        ["eu-stack", "--core", str(core), "--executable", str(spawn.exe)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ).stdout
    worker = t.tids()["worker-0"]
    section = out.split(f"TID {worker}:")[1].split("TID ")[0]
    assert "park_here" in section and "worker" in section, out


def test_a_minidump(spawn, tmp_path):
    t = spawn("idle", "1")
    path = tmp_path / "dump.dmp"
    with pss.capture(t.pid, **dump_flags()) as s:
        summary = s.write_minidump(path)
    data = path.read_bytes()
    assert data[:4] == b"MDMP" and len(data) == summary.bytes
    assert summary.format == "minidump" and summary.threads == 3


def test_stacks_name_the_functions_and_lines_the_threads_are_in(spawn):
    t = spawn("idle", "2")
    with pss.capture(t.pid, contexts=True, auxiliary_pages=True, va_space=True) as s:
        stacks = s.stacks()
    by_tid = {st.tid: st for st in stacks}
    assert set(by_tid) == set(t.tids().values())
    for name in ("worker-0", "worker-1"):
        st = by_tid[t.tids()[name]]
        functions = [f.function for f in st.frames]
        assert "park_here" in functions and "worker" in functions, functions
        assert functions.index("park_here") < functions.index("worker")
        park = st.frames[functions.index("park_here")]
        assert park.file.endswith("target.c") and park.line == park_line()
        assert park.module == str(spawn.exe)
        assert st.end == "complete", st
    assert stacks.warnings == []
    # Symbols only: the names, without the lines.
    with pss.capture(t.pid, contexts=True, auxiliary_pages=True, va_space=True) as s:
        quick = s.stacks(debug_info=False)
    worker = next(st for st in quick if st.tid == t.tids()["worker-0"])
    assert "park_here" in [f.function for f in worker.frames]


def test_ctrl_c_stops_a_dump_and_leaves_no_file(spawn, tmp_path):
    t = spawn("big", "512")
    out = tmp_path / "core"
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import os, pss
            s = pss.capture({t.pid}, va_clone=True, contexts=True, va_space=True)
            print("writing", flush=True)
            try:
                s.write_core({str(out)!r}, filter="all")
                print("finished", flush=True)
            except KeyboardInterrupt:
                print("interrupted", sorted(os.listdir({str(tmp_path)!r})), flush=True)
            s.free()
            """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert writer.stdout.readline() == "writing\n"
        time.sleep(0.05)
        writer.send_signal(signal.SIGINT)
        assert writer.stdout.readline() == "interrupted []\n"
        assert writer.wait(30) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    t.assert_running()


def test_the_example_program(spawn):
    t = spawn("idle", "1")
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "pss_threads.py"), str(t.pid)],
        stdout=subprocess.PIPE, text=True, check=True,
    ).stdout
    lines = out.splitlines()
    assert re.fullmatch(r"3 thread\(s\), paused \d+ µs", lines[0]), out
    for name, tid in t.tids().items():
        thread_name = "target" if name == "main" else name
        assert any(re.fullmatch(rf"thread {tid} {thread_name}: pc 0x[0-9a-f]+", l) for l in lines), out


def test_sampled_stacks_count_each_thread_every_round(spawn, tmp_path):
    t = spawn("idle", "2")
    profile = pss.sample_stacks(t.pid, samples=6, interval=0.005)
    assert profile.pid == t.pid and profile.rounds == 6
    assert {th.tid for th in profile} == set(t.tids().values())
    for th in profile:
        assert th.samples == 6 and sum(s.count for s in th.stacks) == 6
    worker = next(th for th in profile if th.tid == t.tids()["worker-0"])
    # Parked in read(): one chain, every round.
    assert len(worker.stacks) == 1
    functions = [f.function for f in worker.stacks[0].frames]
    assert "park_here" in functions and "worker" in functions, functions
    folded = profile.folded().splitlines()
    line = next(x for x in folded if x.startswith(f"{worker.name}-{worker.tid};"))
    assert ";worker;" in line and line.endswith(" 6"), line
    assert profile.pprof()[:2] == b"\x1f\x8b"  # gzip
    out = tmp_path / "p.pb.gz"
    profile.write_pprof(out)
    assert out.read_bytes() == profile.pprof()
    t.assert_running()


def test_sampling_a_missing_process_raises_and_bad_arguments_are_refused():
    with pytest.raises(pss.NoSuchProcess):
        pss.sample_stacks(999_999_999, samples=2)
    with pytest.raises(ValueError):
        pss.sample_stacks(1, samples=0)
    with pytest.raises(ValueError):
        pss.sample_stacks(1, samples=2, interval=-1.0)


def test_ctrl_c_ends_sampling_as_keyboard_interrupt(spawn):
    t = spawn("idle", "1")
    sampler = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import pss
            print("sampling", flush=True)
            try:
                pss.sample_stacks({t.pid}, samples=100_000, interval=0.01, debug_info=False)
                print("finished", flush=True)
            except KeyboardInterrupt:
                print("interrupted", flush=True)
            """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert sampler.stdout.readline() == "sampling\n"
        time.sleep(0.5)
        sampler.send_signal(signal.SIGINT)
        assert sampler.stdout.readline() == "interrupted\n"
        assert sampler.wait(30) == 0
    finally:
        if sampler.poll() is None:
            sampler.kill()
            sampler.wait()
    t.assert_running()


def test_watch_yields_a_trigger_then_finishes(spawn):
    t = spawn("idle", "2")
    events = list(pss.watch(t.pid, threads=3, hold=0, interval=0.05))
    assert [e.kind for e in events] == ["started", "trigger", "finished"], events
    trigger = events[1]
    assert trigger.pid == t.pid and trigger.trigger == "threads"
    assert trigger.threads == len(os.listdir(f"/proc/{t.pid}/task"))
    assert trigger.commit > 0 and trigger.fds >= 3
    t.assert_running()


def test_watch_sees_a_process_exit_and_counts_timed_triggers(spawn):
    t = spawn("exit-after", "600")
    started = time.monotonic()
    kinds = [(e.kind, e.trigger) for e in pss.watch(t.pid, every=0.2, count=0, interval=0.05)]
    assert kinds[0] == ("started", None)
    assert ("exited", None) in kinds and kinds[-1] == ("finished", None)
    timed = [k for k in kinds if k[0] == "trigger"]
    assert 2 <= len(timed) <= 5, kinds
    assert time.monotonic() - started < 5


def test_watch_refuses_what_it_cannot_do():
    with pytest.raises(ValueError):
        next(pss.watch(1))
    with pytest.raises(ValueError):
        next(pss.watch(1, name="x", cpu=1))
