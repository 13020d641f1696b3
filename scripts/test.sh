#!/usr/bin/env bash
# The README's test command: installs what the tests need beyond cargo and a C compiler
# (gdb, elfutils, lldb, py-spy: scripts/test-deps.sh), then runs every test of the
# workspace — Rust, the C and C++ programs against the header, and the exports judged by
# gdb, lldb, eu-stack, py-spy and rust-minidump. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/test-deps.sh
exec cargo test --workspace "$@"
