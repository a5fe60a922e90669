#!/usr/bin/env bash
# Proves the scenario suite shards under cargo-nextest, as a large vendor suite would be split
# across CI machines: `--partition count:K/2` lists two disjoint shares that together are the
# whole suite, and running one share of a fast subset runs exactly the trials listed for it.
#
# Run from anywhere: `bash scripts/nextest-partition.sh`. Installs cargo-nextest when it is missing
# (`cargo install --locked cargo-nextest`, from crates.io with its own lock file: minutes, it is a
# release build of ~330 crates). The run part needs root (or rootless mode), like every scenario trial.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() { printf 'nextest-partition: FAILED: %s\n' "$*" >&2; exit 1; }
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "nextest-partition: installing cargo-nextest (cargo install --locked cargo-nextest; this takes minutes)"
    cargo install --locked cargo-nextest || fail "could not install cargo-nextest"
    cargo nextest --version >/dev/null 2>&1 || fail "cargo-nextest installed but \`cargo nextest\` does not run (is \$CARGO_HOME/bin on PATH?)"
fi
echo "nextest-partition: $(cargo nextest --version 2>/dev/null | head -n1)"

SUITE=(-p nslab-tests --test scenarios)
list() {
    cargo nextest list "${SUITE[@]}" --message-format oneline "$@" 2>/dev/null | sed 's/^nslab-tests::scenarios //' | sort
}

all=$(list)
one=$(list --partition count:1/2)
two=$(list --partition count:2/2)
n_all=$(grep -c . <<<"$all")
n_one=$(grep -c . <<<"$one")
n_two=$(grep -c . <<<"$two")
((n_all > 0)) || fail "the suite lists no trials"
both=$(comm -12 <(echo "$one") <(echo "$two"))
[[ -z $both ]] || fail "trials in both shares: $both"
[[ $(sort <(echo "$one") <(echo "$two")) == "$all" ]] || fail "the two shares ($n_one + $n_two) are not the whole suite ($n_all)"
((n_one - n_two <= 1 && n_two - n_one <= 1)) || fail "uneven shares: $n_one and $n_two"
echo "nextest-partition: list: $n_all trials = $n_one (count:1/2) + $n_two (count:2/2), disjoint"

# Run one share of a fast subset (the partition applies after the filter).
FILTER='test(/^examples\/timeline-actions\//)'
want=$(list -E "$FILTER" --partition count:1/2)
out=$(cargo nextest run "${SUITE[@]}" --no-fail-fast --color never -E "$FILTER" --partition count:1/2 2>&1) || {
    echo "$out" >&2
    fail "the share's trials did not all pass"
}
ran=$(sed -n 's/^ *PASS .* nslab-tests::scenarios //p' <<<"$out" | sort)
[[ -n $want && $ran == "$want" ]] || {
    echo "$out" >&2
    fail "ran [$(echo $ran)], expected the share listed for count:1/2 [$(echo $want)]"
}
echo "nextest-partition: run: count:1/2 of $FILTER ran exactly its share: $(echo $ran)"
