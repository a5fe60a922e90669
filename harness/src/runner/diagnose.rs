//! Naming the cause of a failed bind, connect or socket call from a program's system calls
//! (recorded by strace), with the failing call as evidence.

use std::net::IpAddr;

use crate::scenario::Cause;

/// One failing call and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The cause.
    pub cause: Cause,
    /// The call as strace printed it.
    pub call: String,
}

/// The address in a strace socket-address argument: `inet_pton(AF_INET6, "fe80::10", ...)` or
/// `inet_addr("192.0.2.5")`, with its scope id and port.
fn sockaddr(call: &str) -> Option<(IpAddr, u32, u16)> {
    const V6: &str = "inet_pton(AF_INET6, \"";
    const V4: &str = "inet_addr(\"";
    let addr = if let Some(i) = call.find(V6) {
        let rest = &call[i + V6.len()..];
        rest[..rest.find('"')?].parse().ok()?
    } else if let Some(i) = call.find(V4) {
        let rest = &call[i + V4.len()..];
        rest[..rest.find('"')?].parse().ok()?
    } else {
        return None;
    };
    let scope = call.split("sin6_scope_id=").nth(1).and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    let port = call
        .split("port=htons(")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Some((addr, scope, port))
}

fn errno_of(line: &str) -> Option<&str> {
    line.split(" = -1 ").nth(1)?.split_whitespace().next()
}

/// Reads an strace log (`-f -e trace=socket,bind,connect,listen`) and names each failure.
/// `host_addrs` are the addresses the host has now (an address it has now that a bind could not
/// use was not yet usable then: tentative during DAD).
pub fn diagnose(log: &str, host_addrs: &[IpAddr]) -> Vec<Finding> {
    let mut out = Vec::new();
    // Wildcard binds that succeeded: (family is v6, port).
    let mut bound: Vec<(bool, u16)> = Vec::new();
    for line in log.lines() {
        // `PID call(...) = result`: drop the pid.
        let call = line.split_once(' ').filter(|(p, _)| p.chars().all(|c| c.is_ascii_digit())).map(|(_, c)| c).unwrap_or(line).trim();
        let is = |name: &str| call.starts_with(&format!("{name}("));
        let errno = errno_of(call);
        let finding = |cause| Finding { cause, call: call.to_string() };
        if is("socket") {
            if call.starts_with("socket(AF_INET6") && errno == Some("EAFNOSUPPORT") {
                out.push(finding(Cause::Ipv6Absent));
            }
            continue;
        }
        if !(is("bind") || is("connect")) {
            continue;
        }
        let Some((ip, scope, port)) = sockaddr(call) else { continue };
        if errno.is_none() {
            if is("bind") && ip.is_unspecified() {
                bound.push((ip.is_ipv6(), port));
            }
            continue;
        }
        let ll = matches!(ip, IpAddr::V6(a) if a.is_unicast_link_local());
        let cause = match errno {
            Some("EINVAL") if ll && scope == 0 => Some(Cause::LinkLocalWithoutScope),
            Some("EADDRNOTAVAIL") if is("bind") && host_addrs.contains(&ip) => Some(Cause::AddressTentative),
            Some("EADDRNOTAVAIL") if is("bind") => Some(Cause::AddressNotOnHost),
            Some("EADDRINUSE") if ip.is_unspecified() && bound.contains(&(!ip.is_ipv6(), port)) => Some(Cause::DualBindConflict),
            Some("EADDRINUSE") => Some(Cause::AddressInUse),
            Some("ECONNREFUSED") => Some(Cause::ConnectionRefused),
            Some("ENETUNREACH") => Some(Cause::NetworkUnreachable),
            _ => None,
        };
        if let Some(c) = cause {
            out.push(finding(c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LL: &str = r#"123 bind(3, {sa_family=AF_INET6, sin6_port=htons(8000), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "fe80::10", &sin6_addr), sin6_scope_id=0}, 28) = -1 EINVAL (Invalid argument)"#;

    #[test]
    fn link_local_without_scope() {
        let f = diagnose(LL, &[]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].cause, Cause::LinkLocalWithoutScope);
        assert!(f[0].call.starts_with("bind(3, {sa_family=AF_INET6"));
    }

    #[test]
    fn dual_bind_and_tentative_and_absent() {
        let log = r#"10 bind(5, {sa_family=AF_INET, sin_port=htons(8000), sin_addr=inet_addr("0.0.0.0")}, 16) = 0
10 bind(6, {sa_family=AF_INET6, sin6_port=htons(8000), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::", &sin6_addr), sin6_scope_id=0}, 28) = -1 EADDRINUSE (Address already in use)
11 bind(3, {sa_family=AF_INET6, sin6_port=htons(9000), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:db8:1::23", &sin6_addr), sin6_scope_id=0}, 28) = -1 EADDRNOTAVAIL (Cannot assign requested address)
11 bind(3, {sa_family=AF_INET6, sin6_port=htons(9000), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:db8:1::99", &sin6_addr), sin6_scope_id=0}, 28) = -1 EADDRNOTAVAIL (Cannot assign requested address)
12 socket(AF_INET6, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = -1 EAFNOSUPPORT (Address family not supported by protocol)"#;
        let causes: Vec<Cause> = diagnose(log, &["2001:db8:1::23".parse().unwrap()]).into_iter().map(|f| f.cause).collect();
        assert_eq!(causes, vec![Cause::DualBindConflict, Cause::AddressTentative, Cause::AddressNotOnHost, Cause::Ipv6Absent]);
    }
}
