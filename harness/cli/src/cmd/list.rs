//! `nslab list`: the trials scenarios make, one name per line.

use std::path::PathBuf;
use std::process::ExitCode;

use nslab_scenario::runner;

/// The arguments of `nslab list`.
#[derive(clap::Args)]
pub(crate) struct ListArgs {
    /// Scenario files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// Prints the trials' names, then the errors; exit 2 when a file has errors.
pub(crate) fn list(a: ListArgs) -> ExitCode {
    let (trials, errors) = runner::collect(&a.paths, &[]);
    for t in &trials {
        println!("{}", t.name);
    }
    for e in &errors {
        eprintln!("{e}");
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
