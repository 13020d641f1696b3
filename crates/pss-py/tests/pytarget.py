"""The Python target of the tests: threads named by their target names, a file it holds,
and a known pattern in a buffer, reported as facts (see conftest.py), then ``ready``.
Commands on stdin: ``scribble`` (overwrites the pattern; answers ``scribbled``), ``exit``."""

import ctypes
import os
import sys
import tempfile
import threading

PATTERN_LEN = 1 << 16


_LOCK = threading.Lock()


def fact(*words: object) -> None:
    """One line, whole: threads report at the same time."""
    with _LOCK:
        sys.stdout.write(" ".join(map(str, words)) + "\n")
        sys.stdout.flush()


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    pattern = ctypes.create_string_buffer(bytes((i * 5 + 1) & 0xFF for i in range(PATTERN_LEN)), PATTERN_LEN)
    fact("pattern", hex(ctypes.addressof(pattern)), PATTERN_LEN)
    f = tempfile.NamedTemporaryFile(prefix="pss-py-pytarget-")
    f.write(b"x" * 4096)
    f.flush()
    f.seek(777)
    fact("file", f.fileno(), f.name, f.tell())
    fact("tid", "main", threading.get_native_id())
    stop = threading.Event()
    started = threading.Barrier(threads + 1)

    def work(i: int) -> None:
        fact("tid", f"worker-{i}", threading.get_native_id())
        started.wait()
        stop.wait()

    for i in range(threads):
        threading.Thread(target=work, args=(i,), name=f"worker-{i}", daemon=True).start()
    started.wait()
    fact("ready")
    for line in sys.stdin:
        if line.startswith("scribble"):
            ctypes.memset(pattern, 0xEE, PATTERN_LEN)
            fact("scribbled")
        elif line.startswith("exit"):
            break
    stop.set()
    f.close()


if __name__ == "__main__":
    main()
