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

/// DNS requests: what is typed after `nslab dns LAB` (these doc comments are its help) and what
/// travels to the daemon.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "what", rename_all = "kebab-case")]
pub enum DnsRequest {
    /// Replace the records of a name and type: `set app A 192.0.2.7`, `set app host server`.
    Set {
        /// The name (relative to the scenario's zone, or whole).
        name: String,
        /// A, AAAA, CNAME, TXT, SRV, PTR, NS, MX, or `host` (a lab host's A and AAAA).
        rtype: String,
        /// The value, as in a scenario file.
        value: String,
        /// TTL in seconds (default 60).
        #[arg(long)]
        ttl: Option<u32>,
    },
    /// Point a CNAME at another target, atomically (keeps its TTL).
    Swap {
        /// The CNAME's name.
        name: String,
        /// The new target.
        target: String,
    },
    /// Delete a name's records (of one type, or all).
    Delete {
        /// The name.
        name: String,
        /// Only this type.
        rtype: Option<String>,
    },
    /// Change the TTL of a name's records of one type.
    Ttl {
        /// The name.
        name: String,
        /// The type.
        rtype: String,
        /// Seconds.
        ttl: u32,
    },
    /// Make the server misbehave: servfail, nxdomain, refused, drop, truncate, tcp-only, delay.
    Fault {
        /// The fault.
        fault: String,
        /// For one name, or `*.SUFFIX` for a name and all below it (default: every query).
        scope: Option<String>,
        /// For `delay`: how long (500ms, 2s).
        #[arg(long, value_parser = nslab_scenario::scenario::parse_duration)]
        delay: Option<std::time::Duration>,
    },
    /// Switch every fault off.
    Clear,
    /// Every record of every zone.
    Show,
    /// The query log: time, client, transport, question, answer.
    Log {
        /// Only queries for this name.
        #[arg(long)]
        name: Option<String>,
        /// Skip this many entries (for clients that read the log in turns).
        #[arg(skip)]
        since: usize,
        /// Keep printing queries as they come (Ctrl-C ends it).
        #[arg(long, short = 'f')]
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
