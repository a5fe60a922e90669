//! `nslab replay`: checks a bundle, extracts it into a fresh directory, says how this machine
//! differs from the one that ran the trial, runs the same trial (same scenario, same profile)
//! and prints the two results side by side.

use std::path::PathBuf;
use std::process::ExitCode;

use nslab_scenario::bundle::{self, Limits, Machine};
use nslab_scenario::runner::{self, Outcome, RunOptions, TrialResult};
use serde_json::Value;
use tokio::runtime::Runtime;

use super::bundle::print_error;
use super::trials::{run_trials, EXIT_INTERRUPTED};

/// Exit status when the outcome now differs from the recorded one.
pub(crate) const EXIT_DIFFERENT: u8 = 1;
/// Exit status when the bundle is refused or its trial cannot be run.
pub(crate) const EXIT_REFUSED: u8 = 2;

/// The arguments of `nslab replay`.
#[derive(clap::Args)]
pub(crate) struct ReplayArgs {
    /// The bundle (`nslab bundle ... -o FILE`).
    bundle: PathBuf,
    /// Only check and extract it; do not run the trial.
    #[arg(long)]
    no_run: bool,
}

/// Exit 0 when the trial ended as recorded (passed as it passed, failed as it failed), 1 when
/// it ended otherwise, 2 when the bundle is refused or its trial cannot run, 130 when
/// interrupted.
pub(crate) fn replay(a: ReplayArgs, rt: &Runtime) -> ExitCode {
    let limits = Limits::default();
    // Checked before any directory is made: a refused bundle writes nothing.
    if let Err(e) = bundle::validate(&a.bundle, &limits) {
        print_error(&e);
        return ExitCode::from(EXIT_REFUSED);
    }
    let root = nslab::lab::spec::default_artifacts_root();
    let fresh = nslab::os::fsafe::artifact_dir(&root).and_then(|r| {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        r.new_subdir(format!("replay-{}-{stamp}", std::process::id()))
    });
    let fresh = match fresh {
        Ok(d) => d,
        Err(e) => {
            print_error(&e);
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    let dir = fresh.path().to_path_buf();
    let bundle_dir = match fresh.new_subdir("bundle") {
        Ok(d) => d,
        Err(e) => {
            print_error(&e);
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    let x = match bundle::extract(&a.bundle, &limits, &bundle_dir) {
        Ok(x) => x,
        Err(e) => {
            print_error(&e);
            eprintln!("nslab: what was extracted is in {}", dir.display());
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    let m = &x.manifest;
    println!("bundle {}: trial {} ({}), recorded by nslab {}", a.bundle.display(), m.trial, outcome_name(m.outcome), m.nslab);
    println!("extracted into {} ({} files)", bundle_dir.path().display(), x.files);
    let profile = match m.profile.parse::<nslab::Profile>() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nslab: {e}");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    let (trials, errors) = runner::collect(std::slice::from_ref(&x.scenario), &[profile]);
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}");
        }
        eprintln!("nslab: the bundle's scenario is invalid here; nothing was run");
        return ExitCode::from(EXIT_REFUSED);
    }
    let Some(trial) = trials.into_iter().next() else {
        eprintln!("nslab: the bundle's scenario has no trial in profile {}; nothing was run", m.profile);
        return ExitCode::from(EXIT_REFUSED);
    };
    if trial.name != m.trial {
        eprintln!("nslab: note: the trial is named {} here, {} in the bundle", trial.name, m.trial);
    }
    let here = Machine::here(&trial.scenario);
    let diffs = m.machine.differences(&here);
    if diffs.is_empty() {
        println!("this machine: the same kernel, program versions and sysctls as recorded");
    } else {
        println!("this machine differs from the recorded one:");
        for d in &diffs {
            println!("  {d}");
        }
    }
    if a.no_run {
        return ExitCode::SUCCESS;
    }
    let opts =
        RunOptions { keep: true, artifacts_root: Some(dir.join("now")), require_all: runner::requirements::require_all_from_env(), ..RunOptions::default() };
    let (results, _) = match run_trials(rt, std::slice::from_ref(&trial), &opts, Some(1), |_, _| {}) {
        Ok(done) => done,
        Err(code) => return code,
    };
    let Some(now) = results.into_iter().next() else {
        println!("the trial did not start (interrupted)");
        return ExitCode::from(EXIT_INTERRUPTED);
    };
    let recorded = read_results(&x.artifacts.join("results.json"));
    side_by_side(m.outcome, m.reason.as_deref(), &recorded, &now);
    if now.outcome == Outcome::Interrupted {
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    if now.outcome == m.outcome {
        println!("same outcome as recorded: {}", outcome_name(now.outcome));
        ExitCode::SUCCESS
    } else {
        println!("DIFFERENT outcome: recorded {}, now {}", outcome_name(m.outcome), outcome_name(now.outcome));
        ExitCode::from(EXIT_DIFFERENT)
    }
}

fn outcome_name(o: Outcome) -> String {
    serde_json::to_value(o).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// The recorded expectations: (description, verdict, observed).
fn read_results(path: &std::path::Path) -> Vec<(String, String, String)> {
    let v: Value = std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    v.get("expectations")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| {
                    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    let b = |k: &str| e.get(k).and_then(Value::as_bool).unwrap_or(false);
                    (s("description"), verdict(b("passed"), b("decided")), s("observed"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn verdict(passed: bool, decided: bool) -> String {
    match (passed, decided) {
        (true, _) => "ok",
        (false, true) => "FAIL",
        (false, false) => "undecided",
    }
    .to_string()
}

/// The first line of `s`, cut to fit its column of the side-by-side table.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() <= 40 {
        return line.to_string();
    }
    line.chars().take(39).chain(std::iter::once('…')).collect()
}

/// The outcome, then each expectation (by its sentence, in file order): recorded against now.
fn side_by_side(outcome: Outcome, reason: Option<&str>, recorded: &[(String, String, String)], now: &TrialResult) {
    println!();
    println!("{:<12} {:<40} now", "", "recorded");
    println!("{:<12} {:<40} {}", "outcome", outcome_name(outcome), outcome_name(now.outcome));
    if reason.is_some() || now.reason.is_some() {
        println!("{:<12} {:<40} {}", "reason", first_line(reason.unwrap_or("-")), first_line(now.reason.as_deref().unwrap_or("-")));
    }
    let mut names: Vec<&str> = recorded.iter().map(|r| r.0.as_str()).collect();
    for e in &now.expectations {
        if !names.contains(&e.description.as_str()) {
            names.push(&e.description);
        }
    }
    for name in names {
        let rec = recorded.iter().find(|r| r.0 == name);
        let cur = now.expectations.iter().find(|e| e.description == name);
        println!("expect: {name}");
        println!(
            "{:<12} {:<40} {}",
            "  verdict",
            rec.map(|r| r.1.as_str()).unwrap_or("(absent)"),
            cur.map(|e| verdict(e.passed, e.decided)).unwrap_or_else(|| "(absent)".into())
        );
        println!(
            "{:<12} {:<40} {}",
            "  observed",
            rec.map(|r| first_line(&r.2)).unwrap_or_else(|| "-".into()),
            cur.map(|e| first_line(&e.observed)).unwrap_or_else(|| "-".into())
        );
    }
    if let Some(a) = &now.artifacts {
        println!("artifacts now: {}", a.display());
    }
}
