//! What each service did in a trial, as structured facts: whether it started, how it ended,
//! the errno and cause of its failure, what it listened on, and when clients' first requests
//! reached the targets. Reports and the compatibility matrix read these, never the text.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::runner::attribution::Attribution;
use crate::runner::diagnose;
use crate::runner::target::Target;
use crate::scenario::{ExpectStart, Run, Scenario};
use nslab::addr::profile::Profile;
use nslab::host::listeners::{Family, Listener, Protocol};
use nslab::host::process::{Exit, Process};
use nslab::lab::build::Lab;

/// One listening socket of a service, read from the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerReport {
    /// `tcp` or `udp`.
    pub proto: &'static str,
    /// The socket's family: `ipv4` or `ipv6`.
    pub family: &'static str,
    /// Local address (`::`, `0.0.0.0`, `fe80::1%2`).
    pub address: String,
    /// Local port.
    pub port: u16,
    /// IPV6_V6ONLY of an IPv6 socket; absent for IPv4 sockets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v6only: Option<bool>,
    /// Whether IPv4 peers can reach it: an IPv4 socket, or an IPv6 wildcard without V6ONLY,
    /// on a host whose profile gives it IPv4 ([`Profile::has_ipv4`]).
    pub reachable_over_ipv4: bool,
    /// Whether IPv6 peers can reach it: an IPv6 socket on a host whose profile has IPv6 on
    /// ([`Profile::ipv6_enabled`]; in `ipv4-only` a `[::]` socket exists but takes no IPv6 peer)
    /// and a working IPv6 path (in `broken-ipv6` no IPv6 packet from a peer arrives).
    pub reachable_over_ipv6: bool,
}

impl ListenerReport {
    /// The socket `l` of a host in `profile`: what the socket accepts, judged against the
    /// families the profile gives the host.
    pub fn on_host(l: &Listener, profile: Profile) -> Self {
        let v6 = l.family() == Family::V6;
        let address = match l.local {
            std::net::SocketAddr::V6(a) if a.scope_id() != 0 => format!("{}%{}", a.ip(), a.scope_id()),
            a => a.ip().to_string(),
        };
        ListenerReport {
            proto: match l.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
            },
            family: if v6 { "ipv6" } else { "ipv4" },
            address,
            port: l.local.port(),
            v6only: v6.then_some(l.v6only),
            reachable_over_ipv4: l.accepts_ipv4() && profile.has_ipv4(),
            reachable_over_ipv6: v6 && profile.ipv6_enabled() && !profile.ipv6_broken(),
        }
    }
}

/// What one service did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceReport {
    /// The service's name in the scenario.
    pub name: String,
    /// Its host.
    pub host: String,
    /// The program it runs (the command's first word; `sh` for a shell script).
    pub program: String,
    /// Whether the scenario expects it to start in this profile.
    pub expected_to_start: bool,
    /// Whether it started (became ready); `None` when it was never started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
    /// Its exit code when it exited on its own before the end of the trial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Whether it was still running when the trial stopped it.
    pub running_at_end: bool,
    /// The errno of its failure (`EADDRNOTAVAIL`), from its calls or its output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    /// The cause of its failure (`address-not-on-host`), from its calls or from its output and
    /// the lab's facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The evidence: the failing call, or the output line and the lab fact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// What it listened on after the timeline (empty when it had exited or listened on nothing).
    pub listeners: Vec<ListenerReport>,
    /// For a service that started, a failed call its output shows (a partial failure, such as
    /// a server that serves IPv4 after its IPv6 bind failed): errno, cause, evidence. Read by
    /// `diagnosis` expectations; not a failure of the service, so not in the report.
    #[serde(skip)]
    pub partial: Option<(String, Option<String>, String)>,
}

/// When a client's first request reached a target, and over which family.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirstRequest {
    /// The client service.
    pub client: String,
    /// The target it reached.
    pub target: String,
    /// `ipv4` or `ipv6`: the family the request came over.
    pub family: &'static str,
    /// Seconds from the client's start to the request.
    pub after_start_s: f64,
    /// Seconds from the client's first DNS query to the request (the time to connect a user
    /// sees), when it made one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_dns_query_s: Option<f64>,
    /// How the request was known to be the client's: `service` (a built-in target saw the
    /// service's process make the connection) or `host-only` (a log target: the request came
    /// from the host's address and the service is the only one on its host).
    pub attributed: Attribution,
}

/// The addresses worth asking the kernel about when a service failed: the host's own, the ones
/// its command line names, and the one its output names with its errno.
pub fn failure_candidates(h: &nslab::host::handle::Host, argv: &[String], output: &str) -> Vec<IpAddr> {
    let facts = diagnose::HostFacts::of(h).with_argv(argv);
    let mut out: Vec<IpAddr> = facts.addrs.clone();
    out.extend(facts.hints.iter().map(|(ip, _)| *ip));
    out.extend(diagnose::from_output(output, &facts).and_then(|f| f.address));
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether a program's output shows a failed bind or connect (an errno in a form programs print).
pub fn shows_failed_call(h: &nslab::host::handle::Host, argv: &[String], output: &str) -> bool {
    diagnose::from_output(output, &diagnose::HostFacts::of(h).with_argv(argv)).is_some()
}

/// The program a service runs: its command's first word, without its directory.
pub fn program_of(run: &Run) -> String {
    match run {
        Run::Command(argv) => argv.first().map(|t| t.source().rsplit('/').next().unwrap_or_default().to_string()).unwrap_or_default(),
        Run::Shell(_) => "sh".into(),
    }
}

/// What each service did. `started` says which started services became ready; `exits` are
/// their exits before the trial stopped them; `listeners` what they listened on; `argv` their
/// rendered command lines; `kernel` what the kernel said about the addresses involved when one
/// failed to start (see [`crate::runner::evidence::kernel_addresses`]).
#[allow(clippy::too_many_arguments)]
pub async fn services(
    s: &Scenario,
    profile: nslab::addr::profile::Profile,
    lab: &Lab,
    procs: &BTreeMap<String, Process>,
    started: &BTreeMap<String, bool>,
    exits: &BTreeMap<String, Option<Exit>>,
    listeners: &BTreeMap<String, Vec<Listener>>,
    argv: &BTreeMap<String, Vec<String>>,
    kernel: &BTreeMap<String, Vec<(IpAddr, bool)>>,
) -> Vec<ServiceReport> {
    let mut out = Vec::new();
    for def in s.services_for(profile) {
        let exit = exits.get(&def.name).cloned().flatten();
        // A host may have its own profile, overriding the trial's.
        let host_profile = s.host(&def.host).and_then(|h| h.profile).unwrap_or(profile);
        let mut r = ServiceReport {
            name: def.name.clone(),
            host: def.host.clone(),
            program: program_of(&def.run),
            expected_to_start: def.expect_start_for(profile) == ExpectStart::Success,
            started: started.get(&def.name).copied(),
            exit_code: exit.as_ref().and_then(Exit::code),
            running_at_end: procs.contains_key(&def.name) && exit.is_none(),
            listeners: listeners.get(&def.name).map(|ls| ls.iter().map(|l| ListenerReport::on_host(l, host_profile)).collect()).unwrap_or_default(),
            ..Default::default()
        };
        let failed = r.started == Some(false) || exit.as_ref().is_some_and(|e| !e.success());
        if let (true, Some(p)) = (failed, procs.get(&def.name)) {
            let host = lab.host(&def.host).ok();
            let traced = if def.trace { crate::runner::evidence::findings(lab, &def.host, p).await.ok().and_then(|f| f.into_iter().next()) } else { None };
            if let Some(f) = traced {
                r.errno = diagnose::errno_in_call(&f.call).map(str::to_string);
                r.cause = Some(f.cause.name().to_string());
                r.evidence = Some(f.call);
            } else if let Some(h) = host {
                let facts = diagnose::HostFacts::of(h)
                    .with_argv(argv.get(&def.name).map(Vec::as_slice).unwrap_or_default())
                    .with_kernel(kernel.get(&def.name).map(Vec::as_slice).unwrap_or_default());
                if let Some(f) = diagnose::from_output(&p.output(), &facts) {
                    r.errno = Some(f.errno.to_string());
                    r.cause = f.cause.map(|c| c.name().to_string());
                    r.evidence = Some(f.evidence);
                }
            }
        } else if let (Some(p), Some(h), false) = (procs.get(&def.name), lab.host(&def.host).ok(), def.trace) {
            let facts = diagnose::HostFacts::of(h)
                .with_argv(argv.get(&def.name).map(Vec::as_slice).unwrap_or_default())
                .with_kernel(kernel.get(&def.name).map(Vec::as_slice).unwrap_or_default());
            r.partial = diagnose::from_output(&p.output(), &facts).map(|f| (f.errno.to_string(), f.cause.map(|c| c.name().to_string()), f.evidence));
        }
        out.push(r);
    }
    out
}

/// For every target and every client service that sent it requests after it started: the first
/// of them, its family and how long it took. A built-in target says which service made each
/// connection, so only the service's own requests count (a daemon on the client's host is not
/// a client); a log target knows the address only, so a host's requests are credited to a
/// service only when it is the only service started on that host, marked `host-only`.
pub fn first_requests(
    s: &Scenario,
    lab: &Lab,
    clock: &crate::runner::clock::LabClock,
    procs: &BTreeMap<String, Process>,
    targets: &BTreeMap<String, Target>,
) -> Vec<FirstRequest> {
    let mut out = Vec::new();
    let log = lab.dns().map(|d| clock.queries(d.log())).unwrap_or_default();
    for (name, p) in procs {
        let Some(def) = s.service(name) else { continue };
        let Ok(host) = lab.host(&def.host) else { continue };
        let addrs: Vec<IpAddr> = host.addrs().into_iter().chain(host.link_local().map(IpAddr::V6)).collect();
        let alone = procs.keys().filter(|n| s.service(n).is_some_and(|d| d.host == def.host)).count() == 1;
        let (started, begun) = (clock.started_at(p), clock.begun_at(p));
        let end = clock.exit(p).map(|e| e.at).unwrap_or(Duration::MAX);
        for (tname, t) in targets {
            let attributed = if t.service().is_none() { Attribution::Service } else { Attribution::HostOnly };
            if attributed == Attribution::HostOnly && !alone {
                continue;
            }
            let mine = t.requests_from(&addrs).into_iter().filter(|r| attributed == Attribution::HostOnly || r.service.as_deref() == Some(name.as_str()));
            let Some(r) = mine.filter(|r| r.at() >= begun && r.at() <= end).min_by_key(|r| r.at_us) else { continue };
            let query = log.iter().filter(|e| e.at >= begun && e.at <= r.at() && addrs.contains(&e.client.ip().to_canonical())).map(|e| e.at).min();
            out.push(FirstRequest {
                client: name.clone(),
                target: tname.clone(),
                family: if Family::of(&r.client.ip()) == Family::V4 { "ipv4" } else { "ipv6" },
                after_start_s: r.at().saturating_sub(started).as_secs_f64(),
                after_dns_query_s: query.map(|q| (r.at() - q).as_secs_f64()),
                attributed,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(addr: &str, v6only: bool) -> Listener {
        Listener { protocol: Protocol::Tcp, local: addr.parse().unwrap(), v6only, inode: 1 }
    }

    fn reach(addr: &str, v6only: bool, p: Profile) -> (bool, bool) {
        let r = ListenerReport::on_host(&listener(addr, v6only), p);
        (r.reachable_over_ipv4, r.reachable_over_ipv6)
    }

    #[test]
    fn reachability_is_judged_against_the_families_of_the_hosts_profile() {
        // The case: [::] with V6ONLY=1 on ipv4-only takes no peer at all (IPv6 is off).
        assert_eq!(reach("[::]:80", true, Profile::Ipv4Only), (false, false));
        assert_eq!(reach("[::]:80", true, Profile::DualStack), (false, true));
        // A dual [::] socket: IPv4 only where the host has IPv4, IPv6 only where IPv6 is on.
        assert_eq!(reach("[::]:80", false, Profile::Ipv4Only), (true, false));
        assert_eq!(reach("[::]:80", false, Profile::NoIpv6), (true, false));
        assert_eq!(reach("[::]:80", false, Profile::DualStack), (true, true));
        assert_eq!(reach("[::]:80", false, Profile::Ipv6Only), (false, true));
        // 0.0.0.0 in ipv6-only: no IPv4 peer exists (only 127.0.0.1 in the host).
        assert_eq!(reach("0.0.0.0:80", false, Profile::Ipv6Only), (false, false));
        assert_eq!(reach("0.0.0.0:80", false, Profile::Ipv4Only), (true, false));
        // broken-ipv6: the socket takes IPv6, but no IPv6 packet of a peer reaches the host.
        assert_eq!(reach("[::]:80", false, Profile::BrokenIpv6), (true, false));
        assert_eq!(reach("[::]:80", true, Profile::BrokenIpv6), (false, false));
    }
}
