//! Claiming a lab's name: one `nslab up` of a name at a time, and none while it is up.

use std::path::Path;

use super::error::LiveError;
use super::gc::{unbind_recorded, Collected};
use super::root::check_name;
use super::state::LabDir;
use nslab::os::procid::ProcId;

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
