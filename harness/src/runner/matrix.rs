//! The compatibility matrix: scenarios (target programs with their versions) against profiles,
//! each cell the outcome in a few words, linked to its artifacts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::profile::Profile;
use crate::runner::report::{Outcome, TrialResult};
use crate::runner::requirements;
use crate::runner::suite::PlannedTrial;

/// Output format of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Markdown table.
    Markdown,
    /// One self-contained HTML file.
    Html,
    /// JSON (`{"schema": 1, "profiles": [...], "rows": [...]}`).
    Json,
}

/// One cell: a trial's outcome in a few words.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// passed, failed or ignored.
    pub outcome: Outcome,
    /// The outcome in words: starts or fails (with the cause), what it listens on, how fast the
    /// first request came and over which family.
    pub summary: String,
    /// The artifact directory, when kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<String>,
}

/// One row: a scenario and the programs it runs.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The scenario (`bind/gunicorn-dual-bind`).
    pub scenario: String,
    /// Its description's first sentence.
    pub what: String,
    /// The programs it requires, with the versions found here.
    pub programs: BTreeMap<String, String>,
    /// Profile name -> cell (only the profiles it ran in).
    pub cells: BTreeMap<String, Cell>,
}

/// The matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    /// Schema version of the JSON form.
    pub schema: u32,
    /// The profiles, in column order.
    pub profiles: Vec<String>,
    /// The rows.
    pub rows: Vec<Row>,
}

fn summary(r: &TrialResult) -> String {
    let mut parts: Vec<String> = Vec::new();
    if r.outcome == Outcome::Ignored {
        return r.reason.clone().unwrap_or_else(|| "not run".into());
    }
    for e in &r.expectations {
        let first = e.observed.lines().next().unwrap_or("");
        if let Some(svc) = e.description.strip_prefix("service ").and_then(|d| d.strip_suffix(" starts")) {
            if e.passed {
                parts.push(format!("{svc} starts"));
            } else {
                let diag = e.observed.lines().find_map(|l| l.trim().strip_prefix("diagnosis: ")).map(|d| d.split(':').next().unwrap_or(d).to_string());
                parts.push(format!("{svc} does not start{}", diag.map(|d| format!(" ({d})")).unwrap_or_default()));
            }
        } else if let Some(svc) = e.description.strip_prefix("service ").and_then(|d| d.strip_suffix(" fails to start")) {
            parts.push(format!("{svc} fails to start{}", if e.passed { "" } else { " (expected, but it started)" }));
        } else if e.description.starts_with("the calls of service") {
            if let Some(cause) = first.split(':').next() {
                parts.push(format!("cause: {cause}"));
            }
        } else if first.starts_with("first request after") {
            parts.push(first.split(" from ").next().unwrap_or(first).to_string());
        }
    }
    for (svc, ls) in &r.listeners {
        let fams: Vec<&str> = ls
            .iter()
            .map(|l| if l.contains("v6only=0") { "IPv4+IPv6" } else if l.contains('[') { "IPv6" } else { "IPv4" })
            .collect();
        if !fams.is_empty() {
            let mut f = fams.clone();
            f.sort_unstable();
            f.dedup();
            parts.push(format!("{svc} listens {}", f.join(", ")));
        }
    }
    let failed = r.expectations.iter().filter(|e| !e.passed).count();
    if r.outcome == Outcome::Failed {
        parts.push(match (&r.reason, failed) {
            (Some(reason), _) => format!("FAILED: {}", reason.lines().next().unwrap_or("")),
            (None, n) => format!("FAILED: {n} expectation(s) did not hold"),
        });
    }
    parts.join("; ")
}

/// Builds the matrix from the trials and their results (same order).
pub fn build(trials: &[PlannedTrial], results: &[TrialResult]) -> Matrix {
    let mut rows: Vec<Row> = Vec::new();
    let mut used: Vec<Profile> = Vec::new();
    for (t, r) in trials.iter().zip(results) {
        if !used.contains(&t.profile) {
            used.push(t.profile);
        }
        let scenario = t.name.rsplit_once('/').map(|(s, _)| s.to_string()).unwrap_or_else(|| t.name.clone());
        let idx = match rows.iter().position(|row| row.scenario == scenario) {
            Some(i) => i,
            None => {
                let what = t.scenario.description.split(". ").next().unwrap_or("").trim().to_string();
                rows.push(Row { scenario: scenario.clone(), what, programs: requirements::versions(&t.scenario.requires), cells: BTreeMap::new() });
                rows.len() - 1
            }
        };
        rows[idx].cells.insert(
            t.profile.name().to_string(),
            Cell { outcome: r.outcome, summary: summary(r), artifacts: r.artifacts.as_ref().map(|p| p.display().to_string()) },
        );
    }
    let profiles = Profile::ALL.iter().filter(|p| used.contains(p)).map(|p| p.name().to_string()).collect();
    Matrix { schema: 1, profiles, rows }
}

fn mark(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "✅",
        Outcome::Failed => "❌",
        Outcome::Ignored => "➖",
    }
}

fn programs(row: &Row) -> String {
    row.programs.iter().map(|(p, v)| format!("{p} {v}")).collect::<Vec<_>>().join(", ")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Renders the matrix.
pub fn render(m: &Matrix, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(m).unwrap_or_default() + "\n",
        Format::Markdown => {
            let mut s = format!("| scenario | programs | {} |\n|---|---|{}\n", m.profiles.join(" | "), "---|".repeat(m.profiles.len()));
            for r in &m.rows {
                let _ = write!(s, "| **{}**<br>{} | {} |", r.scenario, r.what.replace('|', "\\|"), programs(r));
                for p in &m.profiles {
                    match r.cells.get(p) {
                        Some(c) => {
                            let link = c.artifacts.as_ref().map(|a| format!(" [artifacts](file://{a})")).unwrap_or_default();
                            let _ = write!(s, " {} {}{} |", mark(c.outcome), c.summary.replace('|', "\\|"), link);
                        }
                        None => s.push_str(" |"),
                    }
                }
                s.push('\n');
            }
            s
        }
        Format::Html => {
            let mut s = String::from(
                "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>nslab compatibility matrix</title><style>\n\
                 body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}\n\
                 td,th{border:1px solid #ccc;padding:.5em;vertical-align:top;max-width:28em}th{background:#f4f4f4}\n\
                 .passed{background:#eaf7ea}.failed{background:#fbeaea}.ignored{background:#f4f4f4;color:#777}\n\
                 .what{color:#555;font-size:.9em}</style></head><body>\n<h1>Compatibility matrix</h1>\n<table><tr><th>scenario</th><th>programs</th>",
            );
            for p in &m.profiles {
                let _ = write!(s, "<th>{}</th>", esc(p));
            }
            s.push_str("</tr>\n");
            for r in &m.rows {
                let _ = write!(s, "<tr><td><b>{}</b><div class=\"what\">{}</div></td><td>{}</td>", esc(&r.scenario), esc(&r.what), esc(&programs(r)));
                for p in &m.profiles {
                    match r.cells.get(p) {
                        Some(c) => {
                            let class = match c.outcome {
                                Outcome::Passed => "passed",
                                Outcome::Failed => "failed",
                                Outcome::Ignored => "ignored",
                            };
                            let link = c.artifacts.as_ref().map(|a| format!(" <a href=\"file://{}\">artifacts</a>", esc(a))).unwrap_or_default();
                            let _ = write!(s, "<td class=\"{class}\">{} {}{link}</td>", mark(c.outcome), esc(&c.summary));
                        }
                        None => s.push_str("<td></td>"),
                    }
                }
                s.push_str("</tr>\n");
            }
            s.push_str("</table>\n</body></html>\n");
            s
        }
    }
}
