//! Every scenario under scenarios/ as a test: one trial per scenario and profile, named
//! `<folder>/<scenario>/<profile>`, with the same outcome as `nslab run scenarios/`.

use std::path::PathBuf;

use libtest_mimic::{Arguments, Failed, Trial};
use nslab::runner::admission::{weight, Gate};
use nslab::runner::{self, Outcome, RunOptions};
use nslab_tests::{kernel_unavailable, require_all};

fn main() -> std::process::ExitCode {
    nslab_tests::enter_rootless();
    let mut args = Arguments::from_args();
    // NSLAB_SCENARIOS_DIR points the suite at another tree (the CLI agreement test uses it).
    let root =
        std::env::var_os("NSLAB_SCENARIOS_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios")));
    let (planned, errors) = runner::collect(&[root], &[]);
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
    for t in planned {
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
                let opts = RunOptions { require_all: require_all(), ..RunOptions::default() };
                let r = rt.block_on(runner::run_trial(&t.name, &t.scenario, t.profile, &opts));
                match r.outcome {
                    Outcome::Passed => Ok(()),
                    Outcome::Failed | Outcome::Ignored => Err(Failed::from(r.failure_text())),
                }
            })
            .with_ignored_flag(ignored),
        );
    }
    nslab_tests::run_checking_host(&args, trials)
}
