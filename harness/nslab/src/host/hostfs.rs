//! A lab host's own directories: `/run`, `/tmp`, `/var/tmp` (and `/var/run` where it is not a
//! link to `/run`), plus the paths a host declares private. Each is an empty directory in the
//! host's artifact tree (`<host>/fs/<path>`), bind-mounted over the machine's for every program
//! of the host, so the host's programs share it as on one machine and nothing they write there
//! reaches the machine or another host.
//!
//! The copies start with the owner and mode of the machine's directory they cover (`/tmp` and
//! `/var/tmp` are 1777 there, so programs running as other users, such as postgres started with
//! setpriv, can create files in them, and the sticky bit keeps them from removing each other's);
//! `<host>/fs` itself is 0700, so no other user of the machine can reach them: programs in the
//! lab reach them through the mount, which starts below `fs`.
//!
//! Everything else is the machine's, shared by every host and the machine: `/var/lib`, `/home`,
//! `/srv`, `/opt`, `/etc` (but the per-host `/etc/hosts`, `/etc/resolv.conf`, `/etc/gai.conf`),
//! `/dev/shm`. [`crate::HostSpec::private`] makes such a directory the host's own. The lab's
//! artifact directory, and what [`crate::LabBuilder::share_with_hosts`] names (a scenario's
//! folder), stay visible at their own paths when they lie inside a private directory.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use nslab::{Command, HostSpec, Lab};
//! let lab = Lab::builder().host(HostSpec::new("db").private("/var/lib/postgresql")).host("app").build().await?;
//! let db = lab.host("db")?;
//! db.run(Command::new("sh").args(["-c", "echo 1 > /run/ready; touch /var/lib/postgresql/x"]), Duration::from_secs(5)).await?;
//! // The host's /run is in the lab's artifacts, not in the machine's /run.
//! assert!(db.private_copy("/run").unwrap().join("ready").exists());
//! assert!(!std::path::Path::new("/run/ready").exists());
//! lab.teardown().await?;
//! # Ok(()) }
//! ```

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The machine directories every lab host has its own copy of.
pub const ALWAYS_PRIVATE: [&str; 4] = ["/run", "/var/run", "/tmp", "/var/tmp"];

/// The files nslab bind-mounts per host; a private directory may not hide them.
const ETC_FILES: [&str; 3] = ["/etc/hosts", "/etc/resolv.conf", "/etc/gai.conf"];

/// File systems the kernel provides: never made private.
const KERNEL_FS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// One private directory of a host: the machine path it covers and the host's copy of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrivateDir {
    /// The machine's directory, covered for the host's programs.
    pub(crate) target: PathBuf,
    /// The host's own copy, `<host dir>/fs/<target>`.
    pub(crate) source: PathBuf,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// What a host's private file system is made of, decided when the lab is planned and created
/// on the host's first spawn.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostFs {
    pub(crate) dirs: Vec<PrivateDir>,
}

/// The always-private directories this machine has: a real directory is covered; a link that
/// resolves to a covered one (`/var/run -> /run` on Debian) is covered through it and left as
/// it is; a missing one needs nothing.
///
/// # Errors
/// A link that resolves elsewhere (its programs would write into the machine), or a path that
/// cannot be examined.
pub(crate) fn always_private_here() -> Result<Vec<PathBuf>, String> {
    let mut dirs = Vec::new();
    let mut links = Vec::new();
    for p in ALWAYS_PRIVATE {
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_symlink() => links.push(p),
            Ok(m) if m.is_dir() => dirs.push(PathBuf::from(p)),
            Ok(_) => {
                return Err(format!("{p} is not a directory on this machine; expected a directory (or a link to one) that lab hosts get their own copy of"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot examine {p} on this machine ({e})")),
        }
    }
    for p in links {
        let real = std::fs::canonicalize(p).map_err(|e| format!("{p} is a symbolic link that cannot be resolved on this machine ({e})"))?;
        if !dirs.iter().any(|d| real.starts_with(d)) {
            return Err(format!(
                "{p} is a symbolic link to {}, which lab hosts would share with the machine; expected a directory or a link to /run, /tmp or /var/tmp",
                real.display()
            ));
        }
    }
    Ok(dirs)
}

/// Checks how a private path is written: absolute, plain, and not one nslab handles itself.
pub fn check_path(path: &str) -> Result<PathBuf, String> {
    const EXAMPLE: &str = "such as \"/var/lib/app\"";
    if !path.starts_with('/') {
        return Err(format!("{path:?} is not absolute; expected the absolute path of a directory, {EXAMPLE}"));
    }
    if path.split('/').any(|c| c == "." || c == "..") {
        return Err(format!("{path:?} has a '.' or '..' component; expected a plain absolute path, {EXAMPLE}"));
    }
    let p: PathBuf = Path::new(path).components().collect();
    if p == Path::new("/") {
        return Err(format!("{path:?} is the whole file system; expected a directory below it, {EXAMPLE}"));
    }
    if let Some(k) = KERNEL_FS.iter().find(|k| p.starts_with(k)) {
        return Err(format!("{path:?} is in {k}, which the kernel provides; expected a directory of the machine's own files, {EXAMPLE}"));
    }
    if let Some(a) = ALWAYS_PRIVATE.iter().find(|a| p.starts_with(a)) {
        return Err(format!(
            "{path:?} is inside {a}, which every lab host has its own copy of already; expected a path outside /run, /var/run, /tmp and /var/tmp"
        ));
    }
    if let Some(a) = ALWAYS_PRIVATE.iter().chain(ETC_FILES.iter()).find(|a| Path::new(a).starts_with(&p)) {
        return Err(format!(
            "{path:?} contains {a}, which nslab gives each host itself; expected a directory that contains none of {}",
            ALWAYS_PRIVATE.iter().chain(ETC_FILES.iter()).copied().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(p)
}

/// Checks that a private path (already checked by [`check_path`]) is a real directory on this
/// machine, reached without symbolic links (a mount would follow them to somewhere else).
pub fn check_on_machine(p: &Path) -> Result<(), String> {
    let mut at = PathBuf::from("/");
    for c in p.components().skip(1) {
        at.push(c);
        let m = match std::fs::symlink_metadata(&at) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!(
                    "{:?} does not exist on this machine; expected an existing directory (the host's own copy starts empty and covers it)",
                    p.display().to_string()
                ))
            }
            Err(e) => return Err(format!("cannot examine {} on this machine ({e}); expected a directory nslab can look at", at.display())),
        };
        if m.file_type().is_symlink() {
            let to = std::fs::canonicalize(&at).map(|r| format!(" to {}", r.display())).unwrap_or_default();
            return Err(format!("{} is a symbolic link{to} on this machine; expected the real path of the directory", which(p, &at)));
        }
        if !m.is_dir() {
            return Err(format!("{} is not a directory on this machine; expected a directory", which(p, &at)));
        }
    }
    Ok(())
}

/// `"/a/b/c"` when `at` is the path itself, else `"/a/b/c": /a/b` (the part that is wrong).
fn which(p: &Path, at: &Path) -> String {
    if p == at {
        format!("{:?}", p.display().to_string())
    } else {
        format!("{:?}: {}", p.display().to_string(), at.display())
    }
}

/// Checks a host's list of private paths: each as [`check_path`] and [`check_on_machine`], each
/// once, none inside another. Returns them in plain form.
pub(crate) fn check_list(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out: Vec<PathBuf> = Vec::new();
    for raw in paths {
        let s = raw.to_str().ok_or_else(|| format!("{raw:?} is not UTF-8; expected a path such as \"/var/lib/app\""))?;
        let p = check_path(s)?;
        check_on_machine(&p)?;
        check_nesting(&out, &p)?;
        out.push(p);
    }
    Ok(out)
}

/// Checks `p` against the paths already listed: not twice, not inside or around another.
pub fn check_nesting(listed: &[PathBuf], p: &Path) -> Result<(), String> {
    for q in listed {
        if q == p {
            return Err(format!("{:?} is listed twice; expected each private path once", p.display().to_string()));
        }
        if p.starts_with(q) || q.starts_with(p) {
            let (inner, outer) = if p.starts_with(q) { (p, q.as_path()) } else { (q.as_path(), p) };
            return Err(format!(
                "{:?} is inside {:?}, also private; expected only the outer path (the inner one is part of its copy)",
                inner.display().to_string(),
                outer.display().to_string()
            ));
        }
    }
    Ok(())
}

/// Plans a host's private directories under `host_dir`: the machine's always-private ones, then
/// the host's own (checked already), each starting with the owner and mode of what it covers.
pub(crate) fn plan(host_dir: &Path, always: &[PathBuf], private: &[PathBuf]) -> Result<HostFs, String> {
    let fs = host_dir.join("fs");
    let mut dirs = Vec::new();
    for target in always.iter().chain(private) {
        let m = std::fs::metadata(target).map_err(|e| format!("cannot examine {} on this machine ({e})", target.display()))?;
        let source = fs.join(target.strip_prefix("/").unwrap_or(target));
        dirs.push(PrivateDir { target: target.clone(), source, mode: m.mode() & 0o7777, uid: m.uid(), gid: m.gid() });
    }
    Ok(HostFs { dirs })
}

impl HostFs {
    /// Creates `<host dir>/fs` (0700) and every private directory in it, with the owner and
    /// mode of the machine's. The host directory must exist.
    ///
    /// # Errors
    /// The path and the error of the first step that fails.
    pub(crate) fn create(&self, host_dir: &Path) -> Result<(), (PathBuf, std::io::Error)> {
        if self.dirs.is_empty() {
            return Ok(());
        }
        let fs = host_dir.join("fs");
        mkdir(&fs, 0o700)?;
        let rootless = crate::os::rootless::is_rootless();
        for d in &self.dirs {
            // Intermediate folders (fs/var for fs/var/tmp) only organise the copies: owner-only.
            let mut at = fs.clone();
            let rel = d.source.strip_prefix(&fs).expect("planned below fs");
            let n = rel.components().count();
            for (i, c) in rel.components().enumerate() {
                at.push(c);
                if i + 1 < n {
                    if !at.is_dir() {
                        mkdir(&at, 0o700)?;
                    }
                } else {
                    mkdir(&at, 0o700)?;
                    let dir =
                        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW).open(&at).map_err(|e| (at.clone(), e))?;
                    // In rootless mode the machine's owners are not mapped: the copy stays ours.
                    if !rootless {
                        std::os::unix::fs::fchown(&dir, Some(d.uid), Some(d.gid)).map_err(|e| (at.clone(), e))?;
                    }
                    dir.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(d.mode)).map_err(|e| (at.clone(), e))?;
                }
            }
        }
        Ok(())
    }

    /// Where the machine path `path` leads inside the host's copies, when it does: a per-host
    /// /etc file that is a link into a private directory on the machine (Ubuntu's
    /// /etc/resolv.conf -> /run/systemd/resolve/stub-resolv.conf) is written there, where the
    /// link leads programs of the host, instead of being mounted.
    pub(crate) fn inside_copy(&self, path: &Path) -> Option<PathBuf> {
        let real = std::fs::canonicalize(path).ok()?;
        let d = self.dirs.iter().find(|d| real.starts_with(&d.target))?;
        Some(d.source.join(real.strip_prefix(&d.target).ok()?))
    }

    /// Keeps each of the machine directories `shared` (the lab's artifact directory, a scenario's
    /// folder) visible to the host's programs at its own path when it lies inside a private
    /// directory (artifacts under /tmp): creates its mount point inside the host's copy, with
    /// the folders on the way given the owner and mode of the machine's, and returns the mounts
    /// (machine directory, mount point) to make before the copy is mounted, recursively.
    /// Paths that do not exist or lie outside every private directory need nothing.
    ///
    /// # Errors
    /// The path and the error of the step that fails.
    pub(crate) fn share(&self, shared: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>, (PathBuf, std::io::Error)> {
        let mut out = Vec::new();
        for p in shared {
            let Ok(real) = std::fs::canonicalize(p) else { continue };
            let Some(d) = self.dirs.iter().find(|d| real.starts_with(&d.target) && real != d.target) else { continue };
            let rel = real.strip_prefix(&d.target).expect("checked above");
            let (mut machine, mut copy) = (d.target.clone(), d.source.clone());
            for c in rel.components() {
                machine.push(c);
                copy.push(c);
                if copy.is_dir() {
                    continue;
                }
                let m = std::fs::metadata(&machine).map_err(|e| (machine.clone(), e))?;
                mkdir(&copy, 0o700)?;
                if !crate::os::rootless::is_rootless() {
                    std::os::unix::fs::lchown(&copy, Some(m.uid()), Some(m.gid())).map_err(|e| (copy.clone(), e))?;
                }
                std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(m.mode() & 0o7777)).map_err(|e| (copy.clone(), e))?;
            }
            out.push((real, copy));
        }
        Ok(out)
    }

    /// The host's copy of the machine directory `target`, if it has one.
    pub(crate) fn copy_of(&self, target: &Path) -> Option<&Path> {
        self.dirs.iter().find(|d| d.target == target).map(|d| d.source.as_path())
    }
}

fn mkdir(p: &Path, mode: u32) -> Result<(), (PathBuf, std::io::Error)> {
    std::fs::DirBuilder::new().mode(mode).create(p).map_err(|e| (p.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked_as_written() {
        assert_eq!(check_path("/var/lib/app/").unwrap(), PathBuf::from("/var/lib/app"));
        assert_eq!(check_path("var/lib/x").unwrap_err(), "\"var/lib/x\" is not absolute; expected the absolute path of a directory, such as \"/var/lib/app\"");
        assert_eq!(
            check_path("/var/lib/../x").unwrap_err(),
            "\"/var/lib/../x\" has a '.' or '..' component; expected a plain absolute path, such as \"/var/lib/app\""
        );
        assert_eq!(check_path("/").unwrap_err(), "\"/\" is the whole file system; expected a directory below it, such as \"/var/lib/app\"");
        assert_eq!(
            check_path("/proc/sys").unwrap_err(),
            "\"/proc/sys\" is in /proc, which the kernel provides; expected a directory of the machine's own files, such as \"/var/lib/app\""
        );
        assert_eq!(
            check_path("/run/app").unwrap_err(),
            "\"/run/app\" is inside /run, which every lab host has its own copy of already; expected a path outside /run, /var/run, /tmp and /var/tmp"
        );
        assert_eq!(
            check_path("/etc").unwrap_err(),
            "\"/etc\" contains /etc/hosts, which nslab gives each host itself; expected a directory that contains none of /run, /var/run, /tmp, /var/tmp, /etc/hosts, /etc/resolv.conf, /etc/gai.conf"
        );
        assert!(check_path("/var").unwrap_err().starts_with("\"/var\" contains /var/run,"));
    }

    #[test]
    fn paths_must_be_real_directories() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("dir")).unwrap();
        std::fs::write(real.join("file"), "").unwrap();
        std::os::unix::fs::symlink(real.join("dir"), real.join("link")).unwrap();
        assert_eq!(check_on_machine(&real.join("dir")), Ok(()));
        let q = |p: PathBuf| format!("{:?}", p.display().to_string());
        assert_eq!(
            check_on_machine(&real.join("nope")).unwrap_err(),
            format!("{} does not exist on this machine; expected an existing directory (the host's own copy starts empty and covers it)", q(real.join("nope")))
        );
        assert_eq!(
            check_on_machine(&real.join("file")).unwrap_err(),
            format!("{} is not a directory on this machine; expected a directory", q(real.join("file")))
        );
        assert_eq!(
            check_on_machine(&real.join("link/x")).unwrap_err(),
            format!(
                "{}: {} is a symbolic link to {} on this machine; expected the real path of the directory",
                q(real.join("link/x")),
                real.join("link").display(),
                real.join("dir").display()
            )
        );
    }

    #[test]
    fn nesting_and_repeats_are_refused() {
        let listed = [PathBuf::from("/var/lib/a")];
        assert_eq!(check_nesting(&listed, Path::new("/var/lib/a")).unwrap_err(), "\"/var/lib/a\" is listed twice; expected each private path once");
        assert_eq!(
            check_nesting(&listed, Path::new("/var/lib/a/b")).unwrap_err(),
            "\"/var/lib/a/b\" is inside \"/var/lib/a\", also private; expected only the outer path (the inner one is part of its copy)"
        );
        assert_eq!(
            check_nesting(&listed, Path::new("/var/lib")).unwrap_err(),
            "\"/var/lib/a\" is inside \"/var/lib\", also private; expected only the outer path (the inner one is part of its copy)"
        );
        assert_eq!(check_nesting(&listed, Path::new("/var/lib/ab")), Ok(()));
    }

    #[test]
    fn a_link_into_a_private_directory_leads_into_the_copy() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().canonicalize().unwrap();
        std::fs::create_dir_all(real.join("run/systemd/resolve")).unwrap();
        std::fs::write(real.join("run/systemd/resolve/stub-resolv.conf"), "").unwrap();
        std::os::unix::fs::symlink(real.join("run/systemd/resolve/stub-resolv.conf"), real.join("resolv.conf")).unwrap();
        std::fs::write(real.join("hosts"), "").unwrap();
        let fs = plan(&real.join("host"), &[real.join("run")], &[]).unwrap();
        assert_eq!(
            fs.inside_copy(&real.join("resolv.conf")),
            Some(real.join("host/fs").join(real.strip_prefix("/").unwrap()).join("run/systemd/resolve/stub-resolv.conf"))
        );
        assert_eq!(fs.inside_copy(&real.join("hosts")), None);
    }

    #[test]
    fn this_machine_covers_var_run_through_run() {
        let dirs = always_private_here().unwrap();
        assert!(dirs.contains(&PathBuf::from("/run")) && dirs.contains(&PathBuf::from("/tmp")), "{dirs:?}");
        if std::fs::symlink_metadata("/var/run").is_ok_and(|m| m.file_type().is_symlink()) {
            assert!(!dirs.contains(&PathBuf::from("/var/run")), "a /var/run link is covered through /run, never mounted over: {dirs:?}");
        }
    }
}
