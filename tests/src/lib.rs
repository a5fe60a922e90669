//! Support for nslab's own kernel tests: trials that declare they need the kernel, a snapshot of
//! the host's network state, and a child-process mode for crash tests.

use std::future::Future;
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};

/// Without root, moves this test binary into a user namespace of its own (rootless mode), so
/// its kernel tests run the same as under root. Call it first thing in `main`.
///
/// Where rootless mode is blocked, the reason (naming the setting, see nslab::rootless) is
/// printed; under `NSLAB_REQUIRE_ALL=1` the binary then exits with failure, otherwise its kernel
/// tests are reported as ignored.
pub fn enter_rootless() {
    match nslab::rootless::enter() {
        Ok(nslab::rootless::Privileges::Rootless) => eprintln!("note: not root: running in rootless mode (a user namespace of this test binary's own)"),
        Ok(nslab::rootless::Privileges::Root) => {}
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
    nslab::runner::requirements::require_all_from_env()
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
pub fn run_checking_host(args: &Arguments, trials: Vec<Trial>) -> std::process::ExitCode {
    let check_host = kernel_unavailable().is_none() && !args.list;
    let before = check_host.then(HostSnapshot::take);
    let conclusion = libtest_mimic::run(args, trials);
    if let Some(before) = before {
        let diff = before.diff(&HostSnapshot::take());
        if !diff.is_empty() {
            eprintln!("host isolation: FAILED, the host changed during these tests:\n{}", diff.join("\n"));
            return std::process::ExitCode::FAILURE;
        }
        println!("host isolation: ok (interfaces, addresses, routes, rules, neighbours, mounts, resolver files and sysctls identical before and after)");
    }
    conclusion.exit_code()
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
        let st = Command::new(cargo).args(["build", "-q", "-p", "nslab", "--bin", "nslab"]).status().map_err(|e| format!("cargo build: {e}"))?;
        if !st.success() {
            return Err(format!("cargo build -p nslab failed: {st}"));
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
