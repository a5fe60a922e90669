//! The resolved scenario of one trial (`scenario.resolved.json` in its artifacts): what actually
//! ran, with templates filled in, host addresses and DNS records resolved for the profile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};

use crate::runner::context::Facts;
use crate::scenario::{Action, Condition, DnsFault, ExpectStart, FaultScope, FileContent, LinkState, Run, Scenario, Step, Template, When};
use nslab::addr::profile::Profile;
use nslab::dns::RecordValue;
use nslab::lab::build::Lab;

/// A scenario as one trial ran it.
#[derive(Debug, Serialize)]
pub struct Resolved {
    /// The scenario file.
    pub scenario: String,
    /// Its description.
    pub description: String,
    /// The trial's profile.
    pub profile: String,
    /// The trial's timeout, milliseconds.
    pub timeout_ms: u64,
    /// The artifact directory (`{{artifacts}}`).
    pub artifacts: PathBuf,
    /// Every host of the lab (declared and added: `dns`, `nat64`), by name.
    pub hosts: BTreeMap<String, ResolvedHost>,
    /// The lab DNS server and its zones, when the scenario has `[dns]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<ResolvedDns>,
    /// The services, in file order, with their templates filled in.
    pub services: Vec<ResolvedService>,
    /// The caching resolvers, upstreams first; each is also the service of the same name, whose
    /// `files` hold its generated configuration.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolvers: Vec<Value>,
    /// The timeline steps that run in this profile, in order.
    pub timeline: Vec<ResolvedStep>,
    /// The expectations that apply to this profile, as sentences.
    pub expectations: Vec<String>,
}

/// A host and its addresses.
#[derive(Debug, Serialize)]
pub struct ResolvedHost {
    /// Its profile.
    pub profile: String,
    /// Its lab interface.
    pub interface: String,
    /// IPv4 address, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    /// Global IPv6 address, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    /// Link-local address, with scope, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_local: Option<String>,
    /// Its `/etc/resolv.conf`, line by line (the resolver it names and the options).
    pub resolv_conf: Vec<String>,
    /// In a routed lab: every interface with its segment and addresses, primary first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Value>,
}

/// The lab DNS server.
#[derive(Debug, Serialize)]
pub struct ResolvedDns {
    /// The host it runs in.
    pub host: String,
    /// Its IPv4 address (`{{dns.ipv4}}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    /// Its IPv6 address (`{{dns.ipv6}}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    /// DNS64 prefix, when on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns64: Option<String>,
    /// The declared zones' records at the start, `host = ...` records expanded to A/AAAA and
    /// templated values rendered.
    pub records: Vec<ResolvedRecord>,
    /// Templated records left out in this profile, each with why (the host has no address of
    /// that family here).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub omitted: Vec<OmittedRecord>,
}

/// A templated record this trial's zone does not have.
#[derive(Debug, Serialize)]
pub struct OmittedRecord {
    /// Absolute owner name, with a trailing dot.
    pub name: String,
    /// `A`, `AAAA`, `CNAME` ...
    #[serde(rename = "type")]
    pub rtype: String,
    /// The value as written (`{{host.blue.ipv6}}`).
    pub template: String,
    /// Why it is left out.
    pub reason: String,
}

/// One DNS record.
#[derive(Debug, Serialize)]
pub struct ResolvedRecord {
    /// Absolute owner name, with a trailing dot.
    pub name: String,
    /// `A`, `AAAA`, `CNAME` ...
    #[serde(rename = "type")]
    pub rtype: String,
    /// TTL, seconds.
    pub ttl: u32,
    /// The data, as in a zone file.
    pub value: String,
}

/// A service as started.
#[derive(Debug, Serialize)]
pub struct ResolvedService {
    /// Its name.
    pub name: String,
    /// Its host.
    pub host: String,
    /// The command line run (`sh -c SCRIPT` for `shell`).
    pub command: Vec<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Files written into its directory: path and where the content came from.
    pub files: Vec<Value>,
    /// When it counts as started (`{"listening": "tcp:[::]:8000"}`, `{"line": REGEX}`,
    /// `{"exit": true}`); absent: when spawned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<Value>,
    /// How long `ready` may take, milliseconds.
    pub ready_timeout_ms: u64,
    /// `success` or `failure` in this profile.
    pub expect_start: &'static str,
    /// Whether it starts on its own.
    pub autostart: bool,
    /// Whether it runs under strace.
    pub trace: bool,
}

/// A timeline step.
#[derive(Debug, Serialize)]
pub struct ResolvedStep {
    /// Its name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `at_ms` (from the services' start) or `after_ms` (after the previous step).
    pub when: Value,
    /// The action, as written in the file (`swap-cname`).
    pub action: &'static str,
    /// The profiles it runs in, when limited (it ran in this trial's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profiles: Option<Vec<&'static str>>,
    /// The action's fields.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, Value>,
}

fn ms(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}

fn render(t: &Template, ctx: &dyn crate::scenario::TemplateContext) -> String {
    t.render(ctx).unwrap_or_else(|e| format!("<{e}>"))
}

fn condition(c: &Condition) -> Value {
    match c {
        Condition::Listening(l) => json!({ "listening": l.to_string() }),
        Condition::Line(re) => json!({ "line": re.as_str() }),
        Condition::Exit { success: false } => json!({ "exit": true }),
        Condition::Exit { success: true } => json!({ "exit": "success" }),
        Condition::Answers { listening, query } => json!({ "listening": listening.to_string(), "answers": query }),
    }
}

fn record_value(d: &RecordValue) -> String {
    match d {
        RecordValue::Host(h) => format!("host {h}"),
        RecordValue::A(a) => a.to_string(),
        RecordValue::Aaaa(a) => a.to_string(),
        RecordValue::Ns(n) | RecordValue::Cname(n) | RecordValue::Ptr(n) => n.clone(),
        RecordValue::Txt(parts) => parts.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(" "),
        RecordValue::Srv { priority, weight, port, target } => format!("{priority} {weight} {port} {target}"),
        RecordValue::Mx { preference, exchange } => format!("{preference} {exchange}"),
        RecordValue::Soa(s) => format!("{} {} {} {} {} {} {}", s.mname, s.rname, s.serial, s.refresh, s.retry, s.expire, s.minimum),
    }
}

fn absolute(name: &str, origin: &str) -> String {
    let origin = origin.trim_end_matches('.');
    if name.ends_with('.') {
        name.to_string()
    } else if name == "@" {
        format!("{origin}.")
    } else {
        format!("{name}.{origin}.")
    }
}

fn step(s: &Step) -> ResolvedStep {
    let when = match s.when {
        When::At(d) => json!({ "at_ms": ms(d) }),
        When::AfterPrevious(d) => json!({ "after_ms": ms(d) }),
    };
    let fields = match &s.action {
        Action::Start { service } | Action::Stop { service } | Action::Kill { service } => json!({ "service": service }),
        Action::SwapCname { zone, record, to } => json!({ "zone": zone, "record": record, "to": to }),
        Action::SetRecord { zone, record, data, ttl } => match data {
            RecordValue::Host(h) => json!({ "zone": zone, "record": record, "host": h, "ttl": ttl }),
            d => json!({ "zone": zone, "record": record, "type": d.kind().map(|t| t.to_string()), "value": record_value(d), "ttl": ttl }),
        },
        Action::DeleteRecord { zone, record, rtype } => json!({ "zone": zone, "record": record, "type": rtype.map(|t| t.to_string()) }),
        Action::SetTtl { zone, record, rtype, ttl } => json!({ "zone": zone, "record": record, "type": rtype.to_string(), "ttl": ttl }),
        Action::DnsFault { fault, scope } => {
            let (name, delay) = match fault {
                DnsFault::ServFail => ("servfail", None),
                DnsFault::NxDomain => ("nxdomain", None),
                DnsFault::Refused => ("refused", None),
                DnsFault::Drop => ("drop", None),
                DnsFault::Truncate => ("truncate", None),
                DnsFault::TcpOnly => ("tcp-only", None),
                DnsFault::Delay(d) => ("delay", Some(ms(*d))),
            };
            let domain = match scope {
                FaultScope::Server => None,
                FaultScope::Name(n) => Some(n.clone()),
                FaultScope::Suffix(n) => Some(format!("*.{n}")),
            };
            json!({ "fault": name, "delay_ms": delay, "domain": domain })
        }
        Action::ClearDnsFaults => json!({}),
        Action::Link { host, state } => json!({ "host": host, "state": if *state == LinkState::Up { "up" } else { "down" } }),
        Action::LinkCondition { host, condition } => json!({ "host": host, "condition": condition, "clear": condition.is_none() }),
        Action::Route { router, family, state } => {
            json!({ "router": router, "family": if *family == nslab::Family::V4 { "ipv4" } else { "ipv6" }, "state": state.name() })
        }
        Action::AddAddress { host, address, dad, hold } => json!({ "host": host, "address": address.to_string(), "dad": dad, "hold": hold }),
        Action::CompleteDad { host, address } => json!({ "host": host, "address": address.to_string() }),
        Action::RemoveAddress { host, address } => json!({ "host": host, "address": address.to_string() }),
        Action::ChangeAddress { host, from, to, dad } => json!({ "host": host, "from": from.to_string(), "to": to.to_string(), "dad": dad }),
        Action::Wait { duration } => json!({ "duration_ms": ms(*duration) }),
        Action::WaitDnsQuery { host, name, rtype, timeout } => {
            json!({ "host": host, "name": name, "type": rtype.map(|t| t.to_string()), "timeout_ms": ms(*timeout) })
        }
        Action::WaitFor { service, condition: c, timeout } => json!({ "service": service, "condition": condition(c), "timeout_ms": ms(*timeout) }),
        Action::Ipv6Arrives { segment, mode, hold } => json!({ "segment": segment, "mode": mode.name(), "hold": hold }),
        Action::ReleaseDad { host } => json!({ "host": host }),
        Action::Renumber { segment } | Action::StopAdvertising { segment } => json!({ "segment": segment }),
        Action::Dns64 { segment, on } | Action::AaaaRecords { segment, on } => json!({ "segment": segment, "state": if *on { "on" } else { "off" } }),
        Action::WaitAddress { host, prefix, prefix_len, state, timeout } => {
            json!({ "host": host, "prefix": format!("{prefix}/{prefix_len}"), "state": state.name(), "timeout_ms": ms(*timeout) })
        }
    };
    let mut fields = match fields {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    fields.retain(|_, v| !v.is_null());
    ResolvedStep { name: s.name.clone(), when, action: s.action.kind(), profiles: s.profiles.as_ref().map(|ps| ps.iter().map(|p| p.name()).collect()), fields }
}

impl Resolved {
    /// The scenario as the trial in `profile` on `lab` ran it.
    pub fn of(lab: &Lab, s: &Scenario, profile: Profile, facts: Option<&Facts>) -> Resolved {
        let hosts = lab
            .hosts()
            .iter()
            .map(|h| {
                let r = ResolvedHost {
                    profile: h.profile().name().to_string(),
                    interface: h.interface().to_string(),
                    ipv4: h.ipv4().map(|a| a.to_string()),
                    ipv6: h.ipv6().map(|a| a.to_string()),
                    link_local: h.link_local().map(|a| format!("{a}%{}", h.interface())),
                    resolv_conf: h.etc_file("resolv.conf").unwrap_or_default().lines().filter(|l| !l.starts_with('#')).map(str::to_string).collect(),
                    interfaces: if lab.segments().len() > 1 {
                        h.interfaces()
                            .iter()
                            .map(|i| json!({ "name": i.name, "segment": i.segment, "profile": i.profile.name(), "ipv4": i.ipv4, "ipv6": i.ipv6, "mtu": i.mtu }))
                            .collect()
                    } else {
                        Vec::new()
                    },
                };
                (h.name().to_string(), r)
            })
            .collect();
        let dns = s.dns.as_ref().map(|d| {
            let server = lab.host(d.server_host()).ok();
            let mut records = Vec::new();
            // As the lab's DNS server was given them (see the trial's setup).
            let (zones, omitted) = match crate::runner::context::PlanContext::of(s, profile).map_err(|e| e.to_string()).and_then(|c| d.zones_in(&c)) {
                Ok(z) => z,
                Err(_) => (d.zones.clone(), Vec::new()),
            };
            let omitted =
                omitted.into_iter().map(|o| OmittedRecord { name: o.name, rtype: o.kind.to_string(), template: o.template, reason: o.reason }).collect();
            for z in &zones {
                for r in &z.records {
                    let name = absolute(&r.name, &z.origin);
                    match &r.value {
                        RecordValue::Host(h) => {
                            let host = lab.host(h).ok();
                            for (t, v) in
                                [("A", host.and_then(|h| h.ipv4()).map(|a| a.to_string())), ("AAAA", host.and_then(|h| h.ipv6()).map(|a| a.to_string()))]
                            {
                                if let Some(v) = v {
                                    records.push(ResolvedRecord { name: name.clone(), rtype: t.into(), ttl: r.ttl, value: v });
                                }
                            }
                        }
                        other => records.push(ResolvedRecord {
                            name,
                            rtype: other.kind().map(|t| t.to_string()).unwrap_or_default(),
                            ttl: r.ttl,
                            value: record_value(other),
                        }),
                    }
                }
            }
            ResolvedDns {
                host: d.server_host().to_string(),
                ipv4: server.and_then(|h| h.ipv4()).map(|a| a.to_string()),
                ipv6: server.and_then(|h| h.ipv6()).map(|a| a.to_string()),
                dns64: d.dns64.map(|p| format!("{}/96", p.prefix())),
                records,
                omitted,
            }
        });
        let services = s
            .services_for(profile)
            .map(|svc| {
                let dir = lab.artifacts().join("services").join(&svc.name);
                let ctx = facts.map(|f| f.for_service(dir.clone()));
                let r = |t: &Template| match &ctx {
                    Some(c) => render(t, c),
                    None => t.source().to_string(),
                };
                let command = match &svc.run {
                    Run::Command(argv) => argv.iter().map(r).collect(),
                    Run::Shell(t) => vec!["sh".into(), "-c".into(), r(t)],
                };
                let files = svc
                    .files
                    .iter()
                    .map(|f| match &f.content {
                        FileContent::Inline(t) => json!({ "path": f.path, "content": r(t) }),
                        FileContent::Source(src) => json!({ "path": f.path, "source": src }),
                        FileContent::Resolver { def, root_hints } => {
                            let text = match facts {
                                Some(fa) => fa.resolver_file(def, *root_hints, &dir, &s.resolver_hosts()).unwrap_or_else(|e| format!("<{e}>")),
                                None => "<generated per trial>".to_string(),
                            };
                            json!({ "path": f.path, "resolver": def.name, "kind": def.kind.name(), "content": text })
                        }
                    })
                    .collect();
                ResolvedService {
                    name: svc.name.clone(),
                    host: svc.host.clone(),
                    command,
                    env: svc.env.iter().map(|(k, v)| (k.clone(), r(v))).collect(),
                    cwd: svc.cwd.as_ref().map(|t| PathBuf::from(r(t))).unwrap_or(dir),
                    files,
                    ready: svc.ready.as_ref().map(condition),
                    ready_timeout_ms: ms(svc.ready_timeout),
                    expect_start: match svc.expect_start_for(profile) {
                        ExpectStart::Success => "success",
                        ExpectStart::Failure => "failure",
                    },
                    autostart: svc.autostart,
                    trace: svc.trace,
                }
            })
            .collect();
        Resolved {
            scenario: s.path.display().to_string(),
            description: s.description.clone(),
            profile: profile.name().to_string(),
            timeout_ms: ms(s.timeout),
            artifacts: lab.artifacts().to_path_buf(),
            hosts,
            dns,
            services,
            resolvers: s
                .resolvers
                .iter()
                .map(|r| {
                    let upstream = match &r.upstream {
                        crate::scenario::Upstream::LabDns => "the lab DNS".to_string(),
                        crate::scenario::Upstream::Resolver(n) => format!("resolver {n}"),
                        crate::scenario::Upstream::Host(h) => format!("host {h}"),
                        crate::scenario::Upstream::Address(a) => a.to_string(),
                    };
                    json!({
                        "name": r.name,
                        "host": r.host,
                        "kind": r.kind.name(),
                        "mode": if r.recurse { "recurse" } else { "forward" },
                        "upstream": if r.recurse { Value::Null } else { Value::from(upstream) },
                        "min_ttl_s": r.min_ttl,
                        "max_ttl_s": r.max_ttl,
                        "negative_ttl_s": r.negative_ttl,
                        "serve_stale_s": r.serve_stale.map(|d| d.as_secs()),
                        "prefetch": r.prefetch,
                        "cache_size": r.cache_size,
                        "service": r.name,
                    })
                })
                .collect(),
            timeline: s.timeline.iter().filter(|st| st.applies_to(profile)).map(step).collect(),
            expectations: s.expectations_for(profile).map(|e| e.description()).collect(),
        }
    }

    /// Writes it as `scenario.resolved.json` in `dir`.
    ///
    /// # Errors
    /// File errors.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        nslab::os::fsafe::write_artifact(&dir.join("scenario.resolved.json"), (text + "\n").as_bytes(), 0o600).map_err(Into::into)
    }
}
