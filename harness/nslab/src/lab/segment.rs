//! Routed labs: segments (one bridge each, with its own prefixes, profile and MTU), hosts on
//! several of them, and router hosts between them, with the routes every host needs computed
//! when the lab is built, a missing route per family and the PMTUD black hole preset.
//!
//! A lab that declares no segment has one, `lan`, and is built exactly as before: this module
//! only adds to a lab that asks for it.
//!
//! ```no_run
//! # async fn demo() -> nslab::Result<()> {
//! use nslab::lab::segment::{RouterSpec, SegmentSpec};
//! use nslab::{HostSpec, Lab, Profile};
//! let lab = Lab::builder()
//!     .segment(SegmentSpec::new("lan").profile(Profile::Ipv4Only))
//!     .segment(SegmentSpec::new("dc").profile(Profile::DualStack).mtu(1400))
//!     .host(HostSpec::new("client").segments(["lan"]))
//!     .host(HostSpec::new("r1").segments(["lan", "dc"]).router(RouterSpec::new()))
//!     .host(HostSpec::new("server").segments(["dc"]))
//!     .build()
//!     .await?;
//! lab.teardown().await.ok();
//! # Ok(()) }
//! ```

use std::net::IpAddr;
use std::time::Duration;

pub use crate::addr::plan::segment_prefixes as prefixes;
use crate::addr::plan::{SlotAddrs, IPV4_PREFIX, IPV6_PREFIX};
use crate::addr::profile::Profile;
use crate::error::{Error, Result};
use crate::host::handle::Host;
pub use crate::host::interfaces::{Interface, RouteState, RouterSpec};
use crate::host::listeners::Family;
use crate::host::process::Command;
use crate::lab::spec::HostSpec;

/// Most segments a lab holds: IPv4 has three documentation /24s (RFC 5737).
pub const MAX_SEGMENTS: usize = 3;

/// Name of the one segment of a lab that declares none.
pub const DEFAULT_SEGMENT: &str = "lan";

/// Smallest MTU a segment may have (the IPv4 minimum, RFC 791); IPv6 needs [`IPV6_MIN_MTU`].
pub const MIN_MTU: u32 = 68;
/// Smallest MTU of a link that carries IPv6 (RFC 8200).
pub const IPV6_MIN_MTU: u32 = 1280;
/// Largest MTU a segment may have.
pub const MAX_MTU: u32 = 65535;

/// Priority of the policy rules that make a router's route missing (before the main table).
const MISSING_RULE_PRIORITY: u32 = 100;
/// The nftables table of the PMTUD black hole preset, in the router's own namespace.
const PMTUD_TABLE: &str = "nslab_pmtud";
/// Its counter of dropped Packet Too Big / fragmentation-needed messages.
const PMTUD_COUNTER: &str = "ptb_dropped";

/// One segment: a switch (bridge) of its own, its prefixes from its declaration index, and
/// optionally its own profile and MTU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSpec {
    pub(crate) name: String,
    pub(crate) profile: Option<Profile>,
    pub(crate) mtu: Option<u32>,
}

impl SegmentSpec {
    /// A segment with the lab's profile and the kernel's default MTU (1500).
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), profile: None, mtu: None }
    }

    /// The families its hosts have on it (default: the lab's profile); a host's own profile
    /// still overrides it.
    pub fn profile(mut self, p: Profile) -> Self {
        self.profile = Some(p);
        self
    }

    /// The MTU of its bridge and of every veth on it (both ends).
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The built interface of planned interface `p`, with its index in the host's namespace.
pub(crate) fn interface(p: &PlannedIface, ifindex: u32) -> Interface {
    Interface {
        name: p.name.clone(),
        segment: p.segment_name.clone(),
        segment_index: p.segment,
        profile: p.profile,
        ipv4: p.profile.has_ipv4().then_some(p.addrs.v4),
        ipv6: p.profile.has_global_ipv6().then_some(p.addrs.v6),
        link_local: p.profile.has_link_local().then_some(p.addrs.link_local),
        mtu: p.mtu,
        ifindex,
    }
}

/// One interface a host will get, decided before anything is built.
#[derive(Debug, Clone)]
pub(crate) struct PlannedIface {
    pub(crate) name: String,
    pub(crate) segment: usize,
    pub(crate) segment_name: String,
    pub(crate) profile: Profile,
    pub(crate) addrs: SlotAddrs,
    pub(crate) mtu: Option<u32>,
}

impl PlannedIface {
    /// The switch-side port of this interface: `p<slot>` for the primary (as in a one-segment
    /// lab), `p<slot>s<k>` for the others.
    pub(crate) fn port(&self, slot: u8, primary: bool) -> String {
        if primary {
            format!("p{slot}")
        } else {
            format!("p{slot}s{}", self.segment)
        }
    }
}

/// The segments of a lab with their effective profile: the declared ones, or the implicit `lan`.
pub(crate) fn effective(segments: &[SegmentSpec], lab_profile: Profile) -> Vec<(String, Profile, Option<u32>)> {
    if segments.is_empty() {
        return vec![(DEFAULT_SEGMENT.to_string(), lab_profile, None)];
    }
    segments.iter().map(|s| (s.name.clone(), s.profile.unwrap_or(lab_profile), s.mtu)).collect()
}

/// Checks the lab's segments (names, count, MTU against the families on them) and its hosts'
/// use of them; `nat64` says whether a host uses the NAT64 router.
pub(crate) fn check(lab: &str, segments: &[SegmentSpec], hosts: &[HostSpec], lab_profile: Profile, nat64: bool) -> std::result::Result<(), String> {
    if segments.len() > MAX_SEGMENTS {
        return Err(format!(
            "lab {lab} declares {} segments; expected at most {MAX_SEGMENTS} (IPv4 has three documentation /24 prefixes: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24)",
            segments.len()
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for s in segments {
        crate::lab::spec::check_name("segment", &s.name)?;
        if !seen.insert(s.name.as_str()) {
            return Err(format!("segment {:?} is declared twice in lab {lab}", s.name));
        }
        if let Some(m) = s.mtu {
            if !(MIN_MTU..=MAX_MTU).contains(&m) {
                return Err(format!("segment {:?} has MTU {m}; expected {MIN_MTU} to {MAX_MTU}", s.name));
            }
        }
    }
    if segments.len() > 1 && nat64 {
        return Err(format!(
            "lab {lab} has {} segments and a host with profile {}; NAT64 works in a one-segment lab only (tayga's IPv4 pool is 198.51.100.0/24, the second segment's prefix)",
            segments.len(),
            Profile::Ipv6OnlyNat64
        ));
    }
    let eff = effective(segments, lab_profile);
    let names: Vec<&str> = eff.iter().map(|(n, _, _)| n.as_str()).collect();
    for h in hosts {
        let mut on = std::collections::BTreeSet::new();
        for s in &h.segments {
            if !names.contains(&s.as_str()) {
                return Err(format!("host {:?} joins segment {s:?}, which lab {lab} does not declare; expected one of {}", h.name, names.join(", ")));
            }
            if !on.insert(s.as_str()) {
                return Err(format!("host {:?} joins segment {s:?} twice", h.name));
            }
        }
        if h.router.is_some() && h.segments.len() < 2 {
            return Err(format!(
                "host {:?} is a router on {} segment{}; a router joins at least two segments (segments = [\"a\", \"b\"])",
                h.name,
                h.segments.len(),
                if h.segments.len() == 1 { "" } else { "s" }
            ));
        }
        for (i, s) in h.segments.iter().enumerate().skip(1) {
            let n = format!("eth{i}");
            if n == h.interface {
                return Err(format!(
                    "host {:?} names its primary interface {n:?}, the name its interface on segment {s:?} gets; expected another name",
                    h.name
                ));
            }
        }
    }
    // An MTU below IPv6's minimum on a segment where some host has IPv6.
    for (k, (name, _, mtu)) in eff.iter().enumerate() {
        let Some(m) = *mtu else { continue };
        if m >= IPV6_MIN_MTU {
            continue;
        }
        for h in hosts {
            let segs = host_segments(h, &eff);
            if segs.contains(&k) && h.profile.unwrap_or(eff[k].1).ipv6_enabled() {
                return Err(format!(
                    "segment {name:?} has MTU {m} and host {:?} has IPv6 on it (profile {}); IPv6 needs an MTU of at least {IPV6_MIN_MTU} (RFC 8200)",
                    h.name,
                    h.profile.unwrap_or(eff[k].1)
                ));
            }
        }
    }
    Ok(())
}

/// The segment indexes a host is on: the ones it names, or the first segment.
fn host_segments(h: &HostSpec, eff: &[(String, Profile, Option<u32>)]) -> Vec<usize> {
    if h.segments.is_empty() {
        return vec![0];
    }
    h.segments.iter().filter_map(|s| eff.iter().position(|(n, _, _)| n == s)).collect()
}

/// The interfaces of a host with `slot`, primary first (call after [`check`]).
pub(crate) fn plan_ifaces(h: &HostSpec, segments: &[SegmentSpec], lab_profile: Profile, slot: u8) -> Vec<PlannedIface> {
    let eff = effective(segments, lab_profile);
    host_segments(h, &eff)
        .into_iter()
        .enumerate()
        .map(|(i, k)| PlannedIface {
            name: if i == 0 { h.interface.clone() } else { format!("eth{i}") },
            segment: k,
            segment_name: eff[k].0.clone(),
            profile: h.profile.unwrap_or(eff[k].1),
            addrs: SlotAddrs::on_segment(slot, k),
            mtu: eff[k].2,
        })
        .collect()
}

/// The routes of every host of a routed lab: to each segment it is not on, through the first
/// router of a shortest path over the segment graph, per family where the host and that router
/// both have it on their shared segment. Returns (host index, destination, prefix, gateway,
/// interface index).
pub(crate) fn routes(hosts: &[Host]) -> Vec<(usize, IpAddr, u8, IpAddr, u32)> {
    let nseg = hosts.iter().flat_map(|h| h.interfaces()).map(|i| i.segment_index + 1).max().unwrap_or(1);
    let routers: Vec<usize> = (0..hosts.len()).filter(|&i| hosts[i].router().is_some()).collect();
    // first[s][d]: the first router on a shortest path from segment s to d; dist[s][d] its hops.
    let mut first = vec![vec![None::<usize>; nseg]; nseg];
    let mut dist = vec![vec![usize::MAX; nseg]; nseg];
    for s in 0..nseg {
        dist[s][s] = 0;
        let mut queue = std::collections::VecDeque::from([s]);
        while let Some(x) = queue.pop_front() {
            for &r in &routers {
                let segs: Vec<usize> = hosts[r].interfaces().iter().map(|i| i.segment_index).collect();
                if !segs.contains(&x) {
                    continue;
                }
                for &y in &segs {
                    if dist[s][y] == usize::MAX {
                        dist[s][y] = dist[s][x] + 1;
                        first[s][y] = if x == s { Some(r) } else { first[s][x] };
                        queue.push_back(y);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (hi, h) in hosts.iter().enumerate() {
        let mine: Vec<usize> = h.interfaces().iter().map(|i| i.segment_index).collect();
        for d in (0..nseg).filter(|d| !mine.contains(d)) {
            // The host's segment closest to d (declaration order breaks ties).
            let Some(&s) = mine.iter().filter(|&&s| dist[s][d] != usize::MAX).min_by_key(|&&s| dist[s][d]) else { continue };
            let Some(r) = first[s][d] else { continue };
            let (Some(mine_if), Some(gw_if)) = (h.interface_on(s), hosts[r].interface_on(s)) else { continue };
            let (p4, p6) = prefixes(d);
            for fam in [Family::V4, Family::V6] {
                if let (Some(_), Some(gw)) = (mine_if.addr(fam), gw_if.addr(fam)) {
                    let (dest, len) = match fam {
                        Family::V4 => (IpAddr::V4(p4), IPV4_PREFIX),
                        Family::V6 => (IpAddr::V6(p6), IPV6_PREFIX),
                    };
                    out.push((hi, dest, len, gw, mine_if.ifindex));
                }
            }
        }
    }
    out
}

/// Sets up a routed lab once every host has its addresses: the routes, each router's missing
/// routes and its PMTUD black hole preset.
pub(crate) async fn setup(hosts: &[Host]) -> Result<()> {
    let all = routes(hosts);
    futures::future::try_join_all(all.into_iter().map(|(hi, dest, len, gw, ifindex)| {
        let h = &hosts[hi];
        async move {
            h.inner.nl.add_route(dest, len, Some(gw), ifindex).await.map_err(|source| Error::Netlink {
                op: format!("add route {dest}/{len} via {gw}"),
                what: format!("host {}", h.name()),
                source,
            })
        }
    }))
    .await?;
    for h in hosts {
        let Some(r) = h.router() else { continue };
        for fam in [Family::V4, Family::V6] {
            if r.route(fam) != RouteState::Present {
                apply_rules(h, fam, RouteState::Present, r.route(fam)).await?;
            }
        }
        if r.drop_ptb {
            pmtud_blackhole(h).await?;
        }
    }
    Ok(())
}

/// Replaces the policy rules of `router` for `family` in state `from` by those of `to`: one
/// rule per interface, so that only forwarded packets (those arriving on an interface) meet it,
/// never the router's own, such as the ICMP errors it sends.
async fn apply_rules(router: &Host, family: Family, from: RouteState, to: RouteState) -> Result<()> {
    use netlink_packet_route::rule::RuleAction;
    let action = |s: RouteState| match s {
        RouteState::Present => None,
        RouteState::Unreachable => Some(RuleAction::Unreachable),
        RouteState::Blackhole => Some(RuleAction::Blackhole),
    };
    let v6 = family == Family::V6;
    for i in router.interfaces() {
        if i.addr(family).is_none() && !(v6 && i.link_local.is_some()) {
            continue;
        }
        let nl = &router.inner.nl;
        let what = || format!("host {}", router.name());
        if let Some(a) = action(from) {
            nl.set_rule(false, v6, &i.name, MISSING_RULE_PRIORITY, a).await.map_err(|source| Error::Netlink {
                op: format!("remove the {from} rule for {family:?} on {}", i.name),
                what: what(),
                source,
            })?;
        }
        if let Some(a) = action(to) {
            nl.set_rule(true, v6, &i.name, MISSING_RULE_PRIORITY, a).await.map_err(|source| Error::Netlink {
                op: format!("add the {to} rule for {family:?} on {}", i.name),
                what: what(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Drops (and counts) the Packet Too Big and fragmentation-needed messages the router sends.
async fn pmtud_blackhole(router: &Host) -> Result<()> {
    let ruleset = format!(
        "add table inet {PMTUD_TABLE} ; add counter inet {PMTUD_TABLE} {PMTUD_COUNTER} ; \
         add chain inet {PMTUD_TABLE} out {{ type filter hook output priority 0 ; }} ; \
         add rule inet {PMTUD_TABLE} out icmpv6 type packet-too-big counter name {PMTUD_COUNTER} drop ; \
         add rule inet {PMTUD_TABLE} out icmp type destination-unreachable icmp code frag-needed counter name {PMTUD_COUNTER} drop"
    );
    let p = router.run(Command::new("nft").arg(&ruleset).name("nft-pmtud"), Duration::from_secs(10)).await?;
    if !p.exit().is_some_and(|e| e.success()) {
        return Err(Error::Invalid { what: format!("nft refused the PMTUD black hole ruleset in host {}: {}", router.name(), p.output().trim()) });
    }
    Ok(())
}

impl Host {
    /// All its lab interfaces, primary first: one in a lab without declared segments.
    pub fn interfaces(&self) -> &[Interface] {
        &self.inner.ifaces
    }

    /// Its interface on the segment at declaration index `k`, if it is on it.
    pub(crate) fn interface_on(&self, k: usize) -> Option<&Interface> {
        self.inner.ifaces.iter().find(|i| i.segment_index == k)
    }

    /// Its interface on the segment called `segment`, if it is on it.
    pub fn interface_in(&self, segment: &str) -> Option<&Interface> {
        self.inner.ifaces.iter().find(|i| i.segment == segment)
    }

    /// Its router settings as built, if it is a router.
    pub fn router(&self) -> Option<RouterSpec> {
        self.inner.router.as_ref().map(|r| *r.lock().expect("router state"))
    }

    /// Changes what this router does with packets of `family` it would forward, while programs
    /// run: `Present` forwards, `Unreachable` answers ICMP unreachable, `Blackhole` drops.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the host is not a router; [`Error::Netlink`] when the kernel
    /// refuses the change.
    pub async fn set_route(&self, family: Family, state: RouteState) -> Result<()> {
        let Some(cell) = self.inner.router.as_ref() else {
            return Err(Error::Invalid { what: format!("host {} is not a router; only a router's route can be set (router = true)", self.name()) });
        };
        let from = cell.lock().expect("router state").route(family);
        if from == state {
            return Ok(());
        }
        apply_rules(self, family, from, state).await?;
        let mut r = cell.lock().expect("router state");
        *r = r.missing_route(family, state);
        Ok(())
    }

    /// How many Packet Too Big / fragmentation-needed messages this router's PMTUD black hole
    /// preset has dropped so far (its nftables counter).
    ///
    /// # Errors
    /// [`Error::Invalid`] when the preset is off on this host or the counter cannot be read.
    pub async fn dropped_packet_too_big(&self) -> Result<u64> {
        if !self.router().is_some_and(|r| r.drop_ptb) {
            return Err(Error::Invalid { what: format!("host {} has no PMTUD black hole preset (RouterSpec::drop_packet_too_big)", self.name()) });
        }
        let p =
            self.run(Command::new("nft").args(["list", "counter", "inet", PMTUD_TABLE, PMTUD_COUNTER]).name("nft-counter"), Duration::from_secs(10)).await?;
        let out = p.output();
        parse_packets(&out).ok_or_else(|| Error::Invalid { what: format!("could not read the PMTUD counter of host {}: {}", self.name(), out.trim()) })
    }
}

/// The packet count of `nft list counter` output (`packets N bytes M`).
fn parse_packets(out: &str) -> Option<u64> {
    let mut words = out.split_whitespace();
    while let Some(w) = words.next() {
        if w == "packets" {
            return words.next()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn prefixes_follow_the_declaration_index() {
        assert_eq!(prefixes(0), (Ipv4Addr::new(192, 0, 2, 0), "2001:db8:1::".parse().unwrap()));
        assert_eq!(prefixes(1), (Ipv4Addr::new(198, 51, 100, 0), "2001:db8:2::".parse().unwrap()));
        assert_eq!(prefixes(2), (Ipv4Addr::new(203, 0, 113, 0), "2001:db8:3::".parse().unwrap()));
        let a = SlotAddrs::on_segment(23, 1);
        assert_eq!((a.v4.to_string(), a.v6.to_string()), ("198.51.100.23".to_string(), "2001:db8:2::23".to_string()));
        assert_eq!(SlotAddrs::on_segment(23, 0), SlotAddrs::of(23), "segment 0 is today's one-segment lab");
    }

    #[test]
    fn bad_segment_definitions_are_refused() {
        let segs = |n: usize| (0..n).map(|i| SegmentSpec::new(format!("s{i}"))).collect::<Vec<_>>();
        assert!(check("l", &segs(4), &[], Profile::DualStack, false).unwrap_err().starts_with("lab l declares 4 segments; expected at most 3"));
        assert_eq!(
            check("l", &segs(2), &[HostSpec::new("h").segments(["nope"])], Profile::DualStack, false).unwrap_err(),
            "host \"h\" joins segment \"nope\", which lab l does not declare; expected one of s0, s1"
        );
        assert_eq!(
            check("l", &segs(2), &[HostSpec::new("r").segments(["s0"]).router(RouterSpec::new())], Profile::DualStack, false).unwrap_err(),
            "host \"r\" is a router on 1 segment; a router joins at least two segments (segments = [\"a\", \"b\"])"
        );
        let small = [SegmentSpec::new("a"), SegmentSpec::new("b").mtu(1200)];
        assert_eq!(
            check("l", &small, &[HostSpec::new("h").segments(["b"])], Profile::DualStack, false).unwrap_err(),
            "segment \"b\" has MTU 1200 and host \"h\" has IPv6 on it (profile dual-stack); IPv6 needs an MTU of at least 1280 (RFC 8200)"
        );
        assert!(check("l", &small, &[HostSpec::new("h").segments(["b"])], Profile::Ipv4Only, false).is_ok());
        assert!(check("l", &segs(2), &[], Profile::DualStack, true).unwrap_err().contains("NAT64 works in a one-segment lab only"));
    }

    #[test]
    fn interfaces_take_the_segment_profile_unless_the_host_overrides_it() {
        let segs = [SegmentSpec::new("lan").profile(Profile::Ipv4Only), SegmentSpec::new("dc")];
        let r = plan_ifaces(&HostSpec::new("r").segments(["lan", "dc"]), &segs, Profile::DualStack, 30);
        assert_eq!(
            r.iter().map(|i| (i.name.as_str(), i.segment, i.profile)).collect::<Vec<_>>(),
            vec![("eth0", 0, Profile::Ipv4Only), ("eth1", 1, Profile::DualStack)]
        );
        let o = plan_ifaces(&HostSpec::new("o").segments(["lan"]).profile(Profile::DualStack), &segs, Profile::DualStack, 30);
        assert_eq!(o[0].profile, Profile::DualStack);
    }

    #[test]
    fn nft_counter_output_is_read() {
        let out = "table inet nslab_pmtud {\n\tcounter ptb_dropped {\n\t\tpackets 7 bytes 8960\n\t}\n}\n";
        assert_eq!(parse_packets(out), Some(7));
        assert_eq!(parse_packets("nothing"), None);
    }
}
