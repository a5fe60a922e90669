//! Naming the cause of a failed bind, connect or socket call: from a program's system calls
//! (recorded by strace), with the failing call as evidence, or, without strace, from the errno
//! its output shows and the lab's facts about the address it names.

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
    let port = call.split("port=htons(").nth(1).and_then(|r| r.split(')').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    Some((addr, scope, port))
}

fn errno_of(line: &str) -> Option<&str> {
    line.split(" = -1 ").nth(1)?.split_whitespace().next()
}

/// The errno name of a failing call as strace printed it (`EINVAL`).
pub fn errno_in_call(call: &str) -> Option<&str> {
    errno_of(call).or_else(|| call.contains("= ? ERESTARTSYS").then_some("ERESTARTSYS"))
}

/// What the lab knows about a host when it reads a failure from a program's output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Its addresses (link-local included).
    pub addrs: Vec<IpAddr>,
    /// Whether it has any IPv6 address at all (none in ipv4-only and no-ipv6).
    pub has_ipv6: bool,
    /// Addresses the program was told to use (in its command line), for output lines that name
    /// none (a Python traceback's `OSError: [Errno 99] ...`).
    pub hints: Vec<(IpAddr, bool)>,
    /// Addresses the kernel reported tentative (DAD running) when the program failed.
    pub tentative: Vec<IpAddr>,
    /// Addresses the kernel reported present and usable (not tentative) when the program
    /// failed: a failed bind to one of them was not a tentative address.
    pub usable: Vec<IpAddr>,
}

impl HostFacts {
    /// Adds what the kernel said about addresses when the program failed: `(address, tentative)`
    /// for each address it had then (an address added by the timeline included).
    pub fn with_kernel(mut self, seen: &[(IpAddr, bool)]) -> Self {
        for (ip, tentative) in seen {
            if !self.addrs.contains(ip) {
                self.addrs.push(*ip);
            }
            if *tentative && !self.tentative.contains(ip) {
                self.tentative.push(*ip);
            }
            if !*tentative && !self.usable.contains(ip) {
                self.usable.push(*ip);
            }
        }
        self.has_ipv6 |= seen.iter().any(|(ip, _)| ip.is_ipv6());
        self
    }
}

impl HostFacts {
    /// The facts of a lab host.
    pub fn of(h: &nslab::host::handle::Host) -> Self {
        let addrs: Vec<IpAddr> = h.addrs().into_iter().chain(h.link_local().map(IpAddr::V6)).collect();
        HostFacts { has_ipv6: addrs.iter().any(IpAddr::is_ipv6), addrs, ..Default::default() }
    }

    /// The same, with the addresses named in the program's command line as hints.
    pub fn with_argv(mut self, argv: &[String]) -> Self {
        self.hints = argv.iter().flat_map(|a| addresses_in_line(a)).collect();
        self
    }
}

/// A failure read from a program's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFinding {
    /// The errno name.
    pub errno: &'static str,
    /// The cause, when the errno and the lab's facts tell it.
    pub cause: Option<Cause>,
    /// The output line, and the lab fact that decided the cause.
    pub evidence: String,
    /// The address the line (or the command line) names, when one does.
    pub address: Option<IpAddr>,
}

/// Errno forms programs print: Python `[Errno 99]`, nginx `(99: ...)`, and strerror texts
/// (Redis, PostgreSQL, gunicorn's "Connection in use").
fn errno_in_line(line: &str) -> Option<crate::scenario::Errno> {
    use crate::scenario::Errno;
    let number_after = |pat: &str| -> Option<i64> {
        let i = line.find(pat)? + pat.len();
        let digits: String = line[i..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    if let Some(n) = number_after("[Errno ").or_else(|| {
        // nginx: "failed (99: Cannot assign requested address)".
        let i = line.find(" failed (")?;
        let rest = &line[i + " failed (".len()..];
        rest.split_once(':').and_then(|(n, _)| n.parse().ok())
    }) {
        return Errno::from_number(n).ok();
    }
    const TEXTS: &[(&str, &str)] = &[
        ("Cannot assign requested address", "EADDRNOTAVAIL"),
        ("Address already in use", "EADDRINUSE"),
        ("Connection in use", "EADDRINUSE"),
        ("Address family not supported", "EAFNOSUPPORT"),
        ("Invalid argument", "EINVAL"),
        ("Connection refused", "ECONNREFUSED"),
        ("Connection timed out", "ETIMEDOUT"),
        ("Network is unreachable", "ENETUNREACH"),
    ];
    TEXTS.iter().find(|(t, _)| line.contains(t)).and_then(|(_, name)| Errno::from_name(name).ok())
}

/// The addresses a log line names (`('fe80::10', 8000)`, `[::1]:80`, `::1:6379`, `"::1"`), with
/// whether each had a scope (`%eth0`).
fn addresses_in_line(line: &str) -> Vec<(IpAddr, bool)> {
    let mut out = Vec::new();
    for tok in line.split(|c: char| c.is_whitespace() || "[]()'\",;".contains(c)) {
        let (addr, scoped) = match tok.split_once('%') {
            Some((a, _)) => (a, true),
            None => (tok, false),
        };
        // `socket ::1:6379:` ends in a colon; `::` is all colons.
        let addr = if addr.parse::<IpAddr>().is_ok() { addr } else { addr.strip_suffix(':').unwrap_or(addr) };
        let direct = addr.parse::<IpAddr>().ok();
        // Redis prints `::1:6379`: an address and a port joined by a colon, which also reads as
        // one IPv6 address; a loopback or wildcard reading of the shorter form wins.
        let split =
            addr.rsplit_once(':').filter(|(_, port)| !port.is_empty() && port.chars().all(|c| c.is_ascii_digit())).and_then(|(a, _)| a.parse::<IpAddr>().ok());
        let pick = match (direct, split) {
            (_, Some(s)) if s.is_loopback() || s.is_unspecified() => Some(s),
            (Some(d), _) => Some(d),
            (None, s) => s,
        };
        if let Some(ip) = pick {
            out.push((ip, scoped));
        }
    }
    out
}

/// Reads a program's output for the first line that shows a failed bind or connect (an errno in
/// one of the forms programs print) and names the cause from the address it names and the
/// host's facts. An address the host has that a bind could not use was still tentative.
pub fn from_output(output: &str, facts: &HostFacts) -> Option<OutputFinding> {
    let lines: Vec<&str> = output.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(errno) = errno_in_line(line) else { continue };
        // A traceback names the address a few lines above its errno.
        let first = addresses_in_line(line)
            .first()
            .copied()
            .or_else(|| lines[i.saturating_sub(5)..i].iter().rev().find_map(|l| addresses_in_line(l).first().copied()))
            .or_else(|| facts.hints.first().copied());
        let (cause, fact) = match (errno.name, first) {
            ("EAFNOSUPPORT", _) => (Some(Cause::Ipv6Absent), "IPv6 is absent for the program".to_string()),
            ("EINVAL", Some((IpAddr::V6(a), false))) if a.is_unicast_link_local() => {
                (Some(Cause::LinkLocalWithoutScope), format!("{a} is link-local and has no scope id"))
            }
            ("EADDRNOTAVAIL", Some((ip, _))) if facts.tentative.contains(&ip) => {
                (Some(Cause::AddressTentative), format!("the kernel reported {ip} tentative when it failed (duplicate address detection running)"))
            }
            // The kernel's word at the failure decides; the inference below is for when it was
            // not asked.
            ("EADDRNOTAVAIL", Some((ip, _))) if facts.usable.contains(&ip) => {
                (None, format!("the kernel reported {ip} present and usable when it failed, so not tentative"))
            }
            ("EADDRNOTAVAIL", Some((ip, _))) if facts.addrs.contains(&ip) => {
                (Some(Cause::AddressTentative), format!("{ip} is on the host but was not usable then: tentative while DAD ran"))
            }
            ("EADDRNOTAVAIL", Some((ip, _))) if ip.is_ipv6() && !facts.has_ipv6 => {
                (Some(Cause::AddressNotOnHost), format!("{ip} is not on the host: it has no IPv6 address at all"))
            }
            ("EADDRNOTAVAIL", Some((ip, _))) => (Some(Cause::AddressNotOnHost), format!("{ip} is not on the host")),
            ("EADDRINUSE", Some((ip, _))) if ip.is_unspecified() => {
                (Some(Cause::DualBindConflict), format!("{ip} is a wildcard: with bindv6only=0 it conflicts with the other family's"))
            }
            ("EADDRINUSE", _) => (Some(Cause::AddressInUse), String::new()),
            ("ECONNREFUSED", _) => (Some(Cause::ConnectionRefused), String::new()),
            ("ENETUNREACH", _) => (Some(Cause::NetworkUnreachable), String::new()),
            ("ETIMEDOUT", _) => (Some(Cause::BrokenPath), String::new()),
            _ => (None, String::new()),
        };
        let line = line.trim();
        let evidence = if fact.is_empty() { format!("{line:?}") } else { format!("{line:?}; {fact}") };
        return Some(OutputFinding { errno: errno.name, cause, evidence, address: first.map(|(ip, _)| ip) });
    }
    None
}

/// Seconds since midnight of an strace `-tt` timestamp (`23:46:14.832416`).
fn clock(ts: &str) -> Option<f64> {
    let mut it = ts.split(':');
    let (h, m, s) = (it.next()?.parse::<f64>().ok()?, it.next()?.parse::<f64>().ok()?, it.next()?.parse::<f64>().ok()?);
    Some(h * 3600.0 + m * 60.0 + s)
}

/// The thread id strace puts first under `-f` (`5     01:23:19.24 connect(...)`).
fn pid_of(line: &str) -> Option<&str> {
    line.trim_start().split_once(' ').map(|(p, _)| p).filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// The file descriptor a call works on: its first argument (`close(6)`, `getsockopt(6, ...)`).
fn fd_of(call: &str) -> Option<i64> {
    let args = &call[call.find('(')? + 1..];
    args.split([',', ')']).next()?.trim().parse().ok()
}

/// What a later call says of a socket whose connect returned EINPROGRESS: `Some(None)` it
/// connected (SO_ERROR 0, a peer name, data sent or received), `Some(Some(errno))` the connect
/// failed with that errno (SO_ERROR), `None` nothing about it.
fn completion(call: &str) -> Option<Option<String>> {
    let name = &call[..call.find('(')?];
    let ok = !call.contains(" = -1 ");
    match name {
        "getsockopt" if call.contains("SO_ERROR") && ok => {
            let v = call.split("SO_ERROR, [").nth(1)?.split(']').next()?.trim();
            Some((v != "0").then(|| v.to_string()))
        }
        "getpeername" | "send" | "sendto" | "sendmsg" | "recv" | "recvfrom" | "recvmsg" | "write" | "writev" | "read" if ok => Some(None),
        // A program may call connect again to learn how the first one ended.
        "connect" => match errno_of(call) {
            None | Some("EISCONN") => Some(None),
            Some("EALREADY" | "EINPROGRESS") => None,
            Some(e) => Some(Some(e.to_string())),
        },
        _ => None,
    }
}

/// An IPv6 connect that returned EINPROGRESS and has not completed yet.
struct Pending {
    pid: Option<String>,
    fd: Option<i64>,
    port: u16,
    dest: std::net::SocketAddr,
    at: Option<f64>,
    call: String,
}

impl Pending {
    /// The finding for a connect that never completed and that the program gave up on (`how`
    /// at `end`): which address, and how long it waited, from the log's own timestamps.
    fn never_completed(self, end: Option<f64>, how: &str) -> Finding {
        let waited = match (self.at, end) {
            (Some(a), Some(b)) => format!(", {:.3} s after the connect", b - a),
            _ => String::new(),
        };
        let fd = self.fd.map(|f| format!(" fd {f}")).unwrap_or_default();
        Finding {
            cause: Cause::BrokenPath,
            call: format!(
                "{}; the connect to {} never completed (no SO_ERROR 0, nothing sent or received on{fd}) and no IPv4 attempt followed: {how}{waited}",
                self.call, self.dest
            ),
        }
    }
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

/// The destination of a connect (or the address of a bind) as strace printed it.
pub fn destination(call: &str) -> Option<std::net::SocketAddr> {
    sockaddr(call).map(|(ip, _, port)| std::net::SocketAddr::new(ip, port))
}

/// Reads an strace log (`-f -q -tt -e trace=%network,close,write`) and names each failure.
/// `host_addrs` are the addresses the host has now (an address it has now that a bind could not
/// use was not yet usable then: tentative during DAD).
pub fn diagnose(log: &str, host_addrs: &[IpAddr]) -> Vec<Finding> {
    diagnose_with(log, host_addrs, &[])
}

/// [`diagnose`], knowing which addresses the kernel reported tentative (IFA_F_TENTATIVE) when
/// the program failed: those are named tentative from the kernel's word, not inferred.
pub fn diagnose_with(log: &str, host_addrs: &[IpAddr], tentative: &[IpAddr]) -> Vec<Finding> {
    let mut out = Vec::new();
    // Wildcard binds that succeeded: (family is v6, port).
    let mut bound: Vec<(bool, u16)> = Vec::new();
    // IPv6 connects still in progress (EINPROGRESS, no completion seen yet).
    let mut pending_v6: Vec<Pending> = Vec::new();
    let mut last_at = None;
    for line in log.lines() {
        let (at, call) = split_line(line);
        last_at = at.or(last_at);
        let is = |name: &str| call.starts_with(&format!("{name}("));
        let errno = errno_of(call);
        let finding = |cause| Finding { cause, call: call.to_string() };
        // The event-loop shape: the program closes the socket, or exits, with the connect still
        // pending; or a later call shows how it ended.
        let pid = pid_of(line);
        if call.starts_with("+++ exited with") || call.starts_with("+++ killed by") {
            // `+++ exited with 1 +++`, `+++ killed by SIGTERM +++`.
            let what = call.trim_matches(|c| c == '+' || c == ' ');
            let how = if what.starts_with("killed") { format!("the program was {what}") } else { format!("the program {what}") };
            let (mine, rest): (Vec<Pending>, Vec<Pending>) = pending_v6.into_iter().partition(|p| p.pid.as_deref() == pid);
            pending_v6 = rest;
            out.extend(mine.into_iter().map(|p| p.never_completed(at, &how)));
            continue;
        }
        if let Some(i) = fd_of(call).and_then(|fd| pending_v6.iter().position(|p| p.fd == Some(fd))) {
            if is("close") {
                let p = pending_v6.remove(i);
                let fd = p.fd.unwrap_or_default();
                out.push(p.never_completed(at, &format!("the program gave up and closed fd {fd}")));
                continue;
            }
            match completion(call) {
                Some(None) => {
                    pending_v6.remove(i);
                }
                Some(Some(err)) => {
                    let p = pending_v6.remove(i);
                    let cause = match err.as_str() {
                        "ECONNREFUSED" | "111" => Some(Cause::ConnectionRefused),
                        "ENETUNREACH" | "101" | "EHOSTUNREACH" | "113" => Some(Cause::NetworkUnreachable),
                        "ETIMEDOUT" | "110" => Some(Cause::BrokenPath),
                        _ => None,
                    };
                    if let Some(cause) = cause {
                        out.push(Finding { cause, call: format!("{}; then {call}: the connect to {} failed with {err}", p.call, p.dest) });
                    }
                }
                None => {}
            }
            continue;
        }
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
                    let dest = std::net::SocketAddr::new(ip, port);
                    pending_v6.push(Pending { pid: pid.map(str::to_string), fd: fd_of(call), port, dest, at, call: call.to_string() });
                    continue;
                }
                // Still connecting when it was stopped: the connect never completed.
                (IpAddr::V6(_), None) if call.contains("= ? ERESTARTSYS") => {
                    out.push(finding(Cause::BrokenPath));
                    continue;
                }
                (IpAddr::V6(_), Some("ETIMEDOUT")) => {
                    out.push(finding(Cause::BrokenPath));
                    continue;
                }
                // An IPv4 attempt to the same port after an IPv6 one: that one never completed.
                (v4, _) if v4.is_ipv4() => {
                    if let Some(i) = pending_v6.iter().position(|p| p.port == port) {
                        let p = pending_v6.remove(i);
                        let gap = match (p.at, at) {
                            (Some(a), Some(b)) => format!(" (IPv4 tried {:.3} s later)", b - a),
                            _ => String::new(),
                        };
                        out.push(Finding { cause: Cause::BrokenPath, call: format!("{}{gap}", p.call) });
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
            Some("EADDRNOTAVAIL") if is("bind") && tentative.contains(&ip) => {
                out.push(Finding {
                    cause: Cause::AddressTentative,
                    call: format!("{call}; the kernel reports {ip} tentative (duplicate address detection running)"),
                });
                continue;
            }
            Some("EADDRNOTAVAIL") if is("bind") && host_addrs.contains(&ip) => {
                out.push(Finding {
                    cause: Cause::AddressTentative,
                    call: format!("{call}; {ip} is on the host but was not usable then: tentative while DAD ran"),
                });
                continue;
            }
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
    // Still pending where the log ends (the program still running, or its end not recorded).
    out.extend(pending_v6.into_iter().map(|p| p.never_completed(last_at, "still pending when the log ends")));
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

    /// The event-loop shape, as python3 asyncio and curl -6 --connect-timeout 2 leave it on
    /// broken-ipv6 (scenarios/diagnosis/broken-path-event-loop.toml): EINPROGRESS, nothing
    /// about that socket, then the program's own timer closes it or it exits.
    #[test]
    fn a_pending_connect_the_program_gives_up_on_is_a_broken_path() {
        const C: &str = r#"connect(6, {sa_family=AF_INET6, sin6_port=htons(8080), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:db8:1::172", &sin6_addr), sin6_scope_id=0}, 28) = -1 EINPROGRESS (Operation now in progress)"#;
        let closed = format!("5     01:23:19.241924 socket(AF_INET6, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 6\n5     01:23:19.242129 {C}\n5     01:23:19.300000 write(1, \"x\", 1) = 1\n5     01:23:21.245000 close(6) = 0\n5     01:23:21.300000 +++ exited with 1 +++\n");
        let f = diagnose(&closed, &[]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].cause, Cause::BrokenPath);
        assert!(
            f[0].call.ends_with("; the connect to [2001:db8:1::172]:8080 never completed (no SO_ERROR 0, nothing sent or received on fd 6) and no IPv4 attempt followed: the program gave up and closed fd 6, 2.003 s after the connect"),
            "{}",
            f[0].call
        );
        let exited = format!("5 01:23:19.242129 {C}\n5 01:23:21.342129 +++ exited with 28 +++\n");
        assert!(diagnose(&exited, &[])[0].call.ends_with("the program exited with 28, 2.100 s after the connect"), "{:?}", diagnose(&exited, &[]));
        let killed = format!("5 01:23:19.242129 {C}\n5 01:23:22.242129 +++ killed by SIGTERM +++\n");
        assert!(diagnose(&killed, &[])[0].call.ends_with("the program was killed by SIGTERM, 3.000 s after the connect"), "{:?}", diagnose(&killed, &[]));
        let running = format!("5 01:23:19.242129 {C}\n");
        assert!(diagnose(&running, &[])[0].call.ends_with("still pending when the log ends, 0.000 s after the connect"), "{:?}", diagnose(&running, &[]));
        // A connect that completed is no finding, however it is seen to complete.
        for done in [
            "getsockopt(6, SOL_SOCKET, SO_ERROR, [0], [4]) = 0",
            "sendto(6, \"GET /\", 5, MSG_NOSIGNAL, NULL, 0) = 5",
            "connect(6, {sa_family=AF_INET6}, 28) = -1 EISCONN (Transport endpoint is already connected)",
        ] {
            let log = format!("5 01:23:19.242129 {C}\n5 01:23:19.243000 {done}\n5 01:23:19.300000 close(6) = 0\n");
            assert_eq!(diagnose(&log, &[]), vec![], "{done}");
        }
        // One that failed is named by its SO_ERROR.
        let refused = format!("5 01:23:19.242129 {C}\n5 01:23:19.243000 getsockopt(6, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0\n");
        assert_eq!(diagnose(&refused, &[]).iter().map(|f| f.cause).collect::<Vec<_>>(), vec![Cause::ConnectionRefused]);
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

#[cfg(test)]
mod output_tests {
    use super::*;

    fn facts(addrs: &[&str]) -> HostFacts {
        let addrs: Vec<IpAddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
        HostFacts { has_ipv6: addrs.iter().any(IpAddr::is_ipv6), addrs, ..Default::default() }
    }

    #[test]
    fn tentative_from_the_kernels_word() {
        let bind = r#"11 bind(3, {sa_family=AF_INET6, sin6_port=htons(9000), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:db8:1::23", &sin6_addr), sin6_scope_id=0}, 28) = -1 EADDRNOTAVAIL (Cannot assign requested address)"#;
        let ip: IpAddr = "2001:db8:1::23".parse().unwrap();
        let f = diagnose_with(bind, &[ip], &[ip]);
        assert_eq!(f[0].cause, Cause::AddressTentative);
        assert!(f[0].call.ends_with("; the kernel reports 2001:db8:1::23 tentative (duplicate address detection running)"), "{}", f[0].call);
        let mut facts = facts(&["2001:db8:1::23"]);
        facts.tentative = vec![ip];
        let o = from_output("OSError: [Errno 99] Cannot assign requested address: ('2001:db8:1::23', 9000)", &facts).unwrap();
        assert!(o.evidence.ends_with("the kernel reported 2001:db8:1::23 tentative when it failed (duplicate address detection running)"), "{}", o.evidence);
    }

    #[test]
    fn an_address_the_kernel_called_usable_at_the_failure_is_not_tentative() {
        let ip: IpAddr = "2001:db8:1::23".parse().unwrap();
        let line = "OSError: [Errno 99] Cannot assign requested address: ('2001:db8:1::23', 9000)";
        let usable = facts(&["192.0.2.5"]).with_kernel(&[(ip, false)]);
        let o = from_output(line, &usable).unwrap();
        assert_eq!((o.errno, o.cause), ("EADDRNOTAVAIL", None));
        assert!(o.evidence.ends_with("the kernel reported 2001:db8:1::23 present and usable when it failed, so not tentative"), "{}", o.evidence);
        let tentative = facts(&["192.0.2.5"]).with_kernel(&[(ip, true)]);
        assert_eq!(from_output(line, &tentative).unwrap().cause, Some(Cause::AddressTentative));
    }

    #[test]
    fn a_line_without_an_address_takes_the_command_lines() {
        let v4 = facts(&["192.0.2.5"]).with_argv(&["python3".into(), "-m".into(), "http.server".into(), "--bind".into(), "::1".into()]);
        let f = from_output("Traceback (most recent call last):\nOSError: [Errno 99] Cannot assign requested address\n", &v4).unwrap();
        assert_eq!((f.errno, f.cause), ("EADDRNOTAVAIL", Some(Cause::AddressNotOnHost)));
        assert!(f.evidence.ends_with("::1 is not on the host: it has no IPv6 address at all"), "{}", f.evidence);
    }

    #[test]
    fn causes_from_what_programs_print() {
        let v4 = facts(&["192.0.2.5"]);
        let ds = facts(&["192.0.2.5", "2001:db8:1::5", "fe80::5"]);
        let cases: [(&str, &HostFacts, &str, Option<Cause>); 7] = [
            (
                "2026/01/01 00:00:00 [emerg] 7#7: bind() to [::1]:80 failed (99: Cannot assign requested address)",
                &v4,
                "EADDRNOTAVAIL",
                Some(Cause::AddressNotOnHost),
            ),
            (
                "7:M 01 Jan 00:00:00.000 # Could not create server TCP listening socket ::1:6379: bind: Cannot assign requested address",
                &v4,
                "EADDRNOTAVAIL",
                Some(Cause::AddressNotOnHost),
            ),
            ("[DEBUG] connection to ('fe80::5', 8000) failed: [Errno 22] Invalid argument", &ds, "EINVAL", Some(Cause::LinkLocalWithoutScope)),
            ("OSError: [Errno 99] Cannot assign requested address: ('2001:db8:1::5', 9000)", &ds, "EADDRNOTAVAIL", Some(Cause::AddressTentative)),
            ("[ERROR] Connection in use: ('::', 8000)", &ds, "EADDRINUSE", Some(Cause::DualBindConflict)),
            ("OSError: [Errno 97] Address family not supported by protocol", &v4, "EAFNOSUPPORT", Some(Cause::Ipv6Absent)),
            ("urllib.error.URLError: <urlopen error [Errno 110] Connection timed out>", &ds, "ETIMEDOUT", Some(Cause::BrokenPath)),
        ];
        for (line, f, errno, cause) in cases {
            let got = from_output(&format!("starting\n{line}\n"), f).unwrap_or_else(|| panic!("nothing found in {line:?}"));
            assert_eq!((got.errno, got.cause), (errno, cause), "{line}");
            assert!(got.evidence.contains(line.trim()), "{}", got.evidence);
        }
        assert_eq!(from_output("listening on 0.0.0.0:8000\n", &ds), None);
    }

    #[test]
    fn a_connect_stopped_while_in_progress_is_a_broken_path() {
        let log = r#"9 10:00:00.100000 connect(3, {sa_family=AF_INET6, sin6_port=htons(8080), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:db8:1::5", &sin6_addr), sin6_scope_id=0}, 28) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)"#;
        let f = diagnose(log, &[]);
        assert_eq!(f.iter().map(|f| f.cause).collect::<Vec<_>>(), vec![Cause::BrokenPath]);
        assert_eq!(errno_in_call(&f[0].call), Some("ERESTARTSYS"));
    }
}
