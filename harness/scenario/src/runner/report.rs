//! Results of trials and the reports made of them: JSON (versioned schema) and JUnit XML.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Version of the JSON report's schema; bumped on any incompatible change.
pub const SCHEMA: u32 = 1;

/// How a trial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every expectation held.
    Passed,
    /// An expectation failed, or the trial could not run as written.
    Failed,
    /// Not run here (a requirement is missing), with the reason.
    Ignored,
    /// Stopped before it could end because the run was cancelled (Ctrl-C, SIGTERM, or the
    /// caller's token): neither passed nor failed. Expectations not yet checked are undecided.
    Interrupted,
}

/// One expectation's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpectationResult {
    /// What was expected, as a sentence.
    pub description: String,
    /// Whether it held.
    pub passed: bool,
    /// What was observed (for an undecided one: why it could not be decided).
    pub observed: String,
    /// False when the trial ended (its timeout, a step that failed) before this could be
    /// checked; `passed` is then false too.
    pub decided: bool,
}

/// A window an expectation measured (in lab time: program time in a scaled trial), what the
/// fidelity check compares between a trial at scale 1 and the same at its scale.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MeasuredWindow {
    /// The expectation's index in the scenario file.
    pub expectation: usize,
    /// The expectation, as a sentence.
    pub description: String,
    /// What the window spans (`first "^green$" after step swap`).
    pub what: String,
    /// How long it was, seconds of lab time.
    pub seconds: f64,
}

/// One stretch of a client's stale window and the layer that held the old target in it.
#[derive(Debug, Clone, Serialize)]
pub struct HeldRow {
    /// The layer's name (`client-cache`, `host-cache:<host>`, `resolver:<name>`, `pinned-connection`).
    pub layer: String,
    /// Start, seconds after the swap.
    pub from_s: f64,
    /// End, seconds after the swap.
    pub to_s: f64,
    /// The queries and answers that show it.
    pub evidence: String,
}

/// How long one client kept reaching the old target after one CNAME swap, and why.
#[derive(Debug, Clone, Serialize)]
pub struct StaleRow {
    /// The swap step (its name, or `swap-cname`).
    pub step: String,
    /// The client host.
    pub client: String,
    /// The client service on it, when the targets attributed its requests to services (a host
    /// with two client services has a row for each); absent for a host known by address only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service: Option<String>,
    /// The layers that held the old target, by name (`pinned-connection`, `client-cache`; later
    /// `host-cache:<host>`, `resolver:<name>`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub held_by: Vec<String>,
    /// The same layers in words, each with its evidence (`a pinned connection: ...`, `the
    /// client's own cache: ...; the last answer before the change ...`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub layers: Vec<String>,
    /// The stale window split by layer, in order, from the lab's DNS traffic log.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub held: Vec<HeldRow>,
    /// The old and new targets.
    pub old: String,
    /// The new target.
    pub new: String,
    /// Seconds after the swap of its last request to the old target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_old_s: Option<f64>,
    /// Seconds after the swap of its first request to the new target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_new_s: Option<f64>,
    /// TTL, seconds, of the answer it had before the swap (from the DNS query log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<u64>,
    /// Requests to the old target after the swap on connections opened before it.
    pub pinned_requests: usize,
    /// Connections opened to the old target after the swap.
    pub new_connections_to_old: usize,
    /// DNS queries the client made after the swap, within its stale window.
    pub dns_queries_after: usize,
    /// DNS queries the client made after the swap up to its first request to the new target.
    pub dns_queries_before_new: usize,
    /// What they were answered (`NAME TYPE: data, ...`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answers_after: Vec<String>,
    /// `none`, `connection-pinning`, `resolver-cache`, `mixed`, `application-cache` or `unknown`.
    pub cause: String,
    /// All of it in a sentence.
    pub summary: String,
}

/// The result of one trial (one scenario in one profile).
#[derive(Debug, Clone, Serialize)]
pub struct TrialResult {
    /// `<folder>/<scenario>/<profile>`.
    pub name: String,
    /// The scenario file.
    pub scenario: String,
    /// The profile.
    pub profile: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
    /// The scale the trial ran at, when scaled: its programs saw time pass this many times
    /// faster, and every figure of the trial (windows, step times, staleness, first requests) is
    /// program time; `duration_ms`, `setup_s` and `scenario_s` stay wall time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_scale: Option<f64>,
    /// The windows its expectations measured, in lab time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<MeasuredWindow>,
    /// Why it failed or was ignored: on a failure, what stopped the trial, or how many
    /// expectations failed and which ("2 of 5 expectations failed: ..."). Absent when it passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Each expectation, in file order (service start checks first).
    pub expectations: Vec<ExpectationResult>,
    /// What each service listened on at the end of the timeline, read from the kernel
    /// (`tcp [::]:8000 v6only=0`); services that had exited are absent.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub listeners: std::collections::BTreeMap<String, Vec<String>>,
    /// The artifact directory, when kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<PathBuf>,
    /// Staleness after each CNAME swap, per client, for targets named like the swap's old and
    /// new CNAME targets (first label).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub staleness: Vec<StaleRow>,
    /// The timeline picture (requests to each target over time), whenever drawn: it stays
    /// behind (with results.json) when a passing trial's other artifacts are removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<PathBuf>,
    /// The lab's DNS traffic log (`dns-traffic.jsonl`: every DNS message any host sent, in lab
    /// time), in the kept artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_traffic: Option<PathBuf>,
    /// The packet capture of every lab link (`capture.pcapng`: one interface block per link,
    /// named after its host), in the kept artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<PathBuf>,
    /// What each service did: started or not, exit, errno and cause, listeners (structured).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<crate::runner::observe::ServiceReport>,
    /// Each client's first request to each target: when and over which family.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub first_requests: Vec<crate::runner::observe::FirstRequest>,
    /// Each link condition the trial applied (at build or in its timeline): asked vs achieved,
    /// as each mechanism counted (loss seen/dropped, hold p50/p99, qdisc bytes).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub links: Vec<nslab::lab::link::LinkFigures>,
    /// Seconds from the trial's start until its lab was built and its services started (or
    /// until setup ended some other way); absent when the trial did not get that far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_s: Option<f64>,
    /// Seconds the scenario itself took after setup: its timeline and the checks of its
    /// expectations (not the final stop and teardown); absent when setup did not finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario_s: Option<f64>,
    /// Under a test runner that retries (cargo-nextest `--retries`): which attempt this was,
    /// counting from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Passed on a retry after failing before: the verdict depends on something other than the
    /// scenario. Never counted as a plain pass.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub flaky: bool,
    /// The earlier attempts of this trial in the same run, oldest first, each with its own
    /// artifact directory.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub previous_attempts: Vec<PreviousAttempt>,
}

/// An earlier attempt of a retried trial: how it ended and where its evidence is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PreviousAttempt {
    /// Its number, counting from 1.
    pub attempt: u32,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
    /// Its artifact directory (kept: it did not pass).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub artifacts: Option<PathBuf>,
}

impl TrialResult {
    /// A result for a trial that did not run its expectations.
    pub fn early(name: String, scenario: &Path, profile: &str, outcome: Outcome, reason: String, took: Duration) -> Self {
        TrialResult {
            name,
            scenario: scenario.display().to_string(),
            profile: profile.to_string(),
            outcome,
            duration_ms: took.as_millis() as u64,
            time_scale: None,
            windows: Vec::new(),
            reason: Some(reason),
            expectations: Vec::new(),
            listeners: Default::default(),
            artifacts: None,
            staleness: Vec::new(),
            timeline: None,
            dns_traffic: None,
            capture: None,
            services: Vec::new(),
            first_requests: Vec::new(),
            links: Vec::new(),
            setup_s: None,
            scenario_s: None,
            attempt: None,
            flaky: false,
            previous_attempts: Vec::new(),
        }
    }

    /// A multi-line account of a failure: reason, failed expectations, artifacts.
    pub fn failure_text(&self) -> String {
        let mut s = failure_text(self.reason.as_deref(), &self.expectations, self.artifacts.as_deref(), self.timeline.as_deref());
        if let Some(d) = &self.dns_traffic {
            s.push_str(&format!("dns traffic: {}\n", d.display()));
        }
        if let Some(c) = &self.capture {
            s.push_str(&format!("packet capture: {}\n", c.display()));
        }
        s
    }
}

fn failure_text(reason: Option<&str>, expectations: &[ExpectationResult], artifacts: Option<&Path>, timeline: Option<&Path>) -> String {
    let mut s = String::new();
    if let Some(r) = reason {
        s.push_str(r);
        s.push('\n');
    }
    for e in expectations.iter().filter(|e| !e.passed && e.decided) {
        s.push_str(&format!("expected: {}\n  observed: {}\n", e.description, e.observed.replace('\n', "\n  ")));
    }
    for e in expectations.iter().filter(|e| !e.decided) {
        s.push_str(&format!("not decided: {}\n  {}\n", e.description, e.observed.replace('\n', "\n  ")));
    }
    if let Some(a) = artifacts {
        s.push_str(&format!("artifacts: {}\n", a.display()));
    }
    if let Some(t) = timeline {
        s.push_str(&format!("timeline: {}\n", t.display()));
    }
    s
}

/// What a whole run adds to its trials' results in the JSON report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run was cancelled (Ctrl-C, SIGTERM, the caller's token) before every trial ended.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub interrupted: bool,
    /// Trials never started because the run was cancelled first.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub not_started: Vec<String>,
    /// The test runner's run this report collects attempts of (cargo-nextest's run id).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub run_id: Option<String>,
}

#[derive(Serialize)]
struct Report<'a, T: Serialize> {
    schema: u32,
    nslab: &'static str,
    #[serde(flatten)]
    run: &'a RunInfo,
    results: &'a [T],
}

/// Writes the JSON report (`{"schema": 1, "nslab": VERSION, "results": [...]}`).
///
/// # Errors
/// File errors.
pub fn write_json(path: &Path, results: &[TrialResult]) -> std::io::Result<()> {
    write_json_run(path, results, &RunInfo::default())
}

/// Writes the JSON report of a run that may have been interrupted: `interrupted` and
/// `not_started` beside `results` when it was.
///
/// # Errors
/// File errors.
pub fn write_json_run(path: &Path, results: &[TrialResult], run: &RunInfo) -> std::io::Result<()> {
    std::fs::write(path, json_text(results, run)?)
}

/// The JSON report's text (any serializable form of the results: they are the same objects).
pub(crate) fn json_text<T: Serialize>(results: &[T], run: &RunInfo) -> std::io::Result<String> {
    let text = serde_json::to_string_pretty(&Report { schema: SCHEMA, nslab: env!("CARGO_PKG_VERSION"), run, results }).map_err(std::io::Error::other)?;
    Ok(text + "\n")
}

/// The fields of a result the JUnit report shows, read back from its JSON form (so a report
/// merged from several processes' results makes the same JUnit).
#[derive(Deserialize)]
struct JunitTrial {
    name: String,
    scenario: String,
    outcome: Outcome,
    duration_ms: u64,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    expectations: Vec<ExpectationResult>,
    #[serde(default)]
    artifacts: Option<PathBuf>,
    #[serde(default)]
    timeline: Option<PathBuf>,
    #[serde(default)]
    dns_traffic: Option<PathBuf>,
    #[serde(default)]
    capture: Option<PathBuf>,
    #[serde(default)]
    setup_s: Option<f64>,
    #[serde(default)]
    scenario_s: Option<f64>,
    #[serde(default)]
    time_scale: Option<f64>,
    #[serde(default)]
    attempt: Option<u32>,
    #[serde(default)]
    flaky: bool,
    #[serde(default)]
    previous_attempts: Vec<PreviousAttempt>,
}

/// Writes a JUnit XML report: one test suite per scenario file, one test case per trial.
/// A trial that passed on a retry is a success with its failed attempts as `<flakyFailure>`
/// (as cargo-nextest marks flaky tests); an interrupted one is an `<error type="interrupted">`.
///
/// # Errors
/// File errors.
pub fn write_junit(path: &Path, results: &[TrialResult]) -> std::io::Result<()> {
    let values: Vec<serde_json::Value> = results.iter().map(serde_json::to_value).collect::<Result<_, _>>().map_err(std::io::Error::other)?;
    std::fs::write(path, junit_text(&values)?)
}

/// The JUnit XML of results in their JSON form.
pub(crate) fn junit_text(results: &[serde_json::Value]) -> std::io::Result<String> {
    use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestRerun, TestSuite};
    let mut report = JReport::new("nslab");
    let mut suites: Vec<TestSuite> = Vec::new();
    for v in results {
        let r: JunitTrial = serde_json::from_value(v.clone()).map_err(std::io::Error::other)?;
        let text = failure_text(r.reason.as_deref(), &r.expectations, r.artifacts.as_deref(), r.timeline.as_deref());
        let reruns = r.previous_attempts.iter().map(|p| {
            let mut rerun = TestRerun::new(NonSuccessKind::Failure);
            rerun.set_time(Duration::from_millis(p.duration_ms));
            rerun.set_message(format!("attempt {}: {}", p.attempt, p.reason.as_deref().unwrap_or("failed")));
            if let Some(a) = &p.artifacts {
                rerun.set_system_out(format!("artifacts: {}\n", a.display()));
            }
            rerun
        });
        let status = match r.outcome {
            Outcome::Passed => {
                let mut s = TestCaseStatus::success();
                s.add_reruns(reruns);
                s
            }
            Outcome::Ignored => {
                let mut s = TestCaseStatus::skipped();
                if let Some(why) = &r.reason {
                    s.set_message(why.as_str());
                }
                s
            }
            Outcome::Failed => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(r.reason.clone().unwrap_or_else(|| "expectations failed".into()));
                s.set_description(text.as_str());
                s.add_reruns(reruns);
                s
            }
            Outcome::Interrupted => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_type("interrupted");
                s.set_message(r.reason.clone().unwrap_or_else(|| "interrupted".into()));
                s.set_description(text.as_str());
                s
            }
        };
        let mut case = TestCase::new(r.name.clone(), status);
        case.set_time(Duration::from_millis(r.duration_ms));
        case.set_classname(r.scenario.clone());
        for (key, value) in [("setup_s", r.setup_s), ("scenario_s", r.scenario_s)] {
            if let Some(v) = value {
                case.add_property((key, format!("{v:.3}").as_str()));
            }
        }
        if let Some(k) = r.time_scale {
            // The case's time is wall time; its figures (in the failure text) are program time.
            case.add_property(("time_scale", k.to_string().as_str()));
            case.add_property(("figures", "program time"));
        }
        if let Some(n) = r.attempt {
            case.add_property(("attempt", n.to_string().as_str()));
        }
        if r.flaky {
            case.add_property(("flaky", "true"));
        }
        if let Some(d) = &r.dns_traffic {
            case.add_property(("dns_traffic", d.display().to_string().as_str()));
        }
        if let Some(c) = &r.capture {
            case.add_property(("capture", c.display().to_string().as_str()));
        }
        if let Some(t) = &r.timeline {
            case.add_property(("timeline", t.display().to_string().as_str()));
            case.set_system_out(format!("timeline: {}\n", t.display()));
        }
        match suites.iter_mut().find(|s| s.name.as_str() == r.scenario) {
            Some(s) => {
                s.add_test_case(case);
            }
            None => {
                let mut s = TestSuite::new(r.scenario.clone());
                s.add_test_case(case);
                suites.push(s);
            }
        }
    }
    report.add_test_suites(suites);
    report.to_string().map_err(std::io::Error::other)
}
