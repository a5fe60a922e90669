//! The `nslab` command: a thin layer over the library (arguments, output, exit codes).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nslab::Profile;

#[derive(Parser)]
#[command(name = "nslab", version, about = "Network-namespace labs for reproducing network-environment bugs")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a lab in each profile and show what connects and what fails.
    Demo {
        /// Only these profiles (default: all).
        #[arg(long = "profile", value_parser = parse_profile)]
        profiles: Vec<Profile>,
    },
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    s.parse::<Profile>().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("NSLAB_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nslab: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let res: anyhow::Result<()> = rt.block_on(async {
        match cli.cmd {
            Cmd::Demo { profiles } => {
                let profiles = if profiles.is_empty() { Profile::ALL.to_vec() } else { profiles };
                for p in profiles {
                    let r = nslab::demo::run_profile(p).await?;
                    print!("{}", nslab::demo::render(&r));
                }
                Ok(())
            }
        }
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nslab: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
