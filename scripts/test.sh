#!/usr/bin/env bash
# The README's test command: installs what the tests need beyond cargo and a C compiler
# (gdb, elfutils, lldb, cmake, pkg-config, man-db; py-spy, pytest, psutil, mypy and maturin in
# target/test-venv: scripts/test-deps.sh), then runs every test of the workspace — Rust,
# the C and C++ programs against the header, the install into a temporary prefix, the
# exports judged by gdb, lldb, eu-stack, py-spy and rust-minidump — and then the Python
# package's: `pip install ./crates/pss-py` into that virtual environment, and pytest.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/test-deps.sh
cargo test --workspace "$@"

echo "== the Python package (crates/pss-py)"
venv=target/test-venv
"$venv/bin/pip" install -q --force-reinstall --no-deps ./crates/pss-py
"$venv/bin/python" -m pytest -q crates/pss-py/tests
