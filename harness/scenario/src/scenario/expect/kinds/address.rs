//! `kind = "address"`: a host has (or had) an address in a /64 in a state, as the kernel
//! reported it in its address events, optionally only after a named step.

use std::fmt;
use std::net::Ipv6Addr;

use crate::scenario::decode::{Result, Table};
use crate::scenario::expect::spec::KindSpec;
use crate::scenario::known::{refer, Known};
use nslab::lab::provision::AddrState;

/// A host has (or, with `present = false`, never had) an address in `prefix` in `state`.
#[derive(Debug, Clone)]
pub struct AddressCheck {
    /// The host.
    pub host: String,
    /// The prefix (a /64, or narrower).
    pub prefix: Ipv6Addr,
    /// Its length.
    pub prefix_len: u8,
    /// The state the kernel reported.
    pub state: AddrState,
    /// Only events after this named step ended.
    pub after: Option<String>,
    /// `true`: such an event happened; `false`: none did (by the end of the timeline).
    pub present: bool,
}

impl KindSpec for AddressCheck {
    const NAME: &'static str = "address";
    const KEYS: &'static [&'static str] = &["host", "prefix", "state", "after", "present"];

    fn decode(t: &mut Table<'_, '_>, known: &Known) -> Result<Self> {
        if known.segments.is_empty() {
            return Err(t.doc.err(&t.span, format!("{} checks an address a router advertises; expected a [segments.lan.ipv6] table in the scenario", t.what)));
        }
        let h = t.req_str("host", "\"web\"")?;
        let host = refer(t, "host", &h, "host", &known.hosts)?;
        let (prefix, prefix_len) = match t.str("prefix")? {
            None => (nslab::lab::provision::ra::segment_prefix(0), 64),
            Some(p) => crate::scenario::values::parse_lab_prefix(&p.value).map_err(|e| t.bad("prefix", &p.span, e))?,
        };
        let st = t.req_str("state", "\"usable\"")?;
        let state = AddrState::parse(&st.value).ok_or_else(|| {
            t.bad("state", &st.span, format!("{:?} is not an address state; expected one of tentative, usable, deprecated, dad-failed, removed", st.value))
        })?;
        let after = match t.str("after")? {
            None => None,
            Some(s) => Some(refer(t, "after", &s, "step", &known.steps)?),
        };
        Ok(AddressCheck { host, prefix, prefix_len, state, after, present: t.bool("present")?.unwrap_or(true) })
    }

    fn after(&self) -> Option<&str> {
        self.after.as_deref()
    }
}

impl fmt::Display for AddressCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let AddressCheck { host, prefix, prefix_len, state, after, present } = self;
        let verb = if *present { "has" } else { "never has" };
        write!(f, "host {host} {verb} an address in {prefix}/{prefix_len} {}", state.name())?;
        if let Some(a) = after {
            write!(f, " after step {a}")?;
        }
        Ok(())
    }
}
