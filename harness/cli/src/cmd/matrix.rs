//! `nslab matrix`: runs scenarios and prints the compatibility matrix (scenarios by profile,
//! each cell the outcome in words, linked to its kept artifacts).

use std::path::PathBuf;
use std::process::ExitCode;

use nslab::Profile;
use nslab_scenario::runner::{self, Outcome, RunOptions};
use tokio::runtime::Runtime;

use super::trials::{run_trials, EXIT_INTERRUPTED};
use super::values::{parse_profile, parse_time_scale};

/// The arguments of `nslab matrix`.
#[derive(clap::Args)]
pub(crate) struct MatrixArgs {
    /// Scenario files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Only these profiles (repeatable).
    #[arg(long = "profile", value_parser = parse_profile)]
    profiles: Vec<Profile>,
    /// md (Markdown), html (one self-contained file) or json.
    #[arg(long, default_value = "md", value_parser = ["md", "html", "json"])]
    format: String,
    /// Write it here instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// How many trials run at once, whatever they weigh. Default: as many as this machine
    /// carries, from its cores and memory and what each trial's programs use (a JVM,
    /// PostgreSQL), the same choice as `cargo test` makes for the scenarios; the run says
    /// what it chose.
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Where the trials' artifacts go (every one is kept: the matrix links to them).
    /// Default: a fresh `matrix-<time>` folder under the artifact root.
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// Fail trials whose required programs are missing instead of ignoring them.
    #[arg(long, env = "NSLAB_REQUIRE_ALL", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    require_all: bool,
    /// Run every trial at this time scale (1 to 1000), whatever its scenario's `time_scale`
    /// (as `nslab run --time-scale`).
    #[arg(long, value_name = "K", value_parser = parse_time_scale)]
    time_scale: Option<f64>,
}

/// Runs the trials and writes the matrix; exit 1 when a trial failed, 2 for invalid
/// scenarios, 130 when interrupted (the matrix then shows what ran).
pub(crate) fn matrix(a: MatrixArgs, rt: &Runtime) -> ExitCode {
    let (trials, errors) = runner::collect(&a.paths, &a.profiles);
    for e in &errors {
        eprintln!("{e}");
    }
    if !errors.is_empty() {
        return ExitCode::from(2);
    }
    let refused = super::values::refuse_forced_scale(&trials, a.time_scale);
    if !refused.is_empty() {
        for e in &refused {
            eprintln!("{e}");
        }
        return ExitCode::from(2);
    }
    let root = a.artifacts.unwrap_or_else(|| {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        nslab::lab::spec::default_artifacts_root().join(format!("matrix-{secs}"))
    });
    let opts = RunOptions { keep: true, artifacts_root: Some(root.clone()), require_all: a.require_all, time_scale: a.time_scale, ..RunOptions::default() };
    let (results, not_started) = match run_trials(rt, &trials, &opts, a.jobs, |pb, r| {
        pb.suspend(|| eprintln!("{:?} {}", r.outcome, r.name));
        pb.inc(1);
    }) {
        Ok(done) => done,
        Err(code) => return code,
    };
    let interrupted = opts.cancel.is_cancelled();
    let fmt = match a.format.as_str() {
        "html" => runner::matrix::Format::Html,
        "json" => runner::matrix::Format::Json,
        _ => runner::matrix::Format::Markdown,
    };
    let text = runner::matrix::render(&runner::matrix::build(&trials, &results), fmt);
    let failed = results.iter().filter(|r| r.outcome == Outcome::Failed).count();
    if results.iter().any(|r| r.artifacts.is_some()) {
        eprintln!("artifacts kept under {}", root.display());
    }
    match a.output {
        Some(p) => {
            if let Err(e) = std::fs::write(&p, text) {
                eprintln!("nslab: cannot write {}: {e}", p.display());
                return ExitCode::FAILURE;
            }
            eprintln!("matrix written to {}", p.display());
        }
        None => print!("{text}"),
    }
    if interrupted {
        let stopped = results.iter().filter(|r| r.outcome == Outcome::Interrupted).count();
        eprintln!(
            "nslab: interrupted: {} trial(s) done, {stopped} stopped before they ended (not decided), {} not started; the matrix shows what ran",
            results.len() - stopped,
            not_started.len()
        );
        ExitCode::from(EXIT_INTERRUPTED)
    } else if failed > 0 {
        eprintln!("nslab: {failed} trial(s) failed: their tests did not hold (the matrix says which)");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
