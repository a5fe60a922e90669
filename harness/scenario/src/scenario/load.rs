//! Loading one scenario file: read, parse, decode, cross-check.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::decode::{check_unique, Doc, Result, Table};
use super::dns::{decode_dns, DnsDef};
use super::error::ScenarioError;
use super::expect::{decode_expectations, Expectation};
use super::hosts::{decode_hosts, HostDef};
use super::known::Known;
use super::requires::{check_program, Requirement, VersionConstraint};
use super::service::{decode_services, ServiceDef};
use super::timeline::{decode_timeline, Step};
use nslab::addr::profile::Profile;
use nslab::lab::spec::HostSpec;

/// Largest scenario file accepted.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// How long a trial may run unless `timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

const TOP_KEYS: &[&str] = &[
    "description",
    "program",
    "profiles",
    "timeout",
    "time_scale",
    "requires",
    "build",
    "segments",
    "hosts",
    "dns",
    "targets",
    "services",
    "resolvers",
    "timeline",
    "expect",
];

/// A loaded, validated scenario: every name it refers to exists, every value parsed.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file, as given to [`load`].
    pub path: PathBuf,
    /// What the scenario shows.
    pub description: String,
    /// The profiles it runs in, one trial each (default: dual-stack).
    pub profiles: Vec<Profile>,
    /// How long one trial may take in all.
    pub timeout: Duration,
    /// Programs it needs, in file order.
    pub requires: Vec<Requirement>,
    /// The program under test, when `program` names it: the row of the compatibility matrix it
    /// belongs to.
    pub program: Option<ProgramDef>,
    /// Its segments (`[segments.<name>]`), in file order; empty: one segment, `lan`.
    pub segments: Vec<super::segment::SegmentDef>,
    /// Its hosts, in file order.
    pub hosts: Vec<HostDef>,
    /// The lab DNS server, when the scenario has a `[dns]` table.
    pub dns: Option<DnsDef>,
    /// Built-in HTTP targets, in file order.
    pub targets: Vec<super::target::TargetDef>,
    /// Its services: first one generated per resolver (upstreams first), then its own in file order.
    pub services: Vec<ServiceDef>,
    /// Its caching resolvers, each one also a service of the same name, upstreams first.
    pub resolvers: Vec<super::resolver::ResolverDef>,
    /// The timeline, in order.
    pub timeline: Vec<Step>,
    /// The expectations, in file order.
    pub expectations: Vec<Expectation>,
    /// IPv6 provisioning of the lab's segment (`[segments.lan.ipv6]`), if any.
    pub provision: Option<super::provision::ProvisionDef>,
    /// `time_scale`: its trials run in scaled time, programs seeing time pass this many times
    /// faster, every `at`, window and figure in program time (scenarios/README.md).
    pub time_scale: Option<f64>,
    /// Its builds (`[build.<name>]`), in file order: run once per cache key before the trials
    /// whose services use their output (`{{build.<name>}}`).
    pub builds: Vec<super::build::BuildDef>,
    /// Why it cannot run in scaled time, if it cannot (see
    /// [`real_time_only`](super::time_scale::real_time_only)): the reason a scale given on the
    /// command line is refused.
    pub real_time_only: Option<String>,
}

/// The program under test, as `program` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramDef {
    /// Its name (`nginx`, `postgres`).
    pub name: String,
    /// A command that prints its version, for a program that is not in `[requires]` (a server
    /// off PATH such as `/usr/lib/postgresql/15/bin/postgres`); `None`: its `[requires]` probe.
    pub version: Option<Vec<String>>,
}

impl Scenario {
    /// The program under test: `program`, or else the first program of `[requires]`.
    pub fn program_under_test(&self) -> Option<&str> {
        self.program.as_ref().map(|p| p.name.as_str()).or_else(|| self.requires.first().map(|r| r.program.as_str()))
    }

    /// The profiles of its trials, in the order given.
    pub fn trials(&self) -> &[Profile] {
        &self.profiles
    }

    /// The folder of the scenario file (where `source` files are looked up).
    pub fn dir(&self) -> &Path {
        self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
    }

    /// The library's host specifications for a trial in `profile`.
    pub fn host_specs(&self, profile: Profile) -> Vec<HostSpec> {
        if self.segments.is_empty() {
            self.hosts.iter().map(|h| h.to_host_spec(profile)).collect()
        } else {
            self.hosts.iter().map(|h| h.to_routed_host_spec()).collect()
        }
    }

    /// The addresses each host of a trial in `profile` gets (the lab's own `dns` and `nat64`
    /// hosts included), computed without building the lab.
    ///
    /// # Errors
    /// As [`nslab::LabBuilder::address_plan`].
    pub fn address_plan(&self, profile: Profile) -> std::result::Result<Vec<nslab::addr::plan::HostAddresses>, Box<nslab::Error>> {
        let mut b = self.lab_builder(profile);
        if let Some(d) = &self.dns {
            b = b.dns(d.lab_dns());
        }
        b.address_plan().map_err(Box::new)
    }

    /// A lab builder with the scenario's segments and hosts for a trial in `profile` (no DNS,
    /// artifacts or files yet).
    pub fn lab_builder(&self, profile: Profile) -> nslab::LabBuilder {
        // Scenario trials capture every link (the library's default is off: its cost is in
        // BENCHMARKS.md); NSLAB_CAPTURE_MB sets the ring, 0 turns it off.
        let ring = nslab::lab::capture::ring_from_env().unwrap_or(nslab::lab::capture::DEFAULT_RING_BYTES);
        let mut b = nslab::Lab::builder().profile(profile).capture_ring(Some(ring));
        for s in &self.segments {
            b = b.segment(s.to_spec());
        }
        b.hosts(self.host_specs(profile))
    }

    /// One row per interface of each host of a trial in `profile` (see
    /// [`nslab::LabBuilder::interface_plan`]): a routed lab's hosts have one per segment.
    ///
    /// # Errors
    /// As [`nslab::LabBuilder::address_plan`].
    pub fn interface_plan(&self, profile: Profile) -> std::result::Result<Vec<nslab::addr::plan::HostAddresses>, Box<nslab::Error>> {
        let mut b = self.lab_builder(profile);
        if let Some(d) = &self.dns {
            b = b.dns(d.lab_dns());
        }
        b.interface_plan().map_err(Box::new)
    }

    /// The host of that name.
    pub fn host(&self, name: &str) -> Option<&HostDef> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Each resolver's name and the host it runs in, for a host's `resolver = "<name>"`.
    pub fn resolver_hosts(&self) -> Vec<(String, String)> {
        self.resolvers.iter().map(|r| (r.name.clone(), r.host.clone())).collect()
    }

    /// The resolver of that name.
    pub fn resolver(&self, name: &str) -> Option<&super::resolver::ResolverDef> {
        self.resolvers.iter().find(|r| r.name == name)
    }

    /// The services that exist in a trial with `profile` (`profiles` on a service), in file order.
    pub fn services_for(&self, profile: Profile) -> impl Iterator<Item = &ServiceDef> {
        self.services.iter().filter(move |s| s.applies_to(profile))
    }

    /// The service of that name.
    pub fn service(&self, name: &str) -> Option<&ServiceDef> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The index of the timeline step of that name.
    pub fn step_index(&self, name: &str) -> Option<usize> {
        self.timeline.iter().position(|s| s.name.as_deref() == Some(name))
    }

    /// The expectations checked in a trial with `profile`.
    pub fn expectations_for(&self, profile: Profile) -> impl Iterator<Item = &Expectation> {
        self.expectations.iter().filter(move |e| e.applies_to(profile))
    }
}

/// Reads and validates a scenario file. Besides the file, only files it names as `source` are
/// looked at (they must exist inside its folder); nothing is run.
///
/// # Errors
/// A [`ScenarioError`] naming `FILE:LINE:COL`, what was found and what was expected.
pub fn load(path: &Path) -> std::result::Result<Scenario, ScenarioError> {
    let read_err = |e: io::Error| ScenarioError::file(path, format!("cannot read the scenario file ({e}); expected a readable TOML file"));
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes).map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(ScenarioError::file(path, format!("the file is larger than {} KiB; expected a scenario of at most 1 MiB", MAX_FILE_SIZE >> 10)));
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let byte = e.as_bytes()[at];
            let valid = std::str::from_utf8(&e.as_bytes()[..at]).unwrap_or_default();
            return Err(ScenarioError::at(path, valid, at, format!("byte 0x{byte:02x} is not UTF-8; expected a UTF-8 text file")));
        }
    };
    parse_str(path, &text)
}

/// Validates scenario text as if it were the file at `path` (named in errors; its folder is
/// where `source` files are looked up).
///
/// # Errors
/// As [`load`].
pub fn parse_str(path: &Path, text: &str) -> std::result::Result<Scenario, ScenarioError> {
    if text.len() as u64 > MAX_FILE_SIZE {
        return Err(ScenarioError::file(path, format!("the file is larger than {} KiB; expected a scenario of at most 1 MiB", MAX_FILE_SIZE >> 10)));
    }
    let doc = Doc { file: path, src: text };
    let root = DeTable::parse(text).map_err(|e| syntax_error(&doc, &e))?;
    let span = root.span();
    let mut t = Table::from_table(&doc, "the scenario".into(), span, root.into_inner());
    t.check_keys(TOP_KEYS)?;
    decode(&doc, &mut t)
}

fn syntax_error(doc: &Doc<'_>, e: &toml::de::Error) -> ScenarioError {
    let msg = e.message().trim();
    let too_deep = msg.starts_with("cannot recurse further") || msg == "recursion limit";
    let span = match e.span() {
        Some(span) => span,
        // The parser gives no place for a too-deep dotted key such as [a.b.c.(...)]: point at
        // the first line deep enough to be it.
        None if too_deep => deep_line(doc.src).map_or(0..0, |at| at..at),
        None => 0..0,
    };
    let message = if msg == "duplicate key" {
        let key = doc.src.get(span.clone()).unwrap_or("").trim().trim_matches(|c| c == '"' || c == '\'');
        format!("duplicate key {key:?}; expected each key once in a table")
    } else if too_deep {
        "invalid TOML: arrays or tables nested too deeply; expected at most 80 levels".to_string()
    } else {
        format!("invalid TOML: {msg}")
    };
    doc.err(&span, message)
}

/// The byte offset of the first line with more than 80 of `.`, `[` and `{`, if any.
fn deep_line(src: &str) -> Option<usize> {
    let mut at = 0;
    for line in src.split_inclusive('\n') {
        if line.bytes().filter(|b| matches!(b, b'.' | b'[' | b'{')).count() > 80 {
            return Some(at);
        }
        at += line.len();
    }
    None
}

fn decode(doc: &Doc<'_>, t: &mut Table<'_, '_>) -> Result<Scenario> {
    let description = t.req_str("description", "\"<what this scenario shows>\"")?;
    if description.value.trim().is_empty() {
        return Err(t.bad("description", &description.span, "it is empty; expected a sentence saying what the scenario shows"));
    }
    let profiles = match t.str_list("profiles", "an array of profile names such as [\"ipv4-only\", \"dual-stack\", \"ipv6-only\"]")? {
        None => vec![Profile::DualStack],
        Some((span, list)) => {
            if list.is_empty() {
                return Err(t.bad("profiles", &span, "the array is empty; expected at least one profile"));
            }
            check_unique(doc, "profile", &list)?;
            list.iter().map(|s| Profile::from_str(&s.value).map_err(|e| t.bad("profiles", &s.span, e))).collect::<Result<Vec<_>>>()?
        }
    };
    let timeout = t.positive_duration("timeout")?.unwrap_or(DEFAULT_TIMEOUT);
    let time_scale = super::time_scale::decode_time_scale(t)?;
    let mut requires = Vec::new();
    if let Some(mut rt) = t.table("requires", "[requires]", "a table of program = \"version constraint\"")? {
        for (k, v) in rt.take_all() {
            check_program(&k.value).map_err(|e| doc.err(&k.span, e))?;
            let s = rt.as_str(&k.value, v, "a version constraint such as \"*\" or \">=17\"")?;
            let version = VersionConstraint::parse(&s.value).map_err(|e| rt.bad(&k.value, &s.span, e))?;
            requires.push(Requirement { program: k.value, version });
        }
    }
    let program = match t.take("program") {
        None => None,
        Some(v) if !matches!(v.get_ref(), DeValue::String(_)) => {
            const EXAMPLE: &str = "a program of [requires] such as \"nginx\", or a table such as { name = \"postgres\", version = [\"/usr/lib/postgresql/15/bin/postgres\", \"--version\"] }";
            let mut pt = Table::new(doc, "program", v, EXAMPLE)?;
            pt.check_keys(&["name", "version"])?;
            let name = pt.req_str("name", "\"postgres\"")?;
            let version = match pt.str_list("version", "a command such as [\"postgres\", \"--version\"]")? {
                None => return Err(pt.missing("version", "[\"/usr/lib/postgresql/15/bin/postgres\", \"--version\"]")),
                Some((span, l)) if l.is_empty() => return Err(pt.bad("version", &span, "the command is empty; expected a program and its arguments")),
                Some((_, l)) => l.into_iter().map(|s| s.value).collect(),
            };
            Some(ProgramDef { name: name.value, version: Some(version) })
        }
        Some(v) => match t.as_str("program", v, "a string")? {
            p if requires.iter().any(|r| r.program == p.value) => Some(ProgramDef { name: p.value, version: None }),
            p => {
                let names: Vec<&str> = requires.iter().map(|r| r.program.as_str()).collect();
                let expected = if names.is_empty() {
                    "a program declared in [requires] (none is)".to_string()
                } else {
                    format!("one of the programs in [requires]: {}", names.join(", "))
                };
                return Err(t.bad("program", &p.span, format!("{:?} is not in [requires]; expected {expected}, whose version the matrix shows", p.value)));
            }
        },
    };
    let builds = match t.take("build") {
        Some(v) => super::build::decode_builds(doc, v)?,
        None => Vec::new(),
    };
    let segments_span = t.key_span("segments");
    let (segments, ipv6_tables) = match t.take("segments") {
        Some(v) => super::segment::decode_segments(doc, v)?,
        None => (Vec::new(), Vec::new()),
    };
    let hosts = match t.take("hosts") {
        Some(v) => decode_hosts(doc, v)?,
        None => Vec::new(),
    };
    let uses: Vec<super::segment::HostUse<'_>> = hosts
        .iter()
        .map(|h| super::segment::HostUse {
            name: &h.name,
            profile: h.profile,
            segments: &h.segments,
            segment_spans: &h.segment_spans,
            router_span: h.router_span.as_ref(),
        })
        .collect();
    super::segment::check(doc, &segments, &uses, &profiles, segments_span.as_ref())?;
    if hosts.is_empty() {
        return Err(doc.err(&t.span, "the scenario declares no hosts; expected at least one [hosts.<name>] table, such as [hosts.web]"));
    }
    let mut known = Known {
        hosts: hosts.iter().map(|h| h.name.clone()).collect(),
        routers: hosts.iter().filter(|h| h.router.is_some()).map(|h| h.name.clone()).collect(),
        profiles: profiles.clone(),
        builds: builds.iter().map(|b| b.name.clone()).collect(),
        ..Known::default()
    };
    // Labs with hosts behind NAT64 get a router host, usable like a declared one.
    if profiles.iter().any(|p| p.uses_nat64()) || hosts.iter().any(|h| h.profile.is_some_and(|p| p.uses_nat64())) {
        known.hosts.insert(nslab::lab::nat64::NAT64_HOST.to_string());
    }
    let dns = t.take("dns").map(|v| decode_dns(doc, v, &known.hosts)).transpose()?;
    if let Some(d) = &dns {
        known.dns = true;
        known.hosts.insert(d.server_host().to_string());
        known.zones = d.zones.iter().map(|z| z.origin.clone()).collect();
    }
    let mut provision = None;
    for (index, name, v) in ipv6_tables {
        // The provisioner serves the hosts whose primary interface is on the segment: the
        // lab's first segment, where every host without `segments` is.
        if index != 0 {
            let first = segments.first().map_or(super::provision::LAN, |s| s.name.as_str());
            return Err(doc.err(
                &name.span,
                format!(
                    "segment {:?} has an ipv6 table; IPv6 provisioning is on the lab's first segment, where hosts without `segments` are; expected [segments.{first}.ipv6]",
                    name.value
                ),
            ));
        }
        let def = super::provision::decode_ipv6(doc, v, &name.value, &known)?;
        // In a routed lab the router must be on the segment, and the hosts it serves have it
        // as their primary interface.
        let on = |host: &str, primary: bool| {
            hosts
                .iter()
                .find(|h| h.name == host)
                .is_none_or(|h| h.segments.is_empty() || if primary { h.segments[0] == def.segment } else { h.segments.contains(&def.segment) })
        };
        if !on(&def.router, false) {
            return Err(doc.err(
                &name.span,
                format!(
                    "[segments.{}.ipv6] names router {:?}, which is not on segment {:?}; expected a host with it in `segments`",
                    def.segment, def.router, def.segment
                ),
            ));
        }
        if let Some(h) = def.hosts.iter().flatten().find(|h| !on(h, true)) {
            return Err(doc.err(
                &name.span,
                format!(
                    "[segments.{}.ipv6] names host {h:?}, whose first segment is not {:?}; expected hosts whose primary interface is on it",
                    def.segment, def.segment
                ),
            ));
        }
        provision = Some(def);
    }
    if let Some(p) = &provision {
        known.segments.insert(p.segment.clone());
    }
    let mut services = match t.take("services") {
        Some(v) => decode_services(doc, v, &known)?,
        None => Vec::new(),
    };
    known.services = services.iter().map(|s| s.name.clone()).collect::<BTreeSet<_>>();
    let resolvers = match t.take("resolvers") {
        Some(v) => super::resolver::decode_resolvers(doc, v, &known)?,
        None => Vec::new(),
    };
    // Resolvers hosts may name in `resolver`: each listens on 127.0.0.1 of its own host too.
    let resolver_targets: Vec<super::hosts::ResolverTarget> = resolvers
        .iter()
        .map(|r| super::hosts::ResolverTarget { name: r.name.clone(), host: r.host.clone(), local: std::net::IpAddr::from([127, 0, 0, 1]) })
        .collect();
    known.resolvers = resolvers.iter().map(|r| (r.name.clone(), r.host.clone())).collect();
    let mut hosts = hosts;
    super::hosts::check_resolvers(doc, &mut hosts, &known.hosts, &resolver_targets, &profiles)?;
    // A resolver is a service of its own, started before the scenario's services (which use it).
    let probe = format!("{}.{}", dns.as_ref().map_or(nslab::lab::dns_host::DNS_HOST, |d| d.server_host()), nslab::addr::plan::LAB_DOMAIN);
    let generated: Vec<ServiceDef> = resolvers.iter().map(|r| super::resolver_service::resolver_service(r, &probe)).collect();
    services.splice(0..0, generated);
    known.services = services.iter().map(|s| s.name.clone()).collect::<BTreeSet<_>>();
    known.service_profiles = services.iter().filter_map(|s| s.profiles.clone().map(|ps| (s.name.clone(), ps))).collect();
    known.traced = services.iter().filter(|s| s.trace).map(|s| s.name.clone()).collect();
    let targets = match t.take("targets") {
        Some(v) => super::target::decode_targets(doc, v, &known)?,
        None => Vec::new(),
    };
    known.targets = targets.iter().map(|t| t.name.clone()).collect();
    known.log_targets = targets.iter().filter(|t| matches!(t.kind, super::target::TargetKind::Log { .. })).map(|t| t.name.clone()).collect();
    let steps = t.tables("timeline", "an array of steps, written [[timeline]]")?;
    let timeline = decode_timeline(doc, steps, &mut known)?;
    let items = t.tables("expect", "an array of expectations, written [[expect]]")?;
    let expectations = decode_expectations(doc, items, &known)?;
    let real_time_only = super::time_scale::real_time_only(&hosts, &segments, &services, provision.is_some(), &timeline);
    if let (Some((_, span)), Some(why)) = (&time_scale, &real_time_only) {
        return Err(t.bad("time_scale", span, super::time_scale::refusal(why)));
    }
    Ok(Scenario {
        path: doc.file.to_path_buf(),
        description: description.value,
        profiles,
        timeout,
        requires,
        program,
        segments,
        hosts,
        dns,
        targets,
        services,
        resolvers,
        timeline,
        expectations,
        provision,
        time_scale: time_scale.map(|(k, _)| k),
        builds,
        real_time_only,
    })
}
