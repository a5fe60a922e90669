//! `nslab demo`: a lab in each profile, and what a program in it can connect to.

use std::process::ExitCode;

use futures::StreamExt;
use nslab::Profile;
use tokio::runtime::Runtime;

use super::values::parse_profile;

/// The arguments of `nslab demo`.
#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// Only these profiles (default: all).
    #[arg(long = "profile", value_parser = parse_profile)]
    profiles: Vec<Profile>,
}

/// Builds every profile's lab at once and prints each report in order as it is ready.
pub(crate) fn demo(a: DemoArgs, rt: &Runtime) -> ExitCode {
    let profiles = if a.profiles.is_empty() { Profile::ALL.to_vec() } else { a.profiles };
    let res: nslab::Result<()> = rt.block_on(async {
        let t = std::time::Instant::now();
        let n = profiles.len();
        let mut runs: futures::stream::FuturesOrdered<_> = profiles.into_iter().map(nslab_cli::demo::run_profile).collect();
        while let Some(r) = runs.next().await {
            print!("{}", nslab_cli::demo::render(&r?));
        }
        println!("{n} profile(s) in {:.2} s", t.elapsed().as_secs_f64());
        Ok(())
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nslab: error: {}", nslab::error::chain(&e));
            ExitCode::FAILURE
        }
    }
}
