//! Running one trial: a scenario in one profile, from lab build to teardown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runner::checks;
use crate::runner::context::{self, Facts};
use crate::runner::observe::{self, FirstRequest, ServiceReport};
use crate::runner::report::{ExpectationResult, Outcome, StaleRow, TrialResult};
use crate::runner::requirements;
use crate::runner::stale::{self, Mark, MarkKind};
use crate::runner::target::Target;
use crate::scenario::{Action, Condition, DnsFault, ExpectStart, FaultScope, FileContent, LinkState, Run, Scenario, ServiceDef, Step, TargetKind, When};
use nslab::addr::profile::Profile;
use nslab::dns::{FaultTarget, RecordValue};
use nslab::error::chain;
use nslab::host::handle::Host;
use nslab::host::process::{Command, Process};
use nslab::lab::build::Lab;

/// How trials run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Keep the artifacts of passing trials too.
    pub keep: bool,
    /// Where artifact directories go (default: [`nslab::os::artifacts::default_root`]).
    pub artifacts_root: Option<PathBuf>,
    /// A missing requirement fails the trial instead of ignoring it.
    pub require_all: bool,
    /// Cancelling it stops the trial: its services are stopped, its lab torn down (artifacts
    /// kept) and it is reported [`Outcome::Interrupted`] with what was decided so far.
    pub cancel: tokio_util::sync::CancellationToken,
    /// Which attempt this is under a runner that retries (cargo-nextest): each attempt gets its
    /// own artifact directory and learns how the earlier ones ended (see [`crate::runner::attempt`]).
    pub attempt: Option<crate::runner::attempt::Attempt>,
}

/// The default grace period of `stop` steps and of the final stop.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How long a program may take to show a first sign of life (a line of output) on top of its
/// `ready_timeout`: its `ready_timeout` counts from that first line, so a start-up slowed by a
/// busy machine (an interpreter or a JVM loading) is not charged to it. A program that prints
/// nothing before it is ready gets its `ready_timeout` plus this.
pub const STARTUP_ALLOWANCE: Duration = Duration::from_secs(30);

/// The part of the setup allowance for building the lab (namespaces, links, DNS server); each
/// service started before the timeline adds its `ready_timeout` and [`STARTUP_ALLOWANCE`].
pub const LAB_BUILD_ALLOWANCE: Duration = Duration::from_secs(60);

/// How long a trial's setup (the lab built, its targets and the services that start on their
/// own ready) may take: not part of the scenario's `timeout`, which covers its own timeline.
pub fn setup_allowance(s: &Scenario) -> Duration {
    LAB_BUILD_ALLOWANCE + s.services.iter().filter(|d| d.autostart).map(|d| d.ready_timeout + STARTUP_ALLOWANCE).sum::<Duration>()
}

/// Runs `scenario` in `profile` and reports every expectation.
pub async fn run_trial(name: &str, scenario: &Scenario, profile: Profile, opts: &RunOptions) -> TrialResult {
    let started = Instant::now();
    if let Some(why) = requirements::unmet_for(scenario) {
        let outcome = if opts.require_all { Outcome::Failed } else { Outcome::Ignored };
        return TrialResult::early(name.into(), &scenario.path, profile.name(), outcome, why, started.elapsed());
    }
    let mut t = Trial::new(scenario, profile);
    t.artifacts_root = opts.artifacts_root.clone();
    t.attempt = opts.attempt.clone();
    let (mut reason, interrupted) = tokio::select! {
        r = t.run() => (r.err(), false),
        () = opts.cancel.cancelled() => {
            let during = if t.setup_done.is_some() { "while the scenario ran" } else { "while the lab and its services started" };
            (Some(format!("interrupted (the run was cancelled) {during}")), true)
        }
    };
    let ran_until = Instant::now();
    // How each service ended on its own, before the stop below ends the rest.
    let exits: BTreeMap<String, Option<nslab::host::process::Exit>> = t.procs.iter().map(|(n, p)| (n.clone(), p.exit())).collect();
    // Whatever happened, stop what still runs so the output is complete for reading, each
    // service with its own stop_grace (as scenarios/README.md says).
    for (n, p) in &t.procs {
        p.stop(scenario.service(n).and_then(|s| s.stop_grace).unwrap_or(STOP_GRACE)).await;
    }
    let (services, first_requests) = match t.lab.as_ref() {
        Some(lab) => (
            observe::services(scenario, profile, lab, &t.procs, &t.started, &exits, &t.sockets, &t.argv, &t.kernel_addrs).await,
            observe::first_requests(scenario, lab, &t.procs, &t.targets),
        ),
        None => Default::default(),
    };
    // Output checks read the complete output, so they run after the stop; expectations the
    // trial never reached are reported undecided with the reason; then file order.
    let mut all = std::mem::take(&mut t.checked);
    let late = checks::evaluate_late(scenario, profile, &t.procs, reason.as_deref());
    // Cut short, a program's output proves what it printed, not what it would have printed.
    all.extend(late.into_iter().map(|(i, r)| match r {
        r if interrupted && !r.passed && r.decided => (
            i,
            ExpectationResult {
                passed: false,
                decided: false,
                observed: format!("not decided: the run was interrupted before the output was complete; {}", r.observed),
                ..r
            },
        ),
        r => (i, r),
    }));
    all.extend(observe::diagnoses_from_output(scenario, profile, &services));
    if let Some(why) = &reason {
        all.extend(checks::undecided(scenario, profile, &all, why));
    }
    all.sort_by_key(|(i, _)| *i);
    t.results.extend(all.into_iter().map(|(_, r)| r));
    let failed = reason.is_some() || t.results.iter().any(|r| !r.passed);
    if failed && reason.is_none() {
        reason = Some(failed_summary(&t.results));
    }
    let staleness = t.lab.as_ref().map(|lab| staleness_rows(lab, &t.targets, &t.swaps)).unwrap_or_default();
    let mut artifacts = None;
    let mut timeline = None;
    if let Some(lab) = t.lab.take() {
        write_targets(&lab, &t.targets, &t.dns_steps);
        write_facts(&lab, scenario, profile, name, &t.results, &staleness, &services, &first_requests, &t.facts);
        // A retry's evidence is kept too, to compare with the attempt that failed.
        if failed || opts.keep || opts.attempt.as_ref().is_some_and(|a| a.number > 1) {
            lab.keep_artifacts();
        }
        // The picture outlives a passing trial's artifacts: it and results.json stay behind.
        let dir = lab.artifacts().to_path_buf();
        let picture = std::fs::read(dir.join("timeline.svg")).ok();
        let results_json = std::fs::read(dir.join("results.json")).ok();
        match lab.teardown().await {
            Ok(kept) => artifacts = kept,
            Err(e) => {
                reason.get_or_insert_with(|| format!("teardown: {e}"));
            }
        }
        if let Some(svg) = picture {
            let path = dir.join("timeline.svg");
            if artifacts.is_none() {
                let kept = nslab::os::fsafe::artifact_dir(&dir)
                    .and_then(|d| d.write_file("timeline.svg", &svg, 0o600).map(|_| d))
                    .and_then(|d| results_json.map_or(Ok(()), |r| d.write_file("results.json", &r, 0o600).map(|_| ())));
                if let Err(e) = kept {
                    tracing::warn!(error = %e, path = %path.display(), "cannot keep timeline.svg");
                }
            }
            timeline = Some(path).filter(|p| p.exists());
        }
    }
    let outcome = match (interrupted, failed) {
        (true, _) => Outcome::Interrupted,
        (false, true) => Outcome::Failed,
        (false, false) => Outcome::Passed,
    };
    let root = trial_root(scenario, opts.artifacts_root.as_deref());
    let previous_attempts = match (&opts.attempt, &root) {
        (Some(a), Some(root)) => a.previous(root, profile),
        _ => Vec::new(),
    };
    let result = TrialResult {
        name: name.into(),
        scenario: scenario.path.display().to_string(),
        profile: profile.name().into(),
        outcome,
        duration_ms: started.elapsed().as_millis() as u64,
        reason,
        expectations: t.results,
        listeners: t.listeners,
        staleness,
        timeline,
        artifacts,
        services,
        first_requests,
        setup_s: Some(t.setup_done.unwrap_or(ran_until).duration_since(started).as_secs_f64()),
        scenario_s: t.setup_done.map(|s| ran_until.duration_since(s).as_secs_f64()),
        attempt: opts.attempt.as_ref().map(|a| a.number),
        // nextest retries only an attempt that failed.
        flaky: outcome == Outcome::Passed && !previous_attempts.is_empty(),
        previous_attempts,
    };
    if let (Some(a), Some(root)) = (&opts.attempt, &root) {
        if let Err(e) = a.finish(root, profile, &result) {
            tracing::warn!(error = %e, trial = name, "cannot leave the attempt's record for a retry");
        }
    }
    result
}

struct Trial<'a> {
    scenario: &'a Scenario,
    profile: Profile,
    lab: Option<Lab>,
    procs: BTreeMap<String, Process>,
    targets: BTreeMap<String, Target>,
    /// DNS changes and stops of a target's service in the timeline: step name (or kind), the
    /// lab time it ended, and which of the two it was.
    dns_steps: Vec<(String, Duration, MarkKind)>,
    /// CNAME swaps: (zone, record), step label, lab time, old and new target (first labels of
    /// the CNAME targets).
    swaps: Vec<Swap>,
    /// Lab time at which each named step ended.
    steps: BTreeMap<String, Duration>,
    /// Service start checks, in start order.
    results: Vec<ExpectationResult>,
    /// Expectations checked while the lab ran, with their index in the file.
    checked: Vec<checks::Indexed>,
    /// The listener report: what each service listened on after the timeline (nothing for
    /// those that had exited).
    listeners: BTreeMap<String, Vec<String>>,
    /// The same, as the kernel reported the sockets.
    sockets: BTreeMap<String, Vec<nslab::host::listeners::Listener>>,
    /// Whether each started service became ready.
    started: BTreeMap<String, bool>,
    /// Each started service's rendered command line.
    argv: BTreeMap<String, Vec<String>>,
    /// For each service that failed to start: what the kernel said right then about the
    /// addresses involved (present, tentative).
    kernel_addrs: BTreeMap<String, Vec<(std::net::IpAddr, bool)>>,
    facts: Option<Facts>,
    /// Where the lab's artifact directory goes.
    artifacts_root: Option<PathBuf>,
    /// The attempt under a retrying runner, whose own directory the lab's goes in.
    attempt: Option<crate::runner::attempt::Attempt>,
    /// When the lab was built and its services started (the end of setup).
    setup_done: Option<Instant>,
    /// How long the setup took (lab build, targets, services started on their own).
    pub(crate) setup_took: Option<Duration>,
    /// Start-up time of services the timeline started, in milliseconds: from each one's start
    /// to its first line of output (or to its readiness, for one that printed nothing), not
    /// charged to the scenario's timeout.
    startup_ms: Arc<AtomicU64>,
    /// Whether a service is starting (its readiness wait, bounded by its own ready_timeout and
    /// the start-up allowance, has not ended): its start-up is charged when it ends.
    starting: Arc<AtomicBool>,
}

impl<'a> Trial<'a> {
    fn new(scenario: &'a Scenario, profile: Profile) -> Self {
        Trial {
            scenario,
            profile,
            lab: None,
            procs: BTreeMap::new(),
            targets: BTreeMap::new(),
            steps: BTreeMap::new(),
            dns_steps: Vec::new(),
            swaps: Vec::new(),
            results: Vec::new(),
            checked: Vec::new(),
            listeners: BTreeMap::new(),
            sockets: BTreeMap::new(),
            started: BTreeMap::new(),
            argv: BTreeMap::new(),
            kernel_addrs: BTreeMap::new(),
            facts: None,
            artifacts_root: None,
            attempt: None,
            setup_done: None,
            setup_took: None,
            startup_ms: Arc::new(AtomicU64::new(0)),
            starting: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Builds the lab within its setup allowance ([`setup_allowance`]), then plays the timeline
    /// and checks the expectations within the scenario's `timeout`, counted from the end of
    /// the setup and extended by the start-up time of services the timeline starts: a check
    /// still waiting then is undecided, the others keep their results.
    async fn run(&mut self) -> Result<(), String> {
        let timeout = self.scenario.timeout;
        let allowance = setup_allowance(self.scenario);
        let t0 = tokio::time::Instant::now();
        let root = trial_root(self.scenario, self.artifacts_root.as_deref());
        let root = match (&self.attempt, root) {
            (Some(a), Some(r)) => Some(a.dir(&r, self.profile, a.number)),
            (_, r) => r,
        };
        tokio::time::timeout_at(t0 + allowance, self.setup(root))
            .await
            .map_err(|_| format!("the lab and its services did not start within the setup allowance of {allowance:?} (not part of the scenario's timeout of {timeout:?}: {LAB_BUILD_ALLOWANCE:?} for the lab, and for each service that starts on its own its ready_timeout and {STARTUP_ALLOWANCE:?} of start-up)"))??;
        let base = tokio::time::Instant::now();
        self.setup_took = Some(base - t0);
        self.setup_done = Some(Instant::now());
        // The setup's own start-ups are in its allowance: only the timeline's count from here.
        self.startup_ms.store(0, Ordering::Relaxed);
        let startup = self.startup_ms.clone();
        let ran_out = |during: &str, startup: &AtomicU64| {
            let charged = Duration::from_millis(startup.load(Ordering::Relaxed));
            format!(
                "the scenario did not finish within its timeout of {timeout:?} ({during}; counted from the end of the setup, which took {:.1}s, plus {:.1}s of start-up of the services the timeline started)",
                (base - t0).as_secs_f64(),
                charged.as_secs_f64()
            )
        };
        let starting = self.starting.clone();
        within(self.timeline(), base + timeout, &startup, &starting).await.ok_or_else(|| ran_out("while the timeline played", &startup))??;
        let deadline = base + timeout + Duration::from_millis(startup.load(Ordering::Relaxed));
        self.sockets = tokio::time::timeout_at(deadline, self.listener_report()).await.unwrap_or_default();
        self.listeners = self.sockets.iter().map(|(n, ls)| (n.clone(), ls.iter().map(|l| l.to_string()).collect())).collect();
        let lab = self.lab.as_ref().expect("built above");
        self.checked = checks::evaluate(self.scenario, self.profile, lab, &self.procs, &self.targets, &self.steps, deadline).await;
        tracing::debug!(setup = ?(base - t0), scenario = ?base.elapsed(), startup_in_timeline = ?Duration::from_millis(startup.load(Ordering::Relaxed)), "trial timed");
        Ok(())
    }

    /// Builds the lab, starts the targets and the services that start on their own.
    async fn setup(&mut self, artifacts_root: Option<PathBuf>) -> Result<(), String> {
        let s = self.scenario;
        let scenario_dir = std::fs::canonicalize(s.dir()).unwrap_or_else(|_| s.dir().to_path_buf());
        // Programs are started with the scenario's files, wherever the folder is (even in /tmp).
        let mut b = Lab::builder().profile(self.profile).hosts(s.host_specs(self.profile)).share_with_hosts(scenario_dir.clone());
        if let Some(d) = &s.dns {
            b = b.dns(context::lab_dns(d)?);
        }
        if let Some(root) = artifacts_root {
            // Folders a passing trial empties (<root>/<folder>/<scenario>) go with it.
            b = b.artifacts_in(root).artifacts_base(self.artifacts_root.clone().unwrap_or_else(nslab::lab::spec::default_artifacts_root));
        }
        let lab = b.build().await.map_err(|e| format!("building the lab: {}", chain(&e)))?;
        self.facts = Some(Facts::of(&lab, self.profile, scenario_dir, s.dns.as_ref().map(|d| d.server_host())));
        for def in &s.targets {
            let target = match &def.kind {
                TargetKind::Builtin { host, .. } => {
                    let host = lab.host(host).map_err(|e| e.to_string())?.clone();
                    Target::start(def.clone(), &host, lab.epoch()).await?
                }
                TargetKind::Log { .. } => Target::from_log(def.clone()),
            };
            self.targets.insert(def.name.clone(), target);
        }
        self.lab = Some(lab);

        for svc in s.services.iter().filter(|svc| svc.autostart) {
            self.start(svc).await?;
        }
        Ok(())
    }

    /// Plays the timeline, step by step.
    async fn timeline(&mut self) -> Result<(), String> {
        let s = self.scenario;
        let t0 = self.lab().elapsed();
        let profile = self.profile;
        for (i, step) in s.timeline.iter().enumerate().filter(|(_, st)| st.applies_to(profile)) {
            match step.when {
                When::At(at) => sleep_until(self.lab(), t0 + at).await,
                When::AfterPrevious(d) => tokio::time::sleep(d).await,
            }
            self.step_and_record(i, step).await?;
        }
        Ok(())
    }

    /// Runs one timeline step and records when it ended (named steps, DNS changes, swaps).
    async fn step_and_record(&mut self, i: usize, step: &Step) -> Result<(), String> {
        let s = self.scenario;
        if !step.applies_to(self.profile) {
            return Ok(());
        }
        {
            self.step(step).await.map_err(|e| format!("timeline step {} ({}): {e}", i + 1, step.action.kind()))?;
            let at = self.lab().elapsed();
            if let Some(n) = &step.name {
                self.steps.insert(n.clone(), at);
            }
            let label = step.name.clone().unwrap_or_else(|| step.action.kind().to_string());
            if matches!(step.action, Action::SwapCname { .. } | Action::SetRecord { .. } | Action::DeleteRecord { .. } | Action::SetTtl { .. }) {
                self.dns_steps.push((label.clone(), at, MarkKind::DnsChange));
            }
            if let Action::Stop { service } = &step.action {
                if self.targets.values().any(|t| t.service() == Some(service.as_str())) {
                    self.dns_steps.push((label.clone(), at, MarkKind::TargetStop));
                }
            }
            if let Action::SwapCname { zone, record, to } = &step.action {
                let key = (first_label(zone), first_label(record));
                let old = self.swaps.iter().rev().find(|w| w.key == key).map(|w| w.new.clone()).or_else(|| cname_target(s, zone, record));
                if let Some(old) = old {
                    self.swaps.push(Swap { key, step: label, at, old, new: first_label(to) });
                }
            }
        }
        Ok(())
    }

    /// What each service listens on, read from the kernel (nothing for those that exited).
    async fn listener_report(&self) -> BTreeMap<String, Vec<nslab::host::listeners::Listener>> {
        let mut out = BTreeMap::new();
        for (name, p) in &self.procs {
            if p.exit().is_some() {
                out.insert(name.clone(), Vec::new());
                continue;
            }
            let Some(def) = self.scenario.service(name) else { continue };
            let Ok(host) = self.host(&def.host) else { continue };
            let Ok(all) = host.listeners().await else { continue };
            let mine = p.socket_inodes();
            out.insert(name.clone(), all.into_iter().filter(|l| mine.contains(&l.inode)).collect());
        }
        out
    }

    fn lab(&self) -> &Lab {
        self.lab.as_ref().expect("lab is built before it is used")
    }

    fn host(&self, name: &str) -> Result<Host, String> {
        self.lab().host(name).cloned().map_err(|e| e.to_string())
    }

    /// Starts a service and waits for its readiness, or for its failure when it must fail.
    async fn start(&mut self, svc: &ServiceDef) -> Result<(), String> {
        let host = self.host(&svc.host)?;
        let dir = self.lab().artifacts().join("services").join(&svc.name);
        nslab::os::fsafe::artifact_dir(&dir).map_err(|e| format!("service {}: {e}", svc.name))?;
        // Its program may switch users (postgres through runuser) and must still reach it:
        // the way there becomes searchable (0711), never listable; its files stay 0600.
        let top = self.artifacts_root.clone().unwrap_or_else(nslab::lab::spec::default_artifacts_root);
        let top = std::fs::canonicalize(&top).unwrap_or(top);
        nslab::os::fsafe::allow_traverse(&dir, &top).map_err(|e| format!("service {}: open the way to {}: {e}", svc.name, dir.display()))?;
        let facts = self.facts.as_ref().expect("facts are read after the build");
        let ctx = facts.for_service(dir.clone());
        for f in &svc.files {
            let path = dir.join(&f.path);
            if let Some(parent) = path.parent() {
                nslab::os::fsafe::artifact_dir(parent).map_err(|e| format!("service {}: {e}", svc.name))?;
            }
            // Owner-only, new, never through a link: a service's files are the caller's.
            let res = match &f.content {
                FileContent::Inline(t) => t
                    .render(&ctx)
                    .map_err(|e| e.to_string())
                    .and_then(|text| nslab::os::fsafe::write_artifact(&path, text.as_bytes(), 0o600).map_err(|e| nslab::error::chain(&e))),
                FileContent::Source(src) => std::fs::read(src)
                    .map_err(|e| format!("cannot read {}: {e}", src.display()))
                    .and_then(|bytes| nslab::os::fsafe::write_artifact(&path, &bytes, 0o600).map_err(|e| nslab::error::chain(&e))),
            };
            res.map_err(|e| format!("service {}: file {}: {e}", svc.name, f.path.display()))?;
        }
        let render = |t: &crate::scenario::Template| t.render(&ctx).map_err(|e| format!("service {}: {e}", svc.name));
        let argv: Vec<String> = match &svc.run {
            Run::Command(argv) => argv.iter().map(render).collect::<Result<Vec<_>, _>>()?,
            Run::Shell(script) => vec!["sh".into(), "-c".into(), render(script)?],
        };
        self.argv.insert(svc.name.clone(), argv.clone());
        let argv = if svc.trace {
            // Its socket calls, for the diagnosis of a failed bind or connect.
            let log = dir.join("strace.log").display().to_string();
            ["strace", "-f", "-qq", "-tt", "-e", "trace=socket,bind,connect,listen", "-o", log.as_str(), "--"]
                .iter()
                .map(|s| s.to_string())
                .chain(argv)
                .collect()
        } else {
            argv
        };
        let (prog, args) = argv.split_first().ok_or_else(|| format!("service {}: empty command", svc.name))?;
        let mut cmd = Command::new(prog).args(args);
        for (k, v) in &svc.env {
            cmd = cmd.env(k, render(v)?);
        }
        let cwd = match &svc.cwd {
            Some(t) => PathBuf::from(render(t)?),
            None => dir.clone(),
        };
        cmd = cmd.current_dir(cwd).name(svc.name.clone());
        let proc = host.spawn(cmd).await.map_err(|e| format!("service {}: {}", svc.name, chain(&e)))?;
        self.procs.insert(svc.name.clone(), proc.clone());
        for t in self.targets.values().filter(|t| t.service() == Some(svc.name.as_str())) {
            t.attach(&proc);
        }
        let expect_start = svc.expect_start_for(self.profile);
        let lab_clock = self.lab().epoch();
        self.starting.store(true, Ordering::Relaxed);
        let ready = match (expect_start, &svc.ready) {
            // Expected to fail, with nothing to wait for: it fails if it exits unsuccessfully
            // within its ready_timeout (counted from its first line, see STARTUP_ALLOWANCE).
            (ExpectStart::Failure, None) => match anchored(&lab_clock, &proc, svc.ready_timeout, proc.wait_exit(svc.ready_timeout + STARTUP_ALLOWANCE)).await {
                Ok(Ok(e)) if !e.success() => Err(format!("exited ({e})")),
                Ok(Ok(e)) => Ok(format!("ran to completion ({e})")),
                Ok(Err(_)) | Err(_) => Ok(format!("still running {}", waited(&lab_clock, &proc, svc.ready_timeout))),
            },
            _ => {
                match anchored(&lab_clock, &proc, svc.ready_timeout, wait_ready(&host, &proc, svc.ready.as_ref(), svc.ready_timeout + STARTUP_ALLOWANCE)).await
                {
                    Ok(r) => r,
                    Err(()) => Err(format!("timed out {}{}", waited(&lab_clock, &proc, svc.ready_timeout), tail(&proc))),
                }
            }
        };
        // Its start-up, up to its first line (or all of its wait, when it printed nothing), is
        // not the scenario's time.
        let first = proc.lines().first().map(|l| l.at);
        let now = lab_clock.elapsed();
        let startup = first.unwrap_or(now).min(now).saturating_sub(proc.started_at());
        self.startup_ms.fetch_add(startup.as_millis() as u64, Ordering::Relaxed);
        self.starting.store(false, Ordering::Relaxed);
        let desc = match expect_start {
            ExpectStart::Success => format!("service {} starts", svc.name),
            ExpectStart::Failure => format!("service {} fails to start", svc.name),
        };
        let ready = match ready {
            // A traced service that failed: say why, from its calls.
            Err(e) if svc.trace => match checks::findings(self.lab(), &svc.host, &proc).await {
                Ok(f) if !f.is_empty() => Err(format!(
                    "{e}\n  diagnosis: {}",
                    f.iter().map(|f| format!("{}: {}", f.cause.name(), f.call)).collect::<Vec<_>>().join("\n  diagnosis: ")
                )),
                _ => Err(e),
            },
            r => r,
        };
        self.started.insert(svc.name.clone(), ready.is_ok());
        // The kernel's word on the addresses involved, read now that the program has acted:
        // when it failed, and when it started but its output shows a failed call (a partial
        // failure). An address held tentative (nslab::host::dad) since before the start is still
        // tentative here, so it was at the failed call.
        let argv = self.argv.get(&svc.name).cloned().unwrap_or_default();
        let output = proc.output();
        if ready.is_err() || observe::shows_failed_call(&host, &argv, &output) {
            let candidates = observe::failure_candidates(&host, &argv, &output);
            self.kernel_addrs.insert(svc.name.clone(), observe::kernel_addresses(&host, &candidates).await);
        }
        let (passed, observed) = match (expect_start, ready) {
            (ExpectStart::Success, Ok(what)) => (true, what),
            (ExpectStart::Success, Err(e)) => (false, e),
            (ExpectStart::Failure, Ok(what)) => (false, format!("it started: {what}")),
            (ExpectStart::Failure, Err(e)) => match proc.exit() {
                Some(exit) => (true, format!("exited ({exit}) before it was ready")),
                None => (false, format!("it neither became ready nor exited: {e}")),
            },
        };
        self.results.push(ExpectationResult { description: desc, passed, observed: observed.clone(), decided: true });
        if passed {
            Ok(())
        } else {
            Err(format!("service {} did not start as expected: {observed}", svc.name))
        }
    }

    async fn step(&mut self, step: &Step) -> Result<(), String> {
        let lab_err = |e: nslab::Error| chain(&e);
        let dns_err = |e: &dyn std::error::Error| e.to_string();
        match &step.action {
            Action::Start { service } => {
                let svc = self.scenario.service(service).ok_or_else(|| format!("no service {service}"))?;
                self.start(svc).await?;
            }
            Action::Stop { service } => {
                let grace = self.scenario.service(service).and_then(|s| s.stop_grace).unwrap_or(STOP_GRACE);
                self.proc(service)?.stop(grace).await;
            }
            Action::Kill { service } => {
                self.proc(service)?.kill().await;
            }
            Action::SwapCname { zone, record, to } => {
                self.dns()?.zone(zone).map_err(|e| dns_err(&e))?.swap_cname(record, to).await.map_err(|e| dns_err(&e))?;
            }
            Action::SetRecord { zone, record, data, ttl } => {
                let value = context::record_value(data)?;
                let kind = match &value {
                    RecordValue::Host(_) => None,
                    v => v.kind(),
                };
                let z = self.dns()?.zone(zone).map_err(|e| dns_err(&e))?;
                match kind {
                    Some(k) => {
                        z.replace_set(record, k, *ttl, vec![value]).await.map_err(|e| dns_err(&e))?;
                    }
                    // A host's records: replace its A and AAAA sets with the host's addresses.
                    None => {
                        let RecordValue::Host(h) = &value else { unreachable!() };
                        let host = self.host(h)?;
                        let v4: Vec<RecordValue> = host.ipv4().map(RecordValue::A).into_iter().collect();
                        let v6: Vec<RecordValue> = host.ipv6().map(RecordValue::Aaaa).into_iter().collect();
                        for (k, vals) in [(nslab::dns::RecordKind::A, v4), (nslab::dns::RecordKind::Aaaa, v6)] {
                            if vals.is_empty() {
                                let _ = z.delete_set(record, k).await;
                            } else {
                                z.replace_set(record, k, *ttl, vals).await.map_err(|e| dns_err(&e))?;
                            }
                        }
                    }
                }
            }
            Action::DeleteRecord { zone, record, rtype } => {
                let z = self.dns()?.zone(zone).map_err(|e| dns_err(&e))?;
                match rtype {
                    Some(t) => {
                        z.delete_set(record, dns_kind(*t)?).await.map_err(|e| dns_err(&e))?;
                    }
                    None => {
                        z.delete_name(record).await.map_err(|e| dns_err(&e))?;
                    }
                }
            }
            Action::SetTtl { zone, record, rtype, ttl } => {
                self.dns()?.zone(zone).map_err(|e| dns_err(&e))?.set_ttl(record, dns_kind(*rtype)?, *ttl).await.map_err(|e| dns_err(&e))?;
            }
            Action::DnsFault { fault, scope } => {
                let f = match fault {
                    DnsFault::ServFail => nslab::dns::Fault::ServFail,
                    DnsFault::NxDomain => nslab::dns::Fault::NxDomain,
                    DnsFault::Refused => nslab::dns::Fault::Refused,
                    DnsFault::Drop => nslab::dns::Fault::Drop,
                    DnsFault::Truncate => nslab::dns::Fault::Truncate,
                    DnsFault::TcpOnly => nslab::dns::Fault::TcpOnly,
                    DnsFault::Delay(d) => nslab::dns::Fault::Delay(*d),
                };
                let target = match scope {
                    FaultScope::Server => FaultTarget::Server,
                    FaultScope::Name(n) => FaultTarget::Name(n.clone()),
                    FaultScope::Suffix(n) => FaultTarget::Suffix(n.clone()),
                };
                self.dns()?.faults().set(&target, f).map_err(|e| dns_err(&e))?;
            }
            Action::ClearDnsFaults => self.dns()?.faults().clear_all(),
            Action::Link { host, state } => self.host(host)?.set_link(*state == LinkState::Up).await.map_err(lab_err)?,
            Action::AddAddress { host, address, dad, hold: false } => self.host(host)?.add_address(address.ip, address.prefix, *dad).await.map_err(lab_err)?,
            Action::AddAddress { host, address, hold: true, .. } => self.host(host)?.add_address_held(address.ip, address.prefix).await.map_err(lab_err)?,
            Action::CompleteDad { host, address } => {
                let took = self.host(host)?.complete_dad(address.ip, address.prefix).await.map_err(lab_err)?;
                tracing::debug!(host, address = %address, ?took, "held DAD completed");
            }
            Action::RemoveAddress { host, address } => self.host(host)?.remove_address(address.ip, address.prefix).await.map_err(lab_err)?,
            Action::ChangeAddress { host, from, to, dad } => {
                // The new address first, so the host is never without one of that family.
                let h = self.host(host)?;
                h.add_address(to.ip, to.prefix, *dad).await.map_err(lab_err)?;
                h.remove_address(from.ip, from.prefix).await.map_err(lab_err)?;
            }
            Action::Wait { duration } => tokio::time::sleep(*duration).await,
            Action::WaitDnsQuery { host, name, rtype, timeout } => {
                let h = self.host(host)?;
                let addrs: Vec<std::net::IpAddr> = h.addrs().into_iter().chain(h.link_local().map(std::net::IpAddr::V6)).collect();
                let log = self.dns()?.log();
                let since = self.lab().elapsed();
                let end = since + *timeout;
                let wanted = |e: &nslab::dns::QueryLogEntry| {
                    e.at >= since
                        && addrs.contains(&e.client.ip().to_canonical())
                        && name.as_ref().is_none_or(|n| e.name.trim_end_matches('.').eq_ignore_ascii_case(n))
                        && rtype.is_none_or(|t| e.qtype.eq_ignore_ascii_case(&t.to_string()))
                };
                loop {
                    if log.entries().iter().any(wanted) {
                        break;
                    }
                    if self.lab().elapsed() > end {
                        let what = [name.clone(), rtype.map(|t| t.to_string())].into_iter().flatten().collect::<Vec<_>>().join(" ");
                        return Err(format!("host {host} made no DNS query{}{what} within {timeout:?}", if what.is_empty() { "" } else { " for " }));
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            Action::WaitFor { service, condition, timeout } => {
                let proc = self.proc(service)?;
                let svc = self.scenario.service(service).ok_or_else(|| format!("no service {service}"))?;
                let host = self.host(&svc.host)?;
                wait_ready(&host, &proc, Some(condition), *timeout).await?;
            }
        }
        Ok(())
    }

    fn proc(&self, service: &str) -> Result<Process, String> {
        self.procs.get(service).cloned().ok_or_else(|| format!("service {service} has not been started"))
    }

    fn dns(&self) -> Result<&nslab::dns::DnsServer, String> {
        self.lab().dns().ok_or_else(|| "the scenario has no [dns]".to_string())
    }
}

/// A scenario's lab kept running for a person rather than checked: built with its DNS,
/// targets and services (those that start on their own), then driven step by step (a
/// timeline, or commands typed by hand). What `nslab up` holds.
pub struct Session {
    trial: Trial<'static>,
}

impl Session {
    /// Builds `scenario`'s lab in `profile` under `artifacts_root` and starts its targets and
    /// services. On failure the lab is torn down (its artifacts kept) and the error says why.
    pub async fn start(scenario: &'static Scenario, profile: Profile, artifacts_root: PathBuf) -> Result<Session, String> {
        let mut trial = Trial::new(scenario, profile);
        if let Err(e) = trial.setup(Some(artifacts_root)).await {
            if let Some(lab) = trial.lab.take() {
                for p in trial.procs.values() {
                    p.stop(STOP_GRACE).await;
                }
                lab.keep_artifacts();
                if let Ok(Some(dir)) = lab.teardown().await {
                    return Err(format!("{e}\n  evidence kept in {}", dir.display()));
                }
            }
            return Err(e);
        }
        Ok(Session { trial })
    }

    /// The running lab.
    pub fn lab(&self) -> &Lab {
        self.trial.lab()
    }

    /// The scenario it runs.
    pub fn scenario(&self) -> &'static Scenario {
        self.trial.scenario
    }

    /// Its services started so far, by name.
    pub fn services(&self) -> &BTreeMap<String, Process> {
        &self.trial.procs
    }

    /// Plays step `i` of the scenario's timeline (waiting for nothing first).
    pub async fn step(&mut self, i: usize) -> Result<(), String> {
        let step = self.trial.scenario.timeline.get(i).ok_or_else(|| format!("the scenario has no timeline step {}", i + 1))?;
        self.trial.step_and_record(i, step).await
    }

    /// Runs one action, as a timeline step would (a DNS change, a fault, a link going down).
    pub async fn act(&mut self, action: Action) -> Result<(), String> {
        let step = Step { name: None, when: When::AfterPrevious(Duration::ZERO), action, profiles: None };
        self.trial.step(&step).await
    }

    /// Stops every service, writes the targets' logs and timeline, and tears the lab down,
    /// keeping its artifacts. Returns where they are.
    pub async fn finish(mut self) -> Result<Option<PathBuf>, String> {
        for p in self.trial.procs.values() {
            p.stop(STOP_GRACE).await;
        }
        let Some(lab) = self.trial.lab.take() else { return Ok(None) };
        write_targets(&lab, &self.trial.targets, &self.trial.dns_steps);
        lab.keep_artifacts();
        lab.teardown().await.map_err(|e| format!("teardown: {e}"))
    }
}

/// The reason of a trial whose expectations failed: "2 of 5 expectations failed: a, b", and
/// those that could not be decided.
fn failed_summary(results: &[ExpectationResult]) -> String {
    let names = |pred: &dyn Fn(&ExpectationResult) -> bool| results.iter().filter(|r| pred(r)).map(|r| r.description.as_str()).collect::<Vec<_>>();
    let failed = names(&|r| r.decided && !r.passed);
    let undecided = names(&|r| !r.decided);
    let mut parts = Vec::new();
    if !failed.is_empty() {
        parts.push(format!("{} of {} expectations failed: {}", failed.len(), results.len(), failed.join("; ")));
    }
    if !undecided.is_empty() {
        parts.push(format!("{} of {} expectations could not be decided: {}", undecided.len(), results.len(), undecided.join("; ")));
    }
    parts.join("; ")
}

fn dns_kind(t: crate::scenario::RecordType) -> Result<nslab::dns::RecordKind, String> {
    use crate::scenario::RecordType as T;
    use nslab::dns::RecordKind as K;
    Ok(match t {
        T::Soa => K::Soa,
        T::Ns => K::Ns,
        T::A => K::A,
        T::Aaaa => K::Aaaa,
        T::Cname => K::Cname,
        T::Txt => K::Txt,
        T::Srv => K::Srv,
        T::Ptr => K::Ptr,
        T::Mx => return Err("MX records are not served by the lab DNS server yet".into()),
    })
}

/// Waits for a service's readiness condition; `Ok` says what was seen.
async fn wait_ready(host: &Host, proc: &Process, cond: Option<&Condition>, timeout: Duration) -> Result<String, String> {
    match cond {
        None => match proc.exit() {
            Some(e) => Err(format!("exited ({e}) right after start{}", tail(proc))),
            None => Ok("started (no readiness condition)".into()),
        },
        Some(Condition::Listening(spec)) => {
            host.wait_listening(&spec.to_listen(), timeout, Some(proc)).await.map(|l| format!("listening on {l}")).map_err(|e| e.to_string())
        }
        Some(Condition::Line(re)) => proc.wait_for_line(re.as_str(), timeout).await.map(|l| format!("printed {:?}", l.text)).map_err(|e| e.to_string()),
        Some(Condition::Exit) => proc.wait_exit(timeout).await.map(|e| format!("ran to completion ({e})")).map_err(|e| e.to_string()),
    }
}

/// Runs `wait` (a readiness wait bounded by `timeout` + [`STARTUP_ALLOWANCE`]) and gives up
/// (`Err`) once `timeout` has passed since the program's first line of output: its
/// `ready_timeout` counts from its first sign of life, not from the moment it was asked to start.
async fn anchored<T>(clock: &Instant, proc: &Process, timeout: Duration, wait: impl std::future::Future<Output = T>) -> Result<T, ()> {
    let watch = async {
        loop {
            if let Some(first) = proc.lines().first().map(|l| l.at) {
                let end = first + timeout;
                let now = clock.elapsed();
                if now >= end {
                    return;
                }
                tokio::time::sleep((end - now).min(Duration::from_millis(100))).await;
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    tokio::select! {
        r = wait => Ok(r),
        () = watch => Err(()),
    }
}

/// "after 12s from its first line (which came 3.1s after its start)" or "after 40s from its
/// start, with no line of output (12s ready_timeout + 30s start-up allowance)".
fn waited(clock: &Instant, proc: &Process, timeout: Duration) -> String {
    match proc.lines().first().map(|l| l.at) {
        Some(first) => format!(
            "after {:.1}s from its first line of output (its ready_timeout is {timeout:?} from there; the line came {:.1}s after its start)",
            clock.elapsed().saturating_sub(first).as_secs_f64(),
            first.saturating_sub(proc.started_at()).as_secs_f64()
        ),
        None => format!(
            "after {:.1}s from its start, with no line of output (its ready_timeout of {timeout:?} and {STARTUP_ALLOWANCE:?} of start-up allowance)",
            clock.elapsed().saturating_sub(proc.started_at()).as_secs_f64()
        ),
    }
}

/// Runs `fut` until it completes or `base` plus the start-up time charged so far (which grows
/// while it runs) has passed; `None` then. While a service is `starting` the deadline waits for
/// its start-up to be charged (that wait has its own bound: ready_timeout + start-up allowance).
async fn within<T>(fut: impl std::future::Future<Output = T>, base: tokio::time::Instant, charged: &AtomicU64, starting: &AtomicBool) -> Option<T> {
    tokio::pin!(fut);
    loop {
        let now = tokio::time::Instant::now();
        let mut deadline = base + Duration::from_millis(charged.load(Ordering::Relaxed));
        if starting.load(Ordering::Relaxed) && deadline <= now {
            deadline = now + Duration::from_millis(50);
        }
        tokio::select! {
            r = &mut fut => return Some(r),
            () = tokio::time::sleep_until(deadline) => {
                let over = tokio::time::Instant::now() >= base + Duration::from_millis(charged.load(Ordering::Relaxed));
                if over && !starting.load(Ordering::Relaxed) {
                    return None;
                }
            }
        }
    }
}

fn tail(p: &Process) -> String {
    let out = p.output();
    let lines: Vec<&str> = out.lines().collect();
    let start = lines.len().saturating_sub(10);
    if lines.is_empty() {
        String::new()
    } else {
        format!("; last output:\n  | {}", lines[start..].join("\n  | "))
    }
}

async fn sleep_until(lab: &Lab, at: Duration) {
    let now = lab.elapsed();
    if at > now {
        tokio::time::sleep(at - now).await;
    }
}

/// The artifact root of a trial: `<root>/<folder>/<scenario>` so kept runs are easy to find.
fn trial_root(s: &Scenario, root: Option<&Path>) -> Option<PathBuf> {
    let root = root.map(Path::to_path_buf).unwrap_or_else(nslab::lab::spec::default_artifacts_root);
    let stem = s.path.file_stem()?.to_string_lossy().into_owned();
    let folder = s.path.parent().and_then(Path::file_name).map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    Some(root.join(folder).join(stem))
}

fn first_label(name: &str) -> String {
    name.trim_end_matches('.').split('.').next().unwrap_or("").to_string()
}

/// One CNAME swap of the timeline.
struct Swap {
    key: (String, String),
    step: String,
    at: Duration,
    old: String,
    new: String,
}

/// The CNAME target of `record` in `zone` as the scenario declares it.
fn cname_target(s: &Scenario, zone: &str, record: &str) -> Option<String> {
    let z = s.dns.as_ref()?.zones.iter().find(|z| z.origin.trim_end_matches('.') == zone.trim_end_matches('.'))?;
    z.records.iter().find_map(|r| match &r.data {
        crate::scenario::RecordData::Cname(t) if first_label(&r.name) == first_label(record) => Some(first_label(t)),
        _ => None,
    })
}

/// For each CNAME swap whose old and new targets are targets of the trial: every client that
/// asked either of them, how long it stayed and why.
fn staleness_rows(lab: &Lab, targets: &BTreeMap<String, Target>, swaps: &[Swap]) -> Vec<StaleRow> {
    let mut rows = Vec::new();
    for Swap { step, at, old, new, .. } in swaps {
        let (Some(o), Some(n)) = (targets.get(old), targets.get(new)) else { continue };
        for h in lab.hosts() {
            let addrs: Vec<std::net::IpAddr> = h.addrs().into_iter().chain(h.link_local().map(std::net::IpAddr::V6)).collect();
            if o.requests_from(&addrs).is_empty() && n.requests_from(&addrs).is_empty() {
                continue;
            }
            let st = stale::analyse(&addrs, *at, o, n, lab.dns().map(|d| d.log()));
            rows.push(StaleRow {
                step: step.clone(),
                client: h.name().to_string(),
                old: old.clone(),
                new: new.clone(),
                last_old_s: st.last_old.map(|d| d.as_secs_f64()),
                first_new_s: st.first_new.map(|d| d.as_secs_f64()),
                ttl_s: st.ttl.map(|d| d.as_secs()),
                pinned_requests: st.pinned_requests,
                new_connections_to_old: st.new_connections_to_old,
                dns_queries_after: st.dns_queries_after,
                dns_queries_before_new: st.dns_queries_before_new,
                answers_after: st.answers_after.clone(),
                cause: st.cause.name().to_string(),
                summary: st.to_string(),
            });
        }
    }
    rows
}

/// Writes each target's request log and the timeline picture into the artifacts.
fn write_targets(lab: &Lab, targets: &BTreeMap<String, Target>, dns_steps: &[(String, Duration, MarkKind)]) {
    if targets.is_empty() {
        return;
    }
    let dir = lab.artifacts().join("targets");
    if nslab::os::fsafe::artifact_dir(&dir).is_err() {
        return;
    }
    for (name, t) in targets {
        let _ = t.write_log(&dir.join(format!("{name}.requests.jsonl")));
    }
    // The TTL shaded after a change: what the last answer before it carried.
    let log = lab.dns().map(|d| d.log().entries()).unwrap_or_default();
    let marks: Vec<Mark> = dns_steps
        .iter()
        .map(|(name, at, kind)| Mark {
            name: name.clone(),
            at: *at,
            ttl: log.iter().rev().find(|e| e.at <= *at && !e.answers.is_empty()).and_then(|e| e.answers.iter().filter_map(|a| stale::ttl_of(a)).min()),
            kind: *kind,
        })
        .collect();
    let list: Vec<Target> = targets.values().cloned().collect();
    let end = lab.elapsed();
    if let Err(e) = stale::write_svg(&lab.artifacts().join("timeline.svg"), &list, &marks, end) {
        tracing::warn!(error = %e, "cannot write timeline.svg");
    }
}

/// Writes the environment facts, the resolved scenario and the results into the artifacts.
#[allow(clippy::too_many_arguments)]
fn write_facts(
    lab: &Lab,
    s: &Scenario,
    profile: Profile,
    name: &str,
    results: &[ExpectationResult],
    staleness: &[StaleRow],
    reports: &[ServiceReport],
    first_requests: &[FirstRequest],
    facts: &Option<Facts>,
) {
    let uname = nix::sys::utsname::uname().ok();
    let env = serde_json::json!({
        "trial": name,
        "profile": profile.name(),
        "kernel": uname.as_ref().map(|u| u.release().to_string_lossy().into_owned()),
        "machine": uname.as_ref().map(|u| u.machine().to_string_lossy().into_owned()),
        "nslab": env!("CARGO_PKG_VERSION"),
        "programs": requirements::versions(&s.requires),
    });
    let dir = lab.artifacts();
    let _ = nslab::os::fsafe::write_artifact(&dir.join("environment.json"), serde_json::to_string_pretty(&env).unwrap_or_default().as_bytes(), 0o600);
    if let Err(e) = crate::runner::resolved::Resolved::of(lab, s, profile, facts.as_ref()).write(dir) {
        tracing::warn!(error = %e, "cannot write scenario.resolved.json");
    }
    let mut res = serde_json::json!({
        "expectations": results,
        "staleness": staleness,
        "services": reports,
        "first_requests": first_requests,
    });
    if lab.artifacts().join("timeline.svg").exists() {
        res["timeline"] = "timeline.svg".into();
    }
    let _ = nslab::os::fsafe::write_artifact(&dir.join("results.json"), serde_json::to_string_pretty(&res).unwrap_or_default().as_bytes(), 0o600);
}
