//! Where artifact directories go, the marker that says their owner is alive, and collecting
//! the ones of runs that died (`nslab gc`).
//!
//! Each lab's artifact directory is made owner-only inside a checked root (see
//! [`crate::os::fsafe`]) and holds [`LIVE_MARKER`] with the identity (pid and start time) of the
//! process that owns the lab. A lab torn down normally removes its directory (and any folder
//! that leaves empty) or, when the artifacts are kept as evidence, only the marker. A
//! directory whose marker names a dead process belongs to a run that was killed (`kill -9`, a
//! crash): that is the evidence `nslab gc` goes by, never a name.

use std::path::{Path, PathBuf};

use crate::os::fsafe::{self, FsError, LIVE_MARKER};
use crate::os::procid::ProcId;

/// Where artifacts go by default: `$NSLAB_ARTIFACTS_DIR`, else, as root,
/// `/var/lib/nslab` (a directory only root can write, so no other user can
/// pre-create or redirect it), and for any other user (rootless mode)
/// `/var/tmp/nslab-UID` (made `0700` and checked on every use, as tmux does with
/// `/tmp/tmux-UID`; one another user made first is refused, never used).
pub fn default_root() -> PathBuf {
    if let Some(d) = std::env::var_os("NSLAB_ARTIFACTS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    match crate::os::rootless::outer_uid() {
        Some(uid) if uid != 0 => PathBuf::from(format!("/var/tmp/nslab-{uid}")),
        _ => PathBuf::from("/var/lib/nslab"),
    }
}

/// Creates the artifact directory `root/name` (new, `0700`) with its live marker naming this
/// process.
///
/// # Errors
/// The root is refused (see [`fsafe::Dir::root`]) or the directory exists or cannot be made.
pub fn create_lab_dir(root: &Path, name: &str) -> Result<PathBuf, FsError> {
    let mut tries = 0;
    let dir = loop {
        // The root's last folder may go between the two steps (another run emptied it): again.
        match fsafe::Dir::root(root, fsafe::Role::Artifacts)?.new_subdir(name) {
            Err(FsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound && tries < 5 => tries += 1,
            r => break r?,
        }
    };
    let me = ProcId::of(std::process::id()).map(|p| serde_json::to_vec(&p).unwrap_or_default()).unwrap_or_default();
    dir.write_file(LIVE_MARKER, &me, 0o600)?;
    Ok(dir.path().to_path_buf())
}

/// Marks `dir` as kept evidence: its owner is done with it, and `nslab gc` leaves it alone.
pub fn release(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(LIVE_MARKER));
}

/// Removes `dir` and each folder above it that this leaves empty, up to `base`.
///
/// # Errors
/// The removal's error (a directory already gone is not one).
pub fn remove(dir: &Path, base: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    if let Some(parent) = dir.parent() {
        fsafe::remove_empty_up_to(parent, base);
    }
    Ok(())
}

/// One artifact directory `nslab gc` removed.
#[derive(Debug, Clone)]
pub struct Removed {
    /// The directory.
    pub path: PathBuf,
    /// The process that owned it, dead.
    pub owner: ProcId,
    /// Files in it.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// How deep below the root lab directories lie (`<root>/<folder>/<scenario>/<lab>` for a
/// trial, `<root>/up/<name>/<lab>` for `nslab up`, `<root>/matrix-N/...`).
const MAX_DEPTH: usize = 5;

/// Removes the artifact directories under `root` whose marker names a process that is gone
/// (a run that died), then the folders that leaves empty. Directories without a marker (kept
/// evidence) and those of live processes are not touched; links are never followed.
///
/// # Errors
/// The root is refused; failures to remove single directories are returned with the rest.
pub fn collect_dead(root: &Path) -> Result<(Vec<Removed>, Vec<String>), FsError> {
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    // Never creates the root: nothing to collect where there is none.
    if std::fs::symlink_metadata(root).is_err() {
        return Ok((removed, errors));
    }
    let root_dir = fsafe::Dir::root(root, fsafe::Role::Artifacts)?;
    let base = root_dir.path().to_path_buf();
    let mut stack = vec![(base.clone(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let marker = dir.join(LIVE_MARKER);
        if std::fs::symlink_metadata(&marker).is_ok_and(|m| m.is_file()) {
            let owner: Option<ProcId> = std::fs::read(&marker).ok().and_then(|b| serde_json::from_slice(&b).ok());
            match owner {
                Some(o) if o.alive() => {}
                // A marker with no readable owner was cut short by the death it records.
                o => {
                    let (files, bytes) = fsafe::usage(&dir);
                    match remove(&dir, &base) {
                        Ok(()) => removed.push(Removed { path: dir.clone(), owner: o.unwrap_or(ProcId { pid: 0, start: 0 }), files, bytes }),
                        Err(e) => errors.push(format!("remove {}: {e}", dir.display())),
                    }
                }
            }
            continue;
        }
        if depth >= MAX_DEPTH {
            continue;
        }
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    Ok((removed, errors))
}

/// Artifact directories kept by labs dropped without teardown, in this process: (lab, path).
static KEPT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());

/// Records that lab `lab` was dropped without teardown and kept its artifacts in `path`.
pub(crate) fn note_kept(lab: &str, path: &Path) {
    KEPT.lock().unwrap_or_else(|e| e.into_inner()).push((lab.to_string(), path.to_path_buf()));
}

/// The artifact directories kept so far in this process by labs dropped without teardown
/// (after an error or a panic), as (lab name, path). `nslab::testing::main` prints them.
pub fn kept_by_drop() -> Vec<(String, PathBuf)> {
    KEPT.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_runs_are_collected_kept_and_live_ones_are_not() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("art");
        let live = create_lab_dir(&root.join("f/s"), "live").unwrap();
        let kept = create_lab_dir(&root.join("f/s"), "kept").unwrap();
        release(&kept);
        let dead = fsafe::Dir::root(&root.join("g/s2/dead"), fsafe::Role::Artifacts).unwrap();
        // pid 1 with start time 1 is not a process that exists: the owner is gone.
        dead.write_file(LIVE_MARKER, br#"{"pid":1,"start":1}"#, 0o600).unwrap();
        dead.write_file("out.log", &[0u8; 1000], 0o600).unwrap();
        let (removed, errors) = collect_dead(&root).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(removed.len(), 1);
        assert_eq!((removed[0].files, removed[0].bytes), (2, 1019));
        assert!(!root.join("g").exists(), "the folders it emptied go too");
        assert!(live.exists() && kept.exists());
    }
}
