//! Built-in HTTP targets: served by the harness inside a lab host, answering their name and
//! recording every request with the connection it came on and the service that made it.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use http_body_util::Full;
use hyper::{Request, Response};
use serde::Serialize;

use crate::runner::attribution::{Attribution, Clients, Owner};
use crate::runner::clock::LabClock;
use crate::runner::error::Error;
use crate::scenario::{TargetDef, TargetKind};
use nslab::host::handle::Host;
use nslab::host::process::Process;

/// One request a target received.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// Lab time of the request, microseconds.
    pub at_us: u64,
    /// The connection it came on (numbered from 1 per target, in accept order; 0 when the
    /// target's log does not tell connections apart).
    pub conn: u64,
    /// Lab time the connection was accepted, microseconds.
    pub conn_at_us: u64,
    /// The client's address and port (IPv4 peers of a `[::]` socket shown as IPv4).
    pub client: SocketAddr,
    /// The request path.
    pub path: String,
    /// The client service whose process made the connection (built-in targets; see
    /// [`crate::runner::attribution`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The process of that service that held the connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// How the request was attributed: `service`, or `host-only` for a request read from a
    /// server's log (only the peer's address is known), or `no-service`.
    pub attributed: Attribution,
}

impl RequestRecord {
    /// Lab time of the request.
    pub fn at(&self) -> Duration {
        Duration::from_micros(self.at_us)
    }

    /// Lab time its connection was opened.
    pub fn conn_at(&self) -> Duration {
        Duration::from_micros(self.conn_at_us)
    }
}

/// A running target and its request log.
#[derive(Clone)]
pub struct Target {
    /// Its definition.
    pub def: TargetDef,
    source: Source,
    /// The trial's lab clock: requests are timed in lab time (program time in a scaled trial).
    clock: LabClock,
}

#[derive(Clone)]
enum Source {
    /// Served by the harness: the log the server writes.
    Builtin { log: Arc<Mutex<Vec<RequestRecord>>>, task: Arc<tokio::task::JoinHandle<()>> },
    /// A real server: its output lines, once the service has started.
    Log { line: regex::Regex, connection: Option<regex::Regex>, proc: Arc<Mutex<Option<Process>>> },
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Source::Builtin { task, .. } = &self.source {
            if Arc::strong_count(task) == 1 {
                task.abort();
            }
        }
    }
}

/// The address in an access-log field: `a.b.c.d`, `::1`, `[::1]:80`, `a.b.c.d:80`, `::ffff:a.b.c.d`.
fn parse_client(text: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some((sa.ip().to_canonical(), Some(sa.port())));
    }
    // `[192.0.2.30]:4000`: brackets around an IPv4 address, as some servers print every peer.
    if let Some((addr, port)) = text.strip_prefix('[').and_then(|t| t.split_once("]:")) {
        return Some((addr.parse::<IpAddr>().ok()?.to_canonical(), Some(port.parse().ok()?)));
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().ok().map(|ip| (ip.to_canonical(), None))
}

/// The connection a log line names: client address, port, connection number (0 when absent).
fn conn_key(c: &regex::Captures<'_>) -> Option<(IpAddr, u16, u64)> {
    let (ip, port_in_client) = c.name("client").and_then(|m| parse_client(m.as_str()))?;
    let port = c.name("port").and_then(|m| m.as_str().parse().ok()).or(port_in_client).unwrap_or(0);
    let conn = c.name("conn").and_then(|m| m.as_str().parse::<u64>().ok()).unwrap_or(0);
    Some((ip, port, conn))
}

/// Requests read from a server's output lines (lab time of each line's arrival). A line matching
/// `connection` opens a connection at its own time (a later one with the same address and port
/// is a new connection: the port was reused); otherwise a connection is first seen at its first
/// request.
fn from_lines(line: &regex::Regex, connection: Option<&regex::Regex>, lines: &[nslab::host::output::Line]) -> Vec<RequestRecord> {
    let mut open: std::collections::HashMap<(IpAddr, u16, u64), (u64, Duration)> = std::collections::HashMap::new();
    let mut next = 1u64;
    let mut out = Vec::new();
    for l in lines {
        if let Some(key) = connection.and_then(|re| re.captures(&l.text)).and_then(|c| conn_key(&c)) {
            open.insert(key, (next, l.at));
            next += 1;
            continue;
        }
        let Some(key) = line.captures(&l.text).and_then(|c| conn_key(&c)) else {
            continue;
        };
        // Without a port or a connection number, connections cannot be told apart: conn 0.
        let known = key.1 != 0 || key.2 != 0;
        let (id, opened) = if known {
            *open.entry(key).or_insert_with(|| {
                next += 1;
                (next - 1, l.at)
            })
        } else {
            (0, l.at)
        };
        out.push(RequestRecord {
            at_us: l.at.as_micros() as u64,
            conn: id,
            conn_at_us: opened.as_micros() as u64,
            client: SocketAddr::new(key.0, key.1),
            path: String::new(),
            service: None,
            pid: None,
            attributed: Attribution::HostOnly,
        });
    }
    out
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

impl Target {
    /// A target read from a service's output; it counts requests once [`Target::attach`] gives
    /// it the service's process.
    pub fn from_log(def: TargetDef, clock: LabClock) -> Target {
        let (line, connection) = match &def.kind {
            TargetKind::Log { line, connection, .. } => (line.clone(), connection.clone()),
            TargetKind::Builtin { .. } => (regex::Regex::new("$^").expect("valid"), None),
        };
        Target { def, source: Source::Log { line, connection, proc: Arc::new(Mutex::new(None)) }, clock }
    }

    /// The service this target reads, if it is a log target.
    pub fn service(&self) -> Option<&str> {
        match &self.def.kind {
            TargetKind::Log { service, .. } => Some(service),
            TargetKind::Builtin { .. } => None,
        }
    }

    /// Gives a log target its (re)started service process.
    pub fn attach(&self, p: &Process) {
        if let Source::Log { proc, .. } = &self.source {
            *proc.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.clone());
        }
    }

    /// Binds `[::]:port` (IPv4 too) in `host` and serves until dropped. Each connection is
    /// attributed to the service of `clients` that made it before its first request is answered.
    ///
    /// # Errors
    /// The bind error.
    pub async fn start(def: TargetDef, host: &Host, clock: LabClock, clients: Arc<Clients>) -> Result<Target, Error> {
        let TargetKind::Builtin { port, keepalive, .. } = def.kind else {
            return Ok(Target::from_log(def, clock));
        };
        let sock = host.socket(socket2::Domain::IPV6, socket2::Type::STREAM, None).await?;
        let bind = (|| {
            sock.set_only_v6(false)?;
            sock.set_reuse_address(true)?;
            sock.set_nonblocking(true)?;
            sock.bind(&SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)).into())?;
            sock.listen(1024)?;
            tokio::net::TcpListener::from_std(sock.into())
        })();
        let listener = bind.map_err(|source| Error::TargetBind { target: def.name.clone(), port, host: host.name().to_owned(), source })?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (name, log2, target_host, epoch) = (def.name.clone(), log.clone(), host.clone(), clock.clone());
        let task = tokio::spawn(async move {
            let mut conn = 0u64;
            while let Ok((stream, peer)) = listener.accept().await {
                conn += 1;
                let (id, conn_at, peer) = (conn, epoch.now(), canonical(peer));
                let (name, log, clients, target_host, epoch) = (name.clone(), log2.clone(), clients.clone(), target_host.clone(), epoch.clone());
                tokio::spawn(async move {
                    // The owner is looked up from the accept on, while the request arrives; each
                    // answer waits for it (the client waits for its answer, so its socket is still
                    // open while it is looked up), and the request is timed when it arrived.
                    let local = stream.local_addr();
                    let lookup = tokio::spawn(async move {
                        match local {
                            Ok(local) => clients.owner(&target_host, local, peer).await,
                            Err(_) => Owner { by: Attribution::NoService, ..Owner::default() },
                        }
                    });
                    let owner = async move { lookup.await.unwrap_or(Owner { by: Attribution::NoService, ..Owner::default() }) }.boxed().shared();
                    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (at, path) = (epoch.now(), req.uri().path().to_string());
                        let (owner, log, name) = (owner.clone(), log.clone(), name.clone());
                        async move {
                            let owner = owner.await;
                            let rec = RequestRecord {
                                at_us: at.as_micros() as u64,
                                conn: id,
                                conn_at_us: conn_at.as_micros() as u64,
                                client: peer,
                                path,
                                service: owner.service,
                                pid: owner.pid,
                                attributed: owner.by,
                            };
                            log.lock().unwrap_or_else(|e| e.into_inner()).push(rec);
                            let mut resp = Response::new(Full::new(Bytes::from(format!("{name}\n"))));
                            if !keepalive {
                                resp.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().keep_alive(keepalive).serve_connection(io, svc).await;
                });
            }
        });
        Ok(Target { def, source: Source::Builtin { log, task: Arc::new(task) }, clock })
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        match &self.source {
            Source::Builtin { log, .. } => {
                // Recorded once attributed, which may be out of arrival order across connections.
                let mut all = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
                all.sort_by_key(|r| r.at_us);
                all
            }
            Source::Log { line, connection, proc } => {
                let p = proc.lock().unwrap_or_else(|e| e.into_inner()).clone();
                p.map(|p| from_lines(line, connection.as_ref(), &self.clock.lines(&p))).unwrap_or_default()
            }
        }
    }

    /// Requests from any of `clients` (a host's addresses).
    pub fn requests_from(&self, clients: &[IpAddr]) -> Vec<RequestRecord> {
        self.requests().into_iter().filter(|r| clients.contains(&r.client.ip())).collect()
    }

    /// Writes the request log as JSON lines.
    ///
    /// # Errors
    /// File errors.
    pub fn write_log(&self, path: &std::path::Path) -> std::io::Result<()> {
        let mut s = String::new();
        for r in self.requests() {
            s.push_str(&serde_json::to_string(&r).map_err(std::io::Error::other)?);
            s.push('\n');
        }
        nslab::os::fsafe::write_artifact(path, s.as_bytes(), 0o600).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nslab::host::output::{Line, Stream};

    fn at(ms: u64, text: &str) -> Line {
        Line { at: Duration::from_millis(ms), stream: Stream::Stdout, text: text.into() }
    }

    #[test]
    fn parse_client_takes_every_access_log_form() {
        let v4: IpAddr = "192.0.2.30".parse().unwrap();
        let v6: IpAddr = "2001:db8::30".parse().unwrap();
        assert_eq!(parse_client("192.0.2.30"), Some((v4, None)));
        assert_eq!(parse_client("192.0.2.30:4000"), Some((v4, Some(4000))));
        assert_eq!(parse_client("[2001:db8::30]:4000"), Some((v6, Some(4000))));
        assert_eq!(parse_client("2001:db8::30"), Some((v6, None)));
        assert_eq!(parse_client("[2001:db8::30]"), Some((v6, None)));
        assert_eq!(parse_client("[::ffff:192.0.2.30]:4000"), Some((v4, Some(4000))), "IPv4 peers of a [::] socket as IPv4");
        assert_eq!(parse_client("[192.0.2.30]:4000"), Some((v4, Some(4000))));
        assert_eq!(parse_client("[192.0.2.30]:x"), None);
        assert_eq!(parse_client("-"), None);
        assert_eq!(parse_client("app.example.test"), None);
    }

    fn target_py() -> (regex::Regex, regex::Regex) {
        (regex::Regex::new(r"^request from (?P<client>\[[^\]]+\]:\d+) ").unwrap(), regex::Regex::new(r"^connection from (?P<client>\[[^\]]+\]:\d+)").unwrap())
    }

    #[test]
    fn connection_lines_give_the_real_opening_time() {
        let (line, conn) = target_py();
        let lines = [
            at(500, "connection from [::ffff:192.0.2.30]:40001"),
            at(900, "request from [::ffff:192.0.2.30]:40001 GET /id"),
            at(1200, "request from [::ffff:192.0.2.30]:40001 GET /id"),
            at(1300, "blue serving on [::]:8080"),
            at(3500, "connection from [2001:db8::30]:40002"),
            at(3600, "request from [2001:db8::30]:40002 GET /id"),
            // The port used again by a later connection: a new connection.
            at(4000, "connection from [::ffff:192.0.2.30]:40001"),
            at(4100, "request from [::ffff:192.0.2.30]:40001 GET /id"),
        ];
        let got = from_lines(&line, Some(&conn), &lines);
        let summary: Vec<(u64, u64, u64, String)> = got.iter().map(|r| (r.at_us / 1000, r.conn, r.conn_at_us / 1000, r.client.to_string())).collect();
        assert_eq!(
            summary,
            vec![
                (900, 1, 500, "192.0.2.30:40001".to_string()),
                (1200, 1, 500, "192.0.2.30:40001".to_string()),
                (3600, 2, 3500, "[2001:db8::30]:40002".to_string()),
                (4100, 3, 4000, "192.0.2.30:40001".to_string()),
            ]
        );
    }

    #[test]
    fn without_connection_lines_a_connection_opens_at_its_first_request() {
        let (line, _) = target_py();
        let lines = [
            at(900, "request from [192.0.2.30]:40001 GET /id"),
            at(1200, "request from [192.0.2.30]:40001 GET /id"),
            at(1300, "request from [192.0.2.30]:40002 GET /id"),
        ];
        let got = from_lines(&line, None, &lines);
        assert_eq!(got.iter().map(|r| (r.conn, r.conn_at_us / 1000)).collect::<Vec<_>>(), vec![(1, 900), (1, 900), (2, 1300)]);
    }

    #[test]
    fn without_port_or_connection_number_connections_are_unknown() {
        let line = regex::Regex::new(r"^(?P<client>\S+) - - ").unwrap();
        let got = from_lines(&line, None, &[at(900, "192.0.2.30 - - [24/Nov/2026] GET /id"), at(1000, "garbage")]);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].conn, got[0].client.port()), (0, 0));
    }

    #[test]
    fn a_connection_number_group_tells_connections_apart() {
        let line = regex::Regex::new(r"^request (?P<client>\S+) (?P<port>\d+) (?P<conn>\d+)").unwrap();
        let got =
            from_lines(&line, None, &[at(900, "request 192.0.2.30 40001 7"), at(950, "request 192.0.2.30 40001 7"), at(1000, "request 192.0.2.30 40001 8")]);
        assert_eq!(got.iter().map(|r| r.conn).collect::<Vec<_>>(), vec![1, 1, 2]);
    }
}
