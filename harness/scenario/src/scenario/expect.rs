//! `[[expect]]`: what must be observed, each checked and reported on its own, optionally only
//! in some profiles.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use toml::de::DeValue;

use super::decode::{int_of, Doc, Result, Str, Table, Val};
use super::duration::format_duration;
use super::known::{opt_regex, refer, regex, Known};
use super::values::{ConnectTarget, Errno, ListenSpec};
use nslab::addr::profile::Profile;

/// How long a `connect` expectation waits for the connection, unless `timeout` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

const COMMON_KEYS: &[&str] = &["kind", "name", "profiles"];
const KINDS: &str = "exit, output, bind-error, listening, connect, line-within, no-line, stale, first-request, diagnosis";

/// One expectation.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// A name for reports, when given.
    pub name: Option<String>,
    /// Only checked in these profiles; `None`: in every profile of the scenario.
    pub profiles: Option<Vec<Profile>>,
    /// What is checked.
    pub check: Check,
}

impl Expectation {
    /// Whether it is checked in a trial with `profile`.
    pub fn applies_to(&self, profile: Profile) -> bool {
        self.profiles.as_ref().is_none_or(|ps| ps.contains(&profile))
    }

    /// How reports name it: its `name`, or a sentence made from the check.
    pub fn description(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.check.to_string())
    }
}

/// What an expectation checks.
#[derive(Debug, Clone)]
pub enum Check {
    /// The service has exited (by the end of the trial), with this code / success when given.
    Exit {
        /// The service.
        service: String,
        /// Exact exit code.
        code: Option<i32>,
        /// Whether it exited with status 0 (`false`: non-zero or killed by a signal).
        success: Option<bool>,
    },
    /// The service's output matches (and/or does not match) a regex.
    Output {
        /// The service.
        service: String,
        /// Which stream.
        stream: OutputStream,
        /// Some line must match.
        matches: Option<regex::Regex>,
        /// No line may match.
        not_matches: Option<regex::Regex>,
    },
    /// The service failed to bind a socket with this errno (and printed `message`, when given).
    BindError {
        /// The service.
        service: String,
        /// The errno of the failed bind.
        errno: Errno,
        /// Text that must appear in its output.
        message: Option<String>,
    },
    /// What is listening in the service's host (the service's own sockets) or in a host.
    Listening {
        /// Whose sockets.
        target: ListenTarget,
        /// Sockets that must be there.
        on: Vec<ListenSpec>,
        /// Whether no other listening socket may be there.
        exactly: bool,
    },
    /// A TCP connect from a host to a target has this result.
    Connect {
        /// The host connecting.
        from: String,
        /// Where to.
        to: ConnectTarget,
        /// Which address of a named host; `None`: its first address (IPv4 if it has one).
        family: Option<ConnectFamily>,
        /// The outcome that must be seen.
        result: ConnectResult,
        /// How long a connect may take.
        timeout: Duration,
    },
    /// A line matching a regex appears within `within` after a step (and not before `min`).
    LineWithin {
        /// The service.
        service: String,
        /// The line.
        matches: regex::Regex,
        /// The named step the window starts at (when it ended).
        after: String,
        /// End of the window.
        within: Duration,
        /// Start of the window; `None`: right at the step.
        min: Option<Duration>,
    },
    /// How long a client kept reaching the `old` target after a DNS change (the named step), and
    /// why, from the built-in targets' request logs and the DNS query log.
    Stale {
        /// The client host.
        client: String,
        /// The step of the DNS change.
        after: String,
        /// The target the change moves away from.
        old: String,
        /// The target it moves to.
        new: String,
        /// The client reached `new` and its last request to `old` came at most this long after the change.
        at_most: Option<Duration>,
        /// Its last request to `old` came at least this long after the change.
        at_least: Option<Duration>,
        /// Why it stayed (checked only when given).
        cause: Option<StaleCause>,
        /// The DNS cross-check and the served TTL (each checked only when given).
        counts: StaleCounts,
    },
    /// How long after a client service started its first request reached a target, and over
    /// which family: the Happy Eyeballs question on a broken path.
    FirstRequest {
        /// The client service.
        service: String,
        /// The target.
        target: String,
        /// It came at most this long after the service started.
        within: Option<Duration>,
        /// It came at least this long after the service started.
        at_least: Option<Duration>,
        /// It came over this family.
        family: Option<nslab::host::listeners::Family>,
        /// What the times count from.
        from: Anchor,
    },
    /// The cause of a service's failed bind, connect or socket call, named from the calls it
    /// made (the service needs `trace = true`).
    Diagnosis {
        /// The service.
        service: String,
        /// The cause that must be found.
        cause: Cause,
    },
    /// No line matching a regex appears for `duration` after a step.
    NoLine {
        /// The service.
        service: String,
        /// The line.
        matches: regex::Regex,
        /// The named step the window starts at.
        after: String,
        /// Length of the window.
        duration: Duration,
    },
}

/// What a `first-request` window counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Anchor {
    /// The moment the service was started (includes the program's own start-up).
    #[default]
    Start,
    /// The client host's first DNS query after the service started: the moment the program
    /// began its request, without the start-up time of its runtime (or of strace around it).
    DnsQuery,
}

impl Anchor {
    fn describe(self) -> &'static str {
        match self {
            Anchor::Start => "it started",
            Anchor::DnsQuery => "its first DNS query",
        }
    }
}

/// The counted part of a `stale` expectation: the DNS cross-check and the TTL served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StaleCounts {
    /// Exactly this many DNS queries from the client after the change, within the stale window.
    pub dns_queries_after: Option<u64>,
    /// At least this many.
    pub min_dns_queries_after: Option<u64>,
    /// Exactly this many new connections to the old target after the change.
    pub new_connections_to_old: Option<u64>,
    /// The answer before the change carried this TTL (the smallest over its chain).
    pub ttl: Option<Duration>,
}

/// Why a client kept reaching the old target after a DNS change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StaleCause {
    /// It did not: no request reached the old target after the change.
    #[default]
    None,
    /// Requests on connections opened before the change (a pool or keep-alive): the client
    /// never needed to resolve again.
    ConnectionPinning,
    /// New connections opened after the change to the old address: an answer cached in the
    /// client (a resolver cache, such as the JVM's).
    ResolverCache,
    /// Both: requests on connections opened before the change and new connections to the
    /// old address after it.
    Mixed,
    /// New connections to the old address more than a second after the client had asked again
    /// and been answered with the new target: a cache of the application's own, not the resolver's.
    ApplicationCache,
    /// Not known: the target's log does not say which connection a request came on.
    Unknown,
}

impl StaleCause {
    /// The name as written in scenarios.
    pub fn name(self) -> &'static str {
        match self {
            StaleCause::None => "none",
            StaleCause::ConnectionPinning => "connection-pinning",
            StaleCause::ResolverCache => "resolver-cache",
            StaleCause::Mixed => "mixed",
            StaleCause::ApplicationCache => "application-cache",
            StaleCause::Unknown => "unknown",
        }
    }

    /// Every cause, for parsing and messages.
    pub const ALL: [StaleCause; 6] =
        [StaleCause::None, StaleCause::ConnectionPinning, StaleCause::ResolverCache, StaleCause::Mixed, StaleCause::ApplicationCache, StaleCause::Unknown];
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

/// Whose listening sockets a `listening` expectation looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenTarget {
    /// Sockets owned by the service's processes.
    Service(String),
    /// Every socket in the host.
    Host(String),
}

/// Which output stream an `output` expectation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Either (default).
    #[default]
    Both,
}

/// Which address of a named host a `connect` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFamily {
    /// Its IPv4 address.
    Ipv4,
    /// Its global IPv6 address.
    Ipv6,
    /// Its link-local address, scoped to the connecting host's interface.
    LinkLocal,
}

/// The outcome of a `connect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectResult {
    /// Connected.
    Ok,
    /// No answer within the timeout.
    Timeout,
    /// Failed with this errno.
    Errno(Errno),
}

impl fmt::Display for ConnectResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => f.write_str("ok"),
            Self::Timeout => f.write_str("timeout"),
            Self::Errno(e) => write!(f, "{}", e.name),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Exit { service, code, success } => {
                write!(f, "service {service} exits")?;
                match (code, success) {
                    (Some(c), _) => write!(f, " with code {c}"),
                    (None, Some(true)) => f.write_str(" successfully"),
                    (None, Some(false)) => f.write_str(" unsuccessfully"),
                    (None, None) => Ok(()),
                }
            }
            Check::Output { service, stream, matches, not_matches } => {
                let s = match stream {
                    OutputStream::Stdout => "stdout",
                    OutputStream::Stderr => "stderr",
                    OutputStream::Both => "output",
                };
                write!(f, "{s} of service {service}")?;
                if let Some(m) = matches {
                    write!(f, " matches {:?}", m.as_str())?;
                }
                if let Some(n) = not_matches {
                    write!(f, "{} does not match {:?}", if matches.is_some() { " and" } else { "" }, n.as_str())?;
                }
                Ok(())
            }
            Check::BindError { service, errno, message } => {
                write!(f, "service {service} fails to bind with {errno}")?;
                if let Some(m) = message {
                    write!(f, " and prints {m:?}")?;
                }
                Ok(())
            }
            Check::Listening { target, on, exactly } => {
                match target {
                    ListenTarget::Service(s) => write!(f, "service {s} listens on ")?,
                    ListenTarget::Host(h) => write!(f, "host {h} listens on ")?,
                }
                let list: Vec<&str> = on.iter().map(|l| l.as_str()).collect();
                write!(f, "{}{}", list.join(", "), if *exactly { " and nothing else" } else { "" })
            }
            Check::Connect { from, to, family, result, timeout } => {
                let to = match to {
                    ConnectTarget::Host { host, port } => format!("{host}:{port}"),
                    ConnectTarget::Addr { ip, scope: Some(s), port } => format!("[{ip}%{s}]:{port}"),
                    ConnectTarget::Addr { ip, scope: None, port } => std::net::SocketAddr::new(*ip, *port).to_string(),
                };
                write!(f, "connect from {from} to {to}")?;
                if let Some(fam) = family {
                    let n = match fam {
                        ConnectFamily::Ipv4 => "IPv4",
                        ConnectFamily::Ipv6 => "IPv6",
                        ConnectFamily::LinkLocal => "link-local",
                    };
                    write!(f, " over {n}")?;
                }
                match result {
                    ConnectResult::Ok => write!(f, " succeeds within {}", format_duration(*timeout)),
                    ConnectResult::Timeout => write!(f, " gets no answer within {}", format_duration(*timeout)),
                    ConnectResult::Errno(e) => write!(f, " fails with {e}"),
                }
            }
            Check::LineWithin { service, matches, after, within, min } => {
                write!(f, "service {service} prints a line matching {:?} ", matches.as_str())?;
                match min {
                    Some(m) => write!(f, "between {} and {} after step {after}", format_duration(*m), format_duration(*within)),
                    None => write!(f, "within {} after step {after}", format_duration(*within)),
                }
            }
            Check::Stale { client, after, old, new, at_most, at_least, cause, counts } => {
                write!(f, "client {client} ")?;
                match (at_most, at_least) {
                    (Some(m), Some(l)) => {
                        write!(f, "keeps reaching {old} for {} to {} after step {after}, then {new}", format_duration(*l), format_duration(*m))?
                    }
                    (Some(m), None) => write!(f, "moves from {old} to {new} within {} after step {after}", format_duration(*m))?,
                    (None, Some(l)) => write!(f, "still reaches {old} at least {} after step {after}", format_duration(*l))?,
                    (None, None) => write!(f, "after step {after}, between {old} and {new}")?,
                }
                if let Some(c) = cause {
                    write!(f, " (cause: {})", c.name())?;
                }
                if let Some(n) = counts.dns_queries_after {
                    write!(f, ", {n} DNS quer{} after it", if n == 1 { "y" } else { "ies" })?;
                }
                if let Some(n) = counts.min_dns_queries_after {
                    write!(f, ", at least {n} DNS quer{} after it before reaching {new}", if n == 1 { "y" } else { "ies" })?;
                }
                if let Some(n) = counts.new_connections_to_old {
                    write!(f, ", {n} new connection(s) to {old}")?;
                }
                if let Some(t) = counts.ttl {
                    write!(f, ", served TTL {}", format_duration(t))?;
                }
                Ok(())
            }
            Check::FirstRequest { service, target, within, at_least, family, from } => {
                write!(f, "the first request of service {service} reaches target {target}")?;
                if let Some(fam) = family {
                    write!(f, " over {}", if *fam == nslab::host::listeners::Family::V4 { "IPv4" } else { "IPv6" })?;
                }
                let anchor = from.describe();
                match (at_least, within) {
                    (Some(l), Some(w)) => write!(f, " between {} and {} after {anchor}", format_duration(*l), format_duration(*w)),
                    (None, Some(w)) => write!(f, " within {} after {anchor}", format_duration(*w)),
                    (Some(l), None) => write!(f, " no sooner than {} after {anchor}", format_duration(*l)),
                    (None, None) => Ok(()),
                }
            }
            Check::Diagnosis { service, cause } => write!(f, "the diagnosis of service {service} names the cause {}", cause.name()),
            Check::NoLine { service, matches, after, duration } => {
                write!(f, "service {service} prints no line matching {:?} for {} after step {after}", matches.as_str(), format_duration(*duration))
            }
        }
    }
}

fn kind_keys(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "exit" => &["service", "code", "success"],
        "output" => &["service", "stream", "matches", "not_matches"],
        "bind-error" => &["service", "errno", "message"],
        "listening" => &["service", "host", "on", "exactly"],
        "connect" => &["from", "to", "family", "result", "timeout"],
        "line-within" => &["service", "matches", "after", "within", "min"],
        "no-line" => &["service", "matches", "after", "for"],
        "stale" => {
            &["client", "after", "old", "new", "at_most", "at_least", "cause", "dns_queries_after", "min_dns_queries_after", "new_connections_to_old", "ttl"]
        }
        "first-request" => &["service", "target", "within", "at_least", "family", "from"],
        "diagnosis" => &["service", "cause"],
        _ => return None,
    })
}

/// Reads `[[expect]]`.
pub(crate) fn decode_expectations(doc: &Doc<'_>, items: Vec<Val<'_>>, known: &Known) -> Result<Vec<Expectation>> {
    let mut out = Vec::new();
    for (i, v) in items.into_iter().enumerate() {
        let mut t = Table::new(doc, format!("expectation {}", i + 1), v, "a table written [[expect]]")?;
        let kind = t.req_str("kind", &format!("\"<one of {KINDS}>\""))?;
        let keys = kind_keys(&kind.value)
            .ok_or_else(|| t.bad("kind", &kind.span, format!("{:?} is not a kind of expectation; expected one of {KINDS}", kind.value)))?;
        t.what = format!("expectation {} ({})", i + 1, kind.value);
        let allowed: Vec<&str> = COMMON_KEYS.iter().chain(keys).copied().collect();
        t.check_keys(&allowed)?;
        let name = t.str("name")?.map(|s| s.value);
        let profiles = match t.str_list("profiles", "an array of profile names such as [\"ipv6-only\"]")? {
            None => None,
            Some((span, list)) => {
                if list.is_empty() {
                    return Err(t.bad("profiles", &span, "the array is empty; expected at least one profile of the scenario"));
                }
                Some(list.iter().map(|s| profile_of_scenario(&t, s, known)).collect::<Result<Vec<_>>>()?)
            }
        };
        let after_span = t.key_span("after");
        let check = decode_check(&mut t, &kind.value, known)?;
        check_step_profiles(&t, after_span.as_ref(), &check, profiles.as_deref(), known)?;
        out.push(Expectation { name, profiles, check });
    }
    Ok(out)
}

/// An expectation timed from a step that runs only in some profiles must be limited to those.
fn check_step_profiles(t: &Table<'_, '_>, span: Option<&std::ops::Range<usize>>, check: &Check, mine: Option<&[Profile]>, known: &Known) -> Result<()> {
    let after = match check {
        Check::LineWithin { after, .. } | Check::NoLine { after, .. } | Check::Stale { after, .. } => after,
        _ => return Ok(()),
    };
    let Some(step_ps) = known.step_profiles.get(after) else { return Ok(()) };
    let mine = mine.unwrap_or(&known.profiles);
    if let Some(p) = mine.iter().find(|p| !step_ps.contains(p)) {
        let names: Vec<&str> = step_ps.iter().map(|p| p.name()).collect();
        let what = format!(
            "step {after:?} runs only in {}, but {} is checked in {p} too; expected profiles = [{}] on the expectation (or the profile on the step)",
            names.join(", "),
            t.what,
            names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
        );
        return Err(match span {
            Some(sp) => t.doc.err(sp, what),
            None => t.doc.err(&t.span, what),
        });
    }
    Ok(())
}

pub(crate) fn profile_of_scenario(t: &Table<'_, '_>, s: &Str, known: &Known) -> Result<Profile> {
    let p = Profile::from_str(&s.value).map_err(|e| t.bad("profiles", &s.span, e))?;
    if !known.profiles.contains(&p) {
        let have: Vec<&str> = known.profiles.iter().map(|p| p.name()).collect();
        return Err(t.bad("profiles", &s.span, format!("profile {:?} is not among the scenario's profiles; expected one of {}", s.value, have.join(", "))));
    }
    Ok(p)
}

fn decode_check(t: &mut Table<'_, '_>, kind: &str, known: &Known) -> Result<Check> {
    let service = |t: &mut Table<'_, '_>| -> Result<String> {
        let s = t.req_str("service", "\"<a declared service>\"")?;
        refer(t, "service", &s, "service", &known.services)
    };
    let step = |t: &mut Table<'_, '_>| -> Result<String> {
        let s = t.req_str("after", "\"<the name of a timeline step>\"")?;
        refer(t, "after", &s, "step", &known.steps)
    };
    let required_regex = |t: &mut Table<'_, '_>, key: &str| -> Result<regex::Regex> {
        let s = t.req_str(key, "\"<regex>\"")?;
        regex(t, key, &s)
    };
    Ok(match kind {
        "exit" => {
            let service = service(t)?;
            let code_span = t.key_span("code");
            let code = t.int("code", 0..=255)?.map(|n| n as i32);
            let success = t.bool("success")?;
            if let (Some(c), Some(s), Some(span)) = (code, success, code_span) {
                if (c == 0) != s {
                    return Err(t.bad("code", &span, format!("code = {c} contradicts success = {s}; expected one of them, or values that agree")));
                }
            }
            Check::Exit { service, code, success }
        }
        "output" => {
            let service = service(t)?;
            let stream = match t.str("stream")? {
                None => OutputStream::Both,
                Some(s) => match s.value.as_str() {
                    "stdout" => OutputStream::Stdout,
                    "stderr" => OutputStream::Stderr,
                    "both" => OutputStream::Both,
                    other => return Err(t.bad("stream", &s.span, format!("{other:?} is not a stream; expected \"stdout\", \"stderr\" or \"both\""))),
                },
            };
            let matches = opt_regex(t, "matches")?;
            let not_matches = opt_regex(t, "not_matches")?;
            if matches.is_none() && not_matches.is_none() {
                return Err(t.doc.err(&t.span, format!("{} has neither matches nor not_matches; expected at least one of them", t.what)));
            }
            Check::Output { service, stream, matches, not_matches }
        }
        "bind-error" => {
            let service = service(t)?;
            let v = t.required("errno", "\"EADDRINUSE\" (a name or a number)")?;
            let errno = match v.get_ref() {
                DeValue::String(s) => Errno::from_name(s),
                other => match int_of(other) {
                    Some(Some(n)) => Errno::from_number(n),
                    _ => return Err(t.wrong("errno", &v, "an errno name such as \"EADDRINUSE\" or a number")),
                },
            }
            .map_err(|e| t.bad("errno", &v.span(), e))?;
            Check::BindError { service, errno, message: t.str("message")?.map(|s| s.value) }
        }
        "listening" => {
            let target = match (t.str("service")?, t.str("host")?) {
                (Some(_), Some(h)) => return Err(t.doc.err(&h.span, format!("{} has both service and host; expected only one of them", t.what))),
                (None, None) => {
                    return Err(t.doc.err(&t.span, format!("{} has neither service nor host; expected service = \"<service>\" or host = \"<host>\"", t.what)))
                }
                (Some(s), None) => ListenTarget::Service(refer(t, "service", &s, "service", &known.services)?),
                (None, Some(h)) => ListenTarget::Host(refer(t, "host", &h, "host", &known.hosts)?),
            };
            let (span, list) = t
                .str_list("on", "an array of sockets such as [\"tcp:0.0.0.0:8000\", \"tcp:[::]:8000 v6only\"]")?
                .ok_or_else(|| t.missing("on", "[\"tcp:[::]:8000\"]"))?;
            let exactly = t.bool("exactly")?.unwrap_or(false);
            if list.is_empty() && !exactly {
                return Err(t.bad("on", &span, "the array is empty; expected at least one socket (or exactly = true to say nothing listens)"));
            }
            let on = list.iter().map(|s| ListenSpec::parse(&s.value).map_err(|e| t.bad("on", &s.span, e))).collect::<Result<Vec<_>>>()?;
            Check::Listening { target, on, exactly }
        }
        "connect" => {
            let from_s = t.req_str("from", "\"<a declared host>\"")?;
            let from = refer(t, "from", &from_s, "host", &known.hosts)?;
            let to_s = t.req_str("to", "\"web:8000\"")?;
            let to = ConnectTarget::parse(&to_s.value).map_err(|e| t.bad("to", &to_s.span, e))?;
            if let ConnectTarget::Host { host, .. } = &to {
                let h = Str { value: host.clone(), span: to_s.span.clone() };
                refer(t, "to", &h, "host", &known.hosts)?;
            }
            let family = match t.str("family")? {
                None => None,
                Some(s) => {
                    if matches!(to, ConnectTarget::Addr { .. }) {
                        return Err(t.bad(
                            "family",
                            &s.span,
                            format!("family is given with an address in to = {:?}; expected family only with a host name such as \"web:8000\"", to_s.value),
                        ));
                    }
                    Some(match s.value.as_str() {
                        "ipv4" => ConnectFamily::Ipv4,
                        "ipv6" => ConnectFamily::Ipv6,
                        "link-local" => ConnectFamily::LinkLocal,
                        other => return Err(t.bad("family", &s.span, format!("{other:?} is not a family; expected \"ipv4\", \"ipv6\" or \"link-local\""))),
                    })
                }
            };
            let r = t.req_str("result", "\"ok\", \"timeout\" or an errno name such as \"ECONNREFUSED\"")?;
            let result = match r.value.as_str() {
                "ok" => ConnectResult::Ok,
                "timeout" => ConnectResult::Timeout,
                other => ConnectResult::Errno(Errno::from_name(other).map_err(|e| t.bad("result", &r.span, format!("{e}; or \"ok\" or \"timeout\"")))?),
            };
            Check::Connect { from, to, family, result, timeout: t.positive_duration("timeout")?.unwrap_or(DEFAULT_CONNECT_TIMEOUT) }
        }
        "line-within" => {
            let service = service(t)?;
            let matches = required_regex(t, "matches")?;
            let after = step(t)?;
            let within_span = t.key_span("within");
            let within = t.positive_duration("within")?.ok_or_else(|| t.missing("within", "\"6s\""))?;
            let min = t.duration("min")?;
            if let (Some(m), Some(span)) = (min, within_span) {
                if m >= within {
                    return Err(t.bad(
                        "within",
                        &span,
                        format!("{} is not after min = {}; expected within > min", format_duration(within), format_duration(m)),
                    ));
                }
            }
            Check::LineWithin { service, matches, after, within, min }
        }
        "no-line" => {
            let service = service(t)?;
            let matches = required_regex(t, "matches")?;
            let after = step(t)?;
            let duration = t.positive_duration("for")?.ok_or_else(|| t.missing("for", "\"20s\""))?;
            Check::NoLine { service, matches, after, duration }
        }
        "stale" => {
            let c = t.req_str("client", "\"<a declared host>\"")?;
            let client = refer(t, "client", &c, "host", &known.hosts)?;
            let after = step(t)?;
            let target = |t: &mut Table<'_, '_>, key: &str| -> Result<String> {
                let s = t.req_str(key, "\"<a declared target>\"")?;
                refer(t, key, &s, "target", &known.targets)
            };
            let old = target(t, "old")?;
            let new = target(t, "new")?;
            let at_most = t.positive_duration("at_most")?;
            let at_least = t.duration("at_least")?;
            let checked = ["at_most", "at_least", "cause", "dns_queries_after", "min_dns_queries_after", "new_connections_to_old", "ttl"];
            if at_most.is_none() && at_least.is_none() && !checked[2..].iter().any(|k| t.has(k)) {
                return Err(t.doc.err(&t.span.clone(), format!("{} has none of {}; expected at least one of them", t.what, checked.join(", "))));
            }
            let cause = match t.str("cause")? {
                None => None,
                Some(s) => Some(match StaleCause::ALL.into_iter().find(|c| c.name() == s.value) {
                    Some(c) => c,
                    None => {
                        let names: Vec<String> = StaleCause::ALL.iter().map(|c| format!("{:?}", c.name())).collect();
                        return Err(t.bad("cause", &s.span, format!("{:?} is not a cause; expected one of {}", s.value, names.join(", "))));
                    }
                }),
            };
            let count = |t: &mut Table<'_, '_>, k: &str| t.int(k, 0..=1_000_000).map(|v| v.map(|v| v as u64));
            let counts = StaleCounts {
                dns_queries_after: count(t, "dns_queries_after")?,
                min_dns_queries_after: count(t, "min_dns_queries_after")?,
                new_connections_to_old: count(t, "new_connections_to_old")?,
                ttl: t.duration("ttl")?,
            };
            Check::Stale { client, after, old, new, at_most, at_least, cause, counts }
        }
        "first-request" => {
            let service = service(t)?;
            let ts = t.req_str("target", "\"<a declared target>\"")?;
            let target = refer(t, "target", &ts, "target", &known.targets)?;
            let within = t.positive_duration("within")?;
            let at_least = t.duration("at_least")?;
            let family = match t.str("family")? {
                None => None,
                Some(s) => Some(match s.value.as_str() {
                    "ipv4" => nslab::host::listeners::Family::V4,
                    "ipv6" => nslab::host::listeners::Family::V6,
                    other => return Err(t.bad("family", &s.span, format!("{other:?} is not a family; expected \"ipv4\" or \"ipv6\""))),
                }),
            };
            let from = match t.str("from")? {
                None => Anchor::Start,
                Some(s) => match s.value.as_str() {
                    "start" => Anchor::Start,
                    "dns-query" => Anchor::DnsQuery,
                    other => return Err(t.bad("from", &s.span, format!("{other:?} is not a starting point; expected \"start\" or \"dns-query\""))),
                },
            };
            if within.is_none() && at_least.is_none() && family.is_none() {
                return Err(t.doc.err(&t.span.clone(), format!("{} has none of within, at_least, family; expected at least one of them", t.what)));
            }
            Check::FirstRequest { service, target, within, at_least, family, from }
        }
        "diagnosis" => {
            let svc = t.req_str("service", "\"<a declared service>\"")?;
            let service = refer(t, "service", &svc, "service", &known.services)?;
            let c = t.req_str("cause", "\"link-local-without-scope\"")?;
            let cause = Cause::ALL
                .into_iter()
                .find(|x| x.name() == c.value)
                .ok_or_else(|| t.bad("cause", &c.span, format!("{:?} is not a cause; expected one of {}", c.value, Cause::ALL.map(|x| x.name()).join(", "))))?;
            Check::Diagnosis { service, cause }
        }
        _ => unreachable!("kinds are checked by kind_keys"),
    })
}
