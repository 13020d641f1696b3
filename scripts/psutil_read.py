#!/usr/bin/env python3
"""The psutil peer of the capture benchmark: read a process's threads, open files and
memory maps, N times; print one wall-clock time per iteration (microseconds), one per line."""
import sys
import time

import psutil

pid, n = int(sys.argv[1]), int(sys.argv[2])
p = psutil.Process(pid)
for _ in range(n):
    t0 = time.perf_counter()
    threads = p.threads()
    files = p.open_files()
    maps = p.memory_maps(grouped=False)
    t1 = time.perf_counter()
    print(int((t1 - t0) * 1e6), len(threads), len(files), len(maps), flush=True)
