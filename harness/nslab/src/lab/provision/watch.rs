//! Every IPv6 address change on the lab interfaces of a segment's hosts, as the kernel reports
//! it in netlink address events (no polling), stamped in lab time: when an address appeared
//! tentative, became usable, got deprecated, failed DAD or went away.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::AsyncSocket;

use crate::error::{Error, Result};
use crate::host::handle::Host;

/// The state of an address as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddrState {
    /// Duplicate address detection is running: a bind to it fails with EADDRNOTAVAIL.
    Tentative,
    /// Usable and preferred for new connections.
    Usable,
    /// Usable by connections that have it, no longer chosen as a source (preferred lifetime 0).
    Deprecated,
    /// Duplicate address detection found another holder.
    DadFailed,
    /// Gone from the interface.
    Removed,
}

impl AddrState {
    /// The state's name as scenarios write it.
    pub fn name(self) -> &'static str {
        match self {
            AddrState::Tentative => "tentative",
            AddrState::Usable => "usable",
            AddrState::Deprecated => "deprecated",
            AddrState::DadFailed => "dad-failed",
            AddrState::Removed => "removed",
        }
    }

    /// The state named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        [AddrState::Tentative, AddrState::Usable, AddrState::Deprecated, AddrState::DadFailed, AddrState::Removed].into_iter().find(|a| a.name() == s)
    }

    fn of(flags: AddressFlags) -> Self {
        if flags.contains(AddressFlags::Dadfailed) {
            AddrState::DadFailed
        } else if flags.contains(AddressFlags::Tentative) {
            AddrState::Tentative
        } else if flags.contains(AddressFlags::Deprecated) {
            AddrState::Deprecated
        } else {
            AddrState::Usable
        }
    }
}

/// One change of one address (a line of `addresses.jsonl`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AddrEvent {
    /// Lab time of the kernel's event (as the harness received it).
    #[serde(rename = "at_us", serialize_with = "micros")]
    pub at: Duration,
    /// The host.
    pub host: String,
    /// The address.
    pub addr: Ipv6Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// The state it entered.
    pub state: AddrState,
    /// Remaining preferred lifetime in seconds when known (`u32::MAX`: forever).
    pub preferred: Option<u32>,
    /// Remaining valid lifetime in seconds when known (`u32::MAX`: forever).
    pub valid: Option<u32>,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl AddrEvent {
    /// Whether the address is link-local (fe80::/10).
    pub fn is_link_local(&self) -> bool {
        self.addr.segments()[0] & 0xffc0 == 0xfe80
    }
}

struct Shared {
    events: Mutex<Vec<AddrEvent>>,
    /// Bumped on every event.
    changed: tokio::sync::watch::Sender<usize>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Watches the IPv6 addresses of a set of hosts' lab interfaces. Cheap to clone; the watching
/// ends with [`AddressWatch::stop`] or when the last clone is dropped.
#[derive(Clone)]
pub struct AddressWatch {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AddressWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressWatch").field("events", &self.events().len()).finish()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for t in self.tasks.get_mut().unwrap_or_else(|e| e.into_inner()).drain(..) {
            t.abort();
        }
    }
}

/// An address message's address, prefix length, flags and (preferred, valid) lifetimes.
type Parsed = (Ipv6Addr, u8, AddressFlags, Option<(u32, u32)>);

fn parse(msg: &AddressMessage) -> Option<Parsed> {
    let addr = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(IpAddr::V6(v6)) => Some(*v6),
        _ => None,
    })?;
    let flags = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Flags(f) => Some(*f),
            _ => None,
        })
        .unwrap_or_else(|| AddressFlags::from_bits_retain(u32::from(msg.header.flags.bits())));
    let life = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::CacheInfo(c) => Some((c.ifa_preferred, c.ifa_valid)),
        _ => None,
    });
    Some((addr, msg.header.prefix_len, flags, life))
}

impl AddressWatch {
    /// Starts watching the lab interface of every host in `hosts`: subscribes to the kernel's
    /// IPv6 address events inside each host, then records the addresses already there.
    /// Times are measured from `epoch` (the lab's).
    ///
    /// # Errors
    /// [`Error::Namespace`] when a host's netlink socket cannot be opened or subscribed,
    /// [`Error::Netlink`] when the first dump fails.
    pub async fn start(hosts: &[Host], epoch: Instant) -> Result<Self> {
        let on: Vec<(Host, u32)> = hosts.iter().map(|h| (h.clone(), h.ifindex())).collect();
        Self::start_on(&on, epoch).await
    }

    /// As [`AddressWatch::start`], on the interface of the given index in each host.
    ///
    /// # Errors
    /// As [`AddressWatch::start`].
    pub async fn start_on(hosts: &[(Host, u32)], epoch: Instant) -> Result<Self> {
        let (changed, _) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared { events: Mutex::new(Vec::new()), changed, tasks: Mutex::new(Vec::new()) });
        for (h, index) in hosts {
            let index = *index;
            let rt = tokio::runtime::Handle::current();
            let made = h
                .in_netns(move || -> std::io::Result<_> {
                    let _g = rt.enter();
                    let (mut conn, handle, messages) = rtnetlink::new_connection()?;
                    let groups = netlink_sys::SocketAddr::new(0, rtnetlink::constants::RTMGRP_IPV6_IFADDR | rtnetlink::constants::RTMGRP_IPV6_PREFIX);
                    conn.socket_mut().socket_mut().bind(&groups)?;
                    Ok((conn, handle, messages))
                })
                .await?
                .map_err(|source| Error::Namespace { op: "subscribe to IPv6 address events", what: format!("host {}", h.name()), source })?;
            let (conn, handle, mut messages) = made;
            let conn_task = tokio::spawn(conn);
            let name = h.name().to_string();
            let mut last: HashMap<Ipv6Addr, AddrState> = HashMap::new();
            // What is there already: recorded first, at the time of the dump.
            dump(&handle, index, &name).await?.iter().for_each(|m| record(&shared, &mut last, &name, epoch, m, false));
            let sh = Arc::downgrade(&shared);
            let task = tokio::spawn(async move {
                while let Some((msg, _)) = messages.next().await {
                    let Some(shared) = sh.upgrade() else { break };
                    match msg.payload {
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) if m.header.index == index => {
                            record(&shared, &mut last, &name, epoch, &m, false)
                        }
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)) if m.header.index == index => {
                            record(&shared, &mut last, &name, epoch, &m, true)
                        }
                        // The kernel announces no address while it is tentative (only once DAD
                        // is done), but it announces the prefix of each router advertisement
                        // right after SLAAC added its address: read the addresses then. (A new
                        // address is flagged tentative until the kernel's DAD work item runs, so a
                        // list taken in between shows it tentative even on a host without DAD.)
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewPrefix(_)) => match dump(&handle, index, &name).await {
                            Ok(list) => list.iter().for_each(|m| record(&shared, &mut last, &name, epoch, m, false)),
                            Err(e) => tracing::warn!(host = %name, error = %e, "failed to list addresses after a prefix event"),
                        },
                        _ => {}
                    }
                }
            });
            let mut tasks = shared.tasks.lock().unwrap_or_else(|e| e.into_inner());
            tasks.push(conn_task);
            tasks.push(task);
        }
        Ok(Self { shared })
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<AddrEvent> {
        self.shared.events.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A receiver that changes on every new event.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<usize> {
        self.shared.changed.subscribe()
    }

    /// The current state of every address of `host` that has not been removed.
    pub fn current(&self, host: &str) -> Vec<(Ipv6Addr, AddrState)> {
        let mut now: Vec<(Ipv6Addr, AddrState)> = Vec::new();
        for e in self.events().into_iter().filter(|e| e.host == host) {
            now.retain(|(a, _)| *a != e.addr);
            if e.state != AddrState::Removed {
                now.push((e.addr, e.state));
            }
        }
        now
    }

    /// Waits for the first event (past or future) that `want` accepts and returns it.
    ///
    /// # Errors
    /// [`Error::Timeout`] naming `what` after `timeout` (a hang guard).
    pub async fn wait_for(&self, what: &str, timeout: Duration, want: impl Fn(&AddrEvent) -> bool) -> Result<AddrEvent> {
        let mut rx = self.subscribe();
        let find = || self.events().into_iter().find(|e| want(e));
        let wait = async {
            loop {
                if let Some(e) = find() {
                    return Some(e);
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(Some(e)) => Ok(e),
            _ => {
                let tail = self.events().iter().map(|e| format!("{:?} {} {} {}", e.at, e.host, e.addr, e.state.name())).collect::<Vec<_>>().join("\n");
                Err(Error::Timeout { what: what.to_string(), timeout, tail })
            }
        }
    }

    /// Writes every event to `path` as JSON lines (owner-only, never through a link).
    ///
    /// # Errors
    /// [`Error::DnsLog`] (the lab's JSON-lines writer's error) when the file cannot be written.
    pub fn write_jsonl(&self, path: &Path) -> Result<usize> {
        Ok(crate::dns::write_jsonl(path, &self.events())?)
    }

    /// Stops watching.
    pub fn stop(&self) {
        for t in self.shared.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            t.abort();
        }
    }
}

/// The IPv6 addresses of interface `index`, as the kernel lists them now.
async fn dump(handle: &rtnetlink::Handle, index: u32, host: &str) -> Result<Vec<AddressMessage>> {
    let mut list = handle.address().get().set_link_index_filter(index).execute();
    let mut out = Vec::new();
    loop {
        match list.try_next().await {
            Ok(Some(m)) => out.push(m),
            Ok(None) => return Ok(out),
            Err(source) => return Err(Error::Netlink { op: "list the IPv6 addresses".into(), what: format!("host {host}"), source }),
        }
    }
}

fn record(shared: &Shared, last: &mut HashMap<Ipv6Addr, AddrState>, host: &str, epoch: Instant, m: &AddressMessage, deleted: bool) {
    let Some((addr, prefix_len, flags, life)) = parse(m) else { return };
    let state = if deleted { AddrState::Removed } else { AddrState::of(flags) };
    if last.get(&addr) == Some(&state) {
        return;
    }
    last.insert(addr, state);
    if deleted {
        last.remove(&addr);
    }
    let ev = AddrEvent { at: epoch.elapsed(), host: host.to_string(), addr, prefix_len, state, preferred: life.map(|l| l.0), valid: life.map(|l| l.1) };
    tracing::debug!(host, %addr, state = state.name(), "address event");
    shared.events.lock().unwrap_or_else(|e| e.into_inner()).push(ev);
    shared.changed.send_modify(|n| *n += 1);
}
