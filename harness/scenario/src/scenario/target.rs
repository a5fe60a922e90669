//! `[targets]`: where requests are counted: HTTP endpoints the harness itself serves on lab
//! hosts, or a real server (a service) whose access-log lines are read back.

use super::decode::{Doc, Result, Table, Val};
use super::known::{refer, regex, Known};

/// A target: a built-in HTTP endpoint, or a service whose output lines record its requests.
#[derive(Debug, Clone)]
pub struct TargetDef {
    /// The target's name (what a built-in one answers, and how expectations refer to it).
    pub name: String,
    /// What serves it.
    pub kind: TargetKind,
}

/// What serves a target.
#[derive(Debug, Clone)]
pub enum TargetKind {
    /// Served by nslab: answers every request with the target's name, records who asked and on
    /// which connection.
    Builtin {
        /// The host it is served on.
        host: String,
        /// TCP port, on every address of the host (`[::]` with IPv4 too).
        port: u16,
        /// Whether connections are kept alive between requests (HTTP/1.1 default); `false`
        /// closes each connection after its response.
        keepalive: bool,
    },
    /// A real server (a service): each output line matching `line` is one request; the regex
    /// names the client with a group `client` (an address, optionally with `:port` or
    /// `[addr]:port`), and optionally `port` and `conn` (a connection number).
    Log {
        /// The service.
        service: String,
        /// The access-log line.
        line: regex::Regex,
        /// A line the server prints when it accepts a connection (groups as in `line`): the
        /// connection's real opening time. Without it a connection counts as opened at its
        /// first request.
        connection: Option<regex::Regex>,
    },
}

const TARGET_KEYS: &[&str] = &["host", "port", "keepalive", "service", "line", "connection"];

/// Reads `[targets]`, in file order.
pub(crate) fn decode_targets(doc: &Doc<'_>, v: Val<'_>, known: &Known) -> Result<Vec<TargetDef>> {
    let mut t = Table::new(doc, "[targets]", v, "a table of targets such as [targets.blue]")?;
    let mut out = Vec::new();
    for (name, v) in t.take_all() {
        nslab::lab::spec::check_name("target", &name.value).map_err(|e| doc.err(&name.span, e))?;
        let mut tt = Table::new(doc, format!("target {:?}", name.value), v, "a table such as [targets.blue] with host and port")?;
        tt.check_keys(TARGET_KEYS)?;
        if !tt.has("service") && tt.has("connection") {
            let span = tt.key_span("connection").expect("has it");
            return Err(doc.err(&span, format!("{} has connection without service; expected connection only with service and line (a real server)", tt.what)));
        }
        if tt.has("service") {
            for k in ["host", "port", "keepalive"] {
                if let Some(span) = tt.key_span(k) {
                    return Err(
                        doc.err(&span, format!("{} has both service and {k}; expected service and line (a real server) or host and port (built in)", tt.what))
                    );
                }
            }
            let svc = tt.req_str("service", "\"<a declared service>\"")?;
            let service = super::known::refer_service(&tt, "service", &svc, known)?;
            known.check_service_profiles(&tt, None, &|_| "a target's service in every profile of the scenario (targets have no profiles)".to_string())?;
            let l = tt.req_str("line", "\"<regex with a (?P<client>...) group>\"")?;
            let line = regex(&tt, "line", &l)?;
            if !line.capture_names().any(|n| n == Some("client")) {
                return Err(tt.bad("line", &l.span, "the regex has no group named client; expected one such as '^(?P<client>\\S+) '"));
            }
            let connection = match tt.str("connection")? {
                None => None,
                Some(c) => {
                    let re = regex(&tt, "connection", &c)?;
                    if !re.capture_names().any(|n| n == Some("client")) {
                        return Err(tt.bad(
                            "connection",
                            &c.span,
                            "the regex has no group named client; expected one such as '^connection from (?P<client>\\S+)'",
                        ));
                    }
                    Some(re)
                }
            };
            out.push(TargetDef { name: name.value, kind: TargetKind::Log { service, line, connection } });
            continue;
        }
        let host_s = tt.req_str("host", "\"<a declared host>\"")?;
        let host = refer(&tt, "host", &host_s, "host", &known.hosts)?;
        let port = tt.int("port", 1..=65535)?.ok_or_else(|| tt.missing("port", "8080"))? as u16;
        let keepalive = tt.bool("keepalive")?.unwrap_or(true);
        out.push(TargetDef { name: name.value, kind: TargetKind::Builtin { host, port, keepalive } });
    }
    Ok(out)
}
