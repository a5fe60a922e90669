//! The daemon's control protocol: one JSON request per line on its Unix socket, answered by
//! JSON lines (one reply, or a stream of log lines for `dns log --follow`).
//!
//! Typed: record types, record values and faults travel as the DNS server's own types
//! ([`RecordKind`], [`RecordValue`], [`Fault`]), through serde's remote derive, so a change
//! to those types fails to compile here instead of drifting from the wire. What people type
//! is parsed into them by the `records` module; names stay as typed (relative to the lab's
//! zone, or whole), since only the daemon knows the zones to place them in.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use nslab::dns::{Fault, RecordKind, RecordValue};
use serde::{Deserialize, Serialize};

/// A request to a lab's daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// What runs: services with their state.
    Status,
    /// Tear the lab down and exit.
    Down,
    /// Change or read the DNS server.
    Dns(DnsRequest),
    /// Stream the packets of lab links as pcapng: after one reply line, the connection carries
    /// the pcapng stream until the lab goes down or the client hangs up.
    Capture {
        /// Hosts (all their links) or `host@segment` links; all links when empty.
        hosts: Vec<String>,
    },
}

/// A change to, or a reading of, the lab's DNS server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "kebab-case")]
pub enum DnsRequest {
    /// Replace the records of a name and type (a lab host: its A and AAAA records).
    Set {
        /// The owner name, as typed.
        name: String,
        /// The record's data.
        #[serde(with = "RecordValueDef")]
        value: RecordValue,
        /// TTL in seconds (the scenario format's default when absent).
        ttl: Option<u32>,
    },
    /// Point a CNAME at another target, atomically (keeps its TTL).
    Swap {
        /// The CNAME's name.
        name: String,
        /// The new target, as typed.
        target: String,
    },
    /// Delete a name's records (of one type, or all).
    Delete {
        /// The name.
        name: String,
        /// Only this type.
        #[serde(with = "optional_kind")]
        rtype: Option<RecordKind>,
    },
    /// Change the TTL of a name's records of one type.
    Ttl {
        /// The name.
        name: String,
        /// The type.
        #[serde(with = "RecordKindDef")]
        rtype: RecordKind,
        /// Seconds.
        ttl: u32,
    },
    /// Make the server misbehave.
    Fault {
        /// The fault.
        #[serde(with = "FaultDef")]
        fault: Fault,
        /// Which queries.
        scope: Scope,
    },
    /// Switch every fault off.
    Clear,
    /// Every record of every zone.
    Show,
    /// The query log.
    Log {
        /// Only queries for this name.
        name: Option<String>,
        /// Skip this many entries (for clients that read the log in turns).
        since: usize,
        /// Keep sending queries as they come.
        follow: bool,
    },
}

/// Which queries a fault applies to, names as typed (the daemon places them in a zone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Every query.
    Every,
    /// Queries for exactly this name.
    Name(String),
    /// Queries for this name and every name below it (`*.SUFFIX` on the command line).
    Below(String),
}

/// A reply line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    /// Whether the request was carried out.
    pub ok: bool,
    /// What to print (an error when not ok).
    pub text: String,
    /// For streams: whether more lines follow.
    #[serde(default)]
    pub more: bool,
}

impl Reply {
    /// A success.
    pub fn ok(text: impl Into<String>) -> Reply {
        Reply { ok: true, text: text.into(), more: false }
    }

    /// A failure.
    pub fn err(text: impl Into<String>) -> Reply {
        Reply { ok: false, text: text.into(), more: false }
    }
}

/// [`RecordKind`] on the wire: its name (`"AAAA"`).
#[derive(Serialize, Deserialize)]
#[serde(remote = "RecordKind", rename_all = "UPPERCASE")]
enum RecordKindDef {
    Soa,
    Ns,
    A,
    Aaaa,
    Cname,
    Txt,
    Srv,
    Ptr,
    Mx,
}

/// [`RecordValue`] on the wire: `{"aaaa": "2001:db8::1"}`, `{"srv": {...}}`, `{"host": "web"}`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "RecordValue", rename_all = "kebab-case")]
enum RecordValueDef {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Ns(String),
    Cname(String),
    Ptr(String),
    Txt(Vec<String>),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Mx {
        preference: u16,
        exchange: String,
    },
    /// Never sent: a zone's SOA is its own, not a record a request sets.
    #[serde(skip)]
    #[allow(dead_code)]
    Soa(nslab::dns::Soa),
    Host(String),
}

/// [`Fault`] on the wire: `"servfail"`, `{"delay": {"secs": 2, "nanos": 0}}`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Fault", rename_all = "kebab-case")]
enum FaultDef {
    #[serde(rename = "servfail")]
    ServFail,
    #[serde(rename = "nxdomain")]
    NxDomain,
    Refused,
    Drop,
    Delay(Duration),
    Truncate,
    TcpOnly,
}

/// `Option<RecordKind>` through [`RecordKindDef`].
mod optional_kind {
    use nslab::dns::RecordKind;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Kind(#[serde(with = "super::RecordKindDef")] RecordKind);

    pub(super) fn serialize<S: Serializer>(kind: &Option<RecordKind>, s: S) -> Result<S::Ok, S::Error> {
        kind.map(Kind).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RecordKind>, D::Error> {
        Ok(Option::<Kind>::deserialize(d)?.map(|k| k.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request goes through JSON and comes back the same, typed values included.
    #[test]
    fn requests_round_trip() {
        let reqs = [
            Request::Status,
            Request::Down,
            Request::Dns(DnsRequest::Set { name: "app".into(), value: RecordValue::Aaaa("2001:db8::7".parse().unwrap()), ttl: Some(5) }),
            Request::Dns(DnsRequest::Set {
                name: "_http._tcp".into(),
                value: RecordValue::Srv { priority: 0, weight: 5, port: 8080, target: "web".into() },
                ttl: None,
            }),
            Request::Dns(DnsRequest::Set { name: "app".into(), value: RecordValue::Host("server".into()), ttl: None }),
            Request::Dns(DnsRequest::Set { name: "app".into(), value: RecordValue::Txt(vec!["a b".into()]), ttl: None }),
            Request::Dns(DnsRequest::Swap { name: "app".into(), target: "green".into() }),
            Request::Dns(DnsRequest::Delete { name: "app".into(), rtype: Some(RecordKind::Aaaa) }),
            Request::Dns(DnsRequest::Delete { name: "app".into(), rtype: None }),
            Request::Dns(DnsRequest::Ttl { name: "app".into(), rtype: RecordKind::Cname, ttl: 1 }),
            Request::Dns(DnsRequest::Fault { fault: Fault::Delay(Duration::from_millis(1500)), scope: Scope::Below("example.test".into()) }),
            Request::Dns(DnsRequest::Fault { fault: Fault::TcpOnly, scope: Scope::Every }),
            Request::Dns(DnsRequest::Clear),
            Request::Dns(DnsRequest::Show),
            Request::Dns(DnsRequest::Log { name: Some("app".into()), since: 3, follow: true }),
        ];
        for req in reqs {
            let line = serde_json::to_string(&req).unwrap();
            assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), req, "through {line}");
        }
    }

    /// What travels is readable: types and faults by their names.
    #[test]
    fn the_wire_names_types_and_faults() {
        let line = serde_json::to_string(&Request::Dns(DnsRequest::Ttl { name: "app".into(), rtype: RecordKind::Aaaa, ttl: 9 })).unwrap();
        assert_eq!(line, r#"{"op":"dns","what":"ttl","name":"app","rtype":"AAAA","ttl":9}"#);
        let line = serde_json::to_string(&Request::Dns(DnsRequest::Fault { fault: Fault::ServFail, scope: Scope::Name("app".into()) })).unwrap();
        assert_eq!(line, r#"{"op":"dns","what":"fault","fault":"servfail","scope":{"name":"app"}}"#);
        let line = serde_json::to_string(&Request::Dns(DnsRequest::Set { name: "app".into(), value: RecordValue::A("192.0.2.7".parse().unwrap()), ttl: None }))
            .unwrap();
        assert_eq!(line, r#"{"op":"dns","what":"set","name":"app","value":{"a":"192.0.2.7"},"ttl":null}"#);
    }

    /// A request naming a type the server does not have is refused when read, with its name.
    #[test]
    fn an_unknown_type_is_refused() {
        let e = serde_json::from_str::<Request>(r#"{"op":"dns","what":"ttl","name":"app","rtype":"HINFO","ttl":9}"#).unwrap_err();
        assert!(e.to_string().contains("unknown variant `HINFO`"), "{e}");
    }
}
