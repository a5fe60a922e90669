#!/usr/bin/env bash
# Checks the layering the compiler cannot: the library users depend on (package `nslab`) carries
# no command-line crate in its normal dependencies, no dependency requirement is `*` or exact
# (`=`), `unsafe` is allowed only in nslab::sys and the time-warp preload crate, and no crate has
# a file-level import cycle (scripts/import-cycles.py).
#
# Usage: bash scripts/check-layers.sh      (exit 1 on the first broken rule, naming it)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() {
    printf 'check-layers: %s\n' "$*" >&2
    exit 1
}

# 1. The library's normal dependency tree (default features): no CLI crate.
tree=$(cargo tree -p nslab -e normal --prefix none)
for c in clap indicatif console anyhow tracing-subscriber; do
    if grep -qE "^$c v" <<<"$tree"; then
        fail "the library's normal dependencies include $c: $(cargo tree -p nslab -e normal -i "$c" | tr '\n' ' ')"
    fi
done
echo "check-layers: nslab's normal dependency tree has none of clap, indicatif, console, anyhow, tracing-subscriber ($(wc -l <<<"$tree") crates)"

# 2. Requirements: caret only (no `*`, no `=x.y.z`), in every manifest of the workspace.
bad=$(grep -nE '^[A-Za-z0-9_-]+ *= *("(\*|=[^"]*)"|\{[^}]*version *= *"(\*|=[^"]*)")' Cargo.toml harness/*/Cargo.toml tests/Cargo.toml || true)
[[ -z $bad ]] || fail "a '*' or '=' requirement:
$bad"
echo "check-layers: every requirement is a caret requirement"

# 3. `unsafe` only where the workspace lint's exceptions are: nslab::sys and the preload crate.
allowed=$(grep -rlE '^#!\[allow\(unsafe_code\)\]' harness/*/src tests examples 2>/dev/null | sort | tr '\n' ' ' || true)
[[ $allowed == "harness/nslab/src/sys.rs harness/timewarp/src/lib.rs " ]] || fail "#![allow(unsafe_code)] in: $allowed (expected harness/nslab/src/sys.rs and harness/timewarp/src/lib.rs only)"
if grep -rnE '#\[allow\(unsafe_code\)\]' harness/*/src tests 2>/dev/null; then
    fail "an item-level #[allow(unsafe_code)] (above): unsafe belongs in nslab::sys"
fi
echo "check-layers: unsafe is allowed only in harness/nslab/src/sys.rs and the preload crate (harness/timewarp)"

# 4. No file-level import cycle in any crate.
python3 scripts/import-cycles.py harness/nslab/src harness/scenario/src harness/cli/src harness/timewarp/src
