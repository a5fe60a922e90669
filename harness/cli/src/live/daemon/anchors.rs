//! The hosts' anchors: a process per host whose namespaces `nslab exec` joins, and, as root,
//! each host's network namespace bound to a name for `ip netns exec`.

use std::path::{Path, PathBuf};

use nslab::host::process::Command;
use nslab::os::procid::ProcId;
use nslab_scenario::runner::Session;

use super::error::DaemonError;
use crate::live::netns::{make_netns_dir, netns_name, remove_netns_dir_if_ours, NETNS_DIR};
use crate::live::state::HostState;

/// What anchoring the hosts made, kept as it goes so that a failure part way can undo it.
#[derive(Debug, Default)]
pub(super) struct Anchored {
    /// The hosts anchored so far.
    pub(super) hosts: Vec<HostState>,
    /// The named namespaces bound so far.
    pub(super) named: Vec<PathBuf>,
    /// Whether /run/netns was made for them.
    pub(super) made_netns_dir: bool,
}

/// Starts an anchor in every host of the lab (they die with this daemon, the spawner's
/// lifeline, and everything started in their PID namespaces with them) and, unless
/// `rootless`, binds each host's network namespace to `nslab-LAB.HOST`.
///
/// # Errors
/// An anchor that could not start, or a namespace name that is taken (another lab's).
pub(super) async fn anchor_hosts(session: &Session, lab: &str, state_root: &Path, rootless: bool, out: &mut Anchored) -> Result<(), DaemonError> {
    for h in session.lab().hosts() {
        let anchor = h.spawn(Command::new("sleep").arg("infinity").name("nslab-anchor")).await?;
        let id = ProcId::of(anchor.pid()).ok_or_else(|| DaemonError::AnchorGone { host: h.name().to_string() })?;
        let netns = if rootless {
            None
        } else {
            out.made_netns_dir |= make_netns_dir(state_root).map_err(DaemonError::io(format!("make {NETNS_DIR}")))?;
            let name = netns_name(lab, h.name());
            let path = Path::new(NETNS_DIR).join(&name);
            // `nslab up` removed what a dead lab of this name under this state root left; a
            // name still taken belongs to another lab (another state root), never replaced.
            nslab::sys::bind_netns(anchor.pid(), &path).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => DaemonError::NameTaken { path: path.clone(), name: name.clone() },
                _ => DaemonError::io(format!("bind {}", path.display()))(e),
            })?;
            out.named.push(path);
            Some(name)
        };
        out.hosts.push(HostState {
            name: h.name().to_string(),
            interface: h.interface().to_string(),
            addrs: h.addrs().iter().map(ToString::to_string).collect(),
            link_local: h.link_local().map(|a| format!("{a}%{}", h.interface())),
            anchor: id,
            netns,
        });
    }
    Ok(())
}

/// Unbinds the named namespaces, then removes /run/netns when nslab made it and it is empty.
pub(super) fn unbind_all(named: &[PathBuf], state_root: &Path) {
    for p in named {
        if let Err(e) = nslab::sys::unbind_netns(p) {
            eprintln!("nslab: cannot remove {}: {e}", p.display());
        }
    }
    remove_netns_dir_if_ours(state_root);
}
