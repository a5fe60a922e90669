//! A client as the analyses see it: a host (every request from its addresses) or one service on
//! it (the requests built-in targets attributed to it), and how a host splits into its client
//! services.

use std::net::IpAddr;

use crate::runner::attribution::Attribution;
use crate::runner::target::{RequestRecord, Target};
use crate::scenario::{ClientRef, Scenario};
use nslab::host::handle::Host;
use nslab::lab::build::Lab;

/// A client as the analyses see it: a host (every request from its addresses) or one service
/// on it (the requests attributed to that service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The service, when the client is one; `None` for the whole host.
    pub service: Option<String>,
    /// The host's name.
    pub host: String,
    /// The host's addresses.
    pub addrs: Vec<IpAddr>,
}

impl Client {
    /// The whole host `h`.
    pub fn host(h: &Host) -> Client {
        Client { service: None, host: h.name().to_owned(), addrs: h.addrs().into_iter().chain(h.link_local().map(IpAddr::V6)).collect() }
    }

    /// Service `service` on host `h`.
    pub fn service(h: &Host, service: &str) -> Client {
        Client { service: Some(service.to_owned()), ..Client::host(h) }
    }

    /// Whether it made `r`: for a service, attributed to it; for a host, from its addresses.
    pub fn made(&self, r: &RequestRecord) -> bool {
        match &self.service {
            Some(s) => r.service.as_deref() == Some(s.as_str()),
            None => self.addrs.contains(&r.client.ip()),
        }
    }

    /// The requests it made to `t`.
    pub fn requests_to(&self, t: &Target) -> Vec<RequestRecord> {
        t.requests().into_iter().filter(|r| self.made(r)).collect()
    }

    /// Its name as reports give it: `service` or `host`.
    pub fn name(&self) -> &str {
        self.service.as_deref().unwrap_or(&self.host)
    }
}

/// The client `who` names: a host, or a service on its host.
///
/// # Errors
/// The host or service is not in the lab.
pub fn resolve(s: &Scenario, lab: &Lab, who: &ClientRef) -> Result<Client, String> {
    match who {
        ClientRef::Host(h) => Ok(Client::host(lab.host(h).map_err(|e| e.to_string())?)),
        ClientRef::Service(name) => {
            let def = s.service(name).ok_or_else(|| format!("no service {name}"))?;
            Ok(Client::service(lab.host(&def.host).map_err(|e| e.to_string())?, name))
        }
    }
}

/// The clients `c` stands for in `targets`' logs: a service stands for itself; a host whose
/// every request was attributed to a service splits into those services (sorted by name), so
/// two clients on one host are two clients; a host with a request known by address only (a
/// log target's, or a program that is not a service) stays one client.
pub fn split(c: &Client, targets: &[&Target]) -> Vec<Client> {
    if c.service.is_some() {
        return vec![c.clone()];
    }
    let reqs: Vec<RequestRecord> = targets.iter().flat_map(|t| c.requests_to(t)).collect();
    if reqs.is_empty() || reqs.iter().any(|r| r.attributed != Attribution::Service) {
        return vec![c.clone()];
    }
    let mut names: Vec<&str> = reqs.iter().filter_map(|r| r.service.as_deref()).collect();
    names.sort_unstable();
    names.dedup();
    names.into_iter().map(|n| Client { service: Some(n.to_owned()), ..c.clone() }).collect()
}
