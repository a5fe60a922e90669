//! `nslab list`: the trials scenarios make, one name per line; with `--addresses`, each host's
//! addresses in each trial, computed from the address plan without building a lab.

use std::path::PathBuf;
use std::process::ExitCode;

use nslab::addr::plan::HostAddresses;
use nslab_scenario::runner;

/// The arguments of `nslab list`.
#[derive(clap::Args)]
pub(crate) struct ListArgs {
    /// Scenario files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Under each trial, one line per host: its profile, interface, IPv4, global IPv6 and
    /// link-local address ("-" for a family its profile does not give it).
    #[arg(long)]
    addresses: bool,
}

/// Prints the trials' names (and their hosts' addresses), then the errors; exit 2 when a file
/// has errors.
pub(crate) fn list(a: ListArgs) -> ExitCode {
    let (trials, mut errors) = runner::collect(&a.paths, &[]);
    for t in &trials {
        println!("{}", t.name);
        if !a.addresses {
            continue;
        }
        match t.scenario.interface_plan(t.profile) {
            Ok(hosts) => print!("{}", address_lines(&hosts)),
            Err(e) => errors.push(format!("{}: {e}", t.scenario.path.display())),
        }
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

/// `  <host>  <profile>  <interface>  ipv4 <a>  ipv6 <a>  link-local <a>%<interface>`, aligned;
/// in a routed lab (rows on several segments) each row ends with `segment <name>`.
fn address_lines(hosts: &[HostAddresses]) -> String {
    let routed = hosts.iter().any(|h| h.segment != hosts[0].segment);
    let or_dash = |a: Option<String>| a.unwrap_or_else(|| "-".to_string());
    let rows: Vec<[String; 7]> = hosts
        .iter()
        .map(|h| {
            [
                h.name.clone(),
                h.profile.name().to_string(),
                h.interface.clone(),
                or_dash(h.ipv4.map(|a| a.to_string())),
                or_dash(h.ipv6.map(|a| a.to_string())),
                or_dash(h.link_local.map(|a| format!("{a}%{}", h.interface))),
                h.segment.clone(),
            ]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
    let (w0, w1, w2, w3, w4) = (width(0), width(1), width(2), width(3), width(4));
    let mut out = String::new();
    for r in &rows {
        let mut line = format!("  {:w0$}  {:w1$}  {:w2$}  ipv4 {:w3$}  ipv6 {:w4$}  link-local {}", r[0], r[1], r[2], r[3], r[4], r[5]);
        if routed {
            let w5 = width(5);
            line = format!("{line:w$}  segment {}", r[6], w = line.len() - r[5].len() + w5);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nslab::addr::plan::SlotAddrs;
    use nslab::Profile;

    #[test]
    fn absent_families_are_dashes_and_columns_align() {
        let hosts = [
            HostAddresses::new("client", Profile::Ipv6Only, "eth0", SlotAddrs::of(23)),
            HostAddresses::new("dns", Profile::DualStack, "eth0", SlotAddrs::of(101)),
            HostAddresses::new("old", Profile::Ipv4Only, "lan0", SlotAddrs::of(45)),
        ];
        assert_eq!(
            address_lines(&hosts),
            "  client  ipv6-only   eth0  ipv4 -            ipv6 2001:db8:1::23   link-local fe80::23%eth0\n\
             \x20 dns     dual-stack  eth0  ipv4 192.0.2.101  ipv6 2001:db8:1::101  link-local fe80::101%eth0\n\
             \x20 old     ipv4-only   lan0  ipv4 192.0.2.45   ipv6 -                link-local -\n"
        );
    }
}
