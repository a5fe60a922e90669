//! What a trial leaves in its artifact directory: the targets' request logs, the environment
//! facts, the resolved scenario, and the two files that outlive a passing trial (the timeline
//! picture and results.json), each written once with its final content.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::state::Swap;
use crate::runner::client::{self, Client};
use crate::runner::clock::LabClock;
use crate::runner::context::Facts;
use crate::runner::observe::{FirstRequest, ServiceReport};
use crate::runner::report::{ExpectationResult, HeldRow, StaleRow};
use crate::runner::requirements;
use crate::runner::stale::{self, Mark, MarkKind};
use crate::runner::target::{RequestRecord, Target};
use crate::scenario::Scenario;
use nslab::addr::profile::Profile;
use nslab::lab::build::Lab;

/// For each CNAME swap whose old and new targets are targets of the trial: every client that
/// asked either of them, how long it stayed and why; a host's client services each on their own
/// row when the targets attributed its requests (see [`crate::runner::client::split`]).
pub(super) async fn staleness_rows(lab: &Lab, clock: &LabClock, scenario: &Scenario, targets: &BTreeMap<String, Target>, swaps: &[Swap]) -> Vec<StaleRow> {
    let mut rows = Vec::new();
    if swaps.is_empty() {
        return rows;
    }
    let traffic = match lab.dns_traffic() {
        Some(tap) => {
            tap.settle().await;
            clock.traffic(tap.log().entries())
        }
        None => Vec::new(),
    };
    let queries = lab.dns().map(|d| clock.queries(d.log()));
    let resolvers = scenario.resolver_hosts();
    let chain = stale::Chain { traffic: &traffic, resolvers: &resolvers, scale: clock.scale() };
    for Swap { step, at, old, new, .. } in swaps {
        let (Some(o), Some(n)) = (targets.get(old), targets.get(new)) else { continue };
        for h in lab.hosts() {
            let host = Client::host(h);
            if host.requests_to(o).is_empty() && host.requests_to(n).is_empty() {
                continue;
            }
            for c in client::split(&host, &[o, n]) {
                let st = stale::analyse(&c, *at, o, n, queries.as_deref(), chain);
                rows.push(StaleRow {
                    step: step.clone(),
                    client: h.name().to_string(),
                    service: c.service.clone(),
                    held_by: st.layers().iter().map(stale::Layer::name).collect(),
                    layers: st.layer_evidence(),
                    held: st
                        .held
                        .iter()
                        .map(|h| HeldRow { layer: h.layer.name(), from_s: h.from.as_secs_f64(), to_s: h.to.as_secs_f64(), evidence: h.evidence.clone() })
                        .collect(),
                    old: old.clone(),
                    new: new.clone(),
                    last_old_s: st.last_old.map(|d| d.as_secs_f64()),
                    first_new_s: st.first_new.map(|d| d.as_secs_f64()),
                    ttl_s: st.ttl.map(|d| d.as_secs()),
                    pinned_requests: st.pinned_requests,
                    new_connections_to_old: st.new_connections_to_old,
                    dns_queries_after: st.dns_queries_after,
                    dns_queries_before_new: st.dns_queries_before_new,
                    answers_after: st.answers_after.clone(),
                    cause: st.cause.name().to_string(),
                    summary: st.to_string(),
                });
            }
        }
    }
    rows
}

/// Writes each target's request log into the artifacts and returns the timeline picture of
/// their requests and the DNS changes (`None` without targets, or when the targets' folder
/// cannot be made).
pub(super) fn write_targets(lab: &Lab, clock: &LabClock, targets: &BTreeMap<String, Target>, dns_steps: &[(String, Duration, MarkKind)]) -> Option<String> {
    if targets.is_empty() {
        return None;
    }
    let dir = lab.artifacts().join("targets");
    if nslab::os::fsafe::artifact_dir(&dir).is_err() {
        return None;
    }
    for (name, t) in targets {
        let _ = t.write_log(&dir.join(format!("{name}.requests.jsonl")));
    }
    // The TTL shaded after a change: what the last answer before it carried.
    let log = lab.dns().map(|d| clock.queries(d.log())).unwrap_or_default();
    let marks: Vec<Mark> = dns_steps
        .iter()
        .map(|(name, at, kind)| Mark {
            name: name.clone(),
            at: *at,
            ttl: log.iter().rev().find(|e| e.at <= *at && !e.answers.is_empty()).and_then(|e| stale::min_ttl(&e.answers)),
            kind: *kind,
        })
        .collect();
    let mut marks = marks;
    marks.extend(capture_marks(lab, clock));
    let lanes: Vec<(String, Vec<RequestRecord>)> = targets.values().map(|t| (t.def.name.clone(), t.requests())).collect();
    Some(stale::document(&lanes, &marks, clock.now()).to_string())
}

/// The packet capture's marks: each link's first DNS query and first TCP connection attempt its
/// host sent (links whose host sent none have no mark), in lab
/// time (the kernel's stamp, moved by the two clocks' difference now).
fn capture_marks(lab: &Lab, clock: &LabClock) -> Vec<Mark> {
    let Some(c) = lab.link_capture() else { return Vec::new() };
    let (now_lab, now_real) = (lab.elapsed(), std::time::SystemTime::now());
    let at = |s: std::time::SystemTime| match clock.warp() {
        Some(w) => w.program_since_origin(s),
        None => now_lab.saturating_sub(now_real.duration_since(s).unwrap_or(Duration::ZERO)),
    };
    let mut marks = Vec::new();
    for (link, syn, dns) in c.firsts() {
        if let Some(s) = dns {
            marks.push(Mark { name: format!("{link}: 1st DNS query"), at: at(s), ttl: None, kind: MarkKind::FirstDnsQuery });
        }
        if let Some(s) = syn {
            marks.push(Mark { name: format!("{link}: 1st SYN"), at: at(s), ttl: None, kind: MarkKind::FirstSyn });
        }
    }
    marks.sort_by_key(|m| m.at);
    marks
}

/// Writes the environment facts and the resolved scenario into the artifacts.
pub(super) fn write_facts(lab: &Lab, s: &Scenario, profile: Profile, name: &str, facts: &Option<Facts>) {
    let uname = nix::sys::utsname::uname().ok();
    let env = serde_json::json!({
        "trial": name,
        "profile": profile.name(),
        // Where the scenario was, whatever the directory `nslab run` ran in: a bundle takes it.
        "scenario_file": std::fs::canonicalize(&s.path).unwrap_or_else(|_| s.path.clone()),
        "kernel": uname.as_ref().map(|u| u.release().to_string_lossy().into_owned()),
        "machine": uname.as_ref().map(|u| u.machine().to_string_lossy().into_owned()),
        "nslab": env!("CARGO_PKG_VERSION"),
        "programs": requirements::versions(&s.requires),
    });
    let dir = lab.artifacts();
    let _ = nslab::os::fsafe::write_artifact(&dir.join("environment.json"), serde_json::to_string_pretty(&env).unwrap_or_default().as_bytes(), 0o600);
    if let Err(e) = crate::runner::resolved::Resolved::of(lab, s, profile, facts.as_ref()).write(dir) {
        tracing::warn!(error = %e, "cannot write scenario.resolved.json");
    }
}

/// Writes `aaaa.jsonl`: each AAAA set the lab DNS published for a host's SLAAC addresses
/// (lab time in microseconds, host, addresses; empty: deleted).
pub(super) fn write_aaaa_log(lab: &Lab, log: &[(Duration, String, Vec<std::net::Ipv6Addr>)]) {
    if log.is_empty() {
        return;
    }
    let text: String =
        log.iter().map(|(at, host, addrs)| serde_json::json!({ "at_us": at.as_micros() as u64, "host": host, "aaaa": addrs }).to_string() + "\n").collect();
    let _ = nslab::os::fsafe::write_artifact(&lab.artifacts().join("aaaa.jsonl"), text.as_bytes(), 0o600);
}

/// Writes the timeline picture into `dir`, the lab's artifact directory; returns its path
/// when it was written.
pub(super) fn write_picture(dir: &Path, svg: Option<String>) -> Option<PathBuf> {
    let path = dir.join("timeline.svg");
    match nslab::os::fsafe::write_artifact(&path, svg?.as_bytes(), 0o600) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(error = %e, "cannot write timeline.svg");
            None
        }
    }
}

/// The files that outlive a passing trial's artifacts: the timeline picture (when the trial
/// has targets) and results.json. Made before the teardown; written once, into the kept
/// directory before the teardown ([`Survivors::write_kept`]) or, for a trial whose artifacts
/// go, into a new directory at the same place after it ([`Survivors::write_after_removal`]).
pub(super) struct Survivors {
    svg: Option<String>,
    results: serde_json::Value,
}

impl Survivors {
    pub(super) fn new(
        svg: Option<String>,
        results: &[ExpectationResult],
        staleness: &[StaleRow],
        reports: &[ServiceReport],
        first_requests: &[FirstRequest],
    ) -> Self {
        let results = serde_json::json!({
            "expectations": results,
            "staleness": staleness,
            "services": reports,
            "first_requests": first_requests,
        });
        Survivors { svg, results }
    }

    /// Records the scale of a scaled trial (`time_scale`; its figures are then program time) and
    /// the windows its expectations measured.
    pub(super) fn with_scale(mut self, scale: Option<f64>, windows: &[crate::runner::report::MeasuredWindow]) -> Self {
        if let Some(k) = scale {
            self.results["time_scale"] = serde_json::json!(k);
            self.results["figures"] = serde_json::json!("program time");
        }
        if !windows.is_empty() {
            self.results["windows"] = serde_json::to_value(windows).unwrap_or_default();
        }
        self
    }

    /// Records how the trial ended (`outcome`, and `reason` when it did not pass), which a repro
    /// bundle carries and `nslab replay` compares with.
    pub(super) fn with_outcome(mut self, outcome: crate::runner::report::Outcome, reason: Option<&str>) -> Self {
        self.results["outcome"] = serde_json::to_value(outcome).unwrap_or_default();
        if let Some(r) = reason {
            self.results["reason"] = r.into();
        }
        self
    }

    /// Writes them into `dir`, the artifact directory the lab keeps; returns the picture's path
    /// when it was written.
    pub(super) fn write_kept(mut self, dir: &Path) -> Option<PathBuf> {
        let picture = write_picture(dir, self.svg.take());
        if picture.is_some() {
            self.results["timeline"] = "timeline.svg".into();
        }
        // The lab writes it at teardown, into this directory.
        self.results["dns_traffic"] = "dns-traffic.jsonl".into();
        self.results["capture"] = nslab::lab::capture::CAPTURE_FILE.into();
        let _ = nslab::os::fsafe::write_artifact(&dir.join("results.json"), self.results_text().as_bytes(), 0o600);
        picture.filter(|p| p.exists())
    }

    /// After the teardown of a lab whose artifacts were not to be kept: the picture and
    /// results.json in a new directory at `dir` (nothing without a picture); returns the
    /// picture's path when it is there.
    pub(super) fn write_after_removal(mut self, dir: &Path) -> Option<PathBuf> {
        let svg = self.svg.take()?;
        let path = dir.join("timeline.svg");
        self.results["timeline"] = "timeline.svg".into();
        let results = self.results_text();
        let kept = nslab::os::fsafe::artifact_dir(dir)
            .and_then(|d| d.write_file("timeline.svg", svg.as_bytes(), 0o600).map(|_| d))
            .and_then(|d| d.write_file("results.json", results.as_bytes(), 0o600).map(|_| ()));
        if let Err(e) = kept {
            tracing::warn!(error = %e, path = %path.display(), "cannot keep timeline.svg");
        }
        Some(path).filter(|p| p.exists())
    }

    fn results_text(&self) -> String {
        serde_json::to_string_pretty(&self.results).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::Survivors;

    fn survivors(svg: Option<&str>) -> Survivors {
        Survivors::new(svg.map(str::to_string), &[], &[], &[], &[])
    }

    fn results(dir: &std::path::Path) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
    }

    #[test]
    fn a_passing_trials_picture_and_results_are_written_after_its_directory_went() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("lab1");
        assert_eq!(survivors(Some("<svg/>")).write_after_removal(&dir), Some(dir.join("timeline.svg")));
        assert_eq!(std::fs::read_to_string(dir.join("timeline.svg")).unwrap(), "<svg/>");
        assert_eq!(results(&dir)["timeline"], "timeline.svg");
        assert_eq!(results(&dir)["expectations"], serde_json::json!([]));
    }

    #[test]
    fn without_a_picture_nothing_outlives_a_passing_trial() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("lab1");
        assert_eq!(survivors(None).write_after_removal(&dir), None);
        assert!(!dir.exists());
    }

    #[test]
    fn a_kept_directory_gets_results_naming_the_picture_only_when_there_is_one() {
        let root = tempfile::tempdir().unwrap();
        let (with, without) = (root.path().join("with"), root.path().join("without"));
        assert_eq!(survivors(Some("<svg/>")).write_kept(&with), Some(with.join("timeline.svg")));
        assert_eq!(results(&with)["timeline"], "timeline.svg");
        assert_eq!(survivors(None).write_kept(&without), None);
        assert!(!without.join("timeline.svg").exists());
        assert_eq!(results(&without).get("timeline"), None);
    }
}
