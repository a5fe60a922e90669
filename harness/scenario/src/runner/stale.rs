//! Staleness after a DNS change: how long a client kept reaching the old target, why (pinned
//! connection, cached answer, or a cache of its own after a fresh answer), cross-checked with the
//! DNS query log, and the picture of it.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use svg::node::element::{Line, Rectangle, Text};
use svg::Document;

use crate::runner::client::Client;
use crate::runner::target::{RequestRecord, Target};
use crate::scenario::{StaleCause, StaleCounts};
use nslab::dns::{AnswerRecord, QueryLogEntry, TrafficEntry};

/// How much later than a query that brought the new answer a connection to the old target must
/// open to count against the client (`application-cache`): a program that re-reads its
/// configuration (nginx's reload) resolves in its new workers while the old ones finish what
/// they hold, for a few hundred milliseconds; a cache of the application's own lasts longer.
const ANSWER_SLACK: Duration = Duration::from_secs(1);

/// What one client did around one DNS change.
#[derive(Debug, Clone, Default)]
pub struct Staleness {
    /// The change's lab time.
    pub step_at: Duration,
    /// Its last request to the old target after the change, relative to the change.
    pub last_old: Option<Duration>,
    /// Its first request to the new target after the change, relative to the change.
    pub first_new: Option<Duration>,
    /// Requests to the old target after the change on connections opened before it.
    pub pinned_requests: usize,
    /// Distinct connections opened to the old target after the change.
    pub new_connections_to_old: usize,
    /// Of those, the ones opened more than `ANSWER_SLACK` (1 s) after the client had been answered with
    /// the new target and before it first reached the new target (after that the host uses both
    /// targets at once: another client on it, not this one's own cache).
    pub new_connections_after_new_answer: usize,
    /// Requests to the old target after the first request to the new one: the host reached both
    /// (two clients on it, or a pool that still holds a connection to the old target).
    pub old_after_new: usize,
    /// DNS queries the client made after the change, up to its last request to the old target
    /// (or its first to the new one when it never went back to the old).
    pub dns_queries_after: usize,
    /// DNS queries the client made after the change up to its first request to the new target
    /// (all of them after the change when it never reached it): did it ask again before it moved?
    /// A request already resolved at the change and connected just after it does not end this
    /// window, as it ends `dns_queries_after`'s.
    pub dns_queries_before_new: usize,
    /// What those queries were answered: `NAME TYPE: data, data` (or the rcode), distinct, in order.
    pub answers_after: Vec<String>,
    /// The last answer the client got before the change: its records, as logged.
    pub answer_before: Vec<AnswerRecord>,
    /// Lab time of that answer.
    pub answer_before_at: Option<Duration>,
    /// For a service, its host: the DNS figures are the host's (every program on it), since the
    /// query log knows the asker's address, not its process.
    pub dns_of_host: Option<String>,
    /// The TTL it was served: the smallest TTL over that answer's chain (CNAME and address).
    pub ttl: Option<Duration>,
    /// The cause.
    pub cause: StaleCause,
    /// The stale window split by the layer that held the old target, from the lab's DNS traffic
    /// log (see [`attribute`]); empty without the log or when the client never asked after the
    /// change and was answered the old target.
    pub held: Vec<HeldSpan>,
}

/// A stretch of a client's stale window and the layer that held the old target in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSpan {
    /// The layer.
    pub layer: Layer,
    /// Start, relative to the change.
    pub from: Duration,
    /// End, relative to the change (the last request to the old target for the last span).
    pub to: Duration,
    /// What the traffic log shows: the queries and the answers, with their TTLs.
    pub evidence: String,
}

impl fmt::Display for HeldSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} - {}: {} ({})", secs(self.from), secs(self.to), self.layer, self.evidence)
    }
}

/// The layer that held the old target for a client after the change: where the remedy goes.
/// Today's analysis tells the client's own cache from a pinned connection; the lab-wide DNS
/// traffic log (who asked whom, through which cache) adds a host's cache and a named resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// The client's own cache: it opened new connections to the old target after the change
    /// without the lab DNS server giving it the old answer again (the JVM's cache, nginx's).
    ClientCache,
    /// A cache on the client's host in front of the resolver (systemd-resolved, nscd).
    HostCache {
        /// The host.
        host: String,
    },
    /// A caching resolver between the client and the lab's authoritative server.
    Resolver {
        /// The resolver's name in the scenario.
        name: String,
    },
    /// A connection opened before the change and still used: nothing was resolved again.
    PinnedConnection,
}

impl Layer {
    /// Its name in reports: `client-cache`, `host-cache:<host>`, `resolver:<name>`,
    /// `pinned-connection`.
    pub fn name(&self) -> String {
        match self {
            Layer::ClientCache => "client-cache".into(),
            Layer::HostCache { host } => format!("host-cache:{host}"),
            Layer::Resolver { name } => format!("resolver:{name}"),
            Layer::PinnedConnection => "pinned-connection".into(),
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::ClientCache => f.write_str("the client's own cache"),
            Layer::HostCache { host } => write!(f, "the cache of host {host}"),
            Layer::Resolver { name } => write!(f, "resolver {name}"),
            Layer::PinnedConnection => f.write_str("a pinned connection"),
        }
    }
}

impl Staleness {
    /// The layers that held the old target, from the cause: a pinned connection, the client's
    /// own cache, or both (empty when the client did not stay, or the log cannot tell).
    pub fn layers(&self) -> Vec<Layer> {
        if !self.held.is_empty() {
            let mut out: Vec<Layer> = Vec::new();
            for h in &self.held {
                if !out.contains(&h.layer) {
                    out.push(h.layer.clone());
                }
            }
            return out;
        }
        match self.cause {
            StaleCause::ConnectionPinning => vec![Layer::PinnedConnection],
            StaleCause::ResolverCache | StaleCause::ApplicationCache => vec![Layer::ClientCache],
            StaleCause::Mixed => vec![Layer::PinnedConnection, Layer::ClientCache],
            StaleCause::None | StaleCause::Unknown => Vec::new(),
        }
    }

    /// Whose DNS queries were counted, when not the client's own: ` from host H (all its programs)`.
    fn dns_from(&self) -> String {
        self.dns_of_host.as_ref().map(|h| format!(" from host {h} (all its programs)")).unwrap_or_default()
    }

    /// Each layer in words, with its evidence from the request and DNS query logs.
    pub fn layer_evidence(&self) -> Vec<String> {
        if !self.held.is_empty() {
            return self.held.iter().map(HeldSpan::to_string).collect();
        }
        let before = match (self.answer_before_at, self.answer_before.is_empty()) {
            (Some(at), false) => format!(
                "the last answer{} before the change, at lab time {}: {}",
                self.dns_from(),
                secs(at),
                self.answer_before.iter().map(AnswerRecord::to_string).collect::<Vec<_>>().join(", ")
            ),
            _ => "no answer to it before the change in the lab DNS log".to_string(),
        };
        let n = format!("{} DNS quer{}{} to the lab DNS", self.dns_queries_after, if self.dns_queries_after == 1 { "y" } else { "ies" }, self.dns_from());
        let after = if self.answers_after.is_empty() {
            format!("{n} after the change")
        } else {
            format!("{n} after the change, answered {}", self.answers_after.join("; "))
        };
        self.layers()
            .into_iter()
            .map(|l| match l {
                Layer::PinnedConnection => format!("{l}: {} request(s) after the change on connections opened before it, {after}", self.pinned_requests),
                Layer::ClientCache => format!(
                    "{l}: {} new connection(s) to the old target after the change ({} after an answer naming the new one); {before}; {after}",
                    self.new_connections_to_old, self.new_connections_after_new_answer
                ),
                Layer::HostCache { .. } | Layer::Resolver { .. } => l.to_string(),
            })
            .collect()
    }

    /// How long after the change the client still reached the old target (zero if never).
    pub fn window(&self) -> Duration {
        self.last_old.unwrap_or_default()
    }

    /// Whether the client reached the new target after the change, at any time: before its last
    /// request to the old one too (a second client on the host, or a pool that still holds one
    /// old keep-alive connection while new connections go to the new target).
    pub fn reached_new(&self) -> bool {
        self.first_new.is_some()
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

impl fmt::Display for Staleness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.last_old {
            Some(d) => write!(f, "last request to the old target {} after the change", secs(d))?,
            None => f.write_str("no request to the old target after the change")?,
        }
        match self.first_new {
            Some(d) => write!(f, ", first to the new one after {}", secs(d))?,
            None => f.write_str(", none to the new one")?,
        }
        write!(
            f,
            "; {} request(s) on connections opened before the change, {} new connection(s) to the old target ({} after an answer naming the new one); {} DNS quer{}{} to the lab DNS after the change",
            self.pinned_requests,
            self.new_connections_to_old,
            self.new_connections_after_new_answer,
            self.dns_queries_after,
            if self.dns_queries_after == 1 { "y" } else { "ies" },
            self.dns_from()
        )?;
        if self.dns_queries_before_new != self.dns_queries_after {
            write!(f, " ({} before its first request to the new target)", self.dns_queries_before_new)?;
        }
        if self.old_after_new > 0 {
            write!(
                f,
                "; {} request(s) to the old target after the first to the new one (the host reached both: more than one client, or a pool holding an old connection)",
                self.old_after_new
            )?;
        }
        if !self.answers_after.is_empty() {
            write!(f, " ({})", self.answers_after.join("; "))?;
        }
        if let Some(t) = self.ttl {
            write!(f, "; TTL served before the change: {}s", t.as_secs())?;
        }
        write!(f, "; cause: {}", self.cause.name())?;
        let held = self.layer_evidence();
        if !self.held.is_empty() {
            write!(f, "; held by, in turn: {}", held.join("; then "))?;
        } else if !held.is_empty() {
            write!(f, "; held by {}", held.join("; and by "))?;
        }
        Ok(())
    }
}

/// The first label of a DNS name (`blue.example.test.` -> `blue`).
fn label(name: &str) -> &str {
    name.trim_end_matches('.').split('.').next().unwrap_or("")
}

/// Whether an answer names `target` (the first label of a record's owner or of the name its data
/// points to): a CNAME chain through `green.example.test.` names target `green`.
fn names(answers: &[AnswerRecord], target: &str) -> bool {
    answers.iter().any(|a| label(&a.name) == target || a.data.target().is_some_and(|d| label(d) == target))
}

/// Analyses one client around a change at `step_at`, from the two targets' request logs (a
/// service's own requests, or every request from a host's addresses) and the DNS query log (its
/// host's queries: the log knows addresses, not processes).
pub fn analyse(client: &Client, step_at: Duration, old: &Target, new: &Target, dns: Option<&[QueryLogEntry]>, chain: Chain<'_>) -> Staleness {
    let entries = dns.unwrap_or_default();
    let old_reqs = client.requests_to(old);
    let mut st = analyse_records(&client.addrs, step_at, (&old.def.name, &old_reqs), (&new.def.name, &client.requests_to(new)), entries);
    st.dns_of_host = client.service.is_some().then(|| client.host.clone());
    let old_at: Vec<Duration> = old_reqs.iter().filter(|r| client.addrs.contains(&r.client.ip())).map(RequestRecord::at).collect();
    attribute(&mut st, &client.host, &old.def.name, &old_at, chain.traffic, chain.resolvers, ANSWER_SLACK.mul_f64(chain.scale.max(1.0)));
    st
}

/// What the layer walk reads: the lab's DNS traffic log (settled) and the scenario's
/// resolvers as (name, host).
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a> {
    /// Every DNS message the lab hosts sent.
    pub traffic: &'a [TrafficEntry],
    /// `[resolvers.<name>]`: (name, host).
    pub resolvers: &'a [(String, String)],
    /// The trial's time scale (1 unscaled): the machine's latency allowances are real time, so
    /// in program time they are this many times longer.
    pub scale: f64,
}

/// [`analyse`] on plain records: `old` and `new` are each a target's name and the client's
/// requests to it; `dns` is the query log (every client's; the client's own are picked out).
pub fn analyse_records(client: &[IpAddr], step_at: Duration, old: (&str, &[RequestRecord]), new: (&str, &[RequestRecord]), dns: &[QueryLogEntry]) -> Staleness {
    let old_reqs: Vec<&RequestRecord> = old.1.iter().filter(|r| r.at() > step_at && client.contains(&r.client.ip())).collect();
    let new_reqs: Vec<&RequestRecord> = new.1.iter().filter(|r| r.at() > step_at && client.contains(&r.client.ip())).collect();
    let last_old = old_reqs.iter().map(|r| r.at()).max();
    let first_new = new_reqs.iter().map(|r| r.at()).min();
    // Pinned: reused, on a connection that had carried a request before the change. One opened
    // before the change whose first request came after it was only in flight at the swap.
    let used_before: BTreeSet<u64> = old.1.iter().filter(|r| r.at() <= step_at && r.conn != 0 && client.contains(&r.client.ip())).map(|r| r.conn).collect();
    let pinned_requests = old_reqs.iter().filter(|r| used_before.contains(&r.conn)).count();
    let in_flight = old_reqs.iter().filter(|r| r.conn != 0 && r.conn_at() <= step_at && !used_before.contains(&r.conn)).count();
    // Each connection once, wherever its requests fall in the log.
    let fresh: BTreeSet<(u64, Duration)> = old_reqs.iter().filter(|r| r.conn != 0 && r.conn_at() > step_at).map(|r| (r.conn, r.conn_at())).collect();
    let mine: Vec<&QueryLogEntry> = dns.iter().filter(|e| client.contains(&e.client.ip().to_canonical())).collect();
    let until = last_old.or(first_new).unwrap_or(Duration::MAX);
    let after: Vec<&&QueryLogEntry> = mine.iter().filter(|e| e.at > step_at && e.at <= until).collect();
    let before_new = mine.iter().filter(|e| e.at > step_at && e.at <= first_new.unwrap_or(Duration::MAX)).count();
    let mut answers_after: Vec<String> = Vec::new();
    for e in &after {
        let text =
            if e.answers.is_empty() { e.rcode_name().into_owned() } else { e.answers.iter().map(AnswerRecord::data_text).collect::<Vec<_>>().join(", ") };
        let s = format!("{} {}: {text}", e.name, e.qtype.map(|t| t.to_string()).unwrap_or_default());
        if !answers_after.contains(&s) {
            answers_after.push(s);
        }
    }
    // The first time after the change the client was told the new target.
    let told_new = mine.iter().filter(|e| e.at > step_at && names(&e.answers, new.0) && !names(&e.answers, old.0)).map(|e| e.at).min();
    // A connection to the old target opened after the host had already reached the new one is
    // another client's (or another cache's) on the host, not this client ignoring its answer.
    let reached = first_new.unwrap_or(Duration::MAX);
    let new_connections_after_new_answer = told_new.map_or(0, |t| fresh.iter().filter(|(_, at)| *at > t + ANSWER_SLACK && *at < reached).count());
    let old_after_new = old_reqs.iter().filter(|r| r.at() > reached).count();
    let last_answer = mine.iter().rev().find(|e| e.at <= step_at && !e.answers.is_empty());
    let answer_before: Vec<AnswerRecord> = last_answer.map(|e| e.answers.clone()).unwrap_or_default();
    let answer_before_at = last_answer.map(|e| e.at);
    let ttl = min_ttl(&answer_before);
    let cause = if old_reqs.len() == in_flight {
        StaleCause::None
    } else if old_reqs.iter().any(|r| r.conn == 0) {
        StaleCause::Unknown
    } else if new_connections_after_new_answer > 0 {
        StaleCause::ApplicationCache
    } else {
        match (pinned_requests > 0, !fresh.is_empty()) {
            (true, true) => StaleCause::Mixed,
            (true, false) => StaleCause::ConnectionPinning,
            _ => StaleCause::ResolverCache,
        }
    };
    Staleness {
        step_at,
        last_old: last_old.map(|t| t - step_at),
        first_new: first_new.map(|t| t - step_at),
        pinned_requests,
        new_connections_to_old: fresh.len(),
        new_connections_after_new_answer,
        old_after_new,
        dns_queries_after: after.len(),
        dns_queries_before_new: before_new,
        answers_after,
        answer_before,
        answer_before_at,
        dns_of_host: None,
        ttl,
        cause,
        held: Vec::new(),
    }
}

/// Whether a response's answers name `target` (see [`names`]).
fn wire_names(e: &TrafficEntry, target: &str) -> bool {
    e.answers.iter().any(|a| label(&a.name) == target || (a.rtype == "CNAME" && label(&a.data) == target))
}

/// The response to query `q` in the traffic log: endpoints reversed, same id, paired with it.
fn response_to<'a>(traffic: &'a [TrafficEntry], q: &TrafficEntry) -> Option<&'a TrafficEntry> {
    traffic.iter().find(|r| r.response && r.src == q.dst && r.dst == q.src && r.id == q.id && r.query_at == Some(q.at))
}

/// `NAME TYPE: data, data (TTL n)` of a response.
fn answer_text(r: &TrafficEntry) -> String {
    let data = if r.answers.is_empty() { r.rcode_name() } else { r.answers.iter().map(|a| a.data.clone()).collect::<Vec<_>>().join(", ") };
    let ttl = r.min_ttl().map(|t| format!(", TTL {t}")).unwrap_or_default();
    format!("{} {}: {data}{ttl},", r.name, r.qtype.map(|t| t.to_string()).unwrap_or_default())
}

/// Follows a query the client's host sent and was answered with the old target, up the chain:
/// the server that answered it either asked nobody between receiving it and answering (it held
/// the old answer) or asked further up and was answered the old target there (one layer up).
fn held_by(
    traffic: &[TrafficEntry],
    client_host: &str,
    resolvers: &[(String, String)],
    q: &TrafficEntry,
    r: &TrafficEntry,
    old: &str,
    depth: usize,
) -> (Layer, String) {
    let server_host = if q.dst.ip().is_loopback() { Some(client_host.to_string()) } else { q.to_host.clone() };
    let Some(server_host) = server_host else {
        return (Layer::Resolver { name: q.dst.ip().to_string() }, format!("{} (no lab host) answered {}", q.dst, answer_text(r)));
    };
    let resolver = resolvers.iter().find(|(_, h)| *h == server_host).map(|(n, _)| n.clone());
    let who = match &resolver {
        Some(n) => format!("resolver {n} on host {server_host} ({})", q.dst),
        None => format!("host {server_host} ({})", q.dst),
    };
    let upstream: Vec<&TrafficEntry> = traffic
        .iter()
        .filter(|u| !u.response && !u.forwarded && u.host == server_host && u.at >= q.at && u.at <= r.at && u.name == q.name && u.dst != q.dst)
        .collect();
    let layer = if server_host == client_host {
        Layer::HostCache { host: server_host.clone() }
    } else {
        Layer::Resolver { name: resolver.clone().unwrap_or_else(|| server_host.clone()) }
    };
    if upstream.is_empty() {
        return (layer, format!("{who} answered {} without asking upstream", answer_text(r)));
    }
    let old_up = upstream.iter().find_map(|u| response_to(traffic, u).filter(|ur| wire_names(ur, old)).map(|ur| (*u, ur)));
    match old_up {
        Some((u, ur)) if depth < 8 => held_by(traffic, client_host, resolvers, u, ur, old, depth + 1),
        _ => (layer, format!("{who} answered {} though it asked {} upstream and was not answered the old target", answer_text(r), upstream[0].dst)),
    }
}

/// Splits `st`'s stale window by the layer that held the old target, from the lab's DNS traffic
/// log: until the client's host first asked after the change and was answered the old target,
/// the client's own cache (or a pinned connection); from each such answer on, the layer that
/// answer came from (`held_by`). The client's queries are its host's queries to a DNS server
/// on the host itself when it runs one (a host cache; its own upstream queries are the cache's),
/// else every query its host sent. `old_at` are the client's requests to the old target, lab
/// time; `resolvers` are the scenario's `[resolvers]` as (name, host); `slack` is how long after
/// the change a request may still have been resolved before it (one second, in lab time:
/// times the scale in a scaled trial, where 1 s of the machine's latency is k s of program time).
pub fn attribute(st: &mut Staleness, host: &str, old: &str, old_at: &[Duration], traffic: &[TrafficEntry], resolvers: &[(String, String)], slack: Duration) {
    let Some(last) = st.last_old else { return };
    let (start, end) = (st.step_at, st.step_at + last);
    let sent: Vec<&TrafficEntry> = traffic.iter().filter(|e| e.host == host && !e.response && !e.forwarded && e.dst.port() == 53).collect();
    let local = |e: &TrafficEntry| e.dst.ip().is_loopback() || e.to_host.as_deref() == Some(host);
    let has_local = sent.iter().any(|e| local(e));
    let mut answered: Vec<(Duration, Layer, String)> = Vec::new();
    for q in sent.iter().filter(|e| e.at > start && e.at <= end && (!has_local || local(e))) {
        let Some(r) = response_to(traffic, q).filter(|r| wire_names(r, old)) else { continue };
        let (layer, why) = held_by(traffic, host, resolvers, q, r, old, 0);
        answered.push((q.at - start, layer, why));
    }
    if answered.is_empty() {
        return;
    }
    let mut held: Vec<HeldSpan> = Vec::new();
    let first = answered[0].0;
    // A request resolved before the change and made just after it (within `slack`) is no cache
    // of the client's.
    if old_at.iter().any(|t| *t > start + slack && *t - start < first) {
        let layer = if st.cause == StaleCause::ConnectionPinning { Layer::PinnedConnection } else { Layer::ClientCache };
        held.push(HeldSpan {
            layer,
            from: Duration::ZERO,
            to: first,
            evidence: format!("no DNS query from host {host} answered with the old target before {}", secs(first)),
        });
    }
    let mut count = 0;
    for (i, (at, layer, why)) in answered.iter().enumerate() {
        let to = answered.get(i + 1).map_or(last, |n| n.0);
        match held.last_mut() {
            Some(h) if h.layer == *layer => {
                h.to = to;
                count += 1;
            }
            _ => {
                if let Some(h) = held.last_mut().filter(|_| count > 1) {
                    h.evidence.push_str(&format!("; {count} such answers in all"));
                }
                count = 1;
                held.push(HeldSpan { layer: layer.clone(), from: *at, to, evidence: format!("host {host} asked at {}: {why}", secs(*at)) });
            }
        }
    }
    if let Some(h) = held.last_mut().filter(|_| count > 1) {
        h.evidence.push_str(&format!("; {count} such answers in all"));
    }
    st.held = held;
}

/// The `held_by` criterion of a `stale` expectation: the layers, in order, by name.
pub fn held_failures(st: &Staleness, expected: &[String]) -> Vec<String> {
    let got: Vec<String> = st.layers().iter().map(Layer::name).collect();
    if got == expected {
        Vec::new()
    } else {
        vec![format!("held_by = [{}] expected, [{}] observed", expected.join(", "), got.join(", "))]
    }
}

/// Whether the counted part of a `stale` expectation holds for `st`.
pub fn counts_hold(st: &Staleness, c: &StaleCounts) -> bool {
    count_failures(st, c).is_empty()
}

/// The counted criteria of a `stale` expectation that `st` fails, each in words.
fn count_failures(st: &Staleness, c: &StaleCounts) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = c.dns_queries_after.filter(|n| st.dns_queries_after as u64 != *n) {
        out.push(format!("dns_queries_after = {n} expected, {} observed", st.dns_queries_after));
    }
    if let Some(n) = c.min_dns_queries_after.filter(|n| (st.dns_queries_before_new as u64) < *n) {
        out.push(format!("min_dns_queries_after = {n} expected, {} observed", st.dns_queries_before_new));
    }
    if let Some(n) = c.new_connections_to_old.filter(|n| st.new_connections_to_old as u64 != *n) {
        out.push(format!("new_connections_to_old = {n} expected, {} observed", st.new_connections_to_old));
    }
    if let Some(t) = c.ttl.filter(|t| st.ttl != Some(*t)) {
        let seen = st.ttl.map_or_else(|| "no answer before the change".to_string(), |s| format!("{}s", s.as_secs()));
        out.push(format!("ttl = {}s expected, {seen} observed", t.as_secs()));
    }
    out
}

/// Every criterion of a `stale` expectation that `st` fails, each in words (empty: it holds).
/// `at_most` bounds the last request to the old target after the change and needs the client to
/// have reached the new target after the change, at any time; `at_least` needs a request to the
/// old target that late.
pub fn failures(st: &Staleness, at_most: Option<Duration>, at_least: Option<Duration>, cause: Option<StaleCause>, counts: &StaleCounts) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(m) = at_most {
        if st.window() > m {
            out.push(format!("at_most = {}: the last request to the old target came {} after the change", secs(m), secs(st.window())));
        }
        if !st.reached_new() {
            out.push(format!("at_most = {}: the client never reached the new target after the change", secs(m)));
        }
    }
    if let Some(l) = at_least.filter(|l| st.last_old.is_none_or(|w| w < *l)) {
        match st.last_old {
            Some(w) => out.push(format!("at_least = {}: the last request to the old target came {} after the change", secs(l), secs(w))),
            None => out.push(format!("at_least = {}: no request to the old target after the change", secs(l))),
        }
    }
    if let Some(c) = cause.filter(|c| *c != st.cause) {
        out.push(format!("cause = {} expected, {} observed", c.name(), st.cause.name()));
    }
    out.extend(count_failures(st, counts));
    out
}

/// A moment to mark on the picture: a DNS change (with the TTL of the answer before it) or a
/// target stopped (the incident's "delete the old environment").
pub struct Mark {
    /// The step's name.
    pub name: String,
    /// Its lab time.
    pub at: Duration,
    /// The TTL clients had been given, when known (shaded after a DNS change).
    pub ttl: Option<Duration>,
    /// What happened.
    pub kind: MarkKind,
}

/// What a [`Mark`] marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    /// A DNS change: a dashed red line.
    DnsChange,
    /// A target stopped or deleted: a solid black line.
    TargetStop,
    /// A client's first TCP connection attempt in the packet capture: a short green dotted line
    /// below the lanes, labelled there.
    FirstSyn,
    /// A client's first DNS query in the packet capture: a short blue dotted line below the
    /// lanes, labelled there.
    FirstDnsQuery,
}

const COLORS: [&str; 6] = ["#3266c8", "#2e9e4f", "#d0782a", "#8a4fc2", "#c23b5a", "#4f8f9a"];

/// Draws requests per interval to each target over time, new connections as ticks, each DNS
/// change as a line with its TTL window shaded, and writes the SVG to `path`.
///
/// # Errors
/// File errors.
pub fn write_svg(path: &Path, targets: &[Target], marks: &[Mark], end: Duration) -> std::io::Result<()> {
    let lanes: Vec<(String, Vec<RequestRecord>)> = targets.iter().map(|t| (t.def.name.clone(), t.requests())).collect();
    nslab::os::fsafe::write_artifact(path, document(&lanes, marks, end).to_string().as_bytes(), 0o600).map_err(Into::into)
}

/// The picture of `lanes` (each target's name and requests) and `marks` over `0..end`.
pub fn document(lanes: &[(String, Vec<RequestRecord>)], marks: &[Mark], end: Duration) -> Document {
    let targets = lanes;
    let (left, width, lane, top) = (110.0_f64, 860.0_f64, 90.0_f64, 40.0_f64);
    let span = end.as_secs_f64().max(1.0);
    let bin = (span / 120.0).max(0.25);
    let nbins = (span / bin).ceil() as usize + 1;
    let x = |t: f64| left + t / span * width;
    // Room below the lanes for the capture's labels.
    let captured = marks.iter().filter(|m| matches!(m.kind, MarkKind::FirstSyn | MarkKind::FirstDnsQuery)).count() as f64;
    let extra = if captured > 0.0 { 12.0 * (captured + 1.0) } else { 0.0 };
    let height = top + lane * targets.len() as f64 + 50.0 + extra;
    let mut doc = Document::new().set("viewBox", (0, 0, (left + width + 30.0) as i64, height as i64)).set("font-family", "sans-serif").set("font-size", 12);
    doc = doc.add(Rectangle::new().set("width", "100%").set("height", "100%").set("fill", "white"));
    for m in marks {
        if let (Some(ttl), MarkKind::DnsChange) = (m.ttl, m.kind) {
            let w = (x(m.at.as_secs_f64() + ttl.as_secs_f64()).min(left + width) - x(m.at.as_secs_f64())).max(0.0);
            doc = doc.add(
                Rectangle::new()
                    .set("x", x(m.at.as_secs_f64()))
                    .set("y", top - 10.0)
                    .set("width", w)
                    .set("height", lane * targets.len() as f64 + 10.0)
                    .set("fill", "#f2e6a8")
                    .set("fill-opacity", 0.6)
                    .set("class", "ttl-window"),
            );
        }
    }
    for (i, t) in targets.iter().enumerate() {
        let y0 = top + lane * (i as f64 + 1.0) - 10.0;
        let color = COLORS[i % COLORS.len()];
        let reqs = &t.1;
        let mut counts = vec![0usize; nbins];
        for r in reqs {
            let b = ((r.at().as_secs_f64() / bin) as usize).min(nbins - 1);
            counts[b] += 1;
        }
        let max = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        doc = doc.add(Text::new(format!("{} ({} req)", t.0, reqs.len())).set("x", 8).set("y", y0 - lane / 2.0 + 10.0).set("fill", color));
        doc = doc.add(Line::new().set("x1", left).set("x2", left + width).set("y1", y0).set("y2", y0).set("stroke", "#999"));
        for (b, c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            let h = *c as f64 / max * (lane - 30.0);
            doc = doc.add(
                Rectangle::new().set("x", x(b as f64 * bin)).set("y", y0 - h).set("width", (bin / span * width).max(1.0)).set("height", h).set("fill", color),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for r in reqs {
            if seen.insert(r.conn) {
                let cx = x(r.conn_at().as_secs_f64());
                doc = doc.add(Line::new().set("x1", cx).set("x2", cx).set("y1", y0 + 2.0).set("y2", y0 + 9.0).set("stroke", "black"));
            }
        }
    }
    // The capture's marks: below the lanes, each label a row lower than the one before.
    let bottom = top + lane * targets.len() as f64;
    for (k, m) in marks.iter().filter(|m| matches!(m.kind, MarkKind::FirstSyn | MarkKind::FirstDnsQuery)).enumerate() {
        let mx = x(m.at.as_secs_f64());
        let (color, class) = if m.kind == MarkKind::FirstSyn { ("#2e9e4f", "capture-first-syn") } else { ("#3266c8", "capture-first-dns") };
        let y = bottom + 32.0 + 12.0 * k as f64;
        doc = doc.add(
            Line::new().set("class", class).set("x1", mx).set("x2", mx).set("y1", top).set("y2", y - 9.0).set("stroke", color).set("stroke-dasharray", "1 3"),
        );
        let (lx, anchor) = if mx > left + width - 150.0 { (mx - 3.0, "end") } else { (mx + 3.0, "start") };
        doc =
            doc.add(Text::new(m.name.clone()).set("class", class).set("x", lx).set("text-anchor", anchor).set("y", y).set("fill", color).set("font-size", 10));
    }
    for m in marks {
        let mx = x(m.at.as_secs_f64());
        let (color, dash, class) = match m.kind {
            MarkKind::DnsChange => ("#c00", "4 3", "dns-change"),
            MarkKind::TargetStop => ("#000", "none", "target-stop"),
            MarkKind::FirstSyn | MarkKind::FirstDnsQuery => continue,
        };
        doc = doc.add(
            Line::new()
                .set("class", class)
                .set("x1", mx)
                .set("x2", mx)
                .set("y1", top - 15.0)
                .set("y2", top + lane * targets.len() as f64)
                .set("stroke", color)
                .set("stroke-dasharray", dash),
        );
        // Near the right edge the label goes to the left of its line, inside the picture.
        let (lx, anchor) = if mx > left + width - 100.0 { (mx - 3.0, "end") } else { (mx + 3.0, "start") };
        doc = doc.add(Text::new(m.name.clone()).set("x", lx).set("text-anchor", anchor).set("y", top - 18.0).set("fill", color));
    }
    let axis_y = top + lane * targets.len() as f64 + 20.0 + extra;
    let step = if span > 60.0 {
        10.0
    } else if span > 20.0 {
        5.0
    } else {
        1.0
    };
    let mut t = 0.0;
    while t <= span {
        doc = doc.add(Text::new(format!("{t:.0}s")).set("x", x(t)).set("y", axis_y).set("text-anchor", "middle").set("fill", "#555"));
        t += step;
    }
    doc.add(
        Text::new(format!("requests per {bin:.2} s to each target; ticks: new connections; dashed red: DNS change; black: target stopped; shaded: TTL given before the change"))
            .set("x", left)
            .set("y", axis_y + 20.0)
            .set("fill", "#555"),
    )
}

/// The smallest TTL over an answer's records (its CNAME chain and the address), `None` when empty.
pub fn min_ttl(answers: &[AnswerRecord]) -> Option<Duration> {
    answers.iter().map(|a| Duration::from_secs(a.ttl.into())).min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nslab::dns::{RecordType, RecordValue, ResponseCode, Transport};
    use std::net::SocketAddr;

    const CLIENT: &str = "192.0.2.30";
    const T0: Duration = Duration::from_secs(3);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A request at `at` ms on connection `conn` opened at `conn_at` ms.
    fn req(at: u64, conn: u64, conn_at: u64) -> RequestRecord {
        RequestRecord {
            at_us: at * 1000,
            conn,
            conn_at_us: conn_at * 1000,
            client: SocketAddr::new(CLIENT.parse().unwrap(), 40000 + conn as u16),
            path: "/id".into(),
            service: None,
            pid: None,
            attributed: crate::runner::attribution::Attribution::HostOnly,
        }
    }

    /// A query from the client at `at` ms answered `app -> CNAME target (ttl_cname)`, `target A (ttl_a)`.
    fn query(at: u64, target: &str, ttl_cname: u32, ttl_a: u32) -> QueryLogEntry {
        QueryLogEntry {
            at: ms(at),
            client: SocketAddr::new(CLIENT.parse().unwrap(), 5353),
            transport: Transport::Udp,
            name: "app.example.test.".into(),
            qtype: Some(RecordType::A),
            rcode: Some(ResponseCode::NoError),
            truncated: false,
            answers: vec![
                AnswerRecord::new("app.example.test.", ttl_cname, RecordValue::Cname(format!("{target}.example.test."))),
                AnswerRecord::new(format!("{target}.example.test."), ttl_a, RecordValue::A("192.0.2.11".parse().unwrap())),
            ],
            fault: None,
        }
    }

    /// Every element of a well-formed document: name, attributes, text (panics on bad XML).
    fn parse_xml(text: &str) -> Vec<(String, std::collections::BTreeMap<String, String>, Option<String>)> {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(text);
        reader.config_mut().check_end_names = true;
        let (mut out, mut depth) = (Vec::new(), 0i32);
        loop {
            match reader.read_event().expect("well-formed XML") {
                ev @ (Event::Start(_) | Event::Empty(_)) => {
                    let (e, open) = match ev {
                        Event::Start(e) => (e, true),
                        Event::Empty(e) => (e, false),
                        _ => unreachable!(),
                    };
                    let attrs = e
                        .attributes()
                        .map(|a| a.expect("attribute"))
                        .map(|a| {
                            (
                                String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                                a.normalized_value(quick_xml::XmlVersion::Implicit1_0).expect("value").into_owned(),
                            )
                        })
                        .collect();
                    out.push((String::from_utf8_lossy(e.name().as_ref()).into_owned(), attrs, None));
                    depth += i32::from(open);
                }
                Event::Text(t) => {
                    let text = t.decode().expect("text").trim().to_string();
                    if let (Some(last), false) = (out.last_mut(), text.is_empty()) {
                        last.2 = Some(text);
                    }
                }
                Event::End(_) => depth -= 1,
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(depth, 0, "every element closed");
        out
    }

    fn run(old: &[RequestRecord], new: &[RequestRecord], dns: &[QueryLogEntry]) -> Staleness {
        analyse_records(&[CLIENT.parse().unwrap()], T0, ("blue", old), ("green", new), dns)
    }

    #[test]
    fn pinned_keep_alive_connection_is_connection_pinning() {
        // One connection opened at 0.5 s, used every 250 ms until 20 s; no DNS query after t0.
        let old: Vec<_> = (2..80).map(|i| req(i * 250, 1, 500)).collect();
        let st = run(&old, &[], &[query(400, "blue", 2, 2)]);
        assert_eq!(st.cause, StaleCause::ConnectionPinning);
        assert_eq!(st.last_old, Some(ms(19750 - 3000)));
        assert_eq!(st.pinned_requests, 67);
        assert_eq!(st.new_connections_to_old, 0);
        assert_eq!(st.dns_queries_after, 0);
        assert_eq!(st.first_new, None);
        assert!(!st.reached_new());
    }

    #[test]
    fn new_connections_to_old_until_the_cache_expires_is_resolver_cache() {
        // A connection per request; the cache (2 s) expires at 4 s: blue until 3.75 s, then green.
        let old: Vec<_> = (1..16).map(|i| req(i * 250, i, i * 250 - 5)).collect();
        let new: Vec<_> = (16..20).map(|i| req(i * 250, i, i * 250 - 5)).collect();
        let dns = [query(200, "blue", 30, 2), query(3990, "green", 2, 2)];
        let st = run(&old, &new, &dns);
        assert_eq!(st.cause, StaleCause::ResolverCache);
        assert_eq!(st.new_connections_to_old, 3, "connections opened at 3.245, 3.495 and 3.745 s");
        assert_eq!(st.pinned_requests, 0);
        assert_eq!(st.last_old, Some(ms(750)));
        assert_eq!(st.first_new, Some(ms(1000)));
        assert!(st.reached_new());
        assert_eq!(st.ttl, Some(Duration::from_secs(2)), "the smallest TTL over the chain, not the CNAME's 30 s");
        assert_eq!(st.dns_queries_after, 0, "the query at 3.99 s came after the last request to blue");
    }

    #[test]
    fn a_client_that_moves_at_once_has_no_cause() {
        let old = [req(2900, 1, 2890)];
        let new = [req(3250, 2, 3240)];
        let st = run(&old, &new, &[query(3240, "green", 2, 2)]);
        assert_eq!(st.cause, StaleCause::None);
        assert_eq!(st.window(), Duration::ZERO);
        assert_eq!(st.dns_queries_after, 1);
        assert_eq!(st.answers_after, vec!["app.example.test. A: green.example.test., 192.0.2.11".to_string()]);
        assert!(st.reached_new());
    }

    #[test]
    fn a_request_resolved_before_the_change_and_connected_after_it_does_not_hide_the_next_query() {
        // CI saw this: curl was answered blue 1 ms before the swap (at 3 s), connected 2 ms after
        // it, then asked again and went to green. Its window to blue ends at once, with no query in
        // it; it did ask before it moved.
        let blue = [req(3003, 7, 3002)];
        let green = [req(3220, 8, 3215)];
        let st = run(&blue, &green, &[query(2999, "blue", 2, 2), query(3210, "green", 2, 2)]);
        assert_eq!(st.dns_queries_after, 0);
        assert_eq!(st.dns_queries_before_new, 1);
        assert!(counts_hold(&st, &StaleCounts { min_dns_queries_after: Some(1), ..Default::default() }));
        assert!(!counts_hold(&st, &StaleCounts { min_dns_queries_after: Some(2), ..Default::default() }));
        assert!(st.to_string().contains("0 DNS queries to the lab DNS after the change (1 before its first request to the new target)"), "{st}");
        // A client that reached green without asking again fails the check.
        let st = run(&blue, &green, &[query(2999, "blue", 2, 2)]);
        assert!(!counts_hold(&st, &StaleCounts { min_dns_queries_after: Some(1), ..Default::default() }));
    }

    #[test]
    fn a_request_in_flight_at_the_change_is_not_pinning() {
        // Connection 1 opened 5 ms before the change, its only request 10 ms after it; then the
        // cache keeps the client on blue with new connections.
        let old = [req(2750, 9, 2745), req(3010, 1, 2995), req(3250, 2, 3245), req(3500, 3, 3495)];
        let st = run(&old, &[req(3750, 4, 3745)], &[]);
        assert_eq!(st.pinned_requests, 0);
        assert_eq!(st.new_connections_to_old, 2);
        assert_eq!(st.cause, StaleCause::ResolverCache);
        // Only the in-flight request: the client did not stay.
        let st = run(&old[..2], &[req(3250, 2, 3245)], &[]);
        assert_eq!(st.cause, StaleCause::None);
    }

    #[test]
    fn pinned_and_fresh_connections_together_are_mixed() {
        // Requests on the old connection and on several new ones, dedup across interleaving.
        let old = [req(600, 1, 500), req(3100, 1, 500), req(3200, 2, 3150), req(3300, 1, 500), req(3400, 2, 3150), req(3500, 3, 3450)];
        let st = run(&old, &[], &[]);
        assert_eq!(st.cause, StaleCause::Mixed);
        assert_eq!(st.pinned_requests, 2);
        assert_eq!(st.new_connections_to_old, 2, "connection 2 counted once although its requests are not neighbours");
    }

    #[test]
    fn new_connections_to_old_after_a_new_answer_are_an_application_cache() {
        let old = [req(3500, 2, 3490), req(4500, 3, 4490)];
        let st = run(&old, &[], &[query(3200, "green", 2, 2)]);
        assert_eq!(st.cause, StaleCause::ApplicationCache);
        assert_eq!(st.new_connections_after_new_answer, 1, "the one 0.29 s after the answer is within the slack");
    }

    #[test]
    fn a_host_that_reached_new_before_its_last_request_to_old_meets_at_most() {
        // Two clients on one host: one opens a connection per request and moves to green at
        // 3.5 s; the other's pool still holds a keep-alive connection to blue until 4.5 s.
        let old = [req(2500, 1, 500), req(3500, 1, 500), req(4500, 1, 500), req(2800, 2, 2790)];
        let new = [req(3500, 3, 3490), req(4000, 4, 3990)];
        let st = run(&old, &new, &[query(3400, "green", 2, 2)]);
        assert_eq!(st.last_old, Some(ms(1500)));
        assert_eq!(st.first_new, Some(ms(500)));
        assert!(st.reached_new());
        assert_eq!(st.cause, StaleCause::ConnectionPinning);
        assert_eq!(st.old_after_new, 1, "the one at 4.5 s; the one at 3.5 s came with the first to green");
        let none = StaleCounts::default();
        assert!(failures(&st, Some(Duration::from_secs(2)), None, Some(StaleCause::ConnectionPinning), &none).is_empty());
        let f = failures(&st, Some(Duration::from_secs(1)), None, None, &none);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].contains("at_most") && f[0].contains("1.50s"), "{f:?}");
        assert!(st.to_string().contains("1 request(s) to the old target after the first to the new one"), "{st}");
    }

    #[test]
    fn fresh_connections_to_old_after_the_host_reached_new_are_not_an_application_cache() {
        // One client asked again, was told green and went there at 3.3 s; another process on the
        // host, with its own cached answer, kept opening connections to blue at 4.5 and 4.8 s.
        let old = [req(4500, 5, 4490), req(4800, 6, 4790)];
        let new = [req(3300, 3, 3290), req(4600, 4, 4590)];
        let st = run(&old, &new, &[query(3200, "green", 2, 2)]);
        assert_eq!(st.new_connections_after_new_answer, 0);
        assert_eq!(st.cause, StaleCause::ResolverCache);
        // The same connections to blue with the host never reaching green are the application's.
        let st = run(&old, &[], &[query(3200, "green", 2, 2)]);
        assert_eq!(st.cause, StaleCause::ApplicationCache);
    }

    /// `req` made by service `svc` (attributed by a built-in target).
    fn by(svc: &str, mut r: RequestRecord) -> RequestRecord {
        r.service = Some(svc.into());
        r.attributed = crate::runner::attribution::Attribution::Service;
        r
    }

    #[test]
    fn two_clients_on_one_host_are_two_clients() {
        // curl opens a connection per request and moves to green at 3.2 s; a keep-alive client on
        // the same host stays on blue on its connection from 0.5 s until 12 s.
        let mut old: Vec<RequestRecord> = (1..12).map(|i| by("curl", req(i * 250, 100 + i, i * 250 - 5))).collect();
        old.extend((2..48).map(|i| by("keepalive", req(i * 250, 1, 500))));
        let new: Vec<RequestRecord> = (13..40).map(|i| by("curl", req(i * 250, 200 + i, i * 250 - 5))).collect();
        let dns = [query(200, "blue", 2, 2), query(3240, "green", 2, 2)];
        let client = |svc: Option<&str>| Client { service: svc.map(str::to_string), host: "client".into(), addrs: vec![CLIENT.parse().unwrap()] };
        let of = |c: &Client| {
            let o: Vec<RequestRecord> = old.iter().filter(|r| c.made(r)).cloned().collect();
            let n: Vec<RequestRecord> = new.iter().filter(|r| c.made(r)).cloned().collect();
            analyse_records(&c.addrs, T0, ("blue", &o), ("green", &n), &dns)
        };
        let none = StaleCounts::default();
        let curl = of(&client(Some("curl")));
        assert_eq!((curl.last_old, curl.first_new, curl.cause), (None, Some(ms(250)), StaleCause::None));
        assert!(failures(&curl, Some(Duration::from_secs(1)), None, None, &none).is_empty());
        let pool = of(&client(Some("keepalive")));
        assert_eq!((pool.last_old, pool.first_new, pool.cause), (Some(ms(8750)), None, StaleCause::ConnectionPinning));
        assert!(failures(&pool, None, Some(Duration::from_secs(8)), Some(StaleCause::ConnectionPinning), &none).is_empty());
        // The host as one client (the old attribution): curl's move and the pool's stay are
        // mixed, so "curl leaves blue within 1 s" cannot be said.
        let host = of(&client(None));
        assert_eq!((host.last_old, host.first_new), (Some(ms(8750)), Some(ms(250))));
        assert!(!failures(&host, Some(Duration::from_secs(1)), None, None, &none).is_empty());
    }

    #[test]
    fn the_cause_names_the_layer_with_its_evidence() {
        let old: Vec<_> = (2..80).map(|i| req(i * 250, 1, 500)).collect();
        let st = run(&old, &[], &[query(400, "blue", 2, 2)]);
        assert_eq!(st.layers(), vec![Layer::PinnedConnection]);
        assert!(
            st.to_string().contains(
                "held by a pinned connection: 67 request(s) after the change on connections opened before it, 0 DNS queries to the lab DNS after the change"
            ),
            "{st}"
        );
        let old: Vec<_> = (1..16).map(|i| req(i * 250, i, i * 250 - 5)).collect();
        let st = run(&old, &[req(4000, 16, 3995)], &[query(200, "blue", 30, 2), query(3990, "green", 2, 2)]);
        assert_eq!(st.layers(), vec![Layer::ClientCache]);
        let text = st.to_string();
        assert!(text.contains("held by the client's own cache: 3 new connection(s) to the old target"), "{text}");
        assert!(
            text.contains(
                "the last answer before the change, at lab time 0.20s: app.example.test. 30 IN CNAME blue.example.test., blue.example.test. 2 IN A 192.0.2.11"
            ),
            "{text}"
        );
        // The layers a resolver chain adds read the same way.
        assert_eq!(Layer::Resolver { name: "unbound".into() }.to_string(), "resolver unbound");
        assert_eq!(Layer::HostCache { host: "client".into() }.to_string(), "the cache of host client");
        assert_eq!(Layer::Resolver { name: "unbound".into() }.name(), "resolver:unbound");
        // A service's DNS figures are its host's, and say so.
        let st = Staleness { dns_of_host: Some("client".into()), cause: StaleCause::ConnectionPinning, ..Default::default() };
        assert!(st.to_string().contains("0 DNS queries from host client (all its programs) to the lab DNS after the change"), "{st}");
    }

    #[test]
    fn each_failed_criterion_is_named() {
        let old: Vec<_> = (2..80).map(|i| req(i * 250, 1, 500)).collect();
        let st = run(&old, &[], &[query(400, "blue", 2, 2)]);
        let counts = StaleCounts { dns_queries_after: Some(1), ..Default::default() };
        let f = failures(&st, Some(Duration::from_secs(6)), Some(Duration::from_secs(30)), Some(StaleCause::ResolverCache), &counts);
        let text = f.join("; ");
        for word in ["at_most", "never reached the new target", "at_least", "cause", "connection-pinning", "dns_queries_after"] {
            assert!(text.contains(word), "no {word:?} in {text}");
        }
        assert_eq!(f.len(), 5, "{f:?}");
    }

    #[test]
    fn a_log_without_connections_gives_unknown() {
        let old = [req(3500, 0, 0)];
        let st = run(&old, &[], &[]);
        assert_eq!(st.cause, StaleCause::Unknown);
        assert_eq!(st.pinned_requests, 0);
    }

    #[test]
    fn other_clients_are_left_out() {
        let mut other = req(3500, 1, 3400);
        other.client = "192.0.2.99:4000".parse().unwrap();
        let st = run(&[other], &[], &[]);
        assert_eq!(st.cause, StaleCause::None);
    }

    #[test]
    fn counts_are_checked_each_when_given() {
        let st = Staleness { dns_queries_after: 0, new_connections_to_old: 0, ttl: Some(Duration::from_secs(2)), ..Default::default() };
        assert!(counts_hold(&st, &StaleCounts { dns_queries_after: Some(0), ttl: Some(Duration::from_secs(2)), ..Default::default() }));
        assert!(!counts_hold(&st, &StaleCounts { min_dns_queries_after: Some(1), ..Default::default() }));
        assert!(!counts_hold(&st, &StaleCounts { ttl: Some(Duration::from_secs(30)), ..Default::default() }));
    }

    #[test]
    fn the_picture_marks_the_captures_first_dns_query_and_syn_below_the_lanes() {
        let lanes = vec![("blue".to_string(), vec![req(1000, 1, 900)])];
        let marks = [
            Mark { name: "client: 1st DNS query".into(), at: ms(500), ttl: None, kind: MarkKind::FirstDnsQuery },
            Mark { name: "client: 1st SYN".into(), at: ms(800), ttl: None, kind: MarkKind::FirstSyn },
        ];
        let text = document(&lanes, &marks, ms(8000)).to_string();
        let elements = parse_xml(&text);
        let with_class = |c: &str| elements.iter().filter(|e| e.1.get("class").map(String::as_str) == Some(c)).collect::<Vec<_>>();
        let (dns, syn) = (with_class("capture-first-dns"), with_class("capture-first-syn"));
        // A line and its label each, at the mark's time (860 px for 8 s, from x = 110).
        assert_eq!((dns.len(), syn.len()), (2, 2));
        assert_eq!(syn[0].1["x1"].parse::<f64>().unwrap(), 110.0 + 0.8 / 8.0 * 860.0);
        assert_eq!(dns[1].2.as_deref(), Some("client: 1st DNS query"));
        assert!(with_class("dns-change").is_empty() && with_class("ttl-window").is_empty(), "no DNS change drawn for capture marks");
    }

    #[test]
    fn the_picture_is_well_formed_and_shows_the_change_the_ttl_and_the_stop() {
        let lanes = vec![("blue".to_string(), vec![req(1000, 1, 900), req(4000, 1, 900)]), ("green".to_string(), vec![req(6000, 2, 5900)])];
        let marks = [
            Mark { name: "swap".into(), at: T0, ttl: Some(Duration::from_secs(2)), kind: MarkKind::DnsChange },
            Mark { name: "delete-blue".into(), at: ms(5000), ttl: None, kind: MarkKind::TargetStop },
        ];
        let text = document(&lanes, &marks, ms(8000)).to_string();
        let elements = parse_xml(&text);
        assert_eq!(elements[0].0, "svg");
        let with_class = |c: &str| elements.iter().filter(|e| e.1.get("class").map(String::as_str) == Some(c)).collect::<Vec<_>>();
        assert_eq!(with_class("dns-change").len(), 1);
        assert_eq!(with_class("target-stop").len(), 1);
        let ttl = with_class("ttl-window");
        assert_eq!(ttl.len(), 1, "one TTL window, after the DNS change only");
        // It starts at the swap and is 2 s wide (860 px for 8 s, from x = 110).
        assert_eq!(ttl[0].1["x"].parse::<f64>().unwrap(), 110.0 + 3.0 / 8.0 * 860.0);
        assert_eq!(ttl[0].1["width"].parse::<f64>().unwrap(), 2.0 / 8.0 * 860.0);
        let texts: Vec<&str> = elements.iter().filter_map(|e| e.2.as_deref()).collect();
        for t in ["swap", "delete-blue", "blue (2 req)", "green (1 req)"] {
            assert!(texts.contains(&t), "no text {t:?} in {texts:?}");
        }
    }

    // The layer walk, on synthetic traffic logs: client 192.0.2.10 (host client, a stub on
    // 127.0.0.53 when it has a host cache), resolver `cache` on host cache 192.0.2.20, the lab
    // DNS on host dns 192.0.2.53. The change at 1 s.
    mod chain {
        use super::*;
        use nslab::dns::{Transport, WireAnswer};
        use std::net::SocketAddr;

        fn sa(s: &str) -> SocketAddr {
            s.parse().unwrap()
        }

        fn host_of(a: &SocketAddr) -> Option<String> {
            match a.ip().to_string().as_str() {
                "192.0.2.10" => Some("client".into()),
                "192.0.2.20" => Some("cache".into()),
                "192.0.2.53" => Some("dns".into()),
                _ if a.ip().is_loopback() => Some("client".into()),
                _ => None,
            }
        }

        /// A query from `src` (sent by `host`) to `dst` at `at` ms and its answer `ms` later,
        /// naming `target` with `ttl`.
        fn ask(log: &mut Vec<TrafficEntry>, host: &str, (src, dst): (&str, &str), (at, ms): (u64, u64), target: &str, ttl: u32) {
            let (src, dst) = (sa(src), sa(dst));
            let id = log.len() as u16;
            let q = TrafficEntry {
                at: super::ms(at),
                host: host.into(),
                src,
                dst,
                to_host: host_of(&dst),
                transport: Transport::Udp,
                forwarded: false,
                id,
                response: false,
                name: "app.example.test.".into(),
                qtype: None,
                rcode: None,
                truncated: false,
                answers: Vec::new(),
                query_at: None,
            };
            let answers = vec![
                WireAnswer { name: "app.example.test.".into(), rtype: "CNAME".into(), ttl, data: format!("{target}.example.test.") },
                WireAnswer { name: format!("{target}.example.test."), rtype: "A".into(), ttl, data: "192.0.2.99".into() },
            ];
            let r = TrafficEntry {
                at: super::ms(at + ms),
                host: host_of(&dst).unwrap(),
                src: dst,
                dst: src,
                to_host: Some(host.into()),
                response: true,
                answers,
                query_at: Some(super::ms(at)),
                ..q.clone()
            };
            log.push(q);
            log.push(r);
        }

        fn walk(log: &[TrafficEntry], old_at: &[u64], last_old: u64) -> Staleness {
            let mut st = Staleness { step_at: super::ms(1000), last_old: Some(super::ms(last_old)), cause: StaleCause::ResolverCache, ..Default::default() };
            let old_at: Vec<Duration> = old_at.iter().map(|t| super::ms(*t)).collect();
            attribute(&mut st, "client", "blue", &old_at, log, &[("cache".to_string(), "cache".to_string())], ANSWER_SLACK);
            st
        }

        #[test]
        fn in_a_scaled_trial_a_request_resolved_before_the_change_may_come_k_seconds_late() {
            // unbound-ttl-1h at 100x under load: the request whose look-up made unbound's entry
            // reached blue 24.4 s of program time (0.24 s of the machine's) after the change, the
            // next look-up (answered blue from unbound's cache) came at 25.4 s.
            let mut log = Vec::new();
            ask(&mut log, "client", ("192.0.2.10:4000", "192.0.2.20:53"), (26_400, 2), "blue", 3574);
            let old_at = [25_400, 26_500, 40_000];
            for (scale, want) in [(1.0, vec!["client-cache", "resolver:cache"]), (100.0, vec!["resolver:cache"])] {
                let mut st = Staleness { step_at: super::ms(1000), last_old: Some(super::ms(39_000)), cause: StaleCause::ResolverCache, ..Default::default() };
                let at: Vec<Duration> = old_at.iter().map(|t| super::ms(*t)).collect();
                attribute(&mut st, "client", "blue", &at, &log, &[("cache".to_string(), "cache".to_string())], ANSWER_SLACK.mul_f64(scale));
                assert_eq!(names(&st), want, "at {scale}x: {:?}", st.held);
            }
        }

        fn names(st: &Staleness) -> Vec<String> {
            st.layers().iter().map(Layer::name).collect()
        }

        #[test]
        fn no_query_after_the_change_leaves_the_client_cache() {
            let mut log = Vec::new();
            ask(&mut log, "client", ("192.0.2.10:4000", "192.0.2.20:53"), (500, 2), "blue", 20);
            let st = walk(&log, &[1500, 9000], 8000);
            assert!(st.held.is_empty(), "{:?}", st.held);
            assert_eq!(names(&st), ["client-cache"]);
        }

        #[test]
        fn a_resolver_that_answers_old_without_asking_holds_it() {
            let mut log = Vec::new();
            ask(&mut log, "client", ("192.0.2.10:4000", "192.0.2.20:53"), (1200, 2), "blue", 18);
            let st = walk(&log, &[1250, 5000], 4000);
            assert_eq!(names(&st), ["resolver:cache"]);
            assert_eq!(st.held[0].from, super::ms(200));
            assert_eq!(st.held[0].to, super::ms(4000));
            assert!(st.held[0].evidence.contains("without asking upstream") && st.held[0].evidence.contains("TTL 18"), "{}", st.held[0].evidence);
        }

        #[test]
        fn a_host_cache_that_answers_old_without_asking_holds_it() {
            let mut log = Vec::new();
            ask(&mut log, "client", ("127.0.0.1:4000", "127.0.0.53:53"), (1200, 1), "blue", 15);
            let st = walk(&log, &[1250], 2000);
            assert_eq!(names(&st), ["host-cache:client"]);
        }

        #[test]
        fn a_host_cache_that_asked_the_resolver_passes_the_blame_up() {
            let mut log = Vec::new();
            ask(&mut log, "client", ("127.0.0.1:4000", "127.0.0.53:53"), (1200, 10), "blue", 15);
            // systemd-resolved asks unbound while the stub query is pending; unbound answers blue
            // from its cache.
            ask(&mut log, "client", ("192.0.2.10:5000", "192.0.2.20:53"), (1202, 3), "blue", 15);
            let st = walk(&log, &[1250], 2000);
            assert_eq!(names(&st), ["resolver:cache"], "{:?}", st.held);
        }

        #[test]
        fn a_resolver_that_asked_the_lab_dns_and_still_answered_old_is_named() {
            let mut log = Vec::new();
            ask(&mut log, "client", ("192.0.2.10:4000", "192.0.2.20:53"), (1200, 10), "blue", 15);
            ask(&mut log, "cache", ("192.0.2.20:6000", "192.0.2.53:53"), (1202, 3), "green", 2);
            let st = walk(&log, &[1250], 2000);
            assert_eq!(names(&st), ["resolver:cache"]);
            assert!(st.held[0].evidence.contains("not answered the old target"), "{}", st.held[0].evidence);
        }

        #[test]
        fn the_client_cache_then_the_resolver_split_the_window() {
            // The JVM behind unbound: nothing for 27 s, then unbound's cached blue, then green.
            let mut log = Vec::new();
            ask(&mut log, "client", ("192.0.2.10:4000", "192.0.2.20:53"), (28_100, 2), "blue", 18);
            let old_at: Vec<u64> = (1..230).map(|i| 1000 + i * 250).collect();
            let st = walk(&log, &old_at, 56_900);
            assert_eq!(names(&st), ["client-cache", "resolver:cache"]);
            assert_eq!((st.held[0].from, st.held[0].to), (Duration::ZERO, super::ms(27_100)));
            assert_eq!((st.held[1].from, st.held[1].to), (super::ms(27_100), super::ms(56_900)));
            let text = st.to_string();
            assert!(text.contains("0.00s - 27.10s: the client's own cache") && text.contains("27.10s - 56.90s: resolver cache"), "{text}");
            assert_eq!(held_failures(&st, &["client-cache".into(), "resolver:cache".into()]), Vec::<String>::new());
            assert_eq!(held_failures(&st, &["resolver:cache".into()]).len(), 1);
        }

        #[test]
        fn a_request_resolved_before_the_change_and_made_just_after_it_is_no_client_cache() {
            let mut log = Vec::new();
            ask(&mut log, "client", ("192.0.2.10:4000", "192.0.2.20:53"), (1300, 2), "blue", 18);
            let st = walk(&log, &[1050, 1350, 5000], 4000);
            assert_eq!(names(&st), ["resolver:cache"], "{:?}", st.held);
        }

        #[test]
        fn answers_naming_the_new_target_are_not_followed() {
            let mut log = Vec::new();
            ask(&mut log, "client", ("192.0.2.10:4000", "192.0.2.20:53"), (1200, 2), "green", 2);
            let st = walk(&log, &[1250], 2000);
            assert!(st.held.is_empty());
        }
    }
}
