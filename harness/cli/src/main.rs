//! The `nslab` command: a thin layer over the library (arguments, output, exit codes).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nslab::Profile;
use nslab_scenario::runner::{self, Outcome, RunOptions, TrialResult};

/// Reproduce network-environment bugs in isolated Linux network namespaces.
///
/// A scenario file (TOML, see scenarios/README.md) describes an incident: hosts in an
/// address-family profile (ipv4-only, dual-stack, ipv6-only, link-local-only), a DNS server with
/// zones, the real programs to run, what happens over time (a CNAME swap, a link going down) and
/// what must be observed (an errno, a log line, which target a client reached, within how long).
/// Each scenario runs once per profile it lists.
///
/// Examples:
///   nslab validate scenarios/                 check every file (no privileges needed)
///   nslab list scenarios/                     the trials they make
///   sudo nslab run scenarios/stale-dns        run them; exit 0 only if every expectation held
///   sudo nslab run x.toml --profile ipv6-only --keep --json out.json --junit junit.xml
///   sudo nslab matrix scenarios/bind --format html -o matrix.html
///                                             the table to read before a migration
///   sudo nslab demo                           what connects and what fails, per profile
#[derive(Parser)]
#[command(name = "nslab", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run scenarios (files or folders) and report every expectation.
    Run {
        /// Scenario files or folders (folders are searched for *.toml, skipping invalid/).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Only these profiles (repeatable; default: each scenario's own list).
        #[arg(long = "profile", value_parser = parse_profile)]
        profiles: Vec<Profile>,
        /// Keep the artifacts of passing trials too (failing ones are always kept).
        #[arg(long)]
        keep: bool,
        /// Write a JUnit XML report here.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Write a JSON report here (schema in scenarios/README.md).
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// How many trials run at once, whatever they weigh. Default: as many as this machine
        /// carries, from its cores and memory and what each trial's programs use (a JVM,
        /// PostgreSQL), the same choice as `cargo test` makes for the scenarios; the run says
        /// what it chose.
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// Fail trials whose required programs are missing instead of ignoring them (also
        /// NSLAB_REQUIRE_ALL=1/true/yes/on, read as `cargo test` reads it).
        #[arg(long)]
        require_all: bool,
    },
    /// Run scenarios and print the compatibility matrix: scenarios (programs and versions) by
    /// profile, each cell the outcome in words, linked to its artifacts (kept).
    Matrix {
        /// Scenario files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Only these profiles (repeatable).
        #[arg(long = "profile", value_parser = parse_profile)]
        profiles: Vec<Profile>,
        /// md (Markdown), html (one self-contained file) or json.
        #[arg(long, default_value = "md", value_parser = ["md", "html", "json"])]
        format: String,
        /// Write it here instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// How many trials run at once, whatever they weigh. Default: as many as this machine
        /// carries, from its cores and memory and what each trial's programs use (a JVM,
        /// PostgreSQL), the same choice as `cargo test` makes for the scenarios; the run says
        /// what it chose.
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// Where the trials' artifacts go (every one is kept: the matrix links to them).
        /// Default: a fresh `matrix-<time>` folder under the artifact root.
        #[arg(long, value_name = "DIR")]
        artifacts: Option<PathBuf>,
        /// Fail trials whose required programs are missing instead of ignoring them.
        #[arg(long, env = "NSLAB_REQUIRE_ALL", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
        require_all: bool,
    },
    /// List the trials scenarios make, one name per line.
    List {
        /// Scenario files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Check scenario files without running them (no privileges needed).
    Validate {
        /// Scenario files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// What this machine can do: privileges, kernel features, the programs scenarios run.
    Doctor,
    /// Build a lab in each profile and show what connects and what fails.
    Demo {
        /// Only these profiles (default: all).
        #[arg(long = "profile", value_parser = parse_profile)]
        profiles: Vec<Profile>,
    },
    /// Bring a lab up and keep it running in the background: a scenario's hosts, DNS, targets
    /// and services, or plain hosts in a profile. Step in with `exec`/`shell`, change DNS with
    /// `dns`, end it with `down`.
    #[command(verbatim_doc_comment, after_help = UP_HELP)]
    Up {
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
    },
    /// Run a command inside a host of a running lab (its network, /etc files, /run, /tmp and host name).
    Exec {
        /// The lab.
        lab: String,
        /// The host.
        host: String,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// An interactive shell inside a host of a running lab.
    Shell {
        /// The lab.
        lab: String,
        /// The host.
        host: String,
    },
    /// Change or read the DNS server of a running lab, live: `nslab dns LAB set|swap|delete|
    /// ttl|fault|clear|show|log ...` (`nslab dns LAB --help` lists them).
    Dns {
        /// The lab.
        lab: String,
        /// What to do, and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "COMMAND")]
        args: Vec<String>,
    },
    /// Running labs: their hosts, addresses, namespaces, DNS and services.
    Status {
        /// Only this lab.
        lab: Option<String>,
        /// As JSON (the labs' state files).
        #[arg(long)]
        json: bool,
    },
    /// Tear labs down (their artifacts are kept; the path is printed).
    Down {
        /// The labs.
        #[arg(required_unless_present = "all")]
        labs: Vec<String>,
        /// Every running lab.
        #[arg(long)]
        all: bool,
        /// Kill a daemon that does not answer (SIGKILL), then remove what it left.
        #[arg(long)]
        force: bool,
    },
    /// Remove what labs whose daemon died (kill -9, a crash) left behind: named network
    /// namespaces and state directories, and the artifact directories of runs that died.
    /// Goes by what nslab recorded, never by names: running labs, labs of another state
    /// directory and other users' files are not touched.
    Gc,
    /// The daemon of `nslab up` (started by it; not for direct use).
    #[command(name = "__serve", hide = true)]
    Serve {
        #[arg(long)]
        name: String,
        #[arg(long)]
        state_root: PathBuf,
        #[arg(long)]
        scenario: PathBuf,
        #[arg(long, value_parser = parse_profile)]
        profile: Profile,
        #[arg(long)]
        timeline: bool,
    },
}

const UP_HELP: &str = "Examples:
  nslab up scenarios/examples/cname-swap.toml --name swap
  nslab exec swap client -- dig +short app.example.test
  nslab dns swap swap app green            point the CNAME app at green
  nslab dns swap log --follow              every query, as it comes
  sudo ip netns exec nslab-swap.client ss -tn   your own tools (as root)
  nslab down swap

  nslab up --profile ipv6-only --hosts web,db   plain hosts, a DNS server for lab.test";

/// The DNS commands, parsed after the lab's name (so a lab may be called `swap` or `log`).
#[derive(Parser)]
struct DnsArgs {
    #[command(subcommand)]
    cmd: nslab_cli::live::control::DnsRequest,
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    s.parse::<Profile>().map_err(|e| e.to_string())
}

mod live_cli;

/// Colours, only on a terminal and never with NO_COLOR set (https://no-color.org).
pub(crate) struct Paint {
    on: bool,
}

impl Paint {
    fn new() -> Paint {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Paint { on: !no_color && console::colors_enabled() }
    }

    fn color(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

fn main() -> ExitCode {
    // Read before rootless mode, where every user looks like root.
    let state_root = nslab_cli::live::state_root();
    let cli = Cli::parse();
    if let Cmd::Serve { .. } = cli.cmd {
        // The daemon leaves the terminal's session: closing the terminal must not end the lab.
        let _ = nix::unistd::setsid();
    }
    // Commands that build or join labs cannot work in a chroot: say so instead of leaking out of it.
    if matches!(cli.cmd, Cmd::Run { .. } | Cmd::Matrix { .. } | Cmd::Demo { .. } | Cmd::Serve { .. } | Cmd::Up { .. } | Cmd::Exec { .. } | Cmd::Shell { .. })
        && nslab::os::chroot::inside()
    {
        eprintln!("nslab: {}", nslab::os::chroot::MESSAGE);
        return ExitCode::FAILURE;
    }
    // Commands that build labs get their privileges first, while the process has one thread.
    if matches!(cli.cmd, Cmd::Run { .. } | Cmd::Matrix { .. } | Cmd::Demo { .. } | Cmd::Serve { .. }) {
        if let Err(e) = nslab::os::rootless::enter() {
            eprintln!("nslab: {e}");
            return ExitCode::FAILURE;
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("NSLAB_LOG").unwrap_or_else(|_| "warn,hickory_server=error".into()))
        .with_writer(std::io::stderr)
        .init();
    let paint = Paint::new();
    match cli.cmd {
        Cmd::Up { scenario, profile, name, hosts, timeline } => live_cli::up(&state_root, scenario, profile, name, hosts, timeline, &paint),
        Cmd::Exec { lab, host, command } => live_cli::exec(&state_root, &lab, &host, command, false),
        Cmd::Shell { lab, host } => live_cli::exec(&state_root, &lab, &host, Vec::new(), true),
        Cmd::Dns { lab, args } => match DnsArgs::try_parse_from(std::iter::once(format!("nslab dns {lab}")).chain(args)) {
            Ok(d) => live_cli::dns(&state_root, &lab, d.cmd),
            Err(e) => e.exit(),
        },
        Cmd::Status { lab, json } => live_cli::status(&state_root, lab.as_deref(), json, &paint),
        Cmd::Down { labs, all, force } => live_cli::down(&state_root, labs, all, force),
        Cmd::Gc => live_cli::gc(&state_root),
        Cmd::Serve { name, state_root, scenario, profile, timeline } => live_cli::serve(name, state_root, scenario, profile, timeline),
        Cmd::Validate { paths } => {
            let (trials, errors) = runner::collect(&paths, &[]);
            for e in &errors {
                eprintln!("{e}");
            }
            println!("{} scenario trial(s) valid, {} file(s) with errors", trials.len(), errors.len());
            if errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Cmd::List { paths } => {
            let (trials, errors) = runner::collect(&paths, &[]);
            for t in &trials {
                println!("{}", t.name);
            }
            for e in &errors {
                eprintln!("{e}");
            }
            if errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Cmd::Run { paths, profiles, keep, junit, json, jobs, require_all } => {
            let (trials, errors) = runner::collect(&paths, &profiles);
            for e in &errors {
                eprintln!("{e}");
            }
            if !errors.is_empty() {
                eprintln!("nslab: {} scenario file(s) are invalid; nothing was run", errors.len());
                return ExitCode::from(2);
            }
            if trials.is_empty() && !profiles.is_empty() {
                // A typo'd or absent profile must not read as success: say what is there.
                let (all, _) = runner::collect(&paths, &[]);
                let have: std::collections::BTreeSet<&str> = all.iter().map(|t| t.profile.name()).collect();
                let asked: Vec<&str> = profiles.iter().map(|p| p.name()).collect();
                let have = if have.is_empty() { "none (no scenario found)".to_string() } else { have.into_iter().collect::<Vec<_>>().join(", ") };
                eprintln!("nslab: no scenario at the given paths runs in profile {}; their profiles: {have}", asked.join(", "));
                return ExitCode::from(2);
            }
            let require_all = require_all || runner::requirements::require_all_from_env();
            let opts = RunOptions { keep, artifacts_root: None, require_all, ..RunOptions::default() };
            let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("nslab: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let admission = match jobs {
                Some(j) => runner::Admission::fixed(j),
                None => runner::Admission::for_machine(&trials),
            };
            eprintln!("running {} trial(s), {}", trials.len(), admission.summary);
            let started = std::time::Instant::now();
            let pb = progress(trials.len());
            if let Err(e) = cancel_on_signals(&rt, &opts.cancel, &pb) {
                eprintln!("nslab: cannot watch for SIGINT/SIGTERM: {e}");
                return ExitCode::FAILURE;
            }
            let (results, not_started) = rt.block_on(runner::run_admitted_until(&trials, &opts, &admission, |r| {
                pb.suspend(|| print_result(&paint, r));
                pb.inc(1);
                pb.set_message(r.name.clone());
            }));
            pb.finish_and_clear();
            let run = runner::RunInfo { interrupted: opts.cancel.is_cancelled(), not_started, run_id: None };
            let mut code = summary(&paint, &results, &run, started.elapsed());
            if let Some(p) = json {
                if let Err(e) = runner::write_json_run(&p, &results, &run) {
                    eprintln!("nslab: cannot write {}: {e}", p.display());
                    code = ExitCode::FAILURE;
                }
            }
            if let Some(p) = junit {
                if let Err(e) = runner::write_junit(&p, &results) {
                    eprintln!("nslab: cannot write {}: {e}", p.display());
                    code = ExitCode::FAILURE;
                }
            }
            code
        }
        Cmd::Matrix { paths, profiles, format, output, jobs, artifacts, require_all } => {
            let (trials, errors) = runner::collect(&paths, &profiles);
            for e in &errors {
                eprintln!("{e}");
            }
            if !errors.is_empty() {
                return ExitCode::from(2);
            }
            let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("nslab: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let root = artifacts.unwrap_or_else(|| {
                let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
                nslab::lab::spec::default_artifacts_root().join(format!("matrix-{secs}"))
            });
            let opts = RunOptions { keep: true, artifacts_root: Some(root.clone()), require_all, ..RunOptions::default() };
            let admission = match jobs {
                Some(j) => runner::Admission::fixed(j),
                None => runner::Admission::for_machine(&trials),
            };
            eprintln!("running {} trial(s), {}", trials.len(), admission.summary);
            let pb = progress(trials.len());
            if let Err(e) = cancel_on_signals(&rt, &opts.cancel, &pb) {
                eprintln!("nslab: cannot watch for SIGINT/SIGTERM: {e}");
                return ExitCode::FAILURE;
            }
            let (results, not_started) = rt.block_on(runner::run_admitted_until(&trials, &opts, &admission, |r| {
                pb.suspend(|| eprintln!("{:?} {}", r.outcome, r.name));
                pb.inc(1);
            }));
            pb.finish_and_clear();
            let interrupted = opts.cancel.is_cancelled();
            let fmt = match format.as_str() {
                "html" => runner::matrix::Format::Html,
                "json" => runner::matrix::Format::Json,
                _ => runner::matrix::Format::Markdown,
            };
            let text = runner::matrix::render(&runner::matrix::build(&trials, &results), fmt);
            let failed = results.iter().filter(|r| r.outcome == Outcome::Failed).count();
            if results.iter().any(|r| r.artifacts.is_some()) {
                eprintln!("artifacts kept under {}", root.display());
            }
            match output {
                Some(p) => {
                    if let Err(e) = std::fs::write(&p, text) {
                        eprintln!("nslab: cannot write {}: {e}", p.display());
                        return ExitCode::FAILURE;
                    }
                    eprintln!("matrix written to {}", p.display());
                }
                None => print!("{text}"),
            }
            if interrupted {
                let stopped = results.iter().filter(|r| r.outcome == Outcome::Interrupted).count();
                eprintln!(
                    "nslab: interrupted: {} trial(s) done, {stopped} stopped before they ended (not decided), {} not started; the matrix shows what ran",
                    results.len() - stopped,
                    not_started.len()
                );
                ExitCode::from(EXIT_INTERRUPTED)
            } else if failed > 0 {
                eprintln!("nslab: {failed} trial(s) failed: their tests did not hold (the matrix says which)");
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Cmd::Doctor => {
            let checks = nslab_cli::doctor::run();
            for c in &checks {
                let mark = if c.ok { paint.color("32", "ok  ") } else { paint.color("33", "MISS") };
                println!("{mark} {:<30} {}", c.what, c.found);
                if !c.ok {
                    println!("     {:<30} -> {}", "", c.fix);
                }
            }
            if checks.first().is_some_and(|c| c.ok) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Cmd::Demo { profiles } => {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("nslab: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let profiles = if profiles.is_empty() { Profile::ALL.to_vec() } else { profiles };
            let res: anyhow::Result<()> = rt.block_on(async {
                // Every profile's lab at once, printed in order as each is ready.
                use futures::StreamExt;
                let t = std::time::Instant::now();
                let n = profiles.len();
                let mut runs: futures::stream::FuturesOrdered<_> = profiles.into_iter().map(nslab_cli::demo::run_profile).collect();
                while let Some(r) = runs.next().await {
                    print!("{}", nslab_cli::demo::render(&r?));
                }
                println!("{n} profile(s) in {:.2} s", t.elapsed().as_secs_f64());
                Ok(())
            });
            match res {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("nslab: error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn print_result(paint: &Paint, r: &TrialResult) {
    let tag = match r.outcome {
        Outcome::Passed => paint.color("32", "PASS   "),
        Outcome::Failed => paint.color("31;1", "FAIL   "),
        Outcome::Ignored => paint.color("33", "IGNORED"),
        Outcome::Interrupted => paint.color("35", "INTERRUPTED"),
    };
    println!("{tag} {} ({:.1}s)", r.name, r.duration_ms as f64 / 1000.0);
    for e in &r.expectations {
        let mark = match (e.passed, e.decided) {
            (true, _) => paint.color("32", "  ok  "),
            (false, true) => paint.color("31", "  FAIL"),
            (false, false) => paint.color("33", "  ??  "),
        };
        println!("{mark} {}: {}", e.description, e.observed.lines().next().unwrap_or(""));
    }
    for st in &r.staleness {
        let secs = |v: Option<f64>| v.map(|s| format!("+{s:.2}s")).unwrap_or_else(|| "none".into());
        println!(
            "        after {}: client {}: last request to {} {}, first to {} {}; TTL given {}; {} pinned request(s), {} new connection(s) to {}, {} DNS quer{} meanwhile; cause {}",
            st.step,
            st.client,
            st.old,
            secs(st.last_old_s),
            st.new,
            secs(st.first_new_s),
            st.ttl_s.map(|t| format!("{t}s")).unwrap_or_else(|| "?".into()),
            st.pinned_requests,
            st.new_connections_to_old,
            st.old,
            st.dns_queries_after,
            if st.dns_queries_after == 1 { "y" } else { "ies" },
            st.cause
        );
    }
    for (svc, ls) in &r.listeners {
        println!("        {svc} listens on: {}", if ls.is_empty() { "nothing".to_string() } else { ls.join(", ") });
    }
    if let (Outcome::Ignored | Outcome::Failed | Outcome::Interrupted, Some(why)) = (r.outcome, &r.reason) {
        println!("        {why}");
    }
    if let Some(a) = &r.artifacts {
        println!("        artifacts: {}", a.display());
    }
    if let Some(t) = &r.timeline {
        println!("        timeline: {}", t.display());
    }
}

/// A progress bar on standard error while trials run: drawn only on a terminal (elsewhere,
/// such as CI logs, only the results are printed).
fn progress(len: usize) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len as u64);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} trials done; last: {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

/// The exit code of a run stopped by SIGINT or SIGTERM (128 + SIGINT, as a shell reports Ctrl-C).
const EXIT_INTERRUPTED: u8 = 130;

/// Cancels `token` on the first SIGINT or SIGTERM (no new trial starts; the running ones are
/// stopped, torn down and reported), and exits at once with 130 on the second: the lab
/// processes die with nslab through their lifelines.
fn cancel_on_signals(rt: &tokio::runtime::Runtime, token: &tokio_util::sync::CancellationToken, pb: &indicatif::ProgressBar) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Installed now, before any trial starts, so no signal falls between.
    let _in_rt = rt.enter();
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let (token, pb) = (token.clone(), pb.clone());
    rt.spawn(async move {
        let first = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        token.cancel();
        pb.suspend(|| {
            eprintln!("nslab: {first}: interrupted: no new trial starts; the running ones are being stopped (their teardown runs, artifacts kept). Press Ctrl-C again to exit at once.")
        });
        let second = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        pb.suspend(|| eprintln!("nslab: second {second}: exiting at once; no summary or report is written (the labs' processes end with nslab)"));
        std::process::exit(EXIT_INTERRUPTED.into());
    });
    Ok(())
}

/// The closing summary: what failed, why, and where its evidence is; then the counts.
fn summary(paint: &Paint, results: &[TrialResult], run: &runner::RunInfo, took: std::time::Duration) -> ExitCode {
    let count = |o| results.iter().filter(|r| r.outcome == o).count();
    let (passed, failed, ignored, stopped) = (count(Outcome::Passed), count(Outcome::Failed), count(Outcome::Ignored), count(Outcome::Interrupted));
    println!();
    for r in results.iter().filter(|r| r.outcome == Outcome::Failed) {
        println!("{} {}", paint.color("31;1", "failed:"), r.name);
        for line in r.failure_text().lines() {
            println!("  {line}");
        }
    }
    for r in results.iter().filter(|r| r.outcome == Outcome::Interrupted) {
        println!("{} {}", paint.color("35;1", "interrupted:"), r.name);
        for line in r.failure_text().lines() {
            println!("  {line}");
        }
    }
    let ignored_why: std::collections::BTreeSet<&str> = results.iter().filter(|r| r.outcome == Outcome::Ignored).filter_map(|r| r.reason.as_deref()).collect();
    for why in ignored_why {
        println!("{} {why}", paint.color("33", "ignored:"));
    }
    if run.interrupted {
        let counts = format!(
            "interrupted: {passed} passed, {failed} failed, {ignored} ignored, {stopped} stopped before they ended (not decided), {} not started in {:.1}s",
            run.not_started.len(),
            took.as_secs_f64()
        );
        println!("{}", paint.color("35;1", &counts));
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    let counts = format!("{passed} passed, {failed} failed, {ignored} ignored in {:.1}s", took.as_secs_f64());
    println!("{}", if failed > 0 { paint.color("31;1", &counts) } else { paint.color("32;1", &counts) });
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
