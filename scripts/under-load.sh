#!/usr/bin/env bash
# Runs the scenario suite (README's `cargo test -p nslab-tests --test scenarios`), or the trials
# of one folder of it, while stress-ng keeps every core busy several times over (by default
# `stress-ng --cpu 4*cores`: a 2-core machine 4x oversubscribed), RUNS times in a row. A verdict
# that changes with the machine's load is a bug of the harness or of a scenario: this shows it.
#
# Usage: bash scripts/under-load.sh [-n RUNS] [--cpu WORKERS] [--stress-timeout SECS] [FOLDER/]
#   FOLDER/         only the trials of this scenario folder, e.g. `bind/` (or `scenarios/bind`)
#   -n RUNS         consecutive runs (default 3)
#   --cpu WORKERS   stress-ng CPU workers (default 4 x the cores)
#   --stress-timeout SECS
#                   stress-ng's own --timeout for each run (default 1800): the load ends by
#                   itself even if this script is killed with -9
#
# Per run it prints the passed, failed and ignored trial counts, the wall time, the load
# average at the end and the names of the failed trials; each run's full output is kept in a
# directory it prints, removed when every run passed. Exit status 1 when any trial of any run failed.
#
# Needs root (or rootless mode), like every scenario trial, and stress-ng: when it is missing
# and this runs as root on a machine with apt-get, it installs the `stress-ng` package.
# It stops only the stress-ng process it started (by its process id), on every way out.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() {
    printf 'under-load: %s\n' "$*" >&2
    exit 2
}

RUNS=3
CORES=$(nproc)
WORKERS=$((4 * CORES))
STRESS_TIMEOUT=1800
FILTER=""
while (($# > 0)); do
    case $1 in
    -n)
        [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || fail "-n expects a number of runs (1 or more), got '${2:-}'"
        RUNS=$2
        shift 2
        ;;
    --cpu)
        [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || fail "--cpu expects a number of stress-ng workers (1 or more), got '${2:-}'"
        WORKERS=$2
        shift 2
        ;;
    --stress-timeout)
        [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || fail "--stress-timeout expects seconds (1 or more), got '${2:-}'"
        STRESS_TIMEOUT=$2
        shift 2
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    -*) fail "unknown option '$1' (see --help)" ;;
    *)
        [[ -z $FILTER ]] || fail "one folder at most, got '$FILTER' and '$1'"
        folder=${1#scenarios/}
        folder=${folder%/}
        [[ -d scenarios/$folder ]] || fail "no scenario folder scenarios/$folder"
        # Trial names are <folder>/<scenario>/<profile>: the folder and its slash select them.
        FILTER="$folder/"
        shift
        ;;
    esac
done

if ! command -v stress-ng >/dev/null; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "under-load: stress-ng is not installed; installing the Debian package stress-ng with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q stress-ng >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q stress-ng >/dev/null; } ||
            fail "apt-get could not install stress-ng"
    else
        fail "stress-ng is not installed (apt-get install stress-ng)"
    fi
fi

STRESS_PID=""
stop_stress() {
    if [[ -n $STRESS_PID ]]; then
        # Only the process this script started; stress-ng stops its own workers on SIGTERM.
        kill -TERM "$STRESS_PID" 2>/dev/null || true
        wait "$STRESS_PID" 2>/dev/null || true
        STRESS_PID=""
    fi
}
trap stop_stress EXIT
trap 'stop_stress; exit 130' INT
trap 'stop_stress; exit 143' TERM HUP

# Build before the load: the load is for the trials, not for the compiler.
echo "under-load: building the scenario suite"
cargo test -q -p nslab-tests --test scenarios --no-run

LOGS=$(mktemp -d -t nslab-under-load.XXXXXX)
what=${FILTER:+the trials of scenarios/$FILTER}
what=${what:-the whole scenario suite}
echo "under-load: $RUNS run(s) of $what, each under stress-ng --cpu $WORKERS ($CORES cores); output of each run in $LOGS"

any_failed=0
for ((run = 1; run <= RUNS; run++)); do
    stress-ng --cpu "$WORKERS" --timeout "${STRESS_TIMEOUT}s" --quiet &
    STRESS_PID=$!
    # The run starts once the workers run, not after a while.
    for _ in $(seq 1 600); do
        (($(pgrep -c -P "$STRESS_PID" || true) >= WORKERS)) && break
        kill -0 "$STRESS_PID" 2>/dev/null || fail "stress-ng ended before its workers started"
        sleep 0.05
    done
    log="$LOGS/run-$run.log"
    t0=$(date +%s.%N)
    set +e
    # shellcheck disable=SC2086 # FILTER is one word or none
    cargo test -p nslab-tests --test scenarios -- $FILTER >"$log" 2>&1
    rc=$?
    set -e
    t1=$(date +%s.%N)
    read -r l1 l5 l15 _ </proc/loadavg
    stress_left=yes
    kill -0 "$STRESS_PID" 2>/dev/null || stress_left=no
    stop_stress
    read -r passed failed ignored < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i } }
        END { printf "%d %d %d\n", p, f, g }' "$log")
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    printf 'run %d/%d: %d passed, %d failed, %d ignored in %s s; load average %s %s %s (1/5/15 min) at the end\n' \
        "$run" "$RUNS" "$passed" "$failed" "$ignored" "$wall" "$l1" "$l5" "$l15"
    [[ $stress_left == yes ]] || echo "  note: stress-ng's --timeout of ${STRESS_TIMEOUT}s ran out before the run ended: its end ran unloaded"
    sed -nE 's/^test ([^ ]+) +\.\.\. FAILED$/  failed: \1/p' "$log"
    if ((rc != 0)); then
        any_failed=1
        if ((failed == 0)); then
            echo "  the run failed without a failed trial (exit $rc); its last lines:"
            tail -n 20 "$log" | sed 's/^/  | /'
        fi
    fi
done

if ((any_failed)); then
    echo "under-load: FAILED: a run had failed trials; outputs in $LOGS"
    exit 1
fi
# A passing run leaves nothing behind (failing trials keep their artifacts, and the outputs above).
rm -rf -- "$LOGS"
echo "under-load: all $RUNS run(s) passed"
