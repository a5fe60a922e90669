//! Who made a connection a built-in target accepted: the lab service whose process holds the
//! connection's client end, read from the client host's kernel (sock_diag) and the service's
//! process tree (`/proc/PID/fd`), while the target holds its answer so the socket still exists.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use nslab::host::handle::Host;
use nslab::host::process::Process;

/// How a request was attributed to its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attribution {
    /// To the service whose process held the connection's client socket when the target
    /// accepted it (built-in targets).
    Service,
    /// To the host only: the request comes from a server's log (a `service` target), which
    /// gives the peer's address and nothing about the process behind it.
    #[default]
    HostOnly,
    /// A built-in target looked, and no service of the lab held the socket: a program that is
    /// not a service (a `run` step's), one that had closed it already, or a peer outside the lab
    /// hosts (a NAT64 pool address).
    NoService,
}

/// Who made one connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owner {
    /// The service, when one held the socket.
    pub service: Option<String>,
    /// The process of its tree that held it.
    pub pid: Option<u32>,
    /// How the attribution was made.
    pub by: Attribution,
}

/// The lab's hosts and the services started in them: what a target asks who made a connection.
pub struct Clients {
    hosts: Vec<Host>,
    services: Mutex<Vec<(String, Process)>>,
}

impl Clients {
    /// The clients of a lab with these hosts; services are added as they start.
    pub fn new(hosts: &[Host]) -> Arc<Clients> {
        Arc::new(Clients { hosts: hosts.to_vec(), services: Mutex::new(Vec::new()) })
    }

    /// Adds a (re)started service's process.
    pub fn add(&self, service: &str, p: &Process) {
        self.services.lock().unwrap_or_else(|e| e.into_inner()).push((service.to_owned(), p.clone()));
    }

    /// The host whose addresses include `peer`: the target's own host for a loopback peer.
    fn host_of(&self, peer: IpAddr, target_host: &Host) -> Option<Host> {
        let peer = peer.to_canonical();
        if peer.is_loopback() {
            return Some(target_host.clone());
        }
        self.hosts.iter().find(|h| h.addrs().contains(&peer) || h.link_local().map(IpAddr::V6) == Some(peer)).cloned()
    }

    /// Who made the connection a target in `target_host` accepted on `local` from `peer`: the
    /// client host's socket with that local end and peer, and the running service of that host
    /// whose process tree holds it. Called before the target answers: the client waits for the
    /// answer, so its socket is still there.
    pub async fn owner(&self, target_host: &Host, local: SocketAddr, peer: SocketAddr) -> Owner {
        let none = Owner { by: Attribution::NoService, ..Owner::default() };
        let Some(host) = self.host_of(peer.ip(), target_host) else { return none };
        let inode = match host.connection_inode(peer, local).await {
            Ok(Some(i)) => i,
            Ok(None) => return none,
            Err(e) => {
                tracing::warn!(error = %e, "cannot attribute a connection to a service");
                return none;
            }
        };
        let candidates: Vec<(String, Process)> =
            self.services.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|(_, p)| p.host() == host.name() && p.exit().is_none()).cloned().collect();
        tokio::task::spawn_blocking(move || {
            candidates
                .iter()
                .find_map(|(name, p)| p.socket_holder(inode).map(|pid| Owner { service: Some(name.clone()), pid: Some(pid), by: Attribution::Service }))
        })
        .await
        .ok()
        .flatten()
        .unwrap_or(none)
    }
}
