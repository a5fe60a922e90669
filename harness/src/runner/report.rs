//! Results of trials and the reports made of them: JSON (versioned schema) and JUnit XML.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

/// Version of the JSON report's schema; bumped on any incompatible change.
pub const SCHEMA: u32 = 1;

/// How a trial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every expectation held.
    Passed,
    /// An expectation failed, or the trial could not run as written.
    Failed,
    /// Not run here (a requirement is missing), with the reason.
    Ignored,
}

/// One expectation's result.
#[derive(Debug, Clone, Serialize)]
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

/// How long one client kept reaching the old target after one CNAME swap, and why.
#[derive(Debug, Clone, Serialize)]
pub struct StaleRow {
    /// The swap step (its name, or `swap-cname`).
    pub step: String,
    /// The client host.
    pub client: String,
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
    /// What each service did: started or not, exit, errno and cause, listeners (structured).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<crate::runner::observe::ServiceReport>,
    /// Each client's first request to each target: when and over which family.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub first_requests: Vec<crate::runner::observe::FirstRequest>,
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
            reason: Some(reason),
            expectations: Vec::new(),
            listeners: Default::default(),
            artifacts: None,
            staleness: Vec::new(),
            timeline: None,
            services: Vec::new(),
            first_requests: Vec::new(),
        }
    }

    /// A multi-line account of a failure: reason, failed expectations, artifacts.
    pub fn failure_text(&self) -> String {
        let mut s = String::new();
        if let Some(r) = &self.reason {
            s.push_str(r);
            s.push('\n');
        }
        for e in self.expectations.iter().filter(|e| !e.passed && e.decided) {
            s.push_str(&format!("expected: {}\n  observed: {}\n", e.description, e.observed.replace('\n', "\n  ")));
        }
        for e in self.expectations.iter().filter(|e| !e.decided) {
            s.push_str(&format!("not decided: {}\n  {}\n", e.description, e.observed.replace('\n', "\n  ")));
        }
        if let Some(a) = &self.artifacts {
            s.push_str(&format!("artifacts: {}\n", a.display()));
        }
        if let Some(t) = &self.timeline {
            s.push_str(&format!("timeline: {}\n", t.display()));
        }
        s
    }
}

#[derive(Serialize)]
struct Report<'a> {
    schema: u32,
    nslab: &'static str,
    results: &'a [TrialResult],
}

/// Writes the JSON report (`{"schema": 1, "nslab": VERSION, "results": [...]}`).
///
/// # Errors
/// File errors.
pub fn write_json(path: &Path, results: &[TrialResult]) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(&Report { schema: SCHEMA, nslab: env!("CARGO_PKG_VERSION"), results }).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}

/// Writes a JUnit XML report: one test suite per scenario file, one test case per trial.
///
/// # Errors
/// File errors.
pub fn write_junit(path: &Path, results: &[TrialResult]) -> std::io::Result<()> {
    use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};
    let mut report = JReport::new("nslab");
    let mut suites: Vec<TestSuite> = Vec::new();
    for r in results {
        let status = match r.outcome {
            Outcome::Passed => TestCaseStatus::success(),
            Outcome::Ignored => {
                let mut s = TestCaseStatus::skipped();
                if let TestCaseStatus::Skipped { message, .. } = &mut s {
                    *message = r.reason.clone().map(Into::into);
                }
                s
            }
            Outcome::Failed => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                if let TestCaseStatus::NonSuccess { message, description, .. } = &mut s {
                    *message = Some(r.reason.clone().unwrap_or_else(|| "expectations failed".into()).into());
                    *description = Some(r.failure_text().into());
                }
                s
            }
        };
        let mut case = TestCase::new(r.name.clone(), status);
        case.set_time(Duration::from_millis(r.duration_ms));
        case.set_classname(r.scenario.clone());
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
    let xml = report.to_string().map_err(std::io::Error::other)?;
    std::fs::write(path, xml)
}
