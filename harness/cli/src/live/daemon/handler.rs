//! One request on the control socket, answered: status, DNS changes, the query log.

use std::sync::Arc;
use std::time::Duration;

use nslab::dns::QueryLogEntry;
use nslab_scenario::runner::Session;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::Mutex;

use super::dns_edit::{dns_action, show_zones};
use crate::live::protocol::{DnsRequest, Reply, Request};

/// The lab, shared by the accept loop, the timeline and requests; `None` once it is going down.
pub(super) type Shared = Arc<Mutex<Option<Session>>>;

const GONE: &str = "the lab is going down";

/// Answers `req` on `conn` (`down` is the accept loop's own).
pub(super) async fn handle(mut conn: UnixStream, req: Request, session: Shared) {
    let reply = match req {
        Request::Status => match session.lock().await.as_ref() {
            Some(s) => Reply::ok(status_text(s)),
            None => Reply::err(GONE),
        },
        // The accept loop answers `down` itself (it never comes here); were it to, the lab is going down.
        Request::Down => Reply::err(GONE),
        Request::Dns(DnsRequest::Log { name, since, follow }) => {
            let mut next = since;
            loop {
                let entries = {
                    let guard = session.lock().await;
                    match guard.as_ref().map(|s| s.lab().dns()) {
                        Some(Some(d)) => d.log().entries(),
                        Some(None) => {
                            let _ = send(&mut conn, &Reply::err("this lab has no DNS server")).await;
                            return;
                        }
                        None => {
                            let _ = send(&mut conn, &Reply::ok(String::new())).await;
                            return;
                        }
                    }
                };
                let fresh: Vec<&QueryLogEntry> =
                    entries.iter().skip(next).filter(|e| name.as_deref().is_none_or(|n| e.name.trim_end_matches('.') == n.trim_end_matches('.'))).collect();
                next = entries.len();
                for e in fresh {
                    if send(&mut conn, &Reply { ok: true, text: log_line(e), more: true }).await.is_err() {
                        return;
                    }
                }
                if !follow {
                    let _ = send(&mut conn, &Reply::ok(String::new())).await;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Request::Capture { hosts } => return capture(conn, hosts, session).await,
        Request::Dns(DnsRequest::Show) => match session.lock().await.as_ref() {
            Some(s) => Reply::ok(show_zones(s).await),
            None => Reply::err(GONE),
        },
        Request::Dns(d) => {
            let mut guard = session.lock().await;
            let Some(s) = guard.as_mut() else {
                let _ = send(&mut conn, &Reply::err(GONE)).await;
                return;
            };
            match dns_action(s, d) {
                Ok(action) => {
                    let what = format!("{action:?}");
                    match s.act(action).await {
                        Ok(()) => Reply::ok(format!("done at +{:.3}s: {what}", s.lab().elapsed().as_secs_f64())),
                        Err(e) => Reply::err(e.reason()),
                    }
                }
                Err(e) => Reply::err(e),
            }
        }
    };
    let _ = send(&mut conn, &reply).await;
}

/// Streams the links' packets as pcapng on `conn` (after one reply line naming them) until the
/// lab goes down or the client hangs up (the stream's write fails).
async fn capture(mut conn: UnixStream, hosts: Vec<String>, session: Shared) {
    let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let links = {
        let guard = session.lock().await;
        match guard.as_ref().map(|s| s.lab().link_capture()) {
            None => Err(GONE.to_string()),
            Some(None) => Err("this lab was built without packet capture (NSLAB_CAPTURE_MB=0)".to_string()),
            Some(Some(c)) => c.select(&names).map(|l| {
                let all = c.links();
                l.iter().map(|&i| all[i].clone()).collect::<Vec<_>>().join(", ")
            }),
        }
    };
    let links = match links {
        Ok(l) => l,
        Err(e) => {
            let _ = send(&mut conn, &Reply::err(e)).await;
            return;
        }
    };
    if send(&mut conn, &Reply { ok: true, text: format!("capturing {links}"), more: true }).await.is_err() {
        return;
    }
    // The pcapng stream is written by the capture's own thread, blocking, on this socket.
    let Ok(std_conn) = conn.into_std() else { return };
    if std_conn.set_nonblocking(false).is_err() {
        return;
    }
    let stream = {
        let guard = session.lock().await;
        let Some(s) = guard.as_ref() else { return };
        match s.lab().capture(&names, std_conn) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "capture stream");
                return;
            }
        }
    };
    // Until the client hangs up (the thread's write fails) or the lab goes down.
    while !stream.is_finished() && session.lock().await.is_some() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stream.stop();
}

/// One query log entry as a line: time, client, transport, question, answer.
fn log_line(e: &QueryLogEntry) -> String {
    format!(
        "{:>9.3}s {} {} {} {} -> {}{}{}",
        e.at.as_secs_f64(),
        e.client,
        e.transport,
        e.name,
        e.qtype.map(|t| t.to_string()).unwrap_or_default(),
        e.rcode_name(),
        if e.answers.is_empty() { String::new() } else { format!(" {}", e.answers.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | ")) },
        e.fault.as_ref().map(|f| format!(" (fault: {f})")).unwrap_or_default()
    )
}

fn status_text(s: &Session) -> String {
    let mut out = String::new();
    for (name, p) in s.services() {
        let state = match p.exit() {
            Some(e) => format!("exited ({e})"),
            None => "running".to_string(),
        };
        out.push_str(&format!("service {name} on {}: {state}, pid {}, log {}\n", p.host(), p.pid(), p.stdout_path().display()));
    }
    if let Some(d) = s.lab().dns() {
        out.push_str(&format!("dns: {} queries logged\n", d.log().len()));
    }
    out
}

/// Writes one reply line.
pub(super) async fn send(conn: &mut UnixStream, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_string(reply).unwrap_or_else(|e| format!("{{\"ok\":false,\"text\":\"{e}\"}}"));
    line.push('\n');
    conn.write_all(line.as_bytes()).await
}
