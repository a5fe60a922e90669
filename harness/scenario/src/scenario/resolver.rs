//! `[resolvers.<name>]`: caching resolvers run in lab hosts, each turned into a generated service
//! whose configuration nslab::lab::resolver writes per trial.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use toml::de::DeValue;

use super::decode::{Doc, Result, Str, Table, Val};
use super::known::{refer, resolve_source, template, Known};
use super::template::Template;
use super::values::parse_lab_ip;
use nslab::lab::resolver::{ResolverKind, ResolverMode, ResolverSpec, UnsupportedError};

/// How long a resolver may take to answer its first query, unless `ready_timeout` says otherwise.
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);

const KEYS: &[&str] =
    &["host", "kind", "mode", "upstream", "min_ttl", "max_ttl", "negative_ttl", "serve_stale", "prefetch", "cache_size", "command", "config", "ready_timeout"];
const KINDS: &str = "\"unbound\", \"knot-resolver\", \"pdns-recursor\", \"systemd-resolved\" or \"custom\"";

/// How long an expired answer is kept with `serve_stale = true`: one day (RFC 8767 suggests 1 to 3 days).
pub const DEFAULT_STALE: Duration = Duration::from_secs(86400);

/// A caching resolver of the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverDef {
    /// Its name (also the name of its service).
    pub name: String,
    /// The host it runs in.
    pub host: String,
    /// The program.
    pub kind: ResolverKind,
    /// `recurse = true`: iterate from the lab root; else forward to `upstream`.
    pub recurse: bool,
    /// Where it forwards.
    pub upstream: Upstream,
    /// The cache settings, as [`ResolverSpec`] takes them (listen and mode are filled per trial).
    pub min_ttl: Option<u32>,
    /// Highest TTL, seconds.
    pub max_ttl: Option<u32>,
    /// Highest negative TTL, seconds.
    pub negative_ttl: Option<u32>,
    /// Serve expired answers this long.
    pub serve_stale: Option<Duration>,
    /// Refresh before expiry.
    pub prefetch: bool,
    /// Cache size, bytes.
    pub cache_size: Option<u64>,
    /// `kind = "custom"`: the user's command and configuration file (templated).
    pub custom: Option<(Vec<Template>, Template)>,
    /// How long it may take to answer its first query.
    pub ready_timeout: Duration,
}

/// Where a forwarding resolver sends its queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// The lab DNS server (default).
    LabDns,
    /// Another resolver of the scenario, by name.
    Resolver(String),
    /// A lab host (a resolver the user runs there as a service).
    Host(String),
    /// An address.
    Address(IpAddr),
}

impl ResolverDef {
    /// The library spec in a trial: `addrs` gives a host's addresses, `dns` the lab DNS's,
    /// `resolver_hosts` each resolver's host. Upstream and listen addresses keep only the families
    /// the resolver's host has.
    pub fn spec(&self, addrs: &dyn Fn(&str) -> Vec<IpAddr>, dns: &[IpAddr], resolver_hosts: &[(String, String)]) -> ResolverSpec {
        let own = addrs(&self.host);
        let fits = |a: &IpAddr| own.iter().any(|o| o.is_ipv4() == a.is_ipv4() && !is_link_local(o));
        let ups: Vec<IpAddr> = match &self.upstream {
            Upstream::LabDns => dns.to_vec(),
            Upstream::Resolver(r) => resolver_hosts.iter().find(|(n, _)| n == r).map(|(_, h)| addrs(h)).unwrap_or_default(),
            Upstream::Host(h) => addrs(h),
            Upstream::Address(a) => vec![*a],
        };
        let ups: Vec<IpAddr> = ups.into_iter().filter(|a| !is_link_local(a) && fits(a)).collect();
        let mode = if self.recurse {
            ResolverMode::Recurse { root_hints: dns.iter().copied().filter(|a| fits(a)).collect() }
        } else {
            ResolverMode::Forward { upstreams: ups.into_iter().map(|a| SocketAddr::new(a, 53)).collect() }
        };
        let mut spec = ResolverSpec::new(self.kind.clone(), mode).prefetch(self.prefetch);
        spec.listen = own.into_iter().filter(|a| !is_link_local(a)).collect();
        spec.min_ttl = self.min_ttl;
        spec.max_ttl = self.max_ttl;
        spec.negative_ttl = self.negative_ttl;
        spec.serve_stale = self.serve_stale;
        spec.cache_size = self.cache_size;
        spec
    }
}

fn is_link_local(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

/// Reads `[resolvers]`, in an order where each resolver comes after the one it forwards to.
pub(crate) fn decode_resolvers(doc: &Doc<'_>, v: Val<'_>, known: &Known) -> Result<Vec<ResolverDef>> {
    let mut t = Table::new(doc, "[resolvers]", v, "a table of resolvers such as [resolvers.cache]")?;
    let entries = t.take_all();
    let names: BTreeSet<String> = entries.iter().map(|(k, _)| k.value.clone()).collect();
    let mut out = Vec::new();
    let mut spans = Vec::new();
    for (name, v) in entries {
        nslab::lab::spec::check_name("resolver", &name.value).map_err(|e| doc.err(&name.span, e))?;
        if known.services.contains(&name.value) {
            return Err(doc.err(&name.span, format!("resolver {:?} has the name of a service; expected a name no service has", name.value)));
        }
        let (def, span) = decode_resolver(doc, name.value, v, known, &names)?;
        out.push(def);
        spans.push(span);
    }
    // Upstreams first: a resolver starts after the one it forwards to.
    let mut ordered: Vec<ResolverDef> = Vec::new();
    while ordered.len() < out.len() {
        let before = ordered.len();
        for (r, span) in out.iter().zip(&spans) {
            if ordered.iter().any(|o| o.name == r.name) {
                continue;
            }
            match &r.upstream {
                Upstream::Resolver(u) if u == &r.name => {
                    return Err(doc.err(span, format!("resolver {:?} forwards to itself; expected another resolver, a host or an address", r.name)))
                }
                Upstream::Resolver(u) if !ordered.iter().any(|o| &o.name == u) => {}
                _ => ordered.push(r.clone()),
            }
        }
        if ordered.len() == before {
            let r = out.iter().zip(&spans).find(|(r, _)| !ordered.iter().any(|o| o.name == r.name)).expect("one is left");
            return Err(doc.err(
                r.1,
                format!(
                    "resolver {:?} is in a loop of resolvers forwarding to each other; expected a chain that ends at the lab DNS, a host or an address",
                    r.0.name
                ),
            ));
        }
    }
    Ok(ordered)
}

fn decode_resolver(doc: &Doc<'_>, name: String, v: Val<'_>, known: &Known, names: &BTreeSet<String>) -> Result<(ResolverDef, std::ops::Range<usize>)> {
    let mut t = Table::new(doc, format!("resolver {name:?}"), v, "a table such as [resolvers.cache]")?;
    let span = t.span.clone();
    t.check_keys(KEYS)?;
    let host_s = t.req_str("host", "\"<a declared host>\"")?;
    let host = refer(&t, "host", &host_s, "host", &known.hosts)?;
    let kind_s = t.req_str("kind", KINDS)?;
    let mode = t.str("mode")?;
    let recurse = match mode.as_ref().map(|m| m.value.as_str()) {
        None | Some("forward") => false,
        Some("recurse") => true,
        Some(other) => {
            let m = mode.as_ref().expect("present");
            return Err(t.bad(
                "mode",
                &m.span,
                format!("{other:?} is not a mode; expected \"forward\" (to the lab DNS or `upstream`) or \"recurse\" (from the lab's root)"),
            ));
        }
    };
    let upstream = match t.str("upstream")? {
        None => Upstream::LabDns,
        Some(s) if recurse => {
            return Err(t.bad(
                "upstream",
                &s.span,
                "a resolver with mode = \"recurse\" asks the lab's root, not an upstream; expected no upstream, or mode = \"forward\"",
            ))
        }
        Some(s) if names.contains(&s.value) => Upstream::Resolver(s.value),
        Some(s) if known.hosts.contains(&s.value) => Upstream::Host(s.value),
        Some(s) => match s.value.parse::<IpAddr>() {
            Ok(_) => Upstream::Address(parse_lab_ip(&s.value).map_err(|e| t.bad("upstream", &s.span, e))?),
            Err(_) => {
                let others: Vec<&str> = names.iter().map(|n| n.as_str()).filter(|n| *n != name).collect();
                let hosts: Vec<&str> = known.hosts.iter().map(|h| h.as_str()).collect();
                let others = if others.is_empty() { "none declared".to_string() } else { others.join(", ") };
                return Err(t.bad(
                    "upstream",
                    &s.span,
                    format!(
                        "{:?} is neither a resolver, a host nor an address; expected a resolver ({others}), a host ({}) or a lab address such as \"192.0.2.53\"",
                        s.value,
                        hosts.join(", ")
                    ),
                ));
            }
        },
    };
    if !recurse && upstream == Upstream::LabDns && !known.dns {
        return Err(doc.err(
            &span,
            format!(
                "resolver {name:?} forwards to the lab DNS, but the scenario has no [dns] table; expected [dns], or upstream = \"<resolver, host or address>\""
            ),
        ));
    }
    if recurse && !known.dns {
        return Err(doc.err(
            &span,
            format!("resolver {name:?} recurses from the lab's root, which the lab DNS serves, but the scenario has no [dns] table; expected [dns]"),
        ));
    }
    let min_ttl = ttl(&mut t, "min_ttl")?;
    let max_ttl = ttl(&mut t, "max_ttl")?;
    let negative_ttl = ttl(&mut t, "negative_ttl")?;
    let serve_stale = match t.take("serve_stale") {
        None => None,
        Some(v) => match v.get_ref() {
            DeValue::Boolean(true) => Some(DEFAULT_STALE),
            DeValue::Boolean(false) => None,
            DeValue::String(_) => {
                let s = t.as_str("serve_stale", v, "")?;
                Some(super::duration::parse_duration(&s.value).map_err(|e| t.bad("serve_stale", &s.span, e))?)
            }
            _ => return Err(t.wrong("serve_stale", &v, "true, false, or how long expired answers are kept, such as \"1h\"")),
        },
    };
    let prefetch = t.bool("prefetch")?.unwrap_or(false);
    let cache_size = t.int("cache_size", 65536..=(1 << 40))?.map(|n| n as u64);
    let ready_timeout = t.positive_duration("ready_timeout")?.unwrap_or(DEFAULT_READY_TIMEOUT);
    let (kind, custom) = match kind_s.value.as_str() {
        "unbound" => (ResolverKind::Unbound, None),
        "knot-resolver" => (ResolverKind::KnotResolver, None),
        "pdns-recursor" => (ResolverKind::PdnsRecursor, None),
        "systemd-resolved" => (ResolverKind::SystemdResolved, None),
        "custom" => {
            let (cspan, items) = t
                .str_list("command", "an array of strings such as [\"dnsmasq\", \"-d\", \"-C\", \"{{service_dir}}/dnsmasq.conf\"]")?
                .ok_or_else(|| t.missing("command", "[\"dnsmasq\", \"-d\", \"-C\", \"{{service_dir}}/dnsmasq.conf\"]"))?;
            if items.is_empty() {
                return Err(t.bad("command", &cspan, "the array is empty; expected the program and its arguments"));
            }
            let cmd = items.iter().map(|s| template(&t, "command", s, known)).collect::<Result<Vec<_>>>()?;
            let conf_s = t.req_str("config", "\"files/dnsmasq.conf\" (a file beside the scenario, templated)")?;
            let real = resolve_source(doc, &t, &conf_s)?;
            let text =
                std::fs::read_to_string(&real).map_err(|e| t.bad("config", &conf_s.span, format!("{} cannot be read as UTF-8 text ({e})", real.display())))?;
            let tpl = template(&t, "config", &Str { value: text, span: conf_s.span.clone() }, known)?;
            let file = Path::new(&conf_s.value).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "resolver.conf".into());
            (ResolverKind::Custom { command: Vec::new(), config: file }, Some((cmd, tpl)))
        }
        other => return Err(t.bad("kind", &kind_s.span, format!("{other:?} is not a resolver kind; expected {KINDS}"))),
    };
    if custom.is_none() {
        for k in ["command", "config"] {
            if let Some(s) = t.key_span(k) {
                return Err(doc.err(
                    &s,
                    format!(
                        "{k} in resolver {name:?}: only kind = \"custom\" takes a command and a config; nslab writes the {} configuration itself",
                        kind_s.value
                    ),
                ));
            }
        }
    }
    let def = ResolverDef { name, host, kind, recurse, upstream, min_ttl, max_ttl, negative_ttl, serve_stale, prefetch, cache_size, custom, ready_timeout };
    // What the program cannot express is refused now, at the resolver's table.
    if def.custom.is_none() {
        let any = "192.0.2.1".parse().expect("literal");
        if let Err(UnsupportedError { kind, what }) = def.spec(&|_| vec![any], &[any], &[]).config(Path::new("/")) {
            return Err(doc.err(&kind_s.span, format!("resolver {:?}: {kind} cannot {what}; expected another kind, or without that setting", def.name)));
        }
    }
    Ok((def, span))
}

/// A TTL bound written as a duration (`"30s"`), in whole seconds.
fn ttl(t: &mut Table<'_, '_>, key: &str) -> Result<Option<u32>> {
    let Some(v) = t.take(key) else { return Ok(None) };
    let s = t.as_str(key, v, "a TTL with a unit, such as \"30s\"")?;
    let d = super::duration::parse_duration(&s.value).map_err(|e| t.bad(key, &s.span, e))?;
    if d.subsec_nanos() != 0 || d.as_secs() > u32::MAX as u64 {
        return Err(t.bad(key, &s.span, format!("{:?} is not a whole number of seconds; expected a TTL such as \"30s\"", s.value)));
    }
    Ok(Some(d.as_secs() as u32))
}
