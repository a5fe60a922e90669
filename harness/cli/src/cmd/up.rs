//! `nslab up`: brings a lab up in the background (its daemon is this program, `nslab
//! __serve`) and waits until it is up or says why it is not, with the daemon's log.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nslab::Profile;
use nslab_cli::live::{self, ProcId};

use super::exit::fail;
use super::values::parse_profile;
use crate::paint::{Paint, Tone};

/// How long `nslab up` waits for the lab (a JVM service can take a while to be ready).
const UP_TIMEOUT: Duration = Duration::from_secs(300);

/// Examples after `nslab up --help`.
pub(crate) const UP_HELP: &str = "Examples:
  nslab up scenarios/examples/cname-swap.toml --name swap
  nslab exec swap client -- dig +short app.example.test
  nslab dns swap swap app green            point the CNAME app at green
  nslab dns swap log --follow              every query, as it comes
  sudo ip netns exec nslab-swap.client ss -tn   your own tools (as root)
  nslab down swap

  nslab up --profile ipv6-only --hosts web,db   plain hosts, a DNS server for lab.test";

/// The arguments of `nslab up`.
#[derive(clap::Args)]
pub(crate) struct UpArgs {
    /// A scenario file (its services start; its timeline plays only with --timeline).
    #[arg(required_unless_present = "profile")]
    scenario: Option<PathBuf>,
    /// The profile (default: the scenario's first; required without a scenario).
    #[arg(long, value_parser = parse_profile)]
    profile: Option<Profile>,
    /// The lab's name (default: the scenario file's name, or the profile's).
    #[arg(long)]
    name: Option<String>,
    /// Without a scenario: the hosts to make, comma-separated (a DNS host `dns` is added).
    #[arg(long, value_delimiter = ',', default_value = "server,client", conflicts_with = "scenario")]
    hosts: Vec<String>,
    /// Play the scenario's timeline once its services are up.
    #[arg(long, requires = "scenario")]
    timeline: bool,
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

/// Brings the lab up and prints it with the commands to step in; exit 2 for an invalid
/// scenario or a name already up, 1 when the lab did not come up (its log printed and kept).
pub(crate) fn up(root: &Path, a: UpArgs, paint: &Paint) -> ExitCode {
    let UpArgs { scenario, profile, name, hosts, timeline } = a;
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
    let pb = super::progress::spinner(format!("bringing lab {name} up ({profile})"));
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
            println!("{} in {:.1}s", paint.paint(Tone::GoodStrong, &format!("lab {name} is up")), started.elapsed().as_secs_f64());
            super::lab_view::print_lab(&st, None, paint);
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
