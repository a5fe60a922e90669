//! A lab's state directory and what `state.json` says of a running lab: its daemon, hosts,
//! namespaces and DNS.

use std::io;
use std::path::{Path, PathBuf};

use nslab::os::procid::ProcId;
use serde::{Deserialize, Serialize};

use super::error::LiveError;

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
