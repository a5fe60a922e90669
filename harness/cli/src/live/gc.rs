//! Removing what dead labs left: their named namespaces and state directories. Goes by what
//! was recorded (`state.json`, `daemon.pid`), never by a name alone.

use std::io;
use std::path::Path;

use super::error::LiveError;
use super::netns::{remove_netns_dir_if_ours, NETNS_DIR};
use super::root::check_root;
use super::state::{labs, LabDir};

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

/// Unbinds the named namespaces the lab's `state.json` records (each noted in `out`).
pub(crate) fn unbind_recorded(lab: &LabDir, out: &mut Collected) {
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
