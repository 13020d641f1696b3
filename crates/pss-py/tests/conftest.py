"""Targets for the tests: processes the tests spawn (and only those), which report what
they know — their threads' ids, where a known pattern lies, which files they hold — one
fact a line, then ``ready``."""

from __future__ import annotations

import os
import platform
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent

#: This machine's names of registers the tests look at: the instruction and stack
#: pointers, the second argument of a system call, the two the C target's parked thread
#: loads (`target.c`), and the number of read(2).
if platform.machine() == "aarch64":
    IP, SP, ARG1, PARKED_REGS, SYS_READ = "pc", "sp", "x1", ("x19", "x20"), 63
else:
    IP, SP, ARG1, PARKED_REGS, SYS_READ = "rip", "rsp", "rsi", ("r12", "r13"), 0

#: How much longer a target may take on a slow machine: `PSS_TEST_TIME_SCALE` (the arm64
#: suite under emulation sets 4), else 1.
TIME_SCALE = max(1, int(os.environ.get("PSS_TEST_TIME_SCALE", "1") or 1))


class Target:
    """A spawned target; killed and reaped when the test ends."""

    def __init__(self, argv: List[str], **popen: object) -> None:
        self.spawned = time.time()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, **popen)
        self._pending = b""
        self.pid = self.proc.pid
        self.facts: Dict[str, List[List[str]]] = {}
        self.expect("ready")
        self.ready_at = time.time()

    def _line(self, deadline: float) -> str:
        """The next line it wrote (read from the pipe unbuffered, so that select() sees
        exactly what is left)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"target {self.pid} said nothing for too long; {self.describe()}")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise EOFError(f"target {self.pid} ended: {self.proc.wait()}; {self.facts}")
                self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode()

    def describe(self) -> str:
        """Its threads' states and system calls, for a failure's message."""
        out = []
        try:
            for tid in sorted(os.listdir(f"/proc/{self.pid}/task")):
                with open(f"/proc/{self.pid}/task/{tid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                with open(f"/proc/{self.pid}/task/{tid}/syscall") as f:
                    call = f.read().split(" ")[0].strip()
                out.append(f"{tid}:{state}:{call}")
        except OSError as e:
            out.append(str(e))
        return f"threads {' '.join(out)}; facts {self.facts}"

    def expect(self, wanted: str, timeout: float = 10.0) -> None:
        """Reads facts until the line ``wanted``."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._line(deadline)
            if line == wanted:
                return
            key, *rest = line.split(" ")
            self.facts.setdefault(key, []).append(rest)

    def fact(self, key: str) -> List[str]:
        """The first fact named ``key``."""
        return self.facts[key][0]

    def tids(self) -> Dict[str, int]:
        """Thread name to tid."""
        return {name: int(tid) for name, tid in self.facts["tid"]}

    def send(self, command: str, answer: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        self.expect(answer)

    def assert_running(self) -> None:
        """Still running, and traced by no one."""
        assert self.proc.poll() is None, f"target {self.pid} died: {self.proc.returncode}"
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            with open(f"/proc/{self.pid}/task/{tid}/status") as f:
                tracer = [l for l in f if l.startswith("TracerPid:")][0].split()[1]
            assert tracer == "0", f"thread {tid} of {self.pid} is traced by {tracer}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                stream.close()
        for _fd, path, *_ in self.facts.get("file", []):
            if "pss-py-target-" in path and os.path.exists(path):
                os.unlink(path)


@pytest.fixture(scope="session")
def c_target_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/target.c, built once."""
    cc = os.environ.get("CC") or shutil.which("cc") or "gcc"
    exe = tmp_path_factory.mktemp("c-target") / "target"
    subprocess.run(
        [cc, "-std=c11", "-O1", "-g", "-pthread", "-Wall", "-Werror", str(HERE / "target.c"), "-o", str(exe)],
        check=True,
    )
    return exe


@pytest.fixture
def spawn(c_target_exe: Path) -> Iterator:
    """``spawn(mode, *args)`` starts the C target; ``spawn.python(*args)`` the Python
    one (tests/pytarget.py). Each is killed and reaped after the test."""
    made: List[Target] = []

    def c(*args: str, **popen: object) -> Target:
        made.append(Target([str(c_target_exe), *args], **popen))
        return made[-1]

    def python(*args: str, **popen: object) -> Target:
        made.append(Target([sys.executable, str(HERE / "pytarget.py"), *args], **popen))
        return made[-1]

    c.python = python  # type: ignore[attr-defined]
    c.exe = c_target_exe  # type: ignore[attr-defined]
    yield c
    for t in made:
        t.close()
