//! `kind = "first-request"`: how long after a client service started its first request reached
//! a target, and over which family (the Happy Eyeballs question on a broken path).

use std::fmt;
use std::time::Duration;

use crate::scenario::decode::{Result, Table};
use crate::scenario::duration::format_duration;
use crate::scenario::expect::spec::{service, KindSpec};
use crate::scenario::known::{refer, Known};
use nslab::host::listeners::Family;

/// How long after a client service started its first request reached a target, and over
/// which family: the Happy Eyeballs question on a broken path.
#[derive(Debug, Clone)]
pub struct FirstRequestCheck {
    /// The client service.
    pub service: String,
    /// The target.
    pub target: String,
    /// It came at most this long after the service started.
    pub within: Option<Duration>,
    /// It came at least this long after the service started.
    pub at_least: Option<Duration>,
    /// It came over this family.
    pub family: Option<Family>,
    /// What the times count from.
    pub from: Anchor,
}

/// What a `first-request` window counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Anchor {
    /// The moment the service was started (includes the program's own start-up).
    #[default]
    Start,
    /// The client host's first DNS query after the service started: the moment the program
    /// began its request, without the start-up time of its runtime (or of strace around it).
    DnsQuery,
}

impl Anchor {
    fn describe(self) -> &'static str {
        match self {
            Anchor::Start => "it started",
            Anchor::DnsQuery => "its first DNS query",
        }
    }
}

impl KindSpec for FirstRequestCheck {
    const NAME: &'static str = "first-request";
    const KEYS: &'static [&'static str] = &["service", "target", "within", "at_least", "family", "from"];

    fn decode(t: &mut Table<'_, '_>, known: &Known) -> Result<Self> {
        let service = service(t, known)?;
        let ts = t.req_str("target", "\"<a declared target>\"")?;
        let target = refer(t, "target", &ts, "target", &known.targets)?;
        let within = t.positive_duration("within")?;
        let at_least = t.duration("at_least")?;
        let family = match t.str("family")? {
            None => None,
            Some(s) => Some(match s.value.as_str() {
                "ipv4" => Family::V4,
                "ipv6" => Family::V6,
                other => return Err(t.bad("family", &s.span, format!("{other:?} is not a family; expected \"ipv4\" or \"ipv6\""))),
            }),
        };
        let from = match t.str("from")? {
            None => Anchor::Start,
            Some(s) => match s.value.as_str() {
                "start" => Anchor::Start,
                "dns-query" => Anchor::DnsQuery,
                other => return Err(t.bad("from", &s.span, format!("{other:?} is not a starting point; expected \"start\" or \"dns-query\""))),
            },
        };
        if within.is_none() && at_least.is_none() && family.is_none() {
            return Err(t.doc.err(&t.span.clone(), format!("{} has none of within, at_least, family; expected at least one of them", t.what)));
        }
        Ok(FirstRequestCheck { service, target, within, at_least, family, from })
    }
}

impl fmt::Display for FirstRequestCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let FirstRequestCheck { service, target, within, at_least, family, from } = self;
        write!(f, "the first request of service {service} reaches target {target}")?;
        if let Some(fam) = family {
            write!(f, " over {}", if *fam == Family::V4 { "IPv4" } else { "IPv6" })?;
        }
        let anchor = from.describe();
        match (at_least, within) {
            (Some(l), Some(w)) => write!(f, " between {} and {} after {anchor}", format_duration(*l), format_duration(*w)),
            (None, Some(w)) => write!(f, " within {} after {anchor}", format_duration(*w)),
            (Some(l), None) => write!(f, " no sooner than {} after {anchor}", format_duration(*l)),
            (None, None) => Ok(()),
        }
    }
}
