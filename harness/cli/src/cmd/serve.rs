//! `nslab __serve`: the daemon of `nslab up` (started by it, in its own session; not for
//! direct use).

use std::path::PathBuf;
use std::process::ExitCode;

use nslab::Profile;
use nslab_cli::live::{self, LabDir};
use tokio::runtime::Runtime;

use super::exit::fail;
use super::values::parse_profile;

/// The arguments `nslab up` gives its daemon.
#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    #[arg(long)]
    name: String,
    #[arg(long)]
    state_root: PathBuf,
    #[arg(long)]
    scenario: PathBuf,
    #[arg(long, value_parser = parse_profile)]
    profile: Profile,
    #[arg(long)]
    timeline: bool,
}

/// Builds the lab and serves it until it is brought down; exit 1 with the cause when it
/// could not come up or came down with an error (the daemon's log holds it).
pub(crate) fn serve(a: ServeArgs, rt: &Runtime) -> ExitCode {
    let lab = LabDir::new(&a.state_root, &a.name);
    let artifacts_root = nslab::lab::spec::default_artifacts_root().join("up").join(&a.name);
    let spec = live::daemon::UpSpec { lab, state_root: a.state_root, scenario: a.scenario, profile: a.profile, timeline: a.timeline, artifacts_root };
    match rt.block_on(live::daemon::serve(spec)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(nslab::error::chain(&e)),
    }
}
