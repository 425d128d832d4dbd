#!/usr/bin/env bash
# SIP crash hunt (issue 26): run the SIP tests N times in a row and report every crash of the
# test process with the test that was running and the crashing process's C backtrace.
#
# usage: bench/stress/sip_stress.sh [N] [--stop] [--no-gdb] [--out DIR] [-- PYTEST_ARGS...]
#   N            runs (default 30)
#   --stop       stop at the first crash
#   --no-gdb     do not run under gdb even when it is installed (core dumps instead)
#   --out DIR    logs (default var/stress-sip): run-<i>.log, each run's whole output
#   PYTEST_ARGS  what each run tests (default: tests/sip)
# Each run: python -X faulthandler (Python tracebacks of all threads on a fatal signal),
# PYTHONMALLOC=debug, MALLOC_CHECK_=3 and MALLOC_PERTURB_ (glibc checks the heap and fills
# freed memory, so a use after free fails sooner). With gdb installed the run goes under
# `gdb -batch` and a fatal signal prints the crashing thread's backtrace, then every thread's;
# without it core dumps are enabled and a crash leaves the core in the log directory.
# Prints "runs: N, crashes: K, failed runs: F" last; exits 1 when a run crashed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
runs=30 stop=0 out=var/stress-sip use_gdb=1
command -v gdb >/dev/null || use_gdb=0
pytest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --stop) stop=1 ;;
        --no-gdb) use_gdb=0 ;;
        --out) out="$2"; shift ;;
        --) shift; pytest_args=("$@"); break ;;
        -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *[!0-9]*|'') echo "sip_stress: unknown argument $1 (see --help)" >&2; exit 2 ;;
        *) runs=$1 ;;
    esac
    shift
done
[ ${#pytest_args[@]} -gt 0 ] || pytest_args=(tests/sip)
python="${VENV:-.venv}/bin/python"
[ -x "$python" ] || { echo "sip_stress: no $python (make venv)" >&2; exit 2; }
mkdir -p "$out"

export PYTHONFAULTHANDLER=1 PYTHONMALLOC=debug MALLOC_CHECK_=3 MALLOC_PERTURB_=165
# glibc >= 2.34 reads MALLOC_CHECK_ only with libc_malloc_debug preloaded (the test process
# only: under gdb it is set in the inferior's environment, not gdb's).
malloc_debug="$(/sbin/ldconfig -p 2>/dev/null | awk '/libc_malloc_debug\.so\.0 /{print $NF; exit}')"
# -v: pytest names each test as it starts, so the last named test is the one that crashed.
cmd=("$python" -X faulthandler -m pytest -v -p no:cacheprovider "${pytest_args[@]}")

run_under_gdb() {  # run_under_gdb LOG
    # SIGPIPE/SIGUSR*: delivered to the program without stopping. On a fatal signal: the
    # crashing thread's backtrace, every thread's, then `continue` delivers the signal so
    # Python's faulthandler prints its tracebacks and the process dies of it.
    gdb -q -batch -nx \
        -ex "set pagination off" -ex "set print thread-events off" \
        -ex "handle SIGPIPE SIGUSR1 SIGUSR2 nostop noprint pass" \
        ${malloc_debug:+-ex "set environment LD_PRELOAD=$malloc_debug"} \
        -ex run -ex "echo \n=== crashing thread\n" -ex bt \
        -ex "echo \n=== all threads\n" -ex "thread apply all bt" -ex continue \
        --args "${cmd[@]}" >"$1" 2>&1 </dev/null
    # gdb's own status is not the program's: read the outcome from its messages.
    if grep -q '^Program received signal SIG\(SEGV\|ABRT\|BUS\|FPE\|ILL\)' "$1"; then
        return 139
    elif grep -q '^\[Inferior 1 (process [0-9]*) exited normally\]' "$1"; then
        return 0
    fi
    local code
    code="$(sed -n 's/^\[Inferior 1 (process [0-9]*) exited with code \([0-9]*\)\]$/\1/p' "$1")"
    return "$((8#${code:-143}))"  # gdb prints the exit code in octal; none: killed (SIGKILL)
}

run_with_core() {  # run_with_core LOG CORE_DIR: a core the kernel writes here is moved there
    local status
    (ulimit -c unlimited && LD_PRELOAD="$malloc_debug" exec "${cmd[@]}" >"$1" 2>&1 </dev/null)
    status=$?
    for core in core core.[0-9]*; do
        [ -f "$core" ] && mkdir -p "$2" && mv "$core" "$2/"
    done
    return "$status"
}

core_backtrace() {  # core_backtrace CORE_DIR: the crashing thread's backtrace from a core
    local core
    core="$(ls "$1"/core* 2>/dev/null | head -n1)"
    if [ -z "$core" ]; then
        echo "  (no core file: see the kernel's core_pattern; Python tracebacks below)"
    elif ! command -v gdb >/dev/null; then
        echo "  core: $core (install gdb: gdb $python $core -batch -ex 'thread apply all bt')"
    else
        echo "  C backtrace of the crashing thread, from $core (first 30 frames):"
        gdb -q -batch -nx -ex bt "$python" "$core" 2>/dev/null | grep "^#" | awk "!seen[\$0]++" | head -n 30 \
            | cut -c1-220 | sed 's/^/    /'
    fi
}

report_crash() {  # report_crash LOG
    local test
    test="$(grep -oE '^[^ ]+\.py::[^ ]+' "$1" | tail -n1)"
    echo "  crashed in: ${test:-(no test had started)}"
    if grep -q '^=== crashing thread' "$1"; then
        grep -m1 '^Program received signal' "$1" | sed 's/^/  /'
        echo "  C backtrace of the crashing thread (first 30 frames; every thread's in $1):"
        awk '/^=== crashing thread/ {on = 1; next} /^=== all threads/ {exit}
             on && /^#/ && n++ < 30' "$1" | cut -c1-220 | sed 's/^/    /'
    else
        core_backtrace "${1%.log}"
    fi
    echo "  Python traceback of the crashing thread (faulthandler):"
    awk '/Fatal Python error/ {on = 1} on && /^ *$/ && n > 2 {exit} on {print; n++}' "$1" \
        | head -n 16 | sed 's/^/    /'
}

crashes=0 failed=0
for i in $(seq 1 "$runs"); do
    log="$out/run-$i.log"
    if [ "$use_gdb" = 1 ]; then
        run_under_gdb "$log"
    else
        run_with_core "$log" "$out/run-$i"
    fi
    status=$?
    summary="$(grep -E '^=+ .*(passed|failed|error|skipped).* in [0-9.]+s' "$log" | tail -n1)"
    if [ "$status" -gt 5 ]; then  # pytest's own codes are 0-5; more is a signal or an abort
        crashes=$((crashes + 1))
        echo "run $i/$runs: CRASH (status $status)"
        report_crash "$log"
        [ "$stop" = 1 ] && { runs=$i; break; }
    elif [ "$status" -ne 0 ]; then
        failed=$((failed + 1))
        echo "run $i/$runs: tests failed (status $status) ${summary}; log $log"
    else
        echo "run $i/$runs: ok ${summary}"
    fi
done
echo "runs: $runs, crashes: $crashes, failed runs: $failed"
[ "$crashes" -eq 0 ]
