//! `kind = "dns-queries"`: how many times, and how often, a host asked for a name in a window
//! after a step, read from the lab's DNS traffic log (every host's packets, every layer).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::scenario::decode::{Result, Table};
use crate::scenario::duration::format_duration;
use crate::scenario::expect::spec::{step, KindSpec};
use crate::scenario::known::{refer, Known};
use nslab::dns::RecordType;

/// Who asked: a host, or a service (its host: the tap sees hosts, not processes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asker {
    /// A lab host.
    Host(String),
    /// A service; its queries are those its host sent.
    Service(String),
}

/// Whom the queries went to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// A lab host (any of its addresses; `127.0.0.1` and `::1` are the asking host itself).
    Host(String),
    /// One address.
    Addr(IpAddr),
}

/// Where the window ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowEnd {
    /// This long after its start.
    For(Duration),
    /// When this named step ended.
    Until(String),
}

/// How many queries the window holds, and how far apart.
#[derive(Debug, Clone)]
pub struct DnsQueriesCheck {
    /// Who asked.
    pub from: Asker,
    /// Whom (any server when `None`).
    pub to: Option<Asked>,
    /// The name asked for, absolute, lower case.
    pub name: String,
    /// The query type (any when `None`).
    pub qtype: Option<RecordType>,
    /// The step the window starts at (when it ended).
    pub after: String,
    /// Where the window ends.
    pub end: WindowEnd,
    /// Exactly this many.
    pub count: Option<u64>,
    /// At least this many.
    pub at_least: Option<u64>,
    /// At most this many.
    pub at_most: Option<u64>,
    /// Consecutive queries this far apart, give or take `tolerance`.
    pub every: Option<Duration>,
    /// How far a gap may be from `every` (default: a quarter of it).
    pub tolerance: Duration,
}

impl KindSpec for DnsQueriesCheck {
    const NAME: &'static str = "dns-queries";
    const KEYS: &'static [&'static str] = &["from", "to", "qname", "type", "after", "for", "until", "count", "at_least", "at_most", "every", "tolerance"];

    fn decode(t: &mut Table<'_, '_>, known: &Known) -> Result<Self> {
        let f = t.req_str("from", "\"<a declared host or service>\"")?;
        let from = if known.hosts.contains(&f.value) {
            Asker::Host(f.value.clone())
        } else if known.services.contains(&f.value) {
            known.service_refs.borrow_mut().push((f.value.clone(), f.span.clone()));
            Asker::Service(f.value.clone())
        } else {
            let all: Vec<String> = known.hosts.iter().chain(&known.services).cloned().collect();
            return Err(t.bad("from", &f.span, format!("{:?} is neither a declared host nor a declared service; expected one of {}", f.value, all.join(", "))));
        };
        let to = match t.str("to")? {
            None => None,
            Some(s) => match s.value.parse::<IpAddr>() {
                Ok(ip) => Some(Asked::Addr(ip)),
                Err(_) if known.dns && s.value == nslab::DNS_HOST => Some(Asked::Host(s.value.clone())),
                // A resolver of the scenario: its host.
                Err(_) if !known.hosts.contains(&s.value) && known.resolvers.contains_key(&s.value) => Some(Asked::Host(known.resolvers[&s.value].clone())),
                Err(_) => {
                    let mut hosts = known.hosts.clone();
                    if known.dns {
                        hosts.insert(nslab::DNS_HOST.to_string());
                    }
                    Some(Asked::Host(refer(t, "to", &s, "host", &hosts).map_err(|_| {
                        t.bad(
                            "to",
                            &s.span,
                            format!(
                                "{:?} is neither a host, a resolver nor an address; expected an IP address or one of {}",
                                s.value,
                                hosts.into_iter().chain(known.resolvers.keys().cloned()).collect::<Vec<_>>().join(", ")
                            ),
                        )
                    })?))
                }
            },
        };
        let n = t.req_str("qname", "\"app.example.test\"")?;
        let mut name = n.value.trim().to_ascii_lowercase();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(t.bad("qname", &n.span, format!("{:?} is not a DNS name; expected a name such as \"app.example.test\"", n.value)));
        }
        if !name.ends_with('.') {
            name.push('.');
        }
        let qtype = match t.str("type")? {
            None => None,
            Some(s) => match RecordType::from_str(&s.value.to_ascii_uppercase()) {
                Ok(rt) if !matches!(rt, RecordType::Unknown(_)) => Some(rt),
                _ => return Err(t.bad("type", &s.span, format!("{:?} is not a query type; expected a type such as \"A\", \"AAAA\", \"CNAME\"", s.value))),
            },
        };
        let after = step(t, known)?;
        let for_span = t.key_span("for");
        let dur = t.positive_duration("for")?;
        let until = match t.str("until")? {
            None => None,
            Some(s) => Some(refer(t, "until", &s, "step", &known.steps)?),
        };
        let end = match (dur, until) {
            (Some(d), None) => WindowEnd::For(d),
            (None, Some(u)) => WindowEnd::Until(u),
            (Some(_), Some(_)) => {
                return Err(t.bad(
                    "for",
                    &for_span.unwrap_or(t.span.clone()),
                    "both for and until are given; expected one of them: the window ends after a duration or at a step",
                ))
            }
            (None, None) => return Err(t.doc.err(&t.span.clone(), format!("{} has neither for nor until; expected one of them, e.g. for = \"20s\"", t.what))),
        };
        let count_span = t.key_span("count");
        let count = t.int("count", 0..=1_000_000)?.map(|n| n as u64);
        let at_least = t.int("at_least", 0..=1_000_000)?.map(|n| n as u64);
        let at_most = t.int("at_most", 0..=1_000_000)?.map(|n| n as u64);
        if count.is_some() && (at_least.is_some() || at_most.is_some()) {
            return Err(t.bad(
                "count",
                &count_span.unwrap_or(t.span.clone()),
                "count is given with at_least or at_most; expected either an exact count or bounds",
            ));
        }
        if let (Some(l), Some(m)) = (at_least, at_most) {
            if l > m {
                return Err(t.doc.err(&t.span.clone(), format!("{}: at_least = {l} is more than at_most = {m}; expected at_least <= at_most", t.what)));
            }
        }
        let every = t.positive_duration("every")?;
        let tol_span = t.key_span("tolerance");
        let tolerance = t.duration("tolerance")?;
        if let (Some(span), None) = (&tol_span, every) {
            return Err(t.bad("tolerance", span, "tolerance is given without every; expected it only with every = \"<gap between queries>\""));
        }
        if count.is_none() && at_least.is_none() && at_most.is_none() && every.is_none() {
            return Err(t.doc.err(&t.span.clone(), format!("{} has none of count, at_least, at_most, every; expected at least one of them", t.what)));
        }
        let tolerance = tolerance.unwrap_or_else(|| every.map_or(Duration::ZERO, |e| e / 4));
        Ok(DnsQueriesCheck { from, to, name, qtype, after, end, count, at_least, at_most, every, tolerance })
    }

    fn after(&self) -> Option<&str> {
        Some(&self.after)
    }
}

impl fmt::Display for Asker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Asker::Host(h) => write!(f, "host {h}"),
            Asker::Service(s) => write!(f, "the host of service {s}"),
        }
    }
}

impl fmt::Display for Asked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Asked::Host(h) => write!(f, "host {h}"),
            Asked::Addr(a) => write!(f, "{a}"),
        }
    }
}

impl fmt::Display for DnsQueriesCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let DnsQueriesCheck { from, to, name, qtype, after, end, count, at_least, at_most, every, tolerance } = self;
        write!(f, "{from} asks")?;
        if let Some(to) = to {
            write!(f, " {to}")?;
        }
        write!(f, " for {name}")?;
        if let Some(t) = qtype {
            write!(f, " {t}")?;
        }
        match (count, at_least, at_most) {
            (Some(n), _, _) => write!(f, " {n} time{}", if *n == 1 { "" } else { "s" })?,
            (None, Some(l), Some(m)) => write!(f, " {l} to {m} times")?,
            (None, Some(l), None) => write!(f, " at least {l} time{}", if *l == 1 { "" } else { "s" })?,
            (None, None, Some(m)) => write!(f, " at most {m} time{}", if *m == 1 { "" } else { "s" })?,
            (None, None, None) => {}
        }
        if let Some(e) = every {
            write!(f, " every {} (± {})", format_duration(*e), format_duration(*tolerance))?;
        }
        match end {
            WindowEnd::For(d) => write!(f, " in the {} after step {after}", format_duration(*d)),
            WindowEnd::Until(u) => write!(f, " from step {after} until step {u}"),
        }
    }
}
