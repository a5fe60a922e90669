//! Built-in HTTP targets: served by the harness inside a lab host, answering their name and
//! recording every request with the connection it came on.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use serde::Serialize;

use crate::host::Host;
use crate::process::Process;
use crate::scenario::{TargetDef, TargetKind};

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
}

#[derive(Clone)]
enum Source {
    /// Served by the harness: the log the server writes.
    Builtin { log: Arc<Mutex<Vec<RequestRecord>>>, task: Arc<tokio::task::JoinHandle<()>> },
    /// A real server: its output lines, once the service has started.
    Log { line: regex::Regex, proc: Arc<Mutex<Option<Process>>> },
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
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().ok().map(|ip| (ip.to_canonical(), None))
}

/// Requests read from a server's output lines (lab time of each line's arrival).
fn from_lines(line: &regex::Regex, lines: &[crate::output::Line]) -> Vec<RequestRecord> {
    let mut conns: Vec<((IpAddr, u16, u64), u64, Duration)> = Vec::new();
    let mut out = Vec::new();
    for l in lines {
        let Some(c) = line.captures(&l.text) else { continue };
        let Some((ip, port_in_client)) = c.name("client").and_then(|m| parse_client(m.as_str())) else { continue };
        let port = c.name("port").and_then(|m| m.as_str().parse().ok()).or(port_in_client).unwrap_or(0);
        let conn_key = c.name("conn").and_then(|m| m.as_str().parse::<u64>().ok()).unwrap_or(0);
        let key = (ip, port, conn_key);
        // Without a port or a connection number, connections cannot be told apart: conn 0.
        let known = port != 0 || conn_key != 0;
        let (id, opened) = match conns.iter().find(|(k, _, _)| *k == key) {
            Some((_, id, at)) => (*id, *at),
            None => {
                let id = conns.len() as u64 + 1;
                conns.push((key, id, l.at));
                (id, l.at)
            }
        };
        out.push(RequestRecord {
            at_us: l.at.as_micros() as u64,
            conn: if known { id } else { 0 },
            conn_at_us: opened.as_micros() as u64,
            client: SocketAddr::new(ip, port),
            path: String::new(),
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
    pub fn from_log(def: TargetDef) -> Target {
        let line = match &def.kind {
            TargetKind::Log { line, .. } => line.clone(),
            TargetKind::Builtin { .. } => regex::Regex::new("$^").expect("valid"),
        };
        Target { def, source: Source::Log { line, proc: Arc::new(Mutex::new(None)) } }
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

    /// Binds `[::]:port` (IPv4 too) in `host` and serves until dropped.
    ///
    /// # Errors
    /// The bind error.
    pub async fn start(def: TargetDef, host: &Host, epoch: Instant) -> Result<Target, String> {
        let TargetKind::Builtin { port, keepalive, .. } = def.kind else {
            return Ok(Target::from_log(def));
        };
        let sock = host
            .socket(socket2::Domain::IPV6, socket2::Type::STREAM, None)
            .await
            .map_err(|e| e.to_string())?;
        let bind = (|| {
            sock.set_only_v6(false)?;
            sock.set_reuse_address(true)?;
            sock.set_nonblocking(true)?;
            sock.bind(&SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)).into())?;
            sock.listen(1024)?;
            tokio::net::TcpListener::from_std(sock.into())
        })();
        let listener = bind.map_err(|e| format!("target {}: bind [::]:{port} in host {}: {e}", def.name, host.name()))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (name, log2) = (def.name.clone(), log.clone());
        let task = tokio::spawn(async move {
            let mut conn = 0u64;
            while let Ok((stream, peer)) = listener.accept().await {
                conn += 1;
                let (id, conn_at, peer) = (conn, epoch.elapsed(), canonical(peer));
                let (name, log) = (name.clone(), log2.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let rec = RequestRecord {
                            at_us: epoch.elapsed().as_micros() as u64,
                            conn: id,
                            conn_at_us: conn_at.as_micros() as u64,
                            client: peer,
                            path: req.uri().path().to_string(),
                        };
                        log.lock().unwrap_or_else(|e| e.into_inner()).push(rec);
                        let mut resp = Response::new(Full::new(Bytes::from(format!("{name}\n"))));
                        if !keepalive {
                            resp.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
                        }
                        async move { Ok::<_, Infallible>(resp) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().keep_alive(keepalive).serve_connection(io, svc).await;
                });
            }
        });
        Ok(Target { def, source: Source::Builtin { log, task: Arc::new(task) } })
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        match &self.source {
            Source::Builtin { log, .. } => log.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            Source::Log { line, proc } => {
                let p = proc.lock().unwrap_or_else(|e| e.into_inner()).clone();
                p.map(|p| from_lines(line, &p.lines())).unwrap_or_default()
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
        std::fs::write(path, s)
    }
}
