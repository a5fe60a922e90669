//! `kind = "connect"`: a TCP connect from a host to a target has a given result.

use std::fmt;
use std::time::Duration;

use crate::scenario::decode::{Result, Str, Table};
use crate::scenario::duration::format_duration;
use crate::scenario::expect::spec::KindSpec;
use crate::scenario::known::{refer, Known};
use crate::scenario::values::{ConnectTarget, Errno};

/// How long a `connect` expectation waits for the connection, unless `timeout` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A TCP connect from a host to a target has this result.
#[derive(Debug, Clone)]
pub struct ConnectCheck {
    /// The host connecting.
    pub from: String,
    /// Where to.
    pub to: ConnectTarget,
    /// Which address of a named host; `None`: its first address (IPv4 if it has one).
    pub family: Option<ConnectFamily>,
    /// The outcome that must be seen.
    pub result: ConnectResult,
    /// How long a connect may take.
    pub timeout: Duration,
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

impl KindSpec for ConnectCheck {
    const NAME: &'static str = "connect";
    const KEYS: &'static [&'static str] = &["from", "to", "family", "result", "timeout"];

    fn decode(t: &mut Table<'_, '_>, known: &Known) -> Result<Self> {
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
        Ok(ConnectCheck { from, to, family, result, timeout: t.positive_duration("timeout")?.unwrap_or(DEFAULT_CONNECT_TIMEOUT) })
    }
}

impl fmt::Display for ConnectCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ConnectCheck { from, to, family, result, timeout } = self;
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
}
