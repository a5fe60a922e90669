//! A lab: hosts joined by a switch, built concurrently over netlink and torn down without a trace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::try_join_all;

use crate::addr::plan::LAB_DOMAIN;
use crate::addr::plan::{self, HostAddresses, SlotAddrs};
use crate::addr::profile::Profile;
use crate::dns::{DnsServer, LogFilter, QueryLogEntry};
use crate::error::{Error, Result, TeardownError};
use crate::host::etc;
use crate::host::handle::{EtcFile, Host, HostInner};
use crate::host::process::Registry;
use crate::lab::capture::LinkCapture;
use crate::lab::dns_host::{self, LabDns};
use crate::lab::segment::{self, PlannedIface, SegmentSpec};
use crate::lab::spec::{self, HostSpec, Resolver};
use crate::lab::tap::DnsTap;
use crate::os::netlink::Netlink;
use crate::os::netns::NetNs;
use crate::os::sysctl::{self, Sysctl};

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Builds a [`Lab`]; see [`Lab::builder`].
#[derive(Debug, Clone)]
pub struct LabBuilder {
    name: Option<String>,
    profile: Profile,
    hosts: Vec<HostSpec>,
    artifacts_root: Option<PathBuf>,
    artifacts_base: Option<PathBuf>,
    keep_artifacts: bool,
    hosts_entries: bool,
    dns: Option<LabDns>,
    shared: Vec<PathBuf>,
    shared_read_only: Vec<PathBuf>,
    dns_tap: bool,
    /// The capture's ring per link in bytes; `None`: no capture.
    capture: Option<usize>,
    segments: Vec<SegmentSpec>,
}

/// A built lab: isolated hosts on one switch. Tear it down with [`Lab::teardown`]; dropping it
/// without teardown also cleans up, but keeps the artifacts (that is the error path).
pub struct Lab {
    name: String,
    profile: Profile,
    epoch: Instant,
    hosts: Vec<Host>,
    switch: Option<(NetNs, Netlink)>,
    /// The artifact directory: made owner-only at build, with a marker naming this process
    /// (see [`crate::os::artifacts`]); `None` once torn down.
    artifacts: Option<PathBuf>,
    /// The folder above it up to which emptied folders are removed with it.
    artifacts_base: PathBuf,
    keep: AtomicBool,
    registry: Arc<Registry>,
    dns: Option<DnsServer>,
    tap: Option<DnsTap>,
    /// The packet capture of every lab link, unless built without.
    capture: Option<LinkCapture>,
    /// Link conditions applied to hosts (their queue threads end with the lab).
    links: crate::lab::link::Links,
    /// Its segments' names, in declaration order (`lan` when it declares none).
    segments: Vec<String>,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab").field("name", &self.name).field("profile", &self.profile).field("hosts", &self.hosts).finish()
    }
}

struct Planned {
    spec: HostSpec,
    profile: Profile,
    slot: SlotAddrs,
    sysctls: Vec<(PathBuf, Sysctl)>,
    dir: PathBuf,
    etc: Vec<EtcFile>,
    fs: crate::host::hostfs::HostFs,
    /// Its interfaces, primary first (one, in a lab without declared segments).
    ifaces: Vec<PlannedIface>,
}

impl LabBuilder {
    /// Names the lab (used for its artifact directory and logs); default `labPID-N`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the profile every host gets unless it overrides it (default: dual-stack).
    pub fn profile(mut self, p: Profile) -> Self {
        self.profile = p;
        self
    }

    /// Declares a segment: a switch of its own with the next documentation prefixes, its own
    /// profile and MTU (see [`crate::lab::segment`]). The first declared is the one hosts join
    /// unless they name others with [`HostSpec::segments`]. A lab that declares none has one,
    /// `lan`, built as always.
    pub fn segment(mut self, s: SegmentSpec) -> Self {
        self.segments.push(s);
        self
    }

    /// Adds a host: a name, or a [`HostSpec`] with overrides.
    pub fn host(mut self, h: impl Into<HostSpec>) -> Self {
        self.hosts.push(h.into());
        self
    }

    /// Adds several hosts.
    pub fn hosts<I, H>(mut self, hs: I) -> Self
    where
        I: IntoIterator<Item = H>,
        H: Into<HostSpec>,
    {
        self.hosts.extend(hs.into_iter().map(Into::into));
        self
    }

    /// Where the lab's artifact directory is created (default
    /// [`crate::os::artifacts::default_root`]); the root is checked (see [`crate::os::fsafe`]).
    pub fn artifacts_in(mut self, root: impl Into<PathBuf>) -> Self {
        self.artifacts_root = Some(root.into());
        self
    }

    /// The artifacts root that folders between it and the lab's directory belong to: emptied
    /// ones go with a passing lab's directory (the runner sets it to its root).
    #[doc(hidden)]
    pub fn artifacts_base(mut self, base: impl Into<PathBuf>) -> Self {
        self.artifacts_base = Some(base.into());
        self
    }

    /// Keeps the artifact directory after a successful teardown (it is always kept after a
    /// failure or a panic). `NSLAB_KEEP_ARTIFACTS=1` does the same.
    pub fn keep_artifacts(mut self, keep: bool) -> Self {
        self.keep_artifacts = keep;
        self
    }

    /// Whether every host's /etc/hosts lists the lab hosts (default true). Turn it off when a
    /// test must resolve host names through DNS only.
    pub fn hosts_file_entries(mut self, on: bool) -> Self {
        self.hosts_entries = on;
        self
    }

    /// Keeps the machine directory `path` visible to the lab's programs at its own path even
    /// when it lies inside a directory each host has its own copy of (`/tmp`, `/var/tmp`, a
    /// private path): a folder of files the programs are started with, say. The lab's artifact
    /// directory always is. The directory is shared, not copied: writes reach the machine.
    pub fn share_with_hosts(mut self, path: impl Into<PathBuf>) -> Self {
        self.shared.push(path.into());
        self
    }

    /// As [`LabBuilder::share_with_hosts`], but read-only for the lab's programs (a bind mount
    /// of its own, remounted read-only in each program's mount namespace, wherever the
    /// directory is): files they may use but must not change, such as a build's cached output.
    /// The machine's directory is untouched.
    pub fn share_read_only_with_hosts(mut self, path: impl Into<PathBuf>) -> Self {
        self.shared_read_only.push(path.into());
        self
    }

    /// Whether the lab records every DNS packet its hosts send (default on): a packet tap on
    /// port 53 in each host, read into [`Lab::dns_traffic`] and written to `dns-traffic.jsonl` in
    /// the artifacts at teardown. Its cost is measured by the `lab_build` and `dns_perf` benches.
    pub fn dns_tap(mut self, on: bool) -> Self {
        self.dns_tap = on;
        self
    }

    /// The packet capture of every lab link, seen from the switch (see [`crate::lab::capture`]):
    /// a ring of the last `bytes` of frames per link (`None`: no capture), written to
    /// `capture.pcapng` in the artifacts when they are kept. Default: off, unless
    /// `NSLAB_CAPTURE_MB` gives a ring in MiB; scenario trials turn it on with
    /// [`crate::lab::capture::DEFAULT_RING_BYTES`] (8 MiB). Its cost: BENCHMARKS.md.
    pub fn capture_ring(mut self, bytes: Option<usize>) -> Self {
        self.capture = bytes.filter(|&b| b > 0);
        self
    }

    /// Runs a DNS server in the lab (on a dual-stack host `dns` unless [`LabDns::on_host`]
    /// names a declared one) and points every host's /etc/resolv.conf at it.
    pub fn dns(mut self, dns: LabDns) -> Self {
        self.dns = Some(dns);
        self
    }

    /// The addresses each host would get, computed without building anything: the declared
    /// hosts and the ones the lab adds (`dns`, `nat64`), in name order, each with the families
    /// its profile gives it.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a definition [`LabBuilder::build`] would refuse for its hosts (a
    /// reserved or repeated name, too many hosts, a DNS host that is not declared).
    pub fn address_plan(&self) -> Result<Vec<HostAddresses>> {
        let mut b = self.clone();
        let name = b.name.clone().unwrap_or_else(|| "lab".to_string());
        b.add_implicit_hosts(&name)?;
        let slots = plan::assign_slots(b.hosts.iter().map(|h| h.name.as_str()))
            .ok_or_else(|| Error::Invalid { what: format!("lab {name} has {} hosts; one segment holds at most {}", b.hosts.len(), plan::MAX_HOSTS) })?;
        // The primary interface's addresses: on its segment, with that segment's families.
        let mut out: Vec<HostAddresses> = b
            .hosts
            .iter()
            .map(|h| {
                let primary = &segment::plan_ifaces(h, &b.segments, b.profile, slots[&h.name].slot)[0];
                HostAddresses::new(&h.name, primary.profile, &h.interface, primary.addrs)
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Like [`LabBuilder::address_plan`], one row per interface: a host of a routed lab has
    /// one per segment it joins (primary first), each with its segment, name and addresses.
    ///
    /// # Errors
    /// As [`LabBuilder::address_plan`].
    pub fn interface_plan(&self) -> Result<Vec<HostAddresses>> {
        let mut b = self.clone();
        let name = b.name.clone().unwrap_or_else(|| "lab".to_string());
        b.add_implicit_hosts(&name)?;
        let slots = plan::assign_slots(b.hosts.iter().map(|h| h.name.as_str()))
            .ok_or_else(|| Error::Invalid { what: format!("lab {name} has {} hosts; one segment holds at most {}", b.hosts.len(), plan::MAX_HOSTS) })?;
        let mut hosts: Vec<&HostSpec> = b.hosts.iter().collect();
        hosts.sort_by(|x, y| x.name.cmp(&y.name));
        let mut out = Vec::new();
        for h in hosts {
            for f in segment::plan_ifaces(h, &b.segments, b.profile, slots[&h.name].slot) {
                let mut a = HostAddresses::new(&h.name, f.profile, &f.name, f.addrs);
                a.segment = f.segment_name;
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Adds the hosts the lab brings itself: the NAT64 router, the `dns` host. Checks names.
    fn add_implicit_hosts(&mut self, name: &str) -> Result<()> {
        let invalid = |what: String| Error::Invalid { what };
        let nat64 = self.hosts.iter().any(|h| h.profile.unwrap_or(self.profile).uses_nat64());
        let adds_dns_host = self.dns.as_ref().is_some_and(|d| d.host.is_none());
        spec::check_reserved(name, &self.hosts, adds_dns_host, nat64).map_err(invalid)?;
        segment::check(name, &self.segments, &self.hosts, self.profile, nat64).map_err(invalid)?;
        // IPv6-only hosts behind NAT64 need the router, and DNS64 if the lab has DNS.
        if nat64 {
            self.hosts.push(crate::lab::nat64::router_spec());
            if let Some(d) = self.dns.as_mut() {
                if d.dns64.is_none() {
                    d.dns64 = Some(crate::dns::Dns64::new(crate::lab::nat64::PREFIX, 96).map_err(|e| Error::Invalid { what: e.to_string() })?);
                }
            }
        }
        if let Some(d) = &self.dns {
            let dh = d.host_name().to_string();
            if !self.hosts.iter().any(|h| h.name == dh) {
                if d.host.is_some() {
                    return Err(invalid(format!("the DNS server is to run on host {dh:?}, which lab {name} does not declare")));
                }
                if self.segments.is_empty() {
                    self.hosts.push(HostSpec::new(dh).profile(Profile::DualStack));
                } else {
                    // Attached to every segment, as a cloud's resolver is in every subnet, with
                    // each segment's families (an IPv4-only segment's MTU may be below IPv6's).
                    self.hosts.push(HostSpec::new(dh).segments(self.segments.iter().map(|s| s.name.clone())));
                }
            }
        }
        spec::check_name("lab", name).map_err(invalid)?;
        if self.hosts.is_empty() {
            return Err(invalid(format!("lab {name} has no hosts; expected at least one")));
        }
        let mut seen = std::collections::BTreeSet::new();
        for h in &self.hosts {
            if !seen.insert(h.name.as_str()) {
                return Err(invalid(format!("host {:?} is declared twice in lab {name}", h.name)));
            }
        }
        Ok(())
    }

    fn plan(&mut self, name: &str, root: &Path) -> Result<Vec<Planned>> {
        let invalid = |what: String| Error::Invalid { what };
        self.add_implicit_hosts(name)?;
        // The machine's /run, /tmp, ... as this machine lays them out (/var/run may be a link).
        let always = crate::host::hostfs::always_private_here().map_err(|e| invalid(format!("lab {name}: {e}")))?;
        let slots = plan::assign_slots(self.hosts.iter().map(|h| h.name.as_str()))
            .ok_or_else(|| invalid(format!("lab {name} has {} hosts; one segment holds at most {}", self.hosts.len(), plan::MAX_HOSTS)))?;
        self.hosts
            .iter()
            .map(|h| {
                let sysctls = spec::check_host(h).map_err(invalid)?;
                let private = crate::host::hostfs::check_list(&h.private).map_err(|e| invalid(format!("host {}: private path {e}", h.name)))?;
                let dir = root.join(&h.name);
                let fs = crate::host::hostfs::plan(&dir, &always, &private).map_err(|e| invalid(format!("host {}: {e}", h.name)))?;
                let slot = slots[&h.name];
                let ifaces = segment::plan_ifaces(h, &self.segments, self.profile, slot.slot);
                Ok(Planned { profile: ifaces[0].profile, slot: ifaces[0].addrs, sysctls, dir, etc: Vec::new(), fs, spec: h.clone(), ifaces })
            })
            .collect()
    }

    /// Builds the lab: namespaces, switch, links and addresses, all usable on return.
    ///
    /// # Errors
    /// [`Error::Privileges`] without CAP_NET_ADMIN/CAP_SYS_ADMIN, [`Error::Invalid`] for a bad
    /// definition, and the kernel's refusal of any step otherwise. Nothing is left behind.
    #[tracing::instrument(name = "lab_build", level = "info", skip_all, fields(hosts = self.hosts.len()))]
    pub async fn build(mut self) -> Result<Lab> {
        if crate::os::chroot::inside() {
            return Err(Error::Invalid { what: crate::os::chroot::MESSAGE.into() });
        }
        let t_start = Instant::now();
        check_privileges()?;
        let link_specs: Vec<(String, crate::lab::link::LinkCondition)> = self.hosts.iter().filter_map(|s| Some((s.name.clone(), s.link.clone()?))).collect();
        let name = self.name.clone().unwrap_or_else(|| format!("lab{}-{}", std::process::id(), LAB_COUNTER.fetch_add(1, Ordering::Relaxed)));
        let root = self.artifacts_root.clone().unwrap_or_else(spec::default_artifacts_root);
        let base = self.artifacts_base.clone().filter(|b| root.starts_with(b)).unwrap_or_else(|| root.clone());
        // Made now, owner-only in a checked root, with the marker that lets `nslab gc` tell a
        // run that died; a build that fails removes it again.
        let artifacts = crate::os::artifacts::create_lab_dir(&root, &format!("{name}-{}", unique_suffix())).map_err(|e| Error::File {
            op: "create the artifact directory in",
            path: root.clone(),
            source: e.into(),
        })?;
        // As the directory's own path is: links resolved.
        let base = std::fs::canonicalize(&base).unwrap_or(base);
        let mut dir_guard = BuildGuard(Some((artifacts.clone(), base.clone())));
        let mut planned = self.plan(&name, &artifacts)?;
        self.plan_etc(&mut planned)?;
        let epoch = Instant::now();
        let registry = Arc::new(Registry::default());
        let rt = tokio::runtime::Handle::current();

        // 1. Namespaces, all at once, each configured from inside by its own short-lived thread.
        let switch_rt = rt.clone();
        let with_capture = self.capture.is_some();
        let switch = NetNs::create_with(move || -> std::io::Result<(Netlink, Option<crate::lab::capture::CaptureSocket>)> {
            for p in ["default", "all"] {
                sysctl::write(Path::new(&format!("/proc/sys/net/ipv6/conf/{p}/disable_ipv6")), "1")?;
            }
            // The link capture's socket; its ring is set up meanwhile, ready when the build ends.
            let capture = if with_capture { Some(LinkCapture::open_here()?) } else { None };
            Ok((Netlink::open_here(&switch_rt)?, capture))
        });
        let with_tap = self.dns_tap;
        let hosts_ns = try_join_all(planned.iter().map(|p| {
            let rt = rt.clone();
            let settings = base_sysctls(p);
            let hname = p.spec.name.clone();
            async move {
                type Made = (Netlink, Vec<(PathBuf, Sysctl)>, Option<std::os::fd::OwnedFd>);
                let (ns, res) = NetNs::create_with(move || -> Result<Made> {
                    let mut deferred = Vec::new();
                    for (path, s) in settings {
                        match sysctl::write(&path, &s.value) {
                            Ok(()) => {}
                            // Per-interface settings wait until the interface exists.
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => deferred.push((path, s)),
                            Err(source) => return Err(Error::Sysctl { host: hname.clone(), name: s.name, value: s.value, source }),
                        }
                    }
                    let nl = Netlink::open_here(&rt).map_err(|source| Error::Namespace { op: "open netlink", what: hname.clone(), source })?;
                    // The DNS tap's socket, made here where the thread already is in the namespace.
                    let tap = match with_tap {
                        true => Some(DnsTap::open_here().map_err(|source| Error::Namespace { op: "open the DNS packet tap", what: hname.clone(), source })?),
                        false => None,
                    };
                    Ok((nl, deferred, tap))
                })
                .await
                .map_err(|source| Error::Namespace { op: "create the network namespace", what: format!("host {}", p.spec.name), source })?;
                let (nl, deferred, tap) = res?;
                Ok::<_, Error>((ns, nl, deferred, tap))
            }
        }));
        let (switch, hosts_ns) = futures::future::join(switch, hosts_ns).await;
        let (switch_ns, switch_nl, capture_fd) = match switch {
            Ok((ns, Ok((nl, capture)))) => (ns, nl, capture),
            Ok((_, Err(source))) | Err(source) => {
                return Err(Error::Namespace { op: "create the network namespace", what: format!("the switch of lab {name}"), source })
            }
        };
        let mut hosts_ns = hosts_ns?;
        let tap_fds: Vec<Option<std::os::fd::OwnedFd>> = hosts_ns.iter_mut().map(|h| h.3.take()).collect();

        let t_ns = epoch.elapsed();
        // 2. The switch and one veth per host, the host end created directly in its namespace.
        let sw = format!("switch of lab {name}");
        let nl_ref = &switch_nl;
        if self.segments.is_empty() {
            let br = switch_nl.create_bridge("br0").await.map_err(|source| Error::Netlink { op: "create bridge br0".into(), what: sw.clone(), source })?;
            try_join_all(planned.iter().zip(&hosts_ns).map(|(p, (ns, _, _, _))| {
                let port = format!("p{}", p.slot.slot);
                let sw = sw.clone();
                async move {
                    nl_ref.create_veth(&port, br, &p.spec.name, &p.spec.interface, ns.fd(), p.slot.mac()).await.map_err(|source| Error::Netlink {
                        op: format!("create veth {port} <-> {}/{}", p.spec.name, p.spec.interface),
                        what: sw,
                        source,
                    })
                }
            }))
            .await?;
        } else {
            // One bridge per segment (br0, br1, ...), each with the segment's MTU.
            let bridges = try_join_all(self.segments.iter().enumerate().map(|(k, s)| {
                let sw = sw.clone();
                async move {
                    nl_ref.create_bridge_mtu(&format!("br{k}"), s.mtu).await.map_err(|source| Error::Netlink {
                        op: format!("create bridge br{k} of segment {}", s.name),
                        what: sw,
                        source,
                    })
                }
            }))
            .await?;
            let (bridges, sw) = (&bridges, &sw);
            try_join_all(planned.iter().zip(&hosts_ns).flat_map(|(p, (ns, _, _, _))| {
                p.ifaces.iter().enumerate().map(move |(i, f)| {
                    let port = f.port(p.slot.slot, i == 0);
                    let sw = sw.clone();
                    async move {
                        nl_ref.create_veth_mtu(&port, bridges[f.segment], &p.spec.name, &f.name, ns.fd(), f.addrs.mac_on(f.segment), f.mtu).await.map_err(
                            |source| Error::Netlink {
                                op: format!("create veth {port} <-> {}/{} (segment {})", p.spec.name, f.name, f.segment_name),
                                what: sw,
                                source,
                            },
                        )
                    }
                })
            }))
            .await?;
        }

        let t_sw = epoch.elapsed();
        // 3. Per host: late sysctls, then lo and addresses (links are up, so no first-packet delay).
        let shared: Vec<PathBuf> = std::iter::once(artifacts.clone()).chain(self.shared.iter().cloned()).collect();
        let hosts: Vec<Host> = try_join_all(planned.into_iter().zip(hosts_ns).map(|(p, (ns, nl, deferred, _))| {
            let registry = registry.clone();
            let shared = shared.clone();
            let shared_read_only = self.shared_read_only.clone();
            async move {
                let mut ifaces = Vec::with_capacity(p.ifaces.len());
                for (i, f) in p.ifaces.iter().enumerate() {
                    let index = nl.index_of(&f.name).await.map_err(|source| Error::Netlink {
                        op: format!("look up {}", f.name),
                        what: format!("host {}", p.spec.name),
                        source,
                    })?;
                    ifaces.push(crate::lab::segment::interface(f, index));
                    let _ = i;
                }
                let ifindex = ifaces[0].ifindex;
                let host = Host {
                    inner: Arc::new(HostInner {
                        name: p.spec.name.clone(),
                        profile: p.profile,
                        ns,
                        nl,
                        ifname: p.spec.interface.clone(),
                        ifindex,
                        slot: p.slot,
                        dir: p.dir,
                        etc: p.etc,
                        fs: p.fs,
                        shared: shared.clone(),
                        shared_read_only,
                        mounts: std::sync::OnceLock::new(),
                        etc_written: Mutex::new(false),
                        registry,
                        epoch,
                        diag: Mutex::new(None),
                        names: Mutex::new(Default::default()),
                        routes_at_down: Mutex::new(Vec::new()),
                        held: Mutex::new(Default::default()),
                        ifaces,
                        router: p.spec.router.map(Mutex::new),
                        dad: p.spec.dad,
                    }),
                };
                for (_, s) in deferred {
                    host.set_sysctl(&s.name, &s.value).await?;
                }
                let extra = &host.interfaces()[1..];
                futures::future::try_join(host.configure_addresses(p.spec.dad), try_join_all(extra.iter().map(|i| host.configure_interface(i)))).await?;
                Ok::<_, Error>(host)
            }
        }))
        .await?;
        // The switch ends of the veths: their bridge ports forward only once the link watch
        // has seen their carrier (the host ends were awaited when they came up).
        let routed = !self.segments.is_empty();
        let ports = try_join_all(
            hosts
                .iter()
                .flat_map(|h| {
                    h.interfaces()
                        .iter()
                        .enumerate()
                        .map(move |(i, f)| (h, if i == 0 { format!("p{}", h.slot().slot) } else { format!("p{}s{}", h.slot().slot, f.segment_index) }))
                })
                .map(|(h, port)| {
                    let what = format!("switch port {port} of host {} to forward", h.name());
                    let sw = &sw;
                    async move {
                        let index =
                            nl_ref.index_of(&port).await.map_err(|source| Error::Netlink { op: format!("look up {port}"), what: sw.clone(), source })?;
                        crate::os::netlink::wait_oper_up(nl_ref, index, what).await?;
                        Ok::<_, Error>(index)
                    }
                }),
        )
        .await?;
        tracing::debug!(lab = %name, plan = ?(epoch - t_start), namespaces = ?t_ns, switch = ?(t_sw - t_ns), hosts = ?(epoch.elapsed() - t_sw), "lab build phases");
        // The capture and the tap first: they see the first packet of the first program.
        let capture = match (capture_fd, self.capture) {
            (Some(fd), Some(ring)) => {
                // One link per port, named after its host (host@segment in a routed lab).
                let links = hosts
                    .iter()
                    .flat_map(|h| h.interfaces().iter().map(move |f| if routed { format!("{}@{}", h.name(), f.segment) } else { h.name().to_string() }))
                    .zip(ports.iter().map(|&i| i as i32))
                    .collect();
                Some(LinkCapture::start(fd, links, ring).map_err(|source| Error::Namespace {
                    op: "start the link capture's reader",
                    what: format!("lab {name}"),
                    source,
                })?)
            }
            _ => None,
        };
        let tap = if self.dns_tap {
            Some(DnsTap::start(&hosts, tap_fds, epoch).map_err(|source| Error::Namespace {
                op: "start the DNS packet tap's reader",
                what: format!("lab {name}"),
                source,
            })?)
        } else {
            None
        };
        let links = crate::lab::link::Links::default();
        // The rest may start programs (tayga): on failure, end them before returning.
        let rest = async {
            break_ipv6(&hosts).await?;
            if !self.segments.is_empty() {
                segment::setup(&hosts).await?;
            }
            if let Some(router) = hosts.iter().find(|h| h.name() == crate::lab::nat64::NAT64_HOST && hosts.iter().any(|o| o.profile().uses_nat64())) {
                crate::lab::nat64::setup(router, &hosts).await?;
            }
            let dns = match &self.dns {
                Some(cfg) => {
                    let host = hosts.iter().find(|h| h.name() == cfg.host_name()).expect("planned above");
                    Some(dns_host::start(cfg, &name, host, &hosts, epoch).await?)
                }
                None => None,
            };
            for (h, c) in &link_specs {
                let host = hosts.iter().find(|x| x.name() == h).expect("planned above");
                links.set(host, c).await?;
            }
            Ok::<_, Error>(dns)
        }
        .await;
        let dns = match rest {
            Ok(d) => d,
            Err(e) => {
                for p in registry.all() {
                    p.kill_now();
                }
                return Err(e);
            }
        };
        tracing::debug!(lab = %name, hosts = hosts.len(), elapsed = ?epoch.elapsed(), "lab built");
        let keep = self.keep_artifacts || std::env::var_os("NSLAB_KEEP_ARTIFACTS").is_some_and(|v| v == "1");
        dir_guard.0 = None;
        Ok(Lab {
            name,
            profile: self.profile,
            epoch,
            hosts,
            switch: Some((switch_ns, switch_nl)),
            artifacts: Some(artifacts),
            artifacts_base: base,
            keep: AtomicBool::new(keep),
            registry,
            dns,
            tap,
            capture,
            links,
            segments: segment::effective(&self.segments, self.profile).into_iter().map(|(n, _, _)| n).collect(),
        })
    }

    /// Decides each host's /etc files. They are written on the host's first spawn, so a lab that
    /// runs no program in a host costs no file system work for it (directory removal alone can
    /// take milliseconds on a busy disk).
    ///
    /// # Errors
    /// [`Error::Invalid`] when a host shares no address family with the lab's DNS host.
    fn plan_etc(&self, planned: &mut [Planned]) -> Result<()> {
        let entries: Vec<(String, Vec<std::net::IpAddr>)> = if self.hosts_entries {
            planned
                .iter()
                .map(|p| {
                    let mut a: Vec<std::net::IpAddr> = Vec::new();
                    if p.profile.has_ipv4() {
                        a.push(p.slot.v4.into());
                    }
                    if p.profile.has_global_ipv6() {
                        a.push(p.slot.v6.into());
                    }
                    (p.spec.name.clone(), a)
                })
                .collect()
        } else {
            Vec::new()
        };
        let hosts_text = etc::hosts(&entries, LAB_DOMAIN);
        let dns_server = self
            .dns
            .as_ref()
            .and_then(|d| planned.iter().find(|p| p.spec.name == d.host_name()))
            .map(|p| (p.slot, p.spec.name.clone(), p.profile, p.ifaces.iter().map(|f| (f.segment, f.addrs, f.profile)).collect::<Vec<_>>()));
        let search = self.dns.as_ref().map(|d| d.search()).unwrap_or_else(|| vec![LAB_DOMAIN.to_string()]);
        let slots: Vec<(String, SlotAddrs, Profile)> = planned.iter().map(|p| (p.spec.name.clone(), p.slot, p.profile)).collect();
        for p in planned.iter_mut() {
            let etc_dir = p.dir.join("etc");
            let ns = match &p.spec.resolver {
                Resolver::LabDns => match &dns_server {
                    Some((slot, name, prof, on)) => {
                        // Its address on this host's own (first) segment: DNS does not depend on routing.
                        let (slot, prof) = on.iter().find(|(k, _, _)| *k == p.ifaces[0].segment).map(|(_, s, pr)| (s, *pr)).unwrap_or((slot, *prof));
                        dns_host::nameservers(slot, name, prof, &p.spec.name, p.profile, &p.spec.interface).map_err(|what| Error::Invalid { what })?
                    }
                    None => Vec::new(),
                },
                Resolver::Host(r) if *r == p.spec.name => vec!["127.0.0.1".to_string()],
                Resolver::Host(r) => {
                    let Some((_, slot, prof)) = slots.iter().find(|(n, _, _)| n == r) else {
                        let names: Vec<&str> = slots.iter().map(|(n, _, _)| n.as_str()).collect();
                        return Err(Error::Invalid {
                            what: format!(
                                "host {:?} names host {r:?} as its resolver, which the lab does not have; expected one of {}",
                                p.spec.name,
                                names.join(", ")
                            ),
                        });
                    };
                    dns_host::nameservers(slot, r, *prof, &p.spec.name, p.profile, &p.spec.interface).map_err(|_| Error::Invalid {
                        what: format!(
                            "host {:?} (profile {}) shares no address family with its resolver host {r:?} (profile {prof}), so it could not reach its resolver; \
                             give one of them a profile with a family in common",
                            p.spec.name, p.profile
                        ),
                    })?
                }
                Resolver::Address(ip) => vec![spec::resolver_address(&p.spec.name, p.profile, &p.spec.interface, *ip).map_err(|what| Error::Invalid { what })?],
            };
            let resolv_text = etc::resolv_conf(&ns, &search, &p.spec.resolv);
            let mut files = vec![("hosts", hosts_text.clone(), "/etc/hosts"), ("resolv.conf", resolv_text, "/etc/resolv.conf")];
            if let Some(g) = &p.spec.gai_conf {
                files.push(("gai.conf", g.clone(), "/etc/gai.conf"));
            }
            p.etc = files
                .into_iter()
                .map(|(file, text, target)| match p.fs.inside_copy(Path::new(target)) {
                    Some(path) => EtcFile { path, text, target, mounted: false },
                    None => EtcFile { path: etc_dir.join(file), text, target, mounted: true },
                })
                .collect();
        }
        Ok(())
    }
}

/// The sysctls a host's namespace gets before any interface exists, so that its lab interface
/// is born with them: the profile's, then bindv6only, then the user's.
fn base_sysctls(p: &Planned) -> Vec<(PathBuf, Sysctl)> {
    let mut v: Vec<(&str, String)> = Vec::new();
    let mut per_if: Vec<(String, String)> = Vec::new();
    if p.ifaces.len() > 1 && p.ifaces.iter().any(|f| f.profile.ipv6_enabled()) {
        // A host between segments where only some have IPv6: IPv6 on in the namespace, off on
        // the interfaces whose segment has none (set once they exist).
        v.push(("net.ipv6.conf.default.addr_gen_mode", "1".into()));
        v.push(("net.ipv6.conf.default.accept_ra", "0".into()));
        v.push(("net.ipv6.conf.default.router_solicitations", "0".into()));
        v.push(("net.ipv6.conf.default.accept_dad", if p.spec.dad { "1" } else { "0" }.into()));
        // (Below IPv6's minimum MTU the kernel gives the interface no IPv6 at all, nor its sysctls.)
        for f in p.ifaces.iter().filter(|f| !f.profile.ipv6_enabled() && f.mtu.is_none_or(|m| m >= segment::IPV6_MIN_MTU)) {
            per_if.push((format!("net.ipv6.conf.{}.disable_ipv6", f.name), "1".into()));
        }
    } else if p.profile.ipv6_enabled() {
        // No kernel-made link-local address (the lab sets a stable one), no router
        // solicitations, and no DAD unless asked: addresses are usable the moment they are added.
        v.push(("net.ipv6.conf.default.addr_gen_mode", "1".into()));
        v.push(("net.ipv6.conf.default.accept_ra", "0".into()));
        v.push(("net.ipv6.conf.default.router_solicitations", "0".into()));
        v.push(("net.ipv6.conf.default.accept_dad", if p.spec.dad { "1" } else { "0" }.into()));
    } else {
        v.push(("net.ipv6.conf.default.disable_ipv6", "1".into()));
        v.push(("net.ipv6.conf.all.disable_ipv6", "1".into()));
    }
    if let Some(b) = p.spec.bindv6only {
        v.push(("net.ipv6.bindv6only", if b { "1" } else { "0" }.into()));
    }
    if p.spec.router.is_some() {
        v.push(("net.ipv4.ip_forward", "1".into()));
        if p.ifaces.iter().any(|f| f.profile.ipv6_enabled()) {
            v.push(("net.ipv6.conf.all.forwarding", "1".into()));
        }
    }
    let mut out: Vec<(PathBuf, Sysctl)> =
        v.into_iter().map(|(n, val)| (sysctl::sysctl_path(n).expect("built-in names are valid"), Sysctl { name: n.into(), value: val })).collect();
    out.extend(per_if.into_iter().map(|(n, val)| (sysctl::sysctl_path(&n).expect("interface names are checked"), Sysctl { name: n, value: val })));
    out.extend(p.sysctls.iter().cloned());
    out
}

/// The MAC of the `broken-ipv6` profile's neighbour entries: no lab host has it, so frames to it
/// are flooded by the switch and dropped by every host, silently, as on a broken path.
const NOBODY_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0xde, 0xad];

/// In each `broken-ipv6` host, points every other host's IPv6 addresses at [`NOBODY_MAC`].
async fn break_ipv6(hosts: &[Host]) -> Result<()> {
    let reqs = hosts
        .iter()
        .filter(|h| h.profile().ipv6_broken())
        .flat_map(|h| hosts.iter().filter(move |o| o.name() != h.name()).flat_map(|o| o.ipv6().into_iter().chain(o.link_local())).map(move |ip| (h, ip)));
    try_join_all(reqs.map(|(h, ip)| async move {
        h.inner.nl.add_neighbour(h.inner.ifindex, ip.into(), NOBODY_MAC).await.map_err(|source| Error::Netlink {
            op: format!("add a permanent neighbour {ip} -> {:02x?} (broken-ipv6)", NOBODY_MAC),
            what: format!("host {}", h.name()),
            source,
        })
    }))
    .await?;
    Ok(())
}

/// Removes the artifact directory of a build that failed (nothing of it is kept).
struct BuildGuard(Option<(PathBuf, PathBuf)>);

impl Drop for BuildGuard {
    fn drop(&mut self) {
        if let Some((dir, base)) = self.0.take() {
            let _ = crate::os::artifacts::remove(&dir, &base);
        }
    }
}

/// A random suffix for artifact directory names (labs of several processes share a root).
fn unique_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    format!("{:06x}", h.finish() & 0xff_ffff)
}

/// Fails early, with a message that says what to do, when this process cannot build labs.
fn check_privileges() -> Result<()> {
    const NET_ADMIN: u64 = 1 << 12;
    const SYS_ADMIN: u64 = 1 << 21;
    let caps = crate::sys::effective_caps().unwrap_or(0);
    let mut missing = Vec::new();
    if caps & NET_ADMIN == 0 {
        missing.push("CAP_NET_ADMIN");
    }
    if caps & SYS_ADMIN == 0 {
        missing.push("CAP_SYS_ADMIN");
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Privileges {
        missing: missing.join(" and "),
        hint: "run as root, or call nslab::testing::enter() first thing in main (the nslab command and nslab's test binaries do), or work in a VM made with the repository's Vagrantfile".into(),
    })
}

impl Lab {
    /// Starts describing a lab (dual-stack unless [`LabBuilder::profile`] says otherwise).
    pub fn builder() -> LabBuilder {
        LabBuilder {
            name: None,
            profile: Profile::DualStack,
            hosts: Vec::new(),
            artifacts_root: None,
            artifacts_base: None,
            keep_artifacts: false,
            hosts_entries: true,
            dns: None,
            shared: Vec::new(),
            shared_read_only: Vec::new(),
            dns_tap: true,
            // Off unless asked (its build cost is in BENCHMARKS.md); scenario trials ask.
            capture: crate::lab::capture::ring_from_env().filter(|&b| b > 0),
            segments: Vec::new(),
        }
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lab-wide profile.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The instant the lab was built; process output and exits are timed from it.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Time since the lab was built.
    pub fn elapsed(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// The hosts, in declaration order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The host called `name`.
    ///
    /// # Errors
    /// [`Error::UnknownHost`] listing the hosts there are.
    pub fn host(&self, name: &str) -> Result<&Host> {
        self.hosts.iter().find(|h| h.name() == name).ok_or_else(|| Error::UnknownHost {
            lab: self.name.clone(),
            host: name.into(),
            known: self.hosts.iter().map(|h| h.name()).collect::<Vec<_>>().join(", "),
        })
    }

    /// The lab's artifact directory (output logs, per-host /etc files).
    ///
    /// Made owner-only at build; [`Lab::teardown`] removes it (or keeps it).
    pub fn artifacts(&self) -> &Path {
        self.artifacts.as_deref().unwrap_or(Path::new(""))
    }

    /// Keeps the artifact directory after teardown, e.g. because a check failed.
    pub fn keep_artifacts(&self) {
        self.keep.store(true, Ordering::Relaxed);
    }

    /// The lab's DNS server (runtime control, faults, query log), if it has one.
    pub fn dns(&self) -> Option<&DnsServer> {
        self.dns.as_ref()
    }

    /// The DNS packet tap (every DNS message any host sent, in lab time), unless the lab was
    /// built with [`LabBuilder::dns_tap`]`(false)`. Call [`DnsTap::settle`] before reading its
    /// log to include every packet sent so far.
    pub fn dns_traffic(&self) -> Option<&DnsTap> {
        self.tap.as_ref()
    }

    /// The packet capture of every lab link, unless the lab was built with
    /// [`LabBuilder::capture_ring`]`(None)`. Call [`LinkCapture::settle`] before reading it.
    pub fn link_capture(&self) -> Option<&LinkCapture> {
        self.capture.as_ref()
    }

    /// Streams the frames of the links of `hosts` (all links when empty; `host@segment` names
    /// one link of a routed lab) from now on as pcapng to `w`, flushed after each frame
    /// (`| wireshark -k -i -` shows them live). The stream ends with the lab, a failed write,
    /// or [`crate::lab::capture::CaptureStream::stop`].
    ///
    /// # Errors
    /// [`Error::Invalid`] when the lab has no capture or a name matches no link; [`Error::Namespace`] when the
    /// first blocks cannot be written or the stream's thread cannot be made.
    pub fn capture<W: std::io::Write + Send + 'static>(&self, hosts: &[&str], w: W) -> Result<crate::lab::capture::CaptureStream> {
        let c = self.capture.as_ref().ok_or_else(|| Error::Invalid { what: format!("lab {} was built without packet capture", self.name) })?;
        let links = c.select(hosts).map_err(|what| Error::Invalid { what })?;
        c.stream(links, w).map_err(|source| Error::Namespace { op: "start a capture stream", what: format!("lab {}", self.name), source })
    }

    /// Inode numbers of every namespace the lab holds (switch first), as `/proc/PID/ns/net`
    /// shows them: what a leak check looks for after the lab is gone.
    pub fn netns_inodes(&self) -> Vec<u64> {
        self.switch.iter().map(|(ns, _)| ns.inode()).chain(self.hosts.iter().map(|h| h.netns().inode())).collect()
    }

    /// Process ids of the inits of every program the lab started (running or not).
    pub fn process_ids(&self) -> Vec<u32> {
        self.registry.all().iter().map(|p| p.pid).collect()
    }

    /// Host name to addresses, for reports: every interface's, primary first.
    pub fn address_table(&self) -> BTreeMap<String, Vec<std::net::IpAddr>> {
        self.hosts.iter().map(|h| (h.name().to_string(), h.interfaces().iter().flat_map(|i| i.addrs()).collect())).collect()
    }

    /// Host name to its interfaces, each with its segment and addresses, for reports.
    pub fn interface_table(&self) -> BTreeMap<String, Vec<crate::lab::segment::Interface>> {
        self.hosts.iter().map(|h| (h.name().to_string(), h.interfaces().to_vec())).collect()
    }

    /// Its segments' names, in declaration order (`lan` when it declares none).
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Changes what router `router` does with packets of `family` it would forward (see
    /// [`Host::set_route`]).
    ///
    /// # Errors
    /// [`Error::UnknownHost`], or those of [`Host::set_route`].
    pub async fn set_route(&self, router: &str, family: crate::host::listeners::Family, state: crate::lab::segment::RouteState) -> Result<()> {
        self.host(router)?.set_route(family, state).await
    }

    /// Ends every process (SIGKILL to each process tree), releases every namespace and removes
    /// the artifacts unless they are to be kept. Runs every step and reports all failures.
    ///
    /// Returns the artifact directory if it was kept.
    ///
    /// # Errors
    /// [`TeardownError`] with one entry per failed step.
    #[tracing::instrument(name = "lab_teardown", level = "info", skip_all, fields(lab = %self.name))]
    pub async fn teardown(mut self) -> std::result::Result<Option<PathBuf>, TeardownError> {
        let mut failures = Vec::new();
        if let Some(dns) = self.dns.take() {
            if let Err(source) = dns.shutdown().await {
                failures.push(Error::Dns { lab: self.name.clone(), source });
            }
            self.save_query_log(&dns, &mut failures);
        }
        let procs = self.registry.all();
        for p in &procs {
            p.kill_now();
        }
        for p in procs {
            let mut rx = p.exit.clone();
            if tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|e| e.is_some())).await.is_err() {
                failures.push(Error::Timeout { what: format!("{} to die after SIGKILL", p.label()), timeout: Duration::from_secs(5), tail: String::new() });
            }
        }
        // Every program is gone: what they sent is queued in the tap; read it, then close it.
        if let Some(tap) = self.tap.take() {
            let log = tap.log().clone();
            tap.stop().await;
            // Only into artifacts that stay: a passing lab's directory goes anyway.
            if !failures.is_empty() || self.keep.load(Ordering::Relaxed) {
                self.save_traffic(&log, &mut failures);
            }
        }
        if let Some(mut capture) = self.capture.take() {
            // Its last frames read, then written (only into artifacts that stay).
            let save = !failures.is_empty() || self.keep.load(Ordering::Relaxed);
            capture.stop(save).await;
            if save {
                self.save_capture(&capture, &mut failures);
            }
        }
        // The link queues accept what they hold and close their sockets (which hold namespaces).
        let links = std::mem::take(&mut self.links);
        let _ = tokio::task::spawn_blocking(move || links.stop_all()).await;
        // Dropping the last descriptors lets the kernel delete namespaces and their interfaces.
        self.hosts.clear();
        self.switch = None;
        let kept = self.finish_artifacts(!failures.is_empty(), &mut failures);
        if failures.is_empty() {
            Ok(kept)
        } else {
            Err(TeardownError { lab: self.name.clone(), failures })
        }
    }

    /// Writes the DNS query log to `dns/queries.jsonl` in the artifacts.
    fn save_query_log(&self, dns: &DnsServer, failures: &mut Vec<Error>) {
        let dir = self.artifacts().join("dns");
        let path = dir.join("queries.jsonl");
        if let Err(e) = crate::os::fsafe::artifact_dir(&dir) {
            failures.push(Error::File { op: "create", path: dir, source: e.into() });
            return;
        }
        if let Err(e) = dns.log().write_jsonl(&path) {
            failures.push(Error::File { op: "write the DNS query log to", path, source: std::io::Error::other(e) });
        }
    }

    /// Writes the DNS traffic log to `dns-traffic.jsonl` in the artifacts.
    fn save_traffic(&self, log: &crate::dns::TrafficLog, failures: &mut Vec<Error>) {
        let path = self.artifacts().join("dns-traffic.jsonl");
        if let Err(e) = log.write_jsonl(&path) {
            failures.push(Error::File { op: "write the DNS traffic log to", path, source: std::io::Error::other(e) });
        }
    }

    /// Writes the link capture to `capture.pcapng` in the artifacts.
    fn save_capture(&self, capture: &LinkCapture, failures: &mut Vec<Error>) {
        if let Err(source) = capture.save(self.artifacts()) {
            failures.push(Error::File { op: "write the link capture to", path: self.artifacts().join(crate::lab::capture::CAPTURE_FILE), source });
        }
    }

    fn finish_artifacts(&mut self, failed: bool, failures: &mut Vec<Error>) -> Option<PathBuf> {
        let path = self.artifacts.take()?;
        if failed || self.keep.load(Ordering::Relaxed) {
            // Kept: evidence, no longer this process's to remove, nor `nslab gc`'s.
            crate::os::artifacts::release(&path);
            tracing::info!(lab = %self.name, artifacts = %path.display(), "artifacts kept");
            return Some(path);
        }
        if let Err(e) = crate::os::artifacts::remove(&path, &self.artifacts_base) {
            failures.push(Error::File { op: "remove artifact directory", path, source: e });
        }
        None
    }
}

impl Drop for Lab {
    /// The backstop: a lab dropped without [`Lab::teardown`] is on an error path (an early
    /// return, a failed check, a panic), so its processes are killed, its namespaces released,
    /// and its artifacts kept, with their path printed: a failure never loses its evidence.
    fn drop(&mut self) {
        if self.artifacts.is_none() {
            return; // torn down
        }
        let mut failures = Vec::new();
        if let Some(dns) = self.dns.take() {
            self.save_query_log(&dns, &mut failures);
        }
        for p in self.registry.all() {
            p.kill_now();
        }
        if let Some(tap) = self.tap.take() {
            let log = tap.log().clone();
            drop(tap);
            self.save_traffic(&log, &mut failures);
        }
        if let Some(mut capture) = self.capture.take() {
            capture.stop_now();
            self.save_capture(&capture, &mut failures);
        }
        self.links.stop_all();
        self.hosts.clear();
        self.switch = None;
        self.keep.store(true, Ordering::Relaxed);
        if let Some(path) = self.finish_artifacts(false, &mut failures) {
            // The one message a failing test must show: where its evidence is. The library does
            // not print: it is logged, and nslab::testing::main prints the list when its tests end.
            tracing::warn!(lab = %self.name, artifacts = %path.display(), "lab was not torn down (error or panic); artifacts kept");
            crate::os::artifacts::note_kept(&self.name, &path);
        }
    }
}

impl Lab {
    /// Applies a link condition (loss, delay, jitter, rate; see [`crate::lab::link`]) to the
    /// packets `host` sends on its lab interface, replacing the one it had.
    ///
    /// # Errors
    /// [`Error::UnknownHost`]; the errors of [`crate::lab::link::Links::set`].
    pub async fn set_link_condition(&self, host: &str, cond: &crate::lab::link::LinkCondition) -> Result<()> {
        let h = self.host(host)?.clone();
        self.links.set(&h, cond).await
    }

    /// Removes `host`'s link condition, returning what it achieved until then (`None` when it
    /// had none).
    ///
    /// # Errors
    /// [`Error::UnknownHost`]; the errors of [`crate::lab::link::Links::clear`].
    pub async fn clear_link_condition(&self, host: &str) -> Result<Option<crate::lab::link::LinkFigures>> {
        let h = self.host(host)?.clone();
        self.links.clear(&h).await
    }

    /// Asked vs achieved for `host`'s current link condition (`None` when it has none).
    ///
    /// # Errors
    /// [`Error::UnknownHost`]; the errors of [`crate::lab::link::Links::figures`].
    pub async fn link_figures(&self, host: &str) -> Result<Option<crate::lab::link::LinkFigures>> {
        self.host(host)?;
        self.links.figures(host).await
    }

    /// The lab's link conditions (figures of every conditioned host, queue thread ids).
    pub fn links(&self) -> &crate::lab::link::Links {
        &self.links
    }

    /// The lab's DNS server (runtime control, faults, query log).
    ///
    /// # Errors
    /// [`Error::NoDns`] when the lab was built without [`crate::LabBuilder::dns`].
    pub fn dns_server(&self) -> Result<&DnsServer> {
        self.dns().ok_or_else(|| Error::NoDns { lab: self.name().to_string() })
    }

    /// Waits until the lab's DNS server has logged a query matching `filter` and returns the
    /// oldest that does (see [`crate::dns::QueryLog::wait`]): for instance the query a client
    /// made after a change, `LogFilter::new().name("app.example.test").host(client).since(t)`.
    ///
    /// # Errors
    /// [`Error::NoDns`] without a DNS server; [`Error::Timeout`] when no such query came within
    /// `timeout` (a guard against a hang), with the last queries the server did log.
    pub async fn wait_query(&self, filter: &LogFilter, timeout: std::time::Duration) -> Result<QueryLogEntry> {
        let log = self.dns_server()?.log();
        match tokio::time::timeout(timeout, log.wait(filter)).await {
            Ok(e) => Ok(e),
            Err(_) => {
                let all = log.entries();
                let last = &all[all.len().saturating_sub(10)..];
                let mut tail = if last.is_empty() {
                    "\n  (the server logged no query)".to_string()
                } else {
                    format!("\n  last {} of {} logged queries:", last.len(), all.len())
                };
                for e in last {
                    tail.push_str(&format!(
                        "\n  | {:?} {} {} {} {} -> {}",
                        e.at,
                        e.client,
                        e.transport,
                        e.name,
                        e.qtype.map(|t| t.to_string()).unwrap_or_default(),
                        e.rcode_name()
                    ));
                }
                Err(Error::Timeout { what: format!("a DNS query in lab {} ({filter})", self.name()), timeout, tail })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resolver_address_must_be_in_a_family_the_host_has() {
        let a = |p: Profile, ip: &str| spec::resolver_address("client", p, "eth0", ip.parse().unwrap());
        assert_eq!(a(Profile::Ipv6Only, "127.0.0.1").unwrap(), "127.0.0.1");
        assert_eq!(a(Profile::DualStack, "::1").unwrap(), "::1");
        assert_eq!(a(Profile::DualStack, "fe80::53").unwrap(), "fe80::53%eth0");
        assert_eq!(a(Profile::DualStack, "2001:db8:1::53").unwrap(), "2001:db8:1::53");
        assert_eq!(
            a(Profile::Ipv6Only, "192.0.2.53").unwrap_err(),
            "host \"client\" (profile ipv6-only) has no IPv4, so it could not reach its resolver 192.0.2.53; expected an address in a family the host has"
        );
        assert!(a(Profile::Ipv4Only, "::1").unwrap_err().contains("has no IPv6 (loopback ::1)"));
        assert!(a(Profile::Ipv4Only, "2001:db8:1::53").unwrap_err().contains("has no global IPv6"));
        assert!(a(Profile::NoIpv6, "fe80::53").is_err());
    }

    #[test]
    fn address_plan_without_building_includes_the_labs_own_hosts() {
        use crate::addr::plan::assign_slots;
        use crate::addr::profile::Profile;
        use crate::lab::dns_host::LabDns;
        use crate::lab::spec::HostSpec;
        let b = Lab::builder().profile(Profile::Ipv6OnlyNat64).hosts([HostSpec::new("web"), HostSpec::new("old").profile(Profile::Ipv4Only).interface("lan0")]);
        let plan = b.clone().dns(LabDns::new()).address_plan().unwrap();
        assert_eq!(plan.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), vec!["dns", "nat64", "old", "web"]);
        let slots = assign_slots(["dns", "nat64", "old", "web"]).unwrap();
        let web = &plan[3];
        assert_eq!((web.profile, web.ipv4, web.ipv6, web.link_local), (Profile::Ipv6OnlyNat64, None, Some(slots["web"].v6), Some(slots["web"].link_local)));
        let old = &plan[2];
        assert_eq!((old.interface.as_str(), old.ipv4, old.ipv6, old.link_local), ("lan0", Some(slots["old"].v4), None, None));
        assert_eq!(plan[0].profile, Profile::DualStack, "the DNS host is dual-stack");
        // What build() refuses, address_plan refuses too.
        let twice = Lab::builder().hosts(["a", "a"]).address_plan().unwrap_err().to_string();
        assert!(twice.contains("host \"a\" is declared twice"), "{twice}");
    }
}
