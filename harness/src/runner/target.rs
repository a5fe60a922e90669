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
use crate::scenario::TargetDef;

/// One request a target received.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// Lab time of the request, microseconds.
    pub at_us: u64,
    /// The connection it came on (numbered from 1 per target, in accept order).
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
    log: Arc<Mutex<Vec<RequestRecord>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

impl Target {
    /// Binds `[::]:port` (IPv4 too) in `host` and serves until dropped.
    ///
    /// # Errors
    /// The bind error.
    pub async fn start(def: TargetDef, host: &Host, epoch: Instant) -> Result<Target, String> {
        let port = def.port;
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
        let (name, keepalive, log2) = (def.name.clone(), def.keepalive, log.clone());
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
        Ok(Target { def, log, task: Arc::new(task) })
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
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
