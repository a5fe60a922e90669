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

/// Seconds since midnight of an strace `-tt` timestamp (`23:46:14.832416`).
fn clock(ts: &str) -> Option<f64> {
    let mut it = ts.split(':');
    let (h, m, s) = (it.next()?.parse::<f64>().ok()?, it.next()?.parse::<f64>().ok()?, it.next()?.parse::<f64>().ok()?);
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Splits `PID [HH:MM:SS.us] call(...) = result` into (time, call).
fn split_line(line: &str) -> (Option<f64>, &str) {
    let mut rest = line.trim();
    if let Some((p, r)) = rest.split_once(' ') {
        if p.chars().all(|c| c.is_ascii_digit()) {
            rest = r.trim_start();
        }
    }
    if let Some((t, r)) = rest.split_once(' ') {
        if let Some(secs) = clock(t) {
            return (Some(secs), r.trim_start());
        }
    }
    (None, rest)
}

/// Reads an strace log (`-f -tt -e trace=socket,bind,connect,listen`) and names each failure.
/// `host_addrs` are the addresses the host has now (an address it has now that a bind could not
/// use was not yet usable then: tentative during DAD).
pub fn diagnose(log: &str, host_addrs: &[IpAddr]) -> Vec<Finding> {
    let mut out = Vec::new();
    // Wildcard binds that succeeded: (family is v6, port).
    let mut bound: Vec<(bool, u16)> = Vec::new();
    // IPv6 connects still in progress: (port, time, call).
    let mut pending_v6: Vec<(u16, Option<f64>, String)> = Vec::new();
    for line in log.lines() {
        let (at, call) = split_line(line);
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
        if is("connect") {
            match (ip, errno) {
                (IpAddr::V6(_), Some("EINPROGRESS")) => {
                    pending_v6.push((port, at, call.to_string()));
                    continue;
                }
                (IpAddr::V6(_), Some("ETIMEDOUT")) => {
                    out.push(finding(Cause::BrokenPath));
                    continue;
                }
                // An IPv4 attempt to the same port after an IPv6 one: that one never completed.
                (v4, _) if v4.is_ipv4() => {
                    if let Some(i) = pending_v6.iter().position(|(p, _, _)| *p == port) {
                        let (_, t6, c6) = pending_v6.remove(i);
                        let gap = match (t6, at) {
                            (Some(a), Some(b)) => format!(" (IPv4 tried {:.3} s later)", b - a),
                            _ => String::new(),
                        };
                        out.push(Finding { cause: Cause::BrokenPath, call: format!("{c6}{gap}") });
                    }
                }
                _ => {}
            }
        }
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

    #[test]
    fn abandoned_ipv6_connect_is_a_broken_path() {
        let log = r#"7 10:00:00.100000 --- SIGCHLD {si_signo=SIGCHLD} ---
7 10:00:00.200000 connect(3, {sa_family=AF_INET6, sin6_port=htons(8080), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:db8:1::5", &sin6_addr), sin6_scope_id=0}, 28) = -1 EINPROGRESS (Operation now in progress)
7 10:00:05.250000 connect(4, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.0.2.5")}, 16) = -1 EINPROGRESS (Operation now in progress)"#;
        let f = diagnose(log, &[]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].cause, Cause::BrokenPath);
        assert!(f[0].call.ends_with("(IPv4 tried 5.050 s later)"), "{}", f[0].call);
    }
}
