//! `[[timeline]]`: what happens to the lab after the services have started, step by step.

use std::time::Duration;

use super::decode::{check_unique, Doc, Result, Str, Table, Val};
use super::dns::{check_record_name, decode_record_data};
use super::known::{refer, Known};
use super::service::{decode_condition, Condition};
use super::values::{check_dns_name, parse_address, AddressDef};
use nslab::addr::profile::Profile;
use nslab::dns::{RecordKind, RecordValue};

/// How long a `wait-for` step waits unless its `timeout` says otherwise.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(10);

const STEP_KEYS: &[&str] = &["name", "at", "after", "action", "profiles"];
const ACTIONS: &str = "start, stop, kill, swap-cname, set-record, delete-record, set-ttl, dns-fault, clear-dns-faults, link, link-condition, route, add-address, complete-dad, remove-address, change-address, wait, wait-for, wait-dns-query, ipv6-arrives, renumber, stop-advertising, dns64, aaaa-records, wait-address, release-dad";

/// One step of the timeline.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its name, for expectations that time from it (`after = "swap"`).
    pub name: Option<String>,
    /// When it runs.
    pub when: When,
    /// What it does.
    pub action: Action,
    /// Only run in these profiles; `None`: in every profile of the scenario.
    pub profiles: Option<Vec<Profile>>,
}

impl Step {
    /// Whether the step runs in `profile`.
    pub fn applies_to(&self, profile: Profile) -> bool {
        self.profiles.as_ref().is_none_or(|ps| ps.contains(&profile))
    }
}

/// When a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// `after = "2s"`: this long after the previous step ended (or after the services started,
    /// for the first step); a step with neither `at` nor `after` is `AfterPrevious(0s)`.
    AfterPrevious(Duration),
    /// `at = "3s"`: this long after the services were started (at once if that moment has passed).
    At(Duration),
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Start a service (typically one with `autostart = false`), waiting for its `ready`.
    Start {
        /// The service.
        service: String,
    },
    /// Stop a service: SIGTERM, then SIGKILL after its `stop_grace`.
    Stop {
        /// The service.
        service: String,
    },
    /// Kill a service with SIGKILL.
    Kill {
        /// The service.
        service: String,
    },
    /// Point a CNAME at another target.
    SwapCname {
        /// The zone's origin.
        zone: String,
        /// The owner name (relative to the zone unless it ends with '.').
        record: String,
        /// The new target.
        to: String,
    },
    /// Replace the records of one name and type (for `host`: its A and AAAA).
    SetRecord {
        /// The zone's origin.
        zone: String,
        /// The owner name.
        record: String,
        /// The new data.
        data: RecordValue,
        /// TTL, seconds.
        ttl: u32,
    },
    /// Delete the records of a name: of one type, or all of them.
    DeleteRecord {
        /// The zone's origin.
        zone: String,
        /// The owner name.
        record: String,
        /// Only this type; `None`: every record of the name.
        rtype: Option<RecordKind>,
    },
    /// Change the TTL of a name's records of one type.
    SetTtl {
        /// The zone's origin.
        zone: String,
        /// The owner name.
        record: String,
        /// The type.
        rtype: RecordKind,
        /// New TTL, seconds.
        ttl: u32,
    },
    /// Make the DNS server misbehave.
    DnsFault {
        /// How.
        fault: DnsFault,
        /// For which queries.
        scope: FaultScope,
    },
    /// Switch every DNS fault off.
    ClearDnsFaults,
    /// Set a host's lab interface up or down.
    Link {
        /// The host.
        host: String,
        /// The new state.
        state: LinkState,
    },
    /// Apply a link condition to what a host sends (loss, delay, rate ...), or clear it.
    LinkCondition {
        /// The host.
        host: String,
        /// The condition; `None`: clear the host's condition.
        condition: Option<nslab::lab::link::LinkCondition>,
    },
    /// Change what a router does with packets of one family it would forward (see
    /// [`nslab::Host::set_route`]).
    Route {
        /// The router.
        router: String,
        /// The family.
        family: nslab::Family,
        /// `present`, `unreachable` (ICMP unreachable) or `blackhole` (silent drop).
        state: nslab::lab::segment::RouteState,
    },
    /// Add an address to a host's lab interface.
    AddAddress {
        /// The host.
        host: String,
        /// The address and prefix.
        address: AddressDef,
        /// Run duplicate address detection (an IPv6 address stays tentative for 1-2 s).
        dad: bool,
        /// With `dad`: hold the address tentative until a `complete-dad` step for it (see
        /// [`nslab::host::dad`]), instead of the 1-2 s ordinary DAD takes.
        hold: bool,
    },
    /// End the hold on an address added with `hold`: it runs ordinary DAD, and the step ends
    /// when the kernel reports DAD complete (the address usable).
    CompleteDad {
        /// The host.
        host: String,
        /// The address and prefix, as added.
        address: AddressDef,
    },
    /// Remove an address from a host's lab interface.
    RemoveAddress {
        /// The host.
        host: String,
        /// The address and prefix.
        address: AddressDef,
    },
    /// Replace one address of a host's lab interface with another of the same family, in one
    /// step: the new one is added, then the old one removed.
    ChangeAddress {
        /// The host.
        host: String,
        /// The address it has now.
        from: AddressDef,
        /// The address it gets instead.
        to: AddressDef,
        /// Run duplicate address detection on the new one.
        dad: bool,
    },
    /// Do nothing for a while.
    Wait {
        /// How long.
        duration: Duration,
    },
    /// Wait until a host asks the lab DNS server (for `name`, of `rtype`, when given): the
    /// event that starts a resolver cache entry's life, to anchor a change to (fails the trial
    /// after `timeout`).
    WaitDnsQuery {
        /// The asking host.
        host: String,
        /// Only queries for this name (`query = "app.example.test"`; no trailing dot needed).
        name: Option<String>,
        /// Only queries of this type.
        rtype: Option<RecordKind>,
        /// How long at most.
        timeout: Duration,
    },
    /// IPv6 arrives on a provisioned segment now: its router starts advertising (the hosts'
    /// kernels do SLAAC); `ipv6-only` also removes the hosts' IPv4 addresses.
    Ipv6Arrives {
        /// The segment.
        segment: String,
        /// What the segment becomes.
        mode: nslab::lab::provision::Mode,
        /// Hosts whose SLAAC addresses stay tentative until a `release-dad` step for them.
        hold: Vec<String>,
    },
    /// End the DAD hold of a host (`hold` of `ipv6-arrives`): its held tentative SLAAC address
    /// is removed and the router's next advertisement makes it again with ordinary DAD.
    ReleaseDad {
        /// The host.
        host: String,
    },
    /// The segment is renumbered: the prefixes advertised so far with preferred lifetime 0
    /// (deprecated), the next renumbering prefix (2001:db8:1:N::/64) advertised.
    Renumber {
        /// The segment.
        segment: String,
    },
    /// The segment's router stops advertising (radvd ends; its last advertisement has router
    /// lifetime 0; the hosts keep their addresses until the valid lifetime runs out).
    StopAdvertising {
        /// The segment.
        segment: String,
    },
    /// DNS64 of the lab DNS switched on or off for the segment's clients.
    Dns64 {
        /// The segment.
        segment: String,
        /// On or off.
        on: bool,
    },
    /// The lab DNS publishes (or stops updating) AAAA records for the hosts' SLAAC addresses as
    /// they become usable.
    AaaaRecords {
        /// The segment.
        segment: String,
        /// On or off.
        on: bool,
    },
    /// Wait until the kernel reports a host's address in a /64 in a state (fails the trial
    /// after `timeout`): the event a window is anchored to.
    WaitAddress {
        /// The host.
        host: String,
        /// The prefix (a /64, or narrower).
        prefix: std::net::Ipv6Addr,
        /// Its length.
        prefix_len: u8,
        /// The state.
        state: nslab::lab::provision::AddrState,
        /// How long at most.
        timeout: Duration,
    },
    /// Wait until a condition holds on a service (fails the trial after `timeout`).
    WaitFor {
        /// The service.
        service: String,
        /// What to wait for.
        condition: Condition,
        /// How long at most.
        timeout: Duration,
    },
}

/// A DNS misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsFault {
    /// Answer SERVFAIL.
    ServFail,
    /// Answer NXDOMAIN.
    NxDomain,
    /// Answer REFUSED.
    Refused,
    /// Do not answer.
    Drop,
    /// Truncated (TC) answers over UDP.
    Truncate,
    /// DNS over TCP only: UDP queries get no answer, TCP queries are answered.
    TcpOnly,
    /// Answer after this delay.
    Delay(Duration),
}

impl DnsFault {
    /// Every name, as written in scenarios and on the command line.
    pub const NAMES: &'static str = "servfail, nxdomain, refused, drop, truncate, tcp-only, delay";

    /// The fault called `name`; `delay` is the delay fault's length (`Ok(None)` when it is
    /// the delay fault and no length was given).
    ///
    /// # Errors
    /// A message naming the bad name and the good ones.
    pub fn from_name(name: &str, delay: Option<Duration>) -> std::result::Result<Option<DnsFault>, String> {
        Ok(Some(match name {
            "servfail" => DnsFault::ServFail,
            "nxdomain" => DnsFault::NxDomain,
            "refused" => DnsFault::Refused,
            "drop" => DnsFault::Drop,
            "truncate" => DnsFault::Truncate,
            "tcp-only" => DnsFault::TcpOnly,
            "delay" => match delay {
                Some(d) => DnsFault::Delay(d),
                None => return Ok(None),
            },
            other => return Err(format!("{other:?} is not a DNS fault; expected one of {}", Self::NAMES)),
        }))
    }
}

/// Which queries a DNS fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultScope {
    /// Every query.
    Server,
    /// Queries for exactly this absolute name (no trailing dot).
    Name(String),
    /// `domain = "*.example.test"`: this name and every name below it.
    Suffix(String),
}

/// A link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Up.
    Up,
    /// Down.
    Down,
}

impl Action {
    /// The action's name as written in `action = "..."`.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Start { .. } => "start",
            Action::Stop { .. } => "stop",
            Action::Kill { .. } => "kill",
            Action::SwapCname { .. } => "swap-cname",
            Action::SetRecord { .. } => "set-record",
            Action::DeleteRecord { .. } => "delete-record",
            Action::SetTtl { .. } => "set-ttl",
            Action::DnsFault { .. } => "dns-fault",
            Action::ClearDnsFaults => "clear-dns-faults",
            Action::Link { .. } => "link",
            Action::LinkCondition { .. } => "link-condition",
            Action::Route { .. } => "route",
            Action::AddAddress { .. } => "add-address",
            Action::CompleteDad { .. } => "complete-dad",
            Action::RemoveAddress { .. } => "remove-address",
            Action::ChangeAddress { .. } => "change-address",
            Action::Wait { .. } => "wait",
            Action::WaitFor { .. } => "wait-for",
            Action::WaitDnsQuery { .. } => "wait-dns-query",
            Action::Ipv6Arrives { .. } => "ipv6-arrives",
            Action::Renumber { .. } => "renumber",
            Action::StopAdvertising { .. } => "stop-advertising",
            Action::Dns64 { .. } => "dns64",
            Action::AaaaRecords { .. } => "aaaa-records",
            Action::WaitAddress { .. } => "wait-address",
            Action::ReleaseDad { .. } => "release-dad",
        }
    }
}

/// Reads `[[timeline]]`.
pub(crate) fn decode_timeline(doc: &Doc<'_>, steps: Vec<Val<'_>>, known: &mut Known) -> Result<Vec<Step>> {
    let mut out = Vec::new();
    let mut names: Vec<Str> = Vec::new();
    let mut last_at: Option<(Duration, Str)> = None;
    for (i, v) in steps.into_iter().enumerate() {
        let mut t = Table::new(doc, format!("timeline step {}", i + 1), v, "a table written [[timeline]]")?;
        let action_s = t.req_str("action", &format!("\"<one of {ACTIONS}>\""))?;
        let keys = action_keys(&action_s.value)
            .ok_or_else(|| t.bad("action", &action_s.span, format!("{:?} is not an action; expected one of {ACTIONS}", action_s.value)))?;
        t.what = format!("timeline step {} ({})", i + 1, action_s.value);
        let allowed: Vec<&str> = STEP_KEYS.iter().chain(keys).copied().collect();
        t.check_keys(&allowed)?;
        let name = t.str("name")?;
        if let Some(n) = &name {
            nslab::lab::spec::check_name("step", &n.value).map_err(|e| doc.err(&n.span, e))?;
            names.push(n.clone());
        }
        if let (Some(a), Some(b)) = (t.key_span("at"), t.key_span("after")) {
            return Err(doc.err(if a.start > b.start { &a } else { &b }, format!("{} has both at and after; expected at most one of them", t.what)));
        }
        let at_span = t.take("at").map(|v| (v.span(), v));
        let when = match at_span {
            Some((span, v)) => {
                let s = t.as_str("at", v, "a duration such as \"3s\"")?;
                let d = super::duration::parse_duration(&s.value).map_err(|e| t.bad("at", &span, e))?;
                if let Some((prev, prev_s)) = &last_at {
                    if d < *prev {
                        return Err(t.bad(
                            "at",
                            &span,
                            format!("{:?} is earlier than at = {:?} of an earlier step; expected steps in time order", s.value, prev_s.value),
                        ));
                    }
                }
                last_at = Some((d, s));
                When::At(d)
            }
            None => When::AfterPrevious(t.duration("after")?.unwrap_or(Duration::ZERO)),
        };
        let profiles = match t.str_list("profiles", "an array of profile names such as [\"ipv6-only\"]")? {
            None => None,
            Some((span, list)) => {
                if list.is_empty() {
                    return Err(t.bad("profiles", &span, "the array is empty; expected at least one profile of the scenario"));
                }
                Some(list.iter().map(|s| super::expect::profile_of_scenario(&t, s, known)).collect::<Result<Vec<_>>>()?)
            }
        };
        known.take_service_refs();
        let action = decode_action(&mut t, &action_s, known)?;
        known.check_service_profiles(&t, profiles.as_deref(), &|list| format!("profiles = [{list}] on the step"))?;
        if let (Some(n), Some(ps)) = (&name, &profiles) {
            known.step_profiles.insert(n.value.clone(), ps.clone());
        }
        out.push(Step { name: name.map(|n| n.value), when, action, profiles });
    }
    check_unique(doc, "step", &names)?;
    known.steps = names.into_iter().map(|n| n.value).collect();
    Ok(out)
}

fn action_keys(action: &str) -> Option<&'static [&'static str]> {
    Some(match action {
        "start" | "stop" | "kill" => &["service"],
        "swap-cname" => &["zone", "record", "to"],
        "set-record" => &["zone", "record", "type", "value", "host", "ttl"],
        "delete-record" => &["zone", "record", "type"],
        "set-ttl" => &["zone", "record", "type", "ttl"],
        "dns-fault" => &["fault", "delay", "domain"],
        "clear-dns-faults" => &[],
        "link" => &["host", "state"],
        "link-condition" => &["host", "clear", "preset", "loss", "burst", "delay", "jitter", "rate", "family"],
        "route" => &["router", "family", "state"],
        "add-address" => &["host", "address", "dad", "hold"],
        "complete-dad" => &["host", "address"],
        "remove-address" => &["host", "address"],
        "change-address" => &["host", "from", "to", "dad"],
        "wait" => &["duration"],
        "wait-for" => &["service", "line", "listening", "exit", "timeout"],
        "wait-dns-query" => &["host", "query", "type", "timeout"],
        "ipv6-arrives" => &["segment", "mode", "hold"],
        "release-dad" => &["host"],
        "renumber" | "stop-advertising" => &["segment"],
        "dns64" | "aaaa-records" => &["segment", "state"],
        "wait-address" => &["host", "prefix", "state", "timeout"],
        _ => return None,
    })
}

fn decode_action(t: &mut Table<'_, '_>, action: &Str, known: &Known) -> Result<Action> {
    let service = |t: &mut Table<'_, '_>| -> Result<String> {
        let s = t.req_str("service", "\"<a declared service>\"")?;
        super::known::refer_service(t, "service", &s, known)
    };
    let host = |t: &mut Table<'_, '_>| -> Result<String> {
        let s = t.req_str("host", "\"<a declared host>\"")?;
        refer(t, "host", &s, "host", &known.hosts)
    };
    let address = |t: &mut Table<'_, '_>| -> Result<AddressDef> {
        let s = t.req_str("address", "\"2001:db8:1::99/64\"")?;
        parse_address(&s.value).map_err(|e| t.bad("address", &s.span, e))
    };
    let ttl = |t: &mut Table<'_, '_>, default: Option<u32>| -> Result<u32> {
        match t.int("ttl", 0..=i64::from(i32::MAX))? {
            Some(n) => Ok(n as u32),
            None => default.ok_or_else(|| t.missing("ttl", "60 (seconds)")),
        }
    };
    let rtype = |t: &mut Table<'_, '_>, required: bool| -> Result<Option<RecordKind>> {
        let s = if required { Some(t.req_str("type", "\"A\"")?) } else { t.str("type")? };
        s.map(|s| s.value.parse::<RecordKind>().map_err(|e| t.bad("type", &s.span, e.to_string()))).transpose()
    };
    Ok(match action.value.as_str() {
        "start" => Action::Start { service: service(t)? },
        "stop" => Action::Stop { service: service(t)? },
        "kill" => Action::Kill { service: service(t)? },
        "swap-cname" => {
            let (zone, record) = zone_record(t, action, known)?;
            let to = t.req_str("to", "\"green\"")?;
            check_dns_name(&to.value).map_err(|e| t.bad("to", &to.span, e))?;
            Action::SwapCname { zone, record, to: to.value }
        }
        "set-record" => {
            let (zone, record) = zone_record(t, action, known)?;
            let data = decode_record_data(t, &known.hosts)?;
            Action::SetRecord { zone, record, data, ttl: ttl(t, Some(super::dns::DEFAULT_TTL))? }
        }
        "delete-record" => {
            let (zone, record) = zone_record(t, action, known)?;
            Action::DeleteRecord { zone, record, rtype: rtype(t, false)? }
        }
        "set-ttl" => {
            let (zone, record) = zone_record(t, action, known)?;
            let rtype = rtype(t, true)?.unwrap_or(RecordKind::A);
            Action::SetTtl { zone, record, rtype, ttl: ttl(t, None)? }
        }
        "dns-fault" => {
            need_dns(t, action, known)?;
            let f = t.req_str("fault", "\"servfail\"")?;
            let delay_span = t.key_span("delay");
            let delay = t.positive_duration("delay")?;
            let fault = match DnsFault::from_name(&f.value, delay) {
                Ok(Some(fault)) => fault,
                Ok(None) => return Err(t.missing("delay", "\"2s\" (with fault = \"delay\")")),
                Err(e) => return Err(t.bad("fault", &f.span, e)),
            };
            if let (Some(span), false) = (delay_span, matches!(fault, DnsFault::Delay(_))) {
                return Err(t.doc.err(&span, format!("delay in {} is given with fault = {:?}; expected delay only with fault = \"delay\"", t.what, f.value)));
            }
            let scope = match t.str("domain")? {
                None => FaultScope::Server,
                Some(d) => {
                    let (suffix, name) = match d.value.strip_prefix("*.") {
                        Some(rest) => (true, rest),
                        None => (false, d.value.as_str()),
                    };
                    if name == "@" || check_dns_name(name).is_err() || name.starts_with('*') {
                        return Err(t.bad("domain", &d.span, format!("{:?} is not a domain name; expected a full name such as \"app.example.test\" or \"*.example.test\" (the name and all below it)", d.value)));
                    }
                    let name = name.trim_end_matches('.').to_string();
                    if suffix {
                        FaultScope::Suffix(name)
                    } else {
                        FaultScope::Name(name)
                    }
                }
            };
            Action::DnsFault { fault, scope }
        }
        "clear-dns-faults" => {
            need_dns(t, action, known)?;
            Action::ClearDnsFaults
        }
        "link" => {
            let host = host(t)?;
            let s = t.req_str("state", "\"down\"")?;
            let state = match s.value.as_str() {
                "up" => LinkState::Up,
                "down" => LinkState::Down,
                other => return Err(t.bad("state", &s.span, format!("{other:?} is not a link state; expected \"up\" or \"down\""))),
            };
            Action::Link { host, state }
        }
        "link-condition" => {
            let host = host(t)?;
            let clear_span = t.key_span("clear");
            let clear = t.bool("clear")?.unwrap_or(false);
            let preset = t.str("preset")?;
            let condition = super::link::condition_keys(t)?;
            match (clear, preset) {
                (true, _) if condition != nslab::lab::link::LinkCondition::new() => {
                    let span = clear_span.unwrap_or(t.span.clone());
                    return Err(t.doc.err(&span, format!("{} has clear = true and condition keys; expected either clear = true or the condition", t.what)));
                }
                (true, Some(p)) => return Err(t.bad("preset", &p.span, "given with clear = true; expected either clear = true or a preset")),
                (true, None) => Action::LinkCondition { host, condition: None },
                (false, Some(p)) if p.value == "slow-ipv6" && condition == nslab::lab::link::LinkCondition::new() => {
                    Action::LinkCondition { host, condition: Some(nslab::lab::link::LinkCondition::slow_ipv6()) }
                }
                (false, Some(p)) if p.value == "slow-ipv6" => {
                    return Err(t.bad("preset", &p.span, "given with condition keys; expected either the preset or the keys"))
                }
                (false, Some(p)) => return Err(t.bad("preset", &p.span, format!("{:?} is not a preset; expected \"slow-ipv6\"", p.value))),
                (false, None) => Action::LinkCondition { host, condition: Some(condition) },
            }
        }
        "route" => {
            let r = t.req_str("router", "\"<a host with router = true>\"")?;
            if !known.routers.contains(&r.value) {
                let names: Vec<&str> = known.routers.iter().map(String::as_str).collect();
                let expected =
                    if names.is_empty() { "a host with router = true (none has it)".to_string() } else { format!("one of the routers: {}", names.join(", ")) };
                return Err(t.bad("router", &r.span, format!("{:?} is not a router; expected {expected}", r.value)));
            }
            let f = t.req_str("family", "\"ipv6\"")?;
            let family = match f.value.as_str() {
                "ipv4" => nslab::Family::V4,
                "ipv6" => nslab::Family::V6,
                other => return Err(t.bad("family", &f.span, format!("{other:?} is not a family; expected \"ipv4\" or \"ipv6\""))),
            };
            let s = t.req_str("state", "\"unreachable\"")?;
            let state = super::segment::route_state(t, "state", &s)?;
            Action::Route { router: r.value, family, state }
        }
        "add-address" => {
            let host = host(t)?;
            let address = address(t)?;
            let dad = t.bool("dad")?.unwrap_or(false);
            let hold_span = t.key_span("hold");
            let hold = t.bool("hold")?.unwrap_or(false);
            if let (Some(span), true) = (&hold_span, hold && !(dad && address.ip.is_ipv6())) {
                return Err(t.doc.err(
                    span,
                    format!(
                        "hold = true in {} needs dad = true and an IPv6 address (only duplicate address detection can be held); found dad = {dad} and {}",
                        t.what, address
                    ),
                ));
            }
            Action::AddAddress { host, address, dad, hold }
        }
        "complete-dad" => Action::CompleteDad { host: host(t)?, address: address(t)? },
        "remove-address" => Action::RemoveAddress { host: host(t)?, address: address(t)? },
        "change-address" => {
            let host = host(t)?;
            let from = t.req_str("from", "\"2001:db8:1::5/64\" (an address the host has)")?;
            let from_a = parse_address(&from.value).map_err(|e| t.bad("from", &from.span, e))?;
            let to = t.req_str("to", "\"2001:db8:1::99/64\" (the address it gets instead)")?;
            let to_a = parse_address(&to.value).map_err(|e| t.bad("to", &to.span, e))?;
            if from_a.ip.is_ipv4() != to_a.ip.is_ipv4() {
                let fam = if from_a.ip.is_ipv4() { "IPv4" } else { "IPv6" };
                return Err(t.bad("to", &to.span, format!("{:?} is not of the family of from = {:?}; expected an {fam} address", to.value, from.value)));
            }
            if from_a.ip == to_a.ip {
                return Err(t.bad("to", &to.span, format!("{:?} is the address in from; expected a different address", to.value)));
            }
            Action::ChangeAddress { host, from: from_a, to: to_a, dad: t.bool("dad")?.unwrap_or(false) }
        }
        "wait" => Action::Wait { duration: t.duration("duration")?.ok_or_else(|| t.missing("duration", "\"5s\""))? },
        "wait-for" => {
            let service = service(t)?;
            let condition = decode_condition(t)?.ok_or_else(|| {
                t.doc.err(
                    &t.span,
                    format!("{} has no condition; expected one of line = \"<regex>\", listening = \"tcp:8000\", exit = \"success\", exit = true", t.what),
                )
            })?;
            Action::WaitFor { service, condition, timeout: t.positive_duration("timeout")?.unwrap_or(DEFAULT_WAIT_TIMEOUT) }
        }
        "wait-dns-query" => {
            need_dns(t, action, known)?;
            let host = host(t)?;
            let name = match t.str("query")? {
                None => None,
                Some(n) => {
                    let bare = n.value.trim_end_matches('.').to_string();
                    check_dns_name(&bare).map_err(|e| t.bad("query", &n.span, e))?;
                    Some(bare)
                }
            };
            let rtype = rtype(t, false)?;
            Action::WaitDnsQuery { host, name, rtype, timeout: t.positive_duration("timeout")?.unwrap_or(DEFAULT_WAIT_TIMEOUT) }
        }
        "ipv6-arrives" => {
            let segment = segment(t, action, known)?;
            let mode = match t.str("mode")? {
                None => nslab::lab::provision::Mode::DualStack,
                Some(m) => match m.value.as_str() {
                    "dual-stack" => nslab::lab::provision::Mode::DualStack,
                    "ipv6-only" => nslab::lab::provision::Mode::Ipv6Only,
                    other => return Err(t.bad("mode", &m.span, format!("{other:?} is not a mode; expected \"dual-stack\" or \"ipv6-only\""))),
                },
            };
            let hold = match t.str_list("hold", "an array of host names such as [\"web\"]")? {
                None => Vec::new(),
                Some((_, list)) => list.iter().map(|h| refer(t, "hold", h, "host", &known.hosts)).collect::<Result<Vec<_>>>()?,
            };
            Action::Ipv6Arrives { segment, mode, hold }
        }
        "release-dad" => {
            segment(t, action, known)?;
            Action::ReleaseDad { host: host(t)? }
        }
        "renumber" => Action::Renumber { segment: segment(t, action, known)? },
        "stop-advertising" => Action::StopAdvertising { segment: segment(t, action, known)? },
        "dns64" | "aaaa-records" => {
            let segment = segment(t, action, known)?;
            need_dns(t, action, known)?;
            let s = t.req_str("state", "\"on\"")?;
            let on = match s.value.as_str() {
                "on" => true,
                "off" => false,
                other => return Err(t.bad("state", &s.span, format!("{other:?} is not a state; expected \"on\" or \"off\""))),
            };
            if action.value == "dns64" {
                Action::Dns64 { segment, on }
            } else {
                Action::AaaaRecords { segment, on }
            }
        }
        "wait-address" => {
            if known.segments.is_empty() {
                return Err(t.bad(
                    "action",
                    &action.span,
                    "\"wait-address\" waits for an address a router advertises; expected a [segments.lan.ipv6] table in the scenario",
                ));
            }
            let host = host(t)?;
            let (prefix, prefix_len) = match t.str("prefix")? {
                None => (nslab::lab::provision::ra::segment_prefix(0), 64),
                Some(p) => super::values::parse_lab_prefix(&p.value).map_err(|e| t.bad("prefix", &p.span, e))?,
            };
            let st = t.req_str("state", "\"usable\"")?;
            let state = nslab::lab::provision::AddrState::parse(&st.value).ok_or_else(|| {
                t.bad("state", &st.span, format!("{:?} is not an address state; expected one of tentative, usable, deprecated, dad-failed, removed", st.value))
            })?;
            Action::WaitAddress { host, prefix, prefix_len, state, timeout: t.positive_duration("timeout")?.unwrap_or(DEFAULT_WAIT_TIMEOUT) }
        }
        _ => unreachable!("action names are checked by action_keys"),
    })
}

/// Reads `segment` (default `lan`), which must have IPv6 provisioning.
fn segment(t: &mut Table<'_, '_>, action: &Str, known: &Known) -> Result<String> {
    let s = t.str("segment")?;
    let name = s.as_ref().map_or(super::provision::LAN, |s| s.value.as_str()).to_string();
    if !known.segments.contains(&name) {
        let (key, span) = match &s {
            Some(s) => ("segment", s.span.clone()),
            None => ("action", action.span.clone()),
        };
        return Err(t.bad(
            key,
            &span,
            format!("{:?} needs segment {name:?} provisioned; expected a [segments.{name}.ipv6] table with its router", action.value),
        ));
    }
    Ok(name)
}

fn need_dns(t: &Table<'_, '_>, action: &Str, known: &Known) -> Result<()> {
    if !known.dns {
        return Err(t.bad("action", &action.span, format!("{:?} needs the lab DNS server; expected a [dns] table in the scenario", action.value)));
    }
    Ok(())
}

/// Reads `zone` (optional when the scenario has one zone) and `record`.
fn zone_record(t: &mut Table<'_, '_>, action: &Str, known: &Known) -> Result<(String, String)> {
    need_dns(t, action, known)?;
    let zone = match t.str("zone")? {
        Some(z) => {
            let origin = z.value.trim_end_matches('.');
            if !known.zones.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
                let have = if known.zones.is_empty() { "the scenario declares none".to_string() } else { format!("one of {}", known.zones.join(", ")) };
                return Err(t.bad("zone", &z.span, format!("zone {:?} is not declared; expected {have}", z.value)));
            }
            origin.to_string()
        }
        None => match known.zones.as_slice() {
            [only] => only.clone(),
            [] => {
                return Err(t.bad(
                    "action",
                    &action.span,
                    format!("{:?} changes a zone, but the scenario declares none; expected a [[dns.zones]] table", action.value),
                ))
            }
            many => return Err(t.missing("zone", &format!("{:?} (the scenario has several zones: {})", many[0], many.join(", ")))),
        },
    };
    let record = t.req_str("record", "\"app\" (a name in the zone)")?;
    check_record_name(t, "record", &record, &zone)?;
    Ok((zone, record.value))
}
