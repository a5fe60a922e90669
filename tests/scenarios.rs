//! Every scenario under scenarios/ as a test: one trial per scenario and profile, named
//! `<folder>/<scenario>/<profile>`, with the same outcome as `nslab run scenarios/`.
//!
//! Under cargo-nextest `--retries`, each attempt keeps its own artifact directory and a trial
//! that passes on a retry is reported flaky. `NSLAB_REPORT_JSON` / `NSLAB_REPORT_JUNIT` name
//! the JSON and JUnit reports every trial of the run is added to (see scenarios/README.md).
//!
//! Time scale: `NSLAB_TIME_SCALE=K` runs every trial at scale K, as `nslab run --time-scale K`
//! (`1`: scaled scenarios in real time); `NSLAB_FIDELITY=1` runs each trial that has a scale as
//! its fidelity check (at 1x, then at its scale, compared, as `nslab run --fidelity`): CI does.

use std::path::PathBuf;

use libtest_mimic::{Arguments, Failed, Trial};
use nslab_scenario::runner::admission::{weight, Gate};
use nslab_scenario::runner::{self, Outcome, RunOptions};
use nslab_tests::{kernel_unavailable, require_all};

fn main() -> std::process::ExitCode {
    nslab_tests::enter_rootless();
    let mut args = Arguments::from_args();
    // NSLAB_SCENARIOS_DIR points the suite at another tree (the CLI agreement test uses it).
    let root =
        std::env::var_os("NSLAB_SCENARIOS_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios")));
    let (planned, errors) = runner::collect(&[root], &[]);
    let forced = match std::env::var("NSLAB_TIME_SCALE") {
        Ok(v) if !v.trim().is_empty() => {
            match v.trim().parse::<f64>().map_err(|_| format!("{v:?} is not a number")).and_then(nslab_scenario::scenario::check_time_scale) {
                Ok(k) => Some(k),
                Err(e) => {
                    eprintln!("NSLAB_TIME_SCALE: {e}");
                    return std::process::ExitCode::from(2);
                }
            }
        }
        _ => None,
    };
    let fidelity = matches!(std::env::var("NSLAB_FIDELITY").as_deref().map(str::trim), Ok("1" | "true" | "yes" | "on"));
    // Trials mostly wait (timelines, programs starting): as many at once as this machine
    // carries, the choice `nslab run` makes (cores, memory, each trial's programs); each test
    // thread runs one trial and enters the gate with its weight. `--test-threads` wins, as -j.
    let gate: &'static Gate = Box::leak(Box::new(Gate::new(match args.test_threads {
        Some(n) => runner::Admission::fixed(n),
        None => runner::Admission::for_machine(&planned),
    })));
    if args.test_threads.is_none() {
        args.test_threads = Some(gate.admission().jobs);
    }
    eprintln!("scenarios: {}", gate.admission().summary);
    let mut trials: Vec<Trial> =
        errors.into_iter().enumerate().map(|(i, e)| Trial::test(format!("invalid-scenario-{i}"), move || Err(Failed::from(e)))).collect();
    let kernel = kernel_unavailable();
    let (report_json, report_junit) = runner::attempt::report_paths_from_env();
    if report_junit.is_some() && report_json.is_none() {
        eprintln!("NSLAB_REPORT_JUNIT is made from the JSON report: set NSLAB_REPORT_JSON too");
        return std::process::ExitCode::from(2);
    }
    for t in planned {
        let (report_json, report_junit) = (report_json.clone(), report_junit.clone());
        // The same decision as `nslab run` (requirements, implied ones included).
        let missing = kernel.clone().or_else(|| runner::requirements::unmet_for(&t.scenario));
        let ignored = missing.is_some() && !require_all();
        if let (Some(why), true) = (&missing, ignored) {
            eprintln!("note: {} is ignored: {why}", t.name);
        }
        trials.push(
            Trial::test(t.name.clone(), move || {
                if let Some(why) = missing {
                    let under = if require_all() { " (NSLAB_REQUIRE_ALL is set)" } else { " (run with --ignored)" };
                    return Err(Failed::from(format!("{why}{under}")));
                }
                let _pass = gate.enter(weight(&t.scenario));
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
                let opts =
                    RunOptions { require_all: require_all(), attempt: runner::attempt::Attempt::from_env(), time_scale: forced, ..RunOptions::default() };
                // A fidelity check runs the trial at 1x too: not for a scenario whose 1x run could
                // take longer than fidelity::MAX_1X (the hour-long ones), which runs at its scale.
                let too_long = runner::fidelity::too_long_at_1x(&t.scenario);
                if let (Some(why), true) = (&too_long, fidelity) {
                    eprintln!("note: {}: {why}", t.name);
                }
                let short = too_long.is_none();
                if let Some(k) = runner::fidelity::scale_of(&t.scenario, forced).filter(|_| fidelity && short) {
                    let f = rt.block_on(runner::fidelity::run_fidelity(&t.name, &t.scenario, t.profile, k, &opts));
                    eprintln!("{}", f.render());
                    let mut failures = Vec::new();
                    for r in [&f.real, &f.scaled] {
                        if let Some(json) = &report_json {
                            runner::attempt::add_to_report(json, report_junit.as_deref(), &runner::attempt::run_id(), r)
                                .map_err(|e| format!("cannot add {} to the report {}: {e}", r.name, json.display()))?;
                        }
                        match r.outcome {
                            Outcome::Passed => remove_passing(r)?,
                            _ => failures.push(format!("{}:\n{}", r.name, r.failure_text())),
                        }
                    }
                    if !f.agrees() {
                        failures.insert(0, f.render());
                    }
                    return if failures.is_empty() { Ok(()) } else { Err(Failed::from(failures.join("\n"))) };
                }
                let r = rt.block_on(runner::run_trial(&t.name, &t.scenario, t.profile, &opts));
                if let Some(json) = &report_json {
                    runner::attempt::add_to_report(json, report_junit.as_deref(), &runner::attempt::run_id(), &r)
                        .map_err(|e| format!("cannot add {} to the report {}: {e}", t.name, json.display()))?;
                }
                match r.outcome {
                    Outcome::Passed => remove_passing(&r).map_err(Failed::from),
                    Outcome::Failed | Outcome::Ignored | Outcome::Interrupted => Err(Failed::from(r.failure_text())),
                }
            })
            .with_ignored_flag(ignored),
        );
    }
    nslab_tests::run_checking_host(&args, trials)
}

/// `nslab run` keeps a passing trial's timeline picture for its report; a test has no report to
/// show it in, and leaves nothing behind.
fn remove_passing(r: &runner::TrialResult) -> Result<(), String> {
    if let Some(dir) = r.timeline.as_deref().and_then(std::path::Path::parent) {
        nslab::os::artifacts::remove(dir, &nslab::os::artifacts::default_root()).map_err(|e| format!("remove {}: {e}", dir.display()))?;
    }
    Ok(())
}
