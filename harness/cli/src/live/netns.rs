//! Named network namespaces (`/run/netns/nslab-LAB.HOST`, for `ip netns exec`) and the
//! `/run/netns` directory when nslab made it.

use std::io;
use std::path::{Path, PathBuf};

/// Where named network namespaces live (the `ip netns` convention).
pub const NETNS_DIR: &str = "/run/netns";

/// Prefix of every named network namespace nslab makes.
pub const NETNS_PREFIX: &str = "nslab-";

/// The name of host `host`'s network namespace in lab `lab`.
pub fn netns_name(lab: &str, host: &str) -> String {
    format!("{NETNS_PREFIX}{lab}.{host}")
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
