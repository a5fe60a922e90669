//! Attempts of one trial under a test runner that retries failures (cargo-nextest `--retries`):
//! each attempt's own artifact directory, the record each attempt leaves for the next, and the
//! JSON and JUnit reports that many test processes add their trials to.
//!
//! nextest runs every attempt in a fresh process and tells it which one it is
//! (`NEXTEST_RUN_ID`, `NEXTEST_ATTEMPT`, `NEXTEST_TOTAL_ATTEMPTS`). An attempt's artifacts go to
//! `<root>/<folder>/<scenario>/nextest-<run id>/<profile>/attempt-<N>/`, so a retry never
//! touches the evidence of the attempt before it; an attempt that did not pass leaves `trial.json`
//! (its result) there, from which the next one learns how the earlier ones ended. nextest retries only a
//! failed attempt, so an attempt after the first that passes is flaky.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::runner::report::{self, Outcome, PreviousAttempt, RunInfo, TrialResult};
use nslab::addr::profile::Profile;

/// The record each attempt leaves in its directory.
const RECORD: &str = "trial.json";

/// One attempt of a trial, as the test runner numbered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The runner's id of the whole run (nextest's run id, a UUID).
    pub run_id: String,
    /// This attempt, counting from 1.
    pub number: u32,
    /// How many attempts the runner allows this test (1 + retries).
    pub total: u32,
}

impl Attempt {
    /// The attempt cargo-nextest says this process runs, from `NEXTEST_RUN_ID`,
    /// `NEXTEST_ATTEMPT` and `NEXTEST_TOTAL_ATTEMPTS`; `None` outside nextest (or when one of
    /// them is missing or not a number).
    pub fn from_env() -> Option<Attempt> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Attempt::from_vars(var("NEXTEST_RUN_ID"), var("NEXTEST_ATTEMPT"), var("NEXTEST_TOTAL_ATTEMPTS"))
    }

    fn from_vars(run_id: Option<String>, attempt: Option<String>, total: Option<String>) -> Option<Attempt> {
        let run_id = run_id?;
        // The run id names a directory: only what a UUID is made of.
        if run_id.len() > 64 || !run_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return None;
        }
        let number: u32 = attempt?.parse().ok().filter(|n| *n >= 1)?;
        let total: u32 = total.and_then(|t| t.parse().ok()).unwrap_or(number).max(number);
        Some(Attempt { run_id, number, total })
    }

    /// The directory of attempt `number` of a trial in `profile`, under the trial's root
    /// (`<root>/<folder>/<scenario>`).
    pub(crate) fn dir(&self, trial_root: &Path, profile: Profile, number: u32) -> PathBuf {
        trial_root.join(format!("nextest-{}", self.run_id)).join(profile.name()).join(format!("attempt-{number}"))
    }

    /// How the earlier attempts of this trial ended, oldest first, read from the records they
    /// left. An attempt that left none (killed, or its process crashed) is reported failed
    /// with that said, and its directory as its evidence.
    pub(crate) fn previous(&self, trial_root: &Path, profile: Profile) -> Vec<PreviousAttempt> {
        (1..self.number)
            .map(|n| {
                let dir = self.dir(trial_root, profile, n);
                let record = std::fs::read_to_string(dir.join(RECORD)).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
                match record {
                    Some(v) => PreviousAttempt {
                        attempt: n,
                        outcome: serde_json::from_value(v["outcome"].clone()).unwrap_or(Outcome::Failed),
                        reason: v["reason"].as_str().map(str::to_string),
                        duration_ms: v["duration_ms"].as_u64().unwrap_or(0),
                        artifacts: v["artifacts"].as_str().map(PathBuf::from).or(Some(dir)),
                    },
                    None => PreviousAttempt {
                        attempt: n,
                        outcome: Outcome::Failed,
                        reason: Some(format!("attempt {n} left no record in {} (its process was killed or crashed)", dir.display())),
                        duration_ms: 0,
                        artifacts: dir.exists().then_some(dir),
                    },
                }
            })
            .collect()
    }

    /// Leaves this attempt's result in its directory for the attempts after it, when it did not
    /// pass (nextest retries only those); a pass that kept no artifacts leaves nothing, not even
    /// the empty directories.
    pub(crate) fn finish(&self, trial_root: &Path, profile: Profile, result: &TrialResult) -> std::io::Result<()> {
        let dir = self.dir(trial_root, profile, self.number);
        if result.outcome == Outcome::Passed {
            if result.artifacts.is_none() && result.timeline.is_none() {
                // Each only if empty: the run's other trials and attempts share the upper ones.
                for d in [dir.as_path(), dir.parent().unwrap_or(&dir), trial_root.join(format!("nextest-{}", self.run_id)).as_path()] {
                    let _ = std::fs::remove_dir(d);
                }
            }
            return Ok(());
        }
        std::fs::create_dir_all(&dir)?;
        let text = serde_json::to_string_pretty(result).map_err(std::io::Error::other)?;
        let mut f =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(dir.join(RECORD))?;
        f.write_all(text.as_bytes())
    }
}

/// The report files named by `NSLAB_REPORT_JSON` and `NSLAB_REPORT_JUNIT`, for test binaries
/// that run trials (tests/scenarios.rs): see [`add_to_report`].
pub fn report_paths_from_env() -> (Option<PathBuf>, Option<PathBuf>) {
    let path = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    (path("NSLAB_REPORT_JSON"), path("NSLAB_REPORT_JUNIT"))
}

/// The id of this run: nextest's run id, or one made once per process (a plain `cargo test`
/// runs every trial in one process).
pub fn run_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        Attempt::from_env().map(|a| a.run_id).unwrap_or_else(|| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            format!("process-{}-{}", std::process::id(), t.as_nanos())
        })
    })
    .clone()
}

/// Adds `result` to the JSON report at `json` (and rewrites the JUnit report at `junit` from
/// it), as one of many processes or threads of the same run (`run_id`) do at once: the file is
/// locked while it is read and rewritten. A report of another run is replaced; a later attempt
/// of a trial replaces the earlier one's entry (it carries it in `previous_attempts`).
///
/// # Errors
/// The file cannot be opened (a symbolic link is refused), locked, read or written, or the
/// JUnit report cannot be written.
pub fn add_to_report(json: &Path, junit: Option<&Path>, run_id: &str, result: &TrialResult) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(json)?;
    let mut file = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| std::io::Error::from(e))?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let old: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    let mut results: Vec<serde_json::Value> = match (&old["run_id"], &old["results"]) {
        (serde_json::Value::String(id), serde_json::Value::Array(rs)) if id == run_id => rs.clone(),
        _ => Vec::new(),
    };
    let value = serde_json::to_value(result).map_err(std::io::Error::other)?;
    results.retain(|r| r["name"] != value["name"]);
    results.push(value);
    results.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let run = RunInfo { run_id: Some(run_id.to_string()), ..RunInfo::default() };
    let out = report::json_text(&results, &run)?;
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(out.as_bytes())?;
    if let Some(j) = junit {
        let xml = report::junit_text(&results)?;
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(j)?;
        f.write_all(xml.as_bytes())?;
    }
    drop::<File>(file.unlock().map_err(|(_, e)| std::io::Error::from(e))?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nextest_variables() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            Attempt::from_vars(s("1f79aa0d-4ec8-4a5c-aa83-5e8dc2f36573"), s("2"), s("3")),
            Some(Attempt { run_id: "1f79aa0d-4ec8-4a5c-aa83-5e8dc2f36573".into(), number: 2, total: 3 })
        );
        assert_eq!(Attempt::from_vars(None, s("1"), s("1")), None, "not under nextest");
        assert_eq!(Attempt::from_vars(s("../../etc"), s("1"), s("1")), None, "a run id that is not a plain name is not used as a directory");
        assert_eq!(Attempt::from_vars(s("abc"), s("0"), s("1")), None, "attempts count from 1");
    }

    fn result(name: &str, outcome: Outcome) -> TrialResult {
        TrialResult::early(name.into(), Path::new("s/x.toml"), "dual-stack", outcome, "why".into(), std::time::Duration::from_millis(5))
    }

    #[test]
    fn a_later_attempt_replaces_the_earlier_entry_and_another_run_is_replaced() {
        let d = tempfile::tempdir().unwrap();
        let json = d.path().join("r.json");
        let junit = d.path().join("r.xml");
        add_to_report(&json, Some(&junit), "run-a", &result("s/x/dual-stack", Outcome::Failed)).unwrap();
        add_to_report(&json, Some(&junit), "run-a", &result("s/y/dual-stack", Outcome::Passed)).unwrap();
        let mut again = result("s/x/dual-stack", Outcome::Passed);
        again.attempt = Some(2);
        again.flaky = true;
        again.previous_attempts =
            vec![PreviousAttempt { attempt: 1, outcome: Outcome::Failed, reason: Some("it failed".into()), duration_ms: 5, artifacts: None }];
        add_to_report(&json, Some(&junit), "run-a", &again).unwrap();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(v["run_id"], "run-a");
        let names: Vec<&str> = v["results"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["s/x/dual-stack", "s/y/dual-stack"]);
        assert_eq!(v["results"][0]["flaky"], true);
        assert_eq!(v["results"][0]["previous_attempts"][0]["reason"], "it failed");
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(xml.contains("<flakyFailure") && xml.contains("attempt 1: it failed"), "{xml}");
        // Another run starts the report afresh.
        add_to_report(&json, None, "run-b", &result("s/z/dual-stack", Outcome::Passed)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(v["results"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn refuses_a_symbolic_link() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("victim");
        std::fs::write(&target, "keep me").unwrap();
        let link = d.path().join("r.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(add_to_report(&link, None, "run", &result("a/b/dual-stack", Outcome::Passed)).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    }
}
