//! Caching resolvers as lab parts: a [`ResolverSpec`] turned into the configuration file and
//! command line of a real resolver (unbound, Knot Resolver, PowerDNS Recursor, systemd-resolved),
//! and the readiness probe that sends it a real DNS query.
//!
//! Every generated file names paths only inside the directory it is given (the service's own,
//! checked directory): pid files, caches and control sockets never land in a shared place.
//! DNSSEC validation is off in every kind: the lab's zones are unsigned.
//!
//! ```
//! use std::net::SocketAddr;
//! use std::path::Path;
//! use nslab::lab::resolver::{ResolverKind, ResolverMode, ResolverSpec};
//!
//! let upstream: SocketAddr = "192.0.2.53:53".parse().unwrap();
//! let spec = ResolverSpec::new(ResolverKind::Unbound, ResolverMode::Forward { upstreams: vec![upstream] })
//!     .listen("192.0.2.10".parse().unwrap())
//!     .min_ttl(30);
//! let conf = spec.config(Path::new("/tmp/nslab-x/services/cache")).unwrap();
//! assert!(conf.text.contains("cache-min-ttl: 30"));
//! assert_eq!(conf.command[0], "unbound");
//! ```

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use crate::host::handle::Host;

/// Where Debian's systemd-resolved is unpacked by scripts/setup.sh (never installed as a package:
/// its postinst would turn the machine's /etc/resolv.conf into a link to its stub).
pub const SYSTEMD_RESOLVED_DIR: &str = "/opt/nslab/systemd-resolved";

/// Which resolver program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolverKind {
    /// NLnet Labs' unbound (`unbound -d -c unbound.conf`).
    Unbound,
    /// CZ.NIC's Knot Resolver 5 (`kresd -n -c kresd.conf DIR`).
    KnotResolver,
    /// PowerDNS Recursor 4 (`pdns_recursor --config-dir=DIR`).
    PdnsRecursor,
    /// systemd-resolved 252, run from [`SYSTEMD_RESOLVED_DIR`]; a host-level cache.
    SystemdResolved,
    /// Any other program, with the user's own configuration file.
    Custom {
        /// Program and arguments.
        command: Vec<String>,
        /// The configuration file's name inside the service directory.
        config: String,
    },
}

impl ResolverKind {
    /// The name scenarios use: `unbound`, `knot-resolver`, `pdns-recursor`, `systemd-resolved`, `custom`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Unbound => "unbound",
            Self::KnotResolver => "knot-resolver",
            Self::PdnsRecursor => "pdns-recursor",
            Self::SystemdResolved => "systemd-resolved",
            Self::Custom { .. } => "custom",
        }
    }

    /// The program `[requires]` would name (its version probe), `None` for custom and
    /// systemd-resolved (off PATH).
    pub fn program(&self) -> Option<&'static str> {
        match self {
            Self::Unbound => Some("unbound"),
            Self::KnotResolver => Some("kresd"),
            Self::PdnsRecursor => Some("pdns_recursor"),
            Self::SystemdResolved | Self::Custom { .. } => None,
        }
    }
}

/// Where a resolver gets its answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolverMode {
    /// Sends every query to these servers (recursion desired): the lab DNS, or another resolver.
    Forward {
        /// Upstream servers, tried in order.
        upstreams: Vec<SocketAddr>,
    },
    /// Iterates from the root: root hints naming these addresses (the lab DNS serving ".").
    Recurse {
        /// Addresses of the lab's root server.
        root_hints: Vec<IpAddr>,
    },
}

/// A caching resolver: what it is, where it listens and its cache policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverSpec {
    /// The program.
    pub kind: ResolverKind,
    /// Forward or recurse.
    pub mode: ResolverMode,
    /// Addresses it listens on (port [`ResolverSpec::port`]); loopback `127.0.0.1` is always added.
    pub listen: Vec<IpAddr>,
    /// Its DNS port (53).
    pub port: u16,
    /// Lowest TTL it keeps an answer for, seconds (unbound `cache-min-ttl`).
    pub min_ttl: Option<u32>,
    /// Highest TTL it keeps an answer for, seconds.
    pub max_ttl: Option<u32>,
    /// Highest TTL it keeps a negative answer for, seconds.
    pub negative_ttl: Option<u32>,
    /// Serve expired answers (RFC 8767) for up to this long after they expire.
    pub serve_stale: Option<Duration>,
    /// Refresh popular answers before they expire.
    pub prefetch: bool,
    /// Cache size in bytes.
    pub cache_size: Option<u64>,
}

/// A resolver's generated configuration: one file and the command that uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConfig {
    /// The file's name inside the service directory.
    pub file: String,
    /// Its text.
    pub text: String,
    /// Program and arguments (paths inside the service directory).
    pub command: Vec<String>,
    /// Environment the program needs (systemd-resolved's library path).
    pub env: Vec<(String, String)>,
}

/// A setting the chosen program cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} cannot {what}")]
pub struct UnsupportedError {
    /// The program (`systemd-resolved`).
    pub kind: &'static str,
    /// What was asked, and why it cannot (`serve stale answers: StaleRetentionSec= came in systemd 254, Debian 12 has 252`).
    pub what: String,
}

impl ResolverSpec {
    /// A resolver of `kind` in `mode`, port 53, no cache settings (the program's defaults).
    pub fn new(kind: ResolverKind, mode: ResolverMode) -> Self {
        Self {
            kind,
            mode,
            listen: Vec::new(),
            port: 53,
            min_ttl: None,
            max_ttl: None,
            negative_ttl: None,
            serve_stale: None,
            prefetch: false,
            cache_size: None,
        }
    }

    /// Listens on `addr` too.
    pub fn listen(mut self, addr: IpAddr) -> Self {
        self.listen.push(addr);
        self
    }

    /// Keeps every answer at least `secs` seconds.
    pub fn min_ttl(mut self, secs: u32) -> Self {
        self.min_ttl = Some(secs);
        self
    }

    /// Keeps no answer longer than `secs` seconds.
    pub fn max_ttl(mut self, secs: u32) -> Self {
        self.max_ttl = Some(secs);
        self
    }

    /// Keeps no negative answer longer than `secs` seconds.
    pub fn negative_ttl(mut self, secs: u32) -> Self {
        self.negative_ttl = Some(secs);
        self
    }

    /// Serves expired answers for up to `d` after expiry (RFC 8767).
    pub fn serve_stale(mut self, d: Duration) -> Self {
        self.serve_stale = Some(d);
        self
    }

    /// Refreshes popular answers before expiry.
    pub fn prefetch(mut self, on: bool) -> Self {
        self.prefetch = on;
        self
    }

    /// Cache size in bytes.
    pub fn cache_size(mut self, bytes: u64) -> Self {
        self.cache_size = Some(bytes);
        self
    }

    /// Every address it listens on: loopback first, then [`ResolverSpec::listen`] (no duplicates).
    pub fn listen_addrs(&self) -> Vec<IpAddr> {
        let mut out = vec![IpAddr::from([127, 0, 0, 1])];
        for a in &self.listen {
            if !out.contains(a) {
                out.push(*a);
            }
        }
        out
    }

    /// The configuration file and command for a service whose directory is `dir`.
    ///
    /// # Errors
    /// [`UnsupportedError`] when the program has no option for a setting (systemd-resolved 252
    /// has no minimum TTL, serve-stale, prefetch or recursion).
    pub fn config(&self, dir: &Path) -> Result<ResolverConfig, UnsupportedError> {
        let d = dir.display();
        let file = |name: &str| dir.join(name).display().to_string();
        match &self.kind {
            ResolverKind::Unbound => Ok(ResolverConfig {
                file: "unbound.conf".into(),
                text: self.unbound(dir),
                command: vec!["unbound".into(), "-d".into(), "-p".into(), "-c".into(), file("unbound.conf")],
                env: Vec::new(),
            }),
            ResolverKind::KnotResolver => Ok(ResolverConfig {
                file: "kresd.conf".into(),
                text: self.kresd(dir),
                command: vec!["kresd".into(), "-n".into(), "-c".into(), file("kresd.conf"), d.to_string()],
                env: Vec::new(),
            }),
            ResolverKind::PdnsRecursor => Ok(ResolverConfig {
                file: "recursor.conf".into(),
                text: self.pdns(dir),
                command: vec!["pdns_recursor".into(), format!("--config-dir={d}"), "--daemon=no".into(), "--disable-syslog".into()],
                env: Vec::new(),
            }),
            ResolverKind::SystemdResolved => self.resolved(dir),
            ResolverKind::Custom { command, config } => {
                Ok(ResolverConfig { file: config.clone(), text: String::new(), command: command.clone(), env: Vec::new() })
            }
        }
    }

    fn unbound(&self, dir: &Path) -> String {
        let d = dir.display();
        let mut s = String::new();
        let _ = writeln!(s, "# Generated by nslab (nslab::lab::resolver) for unbound 1.17.\nserver:");
        for a in self.listen_addrs() {
            let _ = writeln!(s, "    interface: {a}@{}", self.port);
        }
        let _ = writeln!(
            s,
            "    do-daemonize: no\n    username: \"\"\n    chroot: \"\"\n    directory: \"{d}\"\n    pidfile: \"{d}/unbound.pid\"\n    use-syslog: no\n    logfile: \"\"\n    log-time-ascii: yes\n    verbosity: 1\n    log-queries: yes\n    log-replies: yes\n    log-servfail: yes"
        );
        let _ = writeln!(s, "    access-control: 0.0.0.0/0 allow\n    access-control: ::/0 allow");
        // Lab servers sit on loopback or documentation prefixes; "test." is a default local zone.
        let _ = writeln!(s, "    do-not-query-localhost: no\n    local-zone: \"test.\" nodefault\n    module-config: \"iterator\"");
        let _ = writeln!(s, "    do-ip4: yes\n    do-ip6: yes\n    prefer-ip6: no");
        if let Some(t) = self.min_ttl {
            let _ = writeln!(s, "    cache-min-ttl: {t}");
        }
        if let Some(t) = self.max_ttl {
            let _ = writeln!(s, "    cache-max-ttl: {t}");
        }
        if let Some(t) = self.negative_ttl {
            let _ = writeln!(s, "    cache-max-negative-ttl: {t}");
        }
        if let Some(d) = self.serve_stale {
            // RFC 8767: try the authoritative first, answer from the expired cache after 1.8 s
            // or when resolution fails; keep expired answers this long.
            let _ = writeln!(s, "    serve-expired: yes\n    serve-expired-ttl: {}\n    serve-expired-client-timeout: 1800", d.as_secs().max(1));
        }
        if self.prefetch {
            let _ = writeln!(s, "    prefetch: yes");
        }
        if let Some(b) = self.cache_size {
            let _ = writeln!(s, "    msg-cache-size: {}\n    rrset-cache-size: {}", b / 3, b - b / 3);
        }
        let _ = writeln!(s, "remote-control:\n    control-enable: no");
        match &self.mode {
            ResolverMode::Forward { upstreams } => {
                let _ = writeln!(s, "forward-zone:\n    name: \".\"");
                for u in upstreams {
                    let _ = writeln!(s, "    forward-addr: {}@{}", u.ip(), u.port());
                }
            }
            ResolverMode::Recurse { root_hints } => {
                // A stub zone for the root is unbound's root hints: it primes (". NS") there.
                let _ = writeln!(s, "stub-zone:\n    name: \".\"\n    stub-prime: yes");
                for a in root_hints {
                    let _ = writeln!(s, "    stub-addr: {a}");
                }
            }
        }
        s
    }

    fn kresd(&self, dir: &Path) -> String {
        let d = dir.display();
        let mut s = String::from("-- Generated by nslab (nslab::lab::resolver) for Knot Resolver 5.\n");
        for a in self.listen_addrs() {
            let _ = writeln!(s, "net.listen('{a}', {}, {{ kind = 'dns' }})", self.port);
        }
        // Unsigned lab zones: no trust anchor, no validation.
        let _ = writeln!(s, "trust_anchors.remove('.')");
        let size = self.cache_size.map_or("10 * MB".to_string(), |b| b.to_string());
        let _ = writeln!(s, "cache.open({size}, 'lmdb://{d}/kresd-cache')");
        if let Some(t) = self.min_ttl {
            let _ = writeln!(s, "cache.min_ttl({t})");
        }
        if let Some(t) = self.max_ttl {
            let _ = writeln!(s, "cache.max_ttl({t})");
        }
        if let Some(t) = self.negative_ttl {
            let _ = writeln!(s, "cache.ns_tout(1000)\n-- negative answers are bounded by max_ttl in kresd 5\ncache.max_ttl(math.max({t}, cache.max_ttl()))");
        }
        if self.serve_stale.is_some() {
            // serve_stale answers from records up to one day expired after a failed refresh.
            let _ = writeln!(s, "modules.load('serve_stale < cache')");
        }
        if self.prefetch {
            // predict refreshes records about to expire that clients keep asking for.
            let _ = writeln!(s, "modules.load('predict')\npredict.config({{ window = 1, period = 2 }})");
        }
        let _ = writeln!(s, "log_level('info')");
        match &self.mode {
            ResolverMode::Forward { upstreams } => {
                let list: Vec<String> = upstreams.iter().map(|u| format!("'{}@{}'", u.ip(), u.port())).collect();
                let _ = writeln!(s, "policy.add(policy.all(policy.STUB({{{}}})))", list.join(", "));
            }
            ResolverMode::Recurse { root_hints } => {
                let list: Vec<String> = root_hints.iter().map(|a| format!("'{a}'")).collect();
                // kresd refuses names under test. (RFC 6761) unless a rule lets them pass first.
                let _ = writeln!(
                    s,
                    "policy.add(policy.suffix(policy.PASS, policy.todnames({{'test.'}})))\nmodules.load('hints > iterate')\nhints.root({{ ['dns.lab.test.'] = {{ {} }} }})",
                    list.join(", ")
                );
            }
        }
        s
    }

    fn pdns(&self, dir: &Path) -> String {
        let d = dir.display();
        let mut s = String::from("# Generated by nslab (nslab::lab::resolver) for PowerDNS Recursor 4.8.\n");
        let addrs: Vec<String> = self.listen_addrs().iter().map(|a| a.to_string()).collect();
        let _ = writeln!(s, "local-address={}\nlocal-port={}", addrs.join(", "), self.port);
        // Outgoing queries over IPv6 only where the upstreams or root hints have IPv6 (no socket
        // family a host lacks: AF_INET6 fails in no-ipv6).
        let v6 = match &self.mode {
            ResolverMode::Forward { upstreams } => upstreams.iter().any(|u| u.is_ipv6()),
            ResolverMode::Recurse { root_hints } => root_hints.iter().any(|a| a.is_ipv6()),
        };
        let v4 = match &self.mode {
            ResolverMode::Forward { upstreams } => upstreams.iter().any(|u| u.is_ipv4()),
            ResolverMode::Recurse { root_hints } => root_hints.iter().any(|a| a.is_ipv4()),
        };
        let out: Vec<&str> = [(v4 || !v6, "0.0.0.0"), (v6, "::")].into_iter().filter(|(on, _)| *on).map(|(_, a)| a).collect();
        let _ = writeln!(s, "query-local-address={}", out.join(", "));
        let _ = writeln!(s, "allow-from=0.0.0.0/0, ::/0\ndaemon=no\n# Relative to its working directory, the service directory: a control socket path must fit in 108 bytes.\nsocket-dir=.\nwrite-pid=no\ndnssec=off\nquiet=no\nloglevel=6\nlog-common-errors=yes\nsecurity-poll-suffix=");
        let _ = writeln!(s, "dont-query=");
        if let Some(t) = self.min_ttl {
            let _ = writeln!(s, "minimum-ttl-override={t}");
        }
        if let Some(t) = self.max_ttl {
            let _ = writeln!(s, "max-cache-ttl={t}");
        }
        if let Some(t) = self.negative_ttl {
            let _ = writeln!(s, "max-negative-ttl={t}");
        }
        if let Some(d) = self.serve_stale {
            // Each extension keeps an expired record 30 s longer.
            let _ = writeln!(s, "serve-stale-extensions={}", d.as_secs().div_ceil(30).max(1));
        }
        // refresh-on-ttl-perc: refresh an answer asked for when less than this % of its TTL is left.
        let _ = writeln!(s, "refresh-on-ttl-perc={}", if self.prefetch { 10 } else { 0 });
        if let Some(b) = self.cache_size {
            // About 500 bytes per entry.
            let _ = writeln!(s, "max-cache-entries={}", (b / 500).max(1));
        }
        match &self.mode {
            ResolverMode::Forward { upstreams } => {
                let list: Vec<String> = upstreams.iter().map(|u| u.to_string()).collect();
                let _ = writeln!(s, "forward-zones-recurse=.={}", list.join(";"));
            }
            ResolverMode::Recurse { root_hints } => {
                let list: Vec<String> = root_hints.iter().map(|a| a.to_string()).collect();
                let _ = writeln!(s, "# The lab's root server as the only root hint.\nhint-file={d}/root.hints");
                let _ = writeln!(s, "# root.hints: {}", list.join(" "));
            }
        }
        s
    }

    /// A root-hints file for recursion from the lab's root (pdns-recursor's `hint-file`).
    pub fn root_hints_file(&self) -> Option<String> {
        let ResolverMode::Recurse { root_hints } = &self.mode else { return None };
        let mut s = String::from(".\t3600000\tIN\tNS\tdns.lab.test.\n");
        for a in root_hints {
            let t = if a.is_ipv4() { "A" } else { "AAAA" };
            let _ = writeln!(s, "dns.lab.test.\t3600000\tIN\t{t}\t{a}");
        }
        Some(s)
    }

    fn resolved(&self, dir: &Path) -> Result<ResolverConfig, UnsupportedError> {
        let no = |what: &str| Err(UnsupportedError { kind: "systemd-resolved", what: what.to_string() });
        if self.min_ttl.is_some() || self.max_ttl.is_some() || self.negative_ttl.is_some() {
            return no("bound TTLs: resolved.conf has no minimum, maximum or negative TTL setting (it keeps each answer for its own TTL)");
        }
        if self.serve_stale.is_some() {
            return no("serve stale answers: StaleRetentionSec= came in systemd 254, Debian 12 has 252");
        }
        if self.prefetch {
            return no("prefetch: resolved.conf has no such setting");
        }
        if self.cache_size.is_some() {
            return no("set a cache size: resolved.conf has only Cache=yes|no|no-negative");
        }
        let ResolverMode::Forward { upstreams } = &self.mode else {
            return no("recurse: it only forwards to DNS= servers (mode = \"forward\")");
        };
        let mut s = String::from("# Generated by nslab (nslab::lab::resolver) for systemd-resolved 252.\n[Resolve]\n");
        let list: Vec<String> = upstreams.iter().map(|u| if u.port() == 53 { u.ip().to_string() } else { u.to_string() }).collect();
        let _ = writeln!(s, "DNS={}\nDomains=~.\nCache=yes\nDNSSEC=no\nDNSOverTLS=no\nLLMNR=no\nMulticastDNS=no\nReadEtcHosts=no", list.join(" "));
        let _ = writeln!(s, "DNSStubListener=yes");
        for a in self.listen_addrs() {
            let _ = writeln!(s, "DNSStubListenerExtra={}", SocketAddr::new(a, self.port));
        }
        let d = dir.display();
        let bin = format!("{SYSTEMD_RESOLVED_DIR}/lib/systemd/systemd-resolved");
        // It reads drop-ins from /run/systemd/resolved.conf.d (the host's own /run) and refuses to
        // run as root without a systemd-resolve user: it runs as nobody with the capabilities it
        // keeps. Rootless mode maps no uid but its own: it says so and exits (the others run as
        // the namespace's root there).
        let script = format!(
            "set -e; if ! awk '{{ if (65534 >= $1 && 65534 < $1 + $3) f = 1 }} END {{ exit !f }}' /proc/self/uid_map; then \
             echo 'nslab: systemd-resolved runs as nobody (uid 65534), which this user namespace does not map (rootless mode): run nslab as root' >&2; exit 1; fi; \
             install -d -m 755 /run/systemd/resolved.conf.d; install -d -o 65534 -g 65534 /run/systemd/resolve; \
             install -m 644 '{d}/resolved.conf' /run/systemd/resolved.conf.d/nslab.conf; \
             exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+net_bind_service,+setpcap --ambient-caps=+net_bind_service,+setpcap {bin}"
        );
        Ok(ResolverConfig {
            file: "resolved.conf".into(),
            text: s,
            command: vec!["sh".into(), "-c".into(), script],
            env: vec![
                ("LD_LIBRARY_PATH".into(), format!("{SYSTEMD_RESOLVED_DIR}/usr/lib/x86_64-linux-gnu/systemd")),
                ("SYSTEMD_LOG_LEVEL".into(), "debug".into()),
            ],
        })
    }
}

/// What a resolver answered to [`probe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeAnswer {
    /// Its response code.
    pub rcode: ResponseCode,
    /// How many records its answer section held.
    pub answers: usize,
}

impl std::fmt::Display for ProbeAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} with {} answer record(s)", self.rcode, self.answers)
    }
}

/// Asks `server` for `name` (type A, recursion desired) from inside `host`, once, waiting up to
/// `timeout`, and gives what came back.
///
/// # Errors
/// A text saying what failed (no socket, no answer in time, a malformed answer).
pub async fn probe(host: &Host, server: SocketAddr, name: &str, timeout: Duration) -> Result<ProbeAnswer, String> {
    let any: SocketAddr = if server.is_ipv4() { "0.0.0.0:0".parse().expect("literal") } else { "[::]:0".parse().expect("literal") };
    let sock = host.bind_udp(any).await.map_err(|e| e.to_string())?;
    let qname = Name::from_ascii(name).map_err(|e| format!("{name:?} is not a DNS name: {e}"))?;
    let mut msg = Message::new(0x6e73, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(qname, RecordType::A));
    let bytes = msg.to_vec().map_err(|e| format!("cannot encode a query: {e}"))?;
    sock.send_to(&bytes, server).await.map_err(|e| format!("send to {server}: {e}"))?;
    let mut buf = vec![0u8; 4096];
    let n = match tokio::time::timeout(timeout, sock.recv(&mut buf)).await {
        Ok(r) => r.map_err(|e| format!("receive from {server}: {e}"))?,
        Err(_) => return Err(format!("no answer from {server} for {name} within {timeout:?}")),
    };
    let answer = Message::from_vec(&buf[..n]).map_err(|e| format!("malformed answer from {server}: {e}"))?;
    Ok(ProbeAnswer { rcode: answer.metadata.response_code, answers: answer.answers.len() })
}

/// The service directory paths a resolver writes (for tests and reports).
pub fn state_paths(kind: &ResolverKind, dir: &Path) -> Vec<PathBuf> {
    match kind {
        ResolverKind::Unbound => vec![dir.join("unbound.pid")],
        ResolverKind::KnotResolver => vec![dir.join("control"), dir.join("kresd-cache")],
        ResolverKind::PdnsRecursor => vec![dir.join("pdns_recursor.controlsocket")],
        ResolverKind::SystemdResolved | ResolverKind::Custom { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(kind: ResolverKind) -> ResolverSpec {
        ResolverSpec::new(kind, ResolverMode::Forward { upstreams: vec!["192.0.2.53:53".parse().unwrap()] }).listen("192.0.2.10".parse().unwrap())
    }

    #[test]
    fn unbound_forward_with_cache_policy() {
        let c = fwd(ResolverKind::Unbound)
            .min_ttl(20)
            .max_ttl(300)
            .negative_ttl(5)
            .serve_stale(Duration::from_secs(60))
            .prefetch(true)
            .config(Path::new("/d"))
            .unwrap();
        let want = [
            "interface: 127.0.0.1@53",
            "interface: 192.0.2.10@53",
            "username: \"\"",
            "pidfile: \"/d/unbound.pid\"",
            "do-not-query-localhost: no",
            "local-zone: \"test.\" nodefault",
            "module-config: \"iterator\"",
            "cache-min-ttl: 20",
            "cache-max-ttl: 300",
            "cache-max-negative-ttl: 5",
            "serve-expired: yes",
            "serve-expired-ttl: 60",
            "prefetch: yes",
            "forward-zone:\n    name: \".\"\n    forward-addr: 192.0.2.53@53",
        ];
        for w in want {
            assert!(c.text.contains(w), "{w:?} missing from\n{}", c.text);
        }
        assert_eq!(c.command, ["unbound", "-d", "-p", "-c", "/d/unbound.conf"]);
    }

    #[test]
    fn unbound_defaults_leave_the_cache_policy_out() {
        let c = fwd(ResolverKind::Unbound).config(Path::new("/d")).unwrap();
        for absent in ["cache-min-ttl", "serve-expired", "prefetch", "cache-max-ttl"] {
            assert!(!c.text.contains(absent), "{absent} in\n{}", c.text);
        }
    }

    #[test]
    fn unbound_recurse_primes_from_the_lab_root() {
        let spec = ResolverSpec::new(
            ResolverKind::Unbound,
            ResolverMode::Recurse { root_hints: vec!["192.0.2.53".parse().unwrap(), "2001:db8:1::35".parse().unwrap()] },
        );
        let c = spec.config(Path::new("/d")).unwrap();
        assert!(c.text.contains("stub-zone:\n    name: \".\"\n    stub-prime: yes\n    stub-addr: 192.0.2.53\n    stub-addr: 2001:db8:1::35"), "{}", c.text);
        assert!(!c.text.contains("forward-zone"));
    }

    #[test]
    fn kresd_forward_with_cache_policy() {
        let c = fwd(ResolverKind::KnotResolver).min_ttl(20).max_ttl(300).serve_stale(Duration::from_secs(60)).prefetch(true).config(Path::new("/d")).unwrap();
        for w in [
            "net.listen('127.0.0.1', 53, { kind = 'dns' })",
            "net.listen('192.0.2.10', 53, { kind = 'dns' })",
            "trust_anchors.remove('.')",
            "cache.open(10 * MB, 'lmdb:///d/kresd-cache')",
            "cache.min_ttl(20)",
            "cache.max_ttl(300)",
            "modules.load('serve_stale < cache')",
            "modules.load('predict')",
            "policy.add(policy.all(policy.STUB({'192.0.2.53@53'})))",
        ] {
            assert!(c.text.contains(w), "{w:?} missing from\n{}", c.text);
        }
        assert_eq!(c.command, ["kresd", "-n", "-c", "/d/kresd.conf", "/d"]);
    }

    #[test]
    fn pdns_forward_with_cache_policy() {
        let c = fwd(ResolverKind::PdnsRecursor)
            .min_ttl(20)
            .max_ttl(300)
            .negative_ttl(5)
            .serve_stale(Duration::from_secs(60))
            .prefetch(true)
            .config(Path::new("/d"))
            .unwrap();
        for w in [
            "local-address=127.0.0.1, 192.0.2.10\n",
            "local-port=53\n",
            "socket-dir=.\n",
            "query-local-address=0.0.0.0\n",
            "dnssec=off\n",
            "minimum-ttl-override=20\n",
            "max-cache-ttl=300\n",
            "max-negative-ttl=5\n",
            "serve-stale-extensions=2\n",
            "refresh-on-ttl-perc=10\n",
            "forward-zones-recurse=.=192.0.2.53:53\n",
        ] {
            assert!(c.text.contains(w), "{w:?} missing from\n{}", c.text);
        }
        assert_eq!(c.command[1], "--config-dir=/d");
    }

    #[test]
    fn resolved_forwards_and_listens_on_the_extra_stub() {
        let c = fwd(ResolverKind::SystemdResolved).config(Path::new("/d")).unwrap();
        for w in
            ["[Resolve]\n", "DNS=192.0.2.53\n", "Domains=~.\n", "Cache=yes\n", "DNSStubListenerExtra=127.0.0.1:53\n", "DNSStubListenerExtra=192.0.2.10:53\n"]
        {
            assert!(c.text.contains(w), "{w:?} missing from\n{}", c.text);
        }
        assert!(c.command[2].contains("/run/systemd/resolved.conf.d/nslab.conf"));
    }

    #[test]
    fn resolved_refuses_what_252_cannot_do() {
        let e = fwd(ResolverKind::SystemdResolved).serve_stale(Duration::from_secs(30)).config(Path::new("/d")).unwrap_err();
        assert_eq!(e.to_string(), "systemd-resolved cannot serve stale answers: StaleRetentionSec= came in systemd 254, Debian 12 has 252");
        let e = fwd(ResolverKind::SystemdResolved).min_ttl(30).config(Path::new("/d")).unwrap_err();
        assert!(e.to_string().starts_with("systemd-resolved cannot bound TTLs"), "{e}");
        let r = ResolverSpec::new(ResolverKind::SystemdResolved, ResolverMode::Recurse { root_hints: vec![] }).config(Path::new("/d")).unwrap_err();
        assert!(r.what.starts_with("recurse"), "{r}");
    }

    #[test]
    fn root_hints_name_the_lab_root() {
        let spec = ResolverSpec::new(ResolverKind::PdnsRecursor, ResolverMode::Recurse { root_hints: vec!["192.0.2.53".parse().unwrap()] });
        assert_eq!(spec.root_hints_file().unwrap(), ".\t3600000\tIN\tNS\tdns.lab.test.\ndns.lab.test.\t3600000\tIN\tA\t192.0.2.53\n");
        assert!(spec.config(Path::new("/d")).unwrap().text.contains("hint-file=/d/root.hints\n"));
    }
}
