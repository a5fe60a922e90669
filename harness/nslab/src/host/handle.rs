//! One lab host: its namespace, addresses, /etc files, programs and sockets.

use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::addr::plan::{SlotAddrs, IPV4_PREFIX, IPV6_PREFIX};
use crate::addr::profile::Profile;
use crate::error::{Error, Result};
use crate::host::listeners::{self, Listen, Listener};
use crate::host::output::Output;
use crate::host::process::{Command, Process, Registry};
use crate::os::netlink::Netlink;
use crate::os::netns::NetNs;
use crate::os::sysctl;
use crate::sys;

/// One of a host's own /etc files: where the lab keeps it, its content, what it covers.
#[derive(Debug, Clone)]
pub(crate) struct EtcFile {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
    pub(crate) target: &'static str,
    /// Bind-mounted over `target`; false when `path` is inside the host's own copy of a
    /// private directory, where the machine's `target` leads through a link.
    pub(crate) mounted: bool,
}

/// Where a program starts: the directory asked for, or the harness's own (see
/// [`Command::current_dir`]).
fn work_dir(cmd: &Command) -> std::io::Result<sys::WorkDir> {
    let here = std::env::current_dir();
    let (path, required) = match (&cmd.cwd, here) {
        (Some(d), _) if d.is_absolute() => (d.clone(), true),
        (Some(d), Ok(here)) => (here.join(d), true),
        (Some(_), Err(e)) => return Err(e),
        (None, Ok(here)) => (here, false),
        (None, Err(_)) => (PathBuf::from("/"), false),
    };
    let path = CString::new(path.as_os_str().as_bytes()).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    Ok(sys::WorkDir { path, required })
}

/// A bind mount of a host's programs: source, target, whether it carries the mounts below its
/// source, and whether it is read-only.
pub(crate) type Mount = (PathBuf, PathBuf, bool, bool);

/// A lab host. Cheap to clone; valid until its lab is torn down.
#[derive(Clone)]
pub struct Host {
    pub(crate) inner: Arc<HostInner>,
}

pub(crate) struct HostInner {
    pub(crate) name: String,
    pub(crate) profile: Profile,
    pub(crate) ns: NetNs,
    pub(crate) nl: Netlink,
    pub(crate) ifname: String,
    pub(crate) ifindex: u32,
    pub(crate) slot: SlotAddrs,
    pub(crate) dir: PathBuf,
    pub(crate) etc: Vec<EtcFile>,
    /// Its own /run, /tmp, ... and private paths (made on the first spawn).
    pub(crate) fs: crate::host::hostfs::HostFs,
    /// Machine directories its programs must see at their own path even inside a private
    /// directory: the lab's artifact directory, and what the lab builder adds.
    pub(crate) shared: Vec<PathBuf>,
    /// Machine directories its programs see read-only at their own path, wherever they are.
    pub(crate) shared_read_only: Vec<PathBuf>,
    /// Every bind mount of its programs (source, target, recursive, read-only), decided on the first spawn.
    pub(crate) mounts: std::sync::OnceLock<Vec<Mount>>,
    /// Whether the host's directory and /etc files exist yet (made on the first spawn).
    pub(crate) etc_written: Mutex<bool>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) epoch: Instant,
    pub(crate) diag: Mutex<Option<netlink_sys::Socket>>,
    /// How many processes of each name were started, for unique log file names.
    pub(crate) names: Mutex<std::collections::HashMap<String, u32>>,
    /// Routes through a gateway the lab interface had when it was last set down (destination,
    /// prefix, gateway): put back when it comes up.
    pub(crate) routes_at_down: Mutex<Vec<(IpAddr, u8, IpAddr)>>,
    /// Addresses held tentative (see [`crate::host::dad`]).
    pub(crate) held: Mutex<Held>,
    /// Every lab interface, primary first (see [`crate::lab::segment`]).
    pub(crate) ifaces: Vec<crate::host::interfaces::Interface>,
    /// Its router settings, as they are now (a timeline may change its routes).
    pub(crate) router: Option<Mutex<crate::host::interfaces::RouterSpec>>,
    /// Whether its IPv6 addresses run duplicate address detection (the spec's `dad`).
    pub(crate) dad: bool,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("name", &self.inner.name).field("profile", &self.inner.profile).finish()
    }
}

impl Host {
    /// The host's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The profile applied to it.
    pub fn profile(&self) -> Profile {
        self.inner.profile
    }

    /// Name of its lab interface (`eth0` unless set otherwise).
    pub fn interface(&self) -> &str {
        &self.inner.ifname
    }

    /// Its IPv4 address on the lab segment, if its profile has one.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.inner.profile.has_ipv4().then_some(self.inner.slot.v4)
    }

    /// Its global IPv6 address, if its profile has one.
    pub fn ipv6(&self) -> Option<Ipv6Addr> {
        self.inner.profile.has_global_ipv6().then_some(self.inner.slot.v6)
    }

    /// Its link-local address (use with [`Host::interface`] as scope), if its profile has one.
    /// To connect to it, [`Host::link_local_of`] gives the scoped socket address.
    pub fn link_local(&self) -> Option<Ipv6Addr> {
        self.inner.profile.has_link_local().then_some(self.inner.slot.link_local)
    }

    /// Index of its lab interface inside its own network namespace (recorded when the lab was
    /// built): the scope id of a link-local socket address used in this host.
    pub fn ifindex(&self) -> u32 {
        self.inner.ifindex
    }

    /// Its own link-local address with `port`, scoped to its lab interface: what a server in
    /// this host binds to serve link-local clients. `None` when its profile has no link-local
    /// address.
    pub fn link_local_addr(&self, port: u16) -> Option<SocketAddrV6> {
        self.link_local().map(|ip| SocketAddrV6::new(ip, port, 0, self.ifindex()))
    }

    /// `peer`'s link-local address with `port`, scoped to *this* host's lab interface: what a
    /// client in this host connects to (the scope id names the connecting side's interface, whose
    /// index need not be the peer's; without one, connect fails with EINVAL). `None` when either
    /// host has no link-local address.
    ///
    /// ```no_run
    /// # async fn demo(lab: &nslab::Lab) -> nslab::Result<()> {
    /// let (server, client) = (lab.host("server")?, lab.host("client")?);
    /// let listener = server.bind_tcp(server.link_local_addr(8080).expect("link-local").into()).await?;
    /// let conn = client.connect_tcp(client.link_local_of(server, 8080).expect("link-local").into()).await?;
    /// # let _ = (listener, conn);
    /// # Ok(()) }
    /// ```
    pub fn link_local_of(&self, peer: &Host, port: u16) -> Option<SocketAddrV6> {
        self.link_local()?;
        peer.link_local().map(|ip| SocketAddrV6::new(ip, port, 0, self.ifindex()))
    }

    /// Its routable addresses: IPv4 then global IPv6, as the profile allows.
    pub fn addrs(&self) -> Vec<IpAddr> {
        self.ipv4().map(IpAddr::V4).into_iter().chain(self.ipv6().map(IpAddr::V6)).collect()
    }

    /// The addresses a host's slot would have in a dual-stack lab, whatever its profile.
    pub fn slot(&self) -> SlotAddrs {
        self.inner.slot
    }

    /// Whether its IPv6 addresses run duplicate address detection (set by [`crate::HostSpec::dad`]),
    /// those the kernel makes from router advertisements included.
    pub fn dad(&self) -> bool {
        self.inner.dad
    }

    /// Its network namespace.
    pub fn netns(&self) -> &NetNs {
        &self.inner.ns
    }

    /// The content the lab gives its programs at `/etc/<name>` (`hosts`, `resolv.conf`,
    /// `gai.conf`), whether or not a program has run yet; `None` for any other file.
    pub fn etc_file(&self, name: &str) -> Option<&str> {
        self.inner.etc.iter().find(|f| f.target.strip_prefix("/etc/") == Some(name)).map(|f| f.text.as_str())
    }

    /// Its artifact directory (output logs, /etc files under `etc/`), made on its first spawn.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Where the lab keeps this host's own copy of the machine directory `path`: `/run`,
    /// `/tmp`, `/var/tmp` (and `/var/run` where it is a directory), or a path given to
    /// [`crate::HostSpec::private`]. What the host's programs write there is in this directory
    /// (created on the host's first spawn), never in the machine's. `None` for any other path.
    pub fn private_copy(&self, path: impl AsRef<Path>) -> Option<&Path> {
        self.inner.fs.copy_of(path.as_ref())
    }

    /// Starts `cmd` inside this host: its network namespace, a private mount namespace with the
    /// host's own /run, /tmp, /var/tmp and private paths, and its /etc files, over the machine's, the host's name as its host name (UTS namespace), and
    /// its own PID namespace so that nothing it starts can outlive it or the harness.
    ///
    /// # Errors
    /// [`Error::Spawn`] when the program cannot be executed or the namespaces cannot be set up.
    #[tracing::instrument(name = "spawn", level = "debug", skip_all, fields(host = %self.name(), program = %cmd.display_name()))]
    pub async fn spawn(&self, cmd: Command) -> Result<Process> {
        let h = &self.inner;
        let base = cmd.display_name();
        let name = {
            let mut used = h.names.lock().unwrap_or_else(|e| e.into_inner());
            let n = used.entry(base.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                base
            } else {
                format!("{base}.{n}")
            }
        };
        let spawn_err = |source| Error::Spawn { host: h.name.clone(), program: cmd.program.to_string_lossy().into_owned(), source };
        self.write_etc()?;
        let binds = self.bind_mounts().map_err(spawn_err)?;
        let output = Arc::new(Output::new(h.epoch, &h.dir, &name));
        let seccomp = if h.profile.ipv6_absent() { Some(sys::no_ipv6_filter().map_err(spawn_err)?) } else { None };
        let hostname = CString::new(h.name.as_str()).map_err(|e| spawn_err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        let begun = h.epoch.elapsed();
        let cwd = work_dir(&cmd).map_err(spawn_err)?;
        let mut tokio_cmd = cmd.to_tokio();
        if let Some(warp) = &cmd.warp {
            tokio_cmd.envs(self.warp_env(&cmd, warp)?);
        }
        let spawned = sys::spawn_in_lab(tokio_cmd, h.ns.fd(), binds, hostname, seccomp, cwd).await.map_err(spawn_err)?;
        tracing::debug!(host = %h.name, process = %name, pid = spawned.child.id(), "spawned");
        let p = Process::supervise(spawned, &h.name, name, output, h.epoch, begun);
        h.registry.add(p.shared.clone());
        Ok(p)
    }

    /// The environment of a warped program of this host (the preload library placed in the
    /// host's own /run), or why it cannot be warped.
    fn warp_env(&self, cmd: &Command, warp: &crate::time::TimeWarp) -> Result<Vec<(std::ffi::OsString, std::ffi::OsString)>> {
        let refuse = |reason: String| Error::TimeWarp { program: cmd.program.to_string_lossy().into_owned(), reason };
        crate::time::TimeWarp::check_program(Path::new(&cmd.program)).map_err(refuse)?;
        let run = self
            .inner
            .fs
            .copy_of(Path::new("/run"))
            .ok_or_else(|| refuse(format!("host {} has no private /run to place the preload library in", self.name())))?;
        crate::time::host_env(warp, run, cmd.preload_before()).map_err(refuse)
    }

    /// The bind mounts of every program of the host, as C strings.
    fn bind_mounts(&self) -> std::io::Result<Vec<sys::BindMount>> {
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e));
        let mounts = self.inner.mounts.get().map(Vec::as_slice).unwrap_or_default();
        mounts
            .iter()
            .map(|(s, t, recursive, read_only)| Ok(sys::BindMount { source: c(s)?, target: c(t)?, recursive: *recursive, read_only: *read_only }))
            .collect()
    }

    /// Decides the bind mounts of the host's programs, once its files exist: first the shared
    /// directories onto their mount points inside the copies, then the copies (recursively, so
    /// they carry those) and the /etc files, each source by its real path. A mount hides what
    /// was below its target, sources included (artifacts under /tmp), so a target that holds
    /// sources is mounted after them; targets never nest, so one order does it.
    fn plan_mounts(&self) -> std::result::Result<Vec<Mount>, (PathBuf, std::io::Error)> {
        let h = &self.inner;
        let shared = h.fs.share(&h.shared)?;
        // Read-only ones: onto their mount point inside a copy (as above), or onto themselves
        // outside every private directory; first too, so a copy mounted later carries them.
        let mut read_only = Vec::new();
        for p in &h.shared_read_only {
            let real = std::fs::canonicalize(p).map_err(|e| (p.clone(), e))?;
            match h.fs.share(std::slice::from_ref(&real))?.pop() {
                Some((s, t)) => read_only.push((s, t, false, true)),
                None => read_only.push((real.clone(), real, false, true)),
            }
        }
        let real_dir = std::fs::canonicalize(&h.dir).map_err(|e| (h.dir.clone(), e))?;
        let real = |p: &Path| p.strip_prefix(&h.dir).map(|rel| real_dir.join(rel)).unwrap_or_else(|_| p.to_path_buf());
        let private = h.fs.dirs.iter().map(|d| (real(&d.source), d.target.clone(), true, false));
        let etc = h.etc.iter().filter(|f| f.mounted).map(|f| (real(&f.path), PathBuf::from(f.target), false, false));
        let rest: Vec<Mount> = private.chain(etc).collect();
        let holds_sources = |t: &Path| rest.iter().any(|(s, _, _, _)| s.starts_with(t));
        let (last, first): (Vec<_>, Vec<_>) = rest.iter().cloned().partition(|(_, t, _, _)| holds_sources(t));
        Ok(shared.into_iter().map(|(s, t)| (s, t, false, false)).chain(read_only).chain(first).chain(last).collect())
    }

    /// Creates the host's directory and /etc files if they do not exist yet.
    fn write_etc(&self) -> Result<()> {
        let mut done = self.inner.etc_written.lock().unwrap_or_else(|e| e.into_inner());
        if *done {
            return Ok(());
        }
        let etc = self.inner.dir.join("etc");
        // Also creates the lab's artifact directory, if this is the first thing written there.
        let dir = crate::os::fsafe::artifact_dir(&etc).map_err(|e| Error::File { op: "create", path: etc.clone(), source: e.into() })?;
        self.inner.fs.create(&self.inner.dir).map_err(|(path, source)| Error::File { op: "create the host's private directory", path, source })?;
        for f in &self.inner.etc {
            if !f.mounted {
                // Inside the host's copy of a private directory: the folders a program reads
                // through to reach it are open to every user, as on a machine.
                let parent = f.path.parent().unwrap_or(&etc);
                std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o755).create(parent).map_err(|source| Error::File {
                    op: "create",
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            // 0644: bind-mounted over the host's /etc, where a lab program that drops its
            // privileges (a resolver as nobody) must still read them; the owner-only artifact
            // directory keeps every other user of the machine out.
            let res = match (f.path.parent(), f.path.file_name()) {
                (Some(p), Some(name)) if p == etc => dir.write_file(name, f.text.as_bytes(), 0o644).map(|_| ()),
                _ => crate::os::fsafe::write_artifact(&f.path, f.text.as_bytes(), 0o644),
            };
            res.map_err(|e| Error::File { op: "write", path: f.path.clone(), source: e.into() })?;
        }
        let mounts = self.plan_mounts().map_err(|(path, source)| Error::File { op: "prepare the host's private directories in", path, source })?;
        let _ = self.inner.mounts.set(mounts);
        *done = true;
        Ok(())
    }

    /// Runs `cmd` to completion and returns it (with its exit and output).
    ///
    /// # Errors
    /// Spawn errors, or [`Error::Timeout`] when it does not exit within `timeout`.
    #[tracing::instrument(name = "run", level = "debug", skip_all, fields(host = %self.name(), program = %cmd.display_name()))]
    pub async fn run(&self, cmd: Command, timeout: Duration) -> Result<Process> {
        let p = self.spawn(cmd).await?;
        match p.wait_exit(timeout).await {
            Ok(_) => Ok(p),
            Err(e) => {
                p.kill().await;
                Err(e)
            }
        }
    }

    /// Every TCP listener and bound UDP socket in this host, read from the kernel.
    ///
    /// # Errors
    /// [`Error::Socket`] when sock_diag fails.
    pub async fn listeners(&self) -> Result<Vec<Listener>> {
        let inner = self.inner.clone();
        let res = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<Listener>> {
            let mut guard = inner.diag.lock().unwrap_or_else(|e| e.into_inner());
            if guard.is_none() {
                *guard = Some(inner.ns.run_blocking(listeners::open_here)??);
            }
            listeners::dump(guard.as_ref().expect("opened above"))
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        res.map_err(|source| Error::Socket { host: self.inner.name.clone(), op: "list sockets (sock_diag)".into(), source })
    }

    /// The inode of the TCP socket in this host that is one end of a connection: its local end
    /// `local`, its peer `remote` (an IPv4 socket or an IPv6 one with IPv4-mapped addresses,
    /// whichever the program opened); `None` when the host holds no such socket (it was closed).
    /// With [`crate::host::process::Process::socket_holder`] it says which program made a connection a server accepted.
    ///
    /// # Errors
    /// [`Error::Socket`] when sock_diag fails.
    pub async fn connection_inode(&self, local: SocketAddr, remote: SocketAddr) -> Result<Option<u32>> {
        let inner = self.inner.clone();
        let res = tokio::task::spawn_blocking(move || -> std::io::Result<Option<u32>> {
            let mut guard = inner.diag.lock().unwrap_or_else(|e| e.into_inner());
            if guard.is_none() {
                *guard = Some(inner.ns.run_blocking(listeners::open_here)??);
            }
            listeners::connection_inode(guard.as_ref().expect("opened above"), local, remote)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        res.map_err(|source| Error::Socket {
            host: self.inner.name.clone(),
            op: format!("find the socket of connection {local} -> {remote} (sock_diag)"),
            source,
        })
    }

    /// Waits until a listener matching `want` exists, polling the kernel's socket table (no
    /// connection is made, so the server sees no probe).
    ///
    /// # Errors
    /// [`Error::Timeout`] listing what does listen; if `proc` is given and exits first,
    /// [`Error::Exited`] with its last output lines.
    #[tracing::instrument(name = "wait_listening", level = "debug", skip_all, fields(host = %self.name(), want = ?want))]
    pub async fn wait_listening(&self, want: &Listen, timeout: Duration, proc: Option<&Process>) -> Result<Listener> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            let now = self.listeners().await?;
            if let Some(l) = now.iter().find(|l| want.matches(l)) {
                return Ok(l.clone());
            }
            if let Some(p) = proc {
                if let Some(exit) = p.exit() {
                    return Err(Error::Exited {
                        process: format!("{}/{}", p.host(), p.name()),
                        status: exit.to_string(),
                        what: format!("{want} in host {}", self.name()),
                        tail: p.shared.output.tail(20),
                    });
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let seen = if now.is_empty() { "nothing".to_string() } else { now.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", ") };
                let tail = match proc {
                    Some(p) => p.shared.output.tail(20),
                    None => String::new(),
                };
                return Err(Error::Timeout { what: format!("{want} in host {} (listening: {seen})", self.name()), timeout, tail });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Runs `f` on a thread inside this host's network namespace; sockets it creates stay there.
    ///
    /// # Errors
    /// [`Error::Namespace`] when the namespace cannot be entered.
    pub async fn in_netns<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.inner.ns.run(f).await.map_err(|source| Error::Namespace { op: "enter the network namespace", what: self.inner.name.clone(), source })
    }

    /// Creates a socket inside this host (for custom options before bind/connect).
    ///
    /// # Errors
    /// [`Error::Socket`] on failure.
    pub async fn socket(&self, domain: socket2::Domain, ty: socket2::Type, protocol: Option<socket2::Protocol>) -> Result<socket2::Socket> {
        self.in_netns(move || socket2::Socket::new(domain, ty, protocol)).await?.map_err(|source| self.sock_err(format!("create a {ty:?} socket"), source))
    }

    fn sock_err(&self, op: String, source: std::io::Error) -> Error {
        Error::Socket { host: self.inner.name.clone(), op, source }
    }

    /// A TCP listener bound inside this host, served by the harness's own async code.
    ///
    /// # Errors
    /// [`Error::Socket`] with the bind error (EADDRNOTAVAIL, EADDRINUSE ...).
    pub async fn bind_tcp(&self, addr: SocketAddr) -> Result<tokio::net::TcpListener> {
        let s = self.socket(socket2::Domain::for_address(addr), socket2::Type::STREAM, None).await?;
        let r = (|| {
            s.set_reuse_address(true)?;
            s.set_nonblocking(true)?;
            s.bind(&addr.into())?;
            s.listen(1024)?;
            tokio::net::TcpListener::from_std(s.into())
        })();
        r.map_err(|e| self.sock_err(format!("bind tcp {addr}"), e))
    }

    /// A UDP socket bound inside this host.
    ///
    /// # Errors
    /// [`Error::Socket`] with the bind error.
    pub async fn bind_udp(&self, addr: SocketAddr) -> Result<tokio::net::UdpSocket> {
        let s = self.socket(socket2::Domain::for_address(addr), socket2::Type::DGRAM, None).await?;
        let r = (|| {
            s.set_nonblocking(true)?;
            s.bind(&addr.into())?;
            tokio::net::UdpSocket::from_std(s.into())
        })();
        r.map_err(|e| self.sock_err(format!("bind udp {addr}"), e))
    }

    /// A TCP connection from this host to `addr`.
    ///
    /// # Errors
    /// [`Error::Socket`] with the connect error (ECONNREFUSED, ENETUNREACH, EINVAL ...).
    #[tracing::instrument(name = "connect_tcp", level = "debug", skip_all, fields(host = %self.name(), %addr))]
    pub async fn connect_tcp(&self, addr: SocketAddr) -> Result<tokio::net::TcpStream> {
        let s = self.socket(socket2::Domain::for_address(addr), socket2::Type::STREAM, None).await?;
        let sock =
            s.set_nonblocking(true).map(|_| tokio::net::TcpSocket::from_std_stream(s.into())).map_err(|e| self.sock_err(format!("connect tcp {addr}"), e))?;
        sock.connect(addr).await.map_err(|e| self.sock_err(format!("connect tcp {addr}"), e))
    }

    /// Sets a network sysctl inside this host (`net.ipv6.bindv6only`, `net.ipv6.conf.eth0.accept_dad` ...).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a name outside `net.`, [`Error::Sysctl`] when the write fails.
    pub async fn set_sysctl(&self, name: &str, value: &str) -> Result<()> {
        let path = sysctl::sysctl_path(name).map_err(|what| Error::Invalid { what })?;
        let v = value.to_string();
        self.in_netns(move || sysctl::write(&path, &v)).await?.map_err(|source| Error::Sysctl {
            host: self.inner.name.clone(),
            name: name.into(),
            value: value.into(),
            source,
        })
    }

    /// Reads a network sysctl inside this host.
    ///
    /// # Errors
    /// As [`Host::set_sysctl`].
    pub async fn sysctl(&self, name: &str) -> Result<String> {
        let path = sysctl::sysctl_path(name).map_err(|what| Error::Invalid { what })?;
        self.in_netns(move || std::fs::read_to_string(&path)).await?.map(|s| s.trim_end().to_string()).map_err(|source| Error::Sysctl {
            host: self.inner.name.clone(),
            name: name.into(),
            value: "(read)".into(),
            source,
        })
    }

    fn nl_err(&self, op: String) -> impl FnOnce(rtnetlink::Error) -> Error + '_ {
        move |source| Error::Netlink { op, what: format!("host {}", self.inner.name), source }
    }

    /// Brings the lab interface up or down. A flap keeps the interface's addresses: after `up`
    /// the host has the IPv4 and global IPv6 addresses it had before `down` (those of the plan
    /// and any added since), its planned link-local one and its routes through a gateway
    /// (NAT64's); addresses added with DAD run it again. Up returns once the link is
    /// operationally up and its planned IPv6 addresses answer neighbour solicitations, so what
    /// is sent next is not dropped.
    ///
    /// # Errors
    /// [`Error::Netlink`], [`Error::Sysctl`] when `keep_addr_on_down` cannot be set,
    /// [`Error::Timeout`] when the link has no carrier within 5 s.
    pub async fn set_link(&self, up: bool) -> Result<()> {
        if !up {
            // The kernel default (keep_addr_on_down=0) deletes every IPv6 address of a link that
            // goes down, link-local included, and `up` does not bring them back: an ipv6-only
            // host would be cut off for good. With 1 they stay (IPv4 ones always do), their
            // routes return with the link, and those without NODAD are tentative again.
            let name = format!("net/ipv6/conf/{}/keep_addr_on_down", self.inner.ifname);
            match self.set_sysctl(&name, "1").await {
                Ok(()) => {}
                // No IPv6 on this host (the ipv6 module's tree absent): nothing to keep.
                Err(Error::Sysctl { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            // Static routes through a gateway (NAT64's, a user's) go with the link for good.
            let routes = self.inner.nl.gateway_routes(self.inner.ifindex).await.map_err(self.nl_err(format!("list the routes of {}", self.inner.ifname)))?;
            *self.inner.routes_at_down.lock().unwrap_or_else(|e| e.into_inner()) = routes;
        }
        let op = format!("set {} {}", self.inner.ifname, if up { "up" } else { "down" });
        self.inner.nl.set_up(self.inner.ifindex, up).await.map_err(self.nl_err(op))?;
        if up {
            let what = format!("{} of host {} to be operationally up (carrier)", self.inner.ifname, self.inner.name);
            crate::os::netlink::wait_oper_up(&self.inner.nl, self.inner.ifindex, what).await?;
            // Link-local addresses go with the link whatever keep_addr_on_down says (the kernel
            // keeps only global ones), and with addr_gen_mode=1 it makes none: put the
            // planned one back, with DAD when the host was built with DAD.
            if let Some(ll) = self.link_local() {
                if self.is_tentative(ll.into()).await?.is_none() {
                    let dad = self.sysctl("net.ipv6.conf.default.accept_dad").await.is_ok_and(|v| v.trim() != "0");
                    self.add_address(ll.into(), IPV6_PREFIX, dad).await?;
                }
            }
            let routes = std::mem::take(&mut *self.inner.routes_at_down.lock().unwrap_or_else(|e| e.into_inner()));
            for (dest, prefix, via) in routes {
                let op = format!("restore route {dest}/{prefix} via {via} on {}", self.inner.ifname);
                match self.inner.nl.add_route(dest, prefix, Some(via), self.inner.ifindex).await {
                    Ok(()) => {}
                    // Still there (the kernel kept it): nothing to restore.
                    Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {}
                    Err(e) => return Err(self.nl_err(op)(e)),
                }
            }
            // The kept addresses rejoin their solicited-node groups from a work queue, as at build.
            for a in [self.ipv6(), self.link_local()].into_iter().flatten() {
                if self.is_tentative(a.into()).await? == Some(false) {
                    self.wait_solicited_node(a, &self.inner.ifname).await?;
                }
            }
        }
        Ok(())
    }

    /// Adds an address to the lab interface (`dad`: run duplicate address detection).
    ///
    /// # Errors
    /// [`Error::Netlink`].
    pub async fn add_address(&self, addr: IpAddr, prefix: u8, dad: bool) -> Result<()> {
        if dad && addr.is_ipv6() {
            // Hosts built without DAD have accept_dad=0, which would skip it for this address too.
            self.set_sysctl(&format!("net/ipv6/conf/{}/accept_dad", self.inner.ifname), "1").await?;
        }
        let op = format!("add address {addr}/{prefix} to {}", self.inner.ifname);
        self.inner.nl.add_address(self.inner.ifindex, addr, prefix, !dad).await.map_err(self.nl_err(op))?;
        if let (IpAddr::V6(a), false) = (addr, dad) {
            // Usable when this returns, as at build: unless the link is down (the kernel
            // configures the address when it comes up).
            if self.inner.nl.oper_up(self.inner.ifindex).await.map_err(self.nl_err("read the link state".into()))? {
                self.wait_solicited_node(a, &self.inner.ifname).await?;
            }
        }
        Ok(())
    }

    /// Brings up one more lab interface of a routed lab (not the primary) and adds its
    /// addresses, usable on return as the primary's are.
    pub(crate) async fn configure_interface(&self, i: &crate::host::interfaces::Interface) -> Result<()> {
        let h = &self.inner;
        h.nl.set_up(i.ifindex, true).await.map_err(self.nl_err(format!("set {} up", i.name)))?;
        crate::os::netlink::wait_oper_up(&h.nl, i.ifindex, format!("{} of host {} to be operationally up (carrier)", i.name, h.name)).await?;
        let mut addrs: Vec<(IpAddr, u8)> = Vec::new();
        addrs.extend(i.ipv4.map(|a| (IpAddr::V4(a), IPV4_PREFIX)));
        addrs.extend(i.link_local.map(|a| (IpAddr::V6(a), IPV6_PREFIX)));
        addrs.extend(i.ipv6.map(|a| (IpAddr::V6(a), IPV6_PREFIX)));
        futures::future::try_join_all(addrs.into_iter().map(|(a, p)| async move {
            h.nl.add_address(i.ifindex, a, p, true).await.map_err(self.nl_err(format!("add address {a}/{p} to {}", i.name)))?;
            if let IpAddr::V6(a6) = a {
                self.wait_solicited_node(a6, &i.name).await?;
            }
            Ok::<_, Error>(())
        }))
        .await?;
        Ok(())
    }

    /// Waits until the kernel answers neighbour solicitations for `a`: it has joined `a`'s
    /// solicited-node multicast group. It does that from a work queue after the address is
    /// added, DAD or not; a solicitation that arrives first is dropped, and the peer asks again
    /// only a second later (a one-second delay on the first IPv6 packet, seen in about one lab
    /// in five on a busy machine).
    async fn wait_solicited_node(&self, a: Ipv6Addr, ifname: &str) -> Result<()> {
        let o = a.octets();
        let group = format!("ff0200000000000000000001ff{:02x}{:02x}{:02x}", o[13], o[14], o[15]);
        let deadline = tokio::time::Instant::now() + crate::os::netlink::OPER_UP_TIMEOUT;
        let mut pause = Duration::from_millis(1);
        loop {
            let (ifname, g) = (ifname.to_string(), group.clone());
            // /proc/thread-self: the namespace of the reading thread, which is this host's.
            let joined = self
                .in_netns(move || {
                    std::fs::read_to_string("/proc/thread-self/net/igmp6").map(|t| {
                        t.lines().any(|l| {
                            let f: Vec<&str> = l.split_whitespace().collect();
                            f.get(1) == Some(&ifname.as_str()) && f.get(2) == Some(&g.as_str())
                        })
                    })
                })
                .await?
                .map_err(|source| Error::File { op: "read", path: "/proc/net/igmp6".into(), source })?;
            if joined {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let what = format!(
                    "host {} to answer neighbour solicitations for {a} (solicited-node group ff02::1:ff{group_tail})",
                    self.inner.name,
                    group_tail = &group[26..]
                );
                return Err(Error::Timeout { what, timeout: crate::os::netlink::OPER_UP_TIMEOUT, tail: String::new() });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// Removes an address from the lab interface.
    ///
    /// # Errors
    /// [`Error::Netlink`].
    pub async fn remove_address(&self, addr: IpAddr, prefix: u8) -> Result<()> {
        let op = format!("remove address {addr}/{prefix} from {}", self.inner.ifname);
        self.inner.nl.del_address(self.inner.ifindex, addr, prefix).await.map_err(self.nl_err(op))
    }

    /// Whether `addr` on the lab interface is still tentative (DAD running); `None` if absent.
    ///
    /// # Errors
    /// [`Error::Netlink`].
    pub async fn is_tentative(&self, addr: IpAddr) -> Result<Option<bool>> {
        self.inner.nl.is_tentative(self.inner.ifindex, addr).await.map_err(self.nl_err(format!("read address {addr}")))
    }

    /// Waits until duplicate address detection of `addr` has completed.
    ///
    /// # Errors
    /// [`Error::Timeout`], or [`Error::Invalid`] if the address is not on the interface.
    pub async fn wait_dad(&self, addr: IpAddr, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.is_tentative(addr).await? {
                Some(false) => return Ok(()),
                None => return Err(Error::Invalid { what: format!("address {addr} is not on {} of host {}", self.inner.ifname, self.name()) }),
                Some(true) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout { what: format!("DAD of {addr} in host {}", self.name()), timeout, tail: String::new() });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(crate) async fn configure_addresses(&self, dad: bool) -> Result<()> {
        let h = &self.inner;
        let mut addrs: Vec<(IpAddr, u8)> = Vec::new();
        if let Some(a) = self.ipv4() {
            addrs.push((a.into(), IPV4_PREFIX));
        }
        if let Some(a) = self.link_local() {
            addrs.push((a.into(), IPV6_PREFIX));
        }
        if let Some(a) = self.ipv6() {
            addrs.push((a.into(), IPV6_PREFIX));
        }
        let lo = async { h.nl.set_up(1, true).await.map_err(self.nl_err("set lo up".into())) };
        // Link up first, then addresses: an IPv6 address added to a down link delays the first
        // exchange by about a second.
        let lab_if = async {
            let op = format!("set {} up", h.ifname);
            h.nl.set_up(h.ifindex, true).await.map_err(self.nl_err(op))?;
            let what = format!("{} of host {} to be operationally up (carrier)", h.ifname, h.name);
            crate::os::netlink::wait_oper_up(&h.nl, h.ifindex, what).await?;
            futures::future::try_join_all(addrs.into_iter().map(|(a, p)| self.add_address(a, p, dad))).await
        };
        // (add_address waits, for each IPv6 address without DAD, until the kernel answers
        // neighbour solicitations for it: usable when build() returns.)
        futures::future::try_join(lo, lab_if).await?;
        Ok(())
    }
}

/// The addresses of a host held tentative, and the interface's `dad_transmits` from before.
#[derive(Debug, Default)]
pub(crate) struct Held {
    pub(crate) addrs: Vec<IpAddr>,
    pub(crate) saved: Option<String>,
}
