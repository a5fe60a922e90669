//! `nslab bundle`: one file with everything needed to run a trial again elsewhere (see
//! `nslab_scenario::bundle`).

use std::path::PathBuf;
use std::process::ExitCode;

use nslab_scenario::bundle;

/// The arguments of `nslab bundle`.
#[derive(clap::Args)]
pub(crate) struct BundleArgs {
    /// A trial's artifact directory (printed by `nslab run` as "artifacts:"), or a run's
    /// artifact directory (or the artifacts root) with TRIAL.
    dir: PathBuf,
    /// The trial's name (`stale-dns/jvm-default/dual-stack`), when DIR holds several.
    trial: Option<String>,
    /// The bundle to write (a new file; an existing one is not replaced).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
}

/// Writes the bundle; exit 0 when written, 1 otherwise (the message says why).
pub(crate) fn bundle(a: BundleArgs) -> ExitCode {
    let dir = match &a.trial {
        Some(t) => match bundle::find_trial(&a.dir, t) {
            Ok(d) => d,
            Err(e) => return print_error(&e),
        },
        None => a.dir.clone(),
    };
    match bundle::create(&dir, &a.output) {
        Ok(w) => {
            for s in &w.skipped {
                eprintln!("nslab: left out {} (not a regular file)", s.display());
            }
            println!(
                "bundled {} ({}) from {}: {} scenario file(s), {} artifact file(s), {} bytes -> {} ({} bytes)",
                w.manifest.trial,
                serde_json::to_value(w.manifest.outcome).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
                w.trial_dir.display(),
                w.scenario_files,
                w.artifact_files,
                w.raw_bytes,
                a.output.display(),
                w.bundle_bytes
            );
            println!("replay it with: sudo nslab replay {}", a.output.display());
            ExitCode::SUCCESS
        }
        Err(e) => print_error(&e),
    }
}

/// Prints `e` with its whole cause chain; returns exit 1.
pub(crate) fn print_error(e: &dyn std::error::Error) -> ExitCode {
    let mut msg = format!("nslab: {e}");
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    eprintln!("{msg}");
    ExitCode::FAILURE
}
