//! `nslab dns LAB ...`: changes or reads the DNS server of a running lab, live.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use nslab_cli::live::control::{request, DnsRequest, Request};
use nslab_cli::live::{self, LabDir};

use super::exit::fail;

/// The arguments of `nslab dns`: the lab, then the DNS command's words, parsed by [`DnsArgs`]
/// once the lab's name is known (so a lab may be called `swap` or `log`).
#[derive(clap::Args)]
pub(crate) struct DnsCmdArgs {
    /// The lab.
    lab: String,
    /// What to do, and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "COMMAND")]
    args: Vec<String>,
}

/// The DNS commands, parsed after the lab's name.
#[derive(Parser)]
struct DnsArgs {
    #[command(subcommand)]
    cmd: DnsRequest,
}

/// Sends the request to the lab's daemon and prints its answer (a stream for `log
/// --follow`); exit 1 when the daemon refused, 2 for words that are no DNS command.
pub(crate) fn dns(root: &Path, a: DnsCmdArgs) -> ExitCode {
    let req = match DnsArgs::try_parse_from(std::iter::once(format!("nslab dns {}", a.lab)).chain(a.args)) {
        Ok(d) => d.cmd,
        Err(e) => e.exit(),
    };
    let lab = a.lab.as_str();
    // Another user's state root is never read: its state.json would choose what to join.
    if let Err(e) = live::check_root(root) {
        return fail(e);
    }
    let dir = LabDir::new(root, lab);
    let timeout = match &req {
        DnsRequest::Log { follow: true, .. } => None,
        _ => Some(Duration::from_secs(10)),
    };
    let res = request(&dir, &Request::Dns(req), timeout, |r| {
        if !r.text.is_empty() {
            println!("{}", r.text.trim_end());
        }
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
