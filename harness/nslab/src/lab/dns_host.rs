//! The lab's DNS service: which host serves it, the resolv.conf every host gets, and starting
//! the embedded authoritative server on sockets bound inside the DNS host.

use std::net::{SocketAddr, SocketAddrV6};

use crate::addr::plan::SlotAddrs;
use crate::addr::plan::LAB_DOMAIN;
use crate::addr::profile::Profile;
use crate::dns::{Dns64, DnsOptions, DnsServer, DnsSockets, HostAddrs, LogFilter, RecordValue, Soa, Zone};
use crate::error::{Error, Result};
use crate::host::handle::Host;

pub use crate::addr::plan::DNS_HOST;

/// The lab's DNS: zones, options, and where it runs. Given to [`crate::LabBuilder::dns`].
#[derive(Debug, Clone, Default)]
pub struct LabDns {
    pub(crate) zones: Vec<Zone>,
    pub(crate) dns64: Option<Dns64>,
    pub(crate) host: Option<String>,
    pub(crate) root: bool,
}

impl LabDns {
    /// A DNS service with only the automatic `lab.test` zone (every lab host by name).
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `zone` too.
    pub fn zone(mut self, zone: Zone) -> Self {
        self.zones.push(zone);
        self
    }

    /// Synthesizes AAAA records from A records (RFC 6147) for names without AAAA.
    pub fn dns64(mut self, d: Dns64) -> Self {
        self.dns64 = Some(d);
        self
    }

    /// Runs the server in this declared host instead of adding a dual-stack host `dns`.
    pub fn on_host(mut self, name: impl Into<String>) -> Self {
        self.host = Some(name.into());
        self
    }

    /// Serves the root zone "." too: its SOA and NS naming the DNS host (`dns.lab.test.`, with its
    /// addresses as glue), so a resolver given the DNS host as its only root hint primes and
    /// iterates from the root (nslab::lab::resolver's `Recurse`), asking the same server for
    /// each zone below it.
    pub fn serve_root(mut self) -> Self {
        self.root = true;
        self
    }

    pub(crate) fn host_name(&self) -> &str {
        self.host.as_deref().unwrap_or(DNS_HOST)
    }

    /// Search list of every host: the zones' origins, then the lab domain.
    pub(crate) fn search(&self) -> Vec<String> {
        let mut s: Vec<String> = self.zones.iter().map(|z| z.origin.trim_end_matches('.').to_string()).collect();
        if !s.iter().any(|o| o == LAB_DOMAIN) {
            s.push(LAB_DOMAIN.to_string());
        }
        s
    }
}

impl LogFilter {
    /// Only queries sent by `host`: from any of its addresses (IPv4, global IPv6, link-local).
    pub fn host(self, host: &Host) -> Self {
        self.client_ips(host.addrs().into_iter().chain(host.link_local().map(Into::into)))
    }
}

/// The nameserver lines of a host with `profile` and lab interface `ifname`: the DNS host's
/// addresses in the families that host can use (IPv4 first on dual-stack, as cloud resolvers are).
///
/// # Errors
///
/// A message naming both hosts and profiles when they share no address family: the host could
/// never reach the lab's DNS server, and a resolv.conf pointing elsewhere would hide that.
pub(crate) fn nameservers(
    server: &SlotAddrs,
    server_name: &str,
    server_profile: Profile,
    host: &str,
    profile: Profile,
    ifname: &str,
) -> std::result::Result<Vec<String>, String> {
    let mut v = Vec::new();
    if profile.has_ipv4() && server_profile.has_ipv4() {
        v.push(server.v4.to_string());
    }
    if profile.has_global_ipv6() && server_profile.has_global_ipv6() {
        v.push(server.v6.to_string());
    }
    if v.is_empty() && profile.has_link_local() && server_profile.has_link_local() {
        v.push(format!("{}%{ifname}", server.link_local));
    }
    if v.is_empty() {
        return Err(format!(
            "host {host:?} (profile {profile}) shares no address family with the DNS host {server_name:?} (profile {server_profile}), \
             so it could not reach the lab's DNS server; give one of them a profile with a family in common (or run the server on another host)"
        ));
    }
    Ok(v)
}

/// Binds UDP and TCP port 53 on every address of `host` and starts the server.
pub(crate) async fn start(cfg: &LabDns, lab: &str, host: &Host, hosts: &[Host], epoch: std::time::Instant) -> Result<DnsServer> {
    // Every interface's: the DNS host of a routed lab is on every segment.
    let mut addrs: Vec<SocketAddr> = host.interfaces().iter().flat_map(|i| i.addrs()).map(|a| SocketAddr::new(a, 53)).collect();
    for i in host.interfaces() {
        if let Some(ll) = i.link_local {
            addrs.push(SocketAddr::V6(SocketAddrV6::new(ll, 53, 0, i.ifindex)));
        }
    }
    let mut sockets = DnsSockets::default();
    for a in addrs {
        sockets.udp.push(host.bind_udp(a).await?);
        sockets.tcp.push(host.bind_tcp(a).await?);
    }
    let mut options = DnsOptions::new(epoch);
    options.hosts = hosts.iter().map(|h| (h.name().to_string(), h.addrs())).collect::<HostAddrs>();
    options.dns64 = cfg.dns64;
    let mut zones = cfg.zones.clone();
    if !zones.iter().any(|z| z.origin.trim_end_matches('.') == LAB_DOMAIN) {
        zones.push(lab_zone(host.name(), hosts));
    }
    if cfg.root && !zones.iter().any(|z| z.origin == ".") {
        zones.push(root_zone(host.name()));
    }
    DnsServer::start(sockets, zones, options).map_err(|source| Error::Dns { lab: lab.to_string(), source })
}

/// The root zone of a lab whose resolvers recurse: NS naming the DNS host, with its addresses as
/// glue. The lab zones need no delegation records: the same server is authoritative for them and
/// answers their names itself (its catalog picks the closest zone), while a delegation record
/// for `lab.test.` in "." would leave the glue below a zone cut, and hickory then sends the
/// priming answer without it (Knot Resolver cannot reach its root then; measured).
fn root_zone(dns_host: &str) -> Zone {
    let ns = format!("{dns_host}.{LAB_DOMAIN}.");
    Zone::new(".", Soa::new(ns.clone(), format!("hostmaster.{LAB_DOMAIN}."))).record("@", 86400, RecordValue::Ns(ns.clone())).record(
        ns,
        86400,
        RecordValue::Host(dns_host.to_string()),
    )
}

/// The automatic `lab.test` zone: every host by name.
fn lab_zone(dns_host: &str, hosts: &[Host]) -> Zone {
    let mut z = Zone::new(LAB_DOMAIN, Soa::new(format!("{dns_host}.{LAB_DOMAIN}."), format!("hostmaster.{LAB_DOMAIN}."))).record(
        "@",
        3600,
        RecordValue::Ns(format!("{dns_host}.{LAB_DOMAIN}.")),
    );
    for h in hosts.iter().filter(|h| !h.addrs().is_empty()) {
        z = z.record(h.name(), 60, RecordValue::Host(h.name().to_string()));
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> SlotAddrs {
        crate::addr::plan::assign_slots(["dns"]).expect("one slot").remove("dns").expect("dns has a slot")
    }

    #[test]
    fn nameservers_follow_the_families_both_hosts_have() {
        let s = slot();
        let ns = |p: Profile| nameservers(&s, "dns", Profile::DualStack, "client", p, "eth0");
        assert_eq!(ns(Profile::Ipv4Only).unwrap(), vec![s.v4.to_string()]);
        assert_eq!(ns(Profile::DualStack).unwrap(), vec![s.v4.to_string(), s.v6.to_string()]);
        assert_eq!(ns(Profile::Ipv6Only).unwrap(), vec![s.v6.to_string()]);
        assert_eq!(ns(Profile::LinkLocalOnly).unwrap(), vec![format!("{}%eth0", s.link_local)]);
        assert_eq!(ns(Profile::NoIpv6).unwrap(), vec![s.v4.to_string()]);
        assert_eq!(ns(Profile::Ipv6OnlyNat64).unwrap(), vec![s.v6.to_string()]);
    }

    #[test]
    fn a_host_with_no_family_in_common_with_the_dns_host_is_an_error() {
        let s = slot();
        let e = nameservers(&s, "resolver", Profile::Ipv4Only, "client", Profile::Ipv6Only, "eth0").unwrap_err();
        assert_eq!(
            e,
            "host \"client\" (profile ipv6-only) shares no address family with the DNS host \"resolver\" (profile ipv4-only), \
             so it could not reach the lab's DNS server; give one of them a profile with a family in common (or run the server on another host)"
        );
        assert!(nameservers(&s, "resolver", Profile::Ipv6Only, "client", Profile::NoIpv6, "eth0").is_err());
    }
}
