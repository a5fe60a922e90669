//! One provisioned segment: its router's radvd, the SLAAC of its hosts, the address watch, and
//! the changes a timeline makes (IPv6 arrives, renumbering, advertising stops, the DNS follows).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::addr::plan::{IPV4_PREFIX, LAB_DOMAIN};
use crate::dns::{Dns64, DnsServer, RecordKind, RecordValue};
use crate::error::{Error, Result};
use crate::host::handle::Host;
use crate::host::process::{Command, Process};
use crate::lab::provision::ra::{self, RaConfig, RaPrefix};
use crate::lab::provision::slaac;
use crate::lab::provision::watch::{AddrEvent, AddrState, AddressWatch};

/// One AAAA set the lab DNS published for a host: lab time, host, its addresses (empty: deleted).
pub type AaaaSet = (Duration, String, Vec<Ipv6Addr>);

/// What the segment becomes when IPv6 arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// IPv6 is added; IPv4 stays.
    DualStack,
    /// IPv6 is added and the hosts' IPv4 addresses are removed.
    Ipv6Only,
}

impl Mode {
    /// The mode's name as scenarios write it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::DualStack => "dual-stack",
            Mode::Ipv6Only => "ipv6-only",
        }
    }
}

/// How long the router's link-local address may take to become usable (DAD: 1-2 s).
const LINK_LOCAL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long radvd is given to end on SIGTERM (it sends its last advertisements first).
const STOP_GRACE: Duration = Duration::from_secs(5);
/// TTL of the AAAA records the lab DNS publishes for SLAAC addresses.
const AAAA_TTL: u32 = 60;

struct State {
    config: RaConfig,
    radvd: Option<Process>,
    renumbered: u16,
    written: u32,
    follow: Option<tokio::task::JoinHandle<()>>,
    /// kea-dhcp6 and the dhclients, once started.
    dhcp: Vec<Process>,
}

/// A lab segment provisioned with IPv6 by a router host: radvd advertising, the hosts' kernels
/// doing SLAAC. Made by [`Provisioner::prepare`]; nothing is advertised until
/// [`Provisioner::ipv6_arrives`].
///
/// ```no_run
/// # async fn demo(lab: &nslab::Lab) -> nslab::Result<()> {
/// use nslab::lab::provision::{Mode, Provisioner, RaConfig};
/// let router = lab.host("router")?;
/// let hosts: Vec<nslab::Host> = lab.hosts().iter().filter(|h| h.name() != "router").cloned().collect();
/// let seg = Provisioner::prepare(router, router.interface(), &hosts, RaConfig::default(), lab.epoch()).await?;
/// seg.ipv6_arrives(Mode::DualStack).await?;
/// let web = lab.host("web")?;
/// let usable = seg.wait_address(web, seg.prefixes()[0], nslab::lab::provision::AddrState::Usable, std::time::Duration::from_secs(30)).await?;
/// println!("web got {} at {:?}", usable.addr, usable.at);
/// seg.teardown().await;
/// # Ok(()) }
/// ```
pub struct Provisioner {
    router: Host,
    ifname: String,
    hosts: Vec<Host>,
    index: u16,
    watch: AddressWatch,
    state: tokio::sync::Mutex<State>,
    aaaa_log: Arc<std::sync::Mutex<Vec<AaaaSet>>>,
    /// Bumped on every AAAA set published.
    aaaa_changed: tokio::sync::watch::Sender<usize>,
    /// Whether the lab DNS follows the addresses now.
    following: std::sync::atomic::AtomicBool,
    /// Hosts whose DAD is held: their interface's `dad_transmits` from before.
    held: std::sync::Mutex<BTreeMap<String, String>>,
    epoch: Instant,
}

impl Drop for Provisioner {
    /// The backstop of [`Provisioner::teardown`]: the DNS-following task and the address watch
    /// end with it (radvd, kea and dhclient are lab programs: they end with the lab).
    fn drop(&mut self) {
        if let Some(t) = self.state.get_mut().follow.take() {
            t.abort();
        }
        self.watch.stop();
    }
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner").field("router", &self.router.name()).field("ifname", &self.ifname).finish_non_exhaustive()
    }
}

impl Provisioner {
    /// Prepares segment 0 (`lan`): `router` advertises on its interface `ifname`; every host in
    /// `hosts` (the router is skipped if listed) gets IPv6 on and SLAAC (see
    /// [`crate::lab::provision`]). Starts watching their addresses and returns once every
    /// link-local address of them is usable. Nothing is advertised yet.
    ///
    /// # Errors
    /// [`Error::Invalid`] for settings radvd refuses or a `no-ipv6` host, [`Error::Sysctl`],
    /// [`Error::Namespace`], [`Error::Timeout`].
    pub async fn prepare(router: &Host, ifname: &str, hosts: &[Host], config: RaConfig, epoch: Instant) -> Result<Self> {
        Self::prepare_segment(0, router, ifname, hosts, config, epoch).await
    }

    /// As [`Provisioner::prepare`], for the segment of index `index` (its renumbering prefixes
    /// are 2001:db8:(index+1):N::/64).
    ///
    /// # Errors
    /// As [`Provisioner::prepare`].
    pub async fn prepare_segment(index: u16, router: &Host, ifname: &str, hosts: &[Host], config: RaConfig, epoch: Instant) -> Result<Self> {
        config.check()?;
        let hosts: Vec<Host> = hosts.iter().filter(|h| h.name() != router.name()).cloned().collect();
        let name = ifname.to_string();
        let rindex = router
            .in_netns(move || nix::net::if_::if_nametoindex(name.as_str()))
            .await?
            .map_err(|e| Error::Invalid { what: format!("router {} has no interface {ifname}: {e}", router.name()) })?;
        let all: Vec<(Host, u32)> = std::iter::once((router.clone(), rindex)).chain(hosts.iter().map(|h| (h.clone(), h.ifindex()))).collect();
        let watch = AddressWatch::start_on(&all, epoch).await?;
        slaac::enable_router(router, ifname).await?;
        futures::future::try_join_all(hosts.iter().map(slaac::enable)).await?;
        // Every link-local address usable: radvd sends from the router's, and the segment
        // starts in a known state (IPv4 plus link-local, no global IPv6 from the router yet).
        for h in all.iter().map(|(h, _)| h) {
            let what = format!("the link-local address of {} to be usable", h.name());
            let name = h.name().to_string();
            watch.wait_for(&what, LINK_LOCAL_TIMEOUT, |e| e.host == name && e.is_link_local() && e.state == AddrState::Usable).await?;
        }
        Ok(Self {
            router: router.clone(),
            ifname: ifname.to_string(),
            hosts,
            index,
            watch,
            state: tokio::sync::Mutex::new(State { config, radvd: None, renumbered: 0, written: 0, follow: None, dhcp: Vec::new() }),
            aaaa_log: Arc::default(),
            aaaa_changed: tokio::sync::watch::channel(0).0,
            following: std::sync::atomic::AtomicBool::new(false),
            held: std::sync::Mutex::default(),
            epoch,
        })
    }

    /// The address watch of the router and the segment's hosts.
    pub fn watch(&self) -> &AddressWatch {
        &self.watch
    }

    /// The segment's hosts (without the router).
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The router.
    pub fn router(&self) -> &Host {
        &self.router
    }

    /// The prefixes in the current configuration, in order (the newest last).
    pub fn prefixes(&self) -> Vec<Ipv6Addr> {
        self.state.try_lock().map(|s| s.config.prefixes.iter().map(|p| p.prefix).collect()).unwrap_or_default()
    }

    /// The router advertisement settings now.
    pub async fn config(&self) -> RaConfig {
        self.state.lock().await.config.clone()
    }

    /// Whether radvd is running.
    pub async fn advertising(&self) -> bool {
        self.state.lock().await.radvd.as_ref().is_some_and(|p| p.exit().is_none())
    }

    /// The AAAA records published so far by [`Provisioner::follow_aaaa`]: lab time, host, the
    /// addresses of its set (empty: the set was deleted).
    pub fn aaaa_log(&self) -> Vec<AaaaSet> {
        self.aaaa_log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Writes the configuration as its own numbered file (evidence of each version) and as the
    /// file radvd reads (`radvd-IF.conf`, replaced whole); returns the latter.
    async fn write_conf(&self, st: &mut State) -> Result<PathBuf> {
        st.config.check()?;
        st.written += 1;
        let text = st.config.radvd_conf(&self.ifname);
        let dir = self.router.dir().to_path_buf();
        let d = crate::os::fsafe::artifact_dir(&dir).map_err(|e| Error::File { op: "create", path: dir.clone(), source: e.into() })?;
        let versioned = format!("radvd-{}-{}.conf", self.ifname, st.written);
        d.write_file(&versioned, text.as_bytes(), 0o600).map_err(|e| Error::File { op: "write", path: dir.join(&versioned), source: e.into() })?;
        let live = format!("radvd-{}.conf", self.ifname);
        d.replace_file(&live, text.as_bytes(), 0o600).map_err(|e| Error::File { op: "write", path: dir.join(&live), source: e.into() })
    }

    async fn start_radvd(&self, st: &mut State) -> Result<()> {
        let conf = self.write_conf(st).await?;
        let pid = self.router.dir().join(format!("radvd-{}.pid", self.ifname));
        let (conf_s, pid_s) = (conf.display().to_string(), pid.display().to_string());
        // Configuration check first: a refused file is an error naming radvd's reason.
        let check = self.router.run(Command::new("radvd").args(["-c", "-C", &conf_s]).name("radvd-check"), Duration::from_secs(30)).await?;
        if !check.exit().is_some_and(|e| e.success()) {
            return Err(Error::Invalid { what: format!("radvd refused its configuration {conf_s}: {}", check.output().trim()) });
        }
        let p = self.router.spawn(Command::new("radvd").args(["-n", "-m", "stderr", "-d", "3", "-C", &conf_s, "-p", &pid_s]).name("radvd")).await?;
        st.radvd = Some(p);
        Ok(())
    }

    /// Advertises the current settings: a running radvd is replaced by one reading the new
    /// file. (radvd 2.19 re-reads its file on SIGHUP, but inside a lab host it stopped
    /// advertising after the reload: seen here, every time, after "prefix length: 64".) The old
    /// one's last advertisement has router lifetime 0 and the prefixes with their configured
    /// lifetimes, so the hosts drop their default route for the moment until the new one's first
    /// advertisement; their addresses are not touched.
    async fn apply(&self, st: &mut State) -> Result<()> {
        if let Some(p) = st.radvd.take() {
            p.stop(STOP_GRACE).await;
        }
        self.start_radvd(st).await
    }

    /// IPv6 arrives on the segment now: radvd starts advertising the configured prefixes (the
    /// hosts' kernels add SLAAC addresses, tentative first where DAD is on). With
    /// [`Mode::Ipv6Only`] every host of the segment also loses its IPv4 address.
    ///
    /// # Errors
    /// [`Error::Invalid`] when radvd refuses its configuration, [`Error::Spawn`],
    /// [`Error::File`], [`Error::Netlink`].
    pub async fn ipv6_arrives(&self, mode: Mode) -> Result<()> {
        let mut st = self.state.lock().await;
        self.apply(&mut st).await?;
        if mode == Mode::Ipv6Only {
            for h in &self.hosts {
                if let Some(v4) = h.ipv4() {
                    h.remove_address(IpAddr::V4(v4), IPV4_PREFIX).await?;
                }
            }
        }
        Ok(())
    }

    /// Renumbers the segment: every prefix advertised so far is advertised with preferred
    /// lifetime 0 (deprecated: kept by connections that use it, not chosen for new ones) and the
    /// next renumbering prefix (2001:db8:1:N::/64) is advertised. Returns the new prefix.
    ///
    /// # Errors
    /// As [`Provisioner::ipv6_arrives`].
    pub async fn renumber(&self) -> Result<Ipv6Addr> {
        let mut st = self.state.lock().await;
        st.renumbered += 1;
        let new = ra::renumbering_prefix(self.index, st.renumbered);
        for p in &mut st.config.prefixes {
            p.preferred = 0;
        }
        st.config.prefixes.push(RaPrefix::new(new));
        self.apply(&mut st).await?;
        Ok(new)
    }

    /// The router stops advertising: radvd ends (SIGTERM). On its way out it sends a last
    /// advertisement with router lifetime 0, so the hosts drop their default route through it;
    /// their SLAAC addresses stay until their valid lifetime runs out (nothing withdraws a prefix).
    ///
    /// # Errors
    /// [`Error::Invalid`] when radvd is not running.
    pub async fn stop_advertising(&self) -> Result<()> {
        let mut st = self.state.lock().await;
        let Some(p) = st.radvd.take() else {
            return Err(Error::Invalid { what: format!("router {} is not advertising (no ipv6-arrives before stop-advertising)", self.router.name()) });
        };
        p.stop(STOP_GRACE).await;
        Ok(())
    }

    /// Waits until `host` has (or had) an address in the /64 `prefix` in `state`, and returns
    /// that event. While the lab DNS follows ([`Provisioner::follow_aaaa`]), a usable address
    /// is waited for until its AAAA record is published too, so a look-up made next finds it.
    ///
    /// # Errors
    /// [`Error::Timeout`] after `timeout` (a hang guard), listing the events seen.
    pub async fn wait_address(&self, host: &Host, prefix: Ipv6Addr, state: AddrState, timeout: Duration) -> Result<AddrEvent> {
        self.wait_address_in(host, prefix, 64, state, timeout).await
    }

    /// As [`Provisioner::wait_address`], for an address in `net`/`len` (a DHCPv6 pool:
    /// 2001:db8:1::d000/120).
    ///
    /// # Errors
    /// As [`Provisioner::wait_address`].
    pub async fn wait_address_in(&self, host: &Host, net: Ipv6Addr, len: u8, state: AddrState, timeout: Duration) -> Result<AddrEvent> {
        let name = host.name().to_string();
        let what = format!("host {name} to have an address in {net}/{len} {}", state.name());
        let t0 = tokio::time::Instant::now();
        let e = self.watch.wait_for(&what, timeout, |e| e.host == name && ra::in_net(e.addr, net, len) && e.state == state).await?;
        if state == AddrState::Usable && self.following.load(std::sync::atomic::Ordering::Relaxed) {
            let mut rx = self.aaaa_changed.subscribe();
            let published = || self.aaaa_log().iter().any(|(_, h, a)| *h == name && a.contains(&e.addr));
            let wait = async {
                while !published() {
                    if rx.changed().await.is_err() {
                        break;
                    }
                }
            };
            let left = timeout.saturating_sub(t0.elapsed());
            if tokio::time::timeout(left, wait).await.is_err() {
                return Err(Error::Timeout { what: format!("the lab DNS to publish AAAA {} of host {name}", e.addr), timeout, tail: String::new() });
            }
        }
        Ok(e)
    }

    /// Starts DHCPv6: kea-dhcp6 in the router with a pool inside the segment's prefix
    /// ([`crate::lab::provision::dhcp::pool_start`] to `pool_end`), and `dhclient -6` in each of
    /// `clients`, which adds the leased address (a /128) with its lifetimes. Advertise with
    /// `managed = true` so the M flag says addresses are to be had this way.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a client not on the segment, [`Error::File`], [`Error::Spawn`].
    pub async fn start_dhcp6(&self, clients: &[Host]) -> Result<()> {
        for c in clients {
            self.check_member(c)?;
        }
        let mut st = self.state.lock().await;
        if st.dhcp.is_empty() {
            st.dhcp.push(crate::lab::provision::dhcp::start_server(&self.router, &self.ifname, self.index).await?);
        }
        for c in clients {
            st.dhcp.push(crate::lab::provision::dhcp::start_client(c).await?);
        }
        Ok(())
    }

    /// Holds duplicate address detection of the SLAAC addresses `host` makes from now on: they
    /// stay tentative (a bind to one fails with EADDRNOTAVAIL) until [`Provisioner::release_dad`],
    /// however slowly a program meets them (the interface's `dad_transmits` is raised to
    /// [`crate::host::dad::HELD_PROBES`]; see [`crate::host::dad`]).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a host without DAD (`dad = false`: its addresses are never
    /// tentative) or one not on the segment, [`Error::Sysctl`].
    pub async fn hold_dad(&self, host: &Host) -> Result<()> {
        self.check_member(host)?;
        if !host.dad() {
            return Err(Error::Invalid {
                what: format!("host {} has no duplicate address detection (dad = false), so its addresses cannot be held tentative", host.name()),
            });
        }
        let name = format!("net/ipv6/conf/{}/dad_transmits", host.interface());
        let before = host.sysctl(&name).await?;
        self.held.lock().unwrap_or_else(|e| e.into_inner()).entry(host.name().to_string()).or_insert(before.trim().to_string());
        host.set_sysctl(&name, &crate::host::dad::HELD_PROBES.to_string()).await
    }

    /// Ends the hold of [`Provisioner::hold_dad`]: `dad_transmits` back to what it was, and the
    /// held (still tentative) SLAAC addresses removed; the kernel reads `dad_transmits` only when
    /// DAD of an address begins, so the router's next advertisement (at most `max_interval`
    /// later) makes each again, with ordinary DAD this time. Returns the addresses removed.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the host's DAD is not held, [`Error::Sysctl`], [`Error::Netlink`].
    pub async fn release_dad(&self, host: &Host) -> Result<Vec<Ipv6Addr>> {
        let Some(before) = self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(host.name()) else {
            return Err(Error::Invalid { what: format!("duplicate address detection of host {} is not held (hold it when IPv6 arrives)", host.name()) });
        };
        host.set_sysctl(&format!("net/ipv6/conf/{}/dad_transmits", host.interface()), &before).await?;
        let prefixes = self.config().await.prefixes;
        let mut removed = Vec::new();
        for (a, st) in self.watch.current(host.name()) {
            if st == AddrState::Tentative && prefixes.iter().any(|p| ra::in_prefix(a, p.prefix)) {
                host.remove_address(IpAddr::V6(a), 64).await?;
                removed.push(a);
            }
        }
        Ok(removed)
    }

    fn check_member(&self, host: &Host) -> Result<()> {
        if self.hosts.iter().any(|h| h.name() == host.name()) {
            return Ok(());
        }
        Err(Error::Invalid { what: format!("host {} is not one of the provisioned segment's hosts", host.name()) })
    }

    /// Switches DNS64 of the lab DNS `dns` for this segment's clients (their IPv4 /24 and the
    /// segment's IPv6 prefixes) on (with `dns64`) or off. With no NAT64 behind it (no
    /// `ipv6-only-nat64` host), the router drops packets to the DNS64 prefix silently (a
    /// blackhole route), as a cloud subnet with DNS64 on and no NAT gateway route does: a
    /// connect to a synthesized address hangs.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the router's route cannot be changed, [`Error::Spawn`].
    pub async fn set_dns64(&self, dns: &DnsServer, dns64: Option<Dns64>) -> Result<()> {
        let mut clients: Vec<(IpAddr, u8)> = self.hosts.iter().filter_map(|h| h.ipv4()).map(|v4| (IpAddr::V4(v4), IPV4_PREFIX)).collect();
        clients.extend(self.config().await.prefixes.iter().map(|p| (IpAddr::V6(p.prefix), 64)));
        clients.extend(self.hosts.iter().filter_map(|h| h.ipv6()).map(|v6| (IpAddr::V6(v6), 128)));
        let nat64 = self.router.name() == crate::lab::nat64::NAT64_HOST;
        if !nat64 {
            let prefix = dns64.map_or(crate::lab::nat64::PREFIX, |d| d.prefix());
            let net = format!("{prefix}/96");
            let args: Vec<&str> =
                if dns64.is_some() { vec!["-6", "route", "replace", "blackhole", &net] } else { vec!["-6", "route", "del", "blackhole", &net] };
            let out = self.router.run(Command::new("ip").args(args).name("ip-route-dns64"), Duration::from_secs(30)).await?;
            let gone = dns64.is_none() && out.output().contains("No such process");
            if !out.exit().is_some_and(|e| e.success()) && !gone {
                return Err(Error::Invalid {
                    what: format!("cannot set the blackhole route for {net} in router {}: {}", self.router.name(), out.output().trim()),
                });
            }
        }
        dns.set_dns64(dns64, Some(clients));
        Ok(())
    }

    /// Makes the lab DNS `dns` follow the hosts' SLAAC addresses (`Some`) or stop following
    /// (`None`, the records published stay): each host's AAAA set in the lab zone becomes its
    /// static IPv6 address (if its profile has one) plus its usable global SLAAC addresses,
    /// updated when the kernel reports an address usable (DAD done) or deprecated or gone.
    pub async fn follow_aaaa(&self, dns: Option<&DnsServer>) {
        let mut st = self.state.lock().await;
        if let Some(t) = st.follow.take() {
            t.abort();
        }
        self.following.store(dns.is_some(), std::sync::atomic::Ordering::Relaxed);
        let Some(dns) = dns.cloned() else { return };
        let (watch, hosts, log, epoch) = (self.watch.clone(), self.hosts.clone(), self.aaaa_log.clone(), self.epoch);
        let changed = self.aaaa_changed.clone();
        st.follow = Some(tokio::spawn(async move {
            let mut rx = watch.subscribe();
            let mut published: BTreeMap<String, Vec<Ipv6Addr>> = BTreeMap::new();
            loop {
                for h in &hosts {
                    let mut want: Vec<Ipv6Addr> = h.ipv6().into_iter().collect();
                    for (a, s) in watch.current(h.name()) {
                        if s == AddrState::Usable && a.segments()[0] & 0xffc0 != 0xfe80 && !want.contains(&a) {
                            want.push(a);
                        }
                    }
                    if published.get(h.name()).is_some_and(|p| *p == want) || (want.is_empty() && !published.contains_key(h.name())) {
                        continue;
                    }
                    let Ok(zone) = dns.zone(LAB_DOMAIN) else { return };
                    let values = want.iter().map(|a| RecordValue::Aaaa(*a)).collect();
                    match zone.replace_set(h.name(), RecordKind::Aaaa, AAAA_TTL, values).await {
                        Ok(_) => {
                            log.lock().unwrap_or_else(|e| e.into_inner()).push((epoch.elapsed(), h.name().to_string(), want.clone()));
                            published.insert(h.name().to_string(), want);
                            changed.send_modify(|n| *n += 1);
                        }
                        Err(e) => tracing::warn!(host = h.name(), error = %e, "failed to publish AAAA records"),
                    }
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        }));
    }

    /// Writes the address events to `addresses.jsonl` in `dir`; returns the path.
    ///
    /// # Errors
    /// [`Error::DnsLog`] when the file cannot be written.
    pub fn write_addresses(&self, dir: &std::path::Path) -> Result<PathBuf> {
        let path = dir.join("addresses.jsonl");
        self.watch.write_jsonl(&path)?;
        Ok(path)
    }

    /// Ends radvd and the watching. The lab's teardown ends radvd too (every program of a host
    /// ends with it); this is the orderly way.
    pub async fn teardown(&self) {
        let mut st = self.state.lock().await;
        if let Some(t) = st.follow.take() {
            t.abort();
        }
        if let Some(p) = st.radvd.take() {
            p.stop(STOP_GRACE).await;
        }
        for p in st.dhcp.drain(..) {
            p.stop(STOP_GRACE).await;
        }
        self.watch.stop();
    }
}
