#!/usr/bin/env bash
# Installs what the tests need beyond cargo and a C compiler, and nothing that is already
# there: from Debian's packages gdb (gcore, and the debugger the exported cores are checked
# with), elfutils (eu-stack, eu-readelf), lldb, what the install test builds and reads
# with (cmake, pkg-config, man-db), the static C library (libc6-dev), and the runtimes of
# the runtime zoo (crates/pss-cli/tests/zoo.rs): Go (golang-go), a JDK
# (default-jdk-headless), node (nodejs) and BEAM (erlang-base); in a virtual environment of
# its own, target/test-venv,
# inferno (`cargo install`: inferno-flamegraph draws the collapsed stacks of `pss stack
# --format folded` in crates/pss-cli/tests/profile.rs),
# py-spy (whose core reader checks cores of Python processes), and pytest, psutil, mypy and maturin
# (the Python package's tests). Needs root
# (or sudo) for the packages, and network access to Debian's mirrors and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v gdb >/dev/null || need+=(gdb)
command -v eu-stack >/dev/null || need+=(elfutils)
command -v lldb >/dev/null || need+=(lldb)
command -v cmake >/dev/null || need+=(cmake)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v man >/dev/null || need+=(man-db)
command -v go >/dev/null || need+=(golang-go)
command -v javac >/dev/null || need+=(default-jdk-headless)
command -v node >/dev/null || need+=(nodejs)
command -v escript >/dev/null || need+=(erlang-base)
command -v setpriv >/dev/null || need+=(util-linux)
# Not for the tests: the peer of the watch benchmark (cargo bench -p pss-testbed --bench watch).
command -v procdump >/dev/null || need+=(procdump)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ "$(uname -m)" != x86_64 ] || need+=(libc6-dev)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null
    $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
venv=target/test-venv
[ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
for tool in py-spy pytest psutil mypy maturin; do
    "$venv/bin/pip" show -q "$tool" >/dev/null 2>&1 || "$venv/bin/pip" install -q "$tool"
done
command -v inferno-flamegraph >/dev/null ||
    cargo install --quiet --locked inferno --version 0.12.8 --no-default-features --features cli
