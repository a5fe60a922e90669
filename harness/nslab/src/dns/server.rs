//! The server lifecycle: takes sockets the caller already bound, serves each from a task of its own (`udp`, `tcp`), and hands out a cloneable handle that controls and stops it.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, PoisonError, RwLock},
    time::{Duration, Instant},
};

use hickory_proto::rr::LowerName;
use tokio::{
    net::{TcpListener, UdpSocket},
    sync::{watch, Mutex},
    task::JoinSet,
};
use tracing::{info, info_span};

use super::{
    control::ZoneControl,
    dns64::Dns64,
    error::{ControlError, ServerError},
    fault::Faults,
    handler::LabHandler,
    log::{QueryLog, Transport},
    store::ZoneSet,
    tcp, udp,
    zone::{self, HostAddrs, Zone},
};

/// Sockets the caller bound (for instance inside a network namespace) for the server to serve on.
/// The server binds nothing itself.
#[derive(Debug, Default)]
pub struct DnsSockets {
    /// Bound, non-blocking UDP sockets.
    pub udp: Vec<UdpSocket>,
    /// Bound, listening TCP sockets.
    pub tcp: Vec<TcpListener>,
}

/// Options of a server.
#[derive(Debug, Clone)]
pub struct DnsOptions {
    /// The lab clock: query-log timestamps are durations since this instant.
    pub epoch: Instant,
    /// Addresses of lab hosts by name, used to expand `RecordValue::Host`.
    pub hosts: HostAddrs,
    /// DNS64 synthesis for AAAA queries, off when `None`.
    pub dns64: Option<Dns64>,
    /// Most query-log entries kept; older ones are discarded and counted.
    pub log_capacity: usize,
    /// A TCP connection idle this long (or stalled in the middle of a message) is closed.
    pub tcp_idle_timeout: Duration,
}

impl DnsOptions {
    /// Defaults: no hosts, no DNS64, 100 000 log entries, 10 s TCP idle timeout.
    pub fn new(epoch: Instant) -> Self {
        Self { epoch, hosts: HostAddrs::new(), dns64: None, log_capacity: 100_000, tcp_idle_timeout: Duration::from_secs(10) }
    }
}

struct Inner {
    zones: Arc<ZoneSet>,
    faults: Faults,
    log: QueryLog,
    hosts: Arc<RwLock<HostAddrs>>,
    local: Vec<(Transport, SocketAddr)>,
    /// One task per socket; taken by the first shutdown.
    tasks: Mutex<Option<JoinSet<()>>>,
    /// Tells every task to stop.
    stop: watch::Sender<bool>,
    /// DNS64 as switched now.
    dns64: super::dns64::Dns64Switch,
}

/// A running authoritative DNS server; cloning gives another handle to the same server.
///
/// Dropping the last handle without [`DnsServer::shutdown`] aborts the socket tasks.
#[derive(Clone)]
pub struct DnsServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer").field("local", &self.inner.local).finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Builds the zones and starts serving on `sockets`. Must be called inside a tokio runtime
    /// (the socket tasks are spawned on it); returns once the sockets are registered.
    ///
    /// # Errors
    ///
    /// [`ServerError::Zone`] for invalid zone data, [`ServerError::NoSockets`] when no socket is
    /// given, [`ServerError::LocalAddr`] when a socket's address can not be read.
    pub fn start(sockets: DnsSockets, zones: Vec<Zone>, options: DnsOptions) -> Result<Self, ServerError> {
        if sockets.udp.is_empty() && sockets.tcp.is_empty() {
            return Err(ServerError::NoSockets);
        }
        let zones = Arc::new(ZoneSet::build(&zones, &options.hosts).map_err(|source| ServerError::Zone { source })?);
        let mut local = Vec::with_capacity(sockets.udp.len() + sockets.tcp.len());
        for socket in &sockets.udp {
            let addr = socket.local_addr().map_err(|source| ServerError::LocalAddr { transport: "udp", source })?;
            local.push((Transport::Udp, addr));
        }
        for listener in &sockets.tcp {
            let addr = listener.local_addr().map_err(|source| ServerError::LocalAddr { transport: "tcp", source })?;
            local.push((Transport::Tcp, addr));
        }
        let faults = Faults::default();
        let log = QueryLog::new(options.epoch, options.log_capacity);
        let dns64 = super::dns64::Dns64Switch::new(options.dns64);
        let handler = LabHandler { zones: zones.clone(), faults: faults.clone(), log: log.clone(), dns64: dns64.clone() };
        let span = info_span!("dns", zones = zones.iter().count());
        let _enter = span.enter();
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for socket in sockets.udp {
            tasks.spawn(udp::serve(socket, handler.clone(), stopped.clone()));
        }
        for listener in sockets.tcp {
            tasks.spawn(tcp::serve(listener, handler.clone(), options.tcp_idle_timeout, stopped.clone()));
        }
        info!(?local, "dns server started");
        Ok(Self {
            inner: Arc::new(Inner { zones, faults, log, hosts: Arc::new(RwLock::new(options.hosts)), local, tasks: Mutex::new(Some(tasks)), stop, dns64 }),
        })
    }

    /// The addresses served, with their transport.
    pub fn local_addrs(&self) -> &[(Transport, SocketAddr)] {
        &self.inner.local
    }

    /// The query log.
    pub fn log(&self) -> &QueryLog {
        &self.inner.log
    }

    /// The fault switches.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// A control handle for the zone with this origin (trailing dot optional).
    ///
    /// # Errors
    ///
    /// [`ControlError::NoSuchZone`] when the server does not serve that zone.
    pub fn zone(&self, origin: &str) -> Result<ZoneControl, ControlError> {
        let no_zone = || ControlError::NoSuchZone { origin: origin.to_owned() };
        let name = zone::parse_origin(origin).map_err(|_| no_zone())?;
        let zone = self.inner.zones.by_origin(&LowerName::new(&name)).ok_or_else(no_zone)?;
        Ok(ZoneControl::new(zone.clone(), self.inner.hosts.clone()))
    }

    /// The origins of every zone served, most specific first (without the trailing dot).
    pub fn origins(&self) -> Vec<String> {
        self.inner.zones.iter().map(|z| z.origin.to_string().trim_end_matches('.').to_owned()).collect()
    }

    /// The origin of the most specific zone containing `name` (trailing dot optional), if any.
    pub fn zone_of(&self, name: &str) -> Option<String> {
        let name = zone::parse_origin(name).ok()?;
        self.inner.zones.find(&LowerName::new(&name)).map(|z| z.origin.to_string().trim_end_matches('.').to_owned())
    }

    /// Sets the addresses of a lab host for records added from now on. Records already expanded
    /// from `RecordValue::Host` keep their addresses (use `ZoneControl::replace_set` to refresh).
    pub fn set_host_addrs(&self, host: &str, addrs: Vec<IpAddr>) {
        self.inner.hosts.write().unwrap_or_else(PoisonError::into_inner).insert(host.to_owned(), addrs);
    }

    /// Switches DNS64 synthesis from now on: `None` turns it off; with `clients` it applies only
    /// to queries from addresses inside those prefixes (address, prefix length), as a cloud
    /// turns DNS64 on for one subnet; `clients` `None` means every client.
    pub fn set_dns64(&self, dns64: Option<Dns64>, clients: Option<Vec<(IpAddr, u8)>>) {
        self.inner.dns64.set(dns64, clients);
    }

    /// Stops serving: closes every socket and TCP connection and waits for the tasks to end
    /// (a few milliseconds). Later calls, from any handle, return `Ok(())` at once.
    ///
    /// # Errors
    ///
    /// [`ServerError::Shutdown`] when a serving task had panicked (the others are stopped anyway).
    pub async fn shutdown(&self) -> Result<(), ServerError> {
        let Some(mut tasks) = self.inner.tasks.lock().await.take() else {
            return Ok(());
        };
        self.inner.stop.send_replace(true);
        let mut panicked = 0;
        while let Some(ended) = tasks.join_next().await {
            if ended.is_err() {
                panicked += 1;
            }
        }
        info!("dns server stopped");
        if panicked > 0 {
            return Err(ServerError::Shutdown { panicked });
        }
        Ok(())
    }
}
