//! `nslab status`: the running labs, their hosts, addresses, namespaces, DNS and services.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use nslab_cli::live::client::request;
use nslab_cli::live::protocol::Request;
use nslab_cli::live::{self, LabDir, LabState};

use super::exit::fail;
use crate::paint::Paint;

/// The arguments of `nslab status`.
#[derive(clap::Args)]
pub(crate) struct StatusArgs {
    /// Only this lab.
    lab: Option<String>,
    /// As JSON (the labs' state files).
    #[arg(long)]
    json: bool,
}

/// Prints each lab (or their state files as JSON); exit 1 when a lab's daemon is dead, or the
/// one lab asked for is not up.
pub(crate) fn status(root: &Path, a: StatusArgs, paint: &Paint) -> ExitCode {
    let only = a.lab.as_deref();
    // Another user's state root is never read: its state.json would choose what to join.
    if let Err(e) = live::check_root(root) {
        return fail(e);
    }
    let labs: Vec<LabDir> = match only {
        Some(n) => vec![LabDir::new(root, n)],
        None => live::labs(root),
    };
    let mut states = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for lab in &labs {
        match lab.live_state() {
            Ok(st) => states.push((lab, st)),
            Err(e @ live::LiveError::Dead { .. }) => {
                eprintln!("nslab: {e}");
                code = ExitCode::FAILURE;
            }
            Err(e) if only.is_some() => return fail(e),
            // Still coming up, or left by a daemon that died while building: gc says.
            Err(_) if lab.alive() => eprintln!("nslab: lab {} is coming up", lab.name),
            Err(_) => eprintln!("nslab: lab {} left a state directory but never came up; `nslab gc` removes it", lab.name),
        }
    }
    if a.json {
        let all: Vec<&LabState> = states.iter().map(|(_, s)| s).collect();
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return code;
    }
    if states.is_empty() && only.is_none() {
        println!("no lab is up (state in {})", root.display());
    }
    for (i, (lab, st)) in states.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let mut services = String::new();
        let _ = request(lab, &Request::Status, Some(Duration::from_secs(3)), |r| services.push_str(&r.text));
        super::lab_view::print_lab(st, Some(&services), paint);
    }
    code
}
