//! Every directory and file nslab creates for its own records (artifacts, lab state, logs) is
//! made here, the careful way a root tool must: assume another local user is hostile.
//!
//! - A root directory (the artifacts root, the state root) is reached component by component
//!   from `/` without trusting a single path lookup: every directory on the way is owned by
//!   root or the caller and not writable by anyone else unless sticky (as /tmp and /var/tmp
//!   are), every symbolic link on the way is owned by root or the caller, and the root itself
//!   is a real directory (never a link) owned by the caller. Missing parts are created `0700`.
//!   Anything else is refused with an error that names the path, its owner and what to do.
//! - Below a checked directory, directories are made with `mkdirat` (`0700`) and opened with
//!   `O_DIRECTORY|O_NOFOLLOW`, files with `openat(O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC)`
//!   (`0600` unless the caller says a program in the lab needs more): nothing nslab writes can
//!   be redirected by a planted link or a pre-created file.
//!
//! Because every directory from `/` down is writable only by root or the caller, later
//! path-based reads of these trees resolve to what was checked.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, mkdirat, FileStat, Mode, SFlag};

/// Name of the marker a lab's artifact directory holds while the process that owns it lives:
/// that process's identity (pid and start time), so `nslab gc` can tell a run that died.
pub const LIVE_MARKER: &str = ".nslab-live";

/// What a checked root is for: it decides the advice in a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The artifacts root (`NSLAB_ARTIFACTS_DIR`).
    Artifacts,
    /// The long-lived labs' state root (`NSLAB_STATE_DIR`).
    State,
}

impl Role {
    fn advice(self) -> &'static str {
        match self {
            Role::Artifacts => "set NSLAB_ARTIFACTS_DIR to a directory of your own (for example mkdir -m 0700 ~/nslab-artifacts)",
            Role::State => "set NSLAB_STATE_DIR to a directory of your own (for example mkdir -m 0700 ~/.nslab-state)",
        }
    }
}

/// A refused or failed file operation.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// A directory that another user could turn against nslab.
    #[error("refusing to use {path}: {why}, so another user could read, replace or redirect nslab's files; {advice}")]
    Unsafe {
        /// The directory or link refused.
        path: PathBuf,
        /// What is wrong with it (owner, mode, link).
        why: String,
        /// What to do.
        advice: &'static str,
    },
    /// A system call failed.
    #[error("cannot {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl From<FsError> for io::Error {
    fn from(e: FsError) -> io::Error {
        match e {
            FsError::Io { source, .. } if source.kind() == io::ErrorKind::AlreadyExists => {
                io::Error::new(io::ErrorKind::AlreadyExists, crate::chain::chain(&source))
            }
            other => io::Error::other(crate::chain::chain(&other)),
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> FsError + 'a {
    move |e| FsError::Io { op, path: path.to_path_buf(), source: e.into() }
}

/// A directory checked as described in the module docs, held open.
#[derive(Debug)]
pub struct Dir {
    path: PathBuf,
    fd: OwnedFd,
}

/// "root", "uid 1000 (alice)", for messages.
fn owner_name(uid: u32) -> String {
    // In rootless mode the caller is uid 0 and every other user the overflow uid: name them
    // as the machine knows them.
    if crate::os::rootless::is_rootless() {
        if uid == 0 {
            if let Some(outer) = crate::os::rootless::outer_uid() {
                return format!("{} (outside nslab's user namespace)", owner_name_plain(outer));
            }
        } else if uid == overflow_uid() {
            return "root or another user (unmapped in nslab's user namespace)".into();
        }
    }
    owner_name_plain(uid)
}

fn owner_name_plain(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("{} (uid {uid})", u.name),
        _ => format!("uid {uid}"),
    }
}

fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Owners trusted for the directories and links on the way to a root: root and the caller. In
/// rootless mode the machine's root shows as the overflow uid, which cannot be told from any
/// other unmapped user; it is trusted there (the caller is unprivileged, so is what it risks).
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == me() || (crate::os::rootless::is_rootless() && uid == overflow_uid())
}

fn overflow_uid() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/overflowuid").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(65534)
}

fn mode_of(st: &FileStat) -> u32 {
    st.st_mode & 0o7777
}

/// Why a directory on the way to (or at) a root cannot be trusted, if it cannot.
fn unsafe_dir(st: &FileStat, is_root: bool) -> Option<String> {
    let mode = mode_of(st);
    let owner_ok = if is_root { st.st_uid == me() } else { trusted_owner(st.st_uid) };
    if !owner_ok {
        return Some(format!("it is owned by {}, not by {} who runs nslab", owner_name(st.st_uid), owner_name(me())));
    }
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Some(format!("it is owned by {} but writable by other users (mode {mode:04o}, not sticky)", owner_name(st.st_uid)));
    }
    None
}

fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
}

fn is_link(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFLNK
}

/// Directories are held as `O_PATH` descriptors: enough for every `*at` call and `fstat`, and
/// a directory on the way that the caller may search but not list (mode 0711) still opens.
const DIR_FLAGS: OFlag = OFlag::O_PATH.union(OFlag::O_DIRECTORY).union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);

impl Dir {
    /// Opens `path` as a root for `role`, creating what is missing (`0700`), and checks it and
    /// the way to it (see the module docs).
    ///
    /// # Errors
    /// [`FsError::Unsafe`] naming the refused path, its owner and what to do; [`FsError::Io`]
    /// when a directory cannot be made or opened.
    pub fn root(path: &Path, role: Role) -> Result<Dir, FsError> {
        // A folder on the way that another run removed as it emptied it, between this walk
        // opening it and making the next part in it: walk again.
        let mut tries = 0;
        loop {
            match Dir::walk(path, role) {
                Err(FsError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound && tries < 5 => tries += 1,
                r => return r,
            }
        }
    }

    fn walk(path: &Path, role: Role) -> Result<Dir, FsError> {
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir().map_err(|source| FsError::Io { op: "find the current directory for", path: path.to_path_buf(), source })?.join(path)
        };
        // The components still to walk, last first; links push their targets' components.
        let mut todo: Vec<PathBuf> = Vec::new();
        push_components(&mut todo, &abs);
        let mut cur =
            Dir { path: PathBuf::from("/"), fd: openat(nix::fcntl::AT_FDCWD, "/", DIR_FLAGS, Mode::empty()).map_err(io_err("open", Path::new("/")))? };
        let mut links = 0;
        while let Some(name) = todo.pop() {
            if name.as_os_str() == ".." {
                let parent = cur.path.parent().unwrap_or(Path::new("/")).to_path_buf();
                cur = Dir { fd: openat(&cur.fd, "..", DIR_FLAGS, Mode::empty()).map_err(io_err("open", &parent))?, path: parent };
                continue;
            }
            let here = cur.path.join(&name);
            let last = todo.is_empty();
            let st = match fstatat(&cur.fd, name.as_path(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => Some(st),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(io_err("inspect", &here)(e)),
            };
            match st {
                Some(st) if is_link(&st) => {
                    if last {
                        let target = readlinkat(&cur.fd, name.as_path()).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
                        return Err(FsError::Unsafe {
                            path: here,
                            why: format!("it is a symbolic link (to {target}), not a directory",),
                            advice: role.advice(),
                        });
                    }
                    if !trusted_owner(st.st_uid) {
                        return Err(FsError::Unsafe {
                            path: here,
                            why: format!("it is a symbolic link owned by {}, who can point it anywhere", owner_name(st.st_uid)),
                            advice: role.advice(),
                        });
                    }
                    links += 1;
                    if links > 40 {
                        return Err(FsError::Io { op: "resolve", path: here, source: Errno::ELOOP.into() });
                    }
                    let target = PathBuf::from(readlinkat(&cur.fd, name.as_path()).map_err(io_err("read the link", &here))?);
                    if target.is_absolute() {
                        cur = Dir {
                            path: PathBuf::from("/"),
                            fd: openat(nix::fcntl::AT_FDCWD, "/", DIR_FLAGS, Mode::empty()).map_err(io_err("open", Path::new("/")))?,
                        };
                    }
                    push_components(&mut todo, &target);
                    continue;
                }
                Some(st) if !is_dir(&st) => {
                    return Err(FsError::Unsafe { path: here, why: "it is not a directory".into(), advice: role.advice() });
                }
                // Judged before it is opened (a directory of another user may not even open);
                // judged again on the open descriptor below.
                Some(st) => {
                    if let Some(why) = unsafe_dir(&st, last) {
                        return Err(FsError::Unsafe { path: here, why, advice: role.advice() });
                    }
                }
                None => match mkdirat(&cur.fd, name.as_path(), Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    // Someone else's directory (another user made the name first): say whose.
                    Err(Errno::EACCES) => {
                        let st = fstat(&cur.fd).map_err(io_err("inspect", &cur.path))?;
                        return Err(FsError::Unsafe {
                            path: cur.path.clone(),
                            why: format!(
                                "it is owned by {} (mode {:04o}) and {} may not create {} in it",
                                owner_name(st.st_uid),
                                mode_of(&st),
                                owner_name(me()),
                                name.display()
                            ),
                            advice: role.advice(),
                        });
                    }
                    Err(e) => return Err(io_err("create", &here)(e)),
                },
            }
            let fd = match openat(&cur.fd, name.as_path(), DIR_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    return Err(FsError::Unsafe { path: here, why: "it was replaced by a link or a file while nslab checked it".into(), advice: role.advice() })
                }
                Err(e) => return Err(io_err("open", &here)(e)),
            };
            let st = fstat(&fd).map_err(io_err("inspect", &here))?;
            if let Some(why) = unsafe_dir(&st, last) {
                return Err(FsError::Unsafe { path: here, why, advice: role.advice() });
            }
            cur = Dir { path: here, fd };
        }
        Ok(cur)
    }

    /// Where it is (the path as walked: links on the way resolved).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The subdirectory `name` (one component), made `0700` when missing; an existing one must
    /// be a real directory of the caller's.
    ///
    /// # Errors
    /// [`FsError`] when it cannot be made or is not the caller's.
    pub fn subdir(&self, name: impl AsRef<OsStr>) -> Result<Dir, FsError> {
        self.subdir_inner(name.as_ref(), false)
    }

    /// A new subdirectory `name`, `0700`: an existing one is an error (`AlreadyExists`).
    ///
    /// # Errors
    /// [`FsError`] when it exists or cannot be made.
    pub fn new_subdir(&self, name: impl AsRef<OsStr>) -> Result<Dir, FsError> {
        self.subdir_inner(name.as_ref(), true)
    }

    fn subdir_inner(&self, name: &OsStr, new: bool) -> Result<Dir, FsError> {
        let path = self.path.join(name);
        check_name(name, &path)?;
        match mkdirat(&self.fd, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST) if !new => {}
            Err(e) => return Err(io_err("create", &path)(e)),
        }
        let fd = openat(&self.fd, name, DIR_FLAGS, Mode::empty()).map_err(io_err("open", &path))?;
        let st = fstat(&fd).map_err(io_err("inspect", &path))?;
        if st.st_uid != me() {
            return Err(FsError::Unsafe { path, why: format!("it is owned by {}", owner_name(st.st_uid)), advice: Role::Artifacts.advice() });
        }
        Ok(Dir { path, fd })
    }

    /// The directory `rel` below this one (each component through [`Dir::subdir`]).
    ///
    /// # Errors
    /// As [`Dir::subdir`]; `rel` must be relative, without `..`.
    pub fn subdirs(&self, rel: &Path) -> Result<Dir, FsError> {
        let mut cur = Dir {
            path: self.path.clone(),
            fd: self.fd.try_clone().map_err(|source| FsError::Io { op: "duplicate the descriptor of", path: self.path.clone(), source })?,
        };
        for c in rel.components() {
            match c {
                Component::Normal(n) => cur = cur.subdir(n)?,
                Component::CurDir => {}
                _ => {
                    return Err(FsError::Io {
                        op: "create",
                        path: self.path.join(rel),
                        source: io::Error::new(io::ErrorKind::InvalidInput, "expected a relative path without '..'"),
                    })
                }
            }
        }
        Ok(cur)
    }

    /// Creates the new file `name` (`O_EXCL`, never through a link) with `mode`.
    ///
    /// # Errors
    /// [`FsError::Io`] when it exists or cannot be made.
    pub fn create_file(&self, name: impl AsRef<OsStr>, mode: u32) -> Result<File, FsError> {
        let name = name.as_ref();
        let path = self.path.join(name);
        check_name(name, &path)?;
        let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_WRONLY;
        let fd = openat(&self.fd, name, flags, Mode::from_bits_truncate(mode)).map_err(io_err("create", &path))?;
        Ok(File::from(fd))
    }

    /// Opens the file `name` for reading and writing, creating it (`0600`) when missing, never
    /// through a link (for lock files that outlive one process).
    ///
    /// # Errors
    /// [`FsError::Io`] when it cannot be opened.
    pub fn open_or_create(&self, name: impl AsRef<OsStr>) -> Result<File, FsError> {
        let name = name.as_ref();
        let path = self.path.join(name);
        check_name(name, &path)?;
        let flags = OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDWR;
        let fd = openat(&self.fd, name, flags, Mode::from_bits_truncate(0o600)).map_err(io_err("open", &path))?;
        Ok(File::from(fd))
    }

    /// Writes the new file `name` with `bytes` (see [`Dir::create_file`]).
    ///
    /// # Errors
    /// As [`Dir::create_file`], or the write's error.
    pub fn write_file(&self, name: impl AsRef<OsStr>, bytes: &[u8], mode: u32) -> Result<PathBuf, FsError> {
        let name = name.as_ref();
        let path = self.path.join(name);
        let mut f = self.create_file(name, mode)?;
        f.write_all(bytes).map_err(|source| FsError::Io { op: "write", path: path.clone(), source })?;
        Ok(path)
    }

    /// Replaces the file `name` atomically: a new temporary file, then a rename over it.
    ///
    /// # Errors
    /// As [`Dir::write_file`], or the rename's error.
    pub fn replace_file(&self, name: &str, bytes: &[u8], mode: u32) -> Result<PathBuf, FsError> {
        let tmp = format!(".{name}.{}.tmp", std::process::id());
        let _ = nix::unistd::unlinkat(&self.fd, tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
        self.write_file(&tmp, bytes, mode)?;
        let path = self.path.join(name);
        nix::fcntl::renameat(&self.fd, tmp.as_str(), &self.fd, name).map_err(io_err("replace", &path))?;
        Ok(path)
    }

    /// The descriptor (for `*at` calls of other modules).
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn check_name(name: &OsStr, path: &Path) -> Result<(), FsError> {
    let mut c = Path::new(name).components();
    match (c.next(), c.next()) {
        (Some(Component::Normal(_)), None) => Ok(()),
        _ => Err(FsError::Io { op: "create", path: path.to_path_buf(), source: io::Error::new(io::ErrorKind::InvalidInput, "expected a single file name") }),
    }
}

fn push_components(todo: &mut Vec<PathBuf>, path: &Path) {
    let parts: Vec<PathBuf> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    todo.extend(parts.into_iter().rev());
}

/// The directory `path` inside a checked tree: [`Dir::root`] of it for the artifacts.
///
/// # Errors
/// As [`Dir::root`].
pub fn artifact_dir(path: &Path) -> Result<Dir, FsError> {
    Dir::root(path, Role::Artifacts)
}

/// Writes the new file `path` (`O_EXCL`, `mode`) in the artifacts, checking its directory.
///
/// # Errors
/// As [`Dir::root`] and [`Dir::write_file`].
pub fn write_artifact(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    let (dir, name) = split(path)?;
    artifact_dir(dir)?.write_file(name, bytes, mode).map(|_| ())
}

/// Creates the new file `path` (`O_EXCL`, `0600`) in the artifacts, checking its directory.
///
/// # Errors
/// As [`Dir::root`] and [`Dir::create_file`].
pub fn create_artifact(path: &Path) -> Result<File, FsError> {
    let (dir, name) = split(path)?;
    artifact_dir(dir)?.create_file(name, 0o600)
}

fn split(path: &Path) -> Result<(&Path, &OsStr), FsError> {
    match (path.parent(), path.file_name()) {
        (Some(d), Some(n)) => Ok((d, n)),
        _ => Err(FsError::Io { op: "create", path: path.to_path_buf(), source: io::Error::new(io::ErrorKind::InvalidInput, "expected a file path") }),
    }
}

/// Removes `dir` when it is empty, then each parent that becomes empty, up to (not including)
/// `stop`: a passing run leaves no empty scenario folders behind. A directory another run is
/// filling is not empty, and one that run is about to fill is made again by [`Dir::root`].
pub fn remove_empty_up_to(dir: &Path, stop: &Path) {
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d == stop || !d.starts_with(stop) || std::fs::remove_dir(d).is_err() {
            return;
        }
        cur = d.parent();
    }
}

/// Lets other users pass through `dir` and each folder above it up to and including `top`
/// (mode 0711: search, never list), for a program that switches users (PostgreSQL through
/// `runuser`) and must reach its own directory. Files keep their modes; only directories of the
/// caller's are changed, never one above `top`.
///
/// # Errors
/// A directory that cannot be changed.
pub fn allow_traverse(dir: &Path, top: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for d in dir.ancestors().take_while(|d| d.starts_with(top)) {
        let md = std::fs::symlink_metadata(d)?;
        if md.is_dir() && md.uid() == me() && md.mode() & 0o111 != 0o111 {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode((md.mode() & 0o700) | 0o111))?;
        }
    }
    Ok(())
}

/// Files and bytes under `path` (not following links).
pub fn usage(path: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
        if md.is_dir() {
            stack.extend(std::fs::read_dir(&p).into_iter().flatten().flatten().map(|e| e.path()));
        } else {
            files += 1;
            bytes += md.len();
        }
    }
    (files, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn creates_owner_only_and_refuses_links_and_open_dirs() {
        let t = tempfile::tempdir().unwrap();
        let root = Dir::root(&t.path().join("a/b"), Role::Artifacts).unwrap();
        assert_eq!(std::fs::metadata(root.path()).unwrap().permissions().mode() & 0o777, 0o700);
        let f = root.write_file("x.log", b"hi", 0o600).unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        // O_EXCL: a file that exists is never reused.
        assert_eq!(root.write_file("x.log", b"hi", 0o600).map_err(io::Error::from).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        // A planted link: never followed.
        symlink("/etc/passwd", root.path().join("y.log")).unwrap();
        assert!(root.create_file("y.log", 0o600).is_err());
        symlink(t.path(), t.path().join("link")).unwrap();
        let e = Dir::root(&t.path().join("link"), Role::Artifacts).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("refusing to use {}: it is a symbolic link (to {}), not a directory", t.path().join("link").display(), t.path().display())),
            "{e}"
        );
        std::fs::create_dir(t.path().join("open")).unwrap();
        std::fs::set_permissions(t.path().join("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = Dir::root(&t.path().join("open/sub"), Role::Artifacts).unwrap_err().to_string();
        assert!(e.contains("but writable by other users (mode 0777, not sticky)"), "{e}");
        assert!(e.ends_with("set NSLAB_ARTIFACTS_DIR to a directory of your own (for example mkdir -m 0700 ~/nslab-artifacts)"), "{e}");
        // Links owned by the caller on the way are followed (a TMPDIR reached through a link).
        let via = Dir::root(&t.path().join("link/a/b"), Role::Artifacts).unwrap();
        assert_eq!(via.path(), root.path());
    }

    #[test]
    fn empty_parents_go_up_to_the_root() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("x/y/z")).unwrap();
        std::fs::create_dir_all(t.path().join("x/keep")).unwrap();
        remove_empty_up_to(&t.path().join("x/y/z"), t.path());
        assert!(!t.path().join("x/y").exists());
        assert!(t.path().join("x/keep").exists());
    }
}
