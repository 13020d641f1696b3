"""pss_threads.py: list the threads of a process, with where each one is, from Python.

    pip install ./crates/pss-py
    python examples/pss_threads.py PID
"""

import sys

import pss

snap = pss.capture(int(sys.argv[1]), contexts=True)
print(f"{len(snap.threads)} thread(s), paused {snap.pause * 1e6:.0f} µs")
for t in snap.threads:
    regs = t.registers or {}  # present with contexts=True
    pc = regs.get("rip", regs.get("pc", 0))
    print(f"thread {t.tid} {t.name}: pc {pc:#x}")
