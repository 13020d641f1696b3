"""Every exception class, raised by the situation it names, with its attributes; and the
target unharmed by each."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

import pss
from conftest import TIME_SCALE, Target


def run_python(code: str, prefix=(), **popen) -> dict:
    """Runs ``code`` in a new interpreter (which prints one JSON line), under the command
    ``prefix`` if any; that line."""
    out = subprocess.run(
        [*prefix, sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        **popen,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def reaped_pid(spawn) -> int:
    """The pid of a target that has exited and been reaped."""
    t = spawn("exit-after", "0")
    t.proc.wait()
    return t.pid


def test_no_such_process(spawn):
    pid = reaped_pid(spawn)
    with pytest.raises(pss.NoSuchProcess) as e:
        pss.capture(pid, threads=True)
    assert e.value.pid == pid
    assert str(pid) in str(e.value)


def test_a_thread_id_is_no_process(spawn):
    t = spawn("idle", "1")
    tid = t.tids()["worker-0"]
    with pytest.raises(pss.NoSuchProcess) as e:
        pss.capture(tid)
    assert (e.value.pid, e.value.tgid) == (tid, t.pid)


def test_zombie(spawn):
    t = spawn("exit-after", "0")
    deadline = time.monotonic() + 10
    while open(f"/proc/{t.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.005)
    with pytest.raises(pss.ZombieProcess) as e:
        pss.capture(t.pid)
    assert isinstance(e.value, pss.NoSuchProcess) and e.value.pid == t.pid


def test_a_process_exiting_mid_capture(spawn):
    """Targets that exit while being captured over and over: each capture succeeds or
    says the process is gone, and the target exits by itself, with its own status."""
    seen = set()
    for _ in range(20):
        t = spawn("exit-after", "30")
        while True:
            try:
                pss.capture(t.pid, va_space=True, handles=True, threads=True, contexts=True).free()
            except pss.NoSuchProcess as e:
                assert e.pid == t.pid
                seen.add(type(e))
                if type(e) is not pss.ProcessExited:
                    break
        assert t.proc.wait() == 0
        if pss.ProcessExited in seen:
            break
    assert seen <= {pss.ProcessExited, pss.ZombieProcess}, seen
    if TIME_SCALE == 1:
        # Under emulation a 100-thread exit is slow enough that every capture may find the
        # leader a zombie already: gone either way.
        assert pss.ProcessExited in seen, seen


def test_access_denied(spawn):
    """A target that made itself non-dumpable may only be traced with CAP_SYS_PTRACE,
    which the capturing process (and so its engine) lacks: root's is dropped."""
    t = spawn("idle", "1", env=dict(os.environ, PSS_TARGET_NODUMP="1"))
    code = f"""
        import json, pss
        try:
            pss.capture({t.pid})
        except pss.AccessDenied as e:
            print(json.dumps(dict(cls=type(e).__name__, pid=e.pid, errno=e.errno)))
        """
    drop = ["setpriv", "--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace"] if os.geteuid() == 0 else []
    got = run_python(code, prefix=drop)
    assert got == dict(cls="AccessDenied", pid=t.pid, errno=errno.EPERM)
    t.assert_running()


PTRACE_SEIZE = 0x4206


def test_already_traced(spawn):
    t = spawn("idle", "1")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    assert libc.ptrace(PTRACE_SEIZE, t.pid, None, None) == 0, ctypes.get_errno()
    with pytest.raises(pss.AlreadyTraced) as e:
        pss.capture(t.pid, threads=True)
    assert isinstance(e.value, pss.AccessDenied)
    assert (e.value.pid, e.value.tracer) == (t.pid, os.getpid())
    assert e.value.tid in t.tids().values()
    # Our seizing ends when it is killed (after the test); the capture left it running.
    assert t.proc.poll() is None


def test_a_thread_that_cannot_stop_times_out(spawn):
    t = spawn("vfork", "3000")
    vforker = int(t.fact("vforker")[0])
    started = time.monotonic()
    with pytest.raises(pss.TimeoutExpired) as e:
        pss.capture(t.pid, threads=True, timeout=0.2)
    assert time.monotonic() - started < 1.5
    assert (e.value.pid, e.value.tid, e.value.seconds) == (t.pid, vforker, 0.2)
    t.assert_running()


def test_busy_while_another_capturer_holds_the_target(spawn):
    """Another process's capture waits on a thread that cannot stop, holding the target;
    ours gives up after its own timeout."""
    t = spawn("vfork", str(6000 * TIME_SCALE))
    other = subprocess.Popen(
        [sys.executable, "-c", f"import pss, sys\nprint('capturing', flush=True)\ntry:\n    pss.capture({t.pid}, threads=True, timeout=4)\nexcept pss.TimeoutExpired:\n    print('timed out')\n"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout.readline() == "capturing\n"
        time.sleep(1.0)
        with pytest.raises(pss.Busy) as e:
            pss.capture(t.pid, threads=True, timeout=0.3)
        assert isinstance(e.value, pss.TimeoutExpired)
        assert e.value.pid == t.pid and 0.3 <= e.value.seconds < 2
        assert other.stdout.readline() == "timed out\n"
    finally:
        other.kill() if other.poll() is None else None
        other.wait()
    t.assert_running()


def test_not_supported(spawn):
    t = spawn("idle", "1")
    with pytest.raises(pss.NotSupported, match="create-force-breakaway"):
        pss.capture(t.pid, pss.CaptureFlags.CREATE_FORCE_BREAKAWAY | pss.CaptureFlags.THREADS)


def test_invalid_argument(spawn, tmp_path):
    t = spawn("idle", "1")
    with pss.capture(t.pid, va_clone=True, contexts=True, va_space=True) as s:
        with pytest.raises(pss.InvalidArgument, match="core filter") as e:
            s.write_core(tmp_path / "core", filter="bogus")
        assert isinstance(e.value, ValueError)
    with pytest.raises(ValueError, match="timeout"):
        pss.capture(t.pid, timeout=0)
    with pytest.raises(TypeError):
        pss.capture(str(t.pid))


def test_corrupt_and_missing_snapshot_files(tmp_path):
    bad = tmp_path / "bad.pss"
    bad.write_bytes(b"not a snapshot at all" * 10)
    with pytest.raises(pss.CorruptSnapshot):
        pss.load(bad)
    with pytest.raises(pss.SnapshotFileError) as e:
        pss.load(tmp_path / "missing.pss")
    assert e.value.errno == errno.ENOENT
    assert e.value.path == str(tmp_path / "missing.pss")


def test_unreadable_memory(spawn):
    t = spawn("idle", "1")
    with pss.capture(t.pid, va_clone=True) as s:
        with pytest.raises(pss.MemoryUnreadable) as e:
            s.read(0x1000, 8)
        assert (e.value.pid, e.value.address) == (t.pid, 0x1000)


def test_a_clone_killed_under_us(spawn):
    t = spawn("idle", "1")
    address = int(t.fact("pattern")[0], 16)
    s = pss.capture(t.pid, va_clone=True)
    clone = s.clone_pid
    os.kill(clone, 9)
    deadline = time.monotonic() + 5
    with pytest.raises(pss.CloneVanished) as e:
        while time.monotonic() < deadline:
            s.read(address, 16)
            time.sleep(0.01)
    assert (e.value.pid, e.value.clone_pid) == (t.pid, clone)
    s.free()
    # The killed clone was reaped: the target holds no zombie of ours.
    children = open(f"/proc/{t.pid}/task/{t.pid}/children").read().split()
    assert str(clone) not in children and not os.path.exists(f"/proc/{clone}")
    t.assert_running()


def test_clone_failed(spawn, tmp_path):
    """A target that may not fork (an RLIMIT_NPROC of 1, for a user other than root, whose
    processes are not counted) cannot be cloned; it is released unharmed."""

    def limit_processes():
        resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)

    # An executable the nobody user can reach.
    shared = tempfile.mkdtemp(prefix="pss-py-test-")
    try:
        os.chmod(shared, 0o755)
        exe = shutil.copy(spawn.exe, shared)
        t = Target([exe, "exit-after", "60000"], preexec_fn=limit_processes)
        try:
            with pytest.raises(pss.CloneFailed) as e:
                pss.capture(t.pid, va_clone=True)
            assert e.value.pid == t.pid
            assert "could not be made" in str(e.value)
            t.assert_running()
            s = pss.capture(t.pid, threads=True)
            assert [th.tid for th in s.threads] == [t.pid]
        finally:
            t.close()
    finally:
        shutil.rmtree(shared)


def test_output_errors(spawn, tmp_path):
    t = spawn("idle", "1")
    with pss.capture(t.pid, va_clone=True, contexts=True, va_space=True) as s:
        core = tmp_path / "core"
        core.write_bytes(b"keep me")
        with pytest.raises(pss.OutputExists) as e:
            s.write_core(core)
        assert e.value.path == str(core) and core.read_bytes() == b"keep me"
        assert isinstance(e.value, pss.OutputError)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, hard))
        try:
            with pytest.raises(pss.OutputError) as e:
                s.write_core(tmp_path / "big-core")
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert e.value.errno == errno.EFBIG
        assert sorted(p.name for p in tmp_path.iterdir()) == ["core"], "no partial file left"


def test_engine_error(spawn):
    t = spawn("idle", "1")
    got = run_python(
        f"""
        import json, pss
        try:
            pss.capture({t.pid})
        except pss.EngineError as e:
            print(json.dumps(dict(cls=type(e).__name__, msg=str(e))))
        """,
        env=dict(os.environ, PSS_ENGINE="/nonexistent/pss-engine"),
    )
    assert got["cls"] == "EngineError" and "/nonexistent/pss-engine" in got["msg"], got
    t.assert_running()


def test_errors_pickle_with_their_attributes():
    e = pss.AlreadyTraced("process 5 is already traced", pid=5, tid=6, tracer=7)
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is pss.AlreadyTraced
    assert (back.msg, back.pid, back.tid, back.tracer) == (e.msg, 5, 6, 7)


def test_every_error_is_a_pss_error():
    for name in pss.__all__:
        obj = getattr(pss, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, pss.Error), name
