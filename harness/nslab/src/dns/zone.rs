//! The zone data model (plain structs a scenario layer can fill in) and its conversion to hickory records.

use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use hickory_proto::rr::{
    rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT},
    Name, RData, Record, RecordType,
};

use super::error::ZoneError;

/// Addresses of the lab's hosts by host name, used to expand [`RecordValue::Host`].
pub type HostAddrs = HashMap<String, Vec<IpAddr>>;

/// The start-of-authority parameters of a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soa {
    /// Primary name server (relative names resolve against the origin).
    pub mname: String,
    /// Mailbox of the responsible person, in domain-name form.
    pub rname: String,
    /// Initial serial; every runtime change increments it.
    pub serial: u32,
    /// Secondary refresh interval, seconds.
    pub refresh: i32,
    /// Secondary retry interval, seconds.
    pub retry: i32,
    /// Secondary expiry, seconds.
    pub expire: i32,
    /// MINIMUM field: negative-caching TTL bound (RFC 2308).
    pub minimum: u32,
    /// TTL of the SOA record itself.
    pub ttl: u32,
}

impl Soa {
    /// A SOA with the given name server and mailbox and common lab defaults
    /// (serial 1, refresh 3600, retry 600, expire 86400, minimum 60, TTL 3600).
    pub fn new(mname: impl Into<String>, rname: impl Into<String>) -> Self {
        Self { mname: mname.into(), rname: rname.into(), serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 60, ttl: 3600 }
    }

    /// The TTL a negative answer carries: min(SOA TTL, MINIMUM), RFC 2308 section 5.
    pub fn negative_ttl(&self) -> u32 {
        self.ttl.min(self.minimum)
    }
}

/// The record types the lab server manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    /// Start of authority.
    Soa,
    /// Name server.
    Ns,
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Canonical name (alias).
    Cname,
    /// Text.
    Txt,
    /// Service locator.
    Srv,
    /// Pointer (reverse mapping).
    Ptr,
    /// Mail exchanger.
    Mx,
}

impl RecordKind {
    /// Every kind, in the order error messages list them.
    pub const ALL: [RecordKind; 9] = [Self::Soa, Self::Ns, Self::A, Self::Aaaa, Self::Cname, Self::Txt, Self::Srv, Self::Ptr, Self::Mx];

    /// The wire record type.
    pub fn record_type(self) -> RecordType {
        match self {
            Self::Soa => RecordType::SOA,
            Self::Ns => RecordType::NS,
            Self::A => RecordType::A,
            Self::Aaaa => RecordType::AAAA,
            Self::Cname => RecordType::CNAME,
            Self::Txt => RecordType::TXT,
            Self::Srv => RecordType::SRV,
            Self::Ptr => RecordType::PTR,
            Self::Mx => RecordType::MX,
        }
    }

    /// The kind of a wire record type, `None` for a type the lab server does not manage.
    pub fn from_record_type(rtype: RecordType) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.record_type() == rtype)
    }
}

/// A record type name that is not one of the [`RecordKind`]s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a record type; expected one of {}", RecordKind::ALL.map(|k| k.to_string()).join(", "))]
pub struct ParseKindError {
    /// The text as given.
    pub text: String,
}

impl FromStr for RecordKind {
    type Err = ParseKindError;

    /// Parses a type mnemonic (`"CNAME"`, any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.to_string().eq_ignore_ascii_case(s)).ok_or_else(|| ParseKindError { text: s.to_owned() })
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.record_type(), f)
    }
}

/// The data of one record. Names may be relative to the zone origin or absolute (trailing dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordValue {
    /// An IPv4 address (type A).
    A(Ipv4Addr),
    /// An IPv6 address (type AAAA).
    Aaaa(Ipv6Addr),
    /// A name server (type NS).
    Ns(String),
    /// An alias target (type CNAME).
    Cname(String),
    /// A reverse-mapping target (type PTR).
    Ptr(String),
    /// Character strings (type TXT).
    Txt(Vec<String>),
    /// A service location (type SRV).
    Srv {
        /// Priority, lower first.
        priority: u16,
        /// Weight among equal priorities.
        weight: u16,
        /// Service port.
        port: u16,
        /// Target host name.
        target: String,
    },
    /// A mail exchanger (type MX).
    Mx {
        /// Preference, lower first.
        preference: u16,
        /// Exchange host name.
        exchange: String,
    },
    /// Start of authority (type SOA), as answers and the query log carry it; `ttl` is the
    /// record's. A zone's own SOA comes from [`Zone::soa`], never from a record.
    Soa(Soa),
    /// A lab host by name: expands to one A per IPv4 and one AAAA per IPv6 address of the host.
    Host(String),
}

impl RecordValue {
    /// The record type of this value, or `None` for [`RecordValue::Host`] (it may give A and AAAA).
    pub fn kind(&self) -> Option<RecordKind> {
        Some(match self {
            Self::A(_) => RecordKind::A,
            Self::Aaaa(_) => RecordKind::Aaaa,
            Self::Ns(_) => RecordKind::Ns,
            Self::Cname(_) => RecordKind::Cname,
            Self::Ptr(_) => RecordKind::Ptr,
            Self::Txt(_) => RecordKind::Txt,
            Self::Srv { .. } => RecordKind::Srv,
            Self::Mx { .. } => RecordKind::Mx,
            Self::Soa(_) => RecordKind::Soa,
            Self::Host(_) => return None,
        })
    }

    /// The value of a served record's data (names absolute, with their trailing dot); `None` for
    /// data of a type the lab server does not manage.
    pub(crate) fn from_rdata(data: &RData, ttl: u32) -> Option<Self> {
        Some(match data {
            RData::A(a) => Self::A(a.0),
            RData::AAAA(a) => Self::Aaaa(a.0),
            RData::NS(n) => Self::Ns(n.0.to_string()),
            RData::CNAME(n) => Self::Cname(n.0.to_string()),
            RData::PTR(n) => Self::Ptr(n.0.to_string()),
            RData::TXT(t) => Self::Txt(t.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect()),
            RData::SRV(s) => Self::Srv { priority: s.priority, weight: s.weight, port: s.port, target: s.target.to_string() },
            RData::MX(m) => Self::Mx { preference: m.preference, exchange: m.exchange.to_string() },
            RData::SOA(s) => Self::Soa(Soa {
                mname: s.mname.to_string(),
                rname: s.rname.to_string(),
                serial: s.serial,
                refresh: s.refresh,
                retry: s.retry,
                expire: s.expire,
                minimum: s.minimum,
                ttl,
            }),
            _ => return None,
        })
    }

    /// The domain name the data points to: the target of an NS, CNAME, PTR or SRV, the exchange
    /// of an MX; `None` for other data.
    pub fn target(&self) -> Option<&str> {
        match self {
            Self::Ns(n) | Self::Cname(n) | Self::Ptr(n) | Self::Srv { target: n, .. } | Self::Mx { exchange: n, .. } => Some(n),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Host(host) => format!("host {host:?}"),
            other => other.kind().map_or_else(String::new, |kind| kind.to_string()),
        }
    }
}

/// One record of zone data: owner name, TTL and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSpec {
    /// Owner name; `@` or empty is the origin, names without a trailing dot are relative.
    pub name: String,
    /// Time to live, seconds.
    pub ttl: u32,
    /// The record data.
    pub value: RecordValue,
}

impl RecordSpec {
    /// A record with the given owner, TTL and value.
    pub fn new(name: impl Into<String>, ttl: u32, value: RecordValue) -> Self {
        Self { name: name.into(), ttl, value }
    }
}

/// A zone: origin, SOA and records. The SOA record is generated from [`Soa`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// The zone apex, e.g. `example.test` (a trailing dot is optional).
    pub origin: String,
    /// Start-of-authority parameters.
    pub soa: Soa,
    /// All other records (NS, A, ...), each with its own TTL.
    pub records: Vec<RecordSpec>,
}

impl Zone {
    /// An empty zone with the given origin and SOA.
    pub fn new(origin: impl Into<String>, soa: Soa) -> Self {
        Self { origin: origin.into(), soa, records: Vec::new() }
    }

    /// Adds one record; returns the zone for chaining.
    pub fn record(mut self, name: impl Into<String>, ttl: u32, value: RecordValue) -> Self {
        self.records.push(RecordSpec::new(name, ttl, value));
        self
    }
}

/// Parses a zone origin (always absolute, trailing dot optional).
///
/// # Errors
///
/// [`ZoneError::InvalidName`] if the text is not a valid domain name.
pub(crate) fn parse_origin(origin: &str) -> Result<Name, ZoneError> {
    let text = if origin.ends_with('.') { origin.to_owned() } else { format!("{origin}.") };
    Name::from_ascii(&text).map_err(|source| ZoneError::InvalidName { name: origin.to_owned(), origin: ".".to_owned(), source })
}

/// Resolves a possibly relative name against `origin`: `@` and `""` are the origin itself,
/// a trailing dot makes a name absolute, anything else is appended to the origin.
///
/// # Errors
///
/// [`ZoneError::InvalidName`] if the text is not a valid domain name or the result is too long.
pub(crate) fn resolve_name(name: &str, origin: &Name) -> Result<Name, ZoneError> {
    let invalid = |source| ZoneError::InvalidName { name: name.to_owned(), origin: origin.to_string(), source };
    if name.is_empty() || name == "@" {
        return Ok(origin.clone());
    }
    let parsed = Name::from_ascii(name).map_err(invalid)?;
    if parsed.is_fqdn() {
        Ok(parsed)
    } else {
        parsed.append_domain(origin).map_err(invalid)
    }
}

/// Builds the SOA record of a zone with the given serial.
pub(crate) fn soa_record(origin: &Name, soa: &Soa) -> Result<Record, ZoneError> {
    let data = SOA::new(resolve_name(&soa.mname, origin)?, resolve_name(&soa.rname, origin)?, soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum);
    Ok(Record::from_rdata(origin.clone(), soa.ttl, RData::SOA(data)))
}

/// Expands one record value at `owner` into wire records.
///
/// `only` restricts the expansion to one type: a [`RecordValue::Host`] then yields only the
/// addresses of that family, and any other value must be of that type.
///
/// # Errors
///
/// [`ZoneError::UnknownHost`], [`ZoneError::NoAddressForHost`], [`ZoneError::KindMismatch`] or
/// [`ZoneError::InvalidName`] for a bad target name.
pub(crate) fn expand(
    owner: &Name,
    ttl: u32,
    value: &RecordValue,
    origin: &Name,
    hosts: &HostAddrs,
    only: Option<RecordKind>,
) -> Result<Vec<Record>, ZoneError> {
    let record = |data: RData| Record::from_rdata(owner.clone(), ttl, data);
    if let (Some(want), Some(have)) = (only, value.kind()) {
        if want != have {
            return Err(ZoneError::KindMismatch { name: owner.to_string(), kind: want.to_string(), value: value.describe() });
        }
    }
    let out = match value {
        RecordValue::A(ip) => vec![record(RData::A(A(*ip)))],
        RecordValue::Aaaa(ip) => vec![record(RData::AAAA(AAAA(*ip)))],
        RecordValue::Ns(target) => vec![record(RData::NS(NS(resolve_name(target, origin)?)))],
        RecordValue::Cname(target) => {
            vec![record(RData::CNAME(CNAME(resolve_name(target, origin)?)))]
        }
        RecordValue::Ptr(target) => vec![record(RData::PTR(PTR(resolve_name(target, origin)?)))],
        RecordValue::Txt(strings) => vec![record(RData::TXT(TXT::new(strings.clone())))],
        RecordValue::Srv { priority, weight, port, target } => vec![record(RData::SRV(SRV::new(*priority, *weight, *port, resolve_name(target, origin)?)))],
        RecordValue::Mx { preference, exchange } => vec![record(RData::MX(MX::new(*preference, resolve_name(exchange, origin)?)))],
        // The one SOA of a zone is made from its `Soa` parameters (and changed with set_ttl or
        // bump_serial); a second one from a record would break that.
        RecordValue::Soa(_) => return Err(ZoneError::SoaRequired { op: format!("add a SOA record at {owner}"), origin: origin.to_string() }),
        RecordValue::Host(host) => {
            let addrs = hosts.get(host).ok_or_else(|| ZoneError::UnknownHost { host: host.clone(), name: owner.to_string() })?;
            let out: Vec<Record> = addrs
                .iter()
                .filter_map(|ip| match (ip, only) {
                    (IpAddr::V4(v4), None | Some(RecordKind::A)) => Some(record(RData::A(A(*v4)))),
                    (IpAddr::V6(v6), None | Some(RecordKind::Aaaa)) => Some(record(RData::AAAA(AAAA(*v6)))),
                    _ => None,
                })
                .collect();
            match only {
                Some(kind @ (RecordKind::A | RecordKind::Aaaa)) if out.is_empty() => {
                    return Err(ZoneError::NoAddressForHost { host: host.clone(), name: owner.to_string(), kind: kind.to_string() })
                }
                Some(kind) if kind != RecordKind::A && kind != RecordKind::Aaaa => {
                    return Err(ZoneError::KindMismatch { name: owner.to_string(), kind: kind.to_string(), value: value.describe() })
                }
                _ => {}
            }
            out
        }
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        parse_origin("example.test").expect("valid origin")
    }

    #[test]
    fn relative_absolute_and_apex_names_resolve_against_the_origin() {
        let o = origin();
        assert_eq!(resolve_name("@", &o).unwrap().to_string(), "example.test.");
        assert_eq!(resolve_name("", &o).unwrap().to_string(), "example.test.");
        assert_eq!(resolve_name("www", &o).unwrap().to_string(), "www.example.test.");
        assert_eq!(resolve_name("a.b", &o).unwrap().to_string(), "a.b.example.test.");
        assert_eq!(resolve_name("other.org.", &o).unwrap().to_string(), "other.org.");
    }

    #[test]
    fn host_value_expands_to_a_and_aaaa_per_address() {
        let o = origin();
        let hosts: HostAddrs = [("web".to_owned(), vec!["192.0.2.2".parse().unwrap(), "2001:db8::2".parse().unwrap()])].into();
        let owner = resolve_name("app", &o).unwrap();
        let all = expand(&owner, 30, &RecordValue::Host("web".into()), &o, &hosts, None).unwrap();
        let text: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(text, vec!["app.example.test. 30 IN A 192.0.2.2", "app.example.test. 30 IN AAAA 2001:db8::2"]);
        let v6 = expand(&owner, 30, &RecordValue::Host("web".into()), &o, &hosts, Some(RecordKind::Aaaa)).unwrap();
        assert_eq!(v6.len(), 1);
        assert_eq!(v6[0].record_type(), RecordType::AAAA);
    }

    #[test]
    fn unknown_host_is_an_error_naming_host_and_owner() {
        let o = origin();
        let owner = resolve_name("app", &o).unwrap();
        let err = expand(&owner, 30, &RecordValue::Host("db".into()), &o, &HostAddrs::new(), None).unwrap_err();
        assert_eq!(err.to_string(), "expand host \"db\" for app.example.test. (not in the host-address map)");
    }

    #[test]
    fn mx_expands_with_its_exchange_resolved_and_a_soa_value_is_refused() {
        let o = origin();
        let owner = resolve_name("@", &o).unwrap();
        let mx = expand(&owner, 300, &RecordValue::Mx { preference: 10, exchange: "mail".into() }, &o, &HostAddrs::new(), Some(RecordKind::Mx)).unwrap();
        assert_eq!(mx[0].to_string(), "example.test. 300 IN MX 10 mail.example.test.");
        let soa = RecordValue::Soa(Soa::new("ns", "hostmaster"));
        let err = expand(&owner, 60, &soa, &o, &HostAddrs::new(), None).unwrap_err();
        assert!(matches!(err, ZoneError::SoaRequired { .. }), "{err}");
    }

    #[test]
    fn kinds_parse_from_their_mnemonic_in_any_case() {
        for kind in RecordKind::ALL {
            assert_eq!(kind.to_string().to_lowercase().parse::<RecordKind>(), Ok(kind));
            assert_eq!(RecordKind::from_record_type(kind.record_type()), Some(kind));
        }
        assert_eq!(RecordKind::from_record_type(RecordType::CAA), None);
        assert_eq!(
            "CAA".parse::<RecordKind>().unwrap_err().to_string(),
            "\"CAA\" is not a record type; expected one of SOA, NS, A, AAAA, CNAME, TXT, SRV, PTR, MX"
        );
    }

    #[test]
    fn negative_ttl_is_min_of_soa_ttl_and_minimum() {
        let mut soa = Soa::new("ns", "hostmaster");
        soa.ttl = 3600;
        soa.minimum = 30;
        assert_eq!(soa.negative_ttl(), 30);
        soa.ttl = 20;
        assert_eq!(soa.negative_ttl(), 20);
    }
}
