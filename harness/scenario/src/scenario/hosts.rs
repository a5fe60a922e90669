//! `[hosts.<name>]`: the lab's hosts and their per-host overrides.

use std::net::IpAddr;
use std::str::FromStr;

use toml::de::DeValue;

use super::decode::{int_of, Doc, Result, Table, Val};
use nslab::addr::profile::Profile;
use nslab::host::etc::ResolvOptions;
use nslab::lab::spec::{self, HostSpec, Resolver};
use nslab::os::sysctl;

const HOST_KEYS: &[&str] = &["profile", "dad", "bindv6only", "sysctls", "gai_conf", "interface", "private", "resolver", "resolv", "link", "segments", "router"];
const RESOLV_KEYS: &[&str] = &["timeout", "attempts", "ndots", "rotate", "single-request", "single-request-reopen", "edns0", "use-vc", "search"];

/// One lab host as the scenario declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDef {
    /// The host's name (a DNS label).
    pub name: String,
    /// A profile for this host in every trial, overriding the trial's.
    pub profile: Option<Profile>,
    /// Run duplicate address detection (addresses stay tentative for 1-2 s).
    pub dad: bool,
    /// `net.ipv6.bindv6only`, when set.
    pub bindv6only: Option<bool>,
    /// Other network sysctls, name and value, in file order.
    pub sysctls: Vec<(String, String)>,
    /// Content of the host's `/etc/gai.conf`.
    pub gai_conf: Option<String>,
    /// The lab interface's name (default `eth0`).
    pub interface: String,
    /// Machine directories the host gets its own empty copy of (besides /run, /tmp, /var/tmp),
    /// in plain form, in file order.
    pub private: Vec<std::path::PathBuf>,
    /// Where its `/etc/resolv.conf` sends look-ups (`resolver = ...`); `None`: the lab DNS.
    pub resolver: Option<ResolverRef>,
    /// The `resolver` value as written and where, until [`check_resolvers`] has resolved it.
    pub(crate) resolver_decl: Option<(String, std::ops::Range<usize>)>,
    /// Its `[hosts.<name>.resolv]` options.
    pub resolv: ResolvOptions,
    /// Its `link` condition (`[hosts.<name>.link]` or a preset name), applied at build.
    pub link: Option<nslab::lab::link::LinkCondition>,
    /// The segments it joins (`segments = [...]`), primary first; empty: the first segment.
    pub segments: Vec<String>,
    /// Where each of `segments` was written.
    pub(crate) segment_spans: Vec<std::ops::Range<usize>>,
    /// Its router settings (`router = true` or a table), if it is a router.
    pub router: Option<nslab::lab::segment::RouterSpec>,
    /// Where `router` was written.
    pub(crate) router_span: Option<std::ops::Range<usize>>,
}

/// What a host's `resolver` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolverRef {
    /// A resolver of `[resolvers]`: its name, the host it runs in, and the address it answers
    /// on for programs of that same host.
    Resolver {
        /// The resolver's name.
        name: String,
        /// The host it runs in.
        host: String,
        /// Its address for programs on its own host (`127.0.0.1`, or systemd-resolved's `127.0.0.53`).
        local: IpAddr,
    },
    /// A lab host (a resolver the scenario runs there as a service).
    Host(String),
    /// An address.
    Address(IpAddr),
}

/// A resolver that hosts may name in `resolver`: its name, its host, its local address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverTarget {
    /// The resolver's name in `[resolvers]`.
    pub name: String,
    /// The host it runs in.
    pub host: String,
    /// Its address for programs of its own host.
    pub local: IpAddr,
}

impl HostDef {
    /// The library's host specification for a trial whose profile is `lab_profile`.
    pub fn to_host_spec(&self, lab_profile: Profile) -> HostSpec {
        self.host_spec_with(Some(self.profile.unwrap_or(lab_profile)))
    }

    /// The library's host specification in a routed lab: without a profile of its own, the
    /// host takes its segment's (or else the trial's, which the lab builder has).
    pub fn to_routed_host_spec(&self) -> HostSpec {
        self.host_spec_with(self.profile)
    }

    fn host_spec_with(&self, profile: Option<Profile>) -> HostSpec {
        let mut h = HostSpec::new(self.name.clone()).dad(self.dad).interface(self.interface.clone());
        if let Some(p) = profile {
            h = h.profile(p);
        }
        if !self.segments.is_empty() {
            h = h.segments(self.segments.clone());
        }
        if let Some(r) = self.router {
            h = h.router(r);
        }
        if let Some(b) = self.bindv6only {
            h = h.bindv6only(b);
        }
        for (name, value) in &self.sysctls {
            h = h.sysctl(name.clone(), value.clone());
        }
        if let Some(g) = &self.gai_conf {
            h = h.gai_conf(g.clone());
        }
        for p in &self.private {
            h = h.private(p.clone());
        }
        h = h.resolv_options(self.resolv.clone());
        if let Some(c) = &self.link {
            h = h.link(c.clone());
        }
        match &self.resolver {
            None => h,
            Some(ResolverRef::Resolver { host, local, .. }) if *host == self.name => h.resolver(Resolver::Address(*local)),
            Some(ResolverRef::Resolver { host, .. }) | Some(ResolverRef::Host(host)) => h.resolver(Resolver::Host(host.clone())),
            Some(ResolverRef::Address(a)) => h.resolver(Resolver::Address(*a)),
        }
    }
}

/// Reads `[hosts]`, in file order.
pub(crate) fn decode_hosts(doc: &Doc<'_>, v: Val<'_>) -> Result<Vec<HostDef>> {
    let mut hosts = Table::new(doc, "[hosts]", v, "a table of hosts such as [hosts.web]")?;
    let mut out = Vec::new();
    for (name, v) in hosts.take_all() {
        spec::check_name("host", &name.value).map_err(|e| doc.err(&name.span, e))?;
        out.push(decode_host(doc, name.value, v)?);
    }
    if out.len() > nslab::addr::plan::MAX_HOSTS {
        return Err(doc.err(&hosts.span, format!("[hosts] declares {} hosts; expected at most {}", out.len(), nslab::addr::plan::MAX_HOSTS)));
    }
    Ok(out)
}

fn decode_host(doc: &Doc<'_>, name: String, v: Val<'_>) -> Result<HostDef> {
    let mut t = Table::new(doc, format!("host {name:?}"), v, "a table such as [hosts.web] or web = {}")?;
    t.check_keys(HOST_KEYS)?;
    let profile = match t.str("profile")? {
        None => None,
        Some(s) => Some(Profile::from_str(&s.value).map_err(|e| t.bad("profile", &s.span, e))?),
    };
    let dad = t.bool("dad")?.unwrap_or(false);
    let bindv6only = t.bool("bindv6only")?;
    let interface = match t.str("interface")? {
        None => "eth0".to_string(),
        Some(s) => {
            spec::check_interface(&name, &s.value).map_err(|e| doc.err(&s.span, e))?;
            s.value
        }
    };
    let mut sysctls = Vec::new();
    if let Some(mut st) = t.table("sysctls", format!("the sysctls of host {name:?}"), "a table of sysctl = value")? {
        flatten_sysctls(&mut st, "", &mut sysctls)?;
    }
    let gai_conf = t.str("gai_conf")?.map(|s| s.value);
    let mut private = Vec::new();
    if let Some((_, list)) = t.str_list("private", "an array of absolute directory paths such as [\"/var/lib/app\"]")? {
        for s in list {
            let at = |e: String| t.bad("private", &s.span, e);
            let p = nslab::host::hostfs::check_path(&s.value).map_err(at)?;
            nslab::host::hostfs::check_on_machine(&p).map_err(at)?;
            nslab::host::hostfs::check_nesting(&private, &p).map_err(at)?;
            private.push(p);
        }
    }
    let resolver_decl = t.str("resolver")?.map(|s| (s.value, s.span));
    let resolv = match t.table("resolv", format!("the resolv.conf options of host {name:?}"), "a table such as { timeout = 2, attempts = 1, rotate = true }")? {
        None => ResolvOptions::new(),
        Some(rt) => decode_resolv(rt)?,
    };
    let link = super::link::decode_link(&mut t)?;
    let (segments, segment_spans) = match t.str_list("segments", "an array of segment names such as [\"lan\", \"wan\"] (the first is its primary interface)")? {
        None => (Vec::new(), Vec::new()),
        Some((span, l)) if l.is_empty() => return Err(t.bad("segments", &span, "the array is empty; expected at least one segment name")),
        Some((_, l)) => l.into_iter().map(|s| (s.value, s.span)).unzip(),
    };
    let (router, router_span) = match super::segment::decode_router(&mut t, &name)? {
        Some((r, span)) => (Some(r), Some(span)),
        None => (None, None),
    };
    Ok(HostDef {
        name,
        profile,
        dad,
        bindv6only,
        sysctls,
        gai_conf,
        interface,
        private,
        resolver: None,
        resolver_decl,
        resolv,
        link,
        segments,
        segment_spans,
        router,
        router_span,
    })
}

/// Reads `[hosts.<name>.resolv]`: the options of resolv.conf(5), under their own names.
fn decode_resolv(mut rt: Table<'_, '_>) -> Result<ResolvOptions> {
    use nslab::host::etc::{MAX_ATTEMPTS, MAX_NDOTS, MAX_TIMEOUT};
    rt.check_keys(RESOLV_KEYS)?;
    let mut o = ResolvOptions::new();
    // glibc silently cuts larger values: refused here, so a scenario tests what it says.
    if let Some(n) = rt.int("timeout", 1..=i64::from(MAX_TIMEOUT))? {
        o = o.timeout(n as u32);
    }
    if let Some(n) = rt.int("attempts", 1..=i64::from(MAX_ATTEMPTS))? {
        o = o.attempts(n as u32);
    }
    if let Some(n) = rt.int("ndots", 0..=i64::from(MAX_NDOTS))? {
        o = o.ndots(n as u32);
    }
    for (key, set) in [
        ("rotate", ResolvOptions::rotate as fn(ResolvOptions, bool) -> ResolvOptions),
        ("single-request", ResolvOptions::single_request),
        ("single-request-reopen", ResolvOptions::single_request_reopen),
        ("edns0", ResolvOptions::edns0),
        ("use-vc", ResolvOptions::use_vc),
    ] {
        if let Some(b) = rt.bool(key)? {
            o = set(o, b);
        }
    }
    if let Some((_, list)) = rt.str_list("search", "an array of domains such as [\"corp.example.test\", \"lab.test\"]")? {
        for d in &list {
            ResolvOptions::new().search([d.value.clone()]).check().map_err(|e| rt.bad("search", &d.span, e))?;
        }
        o = o.search(list.into_iter().map(|s| s.value));
    }
    Ok(o)
}

/// Resolves each host's `resolver`: a resolver of `[resolvers]` (`resolvers`), a lab host
/// (`hosts`, with the hosts the lab adds), or an address, checked in every trial profile against
/// the families the host has.
pub(crate) fn check_resolvers(
    doc: &Doc<'_>,
    hosts: &mut [HostDef],
    known_hosts: &std::collections::BTreeSet<String>,
    resolvers: &[ResolverTarget],
    profiles: &[Profile],
) -> Result<()> {
    let profile_of = |hosts: &[HostDef], name: &str, trial: Profile| hosts.iter().find(|h| h.name == name).and_then(|h| h.profile).unwrap_or(trial);
    for i in 0..hosts.len() {
        let Some((text, span)) = hosts[i].resolver_decl.clone() else { continue };
        let name = hosts[i].name.clone();
        let at = |why: String| doc.err(&span, format!("resolver of host {name:?}: {why}"));
        let r = if let Some(r) = resolvers.iter().find(|r| r.name == text) {
            ResolverRef::Resolver { name: r.name.clone(), host: r.host.clone(), local: r.local }
        } else if known_hosts.contains(&text) {
            ResolverRef::Host(text.clone())
        } else if let Ok(ip) = text.parse::<IpAddr>() {
            ResolverRef::Address(ip)
        } else {
            let mut names: Vec<String> = resolvers.iter().map(|r| format!("resolver {}", r.name)).collect();
            names.extend(known_hosts.iter().map(|h| format!("host {h}")));
            return Err(at(format!(
                "{text:?} is not a declared resolver, a lab host or an IP address; expected one of {}, or an address such as \"127.0.0.1\"",
                names.join(", ")
            )));
        };
        for &trial in profiles {
            let p = hosts[i].profile.unwrap_or(trial);
            match &r {
                ResolverRef::Address(ip) => {
                    if !(ip.is_loopback() || nslab::addr::is_lab_address(ip)) {
                        return Err(at(format!("{ip} is outside the lab; expected a loopback address or one in {}", nslab::addr::LAB_PREFIXES)));
                    }
                    spec::resolver_address(&name, p, &hosts[i].interface, *ip).map_err(|e| at(format!("in the {trial} trial, {e}")))?;
                }
                ResolverRef::Resolver { host, .. } | ResolverRef::Host(host) if *host != name => {
                    let rp = profile_of(hosts, host, trial);
                    if !spec::shares_family(p, rp) {
                        return Err(at(format!(
                            "in the {trial} trial, host {name:?} (profile {p}) shares no address family with {host:?} (profile {rp}), so it could not reach its resolver; \
                             expected hosts with a family in common"
                        )));
                    }
                }
                _ => {}
            }
        }
        hosts[i].resolver = Some(r);
    }
    Ok(())
}

/// Reads sysctls, written quoted (`"net.ipv6.bindv6only" = 1`) or as dotted keys, which TOML
/// nests into tables (`net.ipv6.bindv6only = 1`).
fn flatten_sysctls(st: &mut Table<'_, '_>, prefix: &str, out: &mut Vec<(String, String)>) -> Result<()> {
    let doc = st.doc;
    for (k, v) in st.take_all() {
        let name = if prefix.is_empty() { k.value.clone() } else { format!("{prefix}.{}", k.value) };
        if let DeValue::Table(_) = v.get_ref() {
            let mut inner = Table::new(doc, st.what.clone(), v, "a table")?;
            flatten_sysctls(&mut inner, &name, out)?;
            continue;
        }
        sysctl::sysctl_path(&name).map_err(|e| doc.err(&k.span, e))?;
        let value = match v.get_ref() {
            DeValue::String(s) => s.to_string(),
            other => match int_of(other) {
                Some(Some(n)) => n.to_string(),
                _ => return Err(st.wrong(&name, &v, "a string or an integer")),
            },
        };
        out.push((name, value));
    }
    Ok(())
}
