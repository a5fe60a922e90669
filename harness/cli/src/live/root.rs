//! The state root (the directory holding every lab's state directory) and lab names.

use std::path::{Path, PathBuf};

use super::error::LiveError;

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
