//! All setns(2)/unshare(2) calls, the forked init of every spawned program, and every `unsafe` live here.
//!
//! Threads: a namespace is only ever entered by a thread this module spawns for that purpose
//! (never a tokio worker or a test-runner thread), and every such thread exits when its job is
//! done, so no thread is ever left in a lab namespace by accident.
//!
//! Processes: each program a lab runs is started, by a thread of its own that lives as long as
//! the program, as PID 1 of a fresh PID namespace. That PID 1 is a tiny init written with raw
//! syscalls (it runs between fork and exec, where nothing may allocate): it forks the real
//! program, forwards signals to its process group, reports its wait status through a pipe, and
//! exits with it. Because it is PID 1,
//! its exit makes the kernel kill every process of that namespace (daemons, workers, anything the
//! program forked); because it has a parent-death signal and watches a lifeline pipe whose write
//! end only the harness holds, it exits as soon as the harness dies, even by `kill -9`.

#![allow(unsafe_code)] // The one module where nslab calls the kernel directly: every `unsafe` is here.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use nix::sched::{setns, unshare, CloneFlags};

/// Moves the calling thread into a new network namespace and returns a descriptor holding it.
///
/// Only for threads spawned for that purpose, which exit when their job is done.
pub(crate) fn unshare_netns_here() -> io::Result<OwnedFd> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
    Ok(OwnedFd::from(File::open("/proc/thread-self/ns/net")?))
}

/// Moves the calling thread into the network namespace `ns`.
///
/// Only for threads spawned for that purpose, which exit when their job is done.
pub(crate) fn enter_netns_here(ns: &OwnedFd) -> io::Result<()> {
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// Runs `f` on a fresh thread that has entered the network namespace `ns`.
///
/// Sockets created by `f` belong to that namespace for their whole life, wherever they are used
/// afterwards; /proc/sys/net opened by `f` shows that namespace's settings.
///
/// # Errors
/// Fails when setns(2) is refused.
pub(crate) fn in_netns<T, F>(ns: &OwnedFd, f: F) -> io::Result<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<T> {
            enter_netns_here(ns)?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Inode number of a namespace descriptor (what `/proc/PID/ns/net` links show as `net:[N]`).
pub(crate) fn ns_inode(ns: &OwnedFd) -> io::Result<u64> {
    let st = nix::sys::stat::fstat(ns.as_fd()).map_err(io::Error::from)?;
    Ok(st.st_ino)
}

/// Effective capability bits of this process, from /proc/self/status.
pub(crate) fn effective_caps() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no CapEff line in /proc/self/status"))
}

/// A bind mount to make inside a spawned program's private mount namespace.
pub(crate) struct BindMount {
    pub(crate) source: CString,
    pub(crate) target: CString,
    /// With the mounts below the source (MS_REC): a host's copy of /tmp that carries the lab's
    /// artifact directory, mounted back inside it.
    pub(crate) recursive: bool,
    /// Remounted read-only (keeping the flags the file system it shows has, which a mount
    /// namespace of a user namespace may not drop).
    pub(crate) read_only: bool,
}

/// What the spawner hands back: the tokio child (the init) and the status pipe's read end.
pub(crate) struct Spawned {
    pub(crate) child: tokio::process::Child,
    pub(crate) status_r: OwnedFd,
}

/// Read end of the lifeline: every init keeps a copy and exits when it reports hang-up, which
/// happens exactly when this process (the only holder of the write end) is gone.
static LIFELINE: OnceLock<io::Result<OwnedFd>> = OnceLock::new();

fn lifeline() -> io::Result<RawFd> {
    LIFELINE
        .get_or_init(|| {
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
            // The write end is deliberately leaked: it must stay open for the life of the process.
            std::mem::forget(w);
            Ok(r)
        })
        .as_ref()
        .map(|fd| fd.as_raw_fd())
        .map_err(|e| io::Error::new(e.kind(), e.to_string()))
}

/// Spawns `cmd` under a fresh PID 1 init inside the network namespace `netns`, with a private
/// mount namespace carrying `binds` (source, target).
///
/// Each program gets a thread of its own that forks its init and then lives exactly as long
/// as that init: the init's parent-death signal fires when the thread that forked it ends, and
/// the thread's PID namespace for children, once pointed at the new namespace, can not be
/// pointed back without privileges over the machine's own PID namespace (which rootless mode
/// does not have). A fresh thread starts from the process's namespaces every time.
///
/// Must be called inside a tokio runtime (the returned child is registered with it).
///
/// # Errors
/// Fails when the thread cannot start, a namespace cannot be created or entered, a bind
/// mount fails, or the program cannot be executed (the exec error of the program itself).
pub(crate) async fn spawn_in_lab(
    mut cmd: tokio::process::Command,
    netns: &OwnedFd,
    binds: Vec<BindMount>,
    hostname: CString,
    seccomp: Option<&'static [seccompiler::sock_filter]>,
    cwd: WorkDir,
) -> io::Result<Spawned> {
    let lifeline = lifeline()?;
    let (status_r, status_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    let netns = netns.try_clone()?;
    let rt = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("nslab-init-parent".into()).stack_size(64 * 1024).spawn(move || {
        let pidfd = {
            let _rt = rt.enter();
            let child = ChildSpec { netns, binds, hostname, seccomp, cwd };
            let res = spawn_on_this_thread(&mut cmd, child, status_w, lifeline);
            let pidfd = res.as_ref().ok().and_then(|c| c.id()).and_then(pidfd_open);
            let _ = tx.send(res);
            pidfd
        };
        // Live as long as the init does (its parent-death signal is tied to this thread).
        if let Some(fd) = pidfd {
            wait_readable(&fd);
        }
    })?;
    let child = rx.await.map_err(|_| io::Error::other("the spawning thread dropped the request"))??;
    Ok(Spawned { child, status_r })
}

/// A pidfd for `pid`, readable once the process has exited.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the descriptor was just returned by the kernel and is owned by nothing else.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Blocks until `fd` is readable (or in error).
fn wait_readable(fd: &OwnedFd) {
    loop {
        let mut p = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut p, nix::poll::PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return,
        }
    }
}

/// The program's working directory, entered by path once the host's mounts are in place, so the
/// path means what it means inside the host (its own /tmp, not the machine's).
pub(crate) struct WorkDir {
    /// Absolute path.
    pub(crate) path: CString,
    /// Whether a path missing in the host fails the spawn (one asked for) or leaves the program
    /// in `/` (the harness's own, inherited: for instance a crate under /tmp, which the host's
    /// own /tmp does not have).
    pub(crate) required: bool,
}

/// What the forked child sets up before it becomes the program's init.
struct ChildSpec {
    netns: OwnedFd,
    binds: Vec<BindMount>,
    hostname: CString,
    seccomp: Option<&'static [seccompiler::sock_filter]>,
    cwd: WorkDir,
}

/// Runs on a fresh thread only: points this thread's children at a new PID namespace and
/// forks. The thread is never used for anything else afterwards.
fn spawn_on_this_thread(cmd: &mut tokio::process::Command, spec: ChildSpec, status_w: OwnedFd, lifeline: RawFd) -> io::Result<tokio::process::Child> {
    let ChildSpec { netns, binds, hostname, seccomp, cwd } = spec;
    unshare(CloneFlags::CLONE_NEWPID).map_err(io::Error::from)?;
    let netns_fd = netns.as_raw_fd();
    let status_fd = status_w.as_raw_fd();
    // The init leaves the harness's process group: a terminal's Ctrl-C reaches nslab alone, which
    // then stops each trial's programs itself (teardown, reports) instead of the init passing
    // SIGINT on to them mid-trial.
    cmd.process_group(0);
    // SAFETY: the closure runs in the forked child before exec. It only makes raw system calls
    // on data prepared here (no allocation, no locks), as required after fork in a threaded process.
    unsafe {
        cmd.pre_exec(move || child_setup(netns_fd, &binds, &hostname, &cwd, status_fd, lifeline, seccomp));
    }
    let res = cmd.spawn();
    drop(netns);
    drop(status_w);
    res
}

fn last_err() -> io::Error {
    io::Error::last_os_error()
}

/// The forked child (PID 1 of its PID namespace): enter the lab host, make the mount and UTS namespaces,
/// fork the program, and become its init. Returns only in the program's process.
fn child_setup(
    netns: RawFd,
    binds: &[BindMount],
    hostname: &std::ffi::CStr,
    cwd: &WorkDir,
    status_w: RawFd,
    lifeline: RawFd,
    seccomp: Option<&[seccompiler::sock_filter]>,
) -> io::Result<()> {
    // SAFETY: plain system calls with valid pointers to NUL-terminated strings and local structs.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(last_err());
        }
        if libc::setns(netns, libc::CLONE_NEWNET) != 0 {
            return Err(last_err());
        }
        // Its own mount namespace, and its own host name (the lab host's), as on a real machine.
        if libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUTS) != 0 {
            return Err(last_err());
        }
        if libc::sethostname(hostname.as_ptr(), hostname.to_bytes().len()) != 0 {
            return Err(last_err());
        }
        // Nothing mounted below may ever propagate back to the host.
        if libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_SLAVE, std::ptr::null()) != 0 {
            return Err(last_err());
        }
        for b in binds {
            let flags = if b.recursive { libc::MS_BIND | libc::MS_REC } else { libc::MS_BIND };
            if libc::mount(b.source.as_ptr(), b.target.as_ptr(), std::ptr::null(), flags, std::ptr::null()) != 0 {
                return Err(last_err());
            }
            if b.read_only {
                let mut st: libc::statvfs = std::mem::zeroed();
                if libc::statvfs(b.target.as_ptr(), &mut st) != 0 {
                    return Err(last_err());
                }
                let kept = [
                    (libc::ST_NOSUID, libc::MS_NOSUID),
                    (libc::ST_NODEV, libc::MS_NODEV),
                    (libc::ST_NOEXEC, libc::MS_NOEXEC),
                    (libc::ST_NOATIME, libc::MS_NOATIME),
                    (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
                    (libc::ST_RELATIME, libc::MS_RELATIME),
                ]
                .iter()
                .filter(|(st_flag, _)| st.f_flag & *st_flag != 0)
                .fold(0, |acc, (_, ms)| acc | *ms);
                let remount = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | kept;
                if libc::mount(std::ptr::null(), b.target.as_ptr(), std::ptr::null(), remount, std::ptr::null()) != 0 {
                    return Err(last_err());
                }
            }
        }
        // A /proc that matches the new PID namespace. Best effort: the program works without it.
        libc::mount(c"proc".as_ptr(), c"/proc".as_ptr(), c"proc".as_ptr(), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, std::ptr::null());
        // The working directory as the host sees it: the inherited one was the machine's.
        if libc::chdir(cwd.path.as_ptr()) != 0 {
            if cwd.required {
                return Err(last_err());
            }
            libc::chdir(c"/".as_ptr());
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED.iter().chain([libc::SIGCHLD].iter()) {
            libc::sigaddset(&mut set, *sig);
        }
        let mut old: libc::sigset_t = std::mem::zeroed();
        if libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old) != 0 {
            return Err(last_err());
        }
        let pid = libc::fork();
        if pid < 0 {
            return Err(last_err());
        }
        if pid == 0 {
            // The program: its own process group (so signals reach its workers), normal mask,
            // and the signals a starter may have ignored at their default action, as a service on
            // a machine gets them (a harness run as a background job of a script has SIGINT and
            // SIGQUIT ignored, under nohup SIGHUP, and exec keeps an ignore).
            for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGTERM] {
                libc::signal(sig, libc::SIG_DFL);
            }
            libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            libc::setpgid(0, 0);
            if let Some(filter) = seccomp {
                install_seccomp(filter)?;
            }
            return Ok(());
        }
        init_loop(pid, &set, status_w, lifeline)
    }
}

/// Installs a seccomp filter on the calling (single-threaded, forked) process. Privileged
/// callers need no `no_new_privs`, so set-uid programs keep working; others get it set first.
///
/// # Safety
/// `filter` must be a valid classic BPF program (built by seccompiler).
unsafe fn install_seccomp(filter: &[seccompiler::sock_filter]) -> io::Result<()> {
    // SAFETY: the caller upholds this function's contract (# Safety above).
    unsafe {
        // seccompiler's sock_filter is the kernel's struct (repr(C): code, jt, jf, k), like libc's.
        let prog = libc::sock_fprog { len: filter.len() as libc::c_ushort, filter: filter.as_ptr() as *mut libc::sock_filter };
        let set = || libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0 as libc::c_ulong, &prog as *const libc::sock_fprog);
        if set() == 0 {
            return Ok(());
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || set() != 0 {
            return Err(last_err());
        }
        Ok(())
    }
}

/// The seccomp program of the `no-ipv6` profile: `socket(AF_INET6, ...)` fails with
/// EAFNOSUPPORT, everything else is allowed. Built once, before any fork.
pub(crate) fn no_ipv6_filter() -> io::Result<&'static [seccompiler::sock_filter]> {
    use seccompiler::{SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch};
    static PROG: OnceLock<Result<seccompiler::BpfProgram, String>> = OnceLock::new();
    let prog = PROG.get_or_init(|| {
        let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| format!("{e:?}"))?;
        let cond = SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, libc::AF_INET6 as u64).map_err(|e| e.to_string())?;
        let rule = SeccompRule::new(vec![cond]).map_err(|e| e.to_string())?;
        let rules = std::collections::BTreeMap::from([(libc::SYS_socket, vec![rule])]);
        let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EAFNOSUPPORT as u32), arch).map_err(|e| e.to_string())?;
        seccompiler::BpfProgram::try_from(filter).map_err(|e| e.to_string())
    });
    prog.as_deref().map_err(|e| io::Error::other(format!("cannot build the no-ipv6 seccomp filter: {e}")))
}

/// Signals the init passes on to the program's process group.
const FORWARDED: [libc::c_int; 8] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH, libc::SIGALRM];

/// The init's whole life. Never returns.
///
/// # Safety
/// Only to be called in the forked child, with `set` blocked and `target` its child.
unsafe fn init_loop(target: libc::pid_t, set: &libc::sigset_t, status_w: RawFd, lifeline: RawFd) -> ! {
    // SAFETY: the caller upholds this function's contract (# Safety above).
    unsafe {
        // Keep only the status pipe and the lifeline: the program's stdio pipes, std's exec-error
        // pipe and anything else must not be held open by the init.
        let (a, b) = if status_w < lifeline { (status_w, lifeline) } else { (lifeline, status_w) };
        let (a, b) = (a as libc::c_uint, b as libc::c_uint);
        if a > 0 {
            close_range(0, a - 1);
        }
        close_range(a + 1, b - 1);
        close_range(b + 1, libc::c_uint::MAX);
        let sfd = libc::signalfd(-1, set, libc::SFD_CLOEXEC);
        if sfd < 0 {
            libc::kill(target, libc::SIGKILL);
            libc::_exit(126);
        }
        loop {
            let mut fds = [libc::pollfd { fd: sfd, events: libc::POLLIN, revents: 0 }, libc::pollfd { fd: lifeline, events: libc::POLLIN, revents: 0 }];
            if libc::poll(fds.as_mut_ptr(), 2, -1) < 0 {
                continue;
            }
            if fds[1].revents != 0 {
                // The harness is gone. Exiting PID 1 kills every other process of this namespace.
                libc::_exit(137);
            }
            if fds[0].revents & libc::POLLIN == 0 {
                continue;
            }
            let mut info: libc::signalfd_siginfo = std::mem::zeroed();
            let n = libc::read(sfd, (&mut info as *mut libc::signalfd_siginfo).cast(), std::mem::size_of::<libc::signalfd_siginfo>());
            if n != std::mem::size_of::<libc::signalfd_siginfo>() as isize {
                continue;
            }
            let sig = info.ssi_signo as libc::c_int;
            if sig == libc::SIGCHLD {
                loop {
                    let mut st: libc::c_int = 0;
                    let p = libc::waitpid(-1, &mut st, libc::WNOHANG);
                    if p <= 0 {
                        break;
                    }
                    if p == target {
                        let bytes = st.to_ne_bytes();
                        libc::write(status_w, bytes.as_ptr().cast(), bytes.len());
                        libc::_exit(0);
                    }
                }
            } else if libc::kill(-target, sig) != 0 {
                libc::kill(target, sig);
            }
        }
    }
}

unsafe fn close_range(first: libc::c_uint, last: libc::c_uint) {
    // SAFETY: the caller upholds this function's contract (# Safety above).
    unsafe {
        if first <= last {
            libc::syscall(libc::SYS_close_range, first, last, 0 as libc::c_uint);
        }
    }
}

/// Reads the program's wait status from the init's status pipe: `None` when the init died
/// without reporting one (it was killed, which kills the program with it).
pub(crate) async fn read_status(status_r: OwnedFd) -> io::Result<Option<std::process::ExitStatus>> {
    use std::os::unix::process::ExitStatusExt;
    use tokio::io::AsyncReadExt;
    let mut rx = tokio::net::unix::pipe::Receiver::from_owned_fd(status_r)?;
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = rx.read(&mut buf[got..]).await?;
        if n == 0 {
            return Ok(None);
        }
        got += n;
    }
    Ok(Some(std::process::ExitStatus::from_raw(i32::from_ne_bytes(buf))))
}

/// Sends `sig` to a process by id.
pub(crate) fn signal(pid: u32, sig: nix::sys::signal::Signal) -> io::Result<()> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).map_err(io::Error::from)
}

/// Moves this process into a new user namespace in which its user is root (a one-user map:
/// the caller's uid and gid become 0), and a new network namespace owned by it, so that labs
/// can be built without privileges and nothing can reach the real host's network.
///
/// Must be called while the process has a single thread (before any runtime starts).
///
/// # Errors
/// The errno of unshare(2) when the system forbids unprivileged user namespaces, or of the
/// writes to /proc/self/{setgroups,uid_map,gid_map}.
pub(crate) fn unshare_user_and_net() -> io::Result<()> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    Ok(())
}

/// Moves this process into the namespaces of process `pid` (a lab host's anchor): its user
/// namespace when it differs from ours, then mount, UTS, network and PID namespaces. Children
/// started afterwards are members of that PID namespace, so they die with the host.
///
/// Must be called while the process has a single thread. The working directory is kept when
/// it exists inside the host's mount namespace (it normally does: the lab shares the machine's
/// file systems, except /run, /tmp, /var/tmp and private paths, which are the host's own).
///
/// # Errors
/// When a namespace file cannot be opened (the process is gone) or setns(2) refuses.
pub fn enter_namespaces_of(pid: u32) -> io::Result<()> {
    let cwd = std::env::current_dir().ok();
    let open = |kind: &str| File::open(format!("/proc/{pid}/ns/{kind}"));
    let user = open("user")?;
    let (mnt, uts, net, pidns) = (open("mnt")?, open("uts")?, open("net")?, open("pid")?);
    let own_user = nix::sys::stat::stat("/proc/self/ns/user").map_err(io::Error::from)?.st_ino;
    let their_user = nix::sys::stat::fstat(user.as_fd()).map_err(io::Error::from)?.st_ino;
    if own_user != their_user {
        setns(user.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(io::Error::from)?;
    }
    setns(mnt.as_fd(), CloneFlags::CLONE_NEWNS).map_err(io::Error::from)?;
    setns(uts.as_fd(), CloneFlags::CLONE_NEWUTS).map_err(io::Error::from)?;
    setns(net.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
    setns(pidns.as_fd(), CloneFlags::CLONE_NEWPID).map_err(io::Error::from)?;
    if let Some(dir) = cwd {
        let _ = std::env::set_current_dir(dir);
    }
    Ok(())
}

/// Makes the network namespace of process `pid` visible as `path` (what `ip netns add` does
/// for /run/netns/NAME): a bind mount of /proc/PID/ns/net onto an empty file.
pub fn bind_netns(pid: u32, path: &std::path::Path) -> io::Result<()> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    let src = format!("/proc/{pid}/ns/net");
    if let Err(e) = nix::mount::mount(Some(src.as_str()), path, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>) {
        let _ = std::fs::remove_file(path);
        return Err(e.into());
    }
    Ok(())
}

/// Undoes [`bind_netns`]: detaches the mount (the namespace goes when nothing else holds it)
/// and removes the file. A path that is not mounted is only removed.
pub fn unbind_netns(path: &std::path::Path) -> io::Result<()> {
    match nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Runs [`unshare_user_and_net`]'s steps in a forked child (`/bin/true` after them) and
/// returns the error of the first one that fails. This process stays as it is.
pub(crate) fn probe_user_and_net() -> io::Result<()> {
    use std::os::unix::process::CommandExt;
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    // Everything the child writes is prepared before the fork: it may not allocate.
    let writes: [(CString, Vec<u8>); 3] = [
        (CString::from(c"/proc/self/setgroups"), b"deny".to_vec()),
        (CString::from(c"/proc/self/uid_map"), format!("0 {uid} 1").into_bytes()),
        (CString::from(c"/proc/self/gid_map"), format!("0 {gid} 1").into_bytes()),
    ];
    let mut cmd = std::process::Command::new("/bin/true");
    // SAFETY: the closure runs between fork and exec and makes only raw system calls on the
    // data prepared above.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0 {
                return Err(last_err());
            }
            for (path, data) in &writes {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(last_err());
                }
                let n = libc::write(fd, data.as_ptr().cast(), data.len());
                let err = last_err();
                libc::close(fd);
                if n < 0 {
                    return Err(err);
                }
            }
            Ok(())
        });
    }
    let status = cmd.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("/bin/true in the new namespaces exited with {status}")))
    }
}

/// Makes a child process start with SIGINT, SIGQUIT, SIGTERM and SIGHUP at their default action
/// and no signal blocked, whatever this process inherited (a background job of a
/// non-interactive shell starts with SIGINT and SIGQUIT ignored, and the ignore passes through
/// fork and exec). For tests that signal a child and rely on the default action.
pub fn default_signals(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and makes only async-signal-safe calls
    // (signal(2), sigemptyset(3), sigprocmask(2)) on this process's own state.
    unsafe {
        cmd.pre_exec(|| {
            for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP] {
                if libc::signal(sig, libc::SIG_DFL) == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            if libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// A TPACKET_V3 receive ring of a packet socket (packet_mmap.rst in the kernel's docs): the
/// kernel copies each frame into blocks of a memory area shared with this process and hands a
/// block over when it is full or its retire timeout passed (one wake-up per block, not per
/// frame); [`PacketRing::next_block`] reads a handed-over block and gives it back. Owns the
/// socket and the mapping; dropping it unmaps and closes (the close waits for an RCU grace
/// period: drop it off any path that is timed).
pub(crate) struct PacketRing {
    fd: OwnedFd,
    map: std::ptr::NonNull<u8>,
    block_size: usize,
    block_nr: usize,
    /// The next block to read (blocks are handed over in order).
    next: usize,
    /// Blocks read so far.
    read: u64,
}

// SAFETY: the mapping is owned by the ring (no other reference to it exists outside `&self` /
// `&mut self` borrows), so moving the ring to another thread moves all access with it.
unsafe impl Send for PacketRing {}

/// One frame of a ring block ([`PacketRing::next_block`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingFrame<'a> {
    /// From the link-layer header on; shorter than `wire_len` when the frame did not fit a block.
    pub(crate) data: &'a [u8],
    /// The frame's length on the wire.
    pub(crate) wire_len: u32,
    /// The kernel's receive time stamp (CLOCK_REALTIME) in nanoseconds since the epoch.
    pub(crate) stamp_ns: u64,
    /// The interface the frame was seen on.
    pub(crate) ifindex: i32,
    /// `sll_pkttype`: PACKET_OUTGOING for a frame the interface sent.
    pub(crate) pkttype: u8,
}

/// Where a block descriptor's fields are (struct tpacket_block_desc: version, offset_to_priv,
/// then struct tpacket_hdr_v1).
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;

impl PacketRing {
    /// Turns the packet socket `fd` (made with protocol 0: it receives nothing yet) into a
    /// TPACKET_V3 ring of `block_nr` blocks of `block_size` bytes (a power of two multiple of
    /// the page size), handed over at the latest `retire_ms` after their first frame, maps it,
    /// then binds the socket to every protocol of every interface of its namespace.
    ///
    /// # Errors
    /// The call that failed (setsockopt, mmap, bind) with the kernel's error.
    pub(crate) fn new(fd: OwnedFd, block_size: usize, block_nr: usize, retire_ms: u32) -> io::Result<PacketRing> {
        let ctx = |what: &str| {
            let e = io::Error::last_os_error();
            io::Error::new(e.kind(), format!("{what}: {e}"))
        };
        let setopt = |opt: libc::c_int, val: *const libc::c_void, len: usize, what: &str| -> io::Result<()> {
            // SAFETY: `val` points to `len` readable bytes of the option's type (the callers
            // below pass a reference to a local of that type and its size).
            let r = unsafe { libc::setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, opt, val, len as libc::socklen_t) };
            if r != 0 {
                return Err(ctx(what));
            }
            Ok(())
        };
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setopt(libc::PACKET_VERSION, (&raw const version).cast(), size_of::<libc::c_int>(), "setsockopt(PACKET_VERSION, TPACKET_V3)")?;
        // tp_frame_size only has to divide the block for V3 (frames are packed back to back).
        let frame_size = 2048usize;
        let req = libc::tpacket_req3 {
            tp_block_size: u32::try_from(block_size).map_err(io::Error::other)?,
            tp_block_nr: u32::try_from(block_nr).map_err(io::Error::other)?,
            tp_frame_size: frame_size as u32,
            tp_frame_nr: u32::try_from(block_size / frame_size * block_nr).map_err(io::Error::other)?,
            tp_retire_blk_tov: retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setopt(libc::PACKET_RX_RING, (&raw const req).cast(), size_of::<libc::tpacket_req3>(), "setsockopt(PACKET_RX_RING)")?;
        let len = block_size * block_nr;
        // SAFETY: a fresh shared mapping of the socket's ring (its length is the ring's size, as
        // the kernel requires); nothing else maps this memory in this process.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd.as_raw_fd(), 0) };
        if p == libc::MAP_FAILED {
            return Err(ctx("mmap of the packet ring"));
        }
        let map = std::ptr::NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned a null pointer"))?;
        let ring = PacketRing { fd, map, block_size, block_nr, next: 0, read: 0 };
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value, then filled in.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = 0;
        // SAFETY: `sll` is a valid sockaddr_ll and its size is given.
        let r = unsafe { libc::bind(ring.fd.as_raw_fd(), (&raw const sll).cast(), size_of::<libc::sockaddr_ll>() as libc::socklen_t) };
        if r != 0 {
            return Err(ctx("bind(ETH_P_ALL)"));
        }
        Ok(ring)
    }

    /// The socket, to poll: readable when a block was handed over.
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Blocks read so far by [`PacketRing::next_block`].
    pub(crate) fn blocks_read(&self) -> u64 {
        self.read
    }

    /// The block descriptor's 32-bit field at `off` of block `i`, as an atomic (the kernel
    /// writes it concurrently while the block is its own).
    fn field(&self, i: usize, off: usize) -> &std::sync::atomic::AtomicU32 {
        debug_assert!(i < self.block_nr && off <= BLOCK_FIRST_PKT && off % 4 == 0);
        // SAFETY: block `i` starts at i * block_size inside the mapping (i < block_nr) and the
        // field is 4-byte aligned (the mapping is page-aligned, blocks are page multiples,
        // `off` is a multiple of 4); the memory lives as long as `self`; the kernel accesses it
        // concurrently, hence only through atomic operations here.
        unsafe { std::sync::atomic::AtomicU32::from_ptr(self.map.as_ptr().add(i * self.block_size + off).cast()) }
    }

    /// Whether frames are waiting for this reader: a handed-over block it has not read, or
    /// frames in the block the kernel is filling (handed over at the latest at its retire
    /// timeout).
    pub(crate) fn frames_pending(&self) -> bool {
        use std::sync::atomic::Ordering;
        let status = self.field(self.next, BLOCK_STATUS).load(Ordering::Acquire);
        status & libc::TP_STATUS_USER != 0 || self.field(self.next, BLOCK_NUM_PKTS).load(Ordering::Acquire) > 0
    }

    /// Hands each frame of the next handed-over block to `f`, then gives the block back to the
    /// kernel. Returns `None` when the kernel holds the next block (nothing to read), else
    /// whether the kernel dropped frames since the last [`PacketRing::take_drops`]
    /// (TP_STATUS_LOSING).
    pub(crate) fn next_block(&mut self, mut f: impl FnMut(RingFrame<'_>)) -> Option<bool> {
        use std::sync::atomic::Ordering;
        let status = self.field(self.next, BLOCK_STATUS).load(Ordering::Acquire);
        if status & libc::TP_STATUS_USER == 0 {
            return None;
        }
        let base = self.next * self.block_size;
        // SAFETY: the block is this reader's until its status is set back to TP_STATUS_KERNEL
        // below (the Acquire load above saw TP_STATUS_USER, after the kernel's last write to
        // it): nothing writes it meanwhile, so a shared slice over it is sound; it lies inside
        // the mapping.
        let block: &[u8] = unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(base), self.block_size) };
        let num = u32_at(block, BLOCK_NUM_PKTS).unwrap_or(0);
        let mut off = u32_at(block, BLOCK_FIRST_PKT).unwrap_or(0) as usize;
        // Every offset the kernel wrote is checked against the block: a bad one ends the block.
        for _ in 0..num {
            let Some((frame, next)) = ring_frame(block, off) else { break };
            f(frame);
            if next == 0 {
                break;
            }
            off += next as usize;
        }
        // The count of a block given back reads zero until the kernel fills it again
        // ([`PacketRing::frames_pending`] reads it).
        self.field(self.next, BLOCK_NUM_PKTS).store(0, Ordering::Relaxed);
        self.field(self.next, BLOCK_STATUS).store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.next = (self.next + 1) % self.block_nr;
        self.read += 1;
        Some(status & libc::TP_STATUS_LOSING != 0)
    }

    /// Frames the kernel dropped (the ring was full) since the last call (PACKET_STATISTICS,
    /// which the kernel resets on each read).
    ///
    /// # Errors
    /// The kernel's error of getsockopt.
    pub(crate) fn take_drops(&self) -> io::Result<u32> {
        let mut st = libc::tpacket_stats_v3 { tp_packets: 0, tp_drops: 0, tp_freeze_q_cnt: 0 };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` is a writable tpacket_stats_v3 of `len` bytes, what PACKET_STATISTICS
        // writes for a TPACKET_V3 socket.
        let r = unsafe { libc::getsockopt(self.fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_STATISTICS, (&raw mut st).cast(), &mut len) };
        if r != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("getsockopt(PACKET_STATISTICS): {e}")));
        }
        Ok(st.tp_drops)
    }
}

fn u32_at(block: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(block.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

/// The frame at `off` of a block and the offset of the next one: struct tpacket3_hdr, then
/// struct sockaddr_ll at TPACKET_ALIGN(sizeof hdr), the frame at tp_mac. `None` when a field
/// points outside the block.
fn ring_frame(block: &[u8], off: usize) -> Option<(RingFrame<'_>, u32)> {
    const SLL: usize = (size_of::<libc::tpacket3_hdr>() + libc::TPACKET_ALIGNMENT - 1) & !(libc::TPACKET_ALIGNMENT - 1);
    let next = u32_at(block, off)?;
    let (sec, nsec, snaplen, len) = (u32_at(block, off + 4)?, u32_at(block, off + 8)?, u32_at(block, off + 12)?, u32_at(block, off + 16)?);
    let mac = usize::from(u16::from_ne_bytes(block.get(off + 24..off + 26)?.try_into().ok()?));
    let ifindex = u32_at(block, off + SLL + 4)? as i32;
    let pkttype = *block.get(off + SLL + 10)?;
    let start = off.checked_add(mac)?;
    let data = block.get(start..start.checked_add(snaplen as usize)?)?;
    Some((RingFrame { data, wire_len: len, stamp_ns: u64::from(sec) * 1_000_000_000 + u64::from(nsec), ifindex, pkttype }, next))
}

impl Drop for PacketRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, with its length; no reference into it outlives
        // `self` (every slice handed out borrows `self`).
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.block_size * self.block_nr);
        }
    }
}

/// Lowers the calling thread's scheduling priority to `nice` (Linux keeps a nice value per
/// thread: setpriority(PRIO_PROCESS, 0) changes only the caller). Raising nice needs no
/// privilege.
///
/// # Errors
/// setpriority(2)'s error.
pub(crate) fn nice_this_thread(nice: i32) -> io::Result<()> {
    // SAFETY: setpriority takes plain integers and touches no memory of this process.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
