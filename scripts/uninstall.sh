#!/usr/bin/env bash
# Removes exactly what scripts/install.sh installed under a prefix (default /usr/local;
# DESTDIR honoured), as listed in its share/pss/install-manifest.txt, then the directories
# that left empty. A Python package installed with --venv or --python is uninstalled from
# that environment, and a virtual environment install.sh made is removed.
#
# Usage: scripts/uninstall.sh [--prefix DIR]
set -euo pipefail

prefix=/usr/local
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
        --prefix=*) prefix="${1#--prefix=}"; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "uninstall.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
root="${DESTDIR:-}$prefix"

# Uninstalls the Python package recorded in $1 (see install.sh), and removes the virtual
# environment install.sh made for it.
uninstall_python() {
    [ -f "$1" ] || return 0
    local python venv
    python=$(sed -n 's/^python //p' "$1")
    venv=$(sed -n 's/^venv //p' "$1")
    if [ -n "$venv" ] && [ -f "$venv/pyvenv.cfg" ]; then
        rm -rf "$venv"
        echo "removed the virtual environment $venv"
    elif [ -n "$python" ] && [ -x "$python" ]; then
        "$python" -m pip uninstall --quiet --yes pss
        echo "the Python package pss uninstalled from $python"
    fi
}
manifest="$root/share/pss/install-manifest.txt"
if [ ! -f "$manifest" ]; then
    echo "uninstall.sh: no pss installation under $root ($manifest is missing)" >&2
    exit 1
fi
mapfile -t files < "$manifest"
uninstall_python "$root/share/pss/python-install.txt"
for f in "${files[@]}"; do
    case "$f" in
        ""|/*|*..*) echo "uninstall.sh: skipping a strange manifest line: $f" >&2; continue ;;
    esac
    rm -f "$root/$f"
done
# Directories the files lived in, deepest first, if nothing else is in them now.
for f in "${files[@]}"; do
    d=$(dirname "$f")
    while [ "$d" != "." ]; do
        echo "$d"
        d=$(dirname "$d")
    done
done | sort -u -r | while read -r d; do
    rmdir "$root/$d" 2>/dev/null || true
done
echo "pss removed from $root (${#files[@]} files)"
