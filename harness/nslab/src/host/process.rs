//! Programs running inside a lab host: how they are described, started, awaited and stopped.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::host::output::{Line, Output, Stream};
use crate::sys;

/// A program to run inside a host: the lab's counterpart of [`std::process::Command`].
#[derive(Debug, Clone)]
pub struct Command {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) env_clear: bool,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) name: Option<String>,
    pub(crate) warp: Option<crate::time::TimeWarp>,
}

impl Command {
    /// A command running `program` (looked up in `PATH` like a shell does).
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self { program: program.as_ref().to_owned(), args: Vec::new(), env: Vec::new(), env_clear: false, cwd: None, name: None, warp: None }
    }

    /// `sh -c SCRIPT`.
    pub fn shell(script: impl AsRef<OsStr>) -> Self {
        Self::new("sh").arg("-c").arg(script).name("sh")
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Starts from an empty environment instead of the harness's.
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self
    }

    /// Sets the working directory, as the host sees it (a path under `/tmp` is in the host's own
    /// `/tmp`); a relative path is taken from the harness's working directory. The spawn fails
    /// (ENOENT) when the host has no such directory. Without it the program starts in the
    /// harness's working directory when the host sees that path, and in `/` when it does not (a
    /// test run from a directory under `/tmp`, which the host has its own of).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Names the process in logs and artifact files (default: the program's file name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Runs the program in the warped time of `warp`: its clocks read program time and its
    /// timed waits last (program duration) / scale of real time (see [`crate::TimeWarp`]).
    /// The spawn fails with [`Error::TimeWarp`] when the program cannot be warped (a statically
    /// linked or Go binary: [`crate::TimeWarp::check_program`]) or nslab's preload library is
    /// missing. What the program starts inherits the warp (it inherits the environment), except
    /// programs of those classes, which run in real time.
    pub fn time_warp(mut self, warp: &crate::time::TimeWarp) -> Self {
        self.warp = Some(warp.clone());
        self
    }

    /// The warp it runs in, if any.
    pub fn warp(&self) -> Option<&crate::time::TimeWarp> {
        self.warp.as_ref()
    }

    /// `LD_PRELOAD` as the program would get it without a warp.
    pub(crate) fn preload_before(&self) -> Option<OsString> {
        let own = self.env.iter().rev().find(|(k, _)| k == "LD_PRELOAD").map(|(_, v)| v.clone());
        own.or_else(|| if self.env_clear { None } else { std::env::var_os("LD_PRELOAD") })
    }

    pub(crate) fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| std::path::Path::new(&self.program).file_name().unwrap_or(self.program.as_os_str()).to_string_lossy().into_owned())
    }

    pub(crate) fn to_tokio(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.program);
        c.args(&self.args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if self.env_clear {
            c.env_clear();
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        // The working directory is entered inside the host, after its mounts (sys::WorkDir).
        c
    }
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The program's wait status; `None` when it was killed together with its namespace
    /// (SIGKILL to the whole process tree) before it could report one.
    pub status: Option<ExitStatus>,
    /// Lab time it ended at.
    pub at: Duration,
}

impl Exit {
    /// Exit code, if it exited normally.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// Whether it exited with code 0.
    pub fn success(&self) -> bool {
        self.code() == Some(0)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "{s}"),
            None => f.write_str("killed with its namespace (SIGKILL)"),
        }
    }
}

pub(crate) struct ProcShared {
    pub(crate) host: String,
    pub(crate) name: String,
    pub(crate) pid: u32,
    pub(crate) started: Duration,
    /// Lab time the harness began to start it (before the namespaces and the fork).
    pub(crate) begun: Duration,
    pub(crate) output: Arc<Output>,
    pub(crate) exit: watch::Receiver<Option<Exit>>,
}

impl ProcShared {
    pub(crate) fn label(&self) -> String {
        format!("{}/{}", self.host, self.name)
    }

    pub(crate) fn kill_now(&self) {
        if self.exit.borrow().is_none() {
            // The init is PID 1 of its namespace: killing it kills the whole tree.
            let _ = sys::signal(self.pid, Signal::SIGKILL);
        }
    }
}

/// Every process a lab started, so teardown can end them.
#[derive(Default)]
pub(crate) struct Registry {
    procs: Mutex<Vec<Arc<ProcShared>>>,
}

impl Registry {
    pub(crate) fn add(&self, p: Arc<ProcShared>) {
        self.procs.lock().unwrap_or_else(|e| e.into_inner()).push(p);
    }

    pub(crate) fn all(&self) -> Vec<Arc<ProcShared>> {
        self.procs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Every descendant of process `pid`, read from /proc (`/proc/PID/task/*/children`).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else { continue };
        for t in tasks.flatten() {
            let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for k in kids.split_whitespace().filter_map(|k| k.parse().ok()) {
                out.push(k);
                stack.push(k);
            }
        }
    }
    out
}

/// A program running (or that ran) inside a lab host. Cheap to clone.
#[derive(Clone)]
pub struct Process {
    pub(crate) shared: Arc<ProcShared>,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process").field("host", &self.shared.host).field("name", &self.shared.name).field("pid", &self.shared.pid).finish()
    }
}

impl Process {
    /// Starts the supervisor of a freshly spawned init.
    pub(crate) fn supervise(mut spawned: sys::Spawned, host: &str, name: String, output: Arc<Output>, epoch: Instant, begun: Duration) -> Process {
        let pid = spawned.child.id().unwrap_or(0);
        let (tx, rx) = watch::channel(None);
        let out = spawned.child.stdout.take();
        let err = spawned.child.stderr.take();
        let o1 = output.clone();
        let o2 = output.clone();
        let pumps = async move {
            let a = async {
                if let Some(s) = out {
                    o1.pump(s, Stream::Stdout).await
                }
            };
            let b = async {
                if let Some(s) = err {
                    o2.pump(s, Stream::Stderr).await
                }
            };
            tokio::join!(a, b);
        };
        let mut child = spawned.child;
        let status_r = spawned.status_r;
        tokio::spawn(async move {
            let (status, _) = tokio::join!(sys::read_status(status_r), pumps);
            let _ = child.wait().await;
            let _ = tx.send(Some(Exit { status: status.ok().flatten(), at: epoch.elapsed() }));
        });
        Process { shared: Arc::new(ProcShared { host: host.to_string(), name, pid, started: epoch.elapsed(), begun, output, exit: rx }) }
    }

    /// The name used in logs and artifact file names.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The host it runs in.
    pub fn host(&self) -> &str {
        &self.shared.host
    }

    /// Process id (in the harness's PID namespace) of the init that supervises the program;
    /// signals sent to it are forwarded to the program's process group.
    pub fn pid(&self) -> u32 {
        self.shared.pid
    }

    /// Lab time at which it was started (the harness's spawn call returned: it runs).
    pub fn started_at(&self) -> Duration {
        self.shared.started
    }

    /// Lab time at which the harness began to start it: nothing the program did can come
    /// earlier, while on a busy machine it may act before [`Process::started_at`] (the spawn
    /// call returns late). What it did is looked for from here.
    pub fn begun_at(&self) -> Duration {
        self.shared.begun
    }

    /// Path of its standard output log in the artifacts.
    pub fn stdout_path(&self) -> &std::path::Path {
        &self.shared.output.stdout_path
    }

    /// Path of its standard error log in the artifacts.
    pub fn stderr_path(&self) -> &std::path::Path {
        &self.shared.output.stderr_path
    }

    /// Everything written to standard output so far.
    pub fn stdout(&self) -> String {
        self.shared.output.text(Some(Stream::Stdout))
    }

    /// Everything written to standard error so far.
    pub fn stderr(&self) -> String {
        self.shared.output.text(Some(Stream::Stderr))
    }

    /// Both streams, interleaved in arrival order.
    pub fn output(&self) -> String {
        self.shared.output.text(None)
    }

    /// All lines so far with their stream and arrival time.
    pub fn lines(&self) -> Vec<Line> {
        self.shared.output.lines()
    }

    /// How it ended, if it has.
    pub fn exit(&self) -> Option<Exit> {
        self.shared.exit.borrow().clone()
    }

    /// Waits until a line of output (either stream, from the start) matches `pattern`, a regular
    /// expression in the [regex crate's syntax](https://docs.rs/regex/1/regex/#syntax)
    /// (unanchored: `"ready"` matches any line containing it, `"^ready$"` only that line).
    ///
    /// # Errors
    /// [`Error::Pattern`] when `pattern` is not a valid regular expression;
    /// [`Error::Timeout`] or [`Error::Exited`], both with the last lines of output.
    pub async fn wait_for_line(&self, pattern: &str, timeout: Duration) -> Result<Line> {
        let pattern = regex::Regex::new(pattern).map_err(|source| Error::Pattern { pattern: pattern.to_string(), source })?;
        let what = format!("{} to print a line matching /{}/", self.shared.label(), pattern.as_str());
        let pred = |s: &str| pattern.is_match(s);
        match tokio::time::timeout(timeout, self.shared.output.wait_line(0, &pred)).await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => {
                let exit = self.wait_exit(Duration::from_secs(5)).await.ok();
                Err(Error::Exited {
                    process: self.shared.label(),
                    status: exit.map(|e| e.to_string()).unwrap_or_else(|| "output closed".into()),
                    what,
                    tail: self.shared.output.tail(20),
                })
            }
            Err(_) => Err(Error::Timeout { what, timeout, tail: self.shared.output.tail(20) }),
        }
    }

    /// Waits for the program to end; its output is complete when this returns.
    ///
    /// # Errors
    /// [`Error::Timeout`] with the last lines of output.
    pub async fn wait_exit(&self, timeout: Duration) -> Result<Exit> {
        let mut rx = self.shared.exit.clone();
        let res = tokio::time::timeout(timeout, rx.wait_for(|e| e.is_some())).await.map(|r| r.map(|e| e.clone()));
        match res {
            Ok(Ok(e)) => Ok(e.expect("waited for Some")),
            Ok(Err(_)) => Ok(Exit { status: None, at: Duration::ZERO }),
            Err(_) => Err(Error::Timeout { what: format!("{} to exit", self.shared.label()), timeout, tail: self.shared.output.tail(20) }),
        }
    }

    /// Process ids of the program and everything it started (in the harness's PID view).
    pub fn process_tree(&self) -> Vec<u32> {
        descendants(self.shared.pid)
    }

    /// Inodes of the sockets the program's processes hold open, to tell its listeners from
    /// other programs' in the same host (see [`crate::Listener::inode`]).
    pub fn socket_inodes(&self) -> std::collections::BTreeSet<u32> {
        self.process_tree()
            .into_iter()
            .filter_map(|pid| std::fs::read_dir(format!("/proc/{pid}/fd")).ok())
            .flat_map(|fds| fds.flatten())
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter_map(|l| l.to_str().and_then(|s| s.strip_prefix("socket:[")).and_then(|s| s.strip_suffix(']')).and_then(|s| s.parse().ok()))
            .collect()
    }

    /// The process of the program's tree (the program or anything it started) that holds the
    /// socket with this inode open, if one does (the lowest pid when several share it).
    pub fn socket_holder(&self, inode: u32) -> Option<u32> {
        let want = format!("socket:[{inode}]");
        let mut tree = self.process_tree();
        tree.sort_unstable();
        tree.into_iter().find(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|fds| fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == want.as_str())))
                .unwrap_or(false)
        })
    }

    /// Sends a signal to the program's process group.
    ///
    /// # Errors
    /// [`Error::Signal`] (ESRCH) when the process is gone.
    pub fn signal(&self, sig: Signal) -> Result<()> {
        sys::signal(self.shared.pid, sig).map_err(|source| Error::Signal { process: self.shared.label(), signal: sig, source })
    }

    /// Stops the program: SIGTERM to its process group, up to `grace` to exit, then SIGKILL to
    /// its whole process tree.
    pub async fn stop(&self, grace: Duration) -> Exit {
        if let Some(e) = self.exit() {
            return e;
        }
        let _ = self.signal(Signal::SIGTERM);
        if let Ok(e) = self.wait_exit(grace).await {
            return e;
        }
        self.kill().await
    }

    /// Kills the program and everything it started (SIGKILL) and waits until they are gone.
    pub async fn kill(&self) -> Exit {
        self.shared.kill_now();
        let mut rx = self.shared.exit.clone();
        let res = rx.wait_for(|e| e.is_some()).await.map(|e| e.clone());
        match res {
            Ok(e) => e.expect("waited for Some"),
            Err(_) => Exit { status: None, at: Duration::ZERO },
        }
    }
}
