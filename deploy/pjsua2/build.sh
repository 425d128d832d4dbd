#!/usr/bin/env bash
# Build (or reuse) a pjsua2 Python wheel from pjproject 2.17 with server limits
# (deploy/pjsua2/config_site.h: 512 calls, epoll, no sound device, no video).
#
# usage: deploy/pjsua2/build.sh [--asan] [--python PY] [--site] [--print-dir]
#   --asan       build with AddressSanitizer (-fsanitize=address -fno-omit-frame-pointer -g)
#                into a cache directory of its own; loading it needs LD_PRELOAD of libasan
#   --python PY  the interpreter the module is for (default: python3); its pip builds the wheel
#   --site       print the directory holding the unpacked module (for PYTHONPATH), not the wheel
#   --print-dir  print the cache directory this build would use, and build nothing
# Prints one path on stdout (the wheel, or with --site its unpacked directory); progress and
# errors go to stderr, the build's own output to build.log in the cache directory.
#
# The result is cached outside the clone, in
#   ${VOICENODE_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/voicenode}/pjsua2/2.17[-asan]-<key>/
# where <key> hashes the pjproject version, RECIPE, configure flags, CFLAGS/LDFLAGS, the
# Python extension suffix and the sha256s of config_site.h and patches/*.patch (fixes to
# pjproject, each saying why): a second clone or CI run on the
# same machine reuses it. Concurrent runs for one key wait for each other (flock).
#
# Source, first found wins: $PJPROJECT_TARBALL; ../shared/vendor/pjproject-2.17.tar.xz beside
# the clone (CI); a copy downloaded before into the cache; else a download of GitHub's archive
# of tag 2.17. Every archive is checked against a sha256 before it is unpacked (see below).
#
# Needs: gcc/g++ and make (build-essential), swig (4.x), libssl-dev, the Python headers
# (python3-dev), xz-utils; the Makefile's system-packages target installs them on Debian.
set -euo pipefail

PJ_VERSION=2.17
# Bump when a build step changes what the wheel holds without changing a flag below.
RECIPE=1

# sha256 of pjproject-2.17.tar.xz (tag 2.17 archived with prefix pjproject-2.17/), the file in
# ../shared/vendor (same value as its SHA256SUMS).
TAR_XZ_SHA256=0fdc4da39a10d924a0327592c488a262d94479c2240a5ec3bc3e353ec3bac974
# GitHub's generated archive of tag 2.17 is a different file (.tar.gz, other bytes) whose
# sha256 is NOT recorded here: the machine this script was written on could not reach GitHub,
# and a checksum taken from the download itself would verify nothing. Fill it in once it is
# verified against an independent copy. Until then a downloaded archive is unpacked only when
# PJPROJECT_SHA256 names the sha256 you verified (the refusal prints the one it computed).
GITHUB_URL="https://github.com/pjsip/pjproject/archive/refs/tags/${PJ_VERSION}.tar.gz"
GITHUB_TAR_GZ_SHA256=""

CONFIGURE_FLAGS=(
    --enable-epoll --disable-sound --disable-video
    --disable-libwebrtc --disable-v4l2 --disable-ffmpeg --disable-sdl --disable-openh264
    # Off as well, so the wheel does not depend on whatever -dev packages the machine has:
    --disable-vpx --disable-libyuv --disable-upnp --disable-opus --disable-silk
    --disable-bcg729 --disable-lyra --disable-opencore-amr --disable-android-mediacodec
)
# -fPIC: pjproject builds static libraries, which are linked into the Python extension.
# -g1: line tables only, so a crash's C backtrace (bench/stress) names files and lines.
CFLAGS_DEFAULT="-O2 -g1 -fPIC"
LDFLAGS_DEFAULT=""
CFLAGS_ASAN="-O1 -g -fPIC -fsanitize=address -fno-omit-frame-pointer"
LDFLAGS_ASAN="-fsanitize=address"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CONFIG_SITE="$HERE/config_site.h"
PATCHES=("$HERE"/patches/*.patch)  # applied in name order (patch -p1), part of the cache key

say() { echo "pjsua2: $*" >&2; }
die() { say "error: $*"; exit 1; }

variant=default python=python3 want=wheel
while [ $# -gt 0 ]; do
    case "$1" in
        --asan) variant=asan ;;
        --python) [ $# -ge 2 ] || die "--python needs a value"; python="$2"; shift ;;
        --site) want=site ;;
        --print-dir) want=dir ;;
        -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

if [ "$variant" = asan ]; then
    cflags=$CFLAGS_ASAN ldflags=$LDFLAGS_ASAN suffix=-asan
else
    cflags=$CFLAGS_DEFAULT ldflags=$LDFLAGS_DEFAULT suffix=
fi
case "$python" in  # an absolute path: the build runs in other directories
    /*) ;;
    */*) python="$PWD/$python" ;;
    *) python="$(command -v "$python")" || die "no Python interpreter '$python'" ;;
esac
[ -x "$python" ] || die "no Python interpreter '$python'"
ext_suffix="$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"

sha256() { sha256sum "$1" | cut -d' ' -f1; }

cache_key() {
    {
        echo "pjproject=$PJ_VERSION recipe=$RECIPE variant=$variant"
        echo "configure=${CONFIGURE_FLAGS[*]}"
        echo "cflags=$cflags ldflags=$ldflags"
        echo "python_ext=$ext_suffix"
        echo "config_site_sha256=$(sha256 "$CONFIG_SITE")"
        local p
        for p in "${PATCHES[@]}"; do echo "patch=$(basename "$p") $(sha256 "$p")"; done
    }
}

CACHE_ROOT="${VOICENODE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/voicenode}/pjsua2"
key="$(cache_key | sha256sum | cut -c1-16)"
OUT="$CACHE_ROOT/$PJ_VERSION$suffix-$key"

print_result() {
    case "$want" in
        dir) echo "$OUT" ;;
        site) echo "$OUT/site" ;;
        *) ls "$OUT"/pjsua2-*.whl ;;
    esac
}

# -- the source archive --------------------------------------------------------------------

verify() {  # verify FILE EXPECTED_SHA256
    local got
    got="$(sha256 "$1")"
    if [ -z "$2" ]; then
        die "$1 has sha256 $got and no recorded checksum to match: verify it against an
    independent copy of pjproject $PJ_VERSION, then rerun with PJPROJECT_SHA256=<that sha256>"
    fi
    [ "$got" = "$2" ] || die "$1: sha256 $got, expected $2 (refusing to build from it)"
    say "source $1: sha256 ok"
}

download() {  # download URL FILE, with the interpreter (no curl/wget on a bare Debian)
    say "downloading $1"
    "$python" - "$1" "$2.part" <<'EOF' || die "could not download $1 (no network? see PJPROJECT_TARBALL)"
import shutil, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=60) as r, open(sys.argv[2], "wb") as f:
        shutil.copyfileobj(r, f)
except OSError as exc:
    sys.exit(f"pjsua2: {exc}")
EOF
    mv "$2.part" "$2"
}

# Sets $archive to a checked pjproject archive.
find_source() {
    local vendored="$REPO/../shared/vendor/pjproject-$PJ_VERSION.tar.xz"
    local fetched="$CACHE_ROOT/src/pjproject-$PJ_VERSION.tar.gz"
    if [ -n "${PJPROJECT_TARBALL:-}" ]; then
        archive=$PJPROJECT_TARBALL
        case "$archive" in
            *.tar.xz) verify "$archive" "${PJPROJECT_SHA256:-$TAR_XZ_SHA256}" ;;
            *) verify "$archive" "${PJPROJECT_SHA256:-$GITHUB_TAR_GZ_SHA256}" ;;
        esac
    elif [ -f "$vendored" ]; then
        archive=$vendored
        verify "$archive" "${PJPROJECT_SHA256:-$TAR_XZ_SHA256}"
    else
        archive=$fetched
        if [ ! -f "$archive" ]; then
            mkdir -p "$(dirname "$archive")"
            download "$GITHUB_URL" "$archive"
        fi
        verify "$archive" "${PJPROJECT_SHA256:-$GITHUB_TAR_GZ_SHA256}"
    fi
}

# -- the build -----------------------------------------------------------------------------

configure_and_make() {  # in the unpacked source tree
    cp "$CONFIG_SITE" pjlib/include/pj/config_site.h || return 1
    local p
    for p in "${PATCHES[@]}"; do
        say "patch $(basename "$p")"
        patch -p1 --forward --quiet <"$p" >>"$log" 2>&1 || return 1
    done
    say "configure ${CONFIGURE_FLAGS[*]} CFLAGS='$cflags'"
    ./configure "${CONFIGURE_FLAGS[@]}" CFLAGS="$cflags" CXXFLAGS="$cflags" \
        LDFLAGS="$ldflags" >>"$log" 2>&1 || return 1
    grep -q '^#define PJ_IOQUEUE_IMP PJ_IOQUEUE_IMP_EPOLL' pjlib/include/pj/compat/os_auto.h \
        || die "configure did not select the epoll ioqueue"
    say "make lib (-j$jobs)"
    make -j"$jobs" lib >>"$log" 2>&1 || return 1
}

swig_wheel() {  # in pjsip-apps/src/swig/python
    say "swig (pjproject's Makefile: -c++ -threads)"
    make PYTHON_EXE="$python" pjsua2_wrap.cpp >>"$log" 2>&1 || return 1
    # -threads: every wrapped C++ call releases the GIL (pjsua2's callbacks take it back).
    grep -q '^#define SWIG_PYTHON_THREADS' pjsua2_wrap.cpp \
        || die "the SWIG wrapper was generated without -threads"
    local isolation=()
    if "$python" -c 'import setuptools, wheel' 2>/dev/null; then
        isolation=(--no-build-isolation)
    fi
    say "compiling the extension and building the wheel"
    "$python" -m pip wheel -q --no-deps "${isolation[@]}" -w "$build/dist" . >>"$log" 2>&1
}

smoke_test() {  # smoke_test SITE_DIR: the limits are the ones config_site.h sets
    local preload=""
    if [ "$variant" = asan ]; then  # as make sip-asan does
        preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
    fi
    LD_PRELOAD="$preload" ASAN_OPTIONS=detect_leaks=0 PYTHONPATH="$1" "$python" -c '
import pjsua2 as pj
cfg = pj.EpConfig()
calls, ports = cfg.uaConfig.maxCalls, cfg.medConfig.maxMediaPorts
print(f"pjsua2 {pj.__file__}: maxCalls {calls}, maxMediaPorts {ports}")
assert calls == 512 and ports >= 2 * 512 + 16, "config_site.h was not applied"
' >&2
}

build_into_cache() {
    local start=$SECONDS
    stage="$OUT.tmp.$$"
    build="$(mktemp -d "$CACHE_ROOT/build.XXXXXX")"
    log="$build/build.log"
    jobs="${PJSUA2_JOBS:-$(nproc)}"
    trap 'rm -rf "${build:-}" "${stage:-}"' EXIT
    find_source
    say "building pjproject $PJ_VERSION ($variant) in $build; log: $log"
    tar -C "$build" -xf "$archive"
    local src
    src="$(find "$build" -mindepth 1 -maxdepth 1 -type d -name 'pjproject*' | head -n1)"
    [ -n "$src" ] || die "$archive holds no pjproject-* directory"
    if ! (cd "$src" && configure_and_make && cd pjsip-apps/src/swig/python && swig_wheel); then
        tail -n 40 "$log" >&2
        cp "$log" "$CACHE_ROOT/failed-build.log"
        die "build failed (last lines above; whole log: $CACHE_ROOT/failed-build.log)"
    fi
    mkdir -p "$stage/site"
    cp "$build"/dist/pjsua2-*.whl "$stage/"
    "$python" -m zipfile -e "$stage"/pjsua2-*.whl "$stage/site"
    smoke_test "$stage/site"
    cp "$log" "$stage/build.log"
    cache_key >"$stage/key.txt"
    echo "build_seconds=$((SECONDS - start)) jobs=$jobs host=$(uname -n)" >>"$stage/key.txt"
    mv -T "$stage" "$OUT"
    say "built in $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s: $OUT"
}

if [ "$want" = dir ]; then
    print_result
    exit 0
fi
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock-$PJ_VERSION$suffix-$key"
flock 9
if [ -d "$OUT" ]; then
    say "reusing $OUT"
else
    build_into_cache
fi
print_result
