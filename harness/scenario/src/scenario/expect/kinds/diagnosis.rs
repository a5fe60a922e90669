//! `kind = "diagnosis"`: the cause of a service's failed bind, connect or socket call.

use std::fmt;

use crate::scenario::decode::{Result, Table};
use crate::scenario::expect::spec::KindSpec;
use crate::scenario::known::{refer_service, Known};

/// The cause of a service's failed bind, connect or socket call, named from the calls it
/// made (the service needs `trace = true`).
#[derive(Debug, Clone)]
pub struct DiagnosisCheck {
    /// The service.
    pub service: String,
    /// The cause that must be found.
    pub cause: Cause,
}

/// A cause of a bind or connect failure, named from the system calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Bind or connect to a link-local address without a scope id (EINVAL).
    LinkLocalWithoutScope,
    /// Bind to an IPv6 address of the host that is still tentative (DAD running; EADDRNOTAVAIL).
    AddressTentative,
    /// Bind to an address the host does not have (EADDRNOTAVAIL).
    AddressNotOnHost,
    /// `socket(AF_INET6)` refused: IPv6 absent (EAFNOSUPPORT).
    Ipv6Absent,
    /// `[::]` and `0.0.0.0` on the same port with bindv6only=0 (EADDRINUSE).
    DualBindConflict,
    /// The port is taken (EADDRINUSE), not by the program's own other-family wildcard.
    AddressInUse,
    /// Connection refused: nothing listens there (ECONNREFUSED).
    ConnectionRefused,
    /// No route for the family (ENETUNREACH).
    NetworkUnreachable,
    /// An IPv6 connect that never completed (timed out, or abandoned for IPv4 later): a broken
    /// path while the other family works.
    BrokenPath,
}

impl Cause {
    /// Every cause, as written in scenarios.
    pub const ALL: [Cause; 9] = [
        Cause::LinkLocalWithoutScope,
        Cause::AddressTentative,
        Cause::AddressNotOnHost,
        Cause::Ipv6Absent,
        Cause::DualBindConflict,
        Cause::AddressInUse,
        Cause::ConnectionRefused,
        Cause::NetworkUnreachable,
        Cause::BrokenPath,
    ];

    /// The name as written in scenarios.
    pub fn name(self) -> &'static str {
        match self {
            Cause::LinkLocalWithoutScope => "link-local-without-scope",
            Cause::AddressTentative => "address-tentative",
            Cause::AddressNotOnHost => "address-not-on-host",
            Cause::Ipv6Absent => "ipv6-absent",
            Cause::DualBindConflict => "dual-bind-conflict",
            Cause::AddressInUse => "address-in-use",
            Cause::ConnectionRefused => "connection-refused",
            Cause::NetworkUnreachable => "network-unreachable",
            Cause::BrokenPath => "broken-path",
        }
    }
}

impl KindSpec for DiagnosisCheck {
    const NAME: &'static str = "diagnosis";
    const KEYS: &'static [&'static str] = &["service", "cause"];

    fn decode(t: &mut Table<'_, '_>, known: &Known) -> Result<Self> {
        let svc = t.req_str("service", "\"<a declared service>\"")?;
        let service = refer_service(t, "service", &svc, known)?;
        let c = t.req_str("cause", "\"link-local-without-scope\"")?;
        let cause = Cause::ALL
            .into_iter()
            .find(|x| x.name() == c.value)
            .ok_or_else(|| t.bad("cause", &c.span, format!("{:?} is not a cause; expected one of {}", c.value, Cause::ALL.map(|x| x.name()).join(", "))))?;
        Ok(DiagnosisCheck { service, cause })
    }
}

impl fmt::Display for DiagnosisCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the diagnosis of service {} names the cause {}", self.service, self.cause.name())
    }
}
