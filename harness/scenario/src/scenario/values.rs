//! Small values inside scenario strings: lab addresses, socket specs (`tcp:[::]:8000 v6only`),
//! connect targets, errno names and DNS names. Each parser returns what was wrong and what was
//! expected; the caller adds where.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use nslab::host::listeners::{Family, Listen, Protocol};

pub use nslab::addr::{is_lab_address, LAB_PREFIXES};

/// Parses an IP literal that must be a lab address.
pub fn parse_lab_ip(text: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = text.parse().map_err(|_| format!("{text:?} is not an IP address; expected an address such as 192.0.2.10 or 2001:db8:1::10"))?;
    if !is_lab_address(&ip) {
        return Err(format!("{text:?} is outside the lab's address space; expected an address in {LAB_PREFIXES}"));
    }
    Ok(ip)
}

/// Parses an address the harness may connect to or see listened on: a lab address, loopback
/// or the unspecified address.
fn parse_socket_ip(text: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = text.parse().map_err(|_| format!("{text:?} is not an IP address; expected an address such as 192.0.2.10, [::] or [2001:db8:1::10]"))?;
    if !(is_lab_address(&ip) || ip.is_loopback() || ip.is_unspecified()) {
        return Err(format!("{text:?} is outside the lab's address space; expected a loopback or unspecified address, or one in {LAB_PREFIXES}"));
    }
    Ok(ip)
}

/// An interface address with its prefix length, for `add-address` and `remove-address`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressDef {
    /// The address.
    pub ip: IpAddr,
    /// Prefix length (default 24 for IPv4, 64 for IPv6: the lab segment's).
    pub prefix: u8,
}

impl fmt::Display for AddressDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix)
    }
}

/// Parses `ADDR[/LEN]`, a lab address.
pub fn parse_address(text: &str) -> Result<AddressDef, String> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let ip = parse_lab_ip(addr)?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match len {
        None => {
            if ip.is_ipv4() {
                24
            } else {
                64
            }
        }
        Some(l) => match l.parse::<u8>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => return Err(format!("{text:?} has prefix length {l:?}; expected 1 to {max}, as in 2001:db8:1::99/64")),
        },
    };
    Ok(AddressDef { ip, prefix })
}

/// Parses the `dns64` prefix: `"64:ff9b::/96"` or another /96 whose last 32 bits are zero.
pub(super) fn parse_dns64_prefix(text: &str) -> Result<Ipv6Addr, String> {
    let expected = "expected a /96 IPv6 prefix such as \"64:ff9b::/96\"";
    let (a, l) = text.split_once('/').ok_or_else(|| format!("{text:?} has no prefix length; {expected}"))?;
    let ip: Ipv6Addr = a.parse().map_err(|_| format!("{a:?} is not an IPv6 address; {expected}"))?;
    if l != "96" || ip.to_bits() & 0xffff_ffff != 0 {
        return Err(format!("{text:?} is not a /96 prefix with its last 32 bits zero; {expected}"));
    }
    if !is_lab_address(&IpAddr::V6(ip)) {
        return Err(format!("{text:?} is outside the lab's address space; expected a prefix in {LAB_PREFIXES}"));
    }
    Ok(ip)
}

/// A socket as written in `ready`, `wait-for` and `listening`: `tcp:8000`, `tcp6:8000`,
/// `tcp:[::]:8000`, `udp:0.0.0.0:53`, `tcp:[fe80::1%eth0]:8000`, optionally followed by
/// ` v6only`, ` v6only=1` or ` v6only=0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// A family, when the spec names one (`tcp4`, `tcp6` or an address).
    pub family: Option<Family>,
    /// The exact local address, when given.
    pub addr: Option<IpAddr>,
    /// The interface of a scoped link-local address (`%eth0`).
    pub scope: Option<String>,
    /// The port.
    pub port: u16,
    /// IPV6_V6ONLY as it must be, when it matters.
    pub v6only: Option<bool>,
    text: String,
}

impl ListenSpec {
    /// Parses a socket spec.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = "expected PROTOCOL:[ADDRESS:]PORT such as \"tcp:8000\", \"tcp6:8000\", \"tcp:[::]:8000\" or \"udp:0.0.0.0:53\", optionally followed by \" v6only\" or \" v6only=0\"";
        let bad = |why: String| format!("{text:?} {why}; {expected}");
        let mut words = text.split_whitespace();
        let main = words.next().ok_or_else(|| bad("is empty".into()))?;
        let v6only = match words.next() {
            None => None,
            Some("v6only" | "v6only=1") => Some(true),
            Some("v6only=0") => Some(false),
            Some(w) => return Err(bad(format!("has {w:?} after the socket"))),
        };
        if let Some(w) = words.next() {
            return Err(bad(format!("has {w:?} after the socket")));
        }
        let (proto, rest) = main.split_once(':').ok_or_else(|| bad("has no protocol".into()))?;
        let (protocol, mut family) = match proto {
            "tcp" => (Protocol::Tcp, None),
            "tcp4" => (Protocol::Tcp, Some(Family::V4)),
            "tcp6" => (Protocol::Tcp, Some(Family::V6)),
            "udp" => (Protocol::Udp, None),
            "udp4" => (Protocol::Udp, Some(Family::V4)),
            "udp6" => (Protocol::Udp, Some(Family::V6)),
            other => return Err(bad(format!("has protocol {other:?}, not tcp, tcp4, tcp6, udp, udp4 or udp6"))),
        };
        let (host, port) = split_host_port(rest).map_err(bad)?;
        let (addr, scope) = match host {
            None => (None, None),
            Some(h) => {
                let (ip, scope) = parse_scoped(h).map_err(bad)?;
                let f = Family::of(&ip);
                if family.is_some_and(|want| want != f) {
                    return Err(bad(format!("gives {proto} with an address of the other family ({ip})")));
                }
                family = Some(f);
                (Some(ip), scope)
            }
        };
        if v6only.is_some() && family == Some(Family::V4) {
            return Err(bad("asks for v6only on an IPv4 socket".into()));
        }
        Ok(Self { protocol, family, addr, scope, port, v6only, text: text.to_string() })
    }

    /// What the library's listener waits look for (the v6only flag and scope are not part of it).
    pub fn to_listen(&self) -> Listen {
        let mut l = match self.protocol {
            Protocol::Tcp => Listen::tcp(self.port),
            Protocol::Udp => Listen::udp(self.port),
        };
        if let Some(f) = self.family {
            l = l.family(f);
        }
        if let Some(a) = self.addr {
            l = l.addr(a);
        }
        l
    }

    /// The spec as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Splits `[ADDR]:PORT`, `ADDR:PORT` or `PORT`.
fn split_host_port(s: &str) -> Result<(Option<&str>, u16), String> {
    let (host, port) = if let Some(r) = s.strip_prefix('[') {
        let (h, p) = r.split_once("]:").ok_or_else(|| "has an unclosed '[' or no port after ']'".to_string())?;
        (Some(h), p)
    } else if let Some((h, p)) = s.rsplit_once(':') {
        if h.contains(':') {
            return Err("has an IPv6 address without brackets".into());
        }
        (Some(h), p)
    } else {
        (None, s)
    };
    let port = parse_port(port)?;
    Ok((host, port))
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("has port {p:?}, not a number from 1 to 65535")),
    }
}

/// Parses `ADDR` or `fe80::1%eth0`.
fn parse_scoped(h: &str) -> Result<(IpAddr, Option<String>), String> {
    let (a, scope) = match h.split_once('%') {
        Some((a, s)) => (a, Some(s.to_string())),
        None => (h, None),
    };
    let ip = parse_socket_ip(a).map_err(|e| format!("has an address that is not usable: {e}"))?;
    if let Some(s) = &scope {
        let link_local = matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
        if !link_local || s.is_empty() {
            return Err(format!("has scope {s:?} on an address that is not link-local"));
        }
    }
    Ok((ip, scope))
}

/// What a `connect` expectation connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectTarget {
    /// A lab host by name; its address is picked by the expectation's `family`.
    Host {
        /// The host.
        host: String,
        /// The port.
        port: u16,
    },
    /// A literal address.
    Addr {
        /// The address.
        ip: IpAddr,
        /// The interface of a scoped link-local address.
        scope: Option<String>,
        /// The port.
        port: u16,
    },
}

impl ConnectTarget {
    /// Parses `host:port`, `[addr]:port` or `addr:port`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = "expected HOST:PORT with a declared host, [IPV6]:PORT or IPV4:PORT, such as \"web:8000\" or \"[2001:db8:1::10]:8000\"";
        let bad = |why: String| format!("{text:?} {why}; {expected}");
        let (host, port) = split_host_port(text).map_err(bad)?;
        let host = host.ok_or_else(|| bad("has no host".into()))?;
        if text.starts_with('[') || host.parse::<IpAddr>().is_ok() || host.contains('%') {
            let (ip, scope) = parse_scoped(host).map_err(bad)?;
            Ok(Self::Addr { ip, scope, port })
        } else {
            Ok(Self::Host { host: host.to_string(), port })
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            Self::Host { port, .. } | Self::Addr { port, .. } => *port,
        }
    }
}

/// An errno by name and number (`EADDRINUSE`, 98).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno {
    /// The symbolic name.
    pub name: &'static str,
    /// The number (Linux).
    pub number: i32,
}

const ERRNOS: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("EINTR", libc::EINTR),
    ("EBADF", libc::EBADF),
    ("EAGAIN", libc::EAGAIN),
    ("EACCES", libc::EACCES),
    ("EINVAL", libc::EINVAL),
    ("EMFILE", libc::EMFILE),
    ("EPIPE", libc::EPIPE),
    ("ENOTSOCK", libc::ENOTSOCK),
    ("EPROTOTYPE", libc::EPROTOTYPE),
    ("ENOPROTOOPT", libc::ENOPROTOOPT),
    ("EPROTONOSUPPORT", libc::EPROTONOSUPPORT),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("EAFNOSUPPORT", libc::EAFNOSUPPORT),
    ("EADDRINUSE", libc::EADDRINUSE),
    ("EADDRNOTAVAIL", libc::EADDRNOTAVAIL),
    ("ENETDOWN", libc::ENETDOWN),
    ("ENETUNREACH", libc::ENETUNREACH),
    ("ECONNABORTED", libc::ECONNABORTED),
    ("ECONNRESET", libc::ECONNRESET),
    ("ENOBUFS", libc::ENOBUFS),
    ("EISCONN", libc::EISCONN),
    ("ENOTCONN", libc::ENOTCONN),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    ("ECONNREFUSED", libc::ECONNREFUSED),
    ("EHOSTDOWN", libc::EHOSTDOWN),
    ("EHOSTUNREACH", libc::EHOSTUNREACH),
    ("EALREADY", libc::EALREADY),
    ("EINPROGRESS", libc::EINPROGRESS),
];

impl Errno {
    /// The errno with this name.
    pub fn from_name(name: &str) -> Result<Self, String> {
        ERRNOS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(name, number)| Errno { name, number })
            .ok_or_else(|| format!("{name:?} is not a known errno name; expected one of {}", ERRNOS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")))
    }

    /// The errno with this number.
    pub fn from_number(number: i64) -> Result<Self, String> {
        ERRNOS.iter().find(|(_, n)| i64::from(*n) == number).map(|&(name, number)| Errno { name, number }).ok_or_else(|| {
            format!(
                "{number} is not a known errno number; expected a name such as \"EADDRINUSE\" or the number of one of {}",
                ERRNOS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.number)
    }
}

/// Checks a DNS name as written in zone data: `@`, a relative name (`app`, `_http._tcp`) or an
/// absolute one ending in `.`; `*` is allowed as the first label.
pub(super) fn check_dns_name(name: &str) -> Result<(), String> {
    let expected = "expected \"@\", a name relative to the zone such as \"app\", or an absolute name ending in '.'";
    if name == "@" {
        return Ok(());
    }
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.is_empty() || name.len() > 253 {
        return Err(format!("{name:?} is not a DNS name; {expected}"));
    }
    for (i, label) in body.split('.').enumerate() {
        let ok = !label.is_empty()
            && label.len() <= 63
            && (label == "*" && i == 0 || label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!("{name:?} has an invalid label {label:?} (letters, digits, '-', '_', at most 63 characters); {expected}"));
        }
    }
    Ok(())
}

/// An IPv6 prefix of the lab written `2001:db8:1:1::/64` (or a narrower one such as a DHCPv6
/// pool's `2001:db8:1::d000/120`), inside the documentation prefix 2001:db8::/32, /32 to /128.
pub(crate) fn parse_lab_prefix(s: &str) -> std::result::Result<(std::net::Ipv6Addr, u8), String> {
    let bad =
        || format!("{s:?} is not an IPv6 prefix of the lab; expected a prefix such as \"2001:db8:1::/64\", \"2001:db8:1:1::/64\" or \"2001:db8:1::d000/120\"");
    let (a, len) = s.split_once('/').ok_or_else(bad)?;
    let a: std::net::Ipv6Addr = a.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    let host_bits = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
    if !(32..=128).contains(&len) || a.to_bits() & host_bits != 0 || a.segments()[..2] != [0x2001, 0x0db8] {
        return Err(bad());
    }
    Ok((a, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_addresses_are_documentation_prefixes() {
        for ok in ["192.0.2.1", "198.51.100.7", "203.0.113.255", "2001:db8:1::99", "fe80::1", "64:ff9b::c000:201"] {
            assert!(parse_lab_ip(ok).is_ok(), "{ok}");
        }
        assert_eq!(parse_lab_ip("10.0.0.1").unwrap_err(), format!("\"10.0.0.1\" is outside the lab's address space; expected an address in {LAB_PREFIXES}"));
        assert!(parse_lab_ip("8.8.8.8").is_err());
        assert!(parse_lab_ip("2001:4860::1").is_err());
        assert!(parse_lab_ip("blue").unwrap_err().contains("is not an IP address"));
    }

    #[test]
    fn addresses_with_prefix() {
        assert_eq!(parse_address("2001:db8:1::99/64").unwrap().to_string(), "2001:db8:1::99/64");
        assert_eq!(parse_address("192.0.2.99").unwrap().prefix, 24);
        assert_eq!(parse_address("2001:db8:1::99").unwrap().prefix, 64);
        assert!(parse_address("192.0.2.99/33").unwrap_err().contains("expected 1 to 32"));
    }

    #[test]
    fn dns64_prefixes() {
        assert_eq!(parse_dns64_prefix("64:ff9b::/96").unwrap(), "64:ff9b::".parse::<Ipv6Addr>().unwrap());
        assert!(parse_dns64_prefix("64:ff9b::/64").is_err());
        assert!(parse_dns64_prefix("64:ff9b::1/96").is_err());
        assert!(parse_dns64_prefix("64:ff9b::").unwrap_err().contains("no prefix length"));
    }

    #[test]
    fn listen_specs() {
        let s = ListenSpec::parse("tcp:8000").unwrap();
        assert_eq!((s.protocol, s.family, s.addr, s.port, s.v6only), (Protocol::Tcp, None, None, 8000, None));
        let s = ListenSpec::parse("tcp:[::]:8000 v6only").unwrap();
        assert_eq!((s.family, s.addr, s.v6only), (Some(Family::V6), Some("::".parse().unwrap()), Some(true)));
        assert_eq!(s.to_listen(), Listen::tcp(8000).addr("::".parse().unwrap()));
        let s = ListenSpec::parse("udp:0.0.0.0:53").unwrap();
        assert_eq!((s.protocol, s.family), (Protocol::Udp, Some(Family::V4)));
        assert_eq!(ListenSpec::parse("tcp6:8000").unwrap().family, Some(Family::V6));
        assert_eq!(ListenSpec::parse("tcp4:8000").unwrap().to_listen(), Listen::tcp(8000).family(Family::V4));
        let s = ListenSpec::parse("tcp:[fe80::1%eth0]:8000").unwrap();
        assert_eq!(s.scope.as_deref(), Some("eth0"));
        assert_eq!(ListenSpec::parse("tcp:[::]:8000 v6only=0").unwrap().v6only, Some(false));
        assert!(ListenSpec::parse("tcp:127.0.0.1:6379").is_ok());
    }

    #[test]
    fn bad_listen_specs_say_why() {
        let e = ListenSpec::parse("http:8000").unwrap_err();
        assert!(e.starts_with("\"http:8000\" has protocol \"http\", not tcp, tcp4, tcp6, udp, udp4 or udp6; expected PROTOCOL:"), "{e}");
        assert!(ListenSpec::parse("tcp:0").unwrap_err().contains("has port \"0\""));
        assert!(ListenSpec::parse("tcp:70000").is_err());
        assert!(ListenSpec::parse("tcp:::1:80").unwrap_err().contains("without brackets"));
        assert!(ListenSpec::parse("tcp4:[::]:80").unwrap_err().contains("other family"));
        assert!(ListenSpec::parse("tcp:0.0.0.0:80 v6only").unwrap_err().contains("v6only on an IPv4"));
        assert!(ListenSpec::parse("tcp:[2001:db8::1%eth0]:80").unwrap_err().contains("not link-local"));
        assert!(ListenSpec::parse("tcp:10.1.1.1:80").unwrap_err().contains("outside the lab's address space"));
        assert!(ListenSpec::parse("tcp:8000 fast").unwrap_err().contains("has \"fast\" after the socket"));
    }

    #[test]
    fn connect_targets() {
        assert_eq!(ConnectTarget::parse("web:8000").unwrap(), ConnectTarget::Host { host: "web".into(), port: 8000 });
        assert_eq!(ConnectTarget::parse("[2001:db8:1::5]:80").unwrap(), ConnectTarget::Addr { ip: "2001:db8:1::5".parse().unwrap(), scope: None, port: 80 });
        assert_eq!(
            ConnectTarget::parse("[fe80::5%eth0]:80").unwrap(),
            ConnectTarget::Addr { ip: "fe80::5".parse().unwrap(), scope: Some("eth0".into()), port: 80 }
        );
        assert_eq!(ConnectTarget::parse("192.0.2.5:80").unwrap().port(), 80);
        assert!(ConnectTarget::parse("web").unwrap_err().contains("not a number from 1 to 65535"));
        assert!(ConnectTarget::parse("1.1.1.1:53").unwrap_err().contains("outside the lab's address space"));
    }

    #[test]
    fn errnos() {
        assert_eq!(Errno::from_name("EADDRINUSE").unwrap(), Errno { name: "EADDRINUSE", number: 98 });
        assert_eq!(Errno::from_number(99).unwrap().name, "EADDRNOTAVAIL");
        assert_eq!(Errno::from_name("ECONNREFUSED").unwrap().to_string(), "ECONNREFUSED (111)");
        assert!(Errno::from_name("EADDRUSED").unwrap_err().starts_with("\"EADDRUSED\" is not a known errno name; expected one of EPERM"));
        assert!(Errno::from_number(4000).is_err());
    }

    #[test]
    fn dns_names() {
        for ok in ["@", "app", "app.example.test.", "_http._tcp", "*.apps", "blue-1"] {
            assert!(check_dns_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "a..b", "-a", "a b", "app.*", &"x".repeat(64)] {
            assert!(check_dns_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lab_prefixes_are_documentation_space_without_host_bits() {
        assert_eq!(parse_lab_prefix("2001:db8:1:1::/64").unwrap(), ("2001:db8:1:1::".parse().unwrap(), 64));
        assert_eq!(parse_lab_prefix("2001:db8:1::d000/120").unwrap(), ("2001:db8:1::d000".parse().unwrap(), 120));
        for bad in ["2001:db8:1::1/64", "2001:db9::/64", "2001:db8::/16", "2001:db8:1::", "2001:db8:1::/x"] {
            assert!(parse_lab_prefix(bad).is_err(), "{bad} was accepted");
        }
    }
}
