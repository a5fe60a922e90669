//! `kind = "stale"`: how long a client kept reaching the old target after a DNS change, and why.

use std::fmt;
use std::time::Duration;

use crate::scenario::decode::{Result, Table};
use crate::scenario::duration::format_duration;
use crate::scenario::expect::spec::{client, step, target_of, ClientRef, KindSpec};
use crate::scenario::known::Known;

/// How long a client kept reaching the `old` target after a DNS change (the named step), and
/// why, from the built-in targets' request logs and the DNS query log.
#[derive(Debug, Clone)]
pub struct StaleCheck {
    /// The client: a host (each client service on it analysed on its own when the targets
    /// attribute its requests) or one service.
    pub client: ClientRef,
    /// The step of the DNS change.
    pub after: String,
    /// The target the change moves away from.
    pub old: String,
    /// The target it moves to.
    pub new: String,
    /// The client reached `new` and its last request to `old` came at most this long after the change.
    pub at_most: Option<Duration>,
    /// Its last request to `old` came at least this long after the change.
    pub at_least: Option<Duration>,
    /// Why it stayed (checked only when given).
    pub cause: Option<StaleCause>,
    /// The DNS cross-check and the served TTL (each checked only when given).
    pub counts: StaleCounts,
    /// The layers that held the old target, in order (`client-cache`, `pinned-connection`,
    /// `host-cache:<host>`, `resolver:<name>`), from the lab's DNS traffic log.
    pub held_by: Option<Vec<String>>,
}

/// The counted part of a `stale` expectation: the DNS cross-check and the TTL served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StaleCounts {
    /// Exactly this many DNS queries from the client after the change, within the stale window.
    pub dns_queries_after: Option<u64>,
    /// At least this many.
    pub min_dns_queries_after: Option<u64>,
    /// Exactly this many new connections to the old target after the change.
    pub new_connections_to_old: Option<u64>,
    /// The answer before the change carried this TTL (the smallest over its chain).
    pub ttl: Option<Duration>,
}

/// Why a client kept reaching the old target after a DNS change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StaleCause {
    /// It did not: no request reached the old target after the change.
    #[default]
    None,
    /// Requests on connections opened before the change (a pool or keep-alive): the client
    /// never needed to resolve again.
    ConnectionPinning,
    /// New connections opened after the change to the old address: an answer cached in the
    /// client (a resolver cache, such as the JVM's).
    ResolverCache,
    /// Both: requests on connections opened before the change and new connections to the
    /// old address after it.
    Mixed,
    /// New connections to the old address more than a second after the client had asked again
    /// and been answered with the new target, and before it first reached the new target: a cache
    /// of the application's own, not the resolver's (one opened after the host reached the new
    /// target is another client's on the host).
    ApplicationCache,
    /// Not known: the target's log does not say which connection a request came on.
    Unknown,
}

impl StaleCause {
    /// The name as written in scenarios.
    pub fn name(self) -> &'static str {
        match self {
            StaleCause::None => "none",
            StaleCause::ConnectionPinning => "connection-pinning",
            StaleCause::ResolverCache => "resolver-cache",
            StaleCause::Mixed => "mixed",
            StaleCause::ApplicationCache => "application-cache",
            StaleCause::Unknown => "unknown",
        }
    }

    /// Every cause, for parsing and messages.
    pub const ALL: [StaleCause; 6] =
        [StaleCause::None, StaleCause::ConnectionPinning, StaleCause::ResolverCache, StaleCause::Mixed, StaleCause::ApplicationCache, StaleCause::Unknown];
}

impl KindSpec for StaleCheck {
    const NAME: &'static str = "stale";
    const KEYS: &'static [&'static str] = &[
        "client",
        "after",
        "old",
        "new",
        "at_most",
        "at_least",
        "cause",
        "dns_queries_after",
        "min_dns_queries_after",
        "new_connections_to_old",
        "ttl",
        "held_by",
    ];

    fn decode(t: &mut Table<'_, '_>, known: &Known) -> Result<Self> {
        let client = client(t, known)?;
        let after = step(t, known)?;
        let old = target_of(t, "old", &client, known)?;
        let new = target_of(t, "new", &client, known)?;
        let at_most = t.positive_duration("at_most")?;
        let at_least = t.duration("at_least")?;
        let checked = ["at_most", "at_least", "cause", "dns_queries_after", "min_dns_queries_after", "new_connections_to_old", "ttl", "held_by"];
        if at_most.is_none() && at_least.is_none() && !checked[2..].iter().any(|k| t.has(k)) {
            return Err(t.doc.err(&t.span.clone(), format!("{} has none of {}; expected at least one of them", t.what, checked.join(", "))));
        }
        let cause = match t.str("cause")? {
            None => None,
            Some(s) => Some(match StaleCause::ALL.into_iter().find(|c| c.name() == s.value) {
                Some(c) => c,
                None => {
                    let names: Vec<String> = StaleCause::ALL.iter().map(|c| format!("{:?}", c.name())).collect();
                    return Err(t.bad("cause", &s.span, format!("{:?} is not a cause; expected one of {}", s.value, names.join(", "))));
                }
            }),
        };
        let count = |t: &mut Table<'_, '_>, k: &str| t.int(k, 0..=1_000_000).map(|v| v.map(|v| v as u64));
        let counts = StaleCounts {
            dns_queries_after: count(t, "dns_queries_after")?,
            min_dns_queries_after: count(t, "min_dns_queries_after")?,
            new_connections_to_old: count(t, "new_connections_to_old")?,
            ttl: t.duration("ttl")?,
        };
        let held_by = match t.str_list("held_by", "a list of layers, e.g. [\"client-cache\", \"resolver:cache\"]")? {
            None => None,
            Some((span, names)) => {
                if names.is_empty() {
                    return Err(t.bad("held_by", &span, "an empty list; expected at least one layer"));
                }
                for n in &names {
                    let ok = match n.value.split_once(':') {
                        None => n.value == "client-cache" || n.value == "pinned-connection",
                        Some(("host-cache", h)) => known.hosts.contains(h),
                        Some(("resolver", r)) => known.resolvers.contains_key(r) || known.hosts.contains(r),
                        Some(_) => false,
                    };
                    if !ok {
                        return Err(t.bad(
                            "held_by",
                            &n.span,
                            format!("{:?} is not a layer; expected \"client-cache\", \"pinned-connection\", \"host-cache:<host>\" (a host of the scenario) or \"resolver:<name>\" (a resolver or host of the scenario)", n.value),
                        ));
                    }
                }
                Some(names.into_iter().map(|n| n.value).collect())
            }
        };
        Ok(StaleCheck { client, after, old, new, at_most, at_least, cause, counts, held_by })
    }

    fn after(&self) -> Option<&str> {
        Some(&self.after)
    }
}

impl fmt::Display for StaleCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let StaleCheck { client, after, old, new, at_most, at_least, cause, counts, held_by } = self;
        write!(f, "client {client} ")?;
        match (at_most, at_least) {
            (Some(m), Some(l)) => write!(f, "keeps reaching {old} for {} to {} after step {after}, then {new}", format_duration(*l), format_duration(*m))?,
            (Some(m), None) => write!(f, "moves from {old} to {new} within {} after step {after}", format_duration(*m))?,
            (None, Some(l)) => write!(f, "still reaches {old} at least {} after step {after}", format_duration(*l))?,
            (None, None) => write!(f, "after step {after}, between {old} and {new}")?,
        }
        if let Some(c) = cause {
            write!(f, " (cause: {})", c.name())?;
        }
        if let Some(n) = counts.dns_queries_after {
            write!(f, ", {n} DNS quer{} after it", if n == 1 { "y" } else { "ies" })?;
        }
        if let Some(n) = counts.min_dns_queries_after {
            write!(f, ", at least {n} DNS quer{} after it before reaching {new}", if n == 1 { "y" } else { "ies" })?;
        }
        if let Some(n) = counts.new_connections_to_old {
            write!(f, ", {n} new connection(s) to {old}")?;
        }
        if let Some(t) = counts.ttl {
            write!(f, ", served TTL {}", format_duration(t))?;
        }
        if let Some(h) = held_by {
            write!(f, ", held by {} in turn", h.join(" then "))?;
        }
        Ok(())
    }
}
