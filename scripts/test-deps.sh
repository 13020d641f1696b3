#!/usr/bin/env bash
# Installs what the tests need beyond cargo and a C compiler, from Debian's packages: gdb
# (gcore, and the debugger the exported cores are checked with) and elfutils (eu-stack,
# eu-readelf). Does nothing for what is already there. Needs root (or sudo).
set -euo pipefail
need=()
command -v gdb >/dev/null || need+=(gdb)
command -v eu-stack >/dev/null || need+=(elfutils)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq "${need[@]}" >/dev/null
