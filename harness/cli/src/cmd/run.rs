//! `nslab run`: runs scenarios and reports every expectation: each trial as it ends, then a
//! summary a person can act on, and the JSON and JUnit reports asked for.

use std::path::PathBuf;
use std::process::ExitCode;

use nslab::Profile;
use nslab_scenario::runner::{self, Outcome, RunOptions, TrialResult};
use tokio::runtime::Runtime;

use super::trials::{run_trials, EXIT_INTERRUPTED};
use super::values::{parse_profile, parse_time_scale};
use crate::paint::{Paint, Tone};

/// The arguments of `nslab run`.
#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// Scenario files or folders (folders are searched for *.toml, skipping invalid/).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Only these profiles (repeatable; default: each scenario's own list).
    #[arg(long = "profile", value_parser = parse_profile)]
    profiles: Vec<Profile>,
    /// Keep the artifacts of passing trials too (failing ones are always kept).
    #[arg(long)]
    keep: bool,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a JSON report here (schema in scenarios/README.md).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// How many trials run at once, whatever they weigh. Default: as many as this machine
    /// carries, from its cores and memory and what each trial's programs use (a JVM,
    /// PostgreSQL), the same choice as `cargo test` makes for the scenarios; the run says
    /// what it chose.
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Fail trials whose required programs are missing instead of ignoring them (also
    /// NSLAB_REQUIRE_ALL=1/true/yes/on, read as `cargo test` reads it).
    #[arg(long)]
    require_all: bool,
    /// Run every trial at this time scale (1 to 1000), whatever its scenario's `time_scale`:
    /// programs see time pass K times faster, every `at`, window and figure is program time.
    /// 1 runs scaled scenarios in real time. Refused (exit 2) for scenarios that rest on
    /// kernel timers (scenarios/README.md, "Time scale").
    #[arg(long, value_name = "K", value_parser = parse_time_scale)]
    time_scale: Option<f64>,
    /// For each trial with a scale (its `time_scale`, or --time-scale): run it at 1x, then at
    /// its scale, and compare every verdict and every measured window (program time), printed
    /// side by side; fails when a verdict differs or a window differs by more than
    /// k x 100 ms + 5 % (scenarios/README.md). Trials without a scale are not run.
    #[arg(long)]
    fidelity: bool,
}

/// Runs the trials; exit 0 only if every expectation held, 1 when one failed, 2 for invalid
/// scenarios or a profile none of them runs in, 130 when interrupted.
pub(crate) fn run(a: RunArgs, rt: &Runtime, paint: &Paint) -> ExitCode {
    let (trials, errors) = runner::collect(&a.paths, &a.profiles);
    for e in &errors {
        eprintln!("{e}");
    }
    if !errors.is_empty() {
        eprintln!("nslab: {} scenario file(s) are invalid; nothing was run", errors.len());
        return ExitCode::from(2);
    }
    if trials.is_empty() && !a.profiles.is_empty() {
        // A typo'd or absent profile must not read as success: say what is there.
        let (all, _) = runner::collect(&a.paths, &[]);
        let have: std::collections::BTreeSet<&str> = all.iter().map(|t| t.profile.name()).collect();
        let asked: Vec<&str> = a.profiles.iter().map(|p| p.name()).collect();
        let have = if have.is_empty() { "none (no scenario found)".to_string() } else { have.into_iter().collect::<Vec<_>>().join(", ") };
        eprintln!("nslab: no scenario at the given paths runs in profile {}; their profiles: {have}", asked.join(", "));
        return ExitCode::from(2);
    }
    let refused = super::values::refuse_forced_scale(&trials, a.time_scale);
    if !refused.is_empty() {
        for e in &refused {
            eprintln!("{e}");
        }
        eprintln!("nslab: {} scenario file(s) cannot run at that scale; nothing was run", refused.len());
        return ExitCode::from(2);
    }
    let require_all = a.require_all || runner::requirements::require_all_from_env();
    let opts = RunOptions { keep: a.keep, artifacts_root: None, require_all, time_scale: a.time_scale, ..RunOptions::default() };
    if a.fidelity {
        return fidelity(&a, rt, paint, &trials, &opts);
    }
    let started = std::time::Instant::now();
    let (results, not_started) = match run_trials(rt, &trials, &opts, a.jobs, |pb, r| {
        pb.suspend(|| print_result(paint, r));
        pb.inc(1);
        pb.set_message(r.name.clone());
    }) {
        Ok(done) => done,
        Err(code) => return code,
    };
    let run = runner::RunInfo { interrupted: opts.cancel.is_cancelled(), not_started, run_id: None };
    let mut code = summary(paint, &results, &run, started.elapsed());
    if let Some(p) = a.json {
        if let Err(e) = runner::write_json_run(&p, &results, &run) {
            eprintln!("nslab: cannot write {}: {e}", p.display());
            code = ExitCode::FAILURE;
        }
    }
    if let Some(p) = a.junit {
        if let Err(e) = runner::write_junit(&p, &results) {
            eprintln!("nslab: cannot write {}: {e}", p.display());
            code = ExitCode::FAILURE;
        }
    }
    code
}

/// `--fidelity`: each trial with a scale at 1x and at its scale, compared; exit 0 only when
/// every comparison agrees and every trial passed, 1 otherwise, 130 when interrupted.
fn fidelity(a: &RunArgs, rt: &Runtime, paint: &Paint, trials: &[runner::PlannedTrial], opts: &RunOptions) -> ExitCode {
    let scaled: Vec<&runner::PlannedTrial> = trials.iter().filter(|t| runner::fidelity::scale_of(&t.scenario, opts.time_scale).is_some()).collect();
    for t in &scaled {
        if let Some(why) = runner::fidelity::too_long_at_1x(&t.scenario) {
            eprintln!("nslab: --fidelity: {}: {why}; run it without --fidelity", t.name);
        }
    }
    let with: Vec<runner::PlannedTrial> = scaled.into_iter().filter(|t| runner::fidelity::too_long_at_1x(&t.scenario).is_none()).cloned().collect();
    let without = trials.len() - with.len();
    if with.is_empty() {
        eprintln!(
            "nslab: --fidelity: none of the {} trial(s) has a scale (time_scale in the scenario, or --time-scale K above 1); nothing was run",
            trials.len()
        );
        return ExitCode::from(2);
    }
    if without > 0 {
        eprintln!("nslab: --fidelity: {without} trial(s) without a scale, or too long at 1x, are not run");
    }
    let admission = match a.jobs {
        Some(j) => runner::Admission::fixed(j),
        None => runner::Admission::for_machine(&with),
    };
    eprintln!("fidelity of {} trial(s), each at 1x then at its scale, {}", with.len(), admission.summary);
    let started = std::time::Instant::now();
    let checks = rt.block_on(runner::fidelity::run_admitted(&with, opts, &admission, |f| {
        print_result(paint, &f.real);
        print_result(paint, &f.scaled);
        println!("{}", f.render());
    }));
    let mut results = Vec::new();
    for f in &checks {
        results.push(f.real.clone());
        results.push(f.scaled.clone());
    }
    let run = runner::RunInfo { interrupted: opts.cancel.is_cancelled(), not_started: Vec::new(), run_id: None };
    let mut code = summary(paint, &results, &run, started.elapsed());
    let differ: Vec<&runner::fidelity::Fidelity> = checks.iter().filter(|f| !f.agrees()).collect();
    for f in &differ {
        println!(
            "{} {}: {}",
            paint.paint(Tone::BadStrong, "fidelity differs:"),
            f.scaled.name,
            f.differences().map(|r| format!("{} ({} at 1x, {} at {}x)", r.what, r.real, r.scaled, f.scale)).collect::<Vec<_>>().join("; ")
        );
    }
    // What the scales saved: each trial's own wall time, summed, at 1x and at its scale.
    let took = |r: &runner::report::TrialResult| r.duration_ms as f64 / 1000.0;
    let (at_1x, scaled): (f64, f64) = (checks.iter().map(|f| took(&f.real)).sum(), checks.iter().map(|f| took(&f.scaled)).sum());
    let line = format!(
        "fidelity: {} of {} check(s) agree; the trials took {at_1x:.1} s at 1x and {scaled:.1} s at their scales (each trial's wall time, summed)",
        checks.len() - differ.len(),
        checks.len()
    );
    println!("{}", if differ.is_empty() { paint.paint(Tone::GoodStrong, &line) } else { paint.paint(Tone::BadStrong, &line) });
    if !differ.is_empty() && code == ExitCode::SUCCESS {
        code = ExitCode::FAILURE;
    }
    if let Some(p) = &a.json {
        if let Err(e) = runner::write_json_run(p, &results, &run) {
            eprintln!("nslab: cannot write {}: {e}", p.display());
            code = ExitCode::FAILURE;
        }
    }
    if let Some(p) = &a.junit {
        if let Err(e) = runner::write_junit(p, &results) {
            eprintln!("nslab: cannot write {}: {e}", p.display());
            code = ExitCode::FAILURE;
        }
    }
    code
}

/// One trial as it ends: its outcome, each expectation, what staleness and listeners showed,
/// why it failed or was ignored, and where its evidence is.
fn print_result(paint: &Paint, r: &TrialResult) {
    let tag = match r.outcome {
        Outcome::Passed => paint.paint(Tone::Good, "PASS   "),
        Outcome::Failed => paint.paint(Tone::BadStrong, "FAIL   "),
        Outcome::Ignored => paint.paint(Tone::Unsure, "IGNORED"),
        Outcome::Interrupted => paint.paint(Tone::Stopped, "INTERRUPTED"),
    };
    match r.time_scale {
        Some(k) => println!("{tag} {} ({:.1}s wall, at {k}x: figures below are program time)", r.name, r.duration_ms as f64 / 1000.0),
        None => println!("{tag} {} ({:.1}s)", r.name, r.duration_ms as f64 / 1000.0),
    }
    for e in &r.expectations {
        let mark = match (e.passed, e.decided) {
            (true, _) => paint.paint(Tone::Good, "  ok  "),
            (false, true) => paint.paint(Tone::Bad, "  FAIL"),
            (false, false) => paint.paint(Tone::Unsure, "  ??  "),
        };
        println!("{mark} {}: {}", e.description, e.observed.lines().next().unwrap_or(""));
    }
    for st in &r.staleness {
        let secs = |v: Option<f64>| v.map(|s| format!("+{s:.2}s")).unwrap_or_else(|| "none".into());
        println!(
            "        after {}: client {}: last request to {} {}, first to {} {}; TTL given {}; {} pinned request(s), {} new connection(s) to {}, {} DNS quer{} meanwhile; cause {}",
            st.step,
            match &st.service {
                Some(svc) => format!("{svc} (host {})", st.client),
                None => st.client.clone(),
            },
            st.old,
            secs(st.last_old_s),
            st.new,
            secs(st.first_new_s),
            st.ttl_s.map(|t| format!("{t}s")).unwrap_or_else(|| "?".into()),
            st.pinned_requests,
            st.new_connections_to_old,
            st.old,
            st.dns_queries_after,
            if st.dns_queries_after == 1 { "y" } else { "ies" },
            st.cause
        );
    }
    for f in &r.links {
        println!("        link {}", f.describe());
    }
    for (svc, ls) in &r.listeners {
        println!("        {svc} listens on: {}", if ls.is_empty() { "nothing".to_string() } else { ls.join(", ") });
    }
    if let (Outcome::Ignored | Outcome::Failed | Outcome::Interrupted, Some(why)) = (r.outcome, &r.reason) {
        println!("        {why}");
    }
    if let Some(a) = &r.artifacts {
        println!("        artifacts: {}", a.display());
    }
    if let Some(t) = &r.timeline {
        println!("        timeline: {}", t.display());
    }
}

/// The closing summary: what failed, why, and where its evidence is; then the counts.
fn summary(paint: &Paint, results: &[TrialResult], run: &runner::RunInfo, took: std::time::Duration) -> ExitCode {
    let count = |o| results.iter().filter(|r| r.outcome == o).count();
    let (passed, failed, ignored, stopped) = (count(Outcome::Passed), count(Outcome::Failed), count(Outcome::Ignored), count(Outcome::Interrupted));
    println!();
    for r in results.iter().filter(|r| r.outcome == Outcome::Failed) {
        println!("{} {}", paint.paint(Tone::BadStrong, "failed:"), r.name);
        for line in r.failure_text().lines() {
            println!("  {line}");
        }
    }
    for r in results.iter().filter(|r| r.outcome == Outcome::Interrupted) {
        println!("{} {}", paint.paint(Tone::StoppedStrong, "interrupted:"), r.name);
        for line in r.failure_text().lines() {
            println!("  {line}");
        }
    }
    let ignored_why: std::collections::BTreeSet<&str> = results.iter().filter(|r| r.outcome == Outcome::Ignored).filter_map(|r| r.reason.as_deref()).collect();
    for why in ignored_why {
        println!("{} {why}", paint.paint(Tone::Unsure, "ignored:"));
    }
    if run.interrupted {
        let counts = format!(
            "interrupted: {passed} passed, {failed} failed, {ignored} ignored, {stopped} stopped before they ended (not decided), {} not started in {:.1}s",
            run.not_started.len(),
            took.as_secs_f64()
        );
        println!("{}", paint.paint(Tone::StoppedStrong, &counts));
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    let counts = format!("{passed} passed, {failed} failed, {ignored} ignored in {:.1}s", took.as_secs_f64());
    println!("{}", if failed > 0 { paint.paint(Tone::BadStrong, &counts) } else { paint.paint(Tone::GoodStrong, &counts) });
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
