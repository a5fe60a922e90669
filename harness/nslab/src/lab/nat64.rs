//! The NAT64 router of `ipv6-only-nat64` labs: tayga in a `nat64` host translating a NAT64
//! prefix to a pool of IPv4 addresses, and the routes that lead to it.
//!
//! The prefix is a network-specific one inside the documentation range, not the well-known
//! 64:ff9b::/96: RFC 6052 forbids the well-known prefix for non-global IPv4 addresses such as the
//! lab's 192.0.2.0/24, and with it tayga did not translate (seen here: connects failed at once).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::addr::profile::Profile;
use crate::error::{Error, Result};
use crate::host::handle::Host;
use crate::host::process::{Command, Process};
use crate::lab::spec::HostSpec;

pub use crate::addr::plan::NAT64_HOST;
/// The NAT64 prefix (a /96 network-specific prefix, RFC 6052), also the lab's DNS64 prefix.
pub const PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x6464, 0, 0, 0, 0, 0);
/// IPv4 pool the translated clients appear from (TEST-NET-2).
pub const POOL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 0);
/// tayga's own IPv4 address, inside the pool.
const TAYGA_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// tayga's own IPv6 address (for the ICMP it sends), outside the lab segment.
const TAYGA_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0, 1);

/// The router host's spec: dual-stack, forwarding both families in its own namespace.
pub(crate) fn router_spec() -> HostSpec {
    HostSpec::new(NAT64_HOST).profile(Profile::DualStack).sysctl("net.ipv4.ip_forward", "1").sysctl("net.ipv6.conf.all.forwarding", "1")
}

fn nl_err(host: &Host, op: String) -> impl FnOnce(rtnetlink::Error) -> Error + '_ {
    move |source| Error::Netlink { op, what: format!("host {}", host.name()), source }
}

/// Starts tayga in the router and routes the lab through it: IPv6-only hosts send [`PREFIX`]/96
/// to the router; IPv4 hosts send the pool back to it. Returns the running tayga.
pub(crate) async fn setup(router: &Host, hosts: &[Host]) -> Result<Process> {
    let dir = router.dir().join("tayga");
    crate::os::fsafe::artifact_dir(&dir).map_err(|e| Error::File { op: "create", path: dir.clone(), source: e.into() })?;
    let conf = router.dir().join("tayga.conf");
    let text = format!(
        "# written by nslab: NAT64 for this lab\ntun-device nat64\nipv4-addr {TAYGA_V4}\nipv6-addr {TAYGA_V6}\nprefix {PREFIX}/96\ndynamic-pool {POOL}/24\ndata-dir {}\n",
        dir.display()
    );
    crate::os::fsafe::write_artifact(&conf, text.as_bytes(), 0o600).map_err(|e| Error::File { op: "write", path: conf.clone(), source: e.into() })?;
    let conf_s = conf.display().to_string();
    // The tun device is created inside the router's namespace and dies with it.
    let mk = router.run(Command::new("tayga").args(["--mktun", "--config", &conf_s]).name("tayga-mktun"), Duration::from_secs(10)).await?;
    if !mk.exit().is_some_and(|e| e.success()) {
        return Err(Error::Invalid { what: format!("tayga --mktun failed in host {NAT64_HOST}: {}", mk.output().trim()) });
    }
    let nl = &router.inner.nl;
    let tun = nl.index_of("nat64").await.map_err(nl_err(router, "look up nat64".into()))?;
    nl.set_up(tun, true).await.map_err(nl_err(router, "set nat64 up".into()))?;
    nl.add_route(IpAddr::V4(POOL), 24, None, tun).await.map_err(nl_err(router, format!("route {POOL}/24 to nat64")))?;
    nl.add_route(IpAddr::V6(PREFIX), 96, None, tun).await.map_err(nl_err(router, format!("route {PREFIX}/96 to nat64")))?;
    let tayga = router.spawn(Command::new("tayga").args(["-d", "--config", &conf_s]).name("tayga")).await?;
    let (r4, r6) = (router.ipv4(), router.ipv6());
    for h in hosts.iter().filter(|h| h.name() != router.name()) {
        let (nl, idx) = (&h.inner.nl, h.inner.ifindex);
        if h.profile().uses_nat64() {
            if let Some(gw) = r6 {
                nl.add_route(IpAddr::V6(PREFIX), 96, Some(IpAddr::V6(gw)), idx).await.map_err(nl_err(h, format!("route {PREFIX}/96 via {gw}")))?;
            }
        } else if let (Some(_), Some(gw)) = (h.ipv4(), r4) {
            nl.add_route(IpAddr::V4(POOL), 24, Some(IpAddr::V4(gw)), idx).await.map_err(nl_err(h, format!("route {POOL}/24 via {gw}")))?;
        }
    }
    Ok(tayga)
}
