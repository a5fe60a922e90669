//! What every kind of expectation provides ([`KindSpec`]), and the readers kinds share.

use std::fmt;

use crate::scenario::decode::{Result, Table};
use crate::scenario::known::{refer, regex, Known};

/// A kind of expectation: its name, its keys and its decoder, next to its model. The list of
/// kinds (`kind.rs`) is made from these, so a kind cannot be named without keys or decoded
/// without a name.
pub(crate) trait KindSpec: Sized + fmt::Display {
    /// The name `kind = "..."` gives it.
    const NAME: &'static str;
    /// The keys it allows besides `kind`, `name` and `profiles`.
    const KEYS: &'static [&'static str];
    /// Reads the check from its table (whose keys are already checked against [`Self::KEYS`]).
    fn decode(t: &mut Table<'_, '_>, known: &Known) -> Result<Self>;
    /// The named step its window starts at, if it has one.
    fn after(&self) -> Option<&str> {
        None
    }
}

/// `service = "<a declared service>"`, required.
pub(crate) fn service(t: &mut Table<'_, '_>, known: &Known) -> Result<String> {
    let s = t.req_str("service", "\"<a declared service>\"")?;
    crate::scenario::known::refer_service(t, "service", &s, known)
}

/// `after = "<the name of a timeline step>"`, required.
pub(crate) fn step(t: &mut Table<'_, '_>, known: &Known) -> Result<String> {
    let s = t.req_str("after", "\"<the name of a timeline step>\"")?;
    refer(t, "after", &s, "step", &known.steps)
}

/// A required regex under `key`.
pub(crate) fn required_regex(t: &mut Table<'_, '_>, key: &str) -> Result<regex::Regex> {
    let s = t.req_str(key, "\"<regex>\"")?;
    regex(t, key, &s)
}

/// The client an expectation names: a host (every request from its addresses) or a service (the
/// requests a built-in target attributed to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRef {
    /// A host.
    Host(String),
    /// A service.
    Service(String),
}

impl ClientRef {
    /// The name as written.
    pub fn name(&self) -> &str {
        match self {
            ClientRef::Host(n) | ClientRef::Service(n) => n,
        }
    }
}

impl fmt::Display for ClientRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `client = "<a declared host or service>"`, required: a name that is a host means the host
/// (as it always did), one that is only a service the service; `service:<name>` names a service
/// that shares its name with a host.
pub(crate) fn client(t: &mut Table<'_, '_>, known: &Known) -> Result<ClientRef> {
    let s = t.req_str("client", "\"<a declared host or service>\"")?;
    if let Some(name) = s.value.strip_prefix("service:") {
        let named = crate::scenario::decode::Str { value: name.to_string(), span: s.span.clone() };
        let name = refer(t, "client", &named, "service", &known.services)?;
        known.service_refs.borrow_mut().push((name.clone(), s.span.clone()));
        return Ok(ClientRef::Service(name));
    }
    if known.hosts.contains(&s.value) {
        return Ok(ClientRef::Host(s.value.clone()));
    }
    if known.services.contains(&s.value) {
        known.service_refs.borrow_mut().push((s.value.clone(), s.span.clone()));
        return Ok(ClientRef::Service(s.value.clone()));
    }
    let list = |set: &std::collections::BTreeSet<String>| if set.is_empty() { "none".to_string() } else { set.iter().cloned().collect::<Vec<_>>().join(", ") };
    Err(t.bad(
        "client",
        &s.span,
        format!(
            "{:?} is neither a declared host nor a declared service; expected a host (declared: {}) or a service (declared: {})",
            s.value,
            list(&known.hosts),
            list(&known.services)
        ),
    ))
}

/// `key = "<a declared target>"`, required, that `client` can be told apart in: a service as the
/// client needs a built-in target (it sees which process made each connection); a target read
/// from a server's log knows the client's address only.
pub(crate) fn target_of(t: &mut Table<'_, '_>, key: &str, client: &ClientRef, known: &Known) -> Result<String> {
    let s = t.req_str(key, "\"<a declared target>\"")?;
    let name = refer(t, key, &s, "target", &known.targets)?;
    if let (ClientRef::Service(svc), true) = (client, known.log_targets.contains(&name)) {
        return Err(t.bad(
            key,
            &s.span,
            format!(
                "target {name:?} is read from a server's log, which gives a client's address, not its process, so it cannot tell service {svc:?}'s requests from its host's; expected a built-in target ([targets.{name}] with host and port), or the client's host as client"
            ),
        ));
    }
    Ok(name)
}
