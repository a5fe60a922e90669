//! `[segments.<name>.ipv6]`: IPv6 provisioning of a segment by a router host (radvd's router
//! advertisements, the hosts' SLAAC, the lab DNS following), decoded for the segment decoder.
//! Until multi-segment labs land, [`decode_segments`] reads `[segments.lan]` itself (only its
//! `ipv6` sub-table).

use std::time::Duration;

use super::decode::{Doc, Result, Table, Val};
use super::known::{refer, Known};

/// The name of the one segment of today's labs.
pub const LAN: &str = "lan";

const KEYS: &[&str] = &[
    "router",
    "hosts",
    "dhcp6",
    "rdnss",
    "dnssl",
    "managed",
    "other",
    "valid_lifetime",
    "preferred_lifetime",
    "min_interval",
    "max_interval",
    "aaaa_records",
    "dns64",
];

/// How a segment gets IPv6: what its router advertises and what the lab DNS does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionDef {
    /// The segment's name.
    pub segment: String,
    /// The host that runs radvd.
    pub router: String,
    /// The hosts that take part (IPv6 on, SLAAC); `None`: every declared host but the router
    /// and the lab DNS host. Hosts left out keep their profile's addresses (an instance created
    /// before the subnet changed).
    pub hosts: Option<Vec<String>>,
    /// Hosts that run `dhclient -6` when IPv6 arrives (kea-dhcp6 then runs in the router and
    /// the M flag is advertised).
    pub dhcp6: Vec<String>,
    /// Advertise the lab DNS host's IPv6 address as RDNSS (when it has one).
    pub rdnss: bool,
    /// Advertise the lab domain as DNSSL.
    pub dnssl: bool,
    /// The M flag.
    pub managed: bool,
    /// The O flag.
    pub other: bool,
    /// Valid lifetime of the segment's prefix, seconds.
    pub valid_lifetime: u32,
    /// Preferred lifetime of the segment's prefix, seconds.
    pub preferred_lifetime: u32,
    /// MinRtrAdvInterval.
    pub min_interval: Duration,
    /// MaxRtrAdvInterval.
    pub max_interval: Duration,
    /// The lab DNS publishes AAAA records for the hosts' SLAAC addresses from the start.
    pub aaaa_records: bool,
    /// DNS64 on for the segment from the start.
    pub dns64: bool,
}

impl ProvisionDef {
    /// The library's router advertisement settings (prefix 2001:db8:1::/64; `rdnss_addr`: the
    /// lab DNS host's IPv6 address, if it has one).
    pub fn ra_config(&self, rdnss_addr: Option<std::net::Ipv6Addr>) -> nslab::lab::provision::RaConfig {
        use nslab::lab::provision::{ra, RaConfig, RaPrefix};
        RaConfig {
            prefixes: vec![RaPrefix { prefix: ra::segment_prefix(0), valid: self.valid_lifetime, preferred: self.preferred_lifetime }],
            rdnss: if self.rdnss { rdnss_addr.into_iter().collect() } else { Vec::new() },
            dnssl: if self.dnssl { vec![nslab::addr::plan::LAB_DOMAIN.to_string()] } else { Vec::new() },
            managed: self.managed || !self.dhcp6.is_empty(),
            other: self.other,
            min_interval: self.min_interval,
            max_interval: self.max_interval,
            ..RaConfig::default()
        }
    }
}

/// Reads the `ipv6` sub-table of segment `segment` (the lab's first; see
/// `super::segment::decode_segments`).
///
/// # Errors
/// Located errors for unknown keys, an undeclared router, lifetimes or intervals radvd refuses.
pub(crate) fn decode_ipv6(doc: &Doc<'_>, v: Val<'_>, segment: &str, known: &Known) -> Result<ProvisionDef> {
    let mut p = Table::new(doc, format!("[segments.{segment}.ipv6]"), v, "a table of IPv6 provisioning settings, such as { router = \"router\" }")?;
    p.check_keys(KEYS)?;
    let r = p.req_str("router", "\"router\" (the declared host that runs radvd)")?;
    let router = refer(&p, "router", &r, "host", &known.hosts)?;
    let hosts = match p.str_list("hosts", "an array of host names such as [\"web\"]")? {
        None => None,
        Some((span, list)) => {
            if list.is_empty() {
                return Err(p.bad("hosts", &span, "the array is empty; expected the hosts that take part (leave hosts out for all of them)"));
            }
            let mut v = Vec::new();
            for h in &list {
                let name = refer(&p, "hosts", h, "host", &known.hosts)?;
                if name == router {
                    return Err(p.bad("hosts", &h.span, format!("{name:?} is the router; expected the hosts that receive its advertisements")));
                }
                v.push(name);
            }
            Some(v)
        }
    };
    let dhcp6 = match p.str_list("dhcp6", "an array of host names such as [\"web\"]")? {
        None => Vec::new(),
        Some((_, list)) => {
            let mut v = Vec::new();
            for h in &list {
                let name = refer(&p, "dhcp6", h, "host", &known.hosts)?;
                if name == router {
                    return Err(p.bad(
                        "dhcp6",
                        &h.span,
                        format!("{name:?} is the router (it runs the DHCPv6 server); expected hosts that ask it for an address"),
                    ));
                }
                if hosts.as_ref().is_some_and(|hs| !hs.contains(&name)) {
                    return Err(p.bad("dhcp6", &h.span, format!("{name:?} is not one of hosts; expected hosts of the segment")));
                }
                v.push(name);
            }
            v
        }
    };
    let life = |p: &mut Table<'_, '_>, key: &str, default: u32| -> Result<u32> { Ok(p.int(key, 0..=i64::from(u32::MAX))?.map_or(default, |n| n as u32)) };
    let valid_span = p.key_span("valid_lifetime");
    let valid_lifetime = life(&mut p, "valid_lifetime", 86_400)?;
    let pref_span = p.key_span("preferred_lifetime");
    let preferred_lifetime = life(&mut p, "preferred_lifetime", 14_400.min(valid_lifetime))?;
    if preferred_lifetime > valid_lifetime {
        let span = pref_span.or(valid_span).unwrap_or(p.span.clone());
        return Err(doc.err(
            &span,
            format!(
                "preferred_lifetime = {preferred_lifetime} in {} is longer than valid_lifetime = {valid_lifetime}; expected at most the valid lifetime",
                p.what
            ),
        ));
    }
    let min_span = p.key_span("min_interval");
    let min_interval = p.positive_duration("min_interval")?;
    let max_span = p.key_span("max_interval");
    let max_interval = p.positive_duration("max_interval")?.unwrap_or(nslab::lab::provision::ra::MIN_MAX_INTERVAL);
    if max_interval < nslab::lab::provision::ra::MIN_MAX_INTERVAL || max_interval > Duration::from_secs(1800) {
        let span = max_span.unwrap_or(p.span.clone());
        return Err(doc.err(&span, format!("max_interval = {max_interval:?} in {}: radvd refuses it; expected 4s to 1800s (radvd.conf(5))", p.what)));
    }
    let min_interval = min_interval.unwrap_or(Duration::from_secs((max_interval.as_secs() * 3 / 4).max(3)));
    if min_interval < nslab::lab::provision::ra::MIN_MIN_INTERVAL || min_interval.as_secs_f64() > 0.75 * max_interval.as_secs_f64() {
        let span = min_span.unwrap_or(p.span.clone());
        return Err(doc.err(
            &span,
            format!("min_interval = {min_interval:?} in {}: radvd refuses it; expected at least 3s and at most 0.75 x max_interval ({max_interval:?})", p.what),
        ));
    }
    let def = ProvisionDef {
        segment: segment.to_string(),
        router,
        hosts,
        dhcp6,
        rdnss: p.bool("rdnss")?.unwrap_or(true),
        dnssl: p.bool("dnssl")?.unwrap_or(true),
        managed: p.bool("managed")?.unwrap_or(false),
        other: p.bool("other")?.unwrap_or(false),
        valid_lifetime,
        preferred_lifetime,
        min_interval,
        max_interval,
        aaaa_records: p.bool("aaaa_records")?.unwrap_or(false),
        dns64: p.bool("dns64")?.unwrap_or(false),
    };
    if (def.aaaa_records || def.dns64) && !known.dns {
        let key = if def.aaaa_records { "aaaa_records" } else { "dns64" };
        return Err(doc.err(&p.span, format!("{key} = true in {} needs the lab DNS server; expected a [dns] table in the scenario", p.what)));
    }
    Ok(def)
}
