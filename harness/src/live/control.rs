//! The daemon's control protocol: one JSON request per line on its Unix socket, answered by
//! JSON lines (one reply, or a stream of log lines for `dns log --follow`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{LabDir, LiveError};

/// A request to a lab's daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// What runs: services with their state.
    Status,
    /// Tear the lab down and exit.
    Down,
    /// Change or read the DNS server.
    Dns(DnsRequest),
}

/// DNS requests, as typed after `nslab dns LAB`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "kebab-case")]
pub enum DnsRequest {
    /// Replace the records of one name and type (`host` for a lab host's A and AAAA).
    Set {
        /// Owner name: relative to the zone, or absolute.
        name: String,
        /// Record type, or `host`.
        rtype: String,
        /// The value, as in a scenario file.
        value: String,
        /// TTL, seconds (default 60).
        ttl: Option<u32>,
    },
    /// Point a CNAME elsewhere, atomically, keeping its TTL.
    Swap {
        /// Owner name.
        name: String,
        /// New target.
        target: String,
    },
    /// Delete a name's records (of one type, or all).
    Delete {
        /// Owner name.
        name: String,
        /// Only this type.
        rtype: Option<String>,
    },
    /// Change the TTL of a name's records of one type.
    Ttl {
        /// Owner name.
        name: String,
        /// Record type.
        rtype: String,
        /// New TTL, seconds.
        ttl: u32,
    },
    /// Switch a fault on: for the whole server, one name, or a suffix (`*.example.test`).
    Fault {
        /// servfail, nxdomain, refused, drop, truncate, tcp-only, delay.
        fault: String,
        /// For `delay`: milliseconds.
        delay_ms: Option<u64>,
        /// Name or `*.suffix`; `None`: every query.
        scope: Option<String>,
    },
    /// Switch every fault off.
    Clear,
    /// Every record of every zone.
    Show,
    /// The query log (entries after `since`, the index of the next one to read).
    Log {
        /// Only queries for this name (absolute, no trailing dot).
        name: Option<String>,
        /// Skip this many entries.
        since: usize,
        /// Keep streaming new entries until the client goes away.
        follow: bool,
    },
}

/// A reply line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    /// Whether the request was carried out.
    pub ok: bool,
    /// What to print (an error when not ok).
    pub text: String,
    /// For streams: whether more lines follow.
    #[serde(default)]
    pub more: bool,
}

impl Reply {
    /// A success.
    pub fn ok(text: impl Into<String>) -> Reply {
        Reply { ok: true, text: text.into(), more: false }
    }

    /// A failure.
    pub fn err(text: impl Into<String>) -> Reply {
        Reply { ok: false, text: text.into(), more: false }
    }
}

/// Sends `req` to the daemon of `lab` and hands every reply line to `each` until the last.
///
/// # Errors
/// [`LiveError::Dead`] or [`LiveError::NoSuchLab`] when there is no daemon to ask;
/// [`LiveError::Refused`] with the daemon's text when it refused.
pub fn request(lab: &LabDir, req: &Request, timeout: Option<Duration>, mut each: impl FnMut(&Reply)) -> Result<(), LiveError> {
    let st = lab.live_state()?;
    let path = lab.socket();
    let mut stream = UnixStream::connect(&path).map_err(LiveError::io(format!("connect to the daemon of lab {} ({})", st.name, path.display())))?;
    stream.set_read_timeout(timeout).map_err(LiveError::io("set a timeout"))?;
    let mut line = serde_json::to_string(req).map_err(|e| LiveError::Refused(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(LiveError::io("send the request"))?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut buf = String::new();
        let n = reader.read_line(&mut buf).map_err(LiveError::io(format!("read the reply of the daemon of lab {}", st.name)))?;
        if n == 0 {
            return Err(LiveError::Refused(format!("the daemon of lab {} closed the connection without a reply (see {})", st.name, lab.log().display())));
        }
        let reply: Reply = serde_json::from_str(&buf).map_err(|e| LiveError::Refused(format!("unreadable reply from the daemon: {e}")))?;
        if !reply.ok {
            return Err(LiveError::Refused(reply.text));
        }
        each(&reply);
        if !reply.more {
            return Ok(());
        }
    }
}
