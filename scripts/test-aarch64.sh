#!/usr/bin/env bash
# Runs pss's tests on arm64, inside an emulated arm64 Linux (qemu-system-aarch64, full
# system emulation: no arm64 hardware needed), from Debian's packages and crates.io only.
#
#   scripts/test-aarch64.sh             # the arm64 suite (docs/aarch64.md)
#   scripts/test-aarch64.sh --ci        # CI's subset: every area, fewer tests of each
#   scripts/test-aarch64.sh TEST...     # only these test binaries (of pss-testbed,
#                                       # pss-cli or pss-capi; pss-py: the Python tests;
#                                       # BINARY::NAME: only that test of BINARY)
#   scripts/test-aarch64.sh --bench NAME [ARGS...]
#                                       # a benchmark of pss-testbed, under emulation
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

# The suite: pss-testbed's tests — capture, threads and their registers, regions, handles,
# VA clones, faults, walks, minidumps read by rust-minidump, cores read by gdb, eu-stack and
# eu-readelf and compared with gdb's gcore, stacks of C programs compiled in the guest
# checked against gdb (a signal handler's frames among them), the engine killed at every
# failpoint of an injection and of a dump; pss-trace's own unit tests (the arm64 signal
# frame's layout among them); the C ABI's C programs, compiled in the guest against libpss.
suite=(threads process regions va_clone handles faults walk export_minidump export_core stacks stacks_parked remote_kill export_engine_kill)
# And the command's tests: harm (pss killed, the engine killed at every step of a capture,
# several capturers: a TCP server target on the guest's loopback), harm_cases (fibers on
# small adjacent stacks, a handler on its sigaltstack, a wall reaper, a late seccomp
# filter, a foreign userfaultfd, a clone stuck in the kernel), its options and output
# (cli), `pss stack`, `pss dump` (cores and minidumps, a terminal's progress bar).
# The runtime zoo (each a server kept answering through clone captures, dumps and stacks):
# Go, statically and with cgo (cross-built on the host), Rust's tokio, Python, C.
cli_suite=(harm harm_cases cli stack dump zoo)
capi_suite=(c_programs)
# And the Python package's tests (pytest), but its packaging and typing (pip, mypy).
python_suite=1
# CI's subset (--ci): the fast binaries whole, one or two tests of the slow ones — every
# area at least once, in about a third of the time.
declare -A only=()
pytest_paths=(crates/pss-py/tests)
bench=""
bench_args=()
if [ "${1:-}" = --ci ]; then
    only=(
        [export_core]="a_core_holds_every_thread_and_the_memory_of_the_pause"
        [harm]="the_engine_killed_at_every_step_leaves_the_target_whole"
        [harm_cases]="fibers_on_small_adjacent_stacks_keep_their_neighbours"
        [cli]="json_document_holds_the_pss_fields_and_the_registers"
        [dump]="writes_core_pid_and_refuses_to_overwrite_it a_minidump_by_default_name_and_full_memory_on_request"
        [c_programs]="a_c_program_uses_the_api_as_windows_code_does windows_clients_as_written_work"
        [zoo]="go_stacks_read_as_go"
    )
    pytest_paths=(crates/pss-py/tests/test_capture.py)
elif [ "${1:-}" = --bench ]; then
    bench=${2:?--bench needs a benchmark name}
    bench_args=("${@:3}")
    suite=()
    cli_suite=()
    capi_suite=()
    python_suite=0
elif [ $# -gt 0 ]; then
    suite=()
    cli_suite=()
    capi_suite=()
    python_suite=0
    for a in "$@"; do
        if [[ $a == *::* ]]; then
            # BINARY::TEST: only that test of that binary (as many as given).
            only[${a%%::*}]="${only[${a%%::*}]:-} ${a#*::}"
            a=${a%%::*}
            [[ " ${suite[*]} ${cli_suite[*]} ${capi_suite[*]} " != *" $a "* ]] || continue
        fi
        if [ "$a" = pss-py ]; then
            python_suite=1
        elif [ -f "crates/pss-cli/tests/$a.rs" ]; then
            cli_suite+=("$a")
        elif [ -f "crates/pss-capi/tests/$a.rs" ]; then
            capi_suite+=("$a")
        else
            suite+=("$a")
        fi
    done
fi
# Tests left out inside the guest, and why: they need a tool its userland has not (a C++
# compiler, rustc, lldb, py-spy, cargo). docs/aarch64.md lists them.
declare -A skip=(
    [stacks]="cpp_names_are_demangled_as_gdb_shows_them rust_chains_agree_with_gdb"
    [export_core]="lldb_reads_every_thread_of_a_core_with_its_registers py_spy_reads_the_python_stack_from_a_core"
    [c_programs]="the_header_lays_out_every_structure_as_windows_does_in_c_and_cpp cpp_code_combines_the_flag_enumerations_as_with_the_windows_sdk the_readme_build_tree_recipe_runs"
    [zoo]="jvm_server node_server beam_server"
)
# The guest's userland: the tools the tests judge by (gdb and its gcore, eu-stack and
# eu-readelf), a C compiler and its headers, bash (gcore is a bash script), setpriv and
# script (a test's other user, a terminal), Python with psutil — Debian's arm64 packages
# and everything they depend on, downloaded and unpacked under target/aarch64-vm/userland,
# never installed.
guest_packages=(gdb-minimal elfutils gcc libc6-dev bash util-linux bsdutils python3-minimal libpython3.11-stdlib python3-psutil)
# And Python's pytest, which is architecture-independent (apt-cache's recursion for arm64
# leaves such packages out).
guest_all_packages=(python3-pytest python3-pluggy python3-iniconfig python3-packaging python3-attr python3-more-itertools python3-pkg-resources python3-py python3-exceptiongroup python3-tomli)

need=()
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || need+=(libc6-dev-arm64-cross)
command -v cpio >/dev/null || need+=(cpio)
command -v go >/dev/null || need+=(golang-go)
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

userland() { # → $work/userland: guest_packages and their dependencies, unpacked and pruned
    local want="${guest_packages[*]} ${guest_all_packages[*]}" u=$work/userland
    [ -f "$u.stamp" ] && [ "$(cat "$u.stamp")" = "$want" ] && return
    rm -rf "$u" "$work/debs" "$u.stamp"
    mkdir -p "$u" "$work/debs"
    apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances "${guest_packages[@]/%/:arm64}" |
        grep -E '^[a-z0-9].*:arm64$' | grep -vE '^lib(t|a|l|ub|hw)san[0-9]' | sort -u > "$work/debs/list"
    printf '%s\n' "${guest_all_packages[@]}" >> "$work/debs/list"
    (cd "$work/debs" && xargs apt-get download -qq < list 2>/dev/null)
    for d in "$work/debs"/*.deb; do dpkg-deb -x "$d" "$u"; done
    # What no test uses: documentation, translations, link-time optimisation, profilers.
    rm -rf "$u"/usr/share/{doc,man,info,locale,lintian,bug} "$u"/usr/lib/gcc/aarch64-linux-gnu/*/lto1 \
        "$u"/usr/lib/gcc/aarch64-linux-gnu/*/*san*.a "$u"/usr/bin/*lto-dump* "$u"/usr/bin/*gprofng* \
        "$u"/usr/bin/*gp-* "$u"/usr/lib/aarch64-linux-gnu/gprofng "$u"/usr/bin/*gold*
    ln -sf gcc "$u/usr/bin/cc"
    echo "$want" > "$u.stamp"
}
userland

# The C ABI header's ARM64 layout (ARM64_NT_CONTEXT and every other structure), checked at
# compile time as C11 and as C++17 (the guest has no C++ compiler: its test skips C++).
for c in "aarch64-linux-gnu-gcc -std=c11" "aarch64-linux-gnu-g++ -std=c++17 -x c++"; do
    $c -fsyntax-only -Wall -Wextra -Wpedantic -Werror -I crates/pss-capi/include crates/pss-capi/tests/c/layout.c
done
echo "pss-aarch64: processsnapshot.h's arm64 layout holds in C11 and C++17"

# Cross-build.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# The zoo's Go programs, as its tests build them (crates/pss-cli/tests/zoo.rs), for arm64:
# the guest has no Go toolchain, and the tests take them from $PSS_ZOO_PREBUILT.
zoo_go=$root/target/$triple/zoo-go
if [[ " ${cli_suite[*]} " == *" zoo "* ]]; then
    mkdir -p "$zoo_go"
    for spec in "go-static server.go 0" "go-cgo server.go 1" \
        "go-stacks stacks.go.txt 0" "go-stacks-cgo stacks.go.txt 1"; do
        read -r name src cgo <<< "$spec"
        d=$work/go/$name
        rm -rf "$d"
        mkdir -p "$d"
        cp "crates/pss-cli/tests/zoo/$src" "$d/${src%.txt}"
        [ "$cgo" = 0 ] || cp crates/pss-cli/tests/zoo/cgo.go.txt "$d/cgo.go"
        printf 'module zoo\n\ngo 1.19\n' > "$d/go.mod"
        (cd "$d" && GOOS=linux GOARCH=arm64 CGO_ENABLED=$cgo CC=aarch64-linux-gnu-gcc \
            GOCACHE=$work/go/cache GOPATH=$work/go/gopath GOFLAGS=-mod=mod GOTOOLCHAIN=local \
            go build -o "$zoo_go/$name" .)
    done
fi
cargo build -q --target "$triple" -p pss-engine
tests=()
for t in "${suite[@]}"; do tests+=(--test "$t"); done
{
    [ -z "$bench" ] ||
        cargo bench -q --no-run --target "$triple" -p pss-testbed --bench "$bench" --message-format=json
    [ ${#tests[@]} -eq 0 ] ||
        cargo test -q --no-run --target "$triple" -p pss-testbed "${tests[@]}" --message-format=json
    [ -n "$bench" ] || cargo test -q --no-run --target "$triple" -p pss-trace --lib --message-format=json
    # The test bed's programs, which the command's tests run as targets too.
    cargo build -q --target "$triple" -p pss-testbed --bins --message-format=json
    for t in "${cli_suite[@]}"; do
        cargo test -q --no-run --target "$triple" -p pss-cli --test "$t" --message-format=json
    done
    for t in "${capi_suite[@]}"; do
        cargo test -q --no-run --target "$triple" -p pss-capi --test "$t" --message-format=json
    done
    # libpss.so, which the C programs link against; the Python package's native module.
    [ ${#capi_suite[@]} -eq 0 ] || cargo build -q --target "$triple" -p pss-capi --example pss
    [ $python_suite -eq 0 ] || cargo build -q --target "$triple" -p pss-py
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
mkdir -p "$ir"
cp -a "$work/userland/." "$ir/"
mkdir -p "$ir"/{bin,proc,sys,dev,tmp,etc} "$ir$root/target/tmp" "$ir$root/target/$triple/tmp"
cp "$work/busybox-static/bin/busybox" "$ir/bin/"
cp /etc/os-release "$ir/etc/os-release"
# The sources tests compile or read (C programs, the C ABI's header), and libpss.
(cd "$root" && find crates examples -path '*/target' -prune -o -type f -print | cpio -pdm --quiet "$ir$root")
# The Python package as a wheel would install it: its modules, the native module, the engine.
pyroot=$root/target/$triple/python
if [ $python_suite -eq 1 ]; then
    mkdir -p "$ir$pyroot/pss"
    cp crates/pss-py/python/pss/*.py crates/pss-py/python/pss/*.pyi crates/pss-py/python/pss/py.typed "$ir$pyroot/pss/"
    aarch64-linux-gnu-strip --strip-debug -o "$ir$pyroot/pss/_pss.abi3.so" "target/$triple/debug/lib_pss.so"
    aarch64-linux-gnu-strip --strip-debug -o "$ir$pyroot/pss/pss-engine" "target/$triple/debug/pss-engine"
fi
[ ! -d "$zoo_go" ] || { mkdir -p "$ir$zoo_go" && cp "$zoo_go"/* "$ir$zoo_go/"; }
mkdir -p "$ir$root/target/$triple/debug/examples"
cp "$root/target/$triple/debug/examples/"*.so "$ir$root/target/$triple/debug/examples/" 2>/dev/null || true
engine=$root/target/$triple/debug/pss-engine
for e in "$engine" $(cat "$work/executables"); do
    mkdir -p "$ir$(dirname "$e")"
    case $(basename "$e") in
        # Targets whose debug information tests read (pss stack's file and line).
        pss-testbed | zoo-tokio) cp "$e" "$ir$e" ;;
        *) aarch64-linux-gnu-strip --strip-debug -o "$ir$e" "$e" ;;
    esac
done
{
    echo '#!/bin/busybox sh'
    echo '/bin/busybox --install -s /bin'
    echo '[ -e /usr/bin/env ] || ln -s /bin/busybox /usr/bin/env'
    # The initramfs is itself a writable tmpfs: no tmpfs over /tmp, which may hold the
    # binaries (a checkout under /tmp).
    echo 'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev'
    echo 'ip link set lo up'
    echo 'mkdir -p /dev/pts; mount -t devpts devpts /dev/pts'
    # Targets' answers wait 4 times longer under emulation (pss_testbed::harness).
    echo 'export PATH=/usr/bin:/bin HOME=/tmp TMPDIR=/tmp PSS_TEST_TIME_SCALE=4'
    echo "export PSS_ZOO_PREBUILT=$zoo_go"
    echo 'echo "pss-aarch64: Linux $(uname -r) $(uname -m), $(nproc) CPUs"'
    echo 'rc=0'
    grep '/deps/' "$work/executables" | while read -r t; do
        name=$(basename "$t" | sed 's/-[0-9a-f]*$//')
        skips=""
        for x in ${skip[$name]:-}; do skips+=" --skip $x"; done
        [ -z "${only[$name]:-}" ] || skips=" ${only[$name]}"
        [ -z "$skips" ] || skips+=" --exact"
        echo "echo \"== $name\""
        echo "start=\$(cut -d' ' -f1 /proc/uptime)"
        if [ -n "$bench" ]; then
            echo "$t --bench ${bench_args[*]} || rc=1"
        else
            echo "$t --test-threads=2$skips || rc=1"
        fi
        echo "echo \"== took \$(awk -v s=\$start '{printf \"%.1f\", \$1 - s}' /proc/uptime) s\""
    done
    if [ $python_suite -eq 1 ]; then
        echo 'echo "== pss-py"'
        echo "start=\$(cut -d' ' -f1 /proc/uptime)"
        echo "cd $root && PYTHONPATH=$pyroot PYTHONDONTWRITEBYTECODE=1 python3 -m pytest -q --color=no -p no:cacheprovider ${pytest_paths[*]} --ignore=crates/pss-py/tests/test_packaging.py --ignore=crates/pss-py/tests/test_typing.py || rc=1"
        echo "echo \"== took \$(awk -v s=\$start '{printf \"%.1f\", \$1 - s}' /proc/uptime) s\""
    fi
    echo 'echo "pss-aarch64: exit $rc"'
    echo 'poweroff -f'
} > "$ir/init"
chmod +x "$ir/init"
(cd "$ir" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$work/initramfs.cpio.gz"

# Boot, run, and take the guest's verdict from the console.
log=$work/console.log
start=$(date +%s)
timeout 1800 qemu-system-aarch64 -M virt -cpu max -smp 2 -m 3072 -nographic -no-reboot \
    -nic none -kernel "$vmlinuz" -initrd "$work/initramfs.cpio.gz" \
    -append "console=ttyAMA0 rdinit=/init quiet" | sed -u 's/\r$//' | tee "$log" |
    grep --line-buffered -E '^(pss-aarch64|== |test |test result|thread .* panicked|assertion|  left|  right|FAILED |ERROR |[0-9]+ (passed|failed)|\\||Command:|[0-9]+ runs)' || true
echo "pss-aarch64: $(( $(date +%s) - start )) s under emulation ($(basename "$vmlinuz"))"
verdict=$(sed -n 's/^pss-aarch64: exit \([0-9]*\)$/\1/p' "$log" | tail -1)
[ -n "$verdict" ] || { echo "pss-aarch64: the guest gave no verdict (see $log)"; exit 1; }
exit "$verdict"
