#!/usr/bin/env bash
# A new user's crate: does the library work from its docs alone, outside this repository?
#
# Makes a fresh crate in a new private temporary directory outside the repository, depending on
# the library by path (`nslab = { path = ".../harness/nslab", features = ["testing"] }`) and on nothing else but tokio,
# with the README's library example ("Use it from your own tests") and every file of
# harness/nslab/examples/ copied in as `[[test]] harness = false` tests, and runs them:
#   1. `cargo test` as root (NSLAB_REQUIRE_ALL=1 unless set otherwise: a test that would be
#      ignored fails instead, so this run proves they pass);
#   2. the same test binaries as an unprivileged user (uid 65534, no groups, HOME, TMPDIR and
#      artifacts in its own directory of the temp dir), where they run in rootless mode or are
#      reported ignored with the reason, never failed. The binaries are the ones cargo built in
#      step 1, run the way `cargo test` runs them: that user cannot reach the toolchain, which
#      lives under /root;
#   3. the same again with rootless mode off (NSLAB_ROOTLESS=0), as on a machine that forbids
#      user namespaces: every test must be reported ignored, with the reason, none passed or
#      failed.
# The crate has its own target directory and a copy of this repository's Cargo.lock, and builds
# --offline (every dependency is in cargo's registry cache already), so it is not the
# repository's build that is tested.
#
# It prints the figures of each run (passed / failed / ignored) and the time each step took, and
# removes its temporary directory at the end; on failure it keeps it and prints its path.
#
# Usage (as root, from anywhere): bash scripts/fresh-crate.sh
# Needs: root, this machine's Rust toolchain, cargo's registry cache filled (a build of the
# repository does that), setpriv (util-linux). The programs the tests run (python3, curl) are
# looked up on PATH; a missing one makes the test ignored (root run: failed, under
# NSLAB_REQUIRE_ALL=1).
set -euo pipefail

log() { printf 'fresh-crate: %s\n' "$*"; }
die() { printf 'fresh-crate: error: %s\n' "$*" >&2; exit 2; }

SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
LIB=$REPO/harness/nslab
USER_ID=65534

[[ $(id -u) == 0 ]] || die "run it as root (the second run drops to an unprivileged user itself)"
command -v cargo >/dev/null || die "cargo is not on PATH"
command -v setpriv >/dev/null || die "setpriv (util-linux) is not on PATH"
[[ -f $REPO/Cargo.lock ]] || die "no Cargo.lock in $REPO: build the repository once first"

# 0711: the unprivileged user reaches its own subdirectory by name, and lists nothing.
T=$(mktemp -d "${TMPDIR:-/tmp}/nslab-fresh-crate.XXXXXXXX")
chmod 0711 "$T"
OK=0
finish() {
    if [[ $OK == 1 ]]; then
        rm -rf "$T"
    else
        log "FAILED; everything is kept in $T (crate: $T/root/crate, logs: $T/*.log)"
    fi
}
trap finish EXIT

ROOT=$T/root            # root's: the crate, its target directory, root's artifacts
U=$T/user               # the unprivileged user's: HOME, TMPDIR, artifacts, its copy of the binaries
mkdir -m 0700 "$ROOT" "$U"
C=$ROOT/crate
mkdir -p "$C/tests"

# The README's library example: the first rust block of its "Use it from your own tests" section.
awk '/^## /{sec=($0=="## Use it from your own tests")} sec && /^```rust/{f=1; next} f && /^```$/{exit} f{print}' "$REPO/README.md" >"$C/tests/readme.rs"
[[ -s $C/tests/readme.rs ]] || die "no rust block found in README.md's section 'Use it from your own tests'"
tests=(readme)
for f in "$LIB"/examples/*.rs; do
    n=$(basename "$f" .rs)
    cp "$f" "$C/tests/$n.rs"
    tests+=("$n")
done

{
    cat <<EOF
[package]
name = "nslab-fresh-crate"
version = "0.0.0"
edition = "2021"
publish = false

# Its own workspace: nothing of a directory above is picked up.
[workspace]

[dev-dependencies]
nslab = { path = "$LIB", features = ["testing"] }
tokio = { version = "1", features = ["macros", "rt", "io-util"] }
EOF
    for n in "${tests[@]}"; do
        printf '\n[[test]]\nname = "%s"\npath = "tests/%s.rs"\nharness = false\n' "$n" "$n"
    done
} >"$C/Cargo.toml"
cp "$REPO/Cargo.lock" "$C/Cargo.lock"
log "crate $C: tests ${tests[*]}"

export CARGO_TARGET_DIR=$ROOT/target
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f s", b-a}'; }

# Totals of libtest "test result:" lines: "passed failed ignored".
totals() { awk '/^test result:/{for(i=1;i<=NF;i++){if($(i+1) ~ /^passed/)p+=$i; if($(i+1) ~ /^failed/)f+=$i; if($(i+1) ~ /^ignored/)g+=$i}} END{printf "%d %d %d", p, f, g}' "$1"; }

t=$(now)
(cd "$C" && cargo test --offline --no-run --message-format=json-render-diagnostics >"$T/build.json" 2>"$T/build.log") || {
    tail -n 40 "$T/build.log" >&2
    die "the fresh crate does not build (log: $T/build.log)"
}
BUILD_TIME=$(since "$t")
log "built in $BUILD_TIME"

# Run 1: root, cargo test.
t=$(now)
status=0
(cd "$C" && NSLAB_REQUIRE_ALL=${NSLAB_REQUIRE_ALL:-1} NSLAB_ARTIFACTS_DIR=$ROOT/artifacts cargo test --offline --no-fail-fast >"$T/root.log" 2>&1) || status=$?
ROOT_TIME=$(since "$t")
read -r rp rf ri <<<"$(totals "$T/root.log")"
log "as root: $rp passed, $rf failed, $ri ignored (exit $status, $ROOT_TIME)"
grep -E '^test .* \.\.\. (ok|FAILED|ignored)' "$T/root.log" | sed 's/^/    /' || true
if [[ $status != 0 || $rf != 0 || $rp == 0 ]]; then
    grep -vE '^test .* \.\.\. ok$' "$T/root.log" | tail -n 60 >&2
    die "the root run failed (log: $T/root.log)"
fi

# Runs 2 and 3: an unprivileged user, the binaries cargo built (test targets only, as cargo test
# runs them). $1: log file; further arguments: extra environment.
as_user() {
    local out=$1 status=0 n exe
    shift
    : >"$out"
    for n in "${tests[@]}"; do
        exe=$(ls "$U"/bin/"$n"-* 2>/dev/null | head -n 1)
        [[ -n $exe ]] || die "no test binary for $n in $U/bin"
        (cd "$U" && setpriv --reuid="$USER_ID" --regid="$USER_ID" --clear-groups \
            env -i HOME="$U" TMPDIR="$U/tmp" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 NSLAB_ARTIFACTS_DIR="$U/artifacts" "$@" \
            "$exe" >>"$out" 2>&1) || status=$?
    done
    return $status
}

mkdir -m 0700 "$U/bin" "$U/tmp"
grep -o '"executable":"[^"]*"' "$T/build.json" | sed 's/^"executable":"//; s/"$//' | while read -r exe; do
    cp "$exe" "$U/bin/"
done
chown -R "$USER_ID:$USER_ID" "$U"
t=$(now)
status=0
as_user "$T/user.log" || status=$?
USER_TIME=$(since "$t")
read -r up uf ui <<<"$(totals "$T/user.log")"
mode=$(grep -q 'running in rootless mode' "$T/user.log" && echo "rootless mode" || echo "not rootless")
log "as uid $USER_ID ($mode): $up passed, $uf failed, $ui ignored (exit $status, $USER_TIME)"
grep -E '^test .* \.\.\. (ok|FAILED|ignored)|^note:' "$T/user.log" | sort -u | sed 's/^/    /' || true
if [[ $status != 0 || $uf != 0 || $((up + ui)) == 0 ]]; then
    tail -n 60 "$T/user.log" >&2
    die "the unprivileged run failed (log: $T/user.log)"
fi

t=$(now)
status=0
as_user "$T/norootless.log" NSLAB_ROOTLESS=0 || status=$?
NR_TIME=$(since "$t")
read -r np nf ni <<<"$(totals "$T/norootless.log")"
log "as uid $USER_ID with NSLAB_ROOTLESS=0: $np passed, $nf failed, $ni ignored (exit $status, $NR_TIME)"
grep -E '^note:' "$T/norootless.log" | sort -u | sed 's/^/    /' || true
if [[ $status != 0 || $nf != 0 || $np != 0 || $ni != "$rp" ]]; then
    tail -n 60 "$T/norootless.log" >&2
    die "without privileges every test must be reported ignored (log: $T/norootless.log)"
fi

OK=1
log "ok: build $BUILD_TIME; root $rp passed / $ri ignored; uid $USER_ID rootless $up passed / $ui ignored; uid $USER_ID no rootless $np passed / $ni ignored"
