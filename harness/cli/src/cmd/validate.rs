//! `nslab validate`: checks scenario files without running them (no privileges needed).

use std::path::PathBuf;
use std::process::ExitCode;

use nslab_scenario::runner;

/// The arguments of `nslab validate`.
#[derive(clap::Args)]
pub(crate) struct ValidateArgs {
    /// Scenario files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// Prints every error (file:line:column) and the count; exit 2 when a file has errors.
pub(crate) fn validate(a: ValidateArgs) -> ExitCode {
    let (trials, errors) = runner::collect(&a.paths, &[]);
    for e in &errors {
        eprintln!("{e}");
    }
    println!("{} scenario trial(s) valid, {} file(s) with errors", trials.len(), errors.len());
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
