//! Rootless mode: without root, `nslab` and the test binaries first move into a user namespace
//! of their own (the caller's user becomes root there) with a network namespace of their own,
//! and build labs inside it exactly as root would. Nothing of the real host is reachable from
//! there, so nothing of it can change.
//!
//! Where the system forbids unprivileged user namespaces, the error names the setting that
//! blocks it and what to run.

use std::fmt;
use std::io;

/// How this process came to hold the privileges labs need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privileges {
    /// It had them already (root, or CAP_NET_ADMIN and CAP_SYS_ADMIN).
    Root,
    /// It entered a user namespace of its own (and a network namespace owned by it).
    Rootless,
}

/// Why rootless mode could not start: the errno of the refused call and what blocks it.
#[derive(Debug)]
pub struct Blocked {
    /// The refused call's error.
    pub source: io::Error,
    /// Which setting blocks it, and what to do (one line each).
    pub advice: Vec<String>,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nslab is not root, and it cannot enter a user namespace of its own (unshare(CLONE_NEWUSER|CLONE_NEWNET): {})", self.source)?;
        for a in &self.advice {
            write!(f, "\n  - {a}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Blocked {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Whether this process already has the capabilities labs need (CAP_NET_ADMIN, CAP_SYS_ADMIN).
pub fn privileged() -> bool {
    let caps = crate::sys::effective_caps().unwrap_or(0);
    caps & (1 << 12) != 0 && caps & (1 << 21) != 0
}

/// Makes sure this process can build labs: nothing to do with privileges; without them, it
/// moves into a user namespace and a network namespace of its own (`NSLAB_ROOTLESS=0` turns
/// that off, and lab builds then fail with the missing-capabilities error).
///
/// Call it first thing in `main`, while the process has a single thread: the kernel refuses
/// to move a threaded process into a user namespace.
///
/// # Errors
/// [`Blocked`] when the system forbids unprivileged user namespaces, naming the setting.
pub fn enter() -> Result<Privileges, Blocked> {
    if privileged() || std::env::var("NSLAB_ROOTLESS").is_ok_and(|v| v == "0") {
        return Ok(Privileges::Root);
    }
    match crate::sys::unshare_user_and_net() {
        Ok(()) => Ok(Privileges::Rootless),
        Err(source) => Err(Blocked { advice: advice(&source), source }),
    }
}

/// Whether this process runs in rootless mode (inside a user namespace it made, not the
/// machine's initial one).
pub fn is_rootless() -> bool {
    // The initial user namespace maps the whole uid range onto itself.
    std::fs::read_to_string("/proc/self/uid_map").map(|m| !m.split_whitespace().collect::<Vec<_>>().starts_with(&["0", "0", "4294967295"])).unwrap_or(false)
}

/// The real (outermost known) user id of this process: in rootless mode, the uid that this
/// namespace's root stands for; otherwise the plain uid.
pub fn outer_uid() -> Option<u32> {
    let map = std::fs::read_to_string("/proc/self/uid_map").ok()?;
    let inner = nix::unistd::getuid().as_raw();
    map.lines().find_map(|l| {
        let f: Vec<u32> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        match f.as_slice() {
            [first, outer, count] if inner >= *first && inner - first < *count => Some(outer + (inner - first)),
            _ => None,
        }
    })
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// What blocks unprivileged user namespaces on this machine, read from /proc/sys, each with
/// the command that lifts it. Never empty: without a known setting, it says what else to try.
pub fn advice(err: &io::Error) -> Vec<String> {
    let mut out = Vec::new();
    if crate::os::chroot::inside() {
        out.push(crate::os::chroot::MESSAGE.into());
    }
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        out.push("user.max_user_namespaces is 0 (user namespaces are switched off): run `sudo sysctl -w user.max_user_namespaces=15000` (add it to /etc/sysctl.d/ to keep it), or run nslab as root".into());
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        out.push("kernel.unprivileged_userns_clone is 0 (only root may create user namespaces): run `sudo sysctl -w kernel.unprivileged_userns_clone=1`, or run nslab as root".into());
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        out.push(
            "kernel.apparmor_restrict_unprivileged_userns is 1 (Ubuntu 23.10 and later: AppArmor gives unconfined programs no capabilities in a new user namespace): \
             run `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or give nslab an AppArmor profile that allows `userns,` (see README, \"Rootless mode\"), or run nslab as root"
                .into(),
        );
    }
    if out.is_empty() {
        out.push(match err.raw_os_error() {
            Some(libc::ENOSPC) => "the user namespace limit is reached (user.max_user_namespaces, or the per-user count): raise it with `sudo sysctl -w user.max_user_namespaces=15000`, or run nslab as root".into(),
            Some(libc::EPERM) => "no sysctl forbids it, so a security policy does (a container's seccomp profile, for example Docker's default, or an LSM): run the container with `--privileged` or `--security-opt seccomp=unconfined`, or run nslab as root; or this is a chroot, where the kernel refuses user namespaces (nslab cannot work in a chroot: use a container or a VM)".into(),
            Some(libc::EINVAL) => "the process had several threads; call nslab::testing::enter() first thing in main".into(),
            _ => "run nslab as root (sudo -E nslab ...), or check `nslab doctor`".into(),
        });
    }
    out
}

/// Tries rootless mode in a short-lived child process, leaving this one untouched: `Ok` when it
/// would work here, the [`Blocked`] reason otherwise. For `nslab doctor`.
pub fn probe() -> Result<(), Blocked> {
    crate::sys::probe_user_and_net().map_err(|source| Blocked { advice: advice(&source), source })
}
