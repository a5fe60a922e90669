//! Long-lived labs: `nslab up` keeps a lab running in a background process (its daemon) that
//! people step into (`nslab exec`, `nslab shell`, `ip netns exec`), drive (`nslab dns`), list
//! (`nslab status`) and end (`nslab down`, or `nslab gc` after the daemon was killed).
//!
//! Each lab has a state directory (`/run/nslab/NAME` as root, `$XDG_RUNTIME_DIR/nslab/NAME` or
//! `$TMPDIR/nslab-UID/NAME` otherwise; the root is checked by [`nslab::os::fsafe`] on every use)
//! holding `lock` (whoever holds it is claiming the name: `nslab up`, `gc`), `daemon.pid` (the
//! daemon's pid and start time), `state.json` (written once the lab is up), the daemon's
//! control socket and its log. A lab is alive while the process in `daemon.pid` is; that, not
//! a name, is what `gc` goes by. The daemon is the only owner of the lab: every host
//! has an anchor process (PID 1 of the host's PID namespace, carrying its mount and UTS
//! namespaces) that commands join, and as root each host's network namespace is also bound to
//! `/run/netns/nslab-NAME.HOST` for `ip netns exec`. When the daemon dies, even by `kill -9`,
//! the anchors and everything started in the hosts die with it; only those bind mounts can
//! outlive it, and `nslab gc` (or the next `nslab up`/`down` of that name) removes them.

pub mod control;
pub mod daemon;

pub use nslab::os::procid::ProcId;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where named network namespaces live (the `ip netns` convention).
pub const NETNS_DIR: &str = "/run/netns";

/// Prefix of every named network namespace nslab makes.
pub const NETNS_PREFIX: &str = "nslab-";

/// Errors of the long-lived lab commands, each saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// No lab of that name.
    #[error("no lab named {name:?} is up (state directory {dir} does not exist); `nslab status` lists the labs that are")]
    NoSuchLab {
        /// The name asked for.
        name: String,
        /// Where its state would be.
        dir: PathBuf,
    },
    /// The lab's daemon is gone.
    #[error("lab {name:?} is not running any more (its daemon, pid {pid}, is gone); `nslab gc` removes what is left of it")]
    Dead {
        /// The lab.
        name: String,
        /// The daemon's pid.
        pid: u32,
    },
    /// No host of that name in the lab.
    #[error("lab {lab:?} has no host {host:?}; its hosts are: {hosts}")]
    NoSuchHost {
        /// The lab.
        lab: String,
        /// The host asked for.
        host: String,
        /// The hosts it has.
        hosts: String,
    },
    /// A bad lab name.
    #[error("{0:?} is not a usable lab name; expected 1 to 24 characters of a-z, 0-9 and '-', starting with a letter")]
    BadName(String),
    /// A file or system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: io::Error,
    },
    /// The daemon refused or failed a request.
    #[error("{0}")]
    Refused(String),
    /// Another lab of that name is up or coming up.
    #[error("a lab named {name} is already up (pid {pid}); `nslab down {name}`, or choose another --name")]
    AlreadyUp {
        /// The name.
        name: String,
        /// Its daemon, or the `nslab up` bringing it up.
        pid: u32,
    },
    /// The state root or a file in it is not safe to use.
    #[error(transparent)]
    Files(#[from] nslab::os::fsafe::FsError),
}

impl LiveError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> LiveError {
        let what = what.into();
        move |source| LiveError::Io { what, source }
    }
}

/// Checks a lab name: short, lower-case, usable in file and namespace names.
pub fn check_name(name: &str) -> Result<(), LiveError> {
    let ok = (1..=24).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(LiveError::BadName(name.to_string()))
    }
}

/// The directory holding every lab's state directory, for the user running this process
/// (call it before entering rootless mode, where every user looks like root).
pub fn state_root() -> PathBuf {
    if let Some(d) = std::env::var_os("NSLAB_STATE_DIR") {
        return PathBuf::from(d);
    }
    let uid = nix::unistd::getuid();
    if uid.is_root() {
        return PathBuf::from("/run/nslab");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if Path::new(&d).is_dir() => PathBuf::from(d).join("nslab"),
        _ => std::env::temp_dir().join(format!("nslab-{uid}")),
    }
}

/// Checks the state root `root` when it exists (a missing one holds no lab and is not made):
/// it must be the caller's, see [`nslab::os::fsafe`].
///
/// # Errors
/// [`LiveError::Files`] naming the root, its owner and what to do.
pub fn check_root(root: &Path) -> Result<(), LiveError> {
    if std::fs::symlink_metadata(root).is_err() {
        return Ok(());
    }
    nslab::os::fsafe::Dir::root(root, nslab::os::fsafe::Role::State)?;
    Ok(())
}

/// A lab name claimed by this process (see [`claim`]); the claim ends when it is dropped.
#[derive(Debug)]
pub struct Claim {
    /// The lab's files.
    pub lab: LabDir,
    /// Its state directory, checked and open.
    pub dir: nslab::os::fsafe::Dir,
    /// What an earlier, dead lab of the name had left and the claim removed.
    pub cleared: Collected,
    /// Held until the claim is dropped.
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// Claims lab name `name` under `root`, atomically: of several claimers at once exactly one
/// gets it, while a lab of that name is alive no one does. The winner finds the state
/// directory emptied of what an earlier, dead lab of the name left (its namespaces unbound).
///
/// # Errors
/// [`LiveError::AlreadyUp`] with the pid of the live daemon (or of the `nslab up` holding the
/// claim); the root refused; file errors.
pub fn claim(root: &Path, name: &str) -> Result<Claim, LiveError> {
    use std::io::{Read, Seek, Write};
    check_name(name)?;
    let root_dir = nslab::os::fsafe::Dir::root(root, nslab::os::fsafe::Role::State)?;
    loop {
        let dir = root_dir.subdir(name)?;
        let lab = LabDir::new(root_dir.path(), name);
        let file = dir.open_or_create("lock")?;
        let lock = match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((mut lock, nix::errno::Errno::EWOULDBLOCK)) => {
                // Someone holds it: a live daemon, or the `nslab up` that is starting one (it
                // writes its pid right after taking the lock).
                if let Some(d) = lab.daemon().filter(ProcId::alive) {
                    return Err(LiveError::AlreadyUp { name: name.into(), pid: d.pid });
                }
                let mut pid = 0;
                for _ in 0..100 {
                    let mut text = String::new();
                    let _ = lock.rewind().and_then(|()| lock.read_to_string(&mut text));
                    if let Ok(p) = text.trim().parse() {
                        pid = p;
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                return Err(LiveError::AlreadyUp { name: name.into(), pid });
            }
            Err((_, e)) => return Err(LiveError::io(format!("lock {}", lab.dir.join("lock").display()))(e.into())),
        };
        // A claimer before us may have removed the directory (or its lock) it held: then the
        // lock we hold is of a file no one else will open. Start again.
        let same = |a: nix::sys::stat::FileStat, b: nix::sys::stat::FileStat| a.st_dev == b.st_dev && a.st_ino == b.st_ino;
        let held = nix::sys::stat::fstat(&*lock).ok();
        let named = nix::sys::stat::fstatat(dir.fd(), "lock", nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let dir_now = nix::sys::stat::fstatat(root_dir.fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let dir_held = nix::sys::stat::fstat(dir.fd()).ok();
        let current = matches!((held, named), (Some(a), Some(b)) if same(a, b)) && matches!((dir_held, dir_now), (Some(a), Some(b)) if same(a, b));
        if !current {
            continue;
        }
        if let Some(d) = lab.daemon().filter(ProcId::alive) {
            return Err(LiveError::AlreadyUp { name: name.into(), pid: d.pid });
        }
        let _ = lock.set_len(0).and_then(|()| (&*lock).rewind()).and_then(|()| write!(&*lock, "{}", std::process::id()));
        // What an earlier lab of this name left: its namespaces, then every file but the lock.
        let mut c = Collected::default();
        unbind_recorded(&lab, &mut c);
        for e in std::fs::read_dir(&lab.dir).into_iter().flatten().flatten() {
            if e.file_name() != "lock" {
                if !c.labs.contains(&lab.name) {
                    c.labs.push(lab.name.clone());
                }
                let p = e.path();
                let r = if e.file_type().is_ok_and(|t| t.is_dir()) { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
                r.map_err(LiveError::io(format!("remove {}", p.display())))?;
            }
        }
        return Ok(Claim { lab, dir, cleared: c, _lock: lock });
    }
}

/// One host of a running lab, as `nslab status` shows it and `nslab exec` finds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostState {
    /// Host name.
    pub name: String,
    /// Its lab interface.
    pub interface: String,
    /// Its addresses (global).
    pub addrs: Vec<String>,
    /// Its link-local address, with the interface as scope.
    pub link_local: Option<String>,
    /// The anchor process whose namespaces commands join.
    pub anchor: ProcId,
    /// The named network namespace (`ip netns exec NAME ...`), when one was made (as root).
    pub netns: Option<String>,
}

/// What `state.json` holds: written by the daemon once the lab is up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    /// Lab name.
    pub name: String,
    /// The daemon.
    pub daemon: ProcId,
    /// Whether the daemon runs in rootless mode (no named namespaces then).
    pub rootless: bool,
    /// The scenario it runs.
    pub scenario: PathBuf,
    /// Its profile.
    pub profile: String,
    /// Seconds since the Unix epoch when it came up.
    pub started: u64,
    /// The lab's artifacts (service logs, DNS query log, /etc files).
    pub artifacts: PathBuf,
    /// The DNS server's addresses, when the lab has one.
    pub dns: Vec<String>,
    /// Zones the DNS server serves.
    pub zones: Vec<String>,
    /// The hosts.
    pub hosts: Vec<HostState>,
    /// Whether the daemon created /run/netns (so the last lab down removes it when empty).
    pub made_netns_dir: bool,
}

impl LabState {
    /// The host called `name`.
    pub fn host(&self, name: &str) -> Result<&HostState, LiveError> {
        self.hosts.iter().find(|h| h.name == name).ok_or_else(|| LiveError::NoSuchHost {
            lab: self.name.clone(),
            host: name.to_string(),
            hosts: self.hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", "),
        })
    }
}

/// The files of one lab.
#[derive(Debug, Clone)]
pub struct LabDir {
    /// Lab name.
    pub name: String,
    /// Its state directory.
    pub dir: PathBuf,
}

impl LabDir {
    /// The lab called `name` under `root` (which need not exist).
    pub fn new(root: &Path, name: &str) -> LabDir {
        LabDir { name: name.to_string(), dir: root.join(name) }
    }

    /// `state.json`.
    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The daemon's control socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    /// The daemon's log (its standard output and error).
    pub fn log(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }

    /// The daemon's pid, written by `nslab up` as soon as it started the daemon (before the
    /// lab is up), so a daemon that dies while building is still found.
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("daemon.pid")
    }

    /// The state, once the lab is up.
    pub fn state(&self) -> Result<LabState, LiveError> {
        let path = self.state_file();
        let text = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(LiveError::NoSuchLab { name: self.name.clone(), dir: self.dir.clone() }),
            r => r.map_err(LiveError::io(format!("read {}", path.display())))?,
        };
        serde_json::from_str(&text)
            .map_err(|e| LiveError::Io { what: format!("read {}", path.display()), source: io::Error::new(io::ErrorKind::InvalidData, e) })
    }

    /// The state of a lab whose daemon is alive.
    pub fn live_state(&self) -> Result<LabState, LiveError> {
        let st = self.state()?;
        if st.daemon.alive() {
            Ok(st)
        } else {
            Err(LiveError::Dead { name: st.name, pid: st.daemon.pid })
        }
    }

    /// The daemon recorded for this lab (from `state.json`, or `daemon.pid` while it builds).
    pub fn daemon(&self) -> Option<ProcId> {
        if let Ok(st) = self.state() {
            return Some(st.daemon);
        }
        let text = std::fs::read_to_string(self.pid_file()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether the lab's daemon is alive.
    pub fn alive(&self) -> bool {
        self.daemon().is_some_and(|d| d.alive())
    }

    /// The lab's lock, when no one else holds it (released when dropped). A lab without a
    /// lock file has no claimer either.
    pub fn try_lock(&self) -> Option<Option<nix::fcntl::Flock<std::fs::File>>> {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(self.dir.join("lock")) {
            Ok(f) => nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).ok().map(Some),
            Err(_) => Some(None),
        }
    }
}

/// Every lab with a state directory under `root`, by name.
pub fn labs(root: &Path) -> Vec<LabDir> {
    let mut out: Vec<LabDir> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        // Only the caller's: a state directory of another user is never read, let alone removed.
        .filter(|e| {
            use std::os::unix::fs::MetadataExt;
            e.metadata().is_ok_and(|m| m.uid() == nix::unistd::geteuid().as_raw())
        })
        .filter_map(|e| e.file_name().to_str().map(|n| LabDir::new(root, n)))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The name of host `host`'s network namespace in lab `lab`.
pub fn netns_name(lab: &str, host: &str) -> String {
    format!("{NETNS_PREFIX}{lab}.{host}")
}

/// What `gc` removed.
#[derive(Debug, Default)]
pub struct Collected {
    /// Labs whose remains were removed.
    pub labs: Vec<String>,
    /// Named network namespaces unmounted.
    pub netns: Vec<String>,
    /// Problems met (it goes on past them).
    pub errors: Vec<String>,
}

/// Removes what dead labs under `root` left: their named network namespaces (those their
/// `state.json` records) and state directories. A lab whose daemon lives, or whose name is
/// being claimed, is not touched; nothing is removed by its name alone, so labs of another
/// state root (another `NSLAB_STATE_DIR`, another user) are safe from this one's `gc`.
///
/// # Errors
/// The root is refused (not the caller's, see [`check_root`]).
pub fn gc(root: &Path) -> Result<Collected, LiveError> {
    let mut out = Collected::default();
    check_root(root)?;
    for lab in labs(root) {
        remove_if_dead(&lab, &mut out);
    }
    remove_netns_dir_if_ours(root);
    Ok(out)
}

fn unbind_recorded(lab: &LabDir, out: &mut Collected) {
    if let Ok(st) = lab.state() {
        for h in &st.hosts {
            if let Some(n) = &h.netns {
                let path = Path::new(NETNS_DIR).join(n);
                match nslab::sys::unbind_netns(&path) {
                    Ok(()) if out.netns.contains(n) => {}
                    Ok(()) => out.netns.push(n.clone()),
                    Err(e) => out.errors.push(format!("unmount {}: {e}", path.display())),
                }
            }
        }
    }
}

/// Removes what lab `lab` left when its daemon is dead and no one is claiming its name;
/// returns whether it did.
pub fn remove_if_dead(lab: &LabDir, out: &mut Collected) -> bool {
    // Held by an `nslab up` of that name: not dead, starting.
    let Some(_lock) = lab.try_lock() else { return false };
    if lab.alive() {
        return false;
    }
    remove_remains(lab, out);
    true
}

/// Removes a dead lab's named namespaces and state directory (call it only once its daemon
/// is gone).
pub fn remove_remains(lab: &LabDir, out: &mut Collected) {
    unbind_recorded(lab, out);
    match std::fs::remove_dir_all(&lab.dir) {
        Ok(()) => out.labs.push(lab.name.clone()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => out.errors.push(format!("remove {}: {e}", lab.dir.display())),
    }
}

/// Marker, in the state root, that a daemon created /run/netns.
fn netns_marker(root: &Path) -> PathBuf {
    root.join(".made-run-netns")
}

/// Removes /run/netns when nslab created it and it is empty again.
pub(crate) fn remove_netns_dir_if_ours(root: &Path) {
    let marker = netns_marker(root);
    if marker.exists() && std::fs::remove_dir(NETNS_DIR).is_ok() {
        let _ = std::fs::remove_file(marker);
    }
}

/// Makes /run/netns when it does not exist, noting that nslab made it.
pub(crate) fn make_netns_dir(root: &Path) -> io::Result<bool> {
    match std::fs::create_dir(NETNS_DIR) {
        Ok(()) => {
            nslab::os::fsafe::Dir::root(root, nslab::os::fsafe::Role::State)
                .map_err(io::Error::from)?
                .replace_file(".made-run-netns", b"", 0o600)
                .map_err(io::Error::from)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs `argv` inside host `host` of a running lab: its network, mount (its /etc files, /run, /tmp), UTS
/// (its host name) and PID namespaces, with the caller's terminal. Returns the exit code to
/// pass on (128 + N for a signal).
///
/// Must be called while the process has a single thread (it joins the host's namespaces).
pub fn exec(lab: &LabDir, host: &str, argv: &[String], env: &[(String, String)]) -> Result<i32, LiveError> {
    let st = lab.live_state()?;
    let h = st.host(host)?;
    if !h.anchor.alive() {
        return Err(LiveError::Refused(format!(
            "host {host} of lab {} has lost its anchor process (pid {}); bring the lab down and up again",
            st.name, h.anchor.pid
        )));
    }
    let (prog, args) = argv.split_first().ok_or_else(|| LiveError::Refused("no command given; expected `nslab exec LAB HOST -- COMMAND [ARGS...]`".into()))?;
    nslab::sys::enter_namespaces_of(h.anchor.pid).map_err(LiveError::io(format!("join the namespaces of host {host} (anchor pid {})", h.anchor.pid)))?;
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args).env("NSLAB_LAB", &st.name).env("NSLAB_HOST", host);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(LiveError::io(format!("run {prog} in host {host}")))?;
    // The terminal's Ctrl-C and Ctrl-\ reach the command (same process group); this process
    // only waits for it and passes its status on.
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGINT);
    set.add(nix::sys::signal::Signal::SIGQUIT);
    let _ = set.thread_block();
    let status = child.wait().map_err(LiveError::io(format!("wait for {prog}")))?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
