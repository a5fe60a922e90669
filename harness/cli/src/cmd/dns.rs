//! `nslab dns LAB ...`: changes or reads the DNS server of a running lab, live. The words typed
//! are parsed here into the control protocol's typed request.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use nslab_cli::live::client::request;
use nslab_cli::live::protocol::{DnsRequest, Request};
use nslab_cli::live::{self, records, LabDir};

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
    cmd: DnsCommand,
}

/// What is typed after `nslab dns LAB` (these doc comments are its help).
#[derive(Subcommand)]
enum DnsCommand {
    /// Replace the records of a name and type: `set app A 192.0.2.7`, `set app host server`.
    Set {
        /// The name (relative to the scenario's zone, or whole).
        name: String,
        /// A, AAAA, CNAME, TXT, SRV, PTR, NS, MX, or `host` (a lab host's A and AAAA).
        rtype: String,
        /// The value, as in a scenario file.
        value: String,
        /// TTL in seconds (default 60).
        #[arg(long)]
        ttl: Option<u32>,
    },
    /// Point a CNAME at another target, atomically (keeps its TTL).
    Swap {
        /// The CNAME's name.
        name: String,
        /// The new target.
        target: String,
    },
    /// Delete a name's records (of one type, or all).
    Delete {
        /// The name.
        name: String,
        /// Only this type.
        rtype: Option<String>,
    },
    /// Change the TTL of a name's records of one type.
    Ttl {
        /// The name.
        name: String,
        /// The type.
        rtype: String,
        /// Seconds.
        ttl: u32,
    },
    /// Make the server misbehave: servfail, nxdomain, refused, drop, truncate, tcp-only, delay.
    Fault {
        /// The fault.
        fault: String,
        /// For one name, or `*.SUFFIX` for a name and all below it (default: every query).
        scope: Option<String>,
        /// For `delay`: how long (500ms, 2s).
        #[arg(long, value_parser = nslab_scenario::scenario::parse_duration)]
        delay: Option<Duration>,
    },
    /// Switch every fault off.
    Clear,
    /// Every record of every zone.
    Show,
    /// The query log: time, client, transport, question, answer.
    Log {
        /// Only queries for this name.
        #[arg(long)]
        name: Option<String>,
        /// Keep printing queries as they come (Ctrl-C ends it).
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

impl DnsCommand {
    /// The request the words mean, their types, values and faults read as typed values.
    fn into_request(self) -> Result<DnsRequest, String> {
        Ok(match self {
            DnsCommand::Set { name, rtype, value, ttl } => DnsRequest::Set { name, value: records::parse_value(&rtype, &value)?, ttl },
            DnsCommand::Swap { name, target } => DnsRequest::Swap { name, target },
            DnsCommand::Delete { name, rtype } => DnsRequest::Delete { name, rtype: rtype.as_deref().map(records::parse_kind).transpose()? },
            DnsCommand::Ttl { name, rtype, ttl } => DnsRequest::Ttl { name, rtype: records::parse_kind(&rtype)?, ttl },
            DnsCommand::Fault { fault, scope, delay } => {
                DnsRequest::Fault { fault: records::parse_fault(&fault, delay)?, scope: records::parse_scope(scope.as_deref()) }
            }
            DnsCommand::Clear => DnsRequest::Clear,
            DnsCommand::Show => DnsRequest::Show,
            DnsCommand::Log { name, follow } => DnsRequest::Log { name, since: 0, follow },
        })
    }
}

/// Sends the request to the lab's daemon and prints its answer (a stream for `log
/// --follow`); exit 2 for words that are no DNS command, 1 for a lab that is not up, a value
/// that is not usable, or a request the daemon refused.
pub(crate) fn dns(root: &Path, a: DnsCmdArgs) -> ExitCode {
    let cmd = match DnsArgs::try_parse_from(std::iter::once(format!("nslab dns {}", a.lab)).chain(a.args)) {
        Ok(d) => d.cmd,
        Err(e) => e.exit(),
    };
    // Another user's state root is never read: its state.json would choose what to join.
    if let Err(e) = live::check_root(root) {
        return fail(e);
    }
    let dir = LabDir::new(root, &a.lab);
    // A lab that is not up is said before what is wrong with the words.
    if let Err(e) = dir.live_state() {
        return fail(e);
    }
    let req = match cmd.into_request() {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use nslab::dns::{Fault, RecordKind, RecordValue};
    use nslab_cli::live::protocol::Scope;

    use super::*;

    fn words(w: &[&str]) -> Result<DnsRequest, String> {
        let args = DnsArgs::try_parse_from(std::iter::once("nslab dns lab").chain(w.iter().copied())).map_err(|e| e.to_string())?;
        args.cmd.into_request()
    }

    #[test]
    fn typed_words_become_typed_requests() {
        DnsArgs::command().debug_assert();
        assert_eq!(
            words(&["set", "app", "aaaa", "2001:db8::7", "--ttl", "5"]),
            Ok(DnsRequest::Set { name: "app".into(), value: RecordValue::Aaaa("2001:db8::7".parse().unwrap()), ttl: Some(5) })
        );
        assert_eq!(
            words(&["fault", "delay", "*.example.test", "--delay", "2s"]),
            Ok(DnsRequest::Fault { fault: Fault::Delay(Duration::from_secs(2)), scope: Scope::Below("example.test".into()) })
        );
        assert_eq!(words(&["delete", "app"]), Ok(DnsRequest::Delete { name: "app".into(), rtype: None }));
        assert_eq!(words(&["ttl", "app", "cname", "1"]), Ok(DnsRequest::Ttl { name: "app".into(), rtype: RecordKind::Cname, ttl: 1 }));
        assert_eq!(words(&["log", "-f"]), Ok(DnsRequest::Log { name: None, since: 0, follow: true }));
        assert_eq!(words(&["ttl", "app", "mx", "5"]), Ok(DnsRequest::Ttl { name: "app".into(), rtype: RecordKind::Mx, ttl: 5 }));
        assert_eq!(words(&["ttl", "app", "hinfo", "5"]).map_err(|e| e.contains("not a record type")), Err(true));
    }
}
