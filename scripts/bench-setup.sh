#!/usr/bin/env bash
# Installs what the benchmarks compare against: psutil (PyPI).
set -euo pipefail
python3 -c 'import psutil' 2>/dev/null || python3 -m pip install --quiet psutil
python3 -c 'import psutil; print("psutil", psutil.__version__)'
