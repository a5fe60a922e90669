//! The compatibility matrix: programs under test (with the versions found here) against
//! profiles. Each cell says whether the scenario's test held and, apart from that, what the
//! program did: started or failed (errno and cause), what it listened on, over which family it
//! was reachable and how long the first request took, linked to the trial's artifacts. Built
//! from the trials' structured results, never from their text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::runner::observe::{FirstRequest, ServiceReport};
use crate::runner::planned::PlannedTrial;
use crate::runner::report::{Outcome, TrialResult};
use crate::runner::requirements;
use crate::scenario::{Check, ConnectCheck, ConnectFamily, ConnectResult, ConnectTarget, Scenario};
use nslab::addr::profile::Profile;

/// Version of the JSON form.
pub const SCHEMA: u32 = 2;

/// Output format of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Markdown table.
    Markdown,
    /// One self-contained HTML file.
    Html,
    /// JSON (`{"schema": 2, "profiles": [...], "rows": [...]}`).
    Json,
}

/// What one service of the program did in a trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceCell {
    /// The service's name in the scenario.
    pub service: String,
    /// Whether it started (became ready); `None` when it was never started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
    /// Its exit code when it exited on its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The errno of its failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    /// The cause of its failure, as a diagnosis names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The evidence for the cause: the failing call, or the output line and the lab fact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// What it listened on (`tcp [::]:8000 v6only=0`).
    pub listens: Vec<String>,
    /// The families its listeners take peers of: `ipv4`, `ipv6`.
    pub listens_families: Vec<&'static str>,
    /// For a service that listens, in a lab where other hosts could be its peers: whether
    /// those peers reach it over the families the profile gives both (`reachable over IPv4,
    /// not over IPv6, which its peers have`); `None` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peers: Option<String>,
}

/// How a listening service fares against the families its peers have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerReach {
    /// Reachable over every family its peers have.
    All,
    /// Over some.
    Some,
    /// Over none.
    None,
}

/// The families a host in `p` can be reached over from another lab host: IPv4 where it has an
/// address, IPv6 where IPv6 is on and its path works (not in `broken-ipv6`).
fn usable_families(p: Profile) -> Vec<&'static str> {
    let mut f = Vec::new();
    if p.has_ipv4() {
        f.push("ipv4");
    }
    if p.ipv6_enabled() && !p.ipv6_broken() {
        f.push("ipv6");
    }
    f
}

fn family_words(f: &[&str]) -> String {
    f.iter().map(|f| if *f == "ipv4" { "IPv4" } else { "IPv6" }).collect::<Vec<_>>().join(" and ")
}

/// Judges a service that listens against the families the profile gives its host and its
/// peers (the scenario's other hosts): `None` when it listens on nothing, has no peer, or
/// shares no family with them.
fn peer_reach(scenario: &Scenario, profile: Profile, s: &ServiceReport) -> Option<(PeerReach, String)> {
    if s.listeners.is_empty() {
        return None;
    }
    let profile_of = |h: &str| scenario.host(h).and_then(|h| h.profile).unwrap_or(profile);
    let mine = usable_families(profile_of(&s.host));
    let peers: Vec<&'static str> = ["ipv4", "ipv6"]
        .into_iter()
        .filter(|f| mine.contains(f) && scenario.hosts.iter().filter(|h| h.name != s.host).any(|h| usable_families(profile_of(&h.name)).contains(f)))
        .collect();
    if peers.is_empty() {
        return None;
    }
    // A socket on a loopback address takes no peer, whatever its family.
    let over = |f: &str| {
        s.listeners.iter().any(|l| {
            let loopback = l.address.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback());
            !loopback && if f == "ipv4" { l.reachable_over_ipv4 } else { l.reachable_over_ipv6 }
        })
    };
    let (yes, no): (Vec<&str>, Vec<&str>) = peers.iter().partition(|f| over(f));
    let only = if peers.len() == 1 { ", the only family its peers have here" } else { ", which its peers have" };
    Some(match (yes.is_empty(), no.is_empty()) {
        (_, true) => (PeerReach::All, format!("peers reach it over {}", family_words(&yes))),
        (true, false) => (PeerReach::None, format!("unreachable from its peers over {}{only}", family_words(&no))),
        (false, false) => (PeerReach::Some, format!("peers reach it over {} only, not over {}{only}", family_words(&yes), family_words(&no))),
    })
}

/// A connect the scenario checked, and what it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reach {
    /// The connecting host.
    pub from: String,
    /// Where to (`server:8000`).
    pub to: String,
    /// `ipv4`, `ipv6`, `link-local` or `any`.
    pub family: &'static str,
    /// `ok`, `timeout` or an errno name, when the check held (so the result is known); `None`
    /// when it did not hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// What the scenario expected.
    pub expected: String,
}

/// One trial: a case (scenario) of a program in one profile.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// Whether the test held: `passed` (every expectation held), `failed` or `ignored`. Not the
    /// same as "the program works": a scenario can expect a failure.
    pub test: Outcome,
    /// Why the test failed or was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the program did, in a word: `works` (every service of it started and none failed or
    /// had a diagnosed cause, and every one that listens is reached by its peers over every
    /// family the profile gives them both), `fails` (none started, or all that did exited
    /// unsuccessfully or listen where no peer reaches them over any family they have), `partly`
    /// (some of its services failed while others worked, or a server is reached over some of
    /// its peers' families only) or `not-run`.
    pub program: &'static str,
    /// Each service running the program (all services when none does).
    pub services: Vec<ServiceCell>,
    /// Connects the scenario checked.
    pub reachable: Vec<Reach>,
    /// Clients' first requests to targets: time to connect and family.
    pub first_requests: Vec<FirstRequest>,
    /// Staleness after each CNAME swap, per client service where the targets attributed the
    /// requests (per host otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub staleness: Vec<crate::runner::report::StaleRow>,
    /// The trial's artifact directory, kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<String>,
    /// The trial's packet capture (`capture.pcapng` in the artifacts), kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<String>,
}

/// One case of a program: a scenario, with a cell per profile it ran in.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// The scenario (`bind/gunicorn-dual-bind`).
    pub scenario: String,
    /// Its description's first sentence.
    pub what: String,
    /// Profile name -> cell (only the profiles it ran in).
    pub cells: BTreeMap<String, Cell>,
}

/// One row: a program under test, with every case of it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The program (`gunicorn`).
    pub program: String,
    /// Its version found here (`20.1.0`, `missing`).
    pub version: String,
    /// Its cases, in run order.
    pub cases: Vec<Case>,
}

/// The matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    /// Schema version of the JSON form.
    pub schema: u32,
    /// The profiles, in column order.
    pub profiles: Vec<String>,
    /// The rows, one per program.
    pub rows: Vec<Row>,
    /// The trials never started because the run was interrupted (their cells are empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_started: Vec<String>,
}

impl Matrix {
    /// Whether the run it shows was interrupted: a trial stopped before it ended, or never
    /// started.
    pub fn interrupted(&self) -> bool {
        !self.not_started.is_empty() || self.rows.iter().flat_map(|r| &r.cases).flat_map(|c| c.cells.values()).any(|c| c.test == Outcome::Interrupted)
    }

    /// The line that says so, or `None`.
    fn interrupted_note(&self) -> Option<String> {
        self.interrupted().then(|| {
            let mut s = "Interrupted: cells marked interrupted were stopped before they ended (not decided)".to_string();
            if !self.not_started.is_empty() {
                s.push_str(&format!("; never started: {}", self.not_started.join(", ")));
            }
            s
        })
    }
}

fn families(s: &ServiceReport) -> Vec<&'static str> {
    let mut f = Vec::new();
    if s.listeners.iter().any(|l| l.reachable_over_ipv4) {
        f.push("ipv4");
    }
    if s.listeners.iter().any(|l| l.reachable_over_ipv6) {
        f.push("ipv6");
    }
    f
}

fn listener_text(l: &crate::runner::observe::ListenerReport) -> String {
    let addr = if l.family == "ipv6" { format!("[{}]:{}", l.address, l.port) } else { format!("{}:{}", l.address, l.port) };
    match l.v6only {
        Some(v) => format!("{} {addr} v6only={}", l.proto, u8::from(v)),
        None => format!("{} {addr}", l.proto),
    }
}

fn service_cell(s: &ServiceReport) -> ServiceCell {
    ServiceCell {
        service: s.name.clone(),
        started: s.started,
        exit_code: s.exit_code,
        errno: s.errno.clone(),
        cause: s.cause.clone(),
        evidence: s.evidence.clone(),
        listens: s.listeners.iter().map(listener_text).collect(),
        listens_families: families(s),
        peers: None,
    }
}

/// The connects `scenario` checks in `profile`, with their results when the check held.
fn reaches(scenario: &Scenario, profile: Profile, r: &TrialResult) -> Vec<Reach> {
    scenario
        .expectations_for(profile)
        .filter_map(|e| {
            let Check::Connect(ConnectCheck { from, to, family, result, .. }) = &e.check else { return None };
            let desc = e.description();
            let held = r.expectations.iter().find(|x| x.description == desc).map(|x| x.passed)?;
            let to = match to {
                ConnectTarget::Host { host, port } => format!("{host}:{port}"),
                ConnectTarget::Addr { ip, port, .. } => std::net::SocketAddr::new(*ip, *port).to_string(),
            };
            let family = match family {
                Some(ConnectFamily::Ipv4) => "ipv4",
                Some(ConnectFamily::Ipv6) => "ipv6",
                Some(ConnectFamily::LinkLocal) => "link-local",
                None => "any",
            };
            let name = |c: &ConnectResult| c.to_string();
            Some(Reach { from: from.clone(), to, family, result: held.then(|| name(result)), expected: name(result) })
        })
        .collect()
}

/// The cell of one trial; `program` selects the services shown.
pub fn cell(scenario: &Scenario, profile: Profile, program: Option<&str>, r: &TrialResult) -> Cell {
    let mine: Vec<&ServiceReport> = r.services.iter().filter(|s| Some(s.program.as_str()) == program).collect();
    let shown: Vec<&ServiceReport> = if mine.is_empty() { r.services.iter().collect() } else { mine };
    // A diagnosed cause is a failure too: a client stopped while its connect hung exits by a
    // signal, with no exit code to say so.
    // A server no peer reaches over any family they share fails too; one they reach over some
    // of those families only works partly.
    let judged: Vec<Option<(PeerReach, String)>> =
        shown.iter().map(|s| if s.started == Some(true) && s.running_at_end { peer_reach(scenario, profile, s) } else { None }).collect();
    let reach_of = |s: &&ServiceReport| shown.iter().position(|x| std::ptr::eq(*x, *s)).and_then(|i| judged[i].as_ref()).map(|(r, _)| *r);
    let failed =
        |s: &&ServiceReport| s.started == Some(false) || s.exit_code.is_some_and(|c| c != 0) || s.cause.is_some() || reach_of(s) == Some(PeerReach::None);
    let partly = |s: &&ServiceReport| failed(s) || reach_of(s) == Some(PeerReach::Some);
    let program_word = if r.outcome == Outcome::Ignored || shown.iter().all(|s| s.started.is_none()) {
        "not-run"
    } else if shown.iter().filter(|s| s.started.is_some()).all(failed) {
        "fails"
    } else if shown.iter().any(partly) {
        "partly"
    } else {
        "works"
    };
    Cell {
        test: r.outcome,
        reason: r.reason.clone().or_else(|| {
            let failed: Vec<&str> = r.expectations.iter().filter(|e| !e.passed).map(|e| e.description.as_str()).collect();
            (!failed.is_empty()).then(|| format!("did not hold: {}", failed.join("; ")))
        }),
        program: program_word,
        services: shown.iter().zip(&judged).map(|(s, j)| ServiceCell { peers: j.as_ref().map(|(_, w)| w.clone()), ..service_cell(s) }).collect(),
        reachable: reaches(scenario, profile, r),
        first_requests: r.first_requests.clone(),
        staleness: r.staleness.clone(),
        artifacts: r.artifacts.as_ref().map(|p| p.display().to_string()),
        capture: r.capture.as_ref().map(|p| p.display().to_string()),
    }
}

/// Builds the matrix from the trials and their results (same order).
pub fn build(trials: &[PlannedTrial], results: &[TrialResult]) -> Matrix {
    let mut rows: Vec<Row> = Vec::new();
    let mut used: Vec<Profile> = Vec::new();
    // Matched by name: a run that was interrupted has no result for the trials it never started.
    for (t, r) in trials.iter().filter_map(|t| results.iter().find(|r| r.name == t.name).map(|r| (t, r))) {
        if !used.contains(&t.profile) {
            used.push(t.profile);
        }
        let program = t.scenario.program_under_test().map(str::to_string);
        let label = program.clone().or_else(|| r.services.first().map(|s| s.program.clone())).unwrap_or_else(|| "(no program)".into());
        let row = match rows.iter().position(|row| row.program == label) {
            Some(i) => i,
            None => {
                let version = match (&program, t.scenario.program.as_ref().and_then(|p| p.version.as_ref())) {
                    (_, Some(cmd)) => requirements::command_version(cmd),
                    (Some(p), None) => requirements::versions(t.scenario.requires.iter().filter(|r| &r.program == p).cloned().collect::<Vec<_>>().as_slice())
                        .remove(p)
                        .unwrap_or_default(),
                    (None, None) => "unknown".into(),
                };
                rows.push(Row { program: label, version, cases: Vec::new() });
                rows.len() - 1
            }
        };
        let scenario = t.name.rsplit_once('/').map(|(s, _)| s.to_string()).unwrap_or_else(|| t.name.clone());
        let cases = &mut rows[row].cases;
        let case = match cases.iter().position(|c| c.scenario == scenario) {
            Some(i) => i,
            None => {
                let what = t.scenario.description.split(". ").next().unwrap_or("").trim().to_string();
                cases.push(Case { scenario, what, cells: BTreeMap::new() });
                cases.len() - 1
            }
        };
        cases[case].cells.insert(t.profile.name().to_string(), cell(&t.scenario, t.profile, program.as_deref(), r));
    }
    let profiles = Profile::ALL.iter().filter(|p| used.contains(p)).map(|p| p.name().to_string()).collect();
    let not_started = trials.iter().filter(|t| !results.iter().any(|r| r.name == t.name)).map(|t| t.name.clone()).collect();
    Matrix { schema: SCHEMA, profiles, rows, not_started }
}

/// Whether the test held, in words that cannot be read as "the program works".
fn test_words(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "✅ test held",
        Outcome::Failed => "❌ test failed",
        Outcome::Ignored => "➖ not run",
        Outcome::Interrupted => "⏹ interrupted: not decided",
    }
}

/// The lines of a cell: test, then what each service did, reachability and first requests.
pub fn cell_lines(c: &Cell) -> Vec<String> {
    let mut lines = vec![format!("{}; program {}", test_words(c.test), c.program)];
    if c.test == Outcome::Ignored {
        if let Some(r) = &c.reason {
            lines.push(r.clone());
        }
        return lines;
    }
    for s in &c.services {
        let mut l = match (s.started, s.exit_code) {
            (None, _) => format!("{}: not started", s.service),
            (Some(false), _) => format!("{}: fails to start", s.service),
            (Some(true), Some(0)) => format!("{}: ran to completion (exit 0)", s.service),
            (Some(true), Some(code)) => format!("{}: started, exited {code}", s.service),
            (Some(true), _) => format!("{}: starts", s.service),
        };
        if let Some(e) = &s.errno {
            let _ = write!(l, ", {e}");
        }
        if let Some(cause) = &s.cause {
            let _ = write!(l, " ({cause})");
        }
        if !s.listens.is_empty() {
            let fams = if s.listens_families.is_empty() { String::new() } else { format!(" (takes {})", s.listens_families.join("+")) };
            let _ = write!(l, "; listens {}{fams}", s.listens.join(", "));
        }
        if let Some(p) = &s.peers {
            let _ = write!(l, "; {p}");
        }
        lines.push(l);
    }
    for r in &c.reachable {
        lines.push(match &r.result {
            Some(res) if res == "ok" => format!("{} -> {}{}: reachable", r.from, r.to, over(r.family)),
            Some(res) => format!("{} -> {}{}: {res}", r.from, r.to, over(r.family)),
            None => format!("{} -> {}{}: not {} as expected", r.from, r.to, over(r.family), r.expected),
        });
    }
    for f in &c.first_requests {
        let took = match f.after_dns_query_s {
            Some(q) => format!("{q:.3} s after its DNS query"),
            None => format!("{:.3} s after start", f.after_start_s),
        };
        lines.push(format!("{} -> {}: first request {took} over {}", f.client, f.target, if f.family == "ipv4" { "IPv4" } else { "IPv6" }));
    }
    for st in &c.staleness {
        let who = st.service.clone().unwrap_or_else(|| format!("host {}", st.client));
        let old = match st.last_old_s {
            Some(s) => format!("on {} {s:.2} s after {}", st.old, st.step),
            None => format!("off {} at {}", st.old, st.step),
        };
        let new = st.first_new_s.map_or_else(|| format!("never on {}", st.new), |s| format!("on {} after {s:.2} s", st.new));
        let held = if st.held_by.is_empty() { String::new() } else { format!(" (held by {})", st.held_by.join(" and ")) };
        lines.push(format!("{who}: {old}, {new}; cause {}{held}", st.cause));
    }
    if matches!(c.test, Outcome::Failed | Outcome::Interrupted) {
        if let Some(r) = &c.reason {
            lines.push(format!("why: {}", r.lines().next().unwrap_or("")));
        }
    }
    lines
}

fn over(family: &str) -> String {
    if family == "any" {
        String::new()
    } else {
        format!(" over {family}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders the matrix.
pub fn render(m: &Matrix, format: Format) -> String {
    match format {
        Format::Json => {
            let mut v = serde_json::to_value(m).unwrap_or_default();
            if m.interrupted() {
                v["interrupted"] = true.into();
            }
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
        }
        Format::Markdown => {
            let mut s = m.interrupted_note().map(|n| format!("**{n}.**\n\n")).unwrap_or_default();
            s += &format!("| program | case | {} |\n|---|---|{}\n", m.profiles.join(" | "), "---|".repeat(m.profiles.len()));
            for r in &m.rows {
                for (i, case) in r.cases.iter().enumerate() {
                    let program = if i == 0 { format!("**{}** {}", r.program, r.version) } else { String::new() };
                    let _ = write!(s, "| {program} | **{}**<br>{} |", case.scenario, md(&case.what));
                    for p in &m.profiles {
                        match case.cells.get(p) {
                            Some(c) => {
                                let mut link = c.artifacts.as_ref().map(|a| format!("<br>[artifacts](file://{})", a.replace(' ', "%20"))).unwrap_or_default();
                                if let Some(p) = &c.capture {
                                    link += &format!("<br>[capture](file://{})", p.replace(' ', "%20"));
                                }
                                let _ = write!(s, " {}{link} |", cell_lines(c).iter().map(|l| md(l)).collect::<Vec<_>>().join("<br>"));
                            }
                            None => s.push_str(" |"),
                        }
                    }
                    s.push('\n');
                }
            }
            s
        }
        Format::Html => {
            let mut s = String::from(
                "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>nslab compatibility matrix</title><style>\n\
                 body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}\n\
                 td,th{border:1px solid #ccc;padding:.5em;vertical-align:top;max-width:28em}th{background:#f4f4f4}\n\
                 .works{background:#eaf7ea}.fails{background:#fbeaea}.partly{background:#fdf6e0}.not-run{background:#f4f4f4;color:#777}\n\
                 .test-failed{outline:3px solid #c00}.what{color:#555;font-size:.9em}.line{margin:.15em 0}</style></head><body>\n\
                 <h1>Compatibility matrix</h1>\n<p>Each cell: whether the scenario's test held, then what the program did \
                 (background: green works, yellow partly, red fails). A red outline marks a test that did not hold.</p>\n\
                 <table><tr><th>program</th><th>case</th>",
            );
            if let Some(n) = m.interrupted_note() {
                s = s.replacen("<table>", &format!("<p><b>{}.</b></p>\n<table>", esc(&n)), 1);
            }
            for p in &m.profiles {
                let _ = write!(s, "<th>{}</th>", esc(p));
            }
            s.push_str("</tr>\n");
            for r in &m.rows {
                for (i, case) in r.cases.iter().enumerate() {
                    s.push_str("<tr>");
                    if i == 0 {
                        let _ = write!(s, "<td rowspan=\"{}\"><b>{}</b><br>{}</td>", r.cases.len(), esc(&r.program), esc(&r.version));
                    }
                    let _ = write!(s, "<td><b>{}</b><div class=\"what\">{}</div></td>", esc(&case.scenario), esc(&case.what));
                    for p in &m.profiles {
                        match case.cells.get(p) {
                            Some(c) => {
                                let class = if c.test == Outcome::Failed { format!("{} test-failed", c.program) } else { c.program.to_string() };
                                let lines: String = cell_lines(c).iter().map(|l| format!("<div class=\"line\">{}</div>", esc(l))).collect();
                                let mut link = c.artifacts.as_ref().map(|a| format!("<a href=\"file://{}\">artifacts</a>", esc(a))).unwrap_or_default();
                                if let Some(p) = &c.capture {
                                    link += &format!(" <a href=\"file://{}\">capture</a>", esc(p));
                                }
                                let _ = write!(s, "<td class=\"{class}\">{lines}{link}</td>");
                            }
                            None => s.push_str("<td></td>"),
                        }
                    }
                    s.push_str("</tr>\n");
                }
            }
            s.push_str("</table>\n</body></html>\n");
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::runner::observe::ListenerReport;
    use crate::runner::report::ExpectationResult;

    fn scenario(program: &str, extra: &str) -> Arc<Scenario> {
        let text = format!(
            "description = \"A case of {program}. More.\"\nprogram = \"{program}\"\nprofiles = [\"ipv4-only\", \"dual-stack\"]\n[requires]\n{program} = \"*\"\ncurl = \"*\"\n[hosts.server]\n[hosts.client]\n[services.web]\nhost = \"server\"\ncommand = [\"{program}\", \"-x\"]\n{extra}"
        );
        Arc::new(crate::scenario::parse_str(Path::new("bind/x.toml"), &text).expect("valid scenario"))
    }

    fn result(name: &str, outcome: Outcome, services: Vec<ServiceReport>, expectations: Vec<ExpectationResult>) -> TrialResult {
        let mut r = TrialResult::early(name.into(), Path::new("bind/x.toml"), "dual-stack", outcome, String::new(), std::time::Duration::ZERO);
        r.reason = None;
        r.services = services;
        r.expectations = expectations;
        r.artifacts = Some(format!("/tmp/a/{name}").into());
        r
    }

    fn web(started: bool, errno: Option<&str>, cause: Option<&str>, listeners: Vec<ListenerReport>) -> ServiceReport {
        ServiceReport {
            name: "web".into(),
            host: "server".into(),
            program: "nginx".into(),
            expected_to_start: started,
            started: Some(started),
            exit_code: (!started).then_some(1),
            errno: errno.map(Into::into),
            cause: cause.map(Into::into),
            evidence: errno.map(|_| "\"bind() to [::1]:80 failed (99: Cannot assign requested address)\"".into()),
            running_at_end: started,
            listeners,
            partial: None,
        }
    }

    fn dual() -> ListenerReport {
        ListenerReport {
            proto: "tcp",
            family: "ipv6",
            address: "::".into(),
            port: 80,
            v6only: Some(false),
            reachable_over_ipv4: true,
            reachable_over_ipv6: true,
        }
    }

    #[test]
    fn a_cell_says_a_socket_takes_only_the_families_the_hosts_profile_gives() {
        let l = nslab::host::listeners::Listener { protocol: nslab::host::listeners::Protocol::Tcp, local: "[::]:80".parse().unwrap(), v6only: true, inode: 1 };
        let mut svc = web(true, None, None, vec![ListenerReport::on_host(&l, Profile::Ipv4Only)]);
        let cell = service_cell(&svc);
        assert_eq!(cell.listens, vec!["tcp [::]:80 v6only=1"]);
        assert!(cell.listens_families.is_empty(), "IPv6 is off in ipv4-only: {:?}", cell.listens_families);
        svc.listeners = vec![ListenerReport::on_host(&l, Profile::DualStack)];
        assert_eq!(service_cell(&svc).listens_families, vec!["ipv6"]);
    }

    #[test]
    fn a_server_is_judged_against_the_families_its_peers_have() {
        // gunicorn's default with PORT (bind/gunicorn-default-bind): 0.0.0.0 only.
        let a = scenario("nginx", "");
        let v4 =
            nslab::host::listeners::Listener { protocol: nslab::host::listeners::Protocol::Tcp, local: "0.0.0.0:80".parse().unwrap(), v6only: false, inode: 1 };
        let at = |p: Profile, l: &nslab::host::listeners::Listener| {
            let r = result("bind/x/p", Outcome::Passed, vec![web(true, None, None, vec![ListenerReport::on_host(l, p)])], vec![]);
            let c = cell(&a, p, Some("nginx"), &r);
            (c.program, cell_lines(&c)[1].clone())
        };
        assert_eq!(at(Profile::Ipv4Only, &v4), ("works", "web: starts; listens tcp 0.0.0.0:80 (takes ipv4); peers reach it over IPv4".to_string()));
        assert_eq!(
            at(Profile::DualStack, &v4),
            ("partly", "web: starts; listens tcp 0.0.0.0:80 (takes ipv4); peers reach it over IPv4 only, not over IPv6, which its peers have".to_string())
        );
        assert_eq!(
            at(Profile::Ipv6Only, &v4),
            ("fails", "web: starts; listens tcp 0.0.0.0:80; unreachable from its peers over IPv6, the only family its peers have here".to_string())
        );
        // A loopback socket takes no peer.
        let lo = nslab::host::listeners::Listener { local: "[::1]:80".parse().unwrap(), v6only: true, ..v4.clone() };
        assert_eq!(at(Profile::DualStack, &lo).0, "fails");
        // broken-ipv6: IPv6 is not the program's to serve there; a dual socket works over IPv4.
        let dual = nslab::host::listeners::Listener { local: "[::]:80".parse().unwrap(), v6only: false, ..v4.clone() };
        assert_eq!(at(Profile::BrokenIpv6, &dual), ("works", "web: starts; listens tcp [::]:80 v6only=0 (takes ipv4); peers reach it over IPv4".to_string()));
        // Alone on the lab, a server has no peer to judge it by.
        let alone = Arc::new(
            crate::scenario::parse_str(
                Path::new("bind/y.toml"),
                "description = \"d\"\n[hosts.server]\n[services.web]\nhost = \"server\"\ncommand = [\"nginx\"]\n",
            )
            .unwrap(),
        );
        let r = result("bind/y/p", Outcome::Passed, vec![web(true, None, None, vec![ListenerReport::on_host(&v4, Profile::Ipv6Only)])], vec![]);
        assert_eq!(cell(&alone, Profile::Ipv6Only, Some("nginx"), &r).program, "works");
    }

    #[test]
    fn an_interrupted_run_shows_what_ran_and_names_what_never_started() {
        let a = scenario("nginx", "");
        let trials = vec![
            PlannedTrial { name: "bind/nginx-a/ipv4-only".into(), scenario: a.clone(), profile: Profile::Ipv4Only },
            PlannedTrial { name: "bind/nginx-a/dual-stack".into(), scenario: a, profile: Profile::DualStack },
        ];
        // Only the second ran (longest first), and was stopped.
        let mut stopped = result("bind/nginx-a/dual-stack", Outcome::Interrupted, vec![web(true, None, None, vec![])], vec![]);
        stopped.reason = Some("interrupted (the run was cancelled) while the scenario ran".into());
        let m = build(&trials, &[stopped]);
        assert!(m.interrupted());
        assert_eq!(m.not_started, vec!["bind/nginx-a/ipv4-only"]);
        let cells = &m.rows[0].cases[0].cells;
        assert_eq!(cells.keys().collect::<Vec<_>>(), vec!["dual-stack"], "the stopped trial's cell is the one that ran");
        assert_eq!(
            cell_lines(&cells["dual-stack"]),
            vec!["⏹ interrupted: not decided; program works", "web: starts", "why: interrupted (the run was cancelled) while the scenario ran"]
        );
        let json: serde_json::Value = serde_json::from_str(&render(&m, Format::Json)).unwrap();
        assert_eq!((json["interrupted"].clone(), json["not_started"].clone()), (serde_json::json!(true), serde_json::json!(["bind/nginx-a/ipv4-only"])));
        let md = render(&m, Format::Markdown);
        assert!(
            md.starts_with("**Interrupted: cells marked interrupted were stopped before they ended (not decided); never started: bind/nginx-a/ipv4-only.**\n"),
            "{md}"
        );
        assert!(render(&m, Format::Html).contains("<p><b>Interrupted: cells marked interrupted"), "html says it too");
        // A complete run says nothing of the kind.
        let done = result("bind/nginx-a/dual-stack", Outcome::Passed, vec![], vec![]);
        let m = build(&trials[1..], &[done]);
        assert!(!m.interrupted() && serde_json::from_str::<serde_json::Value>(&render(&m, Format::Json)).unwrap().get("interrupted").is_none());
    }

    #[test]
    fn rows_are_programs_with_cases_and_cells_say_what_the_program_did() {
        let a = scenario("nginx", "");
        let b = scenario("nginx", "[[expect]]\nkind = \"connect\"\nfrom = \"client\"\nto = \"server:80\"\nfamily = \"ipv4\"\nresult = \"ok\"\n");
        let held = ExpectationResult { description: b.expectations[0].description(), passed: true, decided: true, observed: String::new() };
        let trials = vec![
            PlannedTrial { name: "bind/nginx-a/ipv4-only".into(), scenario: a.clone(), profile: Profile::Ipv4Only },
            PlannedTrial { name: "bind/nginx-a/dual-stack".into(), scenario: a, profile: Profile::DualStack },
            PlannedTrial { name: "bind/nginx-b/dual-stack".into(), scenario: b, profile: Profile::DualStack },
        ];
        let results = vec![
            // The scenario expected the failure: the test held while the program failed.
            result("bind/nginx-a/ipv4-only", Outcome::Passed, vec![web(false, Some("EADDRNOTAVAIL"), Some("address-not-on-host"), vec![])], vec![]),
            result("bind/nginx-a/dual-stack", Outcome::Passed, vec![web(true, None, None, vec![dual()])], vec![]),
            result("bind/nginx-b/dual-stack", Outcome::Failed, vec![web(true, None, None, vec![dual()])], vec![held]),
        ];
        let m = build(&trials, &results);
        assert_eq!(m.profiles, vec!["ipv4-only", "dual-stack"]);
        assert_eq!(m.rows.len(), 1, "one row per program");
        let row = &m.rows[0];
        assert_eq!(row.program, "nginx");
        assert_eq!(row.cases.iter().map(|c| c.scenario.as_str()).collect::<Vec<_>>(), vec!["bind/nginx-a", "bind/nginx-b"]);
        assert_eq!(row.cases[0].what, "A case of nginx");

        let v4 = &row.cases[0].cells["ipv4-only"];
        assert_eq!((v4.test, v4.program), (Outcome::Passed, "fails"));
        assert_eq!(v4.services[0].errno.as_deref(), Some("EADDRNOTAVAIL"));
        assert_eq!(v4.services[0].cause.as_deref(), Some("address-not-on-host"));
        assert_eq!(cell_lines(v4), vec!["✅ test held; program fails", "web: fails to start, EADDRNOTAVAIL (address-not-on-host)"]);

        let ds = &row.cases[0].cells["dual-stack"];
        assert_eq!(ds.program, "works");
        assert_eq!(ds.services[0].listens, vec!["tcp [::]:80 v6only=0"]);
        assert_eq!(ds.services[0].listens_families, vec!["ipv4", "ipv6"]);

        let b = &row.cases[1].cells["dual-stack"];
        assert_eq!((b.test, b.program), (Outcome::Failed, "works"));
        assert_eq!(
            b.reachable,
            vec![Reach { from: "client".into(), to: "server:80".into(), family: "ipv4", result: Some("ok".into()), expected: "ok".into() }]
        );

        let json: serde_json::Value = serde_json::from_str(&render(&m, Format::Json)).unwrap();
        assert_eq!(json["schema"], 2);
        assert_eq!(json["rows"][0]["cases"][0]["cells"]["ipv4-only"]["services"][0]["errno"], "EADDRNOTAVAIL");
        assert_eq!(json["rows"][0]["cases"][0]["cells"]["ipv4-only"]["test"], "passed");
        assert_eq!(json["rows"][0]["cases"][0]["cells"]["ipv4-only"]["artifacts"], "/tmp/a/bind/nginx-a/ipv4-only");

        let md = render(&m, Format::Markdown);
        assert!(md.starts_with("| program | case | ipv4-only | dual-stack |\n"), "{md}");
        assert!(md.contains("| **nginx** "), "{md}");
        assert!(md.contains("❌ test failed; program works"), "{md}");
        assert!(md.contains("client -> server:80 over ipv4: reachable"), "{md}");
        assert!(md.contains("[artifacts](file:///tmp/a/bind/nginx-a/ipv4-only)"), "{md}");

        let html = render(&m, Format::Html);
        assert!(html.contains("<td rowspan=\"2\"><b>nginx</b>"), "{html}");
        assert!(html.contains("class=\"works test-failed\""), "{html}");
        assert!(!html.contains("<script") && !html.contains("<link"), "self-contained");
    }

    #[test]
    fn time_to_connect_is_shown_with_its_family() {
        let c = Cell {
            test: Outcome::Passed,
            reason: None,
            program: "works",
            services: vec![],
            reachable: vec![],
            first_requests: vec![FirstRequest {
                client: "curl".into(),
                target: "web".into(),
                family: "ipv4",
                after_start_s: 0.25,
                after_dns_query_s: Some(0.2041),
                attributed: crate::runner::attribution::Attribution::Service,
            }],
            staleness: Vec::new(),
            artifacts: None,
            capture: None,
        };
        assert_eq!(cell_lines(&c)[1], "curl -> web: first request 0.204 s after its DNS query over IPv4");
    }

    #[test]
    fn staleness_is_shown_per_client_service() {
        let row = |service: Option<&str>, last_old: Option<f64>, first_new: Option<f64>, cause: &str| crate::runner::report::StaleRow {
            step: "swap".into(),
            client: "client".into(),
            service: service.map(str::to_string),
            held_by: Vec::new(),
            layers: Vec::new(),
            held: Vec::new(),
            old: "blue".into(),
            new: "green".into(),
            last_old_s: last_old,
            first_new_s: first_new,
            ttl_s: Some(2),
            pinned_requests: 0,
            new_connections_to_old: 0,
            dns_queries_after: 0,
            dns_queries_before_new: 0,
            answers_after: Vec::new(),
            cause: cause.into(),
            summary: String::new(),
        };
        let c = Cell {
            test: Outcome::Passed,
            reason: None,
            program: "works",
            services: vec![],
            reachable: vec![],
            first_requests: vec![],
            staleness: vec![
                row(Some("curl-loop"), None, Some(0.15), "none"),
                crate::runner::report::StaleRow { held_by: vec!["pinned-connection".into()], ..row(Some("keepalive"), Some(8.91), None, "connection-pinning") },
                row(None, Some(1.5), Some(0.5), "resolver-cache"),
            ],
            artifacts: None,
            capture: None,
        };
        assert_eq!(
            cell_lines(&c)[1..],
            [
                "curl-loop: off blue at swap, on green after 0.15 s; cause none",
                "keepalive: on blue 8.91 s after swap, never on green; cause connection-pinning (held by pinned-connection)",
                "host client: on blue 1.50 s after swap, on green after 0.50 s; cause resolver-cache",
            ]
        );
    }

    #[test]
    fn a_program_off_path_gets_its_version_from_its_own_command() {
        let s = crate::scenario::parse_str(
            Path::new("x.toml"),
            "description = \"d\"\nprogram = { name = \"postgres\", version = [\"sh\", \"-c\", \"echo 'postgres (PostgreSQL) 15.18'\"] }\n[hosts.a]\n",
        )
        .unwrap();
        assert_eq!(s.program_under_test(), Some("postgres"));
        let cmd = s.program.as_ref().and_then(|p| p.version.clone()).unwrap();
        assert_eq!(requirements::command_version(&cmd), "15.18.0");
    }

    #[test]
    fn a_program_not_named_is_the_first_requirement() {
        let s = crate::scenario::parse_str(Path::new("x.toml"), "description = \"d\"\n[requires]\nredis-server = \"*\"\ncurl = \"*\"\n[hosts.a]\n").unwrap();
        assert_eq!(s.program_under_test(), Some("redis-server"));
    }
}
