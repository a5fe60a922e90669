//! `[dns]`: the lab DNS server's zones, records and DNS64, as plain data.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::str::FromStr;

use toml::de::DeValue;

use super::decode::{check_unique, found, Doc, Result, Str, Table, Val};
use super::template::{HostField, RenderError, Scope, Template, TemplateContext, Var};
use super::values::{check_dns_name, parse_dns64_prefix, parse_lab_ip};
use nslab::dns::{Dns64, RecordKind, RecordSpec, RecordValue, Soa, Zone};
use nslab::{LabDns, LAB_DOMAIN};

/// TTL of a record that gives none, seconds.
pub const DEFAULT_TTL: u32 = 60;

const DNS_KEYS: &[&str] = &["host", "dns64", "zones"];
const ZONE_KEYS: &[&str] = &["origin", "soa", "records"];
const SOA_KEYS: &[&str] = &["mname", "rname", "serial", "refresh", "retry", "expire", "minimum", "ttl"];
const RECORD_KEYS: &[&str] = &["name", "type", "value", "host", "ttl"];

/// The lab's DNS server as the scenario declares it; zones and records are the library's own
/// model ([`Zone`], [`RecordValue`]), handed to the server as decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsDef {
    /// The declared host the server runs in; `None`: an extra dual-stack host named `dns`.
    pub host: Option<String>,
    /// DNS64, when AAAA records are to be synthesized from A records.
    pub dns64: Option<Dns64>,
    /// Zones besides the automatic `lab.test` (every host by name), records in file order;
    /// without the records whose value is a template (see [`DnsDef::templated`]).
    pub zones: Vec<Zone>,
    /// Records whose value is a template (`value = "{{host.blue.ipv6}}"`), rendered per trial
    /// against the lab's address plan by [`DnsDef::zones_in`].
    pub templated: Vec<TemplatedRecord>,
}

/// A record whose value is a template, rendered for each trial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplatedRecord {
    /// The index of its zone in [`DnsDef::zones`].
    pub zone: usize,
    /// Its place among the zone's records, in file order.
    pub position: usize,
    /// Its owner name, as written.
    pub name: String,
    /// Its TTL, seconds.
    pub ttl: u32,
    /// Its type.
    pub kind: RecordKind,
    /// Its value.
    pub value: Template,
}

/// A templated record left out of a trial's zone: its template names an address the host does
/// not have in that profile (an AAAA record of `{{host.blue.ipv6}}` on ipv4-only), just as a
/// `host = "blue"` record has no AAAA there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmittedRecord {
    /// The owner name, absolute (`app.example.test.`).
    pub name: String,
    /// Its type.
    pub kind: RecordKind,
    /// Its value as written.
    pub template: String,
    /// Why: which variable has no value in this profile.
    pub reason: String,
}

impl DnsDef {
    /// The host the server runs in.
    pub fn server_host(&self) -> &str {
        self.host.as_deref().unwrap_or(nslab::lab::dns_host::DNS_HOST)
    }

    /// The zones of a trial whose lab answers the templates as `ctx` does, records in file
    /// order, and the templated records left out because a variable has no value there.
    ///
    /// # Errors
    /// A rendered value that is not data of its type (`{{profile}}` as a CNAME target, say),
    /// naming the record, the template and what it became.
    pub fn zones_in(&self, ctx: &dyn TemplateContext) -> std::result::Result<(Vec<Zone>, Vec<OmittedRecord>), String> {
        let mut zones = self.zones.clone();
        let mut omitted = Vec::new();
        for (zi, zone) in zones.iter_mut().enumerate() {
            let mut mine: Vec<&TemplatedRecord> = self.templated.iter().filter(|r| r.zone == zi).collect();
            if mine.is_empty() {
                continue;
            }
            mine.sort_by_key(|r| r.position);
            let mut literal = std::mem::take(&mut zone.records).into_iter();
            let total = literal.len() + mine.len();
            let mut tpl = mine.into_iter().peekable();
            for pos in 0..total {
                match tpl.next_if(|r| r.position == pos) {
                    Some(r) => match r.value.render(ctx) {
                        Ok(text) => {
                            let v = parse_record_value(r.kind, &text).map_err(|e| {
                                format!("record {} {} of zone {:?}: value {:?} became {text:?}: {e}", r.name, r.kind, zone.origin, r.value.source())
                            })?;
                            zone.records.push(RecordSpec::new(r.name.clone(), r.ttl, v));
                        }
                        Err(RenderError { reason, variable, .. }) => omitted.push(OmittedRecord {
                            name: absolute_name(&r.name, &zone.origin),
                            kind: r.kind,
                            template: r.value.source().to_string(),
                            reason: format!("{{{{{variable}}}}} has no value: {reason}"),
                        }),
                    },
                    None => zone.records.extend(literal.next()),
                }
            }
        }
        Ok((zones, omitted))
    }

    /// The lab DNS service with these zones (from [`DnsDef::zones_in`], or [`DnsDef::zones`]).
    pub fn lab_dns_with(&self, zones: Vec<Zone>) -> LabDns {
        let mut d = LabDns::new();
        if let Some(h) = &self.host {
            d = d.on_host(h.clone());
        }
        if let Some(dns64) = self.dns64 {
            d = d.dns64(dns64);
        }
        zones.into_iter().fold(d, LabDns::zone)
    }

    /// The lab DNS service this declares, its templated records left out (they need a trial's
    /// addresses: [`DnsDef::zones_in`] and [`DnsDef::lab_dns_with`]).
    pub fn lab_dns(&self) -> LabDns {
        let mut d = LabDns::new();
        if let Some(h) = &self.host {
            d = d.on_host(h.clone());
        }
        if let Some(dns64) = self.dns64 {
            d = d.dns64(dns64);
        }
        self.zones.iter().cloned().fold(d, LabDns::zone)
    }
}

/// Parses a record value of type `ty` from its text.
pub fn parse_record_value(ty: RecordKind, text: &str) -> std::result::Result<RecordValue, String> {
    let name = |s: &str| check_dns_name(s).map(|()| s.to_string());
    Ok(match ty {
        RecordKind::A => match parse_lab_ip(text)? {
            IpAddr::V4(a) => RecordValue::A(a),
            IpAddr::V6(_) => return Err(format!("{text:?} is an IPv6 address; expected an IPv4 address such as 192.0.2.10 for type A")),
        },
        RecordKind::Aaaa => match parse_lab_ip(text)? {
            IpAddr::V6(a) => RecordValue::Aaaa(a),
            IpAddr::V4(_) => return Err(format!("{text:?} is an IPv4 address; expected an IPv6 address such as 2001:db8:1::10 for type AAAA")),
        },
        RecordKind::Ns => RecordValue::Ns(name(text)?),
        RecordKind::Cname => RecordValue::Cname(name(text)?),
        RecordKind::Ptr => RecordValue::Ptr(name(text)?),
        RecordKind::Txt => RecordValue::Txt(vec![check_txt(text)?]),
        RecordKind::Srv => {
            let f: Vec<&str> = text.split_whitespace().collect();
            let n = |s: &str| s.parse::<u16>().ok();
            match f.as_slice() {
                [p, w, port, target] if n(p).is_some() && n(w).is_some() && n(port).is_some() => RecordValue::Srv {
                    priority: n(p).unwrap_or_default(),
                    weight: n(w).unwrap_or_default(),
                    port: n(port).unwrap_or_default(),
                    target: name(target)?,
                },
                _ => return Err(format!("{text:?} is not SRV data; expected \"PRIORITY WEIGHT PORT TARGET\" such as \"0 5 8080 web\"")),
            }
        }
        RecordKind::Mx => {
            let f: Vec<&str> = text.split_whitespace().collect();
            match f.as_slice() {
                [p, ex] if p.parse::<u16>().is_ok() => RecordValue::Mx { preference: p.parse().unwrap_or_default(), exchange: name(ex)? },
                _ => return Err(format!("{text:?} is not MX data; expected \"PREFERENCE EXCHANGE\" such as \"10 mail\"")),
            }
        }
        RecordKind::Soa => return Err("a zone's SOA record comes from its soa table; expected soa = { ttl = ..., minimum = ... } in the zone".into()),
    })
}

fn check_txt(s: &str) -> std::result::Result<String, String> {
    if s.len() > 255 {
        return Err(format!("a TXT string has {} bytes; expected at most 255 per string (use an array of strings)", s.len()));
    }
    Ok(s.to_string())
}

/// Reads `type` + `value`, or `host`, from a record or a `set-record` step.
pub(crate) fn decode_record_data(t: &mut Table<'_, '_>, hosts: &BTreeSet<String>) -> Result<RecordValue> {
    let doc = t.doc;
    if let Some(h) = t.str("host")? {
        for k in ["type", "value"] {
            if let Some(span) = t.key_span(k) {
                return Err(doc.err(&span, format!("{k} in {} is given with host; expected either host = \"<lab host>\" or type and value", t.what)));
            }
        }
        return super::known::refer(t, "host", &h, "host", hosts).map(RecordValue::Host);
    }
    let ty_str = t.req_str("type", "\"CNAME\" (or host = \"<lab host>\" instead of type and value)")?;
    let ty = RecordKind::from_str(&ty_str.value).map_err(|e| t.bad("type", &ty_str.span, e.to_string()))?;
    let v = t.required("value", "\"<data of the record>\"")?;
    let span = v.span();
    if ty == RecordKind::Txt {
        if let DeValue::Array(items) = v.get_ref() {
            let mut out = Vec::new();
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::String(s) => out.push(check_txt(s).map_err(|e| t.bad("value", &item.span(), e))?),
                    other => return Err(doc.err(&item.span(), format!("an element of value in {} is {}; expected a string", t.what, found(other)))),
                }
            }
            return Ok(RecordValue::Txt(out));
        }
    }
    let s = t.as_str("value", v, &format!("a string holding the {ty} data"))?;
    parse_record_value(ty, &s.value).map_err(|e| t.bad("value", &span, e))
}

/// Reads `[dns]`.
pub(crate) fn decode_dns(doc: &Doc<'_>, v: Val<'_>, hosts: &BTreeSet<String>) -> Result<DnsDef> {
    let mut t = Table::new(doc, "[dns]", v, "a table such as [dns]")?;
    t.check_keys(DNS_KEYS)?;
    let host = match t.str("host")? {
        None => None,
        Some(h) => Some(super::known::refer(&t, "host", &h, "host", hosts)?),
    };
    let dns64 = match t.take("dns64") {
        None => None,
        Some(v) => match v.get_ref() {
            DeValue::Boolean(true) => Some(Dns64::well_known()),
            DeValue::Boolean(false) => None,
            DeValue::String(s) => {
                let dns64 = parse_dns64_prefix(s).and_then(|prefix| Dns64::new(prefix, 96).map_err(|e| e.to_string()));
                Some(dns64.map_err(|e| t.bad("dns64", &v.span(), e))?)
            }
            _ => return Err(t.wrong("dns64", &v, "true, false or a /96 prefix such as \"64:ff9b::/96\"")),
        },
    };
    let mut hosts = hosts.clone();
    hosts.insert(host.clone().unwrap_or_else(|| nslab::lab::dns_host::DNS_HOST.to_string()));
    let mut zones = Vec::new();
    let mut origins = Vec::new();
    for (i, z) in t.tables("zones", "an array of zones, written [[dns.zones]]")?.into_iter().enumerate() {
        let (zone, origin) = decode_zone(doc, i + 1, z, &hosts)?;
        origins.push(origin);
        zones.push(zone);
    }
    check_unique(doc, "zone", &origins)?;
    let mut templated = Vec::new();
    for (zi, z) in zones.iter_mut().enumerate() {
        for (position, (name, ttl, kind, value)) in std::mem::take(&mut z.1) {
            templated.push(TemplatedRecord { zone: zi, position, name, ttl, kind, value });
        }
    }
    Ok(DnsDef { host, dns64, zones: zones.into_iter().map(|z| z.0).collect(), templated })
}

/// `name` relative to `origin` made absolute (`app` in `example.test` is `app.example.test.`).
fn absolute_name(name: &str, origin: &str) -> String {
    if name == "@" {
        format!("{origin}.")
    } else if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.{origin}.")
    }
}

/// A record value written as a template: (name, ttl, type, template).
type RecordTemplate = (String, u32, RecordKind, Template);

/// A zone's templated records, each with its place among the zone's records.
type ZoneTemplates = Vec<(usize, RecordTemplate)>;

/// Reads a record's value as a template when it has `{{`: only facts of the lab's address plan
/// (`host.<name>.ipv4|ipv6|link_local|interface|addr`, `dns.ipv4|ipv6`, `profile`), and for A and
/// AAAA records only an address of that family.
fn record_template(t: &Table<'_, '_>, hosts: &BTreeSet<String>) -> Result<Option<(RecordKind, Template)>> {
    let Some(v) = t.peek_str("value") else { return Ok(None) };
    if !v.value.contains("{{") || t.has("host") {
        return Ok(None);
    }
    let Some(ty) = t.peek_str("type").and_then(|s| RecordKind::from_str(&s.value).ok()) else { return Ok(None) };
    let tpl = Template::parse(&v.value, &Scope { hosts, dns: true, builds: &BTreeSet::new(), in_build: false }).map_err(|e| {
        let span = t.doc.inner_span(&v, e.range);
        t.doc.err(&span, format!("value in {}: {}", t.what, e.message))
    })?;
    for var in tpl.vars() {
        let ok = match (var, ty) {
            (Var::Host { field: HostField::Ipv4, .. } | Var::DnsIpv4, RecordKind::A) => true,
            (Var::Host { field: HostField::Ipv6, .. } | Var::DnsIpv6, RecordKind::Aaaa) => true,
            (_, RecordKind::A | RecordKind::Aaaa) => false,
            (Var::Host { .. } | Var::DnsIpv4 | Var::DnsIpv6 | Var::Profile, _) => true,
            _ => false,
        };
        if !ok {
            let expected = match ty {
                RecordKind::A => "{{host.<name>.ipv4}} or {{dns.ipv4}} in an A record".to_string(),
                RecordKind::Aaaa => "{{host.<name>.ipv6}} or {{dns.ipv6}} in an AAAA record".to_string(),
                _ => "a fact of the lab's addresses: host.<name>.<field>, dns.ipv4, dns.ipv6 or profile".to_string(),
            };
            return Err(t.bad(
                "value",
                &v.span,
                format!("template variable {{{{{var}}}}} cannot be in the value of a record of type {ty}; expected {expected}"),
            ));
        }
    }
    Ok(Some((ty, tpl)))
}

fn decode_zone(doc: &Doc<'_>, n: usize, v: Val<'_>, hosts: &BTreeSet<String>) -> Result<((Zone, ZoneTemplates), Str)> {
    let mut t = Table::new(doc, format!("zone {n}"), v, "a table written [[dns.zones]]")?;
    t.check_keys(ZONE_KEYS)?;
    let origin_str = t.req_str("origin", "\"example.test\"")?;
    let origin = origin_str.value.trim_end_matches('.').to_string();
    if origin_str.value == "@" || check_dns_name(&origin_str.value).is_err() || origin.starts_with("*") {
        return Err(t.bad("origin", &origin_str.span, format!("{:?} is not a domain name; expected a name such as \"example.test\"", origin_str.value)));
    }
    if origin.eq_ignore_ascii_case(LAB_DOMAIN) {
        return Err(t.bad(
            "origin",
            &origin_str.span,
            format!("{LAB_DOMAIN:?} is the lab's own zone (every host by name); expected another origin such as \"example.test\""),
        ));
    }
    t.what = format!("zone {origin:?}");
    let mut soa = Soa::new("ns", "hostmaster");
    if let Some(mut s) = t.table("soa", format!("the soa of zone {origin:?}"), "a table such as { ttl = 60, minimum = 5 }")? {
        s.check_keys(SOA_KEYS)?;
        for (key, field) in [("mname", &mut soa.mname), ("rname", &mut soa.rname)] {
            if let Some(v) = s.str(key)? {
                check_dns_name(&v.value).map_err(|e| s.bad(key, &v.span, e))?;
                *field = v.value;
            }
        }
        let u = i64::from(u32::MAX);
        let i = i64::from(i32::MAX);
        soa.serial = s.int("serial", 0..=u)?.map_or(soa.serial, |n| n as u32);
        soa.refresh = s.int("refresh", 0..=i)?.map_or(soa.refresh, |n| n as i32);
        soa.retry = s.int("retry", 0..=i)?.map_or(soa.retry, |n| n as i32);
        soa.expire = s.int("expire", 0..=i)?.map_or(soa.expire, |n| n as i32);
        soa.minimum = s.int("minimum", 0..=i)?.map_or(soa.minimum, |n| n as u32);
        soa.ttl = s.int("ttl", 0..=i)?.map_or(soa.ttl, |n| n as u32);
    }
    let mut records = Vec::new();
    let mut templates: ZoneTemplates = Vec::new();
    for (j, r) in t.tables("records", "an array of records such as [{ name = \"app\", type = \"CNAME\", value = \"blue\" }]")?.into_iter().enumerate() {
        let mut rt = Table::new(doc, format!("record {} of zone {origin:?}", j + 1), r, "a table such as { name = \"app\", host = \"web\" }")?;
        rt.check_keys(RECORD_KEYS)?;
        let name = rt.req_str("name", "\"app\" (\"@\" for the origin)")?;
        check_record_name(&rt, "name", &name, &origin)?;
        let ttl = rt.int("ttl", 0..=i64::from(i32::MAX))?.map_or(DEFAULT_TTL, |n| n as u32);
        if let Some((kind, tpl)) = record_template(&rt, hosts)? {
            let value = rt.peek_str("value").map(|v| v.span).unwrap_or(rt.span.clone());
            rt.take("type");
            rt.take("value");
            if tpl.vars().next().is_none() {
                // Only `{{{{` escapes: literal data after all.
                let text: String = tpl.parts().iter().map(|p| if let super::template::Part::Text(t) = p { t.as_str() } else { "" }).collect();
                let data = parse_record_value(kind, &text).map_err(|e| rt.bad("value", &value, e))?;
                records.push(RecordSpec::new(name.value, ttl, data));
            } else {
                templates.push((records.len() + templates.len(), (name.value, ttl, kind, tpl)));
            }
            continue;
        }
        let data = decode_record_data(&mut rt, hosts)?;
        records.push(RecordSpec::new(name.value, ttl, data));
    }
    Ok(((Zone { origin, soa, records }, templates), Str { value: origin_str.value.trim_end_matches('.').to_string(), span: origin_str.span }))
}

/// Checks an owner name: valid, and inside the zone when absolute.
pub(crate) fn check_record_name(t: &Table<'_, '_>, key: &str, name: &Str, origin: &str) -> Result<()> {
    check_dns_name(&name.value).map_err(|e| t.bad(key, &name.span, e))?;
    if let Some(abs) = name.value.strip_suffix('.') {
        let inside = abs.eq_ignore_ascii_case(origin) || abs.to_ascii_lowercase().ends_with(&format!(".{}", origin.to_ascii_lowercase()));
        if !inside {
            return Err(t.bad(
                key,
                &name.span,
                format!("{:?} is outside zone {origin:?}; expected a name relative to the zone, or an absolute name ending in .{origin}.", name.value),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_values_per_type() {
        assert_eq!(parse_record_value(RecordKind::A, "192.0.2.10").unwrap(), RecordValue::A("192.0.2.10".parse().unwrap()));
        assert!(parse_record_value(RecordKind::A, "2001:db8::1").unwrap_err().contains("expected an IPv4 address"));
        assert!(parse_record_value(RecordKind::A, "10.0.0.1").unwrap_err().contains("outside the lab's address space"));
        assert_eq!(parse_record_value(RecordKind::Aaaa, "2001:db8:1::10").unwrap(), RecordValue::Aaaa("2001:db8:1::10".parse().unwrap()));
        assert!(parse_record_value(RecordKind::Aaaa, "192.0.2.1").is_err());
        assert_eq!(parse_record_value(RecordKind::Cname, "green").unwrap(), RecordValue::Cname("green".into()));
        assert!(parse_record_value(RecordKind::Cname, "gr een").is_err());
        assert_eq!(parse_record_value(RecordKind::Srv, "0 5 8080 web").unwrap(), RecordValue::Srv { priority: 0, weight: 5, port: 8080, target: "web".into() });
        assert!(parse_record_value(RecordKind::Srv, "0 5 web").unwrap_err().contains("PRIORITY WEIGHT PORT TARGET"));
        assert_eq!(parse_record_value(RecordKind::Mx, "10 mail").unwrap(), RecordValue::Mx { preference: 10, exchange: "mail".into() });
        assert_eq!(parse_record_value(RecordKind::Txt, "v=1").unwrap(), RecordValue::Txt(vec!["v=1".into()]));
        assert!(parse_record_value(RecordKind::Txt, &"x".repeat(256)).is_err());
        assert!(parse_record_value(RecordKind::Soa, "x").unwrap_err().contains("soa table"));
    }

    #[test]
    fn record_types() {
        assert_eq!("cname".parse::<RecordKind>().unwrap(), RecordKind::Cname);
        assert_eq!(RecordKind::Aaaa.to_string(), "AAAA");
        assert_eq!(
            "CAA".parse::<RecordKind>().unwrap_err().to_string(),
            "\"CAA\" is not a record type; expected one of SOA, NS, A, AAAA, CNAME, TXT, SRV, PTR, MX"
        );
    }
}
