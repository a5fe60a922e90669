//! Support for nslab's own kernel tests: trials that declare they need the kernel, a snapshot of
//! the host's network state, and a child-process mode for crash tests.

use std::future::Future;
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};

/// Without root, moves this test binary into a user namespace of its own (rootless mode), so
/// its kernel tests run the same as under root. Call it first thing in `main`.
///
/// Where rootless mode is blocked, the reason (naming the setting, see nslab::os::rootless) is
/// printed; under `NSLAB_REQUIRE_ALL=1` the binary then exits with failure, otherwise its kernel
/// tests are reported as ignored.
pub fn enter_rootless() {
    match nslab::os::rootless::enter() {
        Ok(nslab::os::rootless::Privileges::Rootless) => eprintln!("note: not root: running in rootless mode (a user namespace of this test binary's own)"),
        Ok(nslab::os::rootless::Privileges::Root) => {}
        Err(e) if require_all() => {
            eprintln!("{e}");
            std::process::exit(1);
        }
        Err(e) => eprintln!("note: {e}"),
    }
}

/// Why this machine cannot run kernel tests, if it cannot.
pub fn kernel_unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let caps = status.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok()).unwrap_or(0);
    let need = (1u64 << 12) | (1u64 << 21);
    if caps & need != need {
        return Some("needs CAP_NET_ADMIN and CAP_SYS_ADMIN (run as root)".into());
    }
    None
}

/// Whether every requirement must be met (`NSLAB_REQUIRE_ALL=1`, `true`, `yes` or `on`, set by
/// CI): a test that would be ignored for a missing requirement fails instead. Read exactly as
/// `nslab run` reads it.
pub fn require_all() -> bool {
    nslab_scenario::runner::requirements::require_all_from_env()
}

/// Whether `program` is on PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// A trial that needs the kernel and runs `f` in its own current-thread runtime.
pub fn kernel_trial<F, Fut>(name: impl Into<String>, f: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>>,
{
    trial_requiring(name, &[], f)
}

/// A trial that needs the kernel and the given programs: ignored (with the reason printed)
/// where one is missing, failed instead under `NSLAB_REQUIRE_ALL=1`.
pub fn trial_requiring<F, Fut>(name: impl Into<String>, programs: &[&str], f: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>>,
{
    let name = name.into();
    let mut missing = kernel_unavailable();
    if missing.is_none() {
        let absent: Vec<&str> = programs.iter().copied().filter(|p| !have(p)).collect();
        if !absent.is_empty() {
            missing = Some(format!("needs {} on PATH (scripts/setup.sh installs it)", absent.join(", ")));
        }
    }
    if let (Some(why), false) = (&missing, require_all()) {
        eprintln!("note: {name} is ignored: {why}");
    }
    let ignored = missing.is_some() && !require_all();
    Trial::test(name, move || {
        if let Some(why) = missing {
            return Err(Failed::from(format!("required: {why} (NSLAB_REQUIRE_ALL=1)")));
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(f()).map_err(Failed::from)
    })
    .with_ignored_flag(ignored)
}

/// Returns `Err(message)` from the enclosing function when `cond` is false.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Formats an nslab error with its cause chain.
pub fn err(e: impl std::error::Error + 'static) -> String {
    nslab::error::chain(&e)
}

/// What must be identical before and after the suite: the host's interfaces, addresses,
/// routes, rules, neighbours, mounts seen by this process, and its resolver files.
#[derive(Debug, PartialEq, Eq)]
pub struct HostSnapshot(Vec<(String, String)>);

impl HostSnapshot {
    /// Takes a snapshot (with `ip`, read-only, in the host namespace).
    pub fn take() -> HostSnapshot {
        let mut v = Vec::new();
        for args in [
            &["-o", "link", "show"][..],
            &["-o", "addr", "show"],
            &["route", "show", "table", "all"],
            &["-6", "route", "show", "table", "all"],
            &["rule", "show"],
            &["-6", "rule", "show"],
            &["neigh", "show", "nud", "permanent"],
            &["netns", "list"],
        ] {
            let out =
                Command::new("ip").args(args).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_else(|e| format!("ip failed: {e}"));
            v.push((format!("ip {}", args.join(" ")), out));
        }
        for f in [
            "/etc/resolv.conf",
            "/etc/hosts",
            "/etc/gai.conf",
            "/proc/sys/net/ipv6/bindv6only",
            "/proc/sys/net/ipv6/conf/all/disable_ipv6",
            "/proc/sys/net/ipv6/conf/default/addr_gen_mode",
            "/proc/sys/net/ipv6/conf/default/accept_dad",
            "/proc/sys/net/ipv4/ip_forward",
            "/proc/sys/kernel/hostname",
        ] {
            v.push((f.to_string(), std::fs::read_to_string(f).unwrap_or_else(|e| format!("<{e}>"))));
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        v.push(("mounts".into(), mounts.lines().map(|l| l.split_whitespace().skip(3).take(2).collect::<Vec<_>>().join(" ")).collect::<Vec<_>>().join("\n")));
        HostSnapshot(v)
    }

    /// Human-readable differences from `other`.
    pub fn diff(&self, other: &HostSnapshot) -> Vec<String> {
        self.0.iter().zip(&other.0).filter(|(a, b)| a.1 != b.1).map(|(a, b)| format!("{} changed:\n--- before\n{}\n--- after\n{}", a.0, a.1, b.1)).collect()
    }
}

/// Runs the trials as `libtest_mimic::run` does, and checks that the host's network state
/// (interfaces, addresses, routes, rules, neighbours, mounts, resolver files, sysctls) is the
/// same after them as before: every test binary proves it left the host untouched. A difference
/// fails the binary and is printed.
///
/// It also checks the machine's temporary directories (see [`TmpCheck`]): a passing binary
/// leaves nothing of nslab's in `$TMPDIR`, `/tmp`, `/var/tmp`, `/run` or `/var/run` but
/// nslab's own checked roots, and nothing new in those roots.
pub fn run_checking_host(args: &Arguments, trials: Vec<Trial>) -> std::process::ExitCode {
    let check_host = kernel_unavailable().is_none() && !args.list;
    let before = check_host.then(HostSnapshot::take);
    let tmp = if args.list { None } else { TmpCheck::start() };
    let conclusion = libtest_mimic::run(args, trials);
    for (lab, path) in nslab::os::artifacts::kept_by_drop() {
        eprintln!("nslab: lab {lab} was not torn down (error or panic); artifacts kept in {}", path.display());
    }
    let mut code = conclusion.exit_code();
    if let Some(tmp) = tmp {
        let passed = conclusion.num_failed == 0;
        let leaks = tmp.finish(passed);
        if !leaks.is_empty() {
            eprintln!("temporary files: FAILED, left behind or readable by others:\n  {}", leaks.join("\n  "));
            code = std::process::ExitCode::FAILURE;
        } else if passed {
            println!("temporary files: ok (nothing of nslab's left in $TMPDIR, /tmp, /var/tmp, /run, /var/run or nslab's own roots)");
        }
    }
    if let Some(before) = before {
        let diff = before.diff(&HostSnapshot::take());
        if !diff.is_empty() {
            eprintln!("host isolation: FAILED, the host changed during these tests:\n{}", diff.join("\n"));
            return std::process::ExitCode::FAILURE;
        }
        println!("host isolation: ok (interfaces, addresses, routes, rules, neighbours, mounts, resolver files and sysctls identical before and after)");
    }
    code
}

/// The machine's shared temporary directories, watched around a test binary.
///
/// Other processes (other users, other test runs) write in these directories at any time, so
/// the check only judges what this binary can be told apart by:
/// - `$TMPDIR`: the binary gets a private one (`$TMPDIR/nslab-tests-XXXX`, mode 0711) for itself
///   and every child; after a passing run it must be empty, exactly. After a failing run it is
///   kept (evidence) and its path printed.
/// - `/tmp`, `/var/tmp`, `/run`, `/var/run` and the real `$TMPDIR`: every name nslab creates
///   starts with `nslab`; a new top-level name so starting that is not one of nslab's checked
///   roots is a leak.
/// - nslab's default roots (artifacts and state): a new entry still there after a passing run
///   is a leak, unless it belongs to another process's live lab (its `.nslab-live` marker,
///   `daemon.pid` or held `lock` says so). No root may be listable or writable by other users
///   (0700, or 0711 on the way to a service directory), so nothing nslab keeps there (a failed
///   trial's evidence) can be found or read by them.
///
/// A new name in the shared directories can only be told to be this binary's when no other
/// nslab process ran meanwhile (as on CI): processes are watched while the trials run, and one
/// whose command line mentions nslab but whose environment lacks this binary's private
/// `TMPDIR` (which every process this binary starts inherits) is another run's. When one was
/// seen, such names are printed as a note naming that process instead of failing the binary.
pub struct TmpCheck {
    private: std::path::PathBuf,
    shared: Vec<(std::path::PathBuf, std::collections::BTreeSet<std::ffi::OsString>)>,
    roots: Vec<(std::path::PathBuf, std::collections::BTreeSet<std::path::PathBuf>, bool)>,
    others: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The cargo-nextest run this process is one test of, if it is.
    nextest: Option<String>,
}

impl TmpCheck {
    /// Takes the snapshot and gives this process (and its children) a private `$TMPDIR`.
    /// Call it before any thread starts.
    pub fn start() -> Option<TmpCheck> {
        use std::os::unix::fs::PermissionsExt;
        let real = std::env::temp_dir();
        let private = match tempfile::Builder::new().prefix("nslab-tests-").tempdir_in(&real) {
            Ok(d) => d.keep(),
            Err(e) => {
                eprintln!("note: temporary files are not checked: cannot make a private TMPDIR in {}: {e}", real.display());
                return None;
            }
        };
        // Traversable (the trials acting as another user hand it a directory inside), not listable.
        let _ = std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o711));
        let shared: Vec<std::path::PathBuf> = ["/tmp", "/var/tmp", "/run", "/var/run"].iter().map(std::path::PathBuf::from).chain([real]).collect();
        // Single-threaded still: every later temp_dir() and child sees the private one.
        std::env::set_var("TMPDIR", &private);
        let roots = [(nslab::os::artifacts::default_root(), "NSLAB_ARTIFACTS_DIR"), (nslab_cli::live::state_root(), "NSLAB_STATE_DIR")]
            .into_iter()
            // A root the caller chose is theirs to set modes on; nslab's own are judged.
            .map(|(r, var)| (r, std::env::var_os(var).is_none_or(|v| v.is_empty())))
            .collect();
        let mut check = TmpCheck::watch(private, shared, roots);
        check.nextest = std::env::var_os("NEXTEST_RUN_ID").map(|id| format!("cargo-nextest run {}", id.to_string_lossy()));
        Some(check)
    }

    /// Snapshots `shared` directories and `roots` (with whether their modes are nslab's to
    /// judge) around a run whose private temporary directory is `private`.
    pub fn watch(private: std::path::PathBuf, shared: Vec<std::path::PathBuf>, roots: Vec<(std::path::PathBuf, bool)>) -> TmpCheck {
        TmpCheck::watch_with(private, shared, roots, true)
    }

    fn watch_with(private: std::path::PathBuf, shared: Vec<std::path::PathBuf>, roots: Vec<(std::path::PathBuf, bool)>, sample: bool) -> TmpCheck {
        let mut snap = Vec::new();
        for d in shared {
            let d = std::fs::canonicalize(&d).unwrap_or(d);
            if !snap.iter().any(|(p, _)| *p == d) {
                let names = nslab_names(&d);
                snap.push((d, names));
            }
        }
        let roots = roots.into_iter().filter(|(r, _)| !r.starts_with(&private)).map(|(r, own)| (r.clone(), walk(&r), own)).collect();
        let others = std::sync::Arc::new(std::sync::Mutex::new(None));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (o, st, marker) = (others.clone(), stop.clone(), format!("TMPDIR={}", private.display()));
        std::thread::spawn(move || {
            while sample && !st.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(seen) = other_nslab_process(&marker) {
                    o.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(seen);
                }
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
        });
        TmpCheck { private, shared: snap, roots, others, stop, nextest: None }
    }

    /// What was left behind (after a passing run) or is readable by other users.
    pub fn finish(self, passed: bool) -> Vec<String> {
        use std::os::unix::fs::MetadataExt;
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let others = self.others.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut leaks = Vec::new();
        let left: Vec<std::path::PathBuf> = walk(&self.private).into_iter().collect();
        if passed {
            leaks.extend(left.iter().map(|p| format!("{} (in this binary's private TMPDIR)", p.display())));
            if left.is_empty() {
                let _ = std::fs::remove_dir(&self.private);
            }
        } else if left.is_empty() {
            let _ = std::fs::remove_dir(&self.private);
        } else {
            eprintln!("note: this binary's temporary files are kept (a trial failed): {}", self.private.display());
        }
        let root_paths: Vec<&std::path::PathBuf> = self.roots.iter().map(|(r, _, _)| r).collect();
        for (dir, before) in &self.shared {
            for n in nslab_names(dir).difference(before) {
                let p = dir.join(n);
                let is_root = root_paths.iter().any(|r| r.starts_with(&p));
                match (&others, !is_root && passed) {
                    (None, true) => leaks.push(format!("{} (a new nslab name in {})", p.display(), dir.display())),
                    (Some(who), true) => {
                        eprintln!("note: {} is new in {}, but another nslab run was going on ({who}): not attributed", p.display(), dir.display())
                    }
                    _ => {}
                }
            }
        }
        for (root, before, own) in &self.roots {
            if let Some(md) = std::fs::metadata(root).ok().filter(|_| *own) {
                // 0711 is allowed: searchable for a lab program that switches users, never listable.
                if md.mode() & 0o066 != 0 {
                    leaks.push(format!("{} (nslab's root has mode {:o}: other users can list or change what it keeps)", root.display(), md.mode() & 0o777));
                }
            }
            if !passed {
                continue;
            }
            let now = walk(root);
            let live: Vec<&std::path::PathBuf> = now.iter().filter(|d| live_evidence(d)).collect();
            // Under cargo-nextest every test is a process of its own and the processes of one
            // run overlap (too briefly to be sampled above), and a retry keeps its evidence by
            // design (runner::attempt): what lands in a shared root then cannot be told to be
            // this process's. The run as a whole is checked by its script
            // (scripts/nextest-retries.sh: a first-time pass leaves nothing).
            let concurrent = others.clone().or_else(|| self.nextest.clone());
            for p in now.difference(before) {
                if live.iter().any(|l| l.starts_with(p) || p.starts_with(l)) {
                    continue;
                }
                match &concurrent {
                    None => leaks.push(format!("{} (new in nslab's root {})", p.display(), root.display())),
                    Some(who) => eprintln!(
                        "note: {} is new in nslab's root {}, but other processes of the run shared it ({who}): not attributed",
                        p.display(),
                        root.display()
                    ),
                }
            }
        }
        leaks
    }
}

/// A process that is not this binary's (its environment lacks `marker`) and whose command
/// line mentions nslab, as "pid N: command".
fn other_nslab_process(marker: &str) -> Option<String> {
    let me = std::process::id().to_string();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        if !String::from_utf8_lossy(&cmd).contains("nslab") {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        if !env.split(|b| *b == 0).any(|v| v == marker.as_bytes()) {
            return Some(format!("pid {pid}: {}", String::from_utf8_lossy(&cmd).replace('\0', " ").trim()));
        }
    }
    None
}

/// Entries of `dir` whose names start with "nslab" or ".nslab".
fn nslab_names(dir: &std::path::Path) -> std::collections::BTreeSet<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().trim_start_matches('.').starts_with("nslab"))
        .collect()
}

/// Every path below `dir` (not following links; bounded).
fn walk(dir: &std::path::Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    let mut out = std::collections::BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p.clone());
            }
            out.insert(p);
            if out.len() > 200_000 {
                return out;
            }
        }
    }
    out
}

/// Whether directory `d` belongs to a live lab of another process: a lab artifact directory
/// whose marker names a live process, or a lab state directory whose daemon lives or whose
/// name is being claimed.
fn live_evidence(d: &std::path::Path) -> bool {
    let alive = |f: &str| std::fs::read(d.join(f)).ok().and_then(|b| serde_json::from_slice::<nslab_cli::live::ProcId>(&b).ok()).is_some_and(|p| p.alive());
    let locked = std::fs::File::open(d.join("lock")).is_ok_and(|f| nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).is_err());
    alive(".nslab-live") || alive("daemon.pid") || locked
}

/// The `nslab` binary of this build: next to the test binaries' folder, built when missing
/// (`cargo test -p nslab-tests` alone does not build other packages' binaries).
///
/// # Errors
/// What went wrong finding or building it.
pub fn nslab_bin() -> Result<std::path::PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe.parent().and_then(std::path::Path::parent).ok_or("no target directory")?;
    let bin = profile_dir.join("nslab");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo).args(["build", "-q", "-p", "nslab-cli", "--bin", "nslab"]).status().map_err(|e| format!("cargo build: {e}"))?;
        if !st.success() {
            return Err(format!("cargo build -p nslab-cli failed: {st}"));
        }
    }
    Ok(bin)
}

/// Makes a child test process start with SIGINT, SIGQUIT, SIGTERM and SIGHUP at their default
/// action and no signal blocked, whatever this test binary inherited. A test that relies on a
/// signal's default action in its child must not depend on who started the suite: a background
/// job of a non-interactive shell (`cmd &` in a script, CI and nohup wrappers) starts with SIGINT
/// and SIGQUIT ignored, the ignore passes through fork and exec, and the child would then outlive
/// the signal the test sends it.
pub fn default_signals(cmd: &mut Command) -> &mut Command {
    nslab::sys::default_signals(cmd)
}

/// Waits for a child test process to end, for at most `bound` (a guard against a hang, not a
/// measurement: pick it far above the normal time). Past it, the child is killed and the error
/// says what was awaited and for how long, instead of the test stalling the suite.
pub async fn wait_child_bounded(mut child: std::process::Child, what: &str, bound: std::time::Duration) -> Result<std::process::ExitStatus, String> {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("{what}: wait for pid {}: {e}", child.id()))? {
            return Ok(status);
        }
        if start.elapsed() >= bound {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what}: pid {} had not ended after {:.1} s; killed it", child.id(), bound.as_secs_f64()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// How long a test waits for one nslab command (a scenario run, `up`, `down`) before it gives up:
/// a guard against a hang, far above the normal time.
pub const COMMAND_BOUND: std::time::Duration = std::time::Duration::from_secs(300);

/// Waits for a spawned child's exit and output, for at most `bound`. Past it, the child is killed
/// (by its id: it is ours and not yet reaped) and the error says what was awaited, for how long,
/// and the output so far is lost with it. For the `std::process::Command::output()` of tests.
pub fn output_bounded(child: std::process::Child, what: &str, bound: std::time::Duration) -> Result<std::process::Output, String> {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(bound) {
        Ok(r) => r.map_err(|e| format!("{what}: {e}")),
        Err(_) => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            Err(format!("{what}: pid {pid} had not ended (or its output was still open) after {} s; killed it", bound.as_secs()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The check fails for each kind of leftover, and excuses what a live lab of another
    /// process holds.
    #[test]
    fn tmp_check_finds_what_is_left() {
        let t = tempfile::tempdir().unwrap();
        let (private, shared, root) = (t.path().join("private"), t.path().join("shared"), t.path().join("root"));
        for d in [&private, &shared, &root] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::create_dir(root.join("old")).unwrap();
        // Alone, as on CI (other nslab runs on this machine must not change the verdict here).
        let check = TmpCheck::watch_with(private.clone(), vec![shared.clone()], vec![(root.clone(), true)], false);
        std::fs::write(private.join("nslab-up-x.log"), "").unwrap();
        std::fs::write(shared.join("nslab-up-y.log"), "").unwrap();
        std::fs::write(shared.join("other-tool.sock"), "").unwrap();
        std::fs::create_dir_all(root.join("examples/dual-bind")).unwrap();
        // A live lab of another process (here: this one, alive): excused, with its folders.
        let live = root.join("bind/x/lab1-0-abc");
        std::fs::create_dir_all(&live).unwrap();
        let me = nslab_cli::live::ProcId::of(std::process::id()).unwrap();
        std::fs::write(live.join(".nslab-live"), serde_json::to_vec(&me).unwrap()).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let leaks = check.finish(true);
        let want = [
            format!("{} (in this binary's private TMPDIR)", private.join("nslab-up-x.log").display()),
            format!("{} (a new nslab name in {})", shared.join("nslab-up-y.log").display(), shared.display()),
            format!("{} (nslab's root has mode 755: other users can list or change what it keeps)", root.display()),
            format!("{} (new in nslab's root {})", root.join("examples").display(), root.display()),
            format!("{} (new in nslab's root {})", root.join("examples/dual-bind").display(), root.display()),
        ];
        assert_eq!(leaks, want);
    }
}
