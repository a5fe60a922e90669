//! Record types, record values and DNS faults in their three forms: as people type them
//! (`nslab dns LAB set app AAAA 2001:db8::7`, the scenario file's syntax), as the DNS server's
//! types that travel in the control protocol, and as the scenario engine's timeline actions
//! take them. The one place the live labs convert between these models.

use std::time::Duration;

use nslab::dns::{Fault, RecordKind, RecordValue};
use nslab_scenario::scenario::{self, DnsFault};

use super::protocol::Scope;

/// A record type as typed (`aaaa`, `CNAME`).
///
/// # Errors
/// Not a record type (the message lists them).
pub fn parse_kind(text: &str) -> Result<RecordKind, String> {
    text.to_ascii_uppercase().parse::<RecordKind>().map_err(|e| e.to_string())
}

/// A record's data as typed: `rtype` a record type or `host` (a lab host's A and AAAA
/// records), `value` as in a scenario file (`192.0.2.7`, `"0 5 8080 web"`, a host's name).
///
/// # Errors
/// The type as for [`parse_kind`]; a value that is not of the type, or not a lab address
/// (the message names it and what was expected).
pub fn parse_value(rtype: &str, value: &str) -> Result<RecordValue, String> {
    if rtype.eq_ignore_ascii_case("host") {
        return Ok(RecordValue::Host(value.to_string()));
    }
    scenario::parse_record_value(parse_kind(rtype)?, value)
}

/// A fault by its name (`servfail`, `tcp-only`, `delay` with its length).
///
/// # Errors
/// Not a fault's name (the message lists them), or `delay` without a length.
pub fn parse_fault(name: &str, delay: Option<Duration>) -> Result<Fault, String> {
    let f = DnsFault::from_name(name, delay)?.ok_or("the delay fault needs --delay, for example --delay 2s")?;
    Ok(match f {
        DnsFault::ServFail => Fault::ServFail,
        DnsFault::NxDomain => Fault::NxDomain,
        DnsFault::Refused => Fault::Refused,
        DnsFault::Drop => Fault::Drop,
        DnsFault::Truncate => Fault::Truncate,
        DnsFault::TcpOnly => Fault::TcpOnly,
        DnsFault::Delay(d) => Fault::Delay(d),
    })
}

/// A fault's scope as typed: none (every query), `NAME`, or `*.SUFFIX` (it and every name below).
pub fn parse_scope(text: Option<&str>) -> Scope {
    match text {
        None => Scope::Every,
        Some(n) => match n.strip_prefix("*.") {
            Some(suffix) => Scope::Below(suffix.to_string()),
            None => Scope::Name(n.to_string()),
        },
    }
}

/// A fault as the scenario engine's actions take it.
pub(crate) fn dns_fault(f: Fault) -> DnsFault {
    match f {
        Fault::ServFail => DnsFault::ServFail,
        Fault::NxDomain => DnsFault::NxDomain,
        Fault::Refused => DnsFault::Refused,
        Fault::Drop => DnsFault::Drop,
        Fault::Truncate => DnsFault::Truncate,
        Fault::TcpOnly => DnsFault::TcpOnly,
        Fault::Delay(d) => DnsFault::Delay(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_become_the_servers_types() {
        assert_eq!(parse_value("aaaa", "2001:db8::7"), Ok(RecordValue::Aaaa("2001:db8::7".parse().unwrap())));
        assert_eq!(parse_value("host", "server"), Ok(RecordValue::Host("server".into())));
        assert_eq!(parse_value("SRV", "0 5 8080 web"), Ok(RecordValue::Srv { priority: 0, weight: 5, port: 8080, target: "web".into() }));
        assert_eq!(parse_kind("cname"), Ok(RecordKind::Cname));
        assert_eq!(parse_value("mx", "10 mail"), Ok(RecordValue::Mx { preference: 10, exchange: "mail".into() }));
        assert_eq!(parse_fault("tcp-only", None), Ok(Fault::TcpOnly));
        assert_eq!(parse_fault("delay", Some(Duration::from_secs(2))), Ok(Fault::Delay(Duration::from_secs(2))));
        assert_eq!(parse_scope(Some("*.example.test")), Scope::Below("example.test".into()));
        assert_eq!(parse_scope(Some("app")), Scope::Name("app".into()));
        assert_eq!(parse_scope(None), Scope::Every);
    }

    #[test]
    fn bad_words_are_refused_with_what_was_expected() {
        assert_eq!(parse_kind("bogus"), Err("\"BOGUS\" is not a record type; expected one of SOA, NS, A, AAAA, CNAME, TXT, SRV, PTR, MX".to_string()));
        assert_eq!(parse_fault("delay", None), Err("the delay fault needs --delay, for example --delay 2s".to_string()));
        assert_eq!(
            parse_fault("slow", None),
            Err("\"slow\" is not a DNS fault; expected one of servfail, nxdomain, refused, drop, truncate, tcp-only, delay".to_string())
        );
        assert_eq!(
            parse_value("A", "10.0.0.1"),
            Err(format!("\"10.0.0.1\" is outside the lab's address space; expected an address in {}", nslab_scenario::scenario::LAB_PREFIXES))
        );
        assert_eq!(
            parse_value("AAAA", "192.0.2.7"),
            Err("\"192.0.2.7\" is an IPv4 address; expected an IPv6 address such as 2001:db8:1::10 for type AAAA".to_string())
        );
    }

    /// Every type and fault the server has can be typed.
    #[test]
    fn conversions_keep_every_value() {
        for k in [
            RecordKind::Soa,
            RecordKind::Ns,
            RecordKind::A,
            RecordKind::Aaaa,
            RecordKind::Cname,
            RecordKind::Txt,
            RecordKind::Srv,
            RecordKind::Ptr,
            RecordKind::Mx,
        ] {
            assert_eq!(parse_kind(&k.to_string().to_lowercase()), Ok(k));
        }
        for f in [Fault::ServFail, Fault::NxDomain, Fault::Refused, Fault::Drop, Fault::Truncate, Fault::TcpOnly, Fault::Delay(Duration::from_millis(7))] {
            let name = f.to_string();
            let name = name.split(' ').next().unwrap_or_default();
            assert_eq!(parse_fault(name, Some(Duration::from_millis(7))), Ok(f));
        }
    }
}
