//! The `nslab` command as a user runs it: exit codes, `--profile`, `--keep`, the JSON and JUnit
//! reports, `list`, `validate` without privileges, Ctrl-C (SIGINT, SIGTERM) of `nslab run` and
//! `nslab matrix` and the library's cancellation, and the `cargo test` scenario binary
//! (libtest-mimic) under `--list`, `--exact` and `--ignored`, giving the same outcomes as
//! `nslab run` for the same scenarios.
//!
//! The scenarios are the small fixtures in tests/fixtures/agree/ (a second each) and, for Ctrl-C,
//! tests/fixtures/interrupt/ (trials that run until stopped). Trials that
//! build labs need root or rootless mode; elsewhere they are ignored with the reason (failed
//! under NSLAB_REQUIRE_ALL=1).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::{ensure, gated, kernel_unavailable, R};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;

type Check = fn() -> R;

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let kernel = kernel_unavailable();
    let scenarios_bin = scenarios_binary();
    let mut trials = vec![
        Trial::test("list/one-trial-name-per-line", list),
        Trial::test("list/addresses-per-host-and-profile-without-a-lab", list_addresses),
        Trial::test("validate/as-an-unprivileged-user", validate_unprivileged),
        Trial::test("run/invalid-scenario-exits-2", run_invalid),
        Trial::test("discovery/a-link-out-of-the-folder-is-not-followed", discovery_link_out),
        Trial::test("discovery/a-loop-link-is-an-error-naming-it-and-nothing-runs", discovery_loop),
        Trial::test("discovery/files-linking-to-root-are-not-walked", discovery_files_to_root),
        Trial::test("discovery/an-unreadable-folder-is-named", discovery_unreadable),
    ];
    let needs_kernel: [(&str, Check); 12] = [
        ("run/a-service-exists-only-in-its-profiles", run_service_profiles),
        ("run/exit-code-0-when-every-trial-passes-1-when-one-fails", run_exit_codes),
        ("run/profile-picks-trials-and-an-absent-profile-is-an-error", run_profile),
        ("run/keep-keeps-artifacts-and-prints-the-path", run_keep),
        ("run/json-and-junit-reports", run_reports),
        ("run/timeout-keeps-the-results-already-known", run_timeout),
        ("run/ctrl-c-stops-the-trials-reports-them-interrupted-and-exits-130", run_interrupted),
        ("run/sigterm-does-what-ctrl-c-does", || run_interrupted_by(nix::sys::signal::Signal::SIGTERM)),
        ("run/second-ctrl-c-exits-at-once", run_interrupted_twice),
        ("run/a-terminal-ctrl-c-reaches-nslab-alone-which-stops-the-programs", run_interrupted_group),
        ("matrix/ctrl-c-writes-the-matrix-of-what-ran-and-exits-130", matrix_interrupted),
        ("library/a-caller-cancels-a-run-as-ctrl-c-does", library_cancel),
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

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("the workspace holds harness/CRATE").to_path_buf()
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

/// `nslab list --addresses`: each trial's hosts with the addresses their profile gives them,
/// the lab's own `dns` host included, a host's own profile and interface kept in every trial.
fn list_addresses() -> R {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("s");
    std::fs::create_dir(&dir)?;
    std::fs::write(
        dir.join("addrs.toml"),
        "description = \"addresses per profile\"\nprofiles = [\"ipv4-only\", \"ipv6-only\"]\n\
         [hosts.web]\n[hosts.legacy]\nprofile = \"ipv4-only\"\ninterface = \"lan0\"\n[dns]\n",
    )?;
    let o = nslab(&["list", "--addresses", s(&dir)], tmp.path());
    ensure!(o.status.code() == Some(0), "nslab list --addresses should exit 0:\n{}", text(&o));
    let got: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(String::from).collect();
    let want = [
        "s/addrs/ipv4-only",
        "  dns     dual-stack  eth0  ipv4 192.0.2.214  ipv6 2001:db8:1::214  link-local fe80::214%eth0",
        "  legacy  ipv4-only   lan0  ipv4 192.0.2.152  ipv6 -                link-local -",
        "  web     ipv4-only   eth0  ipv4 192.0.2.155  ipv6 -                link-local -",
        "s/addrs/ipv6-only",
        "  dns     dual-stack  eth0  ipv4 192.0.2.214  ipv6 2001:db8:1::214  link-local fe80::214%eth0",
        "  legacy  ipv4-only   lan0  ipv4 192.0.2.152  ipv6 -                link-local -",
        "  web     ipv6-only   eth0  ipv4 -            ipv6 2001:db8:1::155  link-local fe80::155%eth0",
    ];
    ensure!(got == want, "nslab list --addresses printed\n{}\nexpected\n{}", got.join("\n"), want.join("\n"));
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

/// A scenario folder in a fresh temporary directory holding a copy of the `pass` fixture as
/// `DIR/s/mine.toml` (2 trials), and a folder `DIR/elsewhere` beside it with another scenario.
fn discovery_folder() -> std::io::Result<(tempfile::TempDir, PathBuf, PathBuf)> {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("s");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&root)?;
    std::fs::create_dir_all(&elsewhere)?;
    std::fs::copy(fixture("pass"), root.join("mine.toml"))?;
    std::fs::copy(fixture("pass"), elsewhere.join("other.toml"))?;
    Ok((tmp, root, elsewhere))
}

/// Issue 12 (7): `nslab run DIR` ran a scenario reached through a link to elsewhere.
fn discovery_link_out() -> R {
    let (tmp, root, elsewhere) = discovery_folder()?;
    std::os::unix::fs::symlink(&elsewhere, root.join("linked"))?;
    let o = nslab(&["list", s(&root)], tmp.path());
    ensure!(o.status.code() == Some(0), "nslab list should exit 0:\n{}", text(&o));
    let got: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(String::from).collect();
    ensure!(got == ["s/mine/ipv4-only", "s/mine/dual-stack"], "only the folder's own scenario should be listed, got {got:?}:\n{}", text(&o));
    Ok(())
}

/// Issue 12 (7): a `loop -> .` link ran one scenario 41 times. Now it is an error naming the
/// link, and `nslab run` runs nothing.
fn discovery_loop() -> R {
    let (tmp, root, _) = discovery_folder()?;
    std::os::unix::fs::symlink(".", root.join("loop"))?;
    let want = format!(
        "{}/loop: a symbolic link to ., which contains the link itself: a loop; expected a link to a file or to a folder that does not contain it\n",
        root.display()
    );
    for cmd in ["validate", "list", "run"] {
        let o = nslab(&[cmd, s(&root)], tmp.path());
        ensure!(o.status.code() == Some(2), "nslab {cmd} should exit 2:\n{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        ensure!(err.starts_with(&want), "nslab {cmd} should name the link, expected {want:?}:\n{}", text(&o));
        ensure!(!String::from_utf8_lossy(&o.stdout).contains("mine"), "nslab {cmd} should list or run nothing:\n{}", text(&o));
    }
    Ok(())
}

/// Issue 12 (7): `nslab validate` on a folder whose files/ holds links to `/` walked the whole
/// file system, then failed with "cannot read: Permission denied" naming no path.
fn discovery_files_to_root() -> R {
    let (tmp, root, _) = discovery_folder()?;
    std::fs::create_dir_all(root.join("files/deeper"))?;
    std::os::unix::fs::symlink("/", root.join("files/root"))?;
    std::os::unix::fs::symlink("/", root.join("files/deeper/root"))?;
    let o = nslab(&["validate", s(&root)], tmp.path());
    ensure!(o.status.code() == Some(0), "nslab validate should exit 0:\n{}", text(&o));
    ensure!(
        String::from_utf8_lossy(&o.stdout) == "2 scenario trial(s) valid, 0 file(s) with errors\n" && o.stderr.is_empty(),
        "only the folder's own scenario should be validated:\n{}",
        text(&o)
    );
    Ok(())
}

/// A folder the user cannot read is named in the error (as uid 65534 when run as root).
fn discovery_unreadable() -> R {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let root = dir.join("s");
    let locked = root.join("locked");
    std::fs::create_dir_all(&locked)?;
    std::fs::copy(fixture("pass"), root.join("mine.toml"))?;
    // A copy of the binary: the build tree need not be open to other users.
    let bin = dir.join("nslab");
    std::fs::copy(env!("CARGO_BIN_EXE_nslab"), &bin)?;
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(m));
    mode(dir, 0o755)?;
    mode(&root, 0o755)?;
    let root_user = nix::unistd::geteuid().is_root();
    let mut c = if root_user {
        // Owned by root, closed to others: uid 65534 cannot list it.
        mode(&locked, 0o700)?;
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--"]).arg(&bin);
        c
    } else {
        mode(&locked, 0o000)?;
        Command::new(&bin)
    };
    let o = c.args(["validate", s(&root)]).env_remove("NSLAB_REQUIRE_ALL").output()?;
    let _ = mode(&locked, 0o700);
    let want = format!("{}: cannot read the folder (Permission denied (os error 13))\n", locked.display());
    ensure!(o.status.code() == Some(2), "nslab validate should exit 2:\n{}", text(&o));
    ensure!(String::from_utf8_lossy(&o.stderr) == want, "the error should name the folder, expected {want:?}:\n{}", text(&o));
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

/// `profiles` on a service: in the other profiles it is not started (no output, no artifacts),
/// not in the report and not in `scenario.resolved.json`; in its own, it runs with its
/// templates rendered (here an IPv6 address the ipv4-only trial would have none for).
fn run_service_profiles() -> R {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("s");
    std::fs::create_dir(&dir)?;
    std::fs::write(
        dir.join("only.toml"),
        "description = \"a service that exists only on dual-stack\"\nprofiles = [\"ipv4-only\", \"dual-stack\"]\n[hosts.web]\n\
         [services.always]\nhost = \"web\"\nshell = \"echo always\"\nready = { exit = \"success\" }\n\
         [services.v6]\nhost = \"web\"\nshell = \"echo v6 {{host.web.ipv6}}\"\nready = { exit = \"success\" }\nprofiles = [\"dual-stack\"]\n\
         [[expect]]\nkind = \"output\"\nservice = \"v6\"\nmatches = \"^v6 2001:db8:1::\"\nprofiles = [\"dual-stack\"]\n",
    )?;
    let json = tmp.path().join("r.json");
    let o = nslab(&["run", s(&dir), "--keep", "--json", s(&json)], tmp.path());
    ensure!(o.status.code() == Some(0), "both trials pass:\n{}", text(&o));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    let results = v["results"].as_array().ok_or("results should be an array")?;
    let services = |profile: &str| -> Vec<String> {
        let r = results.iter().find(|r| r["profile"] == profile);
        r.and_then(|r| r["services"].as_array()).map(|a| a.iter().filter_map(|s| s["name"].as_str().map(String::from)).collect()).unwrap_or_default()
    };
    ensure!(services("ipv4-only") == ["always"], "ipv4-only reports only the service that exists there: {:?}\n{}", services("ipv4-only"), text(&o));
    ensure!(services("dual-stack") == ["always", "v6"], "dual-stack reports both: {:?}", services("dual-stack"));
    let kept_dirs = artifact_lines(&o);
    ensure!(kept_dirs.len() == 2, "--keep keeps both trials' artifacts, printed {kept_dirs:?}:\n{}", text(&o));
    for kept in kept_dirs {
        let r: Value = serde_json::from_str(&std::fs::read_to_string(kept.join("scenario.resolved.json"))?)?;
        let names: Vec<&str> = r["services"].as_array().map(|a| a.iter().filter_map(|s| s["name"].as_str()).collect()).unwrap_or_default();
        let v4 = r["profile"] == "ipv4-only";
        ensure!(names == if v4 { vec!["always"] } else { vec!["always", "v6"] }, "resolved services in {}: {names:?}", r["profile"]);
        ensure!(kept.join("web/v6.stdout.log").exists() != v4, "v6 ran exactly where it exists ({}): {}", r["profile"], kept.display());
    }
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
        // How long setup and the scenario itself took: on every trial that ran, within its wall time.
        let ran = outcome != "ignored";
        ensure!(r["setup_s"].is_f64() == ran && r["scenario_s"].is_f64() == ran, "setup_s and scenario_s are numbers exactly on trials that ran: {r}");
        if ran {
            let (setup, scen, total) =
                (r["setup_s"].as_f64().unwrap_or(-1.0), r["scenario_s"].as_f64().unwrap_or(-1.0), r["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0);
            ensure!(
                setup > 0.0 && scen >= 0.0 && setup + scen <= total + 0.001,
                "setup_s {setup} + scenario_s {scen} should be parts of the trial's {total}s: {r}"
            );
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
    let (mut cases, mut failures, mut skipped, mut timing_props) = (Vec::new(), Vec::new(), 0, Vec::new());
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
                    b"property" => {
                        let n = attr(b"name").unwrap_or_default();
                        if n == "setup_s" || n == "scenario_s" {
                            timing_props.push((n, attr(b"value").unwrap_or_default()));
                        }
                    }
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
    // setup_s and scenario_s as properties of each of the 4 trials that ran.
    ensure!(
        timing_props.len() == 8 && timing_props.iter().all(|(_, v)| v.parse::<f64>().is_ok()),
        "junit: setup_s and scenario_s properties on the 4 trials that ran, got {timing_props:?}"
    );
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
    ensure!(undecided == "not decided: the trial's timeout of 12s ran out while this was being checked", "undecided observed: {undecided:?}");
    // Timeout during the timeline: output checks still read the output; the rest undecided.
    let r = get("timeout/slow-timeline/dual-stack")?;
    // The reason says which part ran out and how long the setup took (a figure of the machine).
    let reason = r["reason"].as_str().unwrap_or_default();
    let shape = regex::Regex::new(r"^the scenario did not finish within its timeout of 12s \(while the timeline played; counted from the end of the setup, which took [0-9]+\.[0-9]s, plus 0\.0s of start-up of the services the timeline started\)$").unwrap();
    ensure!(shape.is_match(reason), "slow-timeline reason: {reason}");
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
    // Outside /tmp: every lab host has its own /tmp, where this folder would not be.
    let bin_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let bare = bin_dir.path().join("bin");
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

/// `nslab ARGS` started in the background with SIGINT and SIGTERM at their defaults and no signal
/// blocked (whatever this test process inherited), output to files in `dir` (read while it runs).
fn nslab_spawn(args: &[&str], artifacts: &Path, dir: &Path) -> std::io::Result<std::process::Child> {
    nslab_spawn_with(args, artifacts, dir, |_| {})
}

fn nslab_spawn_with(args: &[&str], artifacts: &Path, dir: &Path, more: impl FnOnce(&mut Command)) -> std::io::Result<std::process::Child> {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nslab"));
    more(&mut c);
    c.args(args)
        .env("NSLAB_ARTIFACTS_DIR", artifacts)
        .env_remove("NSLAB_REQUIRE_ALL")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout"))?)
        .stderr(std::fs::File::create(dir.join("stderr"))?);
    nslab::sys::default_signals(&mut c);
    c.spawn()
}

/// Polls `f` every 50 ms until it gives a value; after `bound`, an error saying what was
/// awaited (`what`) and what `detail` shows then.
fn wait_until<T>(bound: std::time::Duration, what: &str, detail: impl Fn() -> String, mut f: impl FnMut() -> Option<T>) -> Result<T, Failed> {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > bound {
            return Err(format!("waited {bound:?} for {what}, in vain\n{}", detail()).into());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The output files of a background nslab, for messages.
fn spawned_text(dir: &Path) -> String {
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap_or_default();
    format!("--- stdout\n{}--- stderr\n{}", read("stdout"), read("stderr"))
}

/// The first file under `root` (any depth) named `name` whose text contains `needle`.
fn find_file_containing(root: &Path, name: &str, needle: &str) -> Option<PathBuf> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() && e.file_name() == name && std::fs::read_to_string(&p).is_ok_and(|t| t.contains(needle)) => return Some(p),
                _ => {}
            }
        }
    }
    None
}

/// The `net:[INODE]` a /proc link names.
fn net_inode(link: &Path) -> Option<u64> {
    let t = std::fs::read_link(link).ok()?;
    t.to_str()?.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// The network namespaces process `pid` holds open (a lab's, as nslab holds them), without the
/// one this test runs in.
fn net_namespaces_held_by(pid: u32) -> Vec<u64> {
    let own = net_inode(Path::new("/proc/self/ns/net"));
    let mut v: Vec<u64> =
        std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten().filter_map(|e| net_inode(&e.path())).filter(|i| Some(*i) != own).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Everything on the machine that still keeps one of `namespaces` alive: processes in it,
/// descriptors to it, names under /run/netns.
fn namespace_holders(namespaces: &[u64]) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let cmd = || std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default().replace('\0', " ");
        if net_inode(&e.path().join("ns/net")).is_some_and(|i| namespaces.contains(&i)) {
            out.push(format!("process {pid} ({}) runs in the lab's namespace", cmd()));
        }
        for fd in std::fs::read_dir(e.path().join("fd")).into_iter().flatten().flatten() {
            if net_inode(&fd.path()).is_some_and(|i| namespaces.contains(&i)) {
                out.push(format!("process {pid} ({}) holds the lab's namespace open ({})", cmd(), fd.path().display()));
            }
        }
    }
    for e in std::fs::read_dir("/run/netns").into_iter().flatten().flatten() {
        if std::fs::metadata(e.path()).is_ok_and(|m| namespaces.contains(&std::os::unix::fs::MetadataExt::ino(&m))) {
            out.push(format!("{} names the lab's namespace", e.path().display()));
        }
    }
    out
}

/// The exit status of `child`, waiting at most `bound` (then it is killed, and the error says
/// what was awaited).
fn wait_exit(child: &mut std::process::Child, bound: std::time::Duration, what: &str, dir: &Path) -> Result<std::process::ExitStatus, Failed> {
    let r = wait_until(bound, what, || spawned_text(dir), || child.try_wait().ok().flatten());
    if r.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    r
}

/// Ctrl-C of `nslab run`: the running trial is stopped (its teardown runs, artifacts kept and
/// printed), the one waiting is never started, the summary and both reports say so, exit 130,
/// and nothing of the lab is left.
fn run_interrupted() -> R {
    run_interrupted_by(nix::sys::signal::Signal::SIGINT)
}

fn run_interrupted_by(signal: nix::sys::signal::Signal) -> R {
    use std::time::Duration;
    let tmp = tempfile::tempdir()?;
    let (json, junit, art) = (tmp.path().join("r.json"), tmp.path().join("r.xml"), tmp.path().join("artifacts"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interrupt");
    let (long, quick) = (dir.join("long.toml"), dir.join("quick.toml"));
    let mut child = nslab_spawn(&["run", s(&long), s(&quick), "-j", "1", "--json", s(&json), "--junit", s(&junit)], &art, tmp.path())?;
    let pid = child.id();
    // The event: the long trial's service runs (its log says so).
    let found = wait_until(
        Duration::from_secs(300),
        "the service of interrupt/long to print `started` into its sleeper.stdout.log",
        || spawned_text(tmp.path()),
        || find_file_containing(&art, "sleeper.stdout.log", "started\n"),
    );
    let lab_ns = net_namespaces_held_by(pid);
    let running = namespace_holders(&lab_ns);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)?;
    let status = wait_exit(&mut child, Duration::from_secs(300), &format!("nslab to exit after {signal}"), tmp.path())?;
    found?;
    let out = spawned_text(tmp.path());
    ensure!(
        !lab_ns.is_empty() && running.iter().any(|h| h.contains("sleep 600")),
        "while the trial ran, nslab held its lab's namespaces {lab_ns:?} with the service in them: {running:?}"
    );
    ensure!(status.code() == Some(130), "nslab should exit 130 after {signal}, got {status}\n{out}");
    ensure!(out.contains(&format!("nslab: {signal}: interrupted: no new trial starts")), "nslab says it took {signal}\n{out}");
    let stdout = std::fs::read_to_string(tmp.path().join("stdout"))?;
    let counts = "interrupted: 0 passed, 0 failed, 0 ignored, 1 stopped before they ended (not decided), 1 not started in ";
    ensure!(stdout.contains(counts), "the summary should say {counts:?}\n{out}");
    ensure!(stdout.contains("INTERRUPTED interrupt/long/ipv4-only"), "the stopped trial is listed as interrupted\n{out}");
    // The JSON report: what ran, the stopped trial undecided where it could not decide.
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).map_err(|e| format!("the JSON report {}: {e}\n{out}", json.display()))?)?;
    ensure!(v["interrupted"] == true, "the report says the run was interrupted: {v}");
    ensure!(v["not_started"] == serde_json::json!(["interrupt/quick/ipv4-only"]), "the report names the trial never started: {}", v["not_started"]);
    let results = v["results"].as_array().ok_or("results")?;
    ensure!(results.len() == 1, "only the trial that ran is reported: {v}");
    let r = &results[0];
    ensure!(r["name"] == "interrupt/long/ipv4-only" && r["outcome"] == "interrupted", "outcome: {r}");
    ensure!(r["reason"] == "interrupted (the run was cancelled) while the scenario ran", "reason: {}", r["reason"]);
    let brief: Vec<(String, bool, bool)> = r["expectations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["description"].as_str().unwrap_or("").to_string(), e["passed"] == true, e["decided"] == true))
        .collect();
    let want = vec![
        ("service sleeper starts".to_string(), true, true),
        ("the sleeper printed started".to_string(), true, true),
        ("the sleeper exits".to_string(), false, false),
    ];
    ensure!(brief == want, "expectations (description, passed, decided): {brief:?}");
    ensure!(
        r["expectations"][2]["observed"] == "not decided: interrupted (the run was cancelled) while the scenario ran",
        "the undecided one says why: {}",
        r["expectations"][2]["observed"]
    );
    ensure!(r["setup_s"].is_f64() && r["scenario_s"].is_f64(), "setup_s and scenario_s: {r}");
    // Artifacts kept, printed, holding the service's output.
    let kept = PathBuf::from(r["artifacts"].as_str().ok_or("the interrupted trial's artifacts are kept")?);
    ensure!(std::fs::read_to_string(kept.join("box/sleeper.stdout.log")).ok().as_deref() == Some("started\n"), "{} holds the service's output", kept.display());
    ensure!(artifact_lines_of(&stdout).contains(&kept), "the kept artifacts' path is printed\n{out}");
    // JUnit: the trial is an error of type interrupted.
    let xml = std::fs::read_to_string(&junit)?;
    ensure!(
        xml.contains("<error message=\"interrupted (the run was cancelled) while the scenario ran\" type=\"interrupted\">"),
        "junit marks the trial interrupted:\n{xml}"
    );
    // Nothing of the lab is left.
    let left = namespace_holders(&lab_ns);
    ensure!(left.is_empty(), "after nslab exited, the lab is still there: {left:?}");
    Ok(())
}

fn artifact_lines_of(stdout: &str) -> Vec<PathBuf> {
    stdout.lines().filter_map(|l| l.trim().strip_prefix("artifacts: ")).map(PathBuf::from).collect()
}

/// A second Ctrl-C ends nslab at once: the service being stopped ignores SIGTERM and has 600 s to
/// go, so the first one alone would keep nslab busy for ten minutes.
fn run_interrupted_twice() -> R {
    use std::time::Duration;
    let tmp = tempfile::tempdir()?;
    let (json, art) = (tmp.path().join("r.json"), tmp.path().join("artifacts"));
    let stubborn = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interrupt/stubborn.toml");
    let mut child = nslab_spawn(&["run", s(&stubborn), "--json", s(&json)], &art, tmp.path())?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let found = wait_until(
        Duration::from_secs(300),
        "the service of interrupt/stubborn to print `started` into its stubborn.stdout.log",
        || spawned_text(tmp.path()),
        || find_file_containing(&art, "stubborn.stdout.log", "started\n"),
    );
    let lab_ns = net_namespaces_held_by(child.id());
    if found.is_ok() {
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT)?;
    }
    // The event: nslab took the first one (it says so) and is stopping the service.
    let acked = found.and_then(|_| {
        wait_until(
            Duration::from_secs(120),
            "nslab to say it was interrupted",
            || spawned_text(tmp.path()),
            || std::fs::read_to_string(tmp.path().join("stderr")).ok().filter(|e| e.contains("SIGINT: interrupted: no new trial starts")),
        )
    });
    if acked.is_ok() {
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT)?;
    }
    let status = wait_exit(&mut child, Duration::from_secs(300), "nslab to exit after the second SIGINT (the first alone takes 600 s)", tmp.path())?;
    acked?;
    let out = spawned_text(tmp.path());
    ensure!(!lab_ns.is_empty(), "while the trial ran, nslab held its lab's namespaces");
    ensure!(status.code() == Some(130), "nslab should exit 130 after a second SIGINT, got {status}\n{out}");
    ensure!(out.contains("second SIGINT: exiting at once"), "nslab says it exits at once\n{out}");
    ensure!(!out.contains("stopped before they ended"), "no summary after the second SIGINT (it did not wait for the stop)\n{out}");
    ensure!(!json.exists(), "no report after the second SIGINT (it did not wait for the stop)");
    // The lifelines end the lab's processes; then nothing holds its namespaces.
    wait_until(
        Duration::from_secs(120),
        "the lab's processes to end after nslab exited",
        || format!("still there: {:?}", namespace_holders(&lab_ns)),
        || namespace_holders(&lab_ns).is_empty().then_some(()),
    )?;
    Ok(())
}

/// Ctrl-C of `nslab matrix`: the matrix of what ran is written, the stopped trial's cell says
/// interrupted and links its kept artifacts, the trial never started is named; exit 130.
fn matrix_interrupted() -> R {
    use std::time::Duration;
    let tmp = tempfile::tempdir()?;
    let (out_json, art) = (tmp.path().join("matrix.json"), tmp.path().join("artifacts"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interrupt");
    let (long, quick) = (dir.join("long.toml"), dir.join("quick.toml"));
    let args = ["matrix", s(&long), s(&quick), "-j", "1", "--format", "json", "-o", s(&out_json), "--artifacts", s(&art)];
    let mut child = nslab_spawn(&args, &art, tmp.path())?;
    let pid = child.id();
    let found = wait_until(
        Duration::from_secs(300),
        "the service of interrupt/long to print `started` into its sleeper.stdout.log",
        || spawned_text(tmp.path()),
        || find_file_containing(&art, "sleeper.stdout.log", "started\n"),
    );
    let lab_ns = net_namespaces_held_by(pid);
    if found.is_ok() {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGINT)?;
    }
    let status = wait_exit(&mut child, Duration::from_secs(300), "nslab matrix to exit after SIGINT", tmp.path())?;
    found?;
    let out = spawned_text(tmp.path());
    ensure!(status.code() == Some(130), "nslab matrix should exit 130 after SIGINT, got {status}\n{out}");
    ensure!(out.contains("nslab: interrupted: 0 trial(s) done, 1 stopped before they ended (not decided), 1 not started"), "it says it was interrupted\n{out}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out_json).map_err(|e| format!("the matrix {}: {e}\n{out}", out_json.display()))?)?;
    ensure!(v["interrupted"] == true && v["not_started"] == serde_json::json!(["interrupt/quick/ipv4-only"]), "the matrix says what was not run: {v}");
    let cells: Vec<&Value> =
        v["rows"].as_array().into_iter().flatten().flat_map(|r| r["cases"].as_array().into_iter().flatten()).map(|c| &c["cells"]["ipv4-only"]).collect();
    ensure!(cells.len() == 1, "one cell, the trial that ran: {v}");
    ensure!(cells[0]["test"] == "interrupted", "its cell says interrupted: {}", cells[0]);
    let a = cells[0]["artifacts"].as_str().ok_or("the cell links its artifacts")?;
    ensure!(Path::new(a).join("box/sleeper.stdout.log").is_file(), "the linked artifacts are kept: {a}");
    let left = namespace_holders(&lab_ns);
    ensure!(!lab_ns.is_empty() && left.is_empty(), "the lab ({lab_ns:?}) is gone after nslab matrix exited: {left:?}");
    Ok(())
}

/// The library does what Ctrl-C does in the CLI when a caller's own code cancels the token:
/// the running trial is stopped and reported interrupted, the waiting one is never started.
fn library_cancel() -> R {
    use std::time::Duration;
    let tmp = tempfile::tempdir()?;
    let art = tmp.path().join("artifacts");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interrupt");
    let (trials, errors) = nslab_scenario::runner::collect(&[dir.join("long.toml"), dir.join("quick.toml")], &[]);
    ensure!(errors.is_empty() && trials.len() == 2, "fixtures: {errors:?}");
    let opts = nslab_scenario::runner::RunOptions { artifacts_root: Some(art.clone()), ..Default::default() };
    let token = opts.cancel.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let ((results, not_started), seen) = rt.block_on(async {
        // The caller's own code: cancel once the long trial's service runs (bounded).
        let watch = async {
            let start = std::time::Instant::now();
            let seen = loop {
                if find_file_containing(&art, "sleeper.stdout.log", "started\n").is_some() {
                    break Ok(());
                }
                if start.elapsed() > Duration::from_secs(300) {
                    break Err(format!("waited 300s for the service of interrupt/long to print `started` under {}, in vain", art.display()));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            token.cancel();
            seen
        };
        tokio::join!(nslab_scenario::runner::run_all_until(&trials, &opts, 1, |_| {}), watch)
    });
    seen?;
    ensure!(not_started == ["interrupt/quick/ipv4-only"], "never started: {not_started:?}");
    ensure!(results.len() == 1 && results[0].outcome == nslab_scenario::runner::Outcome::Interrupted, "the running trial is interrupted: {results:?}");
    let kept = results[0].artifacts.clone().ok_or("its artifacts are kept")?;
    ensure!(kept.join("box/sleeper.stdout.log").is_file(), "{} holds the service's output", kept.display());
    Ok(())
}

/// A terminal's Ctrl-C goes to the whole foreground process group. It must reach nslab alone:
/// the lab's programs are stopped by nslab (SIGTERM, then its teardown), not hit by the SIGINT
/// in the middle of their trial.
fn run_interrupted_group() -> R {
    use std::os::unix::process::CommandExt;
    use std::time::Duration;
    let tmp = tempfile::tempdir()?;
    let art = tmp.path().join("artifacts");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interrupt/signals.toml");
    // A process group of its own, as a shell gives a foreground job, so the group signal below
    // reaches nslab and whatever shares its group, not this test.
    let mut child = nslab_spawn_with(&["run", s(&fixture)], &art, tmp.path(), |c| {
        c.process_group(0);
    })?;
    let pgrp = nix::unistd::Pid::from_raw(child.id() as i32);
    let found = wait_until(
        Duration::from_secs(300),
        "the service of interrupt/signals to print `started` into its teller.stdout.log",
        || spawned_text(tmp.path()),
        || find_file_containing(&art, "teller.stdout.log", "started\n"),
    );
    if found.is_ok() {
        nix::sys::signal::killpg(pgrp, nix::sys::signal::Signal::SIGINT)?;
    }
    let status = wait_exit(&mut child, Duration::from_secs(300), "nslab to exit after SIGINT to its process group", tmp.path())?;
    let log = found?;
    let out = spawned_text(tmp.path());
    ensure!(status.code() == Some(130), "nslab should exit 130, got {status}\n{out}");
    let said = std::fs::read_to_string(&log)?;
    ensure!(said == "started\ngot SIGTERM\n", "the service should be stopped by nslab (SIGTERM), never reached by the terminal's SIGINT; it printed {said:?}");
    Ok(())
}
