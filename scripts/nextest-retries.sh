#!/usr/bin/env bash
# Proves that under `cargo nextest run --retries 1` each attempt of a scenario trial keeps its own
# artifact directory, and that a trial that passes on its retry is reported flaky, in nslab's
# JSON and JUnit reports (NSLAB_REPORT_JSON / NSLAB_REPORT_JUNIT) as in nextest's own JUnit.
#
# The fixtures (harness/cli/tests/fixtures/retry/) are copied to a fresh folder: `fails-once` fails on
# its first attempt and leaves a marker file there, which its second attempt finds and passes;
# `always-fails` fails both; `passes` passes the first time.
#
# Run from anywhere: `bash scripts/nextest-retries.sh` (needs cargo-nextest and root, or rootless
# mode, like every scenario trial). On failure the scratch folder is kept and its path printed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() {
    printf 'nextest-retries: FAILED: %s\n  evidence kept in %s\n' "$*" "$SCRATCH" >&2
    trap - EXIT
    exit 1
}
cargo nextest --version >/dev/null 2>&1 || { echo "nextest-retries: cargo-nextest is not installed (scripts/setup.sh installs it)" >&2; exit 1; }

# Under target/, not /tmp: a lab host sees a /tmp of its own, and the fixture's program must see
# the marker file its first attempt left in the scenario's folder.
mkdir -p target
SCRATCH=$(mktemp -d -p "$PWD/target" nextest-retries.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
mkdir "$SCRATCH/scenarios"
cp -r harness/cli/tests/fixtures/retry "$SCRATCH/scenarios/"
cat >"$SCRATCH/nextest.toml" <<'EOF'
[profile.nslab-retries.junit]
path = "junit.xml"
EOF

set +e
out=$(NSLAB_SCENARIOS_DIR="$SCRATCH/scenarios" NSLAB_ARTIFACTS_DIR="$SCRATCH/artifacts" \
    NSLAB_REPORT_JSON="$SCRATCH/report.json" NSLAB_REPORT_JUNIT="$SCRATCH/junit.xml" \
    cargo nextest run -p nslab-tests --test scenarios --config-file "$SCRATCH/nextest.toml" --profile nslab-retries \
    --retries 1 --no-fail-fast --color never 2>&1)
code=$?
set -e
echo "$out" >"$SCRATCH/nextest.out"
# always-fails fails both attempts, so nextest reports a failure (exit 100).
[[ $code == 100 ]] || fail "nextest exited $code, expected 100 (one trial fails every attempt):
$out"
grep -Eq 'FLAKY 2/2 .*retry/fails-once/ipv4-only' <<<"$out" || fail "nextest does not report retry/fails-once as flaky (FLAKY 2/2):
$out"
cp "target/nextest/nslab-retries/junit.xml" "$SCRATCH/nextest-junit.xml" || fail "nextest wrote no JUnit report"

python3 - "$SCRATCH" <<'EOF' || fail "the reports or the artifacts are not what they should be (above)"
import json, os, sys, xml.etree.ElementTree as ET

scratch = sys.argv[1]
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

report = json.load(open(os.path.join(scratch, "report.json")))
results = {r["name"]: r for r in report["results"]}
check(sorted(results) == ["retry/always-fails/ipv4-only", "retry/fails-once/ipv4-only", "retry/passes/ipv4-only"], f"trials in the report: {sorted(results)}")
check(report.get("run_id"), "the report names nextest's run id")

def read(path):
    try:
        return open(path).read()
    except OSError as e:
        return f"<{e}>"

def service_log(artifacts, service):
    return read(os.path.join(artifacts, "box", f"{service}.stdout.log"))

# Passed on its retry: flaky, with the failed attempt's own evidence kept and named.
r = results.get("retry/fails-once/ipv4-only", {})
check(r.get("outcome") == "passed" and r.get("flaky") is True and r.get("attempt") == 2, f"fails-once: outcome, flaky, attempt: {r.get('outcome')}, {r.get('flaky')}, {r.get('attempt')}")
prev = r.get("previous_attempts", [])
check(len(prev) == 1 and prev[0].get("attempt") == 1 and prev[0].get("outcome") == "failed", f"fails-once previous attempts: {prev}")
if prev:
    check("expectations failed: output of service once matches" in (prev[0].get("reason") or ""), f"fails-once attempt 1 reason: {prev[0].get('reason')}")
    a1 = prev[0].get("artifacts") or ""
    check(service_log(a1, "once") == "first attempt\n", f"attempt 1's evidence ({a1}) holds its own output: {service_log(a1, 'once')!r}")
    a2 = r.get("artifacts") or ""
    check(a2 and a2 != a1 and service_log(a2, "once") == "second attempt\n", f"attempt 2's artifacts ({a2}) are its own: {service_log(a2, 'once')!r}")
    check("/attempt-1/" in a1 and "/attempt-2/" in a2, f"attempt directories: {a1}, {a2}")

# Failed every attempt: both attempts' evidence kept apart, not flaky.
r = results.get("retry/always-fails/ipv4-only", {})
check(r.get("outcome") == "failed" and not r.get("flaky") and r.get("attempt") == 2, f"always-fails: {r.get('outcome')}, flaky {r.get('flaky')}, attempt {r.get('attempt')}")
prev = r.get("previous_attempts", [])
check(len(prev) == 1 and prev[0].get("outcome") == "failed", f"always-fails previous attempts: {prev}")
if prev:
    a1, a2 = prev[0].get("artifacts") or "", r.get("artifacts") or ""
    check(a1 != a2 and service_log(a1, "answer") == "no\n" and service_log(a2, "answer") == "no\n", f"always-fails keeps both attempts apart: {a1}, {a2}")

# Passed at once: not flaky, one attempt, and nothing left behind.
r = results.get("retry/passes/ipv4-only", {})
check(r.get("outcome") == "passed" and not r.get("flaky") and r.get("attempt") == 1 and not r.get("previous_attempts"), f"passes: {r}")
left = os.path.join(scratch, "artifacts", "retry", "passes", "nextest-" + str(report.get("run_id")))
check(not os.path.exists(left), f"a trial that passed at once leaves no directory: {left} exists")

# Every trial says how long its setup and its scenario took.
for name, r in results.items():
    check(isinstance(r.get("setup_s"), float) and isinstance(r.get("scenario_s"), float), f"{name}: setup_s {r.get('setup_s')}, scenario_s {r.get('scenario_s')}")

# nslab's JUnit: the flaky trial is a success carrying its failed attempt as <flakyFailure>,
# as in nextest's own JUnit.
def cases(path):
    return {c.get("name"): c for c in ET.parse(path).getroot().iter("testcase")}
mine = cases(os.path.join(scratch, "junit.xml"))
c = mine.get("retry/fails-once/ipv4-only")
check(c is not None and c.find("failure") is None and c.find("flakyFailure") is not None, "nslab JUnit: fails-once is a success with a <flakyFailure>")
if c is not None and c.find("flakyFailure") is not None:
    check("attempt 1:" in (c.find("flakyFailure").get("message") or ""), f"nslab JUnit flakyFailure message: {c.find('flakyFailure').get('message')}")
c = mine.get("retry/always-fails/ipv4-only")
check(c is not None and c.find("failure") is not None and c.find("rerunFailure") is not None, "nslab JUnit: always-fails is a <failure> with its earlier attempt as <rerunFailure>")
c = mine.get("retry/passes/ipv4-only")
check(c is not None and c.find("failure") is None and c.find("flakyFailure") is None, "nslab JUnit: passes is a plain success")
theirs = {n.split(" ")[-1]: c for n, c in cases(os.path.join(scratch, "nextest-junit.xml")).items()}
c = theirs.get("retry/fails-once/ipv4-only")
check(c is not None and c.find("flakyFailure") is not None, f"nextest's JUnit marks fails-once flaky too (cases {sorted(theirs)})")

for e in errors:
    print("  -", e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
echo "nextest-retries: fails-once passed on attempt 2 and is flaky in nslab's JSON and JUnit (and nextest's); each attempt kept its own artifacts; always-fails kept both attempts' evidence"
