//! The `nslab` binary's long-lived lab commands: up, exec, shell, dns, status, down, gc, and
//! the daemon entry point. The work is in the library (`nslab_cli::live`); this is the terminal.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nslab::Profile;
use nslab_cli::live::control::{request, DnsRequest, Request};
use nslab_cli::live::{self, LabDir, LabState, ProcId};

use crate::Paint;

/// How long `nslab up` waits for the lab (a JVM service can take a while to be ready).
const UP_TIMEOUT: Duration = Duration::from_secs(300);

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("nslab: {msg}");
    ExitCode::FAILURE
}

/// A lab name from a file name: lower case, a-z0-9 and '-', starting with a letter.
fn name_from(stem: &str) -> String {
    let mut n: String = stem.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    if !n.starts_with(|c: char| c.is_ascii_lowercase()) {
        n.insert_str(0, "lab-");
    }
    n.truncate(24);
    n.trim_end_matches('-').to_string()
}

fn spinner(msg: String) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()));
    pb.set_message(msg);
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

pub(crate) fn up(
    root: &Path,
    scenario: Option<PathBuf>,
    profile: Option<Profile>,
    name: Option<String>,
    hosts: Vec<String>,
    timeline: bool,
    paint: &Paint,
) -> ExitCode {
    if !nslab::os::rootless::privileged() {
        if let Err(e) = nslab::os::rootless::probe() {
            return fail(e);
        }
    }
    // What to run: the user's scenario, or one written for plain hosts.
    let (path, profile, name, synthesized) = match scenario {
        Some(path) => {
            let s = match nslab_scenario::scenario::load(&path) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let p = match profile.or_else(|| s.profiles.first().copied()) {
                Some(p) => p,
                None => return fail(format!("{} lists no profile; give one with --profile", path.display())),
            };
            if !s.profiles.contains(&p) {
                eprintln!("nslab: note: {} does not list {p} among its profiles; bringing it up in {p} anyway", path.display());
            }
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "lab".into());
            (path, p, name.unwrap_or_else(|| name_from(&stem)), None)
        }
        None => {
            let Some(p) = profile else { return fail("give a scenario file or --profile") };
            let mut toml = format!(
                "description = \"Plain hosts brought up by `nslab up --profile {p}`, with the lab's DNS server (every host as NAME.lab.test).\"\nprofiles = [\"{p}\"]\n\n"
            );
            for h in &hosts {
                toml.push_str(&format!("[hosts.{h}]\n"));
            }
            toml.push_str("\n[dns]\n");
            (PathBuf::new(), p, name.unwrap_or_else(|| p.name().to_string()), Some(toml))
        }
    };
    // The name, claimed atomically: a second `nslab up` of it at once is told, and exits 2.
    let claim = match live::claim(root, &name) {
        Ok(c) => c,
        Err(e @ live::LiveError::AlreadyUp { .. }) => {
            eprintln!("nslab: {e}");
            return ExitCode::from(2);
        }
        Err(e) => return fail(e),
    };
    let lab = claim.lab.clone();
    if !claim.cleared.labs.is_empty() {
        eprintln!("nslab: removed what an earlier lab {name} left ({} namespace(s))", claim.cleared.netns.len());
    }
    let path = match synthesized {
        Some(text) => {
            let p = match claim.dir.write_file("lab.toml", text.as_bytes(), 0o600) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            if let Err(e) = nslab_scenario::scenario::load(&p) {
                let _ = std::fs::remove_file(&p);
                return fail(format!("the hosts given are not usable: {e}"));
            }
            p
        }
        None => path,
    };
    // The daemon: this same program, in its own session, its output in the lab's log.
    let log = match claim.dir.create_file("daemon.log", 0o600) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(format!("cannot find this program's path: {e}")),
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("__serve").arg("--name").arg(&name).arg("--state-root").arg(root).arg("--scenario").arg(&path).arg("--profile").arg(profile.name());
    if timeline {
        cmd.arg("--timeline");
    }
    cmd.stdin(std::process::Stdio::null()).stdout(log.try_clone().map(Into::into).unwrap_or(std::process::Stdio::null())).stderr(log);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot start the lab's daemon: {e}")),
    };
    if let Some(id) = ProcId::of(child.id()) {
        let _ = claim.dir.write_file("daemon.pid", &serde_json::to_vec(&id).unwrap_or_default(), 0o600);
    }
    let pb = spinner(format!("bringing lab {name} up ({profile})"));
    let started = Instant::now();
    let outcome = loop {
        if lab.state_file().exists() {
            break Ok(());
        }
        match child.try_wait() {
            Ok(Some(status)) => break Err(format!("the lab's daemon exited ({status}) before the lab was up")),
            Ok(None) => {}
            Err(e) => break Err(format!("cannot watch the lab's daemon: {e}")),
        }
        if started.elapsed() > UP_TIMEOUT {
            // Ours, by its id: it gets SIGTERM, which tears down what it built.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
            break Err(format!("the lab was not up after {UP_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    pb.finish_and_clear();
    if let Err(why) = outcome {
        let text = std::fs::read_to_string(lab.log()).unwrap_or_default();
        eprintln!("nslab: {why}; its log ({}):", lab.log().display());
        for l in text.lines() {
            eprintln!("  | {l}");
        }
        // The evidence outlives the state directory: into the checked artifacts root, a new
        // owner-only file (never a fixed name in a shared directory).
        let kept = keep_failed_log(&name, text.as_bytes());
        let mut c = live::Collected::default();
        live::remove_remains(&lab, &mut c);
        drop(claim);
        match kept {
            Ok(p) => eprintln!("nslab: log kept in {}", p.display()),
            Err(e) => eprintln!("nslab: the log could not be kept: {e}"),
        }
        return ExitCode::FAILURE;
    }
    match lab.state() {
        Ok(st) => {
            println!("{} in {:.1}s", paint.color("32;1", &format!("lab {name} is up")), started.elapsed().as_secs_f64());
            print_lab(&st, None, paint);
            let host = st.hosts.iter().find(|h| h.name != nslab::DNS_HOST).map(|h| h.name.as_str()).unwrap_or("HOST");
            println!();
            println!("  nslab shell {name} {host}");
            println!("  nslab exec {name} {host} -- COMMAND");
            if let Some(ns) = st.hosts.iter().find(|h| h.name == host).and_then(|h| h.netns.as_deref()) {
                println!("  ip netns exec {ns} COMMAND        (network only; /etc stays the machine's)");
            }
            if !st.dns.is_empty() {
                println!("  nslab dns {name} show | set | swap | delete | fault | log --follow");
            }
            println!("  nslab down {name}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Writes the log of a lab that failed to come up as `<artifacts>/up/NAME/daemon-SECS-PID.log`.
fn keep_failed_log(name: &str, text: &[u8]) -> Result<PathBuf, nslab::os::fsafe::FsError> {
    let dir = nslab::os::fsafe::artifact_dir(&nslab::lab::spec::default_artifacts_root().join("up").join(name))?;
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    dir.write_file(format!("daemon-{secs}-{}.log", std::process::id()), text, 0o600)
}

fn print_lab(st: &LabState, services: Option<&str>, paint: &Paint) {
    let age = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0).saturating_sub(st.started);
    println!(
        "{}: {}, up {}, daemon pid {}{}",
        paint.color("1", &st.name),
        st.profile,
        nslab_scenario::scenario::format_duration(Duration::from_secs(age)),
        st.daemon.pid,
        if st.rootless { ", rootless" } else { "" }
    );
    println!("  scenario  {}", st.scenario.display());
    let w = st.hosts.iter().map(|h| h.name.len()).max().unwrap_or(4).max(4);
    println!("  {:<w$}  {:<40}  netns (ip netns exec)", "host", "addresses");
    for h in &st.hosts {
        let mut addrs = h.addrs.join(" ");
        if let Some(ll) = &h.link_local {
            addrs = if addrs.is_empty() { ll.clone() } else { format!("{addrs} {ll}") };
        }
        println!("  {:<w$}  {:<40}  {}", h.name, addrs, h.netns.as_deref().unwrap_or(if st.rootless { "- (rootless: nslab exec)" } else { "-" }));
    }
    if !st.dns.is_empty() {
        println!("  dns       {} (udp and tcp); zones {}", st.dns.join(", "), st.zones.join(", "));
    }
    if let Some(s) = services {
        for l in s.lines() {
            println!("  {l}");
        }
    }
    println!("  artifacts {}", st.artifacts.display());
}

pub(crate) fn exec(root: &Path, lab: &str, host: &str, command: Vec<String>, shell: bool) -> ExitCode {
    // Another user's state root is never read: its state.json would choose what to join.
    if let Err(e) = live::check_root(root) {
        return fail(e);
    }
    let dir = LabDir::new(root, lab);
    let mut env = Vec::new();
    let argv = if shell {
        let sh = std::env::var("SHELL").ok().filter(|s| Path::new(s).exists()).unwrap_or_else(|| {
            if Path::new("/bin/bash").exists() {
                "/bin/bash".into()
            } else {
                "/bin/sh".into()
            }
        });
        // Debian's bashrc shows it in the prompt: (nslab:LAB)root@HOST:~#
        env.push(("debian_chroot".to_string(), format!("nslab:{lab}")));
        eprintln!("host {host} of lab {lab}: its network, /etc files, /run, /tmp and host name (exit or Ctrl-D leaves)");
        vec![sh]
    } else {
        command
    };
    match live::exec(&dir, host, &argv, &env) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => fail(e),
    }
}

pub(crate) fn dns(root: &Path, lab: &str, req: DnsRequest) -> ExitCode {
    // Another user's state root is never read: its state.json would choose what to join.
    if let Err(e) = live::check_root(root) {
        return fail(e);
    }
    let dir = LabDir::new(root, lab);
    let timeout = match &req {
        DnsRequest::Log { follow: true, .. } => None,
        _ => Some(Duration::from_secs(10)),
    };
    let res = request(&dir, &Request::Dns(req), timeout, |r| {
        if !r.text.is_empty() {
            println!("{}", r.text.trim_end());
        }
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

pub(crate) fn status(root: &Path, only: Option<&str>, json: bool, paint: &Paint) -> ExitCode {
    // Another user's state root is never read: its state.json would choose what to join.
    if let Err(e) = live::check_root(root) {
        return fail(e);
    }
    let labs: Vec<LabDir> = match only {
        Some(n) => vec![LabDir::new(root, n)],
        None => live::labs(root),
    };
    let mut states = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for lab in &labs {
        match lab.live_state() {
            Ok(st) => states.push((lab, st)),
            Err(e @ live::LiveError::Dead { .. }) => {
                eprintln!("nslab: {e}");
                code = ExitCode::FAILURE;
            }
            Err(e) if only.is_some() => return fail(e),
            // Still coming up, or left by a daemon that died while building: gc says.
            Err(_) if lab.alive() => eprintln!("nslab: lab {} is coming up", lab.name),
            Err(_) => eprintln!("nslab: lab {} left a state directory but never came up; `nslab gc` removes it", lab.name),
        }
    }
    if json {
        let all: Vec<&LabState> = states.iter().map(|(_, s)| s).collect();
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return code;
    }
    if states.is_empty() && only.is_none() {
        println!("no lab is up (state in {})", root.display());
    }
    for (i, (lab, st)) in states.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let mut services = String::new();
        let _ = request(lab, &Request::Status, Some(Duration::from_secs(3)), |r| services.push_str(&r.text));
        print_lab(st, Some(&services), paint);
    }
    code
}

pub(crate) fn down(root: &Path, names: Vec<String>, all: bool, force: bool) -> ExitCode {
    // Another user's state root is never read: its state.json would choose what to join.
    if let Err(e) = live::check_root(root) {
        return fail(e);
    }
    let labs: Vec<LabDir> = if all { live::labs(root) } else { names.iter().map(|n| LabDir::new(root, n)).collect() };
    let mut code = ExitCode::SUCCESS;
    for lab in labs {
        if !lab.dir.exists() {
            eprintln!("nslab: no lab named {} (`nslab status` lists them)", lab.name);
            code = ExitCode::FAILURE;
            continue;
        }
        let daemon = lab.daemon();
        if !lab.alive() {
            let mut c = live::Collected::default();
            if live::remove_if_dead(&lab, &mut c) {
                println!("lab {} was not running; removed what it left ({} namespace(s))", lab.name, c.netns.len());
            } else {
                eprintln!("nslab: lab {} is coming up (an `nslab up` holds its name); try again once it is up", lab.name);
                code = ExitCode::FAILURE;
            }
            continue;
        }
        let pb = spinner(format!("bringing lab {} down", lab.name));
        let mut said = String::new();
        let res = request(&lab, &Request::Down, Some(Duration::from_secs(120)), |r| said = r.text.clone());
        pb.finish_and_clear();
        match res {
            Ok(()) => println!("{said}"),
            Err(e) if force => {
                eprintln!("nslab: {e}; killing its daemon");
                if let Some(d) = daemon.filter(ProcId::alive) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid as i32), nix::sys::signal::Signal::SIGKILL);
                }
            }
            Err(e) => {
                eprintln!("nslab: {e} (--force kills its daemon)");
                code = ExitCode::FAILURE;
                continue;
            }
        }
        // Wait for the daemon to be gone, so nothing of the lab is left when this returns.
        let t = Instant::now();
        while daemon.is_some_and(|d| d.alive()) && t.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut c = live::Collected::default();
        live::remove_if_dead(&lab, &mut c);
    }
    code
}

pub(crate) fn gc(root: &Path) -> ExitCode {
    let c = match live::gc(root) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    for l in &c.labs {
        println!("removed the remains of lab {l}");
    }
    for n in &c.netns {
        println!("removed network namespace {n}");
    }
    let mut errors = c.errors;
    // Artifact directories of runs that died (their marker names a process that is gone).
    let art = nslab::lab::spec::default_artifacts_root();
    let (dead, art_errors) = match nslab::os::artifacts::collect_dead(&art) {
        Ok(r) => r,
        Err(e) => (Vec::new(), vec![nslab::error::chain(&e)]),
    };
    errors.extend(art_errors);
    let (mut files, mut bytes) = (0, 0);
    for d in &dead {
        println!("removed the artifacts of a run that died (pid {}): {} ({} files, {} bytes)", d.owner.pid, d.path.display(), d.files, d.bytes);
        files += d.files;
        bytes += d.bytes;
    }
    if !dead.is_empty() {
        println!("artifacts removed: {} directories, {files} files, {bytes} bytes ({:.1} MB) from {}", dead.len(), bytes as f64 / 1e6, art.display());
    }
    for e in &errors {
        eprintln!("nslab: {e}");
    }
    if c.labs.is_empty() && c.netns.is_empty() && dead.is_empty() && errors.is_empty() {
        println!("nothing to remove");
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub(crate) fn serve(name: String, root: PathBuf, scenario: PathBuf, profile: Profile, timeline: bool) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let lab = LabDir::new(&root, &name);
    let artifacts_root = nslab::lab::spec::default_artifacts_root().join("up").join(&name);
    let spec = live::daemon::UpSpec { lab, state_root: root, scenario, profile, timeline, artifacts_root };
    match rt.block_on(live::daemon::serve(spec)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("{e:#}")),
    }
}
