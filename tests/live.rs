//! Long-lived labs and rootless mode, through the `nslab` command itself: `up`, `exec`,
//! `shell`, `dns`, `status`, `down` and `gc`, a daemon killed with -9, a lab that fails to
//! come up, and an unprivileged user (uid 65534) running scenarios and labs in rootless mode,
//! or told exactly which setting blocks it.
//!
//! Trials run one at a time: named namespaces are mounts of the host, checked around each.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::Arguments;
use nslab_tests::{kernel_trial, trial_requiring};

/// How long a wait for something that must happen (a process gone, a namespace made) lasts
/// before the test calls it missing. A hang guard, not a claim about speed: these events take
/// milliseconds on a quiet machine, and a loaded one must not turn them into failures.
const GUARD: Duration = Duration::from_secs(30);

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn main() -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let trials = vec![
        trial_requiring("up/exec-shell-dns-status-down-leave-nothing", &["curl", "dig", "python3"], up_exec_dns_down),
        kernel_trial("up/daemon-killed-with-9-then-gc-removes-every-trace", killed_then_gc),
        trial_requiring("up/a-lab-that-fails-to-come-up-leaves-its-log-and-nothing-else", &["python3"], failed_up),
        trial_requiring("rootless/unprivileged-user-runs-scenarios-and-labs", &["setpriv", "python3"], rootless_user),
        trial_requiring("rootless/blocked-user-namespaces-error-names-the-setting", &["setpriv", "unshare"], rootless_blocked),
        trial_requiring("chroot/nslab-says-it-runs-in-a-chroot-and-builds-nothing", &["unshare", "chroot"], in_chroot),
        trial_requiring("demo/programs-see-no-ipv6-fail-with-eafnosupport-and-nat64-reach-ipv4-servers", &["python3", "tayga"], demo_output),
    ];
    nslab_tests::run_checking_host(&args, trials)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repository root").to_path_buf()
}

/// A private state and artifact directory for one trial, so it touches no lab of a user.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Result<Env, String> {
        Ok(Env { dir: tempfile::Builder::new().prefix("nslab-live-").tempdir().map_err(|e| e.to_string())? })
    }

    fn cmd(&self, args: &[&str]) -> Result<Command, String> {
        let mut c = Command::new(nslab_tests::nslab_bin()?);
        c.args(args).env("NSLAB_STATE_DIR", self.dir.path().join("state")).env("NSLAB_ARTIFACTS_DIR", self.dir.path().join("artifacts")).env("NO_COLOR", "1");
        Ok(c)
    }

    fn run(&self, args: &[&str]) -> Result<Output, String> {
        let what = format!("nslab {}", args.join(" "));
        let child = self.cmd(args)?.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| format!("{what}: {e}"))?;
        nslab_tests::output_bounded(child, &what, nslab_tests::COMMAND_BOUND)
    }

    /// Runs and requires success; returns standard output.
    fn ok(&self, args: &[&str]) -> Result<String, String> {
        let out = self.run(args)?;
        ensure!(out.status.success(), "nslab {} failed ({}):\n{}{}", args.join(" "), out.status, text(&out.stdout), text(&out.stderr));
        Ok(text(&out.stdout))
    }

    fn state(&self, lab: &str) -> Result<serde_json::Value, String> {
        let p = self.dir.path().join("state").join(lab).join("state.json");
        let t = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&t).map_err(|e| e.to_string())
    }
}

/// Brings a lab down however its trial ends (a failed check must not leave it running).
struct Down<'a> {
    env: &'a Env,
    lab: String,
    as_nobody: bool,
}

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if !self.env.dir.path().join("state").join(&self.lab).exists() {
            return;
        }
        let args = ["down", "--force", self.lab.as_str()];
        let _ = if self.as_nobody { as_nobody(self.env, &args) } else { self.env.run(&args) };
        let _ = self.env.run(&["gc"]);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rfind(')').is_some_and(|i| !s[i + 1..].trim_start().starts_with('Z')))
}

fn wait_gone(pid: u64, limit: Duration) -> bool {
    let t = Instant::now();
    while alive(pid) {
        if t.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Named namespaces of lab `lab` in /run/netns.
fn named(lab: &str) -> Vec<String> {
    let prefix = format!("nslab-{lab}.");
    std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

fn mounts_mentioning(lab: &str) -> Vec<String> {
    let needle = format!("nslab-{lab}.");
    std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default().lines().filter(|l| l.contains(&needle)).map(str::to_string).collect()
}

fn pids(state: &serde_json::Value) -> (u64, Vec<u64>) {
    let daemon = state["daemon"]["pid"].as_u64().unwrap_or(0);
    let anchors = state["hosts"].as_array().map(|hs| hs.iter().filter_map(|h| h["anchor"]["pid"].as_u64()).collect()).unwrap_or_default();
    (daemon, anchors)
}

async fn up_exec_dns_down() -> Result<(), String> {
    let env = Env::new()?;
    let lab = format!("t{}a", std::process::id());
    let scenario = repo().join("scenarios/examples/cname-swap.toml");
    let _down = Down { env: &env, lab: lab.clone(), as_nobody: false };
    let out = env.ok(&["up", scenario.to_str().ok_or("path")?, "--name", &lab])?;
    ensure!(out.contains(&format!("lab {lab} is up")), "up said: {out}");
    let st = env.state(&lab)?;
    let (daemon, anchors) = pids(&st);
    ensure!(alive(daemon) && anchors.len() == 4 && anchors.iter().all(|p| alive(*p)), "daemon {daemon} or anchors {anchors:?} not running");
    let mut want: Vec<String> = ["blue", "client", "dns", "green"].iter().map(|h| format!("nslab-{lab}.{h}")).collect();
    let mut have = named(&lab);
    want.sort();
    have.sort();
    ensure!(have == want, "named namespaces {have:?}, expected {want:?}");

    // exec: the host's name, /etc files, network; exit codes pass through.
    let hn = env.ok(&["exec", &lab, "client", "--", "hostname"])?;
    ensure!(hn.trim() == "client", "hostname in client: {hn:?}");
    let rc = env.ok(&["exec", &lab, "client", "--", "cat", "/etc/resolv.conf"])?;
    ensure!(rc.contains("written by nslab") && rc.contains("search example.test"), "resolv.conf in client: {rc}");
    let body = env.ok(&["exec", &lab, "client", "--", "curl", "-sS", "--max-time", "5", "http://app.example.test:8000/color.txt"])?;
    ensure!(body.trim() == "blue", "before the swap curl got {body:?}");
    let code = env.run(&["exec", &lab, "client", "--", "sh", "-c", "exit 7"])?.status.code();
    ensure!(code == Some(7), "exit code of `exit 7` came back as {code:?}");
    let missing = env.run(&["exec", &lab, "nosuchhost", "--", "true"])?;
    ensure!(
        !missing.status.success() && text(&missing.stderr).contains("has no host \"nosuchhost\"; its hosts are: blue, green, client, dns"),
        "unknown host: {}",
        text(&missing.stderr)
    );

    // exec sees the host's own /run and /tmp (its anchor's mount namespace): what one command
    // writes there the next one reads, and neither the machine nor another host sees it.
    let mark = format!("nslab-live-{}", std::process::id());
    let (run_mark, tmp_mark) = (format!("/run/{mark}"), format!("/tmp/{mark}"));
    env.ok(&["exec", &lab, "client", "--", "sh", "-c", &format!("echo from-exec > {run_mark} && echo from-exec > {tmp_mark}")])?;
    let again = env.ok(&["exec", &lab, "client", "--", "cat", &run_mark, &tmp_mark])?;
    ensure!(again == "from-exec\nfrom-exec\n", "a second exec in client read {again:?}");
    ensure!(!Path::new(&run_mark).exists() && !Path::new(&tmp_mark).exists(), "{run_mark} or {tmp_mark} written by exec appeared on the machine");
    let other = env.run(&["exec", &lab, "green", "--", "cat", &run_mark])?;
    ensure!(other.status.code() == Some(1), "host green should not see client's {run_mark}: {:?} {}", other.status, text(&other.stdout));

    // `ip netns exec` reaches the same network namespace.
    let ip =
        Command::new("ip").args(["netns", "exec", &format!("nslab-{lab}.client"), "ip", "-o", "addr", "show", "eth0"]).output().map_err(|e| e.to_string())?;
    let client_v4 =
        st["hosts"].as_array().and_then(|hs| hs.iter().find(|h| h["name"] == "client")).and_then(|h| h["addrs"][0].as_str()).unwrap_or("?").to_string();
    ensure!(text(&ip.stdout).contains(&format!("{client_v4}/24")), "ip netns exec shows: {}", text(&ip.stdout));

    // shell: commands on standard input, in the host.
    let mut sh = env.cmd(&["shell", &lab, "green"])?;
    sh.env("SHELL", "/bin/sh").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = sh.spawn().map_err(|e| e.to_string())?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().ok_or("stdin")?;
        stdin.write_all(b"echo shell-in-$(hostname)\nexit 3\n").map_err(|e| e.to_string())?;
    }
    let out = nslab_tests::output_bounded(child, "nslab shell", nslab_tests::COMMAND_BOUND)?;
    ensure!(text(&out.stdout).contains("shell-in-green") && out.status.code() == Some(3), "shell: {:?} {}", out.status, text(&out.stdout));

    // dns: swap live, the next query sees it, the log shows who asked.
    env.ok(&["dns", &lab, "swap", "app", "green"])?;
    let dig = env.ok(&["exec", &lab, "client", "--", "dig", "+short", "app.example.test", "A"])?;
    ensure!(dig.starts_with("green.example.test."), "after the swap dig says {dig:?}");
    let log = env.ok(&["dns", &lab, "log", "--name", "app.example.test"])?;
    ensure!(
        log.lines().any(|l| l.contains(&client_v4) && l.contains("CNAME green.example.test.")),
        "query log lacks the client's query after the swap:\n{log}"
    );
    env.ok(&["dns", &lab, "fault", "servfail", "app"])?;
    let dig = env.ok(&["exec", &lab, "client", "--", "dig", "app.example.test", "A"])?;
    ensure!(dig.contains("status: SERVFAIL"), "with the fault on: {dig}");
    env.ok(&["dns", &lab, "clear"])?;
    let bad = env.run(&["dns", &lab, "set", "app", "A", "10.0.0.1"])?;
    ensure!(!bad.status.success() && text(&bad.stderr).contains("10.0.0.1"), "a public address was accepted: {}", text(&bad.stderr));
    // Every kind of typed request reaches the server: a record with its TTL, a fault on a
    // zone and every name below it, one type of a name deleted.
    env.ok(&["dns", &lab, "set", "direct", "AAAA", "2001:db8::77", "--ttl", "7"])?;
    let dig = env.ok(&["exec", &lab, "client", "--", "dig", "+noall", "+answer", "direct.example.test", "AAAA"])?;
    ensure!(dig.split_whitespace().collect::<Vec<_>>() == ["direct.example.test.", "7", "IN", "AAAA", "2001:db8::77"], "after the set dig says {dig:?}");
    env.ok(&["dns", &lab, "fault", "refused", "*.example.test"])?;
    let dig = env.ok(&["exec", &lab, "client", "--", "dig", "blue.example.test", "A"])?;
    ensure!(dig.contains("status: REFUSED"), "with the fault on the zone: {dig}");
    env.ok(&["dns", &lab, "clear"])?;
    env.ok(&["dns", &lab, "delete", "direct", "aaaa"])?;
    let dig = env.ok(&["exec", &lab, "client", "--", "dig", "+short", "direct.example.test", "AAAA"])?;
    ensure!(dig.trim().is_empty(), "after the delete dig says {dig:?}");

    let status = env.ok(&["status"])?;
    ensure!(
        status.contains(&lab) && status.contains("service client on client: running") && status.contains(&format!("nslab-{lab}.client")),
        "status: {status}"
    );

    // A command still running in a host when the lab goes down dies with it.
    // It says when it runs in the host: the wait is for that line, not for a while.
    let mut sleeper = env
        .cmd(&["exec", &lab, "client", "--", "sh", "-c", "echo running; exec sleep 600"])?
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let out = sleeper.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(GUARD).unwrap_or_default();
    if line != "running\n" {
        let _ = sleeper.kill();
        return Err(format!("the exec'd command did not start (its first line: {line:?})"));
    }
    ensure!(sleeper.try_wait().map_err(|e| e.to_string())?.is_none(), "the sleeping exec ended early");
    let down = env.ok(&["down", &lab])?;
    ensure!(down.contains("is down; artifacts kept in"), "down said: {down}");
    let t = Instant::now();
    let st_exit = loop {
        if let Some(s) = sleeper.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if t.elapsed() > GUARD {
            let _ = sleeper.kill();
            return Err(format!("a command run with exec outlived the lab by {GUARD:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    ensure!(!st_exit.success(), "the exec'd sleep exited successfully: {st_exit}");
    ensure!(!alive(daemon) && anchors.iter().all(|p| !alive(*p)), "processes left after down");
    ensure!(named(&lab).is_empty() && mounts_mentioning(&lab).is_empty(), "namespaces left after down: {:?}", named(&lab));
    ensure!(!env.dir.path().join("state").join(&lab).exists(), "state directory left after down");
    let artifacts = st["artifacts"].as_str().ok_or("no artifacts in state")?;
    ensure!(Path::new(artifacts).join("daemon.log").exists(), "daemon.log not kept in {artifacts}");
    Ok(())
}

async fn killed_then_gc() -> Result<(), String> {
    let env = Env::new()?;
    let lab = format!("t{}b", std::process::id());
    let _down = Down { env: &env, lab: lab.clone(), as_nobody: false };
    env.ok(&["up", "--profile", "ipv6-only", "--hosts", "web,db", "--name", &lab])?;
    let st = env.state(&lab)?;
    let (daemon, anchors) = pids(&st);
    ensure!(named(&lab).len() == 3, "expected 3 named namespaces (web, db, dns), found {:?}", named(&lab));
    // A second lab of the same name is refused while the first runs.
    let again = env.run(&["up", "--profile", "ipv6-only", "--name", &lab])?;
    ensure!(!again.status.success() && text(&again.stderr).contains("is already up"), "second up: {}", text(&again.stderr));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon as i32), nix::sys::signal::Signal::SIGKILL).map_err(|e| e.to_string())?;
    ensure!(wait_gone(daemon, GUARD), "daemon survived SIGKILL");
    for p in &anchors {
        ensure!(wait_gone(*p, GUARD), "anchor {p} outlived its daemon");
    }
    let ex = env.run(&["exec", &lab, "web", "--", "true"])?;
    ensure!(
        !ex.status.success() && text(&ex.stderr).contains("is not running any more") && text(&ex.stderr).contains("nslab gc"),
        "exec on a dead lab: {}",
        text(&ex.stderr)
    );
    // What a killed daemon can not remove itself: its named namespaces (they keep the hosts'
    // network namespaces, and so their interfaces, alive). gc removes them.
    ensure!(named(&lab).len() == 3, "named namespaces after kill -9: {:?}", named(&lab));
    let gc = env.ok(&["gc"])?;
    ensure!(gc.contains(&format!("removed the remains of lab {lab}")), "gc said: {gc}");
    ensure!(named(&lab).is_empty() && mounts_mentioning(&lab).is_empty(), "left after gc: {:?}", named(&lab));
    ensure!(!env.dir.path().join("state").join(&lab).exists(), "state directory left after gc");
    let again = env.ok(&["gc"])?;
    ensure!(again.contains("nothing to remove"), "second gc: {again}");
    Ok(())
}

async fn failed_up() -> Result<(), String> {
    let env = Env::new()?;
    let lab = format!("t{}c", std::process::id());
    let scenario = env.dir.path().join("broken.toml");
    std::fs::write(
        &scenario,
        "description = \"a service that exits at once\"\nprofiles = [\"dual-stack\"]\n[hosts.h]\n[services.bad]\nhost = \"h\"\ncommand = [\"python3\", \"-c\", \"import sys; print('boom-evidence', file=sys.stderr); sys.exit(3)\"]\nready = { listening = \"tcp:8000\" }\n",
    )
    .map_err(|e| e.to_string())?;
    let out = env.run(&["up", scenario.to_str().ok_or("path")?, "--name", &lab])?;
    let err = text(&out.stderr);
    ensure!(!out.status.success(), "up of a failing scenario succeeded");
    ensure!(err.contains("before the lab was up") && err.contains("service bad") && err.contains("log kept in"), "up's error: {err}");
    ensure!(named(&lab).is_empty() && !env.dir.path().join("state").join(&lab).exists(), "a failed up left state or namespaces");
    // The evidence: the service's output, in the artifacts the log points at.
    let arts = env.dir.path().join("artifacts").join("up").join(&lab);
    let found = walk(&arts).into_iter().any(|p| std::fs::read_to_string(&p).is_ok_and(|t| t.contains("boom-evidence")));
    ensure!(found, "the failing service's output is not kept under {}", arts.display());
    Ok(())
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Uid and gid of `nobody`, the unprivileged user of these trials.
const NOBODY: u32 = 65534;

fn as_nobody(env: &Env, args: &[&str]) -> Result<Output, String> {
    let dir = env.dir.path();
    Command::new("setpriv")
        .args(["--reuid", &NOBODY.to_string(), "--regid", &NOBODY.to_string(), "--clear-groups", "--"])
        .arg(env.dir.path().join(NOBODY_INPUT).join("nslab"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("NSLAB_STATE_DIR", dir.join("state"))
        .env("NSLAB_ARTIFACTS_DIR", dir.join("artifacts"))
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("setpriv nslab {}: {e}", args.join(" ")))
        .and_then(|c| nslab_tests::output_bounded(c, &format!("setpriv nslab {}", args.join(" ")), nslab_tests::COMMAND_BOUND))
}

/// Where, in a trial's directory, `nobody` finds its copies of the checkout's files.
const NOBODY_INPUT: &str = "input";

/// Hands the trial's directory to `nobody`, with copies of what it needs from the checkout: the
/// nslab binary and the dual-bind scenario with its files, whose path is returned. nobody may not
/// be able to read the checkout itself (a clone in root's home, mode 0700 on Debian), so it gets
/// copies in a directory made for it. The copies are made, as root's files readable by all,
/// before the directory is handed over: root never writes into a directory nobody owns.
fn give_to_nobody(env: &Env) -> Result<PathBuf, String> {
    let p = env.dir.path();
    let input = p.join(NOBODY_INPUT);
    let files = input.join("examples/files");
    std::fs::create_dir_all(&files).map_err(|e| format!("{}: {e}", files.display()))?;
    for d in [&input, &input.join("examples"), &files] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let bin = nslab_tests::nslab_bin()?;
    // A hard link where the checkout is on the same file system (the binary is large), else a copy.
    std::fs::hard_link(&bin, input.join("nslab"))
        .or_else(|_| std::fs::copy(&bin, input.join("nslab")).map(drop))
        .map_err(|e| format!("copy {} for uid {NOBODY}: {e}", bin.display()))?;
    let examples = repo().join("scenarios/examples");
    for f in ["dual-bind.toml", "files/dual_bind.py"] {
        std::fs::copy(examples.join(f), input.join("examples").join(f)).map_err(|e| format!("copy {} for uid {NOBODY}: {e}", examples.join(f).display()))?;
    }
    nix::unistd::chown(p, Some(nix::unistd::Uid::from_raw(NOBODY)), Some(nix::unistd::Gid::from_raw(NOBODY))).map_err(|e| e.to_string())?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
    Ok(input.join("examples/dual-bind.toml"))
}

async fn rootless_user() -> Result<(), String> {
    let env = Env::new()?;
    let scen = give_to_nobody(&env)?;
    // A scenario, end to end, as nobody.
    let out = as_nobody(&env, &["run", scen.to_str().ok_or("path")?])?;
    ensure!(out.status.success() && text(&out.stdout).contains("passed, 0 failed"), "nslab run as uid {NOBODY}: {}\n{}", text(&out.stdout), text(&out.stderr));
    // A long-lived lab, as nobody: up, exec (joining the daemon's user namespace), down.
    let lab = format!("t{}r", std::process::id());
    let _down = Down { env: &env, lab: lab.clone(), as_nobody: true };
    let out = as_nobody(&env, &["up", "--profile", "dual-stack", "--hosts", "web,cli", "--name", &lab])?;
    ensure!(out.status.success(), "up as uid {NOBODY}: {}{}", text(&out.stdout), text(&out.stderr));
    let st = env.state(&lab)?;
    ensure!(st["rootless"] == true, "the lab does not say rootless: {st}");
    ensure!(named(&lab).is_empty(), "rootless made named namespaces in /run/netns");
    let ex = as_nobody(
        &env,
        &[
            "exec",
            &lab,
            "cli",
            "--",
            "sh",
            "-c",
            "hostname; cat /proc/self/uid_map; python3 -c 'import socket; s=socket.create_connection((\"web.lab.test\", 9), timeout=2)' 2>&1 | tail -1",
        ],
    )?;
    let t = text(&ex.stdout);
    let map: Vec<&str> = t.lines().nth(1).unwrap_or("").split_whitespace().collect();
    ensure!(t.starts_with("cli\n") && map == ["0", &NOBODY.to_string(), "1"], "exec as uid {NOBODY}: {t}{}", text(&ex.stderr));
    ensure!(t.contains("Connection refused"), "connect from cli to web port 9 should be refused inside the lab: {t}");
    let (daemon, anchors) = pids(&st);
    let down = as_nobody(&env, &["down", &lab])?;
    ensure!(down.status.success(), "down as uid {NOBODY}: {}", text(&down.stderr));
    ensure!(!alive(daemon) && anchors.iter().all(|p| !alive(*p)), "processes left after a rootless down");
    Ok(())
}

async fn rootless_blocked() -> Result<(), String> {
    // A user namespace (owned by root, so nothing of the host changes) in which no further
    // user namespace may be made, and nobody inside it running nslab.
    let env = Env::new()?;
    let scen = give_to_nobody(&env)?;
    // The gate, in a directory of root's: the shell opens it before it is mapped to root.
    let gate = tempfile::Builder::new().prefix("nslab-gate-").tempdir().map_err(|e| e.to_string())?;
    let fifo = gate.path().join("go");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(|e| e.to_string())?;
    // The shell was started before its user was mapped, so it has no capabilities in its
    // namespace; the second one, executed once root is mapped, has them all.
    let script = format!(
        "read _ < {fifo} && exec sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --reuid {NOBODY} --regid {NOBODY} --clear-groups -- \"$@\"' sh \"$@\"",
        fifo = fifo.display()
    );
    let child = Command::new("unshare")
        .args(["--user", "--", "sh", "-c", &script, "sh"])
        .arg(env.dir.path().join(NOBODY_INPUT).join("nslab"))
        .args(["run", scen.to_str().ok_or("path")?])
        .env("NSLAB_STATE_DIR", env.dir.path().join("state"))
        .env("NSLAB_ARTIFACTS_DIR", env.dir.path().join("artifacts"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = child.id();
    let own = std::fs::metadata("/proc/self/ns/user").map_err(|e| e.to_string())?;
    let t = Instant::now();
    use std::os::unix::fs::MetadataExt;
    while std::fs::metadata(format!("/proc/{pid}/ns/user")).map(|m| m.ino()).unwrap_or(own.ino()) == own.ino() {
        ensure!(t.elapsed() < GUARD, "unshare --user did not make its namespace");
        std::thread::sleep(Duration::from_millis(5));
    }
    let map = format!("0 0 1\n{NOBODY} {NOBODY} 1\n");
    std::fs::write(format!("/proc/{pid}/uid_map"), &map).map_err(|e| format!("uid_map: {e}"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), &map).map_err(|e| format!("gid_map: {e}"))?;
    // Never block on the gate: the shell may have died before opening it.
    let t = Instant::now();
    loop {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo) {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(b"go\n").map_err(|e| e.to_string())?;
                break;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && t.elapsed() < GUARD => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                let out = nslab_tests::output_bounded(child, "unshare --user sh", nslab_tests::COMMAND_BOUND)?;
                return Err(format!("the shell in the user namespace never read the gate ({e}): {}", text(&out.stderr)));
            }
        }
    }
    let out = nslab_tests::output_bounded(child, "nslab run as nobody without user namespaces", nslab_tests::COMMAND_BOUND)?;
    let err = text(&out.stderr);
    ensure!(!out.status.success(), "nslab ran with user namespaces forbidden: {}", text(&out.stdout));
    ensure!(
        err.contains("cannot enter a user namespace of its own")
            && err.contains("user.max_user_namespaces is 0")
            && err.contains("sysctl -w user.max_user_namespaces=15000"),
        "the error does not name the setting: {err}"
    );
    ensure!(std::fs::read_to_string("/proc/sys/user/max_user_namespaces").is_ok_and(|v| v.trim() != "0"), "the host's own setting changed");
    Ok(())
}

/// The demo's section for `profile`: from its `== profile ` header to the next header.
fn demo_section<'a>(out: &'a str, profile: &str) -> Result<Vec<&'a str>, String> {
    let header = format!("== {profile} ");
    let mut lines = out.lines().skip_while(|l| !l.starts_with(&header));
    let first = lines.next().ok_or_else(|| format!("no {profile} section in the demo's output:\n{out}"))?;
    Ok(std::iter::once(first).chain(lines.take_while(|l| !l.starts_with("== "))).collect())
}

/// The probe line of a section that starts with `state` (`connects` or `FAILS`) and names `what`.
fn demo_line<'a>(section: &[&'a str], what: &str) -> Result<&'a str, String> {
    section.iter().copied().find(|l| l.contains(what)).ok_or_else(|| format!("no line about {what:?} in:\n{}", section.join("\n")))
}

async fn demo_output() -> Result<(), String> {
    let env = Env::new()?;
    let profiles = ["ipv4-only", "no-ipv6", "ipv6-only", "ipv6-only-nat64"];
    let mut args = vec!["demo"];
    for p in &profiles {
        args.extend(["--profile", p]);
    }
    let out = env.ok(&args)?;
    let [v4, no6, v6, nat64] = profiles.map(|p| demo_section(&out, p));
    let (v4, no6, v6, nat64) = (v4?, no6?, v6?, nat64?);
    // no-ipv6: the program's IPv6 socket is refused by the seccomp filter (EAFNOSUPPORT, 97);
    // ipv4-only: the socket is made, and the connect fails for want of an address.
    let eaf = "socket(AF_INET6): Address family not supported by protocol (errno 97, EAFNOSUPPORT)";
    let l = demo_line(&no6, "(server on [::])")?;
    ensure!(l.trim_start().starts_with("FAILS") && l.contains(eaf), "no-ipv6: the IPv6 connect should fail at socket() with EAFNOSUPPORT: {l}");
    ensure!(no6.iter().filter(|l| l.contains(eaf)).count() == 4, "no-ipv6: every IPv6 probe should fail at socket() with EAFNOSUPPORT:\n{}", no6.join("\n"));
    let l = demo_line(&v4, "(server on [::])")?;
    ensure!(
        l.trim_start().starts_with("FAILS") && l.contains("connect: ") && !l.contains("errno 97"),
        "ipv4-only: the IPv6 socket is made and its connect fails: {l}"
    );
    ensure!(!v4.iter().any(|l| l.contains("errno 97")), "ipv4-only shows EAFNOSUPPORT, which only no-ipv6 has:\n{}", v4.join("\n"));
    for (name, sec) in [("ipv4-only", &v4), ("no-ipv6", &no6)] {
        let l = demo_line(sec, "(server on 0.0.0.0)")?;
        ensure!(l.trim_start().starts_with("connects"), "{name}: IPv4 should connect: {l}");
    }
    // ipv6-only-nat64: the IPv4-only server is reached through the NAT64 prefix and by a name
    // only DNS64 gives an AAAA, and sees tayga's pool address; ipv6-only has no such path.
    let l = demo_line(&nat64, "through the NAT64 prefix [2001:db8:6464::")?;
    ensure!(l.trim_start().starts_with("connects"), "ipv6-only-nat64: the NAT64 prefix should connect: {l}");
    let l = demo_line(&nat64, "legacy.example.test:8000")?;
    ensure!(
        l.trim_start().starts_with("connects") && l.contains("resolved to 2001:db8:6464::"),
        "ipv6-only-nat64: the DNS64 name should resolve into the NAT64 prefix and connect: {l}"
    );
    let l = demo_line(&nat64, "saw connections from")?;
    ensure!(l.contains("from: 198.51.100."), "ipv6-only-nat64: the IPv4-only server should see tayga's pool: {l}");
    let l = demo_line(&nat64, "IPv4-only server legacy at 192.0.2.")?;
    ensure!(l.contains("Network is unreachable (errno 101, ENETUNREACH)"), "ipv6-only-nat64: IPv4 itself stays unreachable: {l}");
    ensure!(!v6.iter().any(|l| l.contains("NAT64") || l.contains("legacy")), "ipv6-only shows a NAT64 path:\n{}", v6.join("\n"));
    let l = demo_line(&v6, "(server on 0.0.0.0)")?;
    ensure!(l.contains("Network is unreachable (errno 101, ENETUNREACH)"), "ipv6-only: IPv4 is unreachable: {l}");
    // One line per profile says what it models; a profile fits on a screen.
    for (name, sec) in [("ipv4-only", &v4), ("no-ipv6", &no6), ("ipv6-only", &v6), ("ipv6-only-nat64", &nat64)] {
        ensure!(sec.iter().filter(|l| l.trim_start().starts_with("models: ")).count() == 1, "{name}: one `models:` line expected:\n{}", sec.join("\n"));
        ensure!(sec.len() <= 24, "{name}: {} lines, more than a screen", sec.len());
    }
    Ok(())
}

/// nslab started in a chroot (a tmpfs root with the machine's /usr, /etc, /proc ... bound in, in a
/// mount and PID namespace of its own, so nothing of the machine changes) says so, in doctor and
/// instead of building a lab; the same command outside the chroot says nothing of the kind.
async fn in_chroot() -> Result<(), String> {
    let bin = nslab_tests::nslab_bin()?;
    let dir = tempfile::Builder::new().prefix("nslab-chroot-").tempdir().map_err(|e| e.to_string())?;
    let root = dir.path().display().to_string();
    let script = r#"set -e
root=$1; nslab=$2
mount -t tmpfs tmpfs "$root"
for d in usr etc proc dev sys tmp run; do mkdir "$root/$d"; mount --rbind "/$d" "$root/$d"; done
for l in bin lib lib64 sbin; do [ -e "/$l" ] && ln -s "usr/$l" "$root/$l"; done
mkdir -p "$root/nslab"; touch "$root/nslab/nslab"; mount --bind "$nslab" "$root/nslab/nslab"
echo "== outside"; "$nslab" doctor 2>&1 | head -n 1 || true
echo "== doctor"; chroot "$root" /nslab/nslab doctor 2>&1 | head -n 2 || true
echo "== demo"; chroot "$root" /nslab/nslab demo --profile dual-stack 2>&1 && echo "demo exit 0" || echo "demo exit $?"
"#;
    let out = Command::new("unshare")
        .args(["--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private", "sh", "-c", script, "sh", &root])
        .arg(&bin)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("unshare: {e}"))?;
    let out = nslab_tests::output_bounded(out, "nslab in a chroot", nslab_tests::COMMAND_BOUND)?;
    let t = text(&out.stdout);
    let said = "running inside a chroot, which nslab cannot work in";
    let part = |name: &str| t.split(&format!("== {name}\n")).nth(1).map(|r| r.split("\n== ").next().unwrap_or("").to_string()).unwrap_or_default();
    ensure!(!part("outside").contains(said), "outside the chroot nslab says it is in one: {t}{}", text(&out.stderr));
    ensure!(
        part("doctor").starts_with("MISS not in a chroot") && part("doctor").contains(said) && part("doctor").contains("use a container or a VM"),
        "doctor in a chroot: {t}{}",
        text(&out.stderr)
    );
    let demo = part("demo");
    ensure!(
        demo.contains(&format!("nslab: {said}")) && demo.contains("demo exit 1") && !demo.contains("=="),
        "demo in a chroot should refuse, saying why: {t}{}",
        text(&out.stderr)
    );
    Ok(())
}
