//! Scenario builds (`[build.<name>]`): a build runs once for the trials that need it, at the same
//! time or later, its output read by their services; a failing build fails the trial, names the
//! build and keeps its log, and leaves nothing in the cache.

use std::path::Path;

use libtest_mimic::Arguments;
use nslab::Profile;
use nslab_scenario::runner::{run_trial, Outcome, RunOptions};
use nslab_tests::{ensure, kernel_trial};

fn main() -> std::process::ExitCode {
    nslab_tests::enter_rootless();
    let args = Arguments::from_args();
    let trials = vec![
        kernel_trial("build/runs-once-for-two-trials-and-a-later-one", runs_once),
        kernel_trial("build/a-failing-build-fails-the-trial-and-keeps-its-log", failing_build),
    ];
    nslab_tests::run_checking_host(&args, trials)
}

/// A build that copies its input into its output and counts its runs in the scenario's folder
/// (which its host sees at its own path); a service that prints the output.
const SCENARIO: &str = r#"description = "a service prints what a build made"
profiles = ["ipv4-only", "dual-stack"]

[hosts.a]

[build.gen]
command = ["sh", "-c", "cat {{scenario_dir}}/input.txt > {{out}}/data && echo ran >> {{scenario_dir}}/runs"]
inputs = ["input.txt"]

[services.reader]
host = "a"
command = ["cat", "{{build.gen}}/data"]
ready = { exit = "success" }

# A program of a trial cannot change what later trials use.
[services.tamperer]
host = "a"
shell = "echo changed > {{build.gen}}/data || echo refused"
ready = { exit = "success" }

[[expect]]
kind = "output"
service = "reader"
stream = "stdout"
matches = "^made from the input$"

[[expect]]
kind = "output"
service = "tamperer"
stream = "stdout"
matches = "^refused$"
"#;

/// The entries of the cache: finished outputs (64 hex digits) and anything else.
fn cache_entries(root: &Path) -> Vec<String> {
    match std::fs::read_dir(root.join(nslab_scenario::runner::build::CACHE_DIR)) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

async fn runs_once() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("reader.toml");
    std::fs::write(&path, SCENARIO).map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("input.txt"), "made from the input\n").map_err(|e| e.to_string())?;
    let s = nslab_scenario::scenario::load(&path).map_err(|e| e.to_string())?;
    let opts = RunOptions { artifacts_root: Some(root.path().to_path_buf()), ..Default::default() };
    // Two trials at once, both needing the build: one builds, the other waits for it.
    let (a, b) =
        tokio::join!(run_trial("build/reader/ipv4-only", &s, Profile::Ipv4Only, &opts), run_trial("build/reader/dual-stack", &s, Profile::DualStack, &opts));
    for r in [&a, &b] {
        ensure!(r.outcome == Outcome::Passed, "{} did not pass:\n{}", r.name, r.failure_text());
    }
    let runs = std::fs::read_to_string(dir.path().join("runs")).map_err(|e| format!("the build never ran: {e}"))?;
    ensure!(runs == "ran\n", "the build ran {} times for two trials at once; expected once:\n{runs}", runs.lines().count());
    // A later trial (a later run, as far as the cache can tell) takes it from the cache.
    let c = run_trial("build/reader/dual-stack", &s, Profile::DualStack, &opts).await;
    ensure!(c.outcome == Outcome::Passed, "the later trial did not pass:\n{}", c.failure_text());
    let runs = std::fs::read_to_string(dir.path().join("runs")).map_err(|e| e.to_string())?;
    ensure!(runs == "ran\n", "the build ran again for a later trial; expected its output from the cache:\n{runs}");
    let entries = cache_entries(root.path());
    ensure!(entries.len() == 1 && entries[0].len() == 64, "expected one finished output in the cache, found {entries:?}");
    let out = root.path().join(".build").join(&entries[0]);
    ensure!(!out.join(".nslab-live").exists(), "the cached output {} still carries the run's live mark", out.display());
    let data = std::fs::read_to_string(out.join("data")).map_err(|e| e.to_string())?;
    ensure!(data == "made from the input\n", "a trial's program changed the cached output: {data:?}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::symlink_metadata(&out).map_err(|e| e.to_string())?.permissions());
    ensure!(mode & 0o7777 == 0o700, "the cached output {} has mode {:o}; expected 0700", out.display(), mode & 0o7777);
    // A changed input is another key: built again.
    std::fs::write(dir.path().join("input.txt"), "made from the input\n\n").map_err(|e| e.to_string())?;
    let d = run_trial("build/reader/dual-stack", &s, Profile::DualStack, &opts).await;
    ensure!(d.outcome == Outcome::Passed, "the trial after the input changed did not pass:\n{}", d.failure_text());
    let runs = std::fs::read_to_string(dir.path().join("runs")).map_err(|e| e.to_string())?;
    ensure!(runs == "ran\nran\n", "after its input changed the build ran {} times in all; expected twice", runs.lines().count());
    Ok(())
}

const FAILING: &str = r#"description = "a build that fails"

[hosts.a]

[build.broken]
command = ["sh", "-c", "echo the compiler says no >&2; exit 3"]

[services.reader]
host = "a"
command = ["ls", "{{build.broken}}"]
"#;

async fn failing_build() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, FAILING).map_err(|e| e.to_string())?;
    let s = nslab_scenario::scenario::load(&path).map_err(|e| e.to_string())?;
    let opts = RunOptions { artifacts_root: Some(root.path().to_path_buf()), ..Default::default() };
    let r = run_trial("build/broken/dual-stack", &s, Profile::DualStack, &opts).await;
    ensure!(r.outcome == Outcome::Failed, "a trial whose build failed ended {:?}; expected failed", r.outcome);
    let reason = r.reason.clone().unwrap_or_default();
    ensure!(reason.starts_with("build broken: sh failed (exit status: 3); "), "the reason does not name the build and its end: {reason}");
    let Some((_, logs)) = reason.split_once("its output is kept in ") else {
        return Err(format!("the reason names no log: {reason}"));
    };
    let Some((_, stderr)) = logs.split_once(" and ") else {
        return Err(format!("the reason names no stderr log: {reason}"));
    };
    let text = std::fs::read_to_string(stderr.trim()).map_err(|e| format!("the log {stderr} named in the reason cannot be read: {e}"))?;
    ensure!(text.contains("the compiler says no"), "the kept log {stderr} does not hold the build's output:\n{text}");
    let entries = cache_entries(root.path());
    ensure!(entries.is_empty(), "a failed build left {entries:?} in the cache; expected nothing");
    Ok(())
}
