//! `[segments.<name>]` and the host keys `segments` and `router`: routed labs in scenarios
//! (see [`nslab::lab::segment`]).

use std::ops::Range;
use std::str::FromStr;

use toml::de::DeValue;

use super::decode::{Doc, Result, Str, Table, Val};
use nslab::addr::profile::Profile;
use nslab::lab::segment::{RouteState, RouterSpec, SegmentSpec, IPV6_MIN_MTU, MAX_MTU, MAX_SEGMENTS, MIN_MTU};
use nslab::Family;

// `ipv6` (the provisioning sub-table, decoded by scenario/provision.rs) joins these keys when
// that module lands: see the hook in `decode_segment`.
const SEGMENT_KEYS: &[&str] = &["profile", "mtu", "ipv6"];
const ROUTER_KEYS: &[&str] = &["missing_route", "pmtud_blackhole"];
const ROUTE_FAMILIES: &[&str] = &["ipv4", "ipv6"];

/// One segment as the scenario declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentDef {
    /// Its name.
    pub name: String,
    /// Its profile in every trial, overriding the trial's for hosts on it.
    pub profile: Option<Profile>,
    /// Its MTU.
    pub mtu: Option<u32>,
    /// Where `mtu` was written, for errors found later.
    pub(crate) mtu_span: Option<Range<usize>>,
}

impl SegmentDef {
    /// The library's segment specification.
    pub fn to_spec(&self) -> SegmentSpec {
        let mut s = SegmentSpec::new(self.name.clone());
        if let Some(p) = self.profile {
            s = s.profile(p);
        }
        if let Some(m) = self.mtu {
            s = s.mtu(m);
        }
        s
    }
}

/// A segment's `ipv6` sub-table, undecoded: the segment's declaration index, its name, the value.
pub(crate) type Ipv6Table<'i> = (usize, Str, Val<'i>);

/// Reads `[segments]`, in file order. Each segment's `ipv6` sub-table is returned undecoded, with the segment's name and
/// declaration index: it names hosts, so it is read once they are known
/// (`super::provision::decode_ipv6`).
pub(crate) fn decode_segments<'i>(doc: &Doc<'_>, v: Val<'i>) -> Result<(Vec<SegmentDef>, Vec<Ipv6Table<'i>>)> {
    let mut t = Table::new(doc, "[segments]", v, "a table of segments such as [segments.lan]")?;
    let span = t.span.clone();
    let mut out = Vec::new();
    let mut ipv6 = Vec::new();
    for (name, v) in t.take_all() {
        nslab::lab::spec::check_name("segment", &name.value).map_err(|e| doc.err(&name.span, e))?;
        let (def, p) = decode_segment(doc, name.clone(), v)?;
        if let Some(p) = p {
            ipv6.push((out.len(), name, p));
        }
        out.push(def);
    }
    if out.len() > MAX_SEGMENTS {
        return Err(doc.err(
            &span,
            format!(
                "[segments] declares {} segments; expected at most {MAX_SEGMENTS} (IPv4 has three documentation /24 prefixes: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24)",
                out.len()
            ),
        ));
    }
    Ok((out, ipv6))
}

fn decode_segment<'i>(doc: &Doc<'_>, name: Str, v: Val<'i>) -> Result<(SegmentDef, Option<Val<'i>>)> {
    let mut t = Table::new(doc, format!("segment {:?}", name.value), v, "a table such as [segments.lan] with profile, mtu and ipv6")?;
    t.check_keys(SEGMENT_KEYS)?;
    let ipv6 = t.take("ipv6");
    let profile = match t.str("profile")? {
        None => None,
        Some(s) => Some(Profile::from_str(&s.value).map_err(|e| t.bad("profile", &s.span, e))?),
    };
    let mtu_span = t.key_span("mtu");
    let mtu = t.int("mtu", i64::from(MIN_MTU)..=i64::from(MAX_MTU))?.map(|m| m as u32);
    Ok((SegmentDef { name: name.value, profile, mtu, mtu_span }, ipv6))
}

/// Reads a host's `router`: `true`, `false`, or a table with `missing_route` and
/// `pmtud_blackhole`. Returns the router and where `router` was written.
pub(crate) fn decode_router(t: &mut Table<'_, '_>, host: &str) -> Result<Option<(RouterSpec, Range<usize>)>> {
    let Some(span) = t.key_span("router") else { return Ok(None) };
    let v = t.take("router").expect("the key is there");
    if let DeValue::Boolean(b) = v.get_ref() {
        return Ok(b.then(|| (RouterSpec::new(), span)));
    }
    const EXAMPLE: &str = "true, or a table such as { missing_route = { ipv6 = \"unreachable\" }, pmtud_blackhole = true }";
    if !matches!(v.get_ref(), DeValue::Table(_)) {
        return Err(t.wrong("router", &v, EXAMPLE));
    }
    let mut rt = Table::new(t.doc, format!("the router of host {host:?}"), v, EXAMPLE)?;
    rt.check_keys(ROUTER_KEYS)?;
    let mut r = RouterSpec::new();
    if let Some(mut mt) = rt.table("missing_route", format!("the missing routes of host {host:?}"), "a table such as { ipv6 = \"unreachable\" }")? {
        mt.check_keys(ROUTE_FAMILIES)?;
        for (key, fam) in [("ipv4", Family::V4), ("ipv6", Family::V6)] {
            if let Some(s) = mt.str(key)? {
                r = r.missing_route(fam, route_state(&mt, key, &s)?);
            }
        }
    }
    if rt.bool("pmtud_blackhole")?.unwrap_or(false) {
        r = r.drop_packet_too_big();
    }
    Ok(Some((r, span)))
}

/// A route state, `present`, `unreachable` or `blackhole`, read from `key`.
pub(crate) fn route_state(t: &Table<'_, '_>, key: &str, s: &Str) -> Result<RouteState> {
    RouteState::from_str(&s.value).map_err(|e| t.bad(key, &s.span, e))
}

/// How one host uses the segments, as [`check`] needs it (from the host's table).
pub(crate) struct HostUse<'a> {
    pub(crate) name: &'a str,
    pub(crate) profile: Option<Profile>,
    pub(crate) segments: &'a [String],
    pub(crate) segment_spans: &'a [Range<usize>],
    /// Where `router` was written, when the host is a router.
    pub(crate) router_span: Option<&'a Range<usize>>,
}

/// Checks the hosts' use of the segments and the segments' MTU against the families on them
/// in every trial profile (and NAT64, which needs a one-segment lab).
pub(crate) fn check(doc: &Doc<'_>, segments: &[SegmentDef], hosts: &[HostUse<'_>], profiles: &[Profile], segments_span: Option<&Range<usize>>) -> Result<()> {
    let names: Vec<&str> = if segments.is_empty() { vec![nslab::lab::segment::DEFAULT_SEGMENT] } else { segments.iter().map(|s| s.name.as_str()).collect() };
    for h in hosts {
        for (s, span) in h.segments.iter().zip(h.segment_spans) {
            if !names.contains(&s.as_str()) {
                return Err(doc.err(
                    span,
                    format!(
                        "host {:?} joins segment {s:?}, which the scenario does not declare; expected one of {} (declared in [segments])",
                        h.name,
                        names.join(", ")
                    ),
                ));
            }
        }
        for (i, s) in h.segments.iter().enumerate() {
            if h.segments[..i].contains(s) {
                return Err(doc.err(&h.segment_spans[i], format!("host {:?} joins segment {s:?} twice; expected each segment once", h.name)));
            }
        }
        if let Some(span) = h.router_span {
            if h.segments.len() < 2 {
                return Err(doc.err(
                    span,
                    format!(
                        "host {:?} is a router on {} segment{}; expected a router to join at least two segments, such as segments = [\"lan\", \"wan\"]",
                        h.name,
                        h.segments.len(),
                        if h.segments.len() == 1 { "" } else { "s" }
                    ),
                ));
            }
        }
    }
    let nat64 = profiles.iter().any(|p| p.uses_nat64()) || hosts.iter().any(|h| h.profile.is_some_and(|p| p.uses_nat64()));
    if segments.len() > 1 && nat64 {
        return Err(doc.err(
            segments_span.unwrap_or(&(0..0)),
            format!(
                "the scenario has {} segments and a trial or host with profile {}; expected one segment with NAT64 (tayga's IPv4 pool is 198.51.100.0/24, the second segment's prefix)",
                segments.len(),
                Profile::Ipv6OnlyNat64
            ),
        ));
    }
    for (k, s) in segments.iter().enumerate() {
        let (Some(m), Some(span)) = (s.mtu, &s.mtu_span) else { continue };
        if m >= IPV6_MIN_MTU {
            continue;
        }
        for &trial in profiles {
            let seg_profile = s.profile.unwrap_or(trial);
            let on = hosts.iter().filter(|h| if h.segments.is_empty() { k == 0 } else { h.segments.contains(&s.name) });
            for h in on {
                let p = h.profile.unwrap_or(seg_profile);
                if p.ipv6_enabled() {
                    return Err(doc.err(
                        span,
                        format!(
                            "segment {:?} has mtu = {m}, and in the {trial} trial host {:?} has IPv6 on it (profile {p}); expected an MTU of at least {IPV6_MIN_MTU} (IPv6's minimum, RFC 8200), or an IPv4-only profile on the segment",
                            s.name, h.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
