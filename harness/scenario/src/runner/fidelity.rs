//! The fidelity check: a scaled trial run twice, at scale 1 and at its scale, and every verdict
//! and every measured window (program time) compared, to prove the speed-up did not change
//! what the trial shows.
//!
//! Compared: the outcome; each expectation's verdict (passed, decided); each window an
//! expectation measured ([`crate::runner::report::MeasuredWindow`]); each stale row's last
//! request to the old target, first to the new one and its cause. Not compared: the report's
//! first requests (`first_requests`), counted from a client's start or its first DNS query,
//! which may come before the set-up ends (another service's start-up, a JVM compiling): the
//! machine's CPU time, k times longer in program time (stale-dns/jvm-negative-cache: curl's first
//! query to its first request 1.11 s at 1x, 18.67 s at 10x, across the JVM's start); an
//! expectation that counts from a program's own DNS query (`first-request`, `from = "dns-query"`)
//! is compared through its window. Nor counts of requests (a program polling every 250 ms makes
//! as many requests, give or take one at each end of a window).
//!
//! A window agrees when the two figures differ by at most [`tolerance`]: `k x 100 ms + 5 %` of
//! the figure at scale 1. The first part is the machine: a real delay the harness or the
//! program cannot avoid (a process scheduled late, a pipe read, the 20 ms polls of the checks)
//! is up to ~100 ms on a loaded 2-core machine, and k times that in program time. The second is
//! the program: run-to-run spread at scale 1 (jvm-default's follow time 26.64-26.71 s over
//! seven runs; a timer with whole-second resolution spreads more).

use std::fmt::Write as _;

use futures::StreamExt;

use crate::runner::admission::{weight, Admission, Gate};
use crate::runner::planned::PlannedTrial;
use crate::runner::report::{Outcome, TrialResult};
use crate::runner::trial::{run_trial, RunOptions};
use crate::scenario::Scenario;
use nslab::addr::profile::Profile;

/// The longest 1x run a fidelity check makes: a scenario whose `timeout` (lab time, so its 1x
/// run's bound) is longer (an hour of program time) runs at its scale only ([`too_long_at_1x`]).
pub const MAX_1X: std::time::Duration = std::time::Duration::from_secs(300);

/// Why `scenario` gets no fidelity check, when its 1x run could take longer than [`MAX_1X`].
pub fn too_long_at_1x(scenario: &Scenario) -> Option<String> {
    (scenario.timeout > MAX_1X).then(|| {
        format!(
            "no fidelity check: at 1x it could take its timeout of {}, more than {} (it runs at its scale only)",
            crate::scenario::format_duration(scenario.timeout),
            crate::scenario::format_duration(MAX_1X)
        )
    })
}

/// A real delay of the machine the tolerance allows, seconds (see the module's docs).
pub const MACHINE_DELAY_S: f64 = 0.1;

/// The share of a window at scale 1 the tolerance allows (see the module's docs).
pub const SPREAD: f64 = 0.05;

/// How far a window measured at `scale` may be from the same at scale 1 (`at_1x` seconds).
pub fn tolerance(scale: f64, at_1x: f64) -> f64 {
    MACHINE_DELAY_S * scale + SPREAD * at_1x.abs()
}

/// One line of the side-by-side comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What is compared.
    pub what: String,
    /// At scale 1.
    pub real: String,
    /// At the scale.
    pub scaled: String,
    /// Whether they agree.
    pub agrees: bool,
}

/// A fidelity check's result: both trials and the comparison.
#[derive(Debug, Clone)]
pub struct Fidelity {
    /// The trial's name (`<folder>/<scenario>/<profile>`).
    pub name: String,
    /// The scale compared with scale 1.
    pub scale: f64,
    /// The trial at scale 1.
    pub real: TrialResult,
    /// The trial at the scale.
    pub scaled: TrialResult,
    /// Every comparison, in order.
    pub rows: Vec<Row>,
}

impl Fidelity {
    /// Whether every verdict and window agrees (both trials may have failed alike: the check
    /// is about the scale, the trials report their own outcome).
    pub fn agrees(&self) -> bool {
        self.rows.iter().all(|r| r.agrees)
    }

    /// The comparisons that disagree.
    pub fn differences(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| !r.agrees)
    }

    /// Both trials side by side, a line per comparison (the two figures, then what they are),
    /// the disagreements marked `!`, then the wall times.
    pub fn render(&self) -> String {
        let k = self.scale;
        let scaled = format!("{k}x");
        let w = self.rows.iter().flat_map(|r| [r.real.chars().count(), r.scaled.chars().count()]).max().unwrap_or(0).max(scaled.len());
        let mut s = format!("fidelity of {} at {k}x against 1x (figures in program time):\n", self.name);
        let _ = writeln!(s, "  {:>w$}  {scaled:>w$}", "1x");
        for r in &self.rows {
            let mark = if r.agrees { " " } else { "!" };
            let _ = writeln!(s, "{mark} {:>w$}  {:>w$}  {}", r.real, r.scaled, r.what);
        }
        let _ = write!(
            s,
            "  wall time: {:.1}s at 1x, {:.1}s at {k}x; {}",
            self.real.duration_ms as f64 / 1000.0,
            self.scaled.duration_ms as f64 / 1000.0,
            match self.differences().count() {
                0 => format!("every verdict and window agrees (tolerance {MACHINE_DELAY_S} s x {k} + {:.0} %)", SPREAD * 100.0),
                n => format!("{n} difference(s), marked ! (tolerance {MACHINE_DELAY_S} s x {k} + {:.0} %)", SPREAD * 100.0),
            }
        );
        s
    }
}

/// Runs `scenario` in `profile` at scale 1, then at `scale`, one after the other (side by side
/// they would load the machine for each other), and compares them. The two results are named
/// `<name> (1x)` and `<name> (<scale>x)`.
pub async fn run_fidelity(name: &str, scenario: &Scenario, profile: Profile, scale: f64, opts: &RunOptions) -> Fidelity {
    let mut real = run_trial(name, scenario, profile, &RunOptions { time_scale: Some(1.0), ..opts.clone() }).await;
    real.name = format!("{name} (1x)");
    let mut scaled = if opts.cancel.is_cancelled() {
        TrialResult::early(name.into(), &scenario.path, profile.name(), Outcome::Interrupted, "interrupted before it started".into(), Default::default())
    } else {
        run_trial(name, scenario, profile, &RunOptions { time_scale: Some(scale), ..opts.clone() }).await
    };
    scaled.name = format!("{name} ({scale}x)");
    let rows = compare(&real, &scaled, scale);
    Fidelity { name: name.to_string(), scale, real, scaled, rows }
}

/// The scale a fidelity check of `scenario` compares with scale 1: `forced` (`--time-scale`),
/// else its `time_scale`; `None` when it has neither (or 1).
pub fn scale_of(scenario: &Scenario, forced: Option<f64>) -> Option<f64> {
    forced.or(scenario.time_scale).filter(|k| *k > 1.0)
}

/// Runs the fidelity check of each of `trials` that has a scale ([`scale_of`]) and a short
/// enough 1x run ([`too_long_at_1x`]) as `admission`
/// allows, calling `on_done` as each ends; returns them in the order of `trials`. A cancelled
/// run starts no new check.
pub async fn run_admitted(trials: &[PlannedTrial], opts: &RunOptions, admission: &Admission, mut on_done: impl FnMut(&Fidelity)) -> Vec<Fidelity> {
    let gate = Gate::new(admission.clone());
    let gate = &gate;
    let scaled: Vec<(usize, &PlannedTrial, f64)> = trials
        .iter()
        .enumerate()
        .filter(|(_, t)| too_long_at_1x(&t.scenario).is_none())
        .filter_map(|(i, t)| Some((i, t, scale_of(&t.scenario, opts.time_scale)?)))
        .collect();
    let mut out: Vec<Option<Fidelity>> = vec![None; trials.len()];
    let mut stream = futures::stream::iter(scaled)
        .take_while(|_| futures::future::ready(!opts.cancel.is_cancelled()))
        .map(|(i, t, k)| async move {
            let _pass = tokio::select! {
                pass = gate.enter_async(weight(&t.scenario)) => pass,
                () = opts.cancel.cancelled() => return (i, None),
            };
            (i, Some(run_fidelity(&t.name, &t.scenario, t.profile, k, opts).await))
        })
        .buffer_unordered(admission.jobs.max(1));
    while let Some((i, f)) = stream.next().await {
        if let Some(f) = f {
            on_done(&f);
            out[i] = Some(f);
        }
    }
    out.into_iter().flatten().collect()
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "none".to_string(), |s| format!("{s:.2}s"))
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::Ignored => "ignored",
        Outcome::Interrupted => "interrupted",
    }
}

/// Compares a trial at scale 1 with the same trial at `scale`.
pub fn compare(real: &TrialResult, scaled: &TrialResult, scale: f64) -> Vec<Row> {
    let mut rows = vec![Row {
        what: "outcome".into(),
        real: outcome(real.outcome).into(),
        scaled: outcome(scaled.outcome).into(),
        agrees: real.outcome == scaled.outcome,
    }];
    let verdict = |e: Option<&crate::runner::report::ExpectationResult>| match e {
        None => "absent".to_string(),
        Some(e) if !e.decided => "undecided".to_string(),
        Some(e) if e.passed => "held".to_string(),
        Some(_) => "failed".to_string(),
    };
    for i in 0..real.expectations.len().max(scaled.expectations.len()) {
        let (a, b) = (real.expectations.get(i), scaled.expectations.get(i));
        let what = a.or(b).map(|e| e.description.clone()).unwrap_or_default();
        let (va, vb) = (verdict(a), verdict(b));
        rows.push(Row { what, agrees: va == vb, real: va, scaled: vb });
    }
    let window = |what: String, a: Option<f64>, b: Option<f64>| {
        let agrees = match (a, b) {
            (Some(x), Some(y)) => (x - y).abs() <= tolerance(scale, x),
            (None, None) => true,
            _ => false,
        };
        Row { what, real: secs(a), scaled: secs(b), agrees }
    };
    let mut keys: Vec<(usize, String)> = real.windows.iter().chain(&scaled.windows).map(|w| (w.expectation, w.what.clone())).collect();
    keys.dedup();
    let mut seen = std::collections::BTreeSet::new();
    for (i, what) in keys {
        if !seen.insert((i, what.clone())) {
            continue;
        }
        let find = |r: &TrialResult| r.windows.iter().find(|w| w.expectation == i && w.what == what).map(|w| w.seconds);
        let desc = real.windows.iter().chain(&scaled.windows).find(|w| w.expectation == i).map(|w| w.description.clone()).unwrap_or_default();
        rows.push(window(format!("{desc}: {what}"), find(real), find(scaled)));
    }
    for a in &real.staleness {
        let b = scaled.staleness.iter().find(|b| b.step == a.step && b.client == a.client && b.service == a.service);
        let who = format!("stale after {}, client {}", a.step, a.service.as_deref().unwrap_or(&a.client));
        rows.push(window(format!("{who}: last request to {}", a.old), a.last_old_s, b.and_then(|b| b.last_old_s)));
        rows.push(window(format!("{who}: first request to {}", a.new), a.first_new_s, b.and_then(|b| b.first_new_s)));
        let cause_b = b.map_or("absent", |b| b.cause.as_str());
        rows.push(Row { what: format!("{who}: cause"), real: a.cause.clone(), scaled: cause_b.into(), agrees: a.cause == cause_b });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::report::{ExpectationResult, MeasuredWindow};

    fn trial(outcome: Outcome, held: bool, window: f64) -> TrialResult {
        let mut r = TrialResult::early("x/y/dual-stack".into(), std::path::Path::new("x/y.toml"), "dual-stack", outcome, String::new(), Default::default());
        r.expectations = vec![ExpectationResult { description: "green within 30s".into(), passed: held, observed: String::new(), decided: true }];
        r.windows =
            vec![MeasuredWindow { expectation: 0, description: "green within 30s".into(), what: "first \"^green$\" after step swap".into(), seconds: window }];
        r
    }

    #[test]
    fn the_tolerance_is_k_machine_delays_and_a_share_of_the_window() {
        assert!((tolerance(10.0, 27.0) - 2.35).abs() < 1e-9);
        assert!((tolerance(1000.0, 3600.0) - 280.0).abs() < 1e-9);
    }

    #[test]
    fn agreeing_runs_agree() {
        let f = compare(&trial(Outcome::Passed, true, 26.9), &trial(Outcome::Passed, true, 27.8), 10.0);
        assert!(f.iter().all(|r| r.agrees), "{f:?}");
    }

    #[test]
    fn a_window_beyond_the_tolerance_is_a_difference() {
        // A kernel timer of 3 s stays 3 s real: 30 s of program time at 10x.
        let f = compare(&trial(Outcome::Passed, true, 3.0), &trial(Outcome::Passed, true, 30.0), 10.0);
        let bad: Vec<&Row> = f.iter().filter(|r| !r.agrees).collect();
        assert_eq!(bad.len(), 1, "{f:?}");
        assert_eq!((bad[0].real.as_str(), bad[0].scaled.as_str()), ("3.00s", "30.00s"));
    }

    #[test]
    fn a_different_verdict_is_a_difference() {
        let f = compare(&trial(Outcome::Passed, true, 26.9), &trial(Outcome::Failed, false, 26.9), 10.0);
        let bad: Vec<&str> = f.iter().filter(|r| !r.agrees).map(|r| r.what.as_str()).collect();
        assert_eq!(bad, vec!["outcome", "green within 30s"]);
    }
}
