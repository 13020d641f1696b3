#!/usr/bin/env bash
# Builds pss in release mode and installs it under a prefix (default /usr/local; DESTDIR
# is honoured, for packagers):
#
#   bin/pss                                    the command
#   libexec/pss-engine                         the capture engine libpss starts
#   lib/libpss.so.X.Y.Z, libpss.so.X, libpss.so the C library (SONAME libpss.so.X)
#   lib/libpss.a                               the same, static
#   include/processsnapshot.h                  its header
#   lib/pkgconfig/pss.pc                       for pkg-config
#   lib/cmake/pss/pssConfig{,Version}.cmake    for CMake's find_package(pss): pss::pss
#   share/man/man1/pss*.1                      man pages
#   share/{bash-completion,zsh,fish}/…         shell completions
#   {bin,libexec,lib}/.debug/*.debug            debug info split off (none with --strip)
#   share/pss/install-manifest.txt             what was installed (scripts/uninstall.sh)
#
# and the Python package `pss` (`pip install ./crates/pss-py`), with
#   --venv DIR        into the virtual environment DIR, made first if there is none;
#   --python PYTHON   into the environment of interpreter PYTHON (one that can run pip).
# share/pss/python-install.txt records where, for scripts/uninstall.sh. Not with DESTDIR:
# a staged install is packaged, and the wheel (`pip wheel ./crates/pss-py`) with it.
#
# Usage: scripts/install.sh [--prefix DIR] [--strip] [--venv DIR | --python PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local
strip=0
python=""
venv=""
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
        --prefix=*) prefix="${1#--prefix=}"; shift ;;
        --strip) strip=1; shift ;;
        --python) python="${2:?--python needs a Python interpreter}"; shift 2 ;;
        --python=*) python="${1#--python=}"; shift ;;
        --venv) venv="${2:?--venv needs a directory}"; shift 2 ;;
        --venv=*) venv="${1#--venv=}"; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path" >&2; exit 2 ;; esac
if [ -n "$python" ] && [ -n "$venv" ]; then
    echo "install.sh: give --venv or --python, not both" >&2; exit 2
fi
if [ -n "${DESTDIR:-}" ] && [ -n "$python$venv" ]; then
    echo "install.sh: --venv and --python install into a live environment, not under DESTDIR" >&2; exit 2
fi
if [ -n "$venv" ] && [ ! -x "$venv/bin/python" ] && ! python3 -c 'import ensurepip' 2>/dev/null; then
    echo "install.sh: python3 cannot make a virtual environment (Debian: apt install python3-venv)" >&2
    exit 2
fi
if [ -n "$python" ] && ! "$python" -m pip --version >/dev/null 2>&1; then
    echo "install.sh: $python cannot run pip (--venv DIR makes an environment that can)" >&2
    exit 2
fi

cargo build --release -p pss-cli -p pss-capi -p pss-engine --bins --lib
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
major=${version%%.*}
out="${CARGO_TARGET_DIR:-target}/release"
root="${DESTDIR:-}$prefix"
manifest=()

# Installs file $1 at $2 (relative to the prefix) with mode $3, and notes it.
put() {
    install -D -m "$3" "$1" "$root/$2"
    manifest+=("$2")
}

# Installs the Python package into --venv (made if missing) or --python's environment, and
# records where in share/pss/python-install.txt: `python PATH`, and `venv DIR` if made here.
install_python() {
    local record=()
    if [ -n "$venv" ]; then
        case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
        if [ ! -x "$venv/bin/python" ]; then
            python3 -m venv "$venv"
            record+=("venv $venv")
        fi
        python="$venv/bin/python"
    fi
    "$python" -m pip install --quiet ./crates/pss-py
    record=("python $("$python" -c 'import sys; print(sys.executable)')" "${record[@]}")
    printf '%s\n' "${record[@]}" > "$root/share/pss/python-install.txt"
    echo share/pss/python-install.txt >> "$root/share/pss/install-manifest.txt"
    echo "the Python package pss installed for $python"
}

# Splits the debug info of installed ELF file $1 (relative) into .debug/NAME.debug beside
# it, linked from the file by a .gnu_debuglink (where gdb, elfutils and pss itself look,
# whatever the prefix); or drops it with --strip.
split_debug() {
    local f="$root/$1"
    if [ "$strip" = 1 ]; then
        objcopy --strip-debug "$f"
        return
    fi
    local dbg
    dbg="$(dirname "$1")/.debug/$(basename "$1").debug"
    mkdir -p "$(dirname "$root/$dbg")"
    objcopy --only-keep-debug "$f" "$root/$dbg"
    chmod 644 "$root/$dbg"
    objcopy --strip-debug --add-gnu-debuglink="$root/$dbg" "$f"
    manifest+=("$dbg")
}

put "$out/pss" bin/pss 755
split_debug bin/pss
put "$out/pss-engine" libexec/pss-engine 755
split_debug libexec/pss-engine
lib="lib/libpss.so.$version"
put "$out/libpss.so" "$lib" 755
split_debug "$lib"
ln -sf "libpss.so.$version" "$root/lib/libpss.so.$major"
ln -sf "libpss.so.$major" "$root/lib/libpss.so"
manifest+=("lib/libpss.so.$major" lib/libpss.so)
put "$out/libpss.a" lib/libpss.a 644
strip --strip-debug "$root/lib/libpss.a"
put crates/pss-capi/include/processsnapshot.h include/processsnapshot.h 644

# What a program linking libpss.a statically also needs: what Rust's standard library asks
# of the C library (`rustc --print native-static-libs`; the install test links statically,
# so a change here is caught).
private_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
cat > "$gen/pss.pc" <<EOF
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: pss
Description: The Windows Process Snapshotting API (processsnapshot.h) for Linux
Version: $version
Libs: -L\${libdir} -lpss
Libs.private: $private_libs
Cflags: -I\${includedir}
EOF
put "$gen/pss.pc" lib/pkgconfig/pss.pc 644

cat > "$gen/pssConfig.cmake" <<EOF
# pss: find_package(pss) gives the imported targets pss::pss (libpss.so and its header) and
# pss::pss_static (libpss.a).
get_filename_component(_pss_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET pss::pss)
  add_library(pss::pss SHARED IMPORTED)
  set_target_properties(pss::pss PROPERTIES
    IMPORTED_LOCATION "\${_pss_prefix}/lib/libpss.so.$version"
    IMPORTED_SONAME "libpss.so.$major"
    INTERFACE_INCLUDE_DIRECTORIES "\${_pss_prefix}/include")
endif()
if(NOT TARGET pss::pss_static)
  add_library(pss::pss_static STATIC IMPORTED)
  set_target_properties(pss::pss_static PROPERTIES
    IMPORTED_LOCATION "\${_pss_prefix}/lib/libpss.a"
    INTERFACE_INCLUDE_DIRECTORIES "\${_pss_prefix}/include"
    INTERFACE_LINK_LIBRARIES "$(echo "$private_libs" | sed 's/-l//g; s/ /;/g')")
endif()
set(pss_VERSION "$version")
unset(_pss_prefix)
EOF
cat > "$gen/pssConfigVersion.cmake" <<EOF
# Any $major.x asked for, up to this version, is compatible (the SONAME's promise).
set(PACKAGE_VERSION "$version")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION OR NOT PACKAGE_FIND_VERSION_MAJOR EQUAL $major)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
EOF
put "$gen/pssConfig.cmake" lib/cmake/pss/pssConfig.cmake 644
put "$gen/pssConfigVersion.cmake" lib/cmake/pss/pssConfigVersion.cmake 644

"$out/pss" --generate-docs "$gen/docs"
for page in "$gen"/docs/man1/*.1; do
    put "$page" "share/man/man1/$(basename "$page")" 644
done
put "$gen/docs/completions/pss.bash" share/bash-completion/completions/pss 644
put "$gen/docs/completions/_pss" share/zsh/site-functions/_pss 644
put "$gen/docs/completions/pss.fish" share/fish/vendor_completions.d/pss.fish 644

manifest+=(share/pss/install-manifest.txt)
mkdir -p "$root/share/pss"
printf '%s\n' "${manifest[@]}" > "$root/share/pss/install-manifest.txt"
echo "pss $version installed under ${DESTDIR:-}$prefix (${#manifest[@]} files; scripts/uninstall.sh --prefix $prefix removes them)"
if [ -n "$python$venv" ]; then
    install_python
fi
case "${DESTDIR:-}:$prefix" in
    :/usr|:/usr/local)
        # The loader's cache learns of the new library (a system prefix it already searches).
        if [ "$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi ;;
    :*)
        echo "note: programs find libpss with $prefix/lib in LD_LIBRARY_PATH (or in /etc/ld.so.conf.d, or an rpath), and pss with $prefix/bin in PATH" ;;
esac
