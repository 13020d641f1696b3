#!/usr/bin/env bash
# Runs pss's tests on arm64, inside an emulated arm64 Linux (qemu-system-aarch64, full
# system emulation: no arm64 hardware needed), from Debian's packages and crates.io only.
#
#   scripts/test-aarch64.sh             # the arm64 suite (docs/aarch64.md)
#   scripts/test-aarch64.sh TEST...     # only these test binaries of pss-testbed
#
# It installs what it needs (qemu-system-arm, the cross compiler and arm64 libc, cpio;
# arm64 added as a foreign architecture for busybox-static and Debian's cloud kernel,
# downloaded, not installed), cross-builds the engine, the test bed and the test binaries
# (`cargo test --no-run --target aarch64-unknown-linux-gnu`), packs them at the paths they
# were built for, with the arm64 loader and libraries and a busybox init, into an
# initramfs, boots it (2 CPUs, 2 GiB), runs each test binary inside, and prints their
# output — the usual `test result:` lines — from the serial console. The exit status is
# the guest's: 0 if every test passed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/target/aarch64-vm
mkdir -p "$work"
triple=aarch64-unknown-linux-gnu

# The suite: pss-testbed's tests that need no tool inside the guest (gdb, a compiler,
# Python) — capture, threads and their registers, regions, handles, VA clones, faults,
# walks, minidumps read by rust-minidump, the stacks of the test bed's parked threads, the
# engine killed at every failpoint of an injection and of a dump; and pss-trace's own unit
# tests (the arm64 signal frame's layout among them).
suite=(threads process regions va_clone handles faults walk export_minidump stacks_parked remote_kill export_engine_kill)
# And the command's harm tests (pss killed, the engine killed at every step of a capture,
# several capturers: a TCP server target on the guest's loopback).
cli_suite=(harm)
if [ $# -gt 0 ]; then
    suite=("$@")
    cli_suite=()
fi

need=()
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || need+=(libc6-dev-arm64-cross)
command -v cpio >/dev/null || need+=(cpio)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $sudo dpkg --add-architecture arm64
    $sudo apt-get update -qq >/dev/null
fi
if [ ${#need[@]} -gt 0 ]; then
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
rustup target add "$triple" >/dev/null 2>&1 || true

# The kernel and busybox: downloaded, unpacked under target/aarch64-vm (never installed:
# an arm64 busybox installed on the host would take /bin/busybox).
fetch() { # PACKAGE → unpacks the newest version of PACKAGE:arm64 into $work/PACKAGE
    local pkg=$1
    [ -d "$work/$pkg" ] && return
    (cd "$work" && apt-get download -qq "$pkg:arm64" 2>/dev/null && dpkg-deb -x "$pkg"_*_arm64.deb "$pkg")
}
kernel_pkg=$(apt-cache search --names-only '^linux-image-6\.[0-9.]+\+deb[0-9]+-cloud-arm64-unsigned$' |
    awk '{print $1}' | sort -V | tail -1)
[ -n "$kernel_pkg" ] || kernel_pkg=$(apt-cache search --names-only '^linux-image-.*-cloud-arm64-unsigned$' |
    awk '{print $1}' | sort -V | tail -1)
fetch "$kernel_pkg"
fetch busybox-static
vmlinuz=$(ls "$work/$kernel_pkg"/boot/vmlinuz-*)

# Cross-build.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
cargo build -q --target "$triple" -p pss-engine
tests=()
for t in "${suite[@]}"; do tests+=(--test "$t"); done
{
    cargo test -q --no-run --target "$triple" -p pss-testbed "${tests[@]}" --message-format=json
    cargo test -q --no-run --target "$triple" -p pss-trace --lib --message-format=json
    for t in "${cli_suite[@]}"; do
        cargo test -q --no-run --target "$triple" -p pss-cli --test "$t" --message-format=json
    done
} 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["executable"])
' > "$work/executables"

# The initramfs: every binary at the path it was built for (tests find the test bed and
# their temporary directory there), the loader and libraries, busybox, /etc/os-release
# (the minidump's LinuxLsbRelease stream), and an init that runs the tests. A binary that
# is missing in the guest fails its line ("not found"), and so the run.
ir=$work/initramfs
rm -rf "$ir"
mkdir -p "$ir"/{bin,proc,sys,dev,tmp,etc,lib/aarch64-linux-gnu} "$ir$root/target/tmp"
cp "$work/busybox-static/bin/busybox" "$ir/bin/"
cp /etc/os-release "$ir/etc/os-release"
cp -L /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 "$ir/lib/"
for l in libc.so.6 libm.so.6 libgcc_s.so.1; do
    cp -L "/usr/aarch64-linux-gnu/lib/$l" "$ir/lib/aarch64-linux-gnu/"
done
engine=$root/target/$triple/debug/pss-engine
for e in "$engine" $(cat "$work/executables"); do
    mkdir -p "$ir$(dirname "$e")"
    aarch64-linux-gnu-strip --strip-debug -o "$ir$e" "$e"
done
{
    echo '#!/bin/busybox sh'
    echo '/bin/busybox --install -s /bin'
    # The initramfs is itself a writable tmpfs: no tmpfs over /tmp, which may hold the
    # binaries (a checkout under /tmp).
    echo 'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev'
    echo 'ip link set lo up'
    echo 'export PATH=/bin HOME=/tmp TMPDIR=/tmp'
    echo 'echo "pss-aarch64: Linux $(uname -r) $(uname -m), $(nproc) CPUs"'
    echo 'rc=0'
    grep '/deps/' "$work/executables" | while read -r t; do
        echo "echo \"== $(basename "$t" | sed 's/-[0-9a-f]*$//')\""
        echo "start=\$(cut -d' ' -f1 /proc/uptime)"
        echo "$t --test-threads=2 || rc=1"
        echo "echo \"== took \$(awk -v s=\$start '{printf \"%.1f\", \$1 - s}' /proc/uptime) s\""
    done
    echo 'echo "pss-aarch64: exit $rc"'
    echo 'poweroff -f'
} > "$ir/init"
chmod +x "$ir/init"
(cd "$ir" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$work/initramfs.cpio.gz"

# Boot, run, and take the guest's verdict from the console.
log=$work/console.log
start=$(date +%s)
timeout 1800 qemu-system-aarch64 -M virt -cpu max -smp 2 -m 2048 -nographic -no-reboot \
    -nic none -kernel "$vmlinuz" -initrd "$work/initramfs.cpio.gz" \
    -append "console=ttyAMA0 rdinit=/init quiet" | tr -d '\r' | tee "$log" |
    grep --line-buffered -E '^(pss-aarch64|== |test |test result|thread .* panicked|assertion|  left|  right)' || true
echo "pss-aarch64: $(( $(date +%s) - start )) s under emulation ($(basename "$vmlinuz"))"
verdict=$(sed -n 's/^pss-aarch64: exit \([0-9]*\)$/\1/p' "$log" | tail -1)
[ -n "$verdict" ] || { echo "pss-aarch64: the guest gave no verdict (see $log)"; exit 1; }
exit "$verdict"
