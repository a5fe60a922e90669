//! `[targets]`: HTTP endpoints the harness itself serves on lab hosts, recording every request.

use super::decode::{Doc, Result, Table, Val};
use super::known::{refer, Known};

/// A built-in HTTP target: answers every request with its name, records who asked and on which
/// connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetDef {
    /// The target's name (what it answers, and how expectations refer to it).
    pub name: String,
    /// The host it is served on.
    pub host: String,
    /// TCP port, on every address of the host (`[::]` with IPv4 too).
    pub port: u16,
    /// Whether connections are kept alive between requests (HTTP/1.1 default); `false` closes
    /// each connection after its response.
    pub keepalive: bool,
}

const TARGET_KEYS: &[&str] = &["host", "port", "keepalive"];

/// Reads `[targets]`, in file order.
pub(crate) fn decode_targets(doc: &Doc<'_>, v: Val<'_>, known: &Known) -> Result<Vec<TargetDef>> {
    let mut t = Table::new(doc, "[targets]", v, "a table of targets such as [targets.blue]")?;
    let mut out = Vec::new();
    for (name, v) in t.take_all() {
        crate::spec::check_name("target", &name.value).map_err(|e| doc.err(&name.span, e))?;
        let mut tt = Table::new(doc, format!("target {:?}", name.value), v, "a table such as [targets.blue] with host and port")?;
        tt.check_keys(TARGET_KEYS)?;
        let host_s = tt.req_str("host", "\"<a declared host>\"")?;
        let host = refer(&tt, "host", &host_s, "host", &known.hosts)?;
        let port = tt.int("port", 1..=65535)?.ok_or_else(|| tt.missing("port", "8080"))? as u16;
        let keepalive = tt.bool("keepalive")?.unwrap_or(true);
        out.push(TargetDef { name: name.value, host, port, keepalive });
    }
    Ok(out)
}
