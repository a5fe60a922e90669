//! The `nslab` command as a user runs it: exit codes, `--profile`, `--keep`, the JSON and JUnit
//! reports, `list`, `validate` without privileges, and the `cargo test` scenario binary
//! (libtest-mimic) under `--list`, `--exact` and `--ignored`, giving the same outcomes as
//! `nslab run` for the same scenarios.
//!
//! The scenarios are the small fixtures in tests/fixtures/agree/ (a second each). Trials that
//! build labs need root or rootless mode; elsewhere they are ignored with the reason (failed
//! under NSLAB_REQUIRE_ALL=1).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;

type R = Result<(), Failed>;
type Check = fn() -> R;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(Failed::from(format!($($fmt)+)));
        }
    };
}

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let kernel = kernel_unavailable();
    let scenarios_bin = scenarios_binary();
    let mut trials = vec![
        Trial::test("list/one-trial-name-per-line", list),
        Trial::test("validate/as-an-unprivileged-user", validate_unprivileged),
        Trial::test("run/invalid-scenario-exits-2", run_invalid),
    ];
    let needs_kernel: [(&str, Check); 5] = [
        ("run/exit-code-0-when-every-trial-passes-1-when-one-fails", run_exit_codes),
        ("run/profile-picks-trials-and-an-absent-profile-is-an-error", run_profile),
        ("run/keep-keeps-artifacts-and-prints-the-path", run_keep),
        ("run/json-and-junit-reports", run_reports),
        ("run/timeout-keeps-the-results-already-known", run_timeout),
    ];
    for (name, f) in needs_kernel {
        trials.push(gated(name, kernel.clone(), f));
    }
    let bin_missing = scenarios_bin.is_none().then(|| "the scenarios test binary is not built (cargo test -p nslab-tests --no-run)".to_string());
    let b = scenarios_bin.clone();
    trials.push(gated("cargo-test/list-exact-ignored", kernel.clone().or(bin_missing.clone()), move || libtest_flags(b.as_deref().expect("gated"))));
    let b = scenarios_bin.clone();
    trials.push(gated("cargo-test/agrees-with-nslab-run", kernel.or(bin_missing), move || agreement(b.as_deref().expect("gated"))));
    libtest_mimic::run(&args, trials).exit_code()
}

/// A trial that needs something the machine may lack: ignored with the reason printed, failed
/// instead under NSLAB_REQUIRE_ALL.
fn gated(name: &str, missing: Option<String>, f: impl FnOnce() -> R + Send + 'static) -> Trial {
    let require_all = nslab::runner::requirements::require_all_from_env();
    if let (Some(why), false) = (&missing, require_all) {
        eprintln!("note: {name} is ignored: {why}");
    }
    let ignored = missing.is_some() && !require_all;
    Trial::test(name, move || match missing {
        Some(why) => Err(Failed::from(format!("required: {why}"))),
        None => f(),
    })
    .with_ignored_flag(ignored)
}

fn kernel_unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let caps = status.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok()).unwrap_or(0);
    let need = (1u64 << 12) | (1u64 << 21);
    (caps & need != need).then(|| "needs CAP_NET_ADMIN and CAP_SYS_ADMIN (run as root)".to_string())
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness/ has a parent").to_path_buf()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agree")
}

fn fixture(name: &str) -> PathBuf {
    fixtures().join(format!("{name}.toml"))
}

/// The libtest-mimic binary of tests/scenarios.rs, built beside this one (the newest of them).
fn scenarios_binary() -> Option<PathBuf> {
    let deps = Path::new(env!("CARGO_BIN_EXE_nslab")).parent()?.join("deps");
    std::fs::read_dir(deps)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("scenarios-") && p.extension().is_none() && p.is_file()
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
}

/// `nslab ARGS` with its artifacts in `artifacts` and NSLAB_REQUIRE_ALL unset.
fn nslab(args: &[&str], artifacts: &Path) -> Output {
    output(Command::new(env!("CARGO_BIN_EXE_nslab")).args(args).env("NSLAB_ARTIFACTS_DIR", artifacts).env_remove("NSLAB_REQUIRE_ALL").env("NO_COLOR", "1"))
        .expect("nslab runs")
}

/// `Command::output()` with a guard against a hang, far above the normal time: past it the child
/// is killed (by its id: ours, not yet reaped) and the error names the command and the bound.
fn output(c: &mut Command) -> std::io::Result<Output> {
    const BOUND: std::time::Duration = std::time::Duration::from_secs(300);
    let what = format!("{c:?}");
    let child = c.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn()?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(BOUND).unwrap_or_else(|_| {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
        Err(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what}: pid {pid} had not ended after {} s; killed it", BOUND.as_secs())))
    })
}

fn text(o: &Output) -> String {
    format!("exit {:?}\n--- stdout\n{}--- stderr\n{}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn list() -> R {
    let tmp = tempfile::tempdir()?;
    let o = nslab(&["list", s(&fixtures())], tmp.path());
    ensure!(o.status.code() == Some(0), "nslab list should exit 0:\n{}", text(&o));
    let got: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(String::from).collect();
    let want = ["agree/fail/dual-stack", "agree/missing/dual-stack", "agree/pass/ipv4-only", "agree/pass/dual-stack", "agree/traced/dual-stack"];
    ensure!(got == want, "nslab list printed {got:?}, expected {want:?}");
    let bad = workspace().join("scenarios/invalid/unknown-action.toml");
    let o = nslab(&["list", s(&bad)], tmp.path());
    ensure!(o.status.code() == Some(2), "nslab list of an invalid file should exit 2:\n{}", text(&o));
    Ok(())
}

fn run_invalid() -> R {
    let tmp = tempfile::tempdir()?;
    let bad = workspace().join("scenarios/invalid/unknown-action.toml");
    let o = nslab(&["run", s(&bad)], tmp.path());
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(o.status.code() == Some(2), "nslab run of an invalid file should exit 2:\n{}", text(&o));
    ensure!(
        err.contains("unknown-action.toml:4:10: action in timeline step 1: \"restart\" is not an action"),
        "the error should name file:line:col:\n{}",
        text(&o)
    );
    Ok(())
}

/// `nslab validate` run as nobody (uid 65534) on a copy of the binary and of the files.
fn validate_unprivileged() -> R {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let bin = dir.join("nslab");
    std::fs::copy(env!("CARGO_BIN_EXE_nslab"), &bin)?;
    let files = dir.join("scenarios/agree");
    std::fs::create_dir_all(&files)?;
    for f in std::fs::read_dir(fixtures())? {
        let f = f?.path();
        std::fs::copy(&f, files.join(f.file_name().expect("a file")))?;
    }
    let bad = dir.join("bad.toml");
    std::fs::copy(workspace().join("scenarios/invalid/unknown-action.toml"), &bad)?;
    for p in [dir, &dir.join("scenarios"), &files] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    let root = nix::unistd::geteuid().is_root();
    let run = |args: &[&str]| -> std::io::Result<Output> {
        let mut c = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--"]).arg(&bin);
            c
        } else {
            Command::new(&bin)
        };
        output(c.args(args).env_remove("NSLAB_REQUIRE_ALL").current_dir(dir))
    };
    let whoami = if root { run(&["validate", "--help"])? } else { run(&["--version"])? };
    ensure!(whoami.status.success(), "the copied binary should run{}:\n{}", if root { " as uid 65534" } else { "" }, text(&whoami));
    let o = run(&["validate", "scenarios"])?;
    ensure!(o.status.code() == Some(0), "validate should pass without privileges:\n{}", text(&o));
    ensure!(String::from_utf8_lossy(&o.stdout).contains("5 scenario trial(s) valid, 0 file(s) with errors"), "validate should count 5 trials:\n{}", text(&o));
    let o = run(&["validate", "bad.toml"])?;
    ensure!(o.status.code() == Some(2), "validate of an invalid file should exit 2:\n{}", text(&o));
    ensure!(String::from_utf8_lossy(&o.stderr).contains("bad.toml:4:10: action in timeline step 1"), "the error should name file:line:col:\n{}", text(&o));
    Ok(())
}

fn run_exit_codes() -> R {
    let tmp = tempfile::tempdir()?;
    let o = nslab(&["run", s(&fixture("pass"))], tmp.path());
    ensure!(o.status.code() == Some(0), "every trial passed: exit 0 expected:\n{}", text(&o));
    ensure!(String::from_utf8_lossy(&o.stdout).contains("2 passed, 0 failed, 0 ignored"), "summary:\n{}", text(&o));
    let o = nslab(&["run", s(&fixture("pass")), s(&fixture("fail"))], tmp.path());
    ensure!(o.status.code() == Some(1), "a trial failed: exit 1 expected:\n{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    ensure!(out.contains("2 passed, 1 failed, 0 ignored"), "summary:\n{}", text(&o));
    ensure!(out.contains("1 of 3 expectations failed: it says goodbye"), "the failure's reason should name the failed expectation:\n{}", text(&o));
    // An ignored trial (missing program) does not fail the run.
    let o = nslab(&["run", s(&fixture("missing"))], tmp.path());
    ensure!(o.status.code() == Some(0), "an ignored trial alone: exit 0 expected:\n{}", text(&o));
    Ok(())
}

fn run_profile() -> R {
    let tmp = tempfile::tempdir()?;
    let json = tmp.path().join("r.json");
    let o = nslab(&["run", s(&fixture("pass")), "--profile", "ipv4-only", "--json", s(&json)], tmp.path());
    ensure!(o.status.code() == Some(0), "--profile ipv4-only should run and pass:\n{}", text(&o));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    let names: Vec<&str> = v["results"].as_array().ok_or("results")?.iter().filter_map(|r| r["name"].as_str()).collect();
    ensure!(names == ["agree/pass/ipv4-only"], "--profile ipv4-only ran {names:?}");
    let o = nslab(&["run", s(&fixture("pass")), "--profile", "ipv6-only"], tmp.path());
    ensure!(o.status.code() == Some(2), "a profile no trial runs in should exit 2:\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(
        err.contains("no scenario at the given paths runs in profile ipv6-only; their profiles: dual-stack, ipv4-only"),
        "the error should name the profiles available:\n{}",
        text(&o)
    );
    ensure!(!String::from_utf8_lossy(&o.stdout).contains("running"), "nothing should run:\n{}", text(&o));
    Ok(())
}

/// The lab directories under an artifacts root (`<root>/<folder>/<scenario>/<lab>`).
fn lab_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for folder in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for scen in std::fs::read_dir(folder.path()).into_iter().flatten().flatten() {
            out.extend(std::fs::read_dir(scen.path()).into_iter().flatten().flatten().map(|e| e.path()));
        }
    }
    out
}

/// The artifact directories printed (each once: the closing summary repeats a failure's).
fn artifact_lines(o: &Output) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.trim().strip_prefix("artifacts: ")).map(PathBuf::from).collect();
    v.dedup();
    v
}

fn run_keep() -> R {
    // A pass without --keep leaves nothing and prints no path.
    let tmp = tempfile::tempdir()?;
    let o = nslab(&["run", s(&fixture("pass")), "--profile", "dual-stack"], tmp.path());
    ensure!(o.status.code() == Some(0), "{}", text(&o));
    ensure!(artifact_lines(&o).is_empty(), "a passing trial without --keep should print no artifacts path:\n{}", text(&o));
    ensure!(lab_dirs(tmp.path()).is_empty(), "a passing trial without --keep should remove its artifacts, left {:?}", lab_dirs(tmp.path()));
    // With --keep: kept, printed, and the resolved scenario is structured.
    let o = nslab(&["run", s(&fixture("pass")), "--profile", "dual-stack", "--keep"], tmp.path());
    ensure!(o.status.code() == Some(0), "{}", text(&o));
    let kept = artifact_lines(&o);
    ensure!(kept.len() == 1 && kept[0].is_dir(), "--keep should print one existing artifacts directory, printed {kept:?}:\n{}", text(&o));
    ensure!(lab_dirs(tmp.path()) == kept, "the printed path should be the kept directory: {:?} vs {kept:?}", lab_dirs(tmp.path()));
    let out = std::fs::read_to_string(kept[0].join("web/hello.stdout.log")).unwrap_or_default();
    ensure!(out == "hello from dual-stack\n", "the service's output should be kept, got {out:?}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(kept[0].join("scenario.resolved.json"))?)?;
    let cmd = &r["services"][0]["command"];
    ensure!(*cmd == serde_json::json!(["sh", "-c", "echo hello from dual-stack"]), "resolved command should be the rendered argv, got {cmd}");
    ensure!(r["services"][0]["ready"] == serde_json::json!({"exit": true}), "resolved ready: {}", r["services"][0]["ready"]);
    ensure!(r["hosts"]["web"]["ipv4"].as_str().is_some_and(|a| a.starts_with("192.0.2.")), "resolved host addresses: {}", r["hosts"]);
    ensure!(r["hosts"]["web"]["ipv6"].as_str().is_some_and(|a| a.starts_with("2001:db8:")), "resolved host addresses: {}", r["hosts"]);
    // A failure is kept without --keep.
    let o = nslab(&["run", s(&fixture("fail"))], tmp.path());
    let kept2 = artifact_lines(&o);
    ensure!(kept2.len() == 1 && kept2[0].is_dir() && kept2[0] != kept[0], "a failing trial should keep and print its artifacts:\n{}", text(&o));
    Ok(())
}

fn run_reports() -> R {
    let tmp = tempfile::tempdir()?;
    let (json, junit) = (tmp.path().join("r.json"), tmp.path().join("r.xml"));
    let o = nslab(&["run", s(&fixtures()), "--json", s(&json), "--junit", s(&junit)], tmp.path());
    ensure!(o.status.code() == Some(1), "the fixtures include a failure: exit 1 expected:\n{}", text(&o));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    ensure!(v["schema"] == 1, "schema should be 1, got {}", v["schema"]);
    ensure!(v["nslab"].is_string(), "nslab should be a string");
    let results = v["results"].as_array().ok_or("results should be an array")?;
    ensure!(results.len() == 5, "5 trials expected, got {}", results.len());
    let mut outcomes = BTreeMap::new();
    for r in results {
        for key in ["name", "scenario", "profile"] {
            ensure!(r[key].is_string(), "{key} should be a string in {r}");
        }
        ensure!(r["duration_ms"].is_u64(), "duration_ms should be an integer in {r}");
        let outcome = r["outcome"].as_str().ok_or("outcome")?;
        ensure!(["passed", "failed", "ignored"].contains(&outcome), "outcome {outcome}");
        ensure!(r["reason"].is_string() == (outcome != "passed"), "reason must be present exactly on failed and ignored trials: {r}");
        for e in r["expectations"].as_array().ok_or("expectations should be an array")? {
            ensure!(
                e["description"].is_string() && e["passed"].is_boolean() && e["observed"].is_string() && e["decided"].is_boolean(),
                "expectation fields and types: {e}"
            );
        }
        if let Some(a) = r.get("artifacts") {
            ensure!(a.is_string(), "artifacts should be a path string: {r}");
        }
        outcomes.insert(r["name"].as_str().unwrap_or("").to_string(), (outcome.to_string(), r["reason"].as_str().unwrap_or("").to_string()));
    }
    let fail = &outcomes["agree/fail/dual-stack"];
    ensure!(*fail == ("failed".to_string(), "1 of 3 expectations failed: it says goodbye".to_string()), "failed trial: {fail:?}");
    let missing = &outcomes["agree/missing/dual-stack"];
    ensure!(missing.0 == "ignored" && missing.1.contains("nslab-absent-program is not installed"), "ignored trial: {missing:?}");

    // JUnit: well-formed, one testcase per trial, the failure carrying the reason.
    let xml = std::fs::read_to_string(&junit)?;
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures, mut skipped) = (Vec::new(), Vec::new(), 0);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                let attr = |n: &[u8]| {
                    e.attributes().flatten().find(|a| a.key.as_ref() == n).map(|a| {
                        let raw = String::from_utf8_lossy(&a.value).into_owned();
                        quick_xml::escape::unescape(&raw).map(|v| v.into_owned()).unwrap_or(raw)
                    })
                };
                match e.name().as_ref() {
                    b"testcase" => cases.push(attr(b"name").unwrap_or_default()),
                    b"failure" => failures.push(attr(b"message").unwrap_or_default()),
                    b"skipped" => skipped += 1,
                    _ => {}
                }
            }
            Ok(_) => {}
            Err(e) => return Err(format!("junit.xml is not well-formed XML at {}: {e}\n{xml}", reader.buffer_position()).into()),
        }
    }
    cases.sort();
    let mut names: Vec<String> = outcomes.keys().cloned().collect();
    names.sort();
    ensure!(cases == names, "junit testcases {cases:?}, expected one per trial {names:?}");
    ensure!(failures == ["1 of 3 expectations failed: it says goodbye"], "junit failures should carry the reason, got {failures:?}");
    ensure!(skipped == 1, "one skipped testcase (the missing program) expected, got {skipped}");
    Ok(())
}

/// A trial whose timeout runs out reports every expectation: decided ones with their result,
/// the others undecided with why.
fn run_timeout() -> R {
    let tmp = tempfile::tempdir()?;
    let json = tmp.path().join("r.json");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/timeout");
    let o = nslab(&["run", s(&dir), "--json", s(&json)], tmp.path());
    ensure!(o.status.code() == Some(1), "timed-out trials fail: exit 1 expected:\n{}", text(&o));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    let results = v["results"].as_array().ok_or("results")?;
    let get = |name: &str| results.iter().find(|r| r["name"] == name).cloned().ok_or(format!("no result {name}"));
    let brief = |r: &Value| -> Vec<(String, bool, bool)> {
        r["expectations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| (e["description"].as_str().unwrap_or("").to_string(), e["passed"] == true, e["decided"] == true))
            .collect()
    };
    // Timeout while checking: the exit check was still waiting; the others had their results.
    let r = get("timeout/slow-check/dual-stack")?;
    ensure!(r["outcome"] == "failed", "slow-check: {r}");
    ensure!(r["reason"] == "1 of 4 expectations could not be decided: the server exits", "slow-check reason: {}", r["reason"]);
    let want = vec![
        ("service server starts".to_string(), true, true),
        ("the server printed up".to_string(), true, true),
        ("the server exits".to_string(), false, false),
        ("nothing listens on port 9".to_string(), true, true),
    ];
    ensure!(brief(&r) == want, "slow-check expectations (description, passed, decided): {:?}", brief(&r));
    let undecided = r["expectations"][2]["observed"].as_str().unwrap_or("");
    ensure!(undecided == "not decided: the trial's timeout of 3s ran out while this was being checked", "undecided observed: {undecided:?}");
    // Timeout during the timeline: output checks still read the output; the rest undecided.
    let r = get("timeout/slow-timeline/dual-stack")?;
    ensure!(r["reason"] == "the scenario did not finish within its timeout of 2s (while the timeline played)", "slow-timeline reason: {}", r["reason"]);
    let want = vec![
        ("service server starts".to_string(), true, true),
        ("the server printed up".to_string(), true, true),
        ("the server exits".to_string(), false, false),
    ];
    ensure!(brief(&r) == want, "slow-timeline expectations (description, passed, decided): {:?}", brief(&r));
    Ok(())
}

/// The scenarios binary pointed at the fixtures (artifacts in a scratch directory unless `env`
/// says where).
fn libtest(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let mut c = Command::new(bin);
    c.args(args).env("NSLAB_SCENARIOS_DIR", fixtures()).env("NSLAB_ARTIFACTS_DIR", scratch.path()).env_remove("NSLAB_REQUIRE_ALL");
    for (k, v) in env {
        c.env(k, v);
    }
    output(&mut c).expect("the scenarios binary runs")
}

/// `test NAME ... ok|FAILED|ignored` lines: name -> passed/failed/ignored.
fn libtest_outcomes(o: &Output) -> BTreeMap<String, String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("test ")?;
            let (name, res) = rest.split_once(" ... ")?;
            let outcome = if res.starts_with("ok") {
                "passed"
            } else if res.starts_with("FAILED") {
                "failed"
            } else if res.starts_with("ignored") {
                "ignored"
            } else {
                return None;
            };
            Some((name.trim_end().to_string(), outcome.to_string()))
        })
        .collect()
}

fn libtest_flags(bin: &Path) -> R {
    let o = libtest(bin, &["--list"], &[]);
    ensure!(o.status.success(), "--list:\n{}", text(&o));
    let listed: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.strip_suffix(": test")).map(String::from).collect();
    let want = ["agree/fail/dual-stack", "agree/missing/dual-stack", "agree/pass/ipv4-only", "agree/pass/dual-stack", "agree/traced/dual-stack"];
    ensure!(listed == want, "--list printed {listed:?}, expected {want:?}");

    let o = libtest(bin, &["--exact", "agree/pass/ipv4-only"], &[]);
    let got = libtest_outcomes(&o);
    ensure!(
        o.status.success() && got.len() == 1 && got.get("agree/pass/ipv4-only").map(String::as_str) == Some("passed"),
        "--exact should run that one trial and pass, ran {got:?}:\n{}",
        text(&o)
    );
    ensure!(String::from_utf8_lossy(&o.stdout).contains("4 filtered out"), "--exact should filter the other 4 out:\n{}", text(&o));

    // A substring filter, as `cargo test -- pass` would use it: both profiles of pass.
    let o = libtest(bin, &["agree/pass/"], &[]);
    let got = libtest_outcomes(&o);
    ensure!(got.keys().collect::<Vec<_>>() == ["agree/pass/dual-stack", "agree/pass/ipv4-only"], "filter agree/pass/ ran {got:?}");

    // --ignored runs only the ignored trial; it still cannot run here, so it fails saying why.
    let o = libtest(bin, &["--ignored"], &[]);
    let got = libtest_outcomes(&o);
    ensure!(
        got.keys().collect::<Vec<_>>() == ["agree/missing/dual-stack"],
        "--ignored should run only the trial with a missing program, ran {got:?}:\n{}",
        text(&o)
    );
    ensure!(
        !o.status.success() && String::from_utf8_lossy(&o.stdout).contains("nslab-absent-program is not installed"),
        "the ignored trial run anyway should fail with the reason:\n{}",
        text(&o)
    );
    Ok(())
}

/// A PATH holding only what the fixtures need: `sh` and friends, without strace.
fn path_without_strace(dir: &Path) -> std::io::Result<String> {
    for prog in ["sh", "cat", "sleep", "true", "env"] {
        if let Some(p) = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).map(|d| d.join(prog)).find(|p| p.is_file()) {
            std::os::unix::fs::symlink(p, dir.join(prog))?;
        }
    }
    Ok(s(dir).to_string())
}

/// `nslab run --json` and the libtest-mimic binary give the same outcome to every trial: with
/// the machine's PATH, with a PATH without strace (the traced trial's implied requirement), and
/// with NSLAB_REQUIRE_ALL=yes (every unmet requirement a failure).
fn agreement(bin: &Path) -> R {
    let tmp = tempfile::tempdir()?;
    let bare = tmp.path().join("bin");
    std::fs::create_dir(&bare)?;
    let bare_path = path_without_strace(&bare)?;
    let full_path = std::env::var("PATH").unwrap_or_default();
    let has_strace = std::env::split_paths(&full_path).any(|d| d.join("strace").is_file());
    let cases: [(&str, &str, Option<&str>); 3] = [
        ("machine PATH", &full_path, None),
        ("PATH without strace", &bare_path, None),
        ("PATH without strace, NSLAB_REQUIRE_ALL=yes", &bare_path, Some("yes")),
    ];
    let art = tmp.path().join("a");
    for (what, path, require_all) in cases {
        let json = tmp.path().join("r.json");
        let mut c = Command::new(env!("CARGO_BIN_EXE_nslab"));
        c.args(["run", s(&fixtures()), "--json", s(&json)]).env("PATH", path).env("NSLAB_ARTIFACTS_DIR", &art).env_remove("NSLAB_REQUIRE_ALL");
        let mut env: Vec<(&str, &str)> = vec![("PATH", path), ("NSLAB_ARTIFACTS_DIR", s(&art))];
        if let Some(v) = require_all {
            c.env("NSLAB_REQUIRE_ALL", v);
            env.push(("NSLAB_REQUIRE_ALL", v));
        }
        let o = output(&mut c)?;
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).map_err(|e| format!("{what}: no JSON report ({e}):\n{}", text(&o)))?)?;
        let cli: BTreeMap<String, String> = v["results"]
            .as_array()
            .ok_or("results")?
            .iter()
            .map(|r| (r["name"].as_str().unwrap_or("").to_string(), r["outcome"].as_str().unwrap_or("").to_string()))
            .collect();
        let lt = libtest(bin, &[], &env);
        let tests = libtest_outcomes(&lt);
        ensure!(cli == tests, "{what}: nslab run and cargo test disagree:\n  nslab run:  {cli:?}\n  cargo test: {tests:?}\n{}\n{}", text(&o), text(&lt));
        // And the outcomes are the ones this setting must give.
        let traced = match (path == full_path && has_strace, require_all.is_some()) {
            (true, _) => "passed",
            (false, false) => "ignored",
            (false, true) => "failed",
        };
        let missing = if require_all.is_some() { "failed" } else { "ignored" };
        let want: BTreeMap<String, String> = [
            ("agree/fail/dual-stack", "failed"),
            ("agree/missing/dual-stack", missing),
            ("agree/pass/dual-stack", "passed"),
            ("agree/pass/ipv4-only", "passed"),
            ("agree/traced/dual-stack", traced),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        ensure!(cli == want, "{what}: outcomes {cli:?}, expected {want:?}");
    }
    Ok(())
}
