//! One trial's lifecycle: requirements, lab build and services within the setup allowance,
//! the timeline and the checks within the scenario's timeout, the stop, the late checks, the
//! artifacts, the teardown and the result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::artifacts;
use super::state::{setup_allowance, Trial, LAB_BUILD_ALLOWANCE, STARTUP_ALLOWANCE, STOP_GRACE};
use crate::runner::attribution::Clients;
use crate::runner::checks;
use crate::runner::context::Facts;
use crate::runner::error::Error;
use crate::runner::observe;
use crate::runner::report::{ExpectationResult, Outcome, TrialResult};
use crate::runner::requirements;
use crate::runner::target::Target;
use crate::scenario::{Scenario, TargetKind};
use nslab::addr::profile::Profile;

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
    /// Runs every trial at this scale (`--time-scale`), whatever its scenario declares; `None`:
    /// each scenario's own `time_scale` (or real time). 1 runs in real time. A scenario that
    /// cannot be scaled ([`Scenario::real_time_only`]) fails with the reason when forced above 1.
    pub time_scale: Option<f64>,
}

/// Runs `scenario` in `profile` and reports every expectation.
#[tracing::instrument(name = "trial", level = "info", skip_all, fields(trial = name, profile = %profile.name()))]
pub async fn run_trial(name: &str, scenario: &Scenario, profile: Profile, opts: &RunOptions) -> TrialResult {
    let started = Instant::now();
    if let Some(why) = requirements::unmet_for(scenario) {
        let outcome = if opts.require_all { Outcome::Failed } else { Outcome::Ignored };
        return TrialResult::early(name.into(), &scenario.path, profile.name(), outcome, why, started.elapsed());
    }
    let mut t = Trial::new(scenario, profile);
    if let Some(k) = opts.time_scale {
        if let Err(why) = crate::scenario::check_time_scale(k) {
            return TrialResult::early(name.into(), &scenario.path, profile.name(), Outcome::Failed, format!("--time-scale: {why}"), started.elapsed());
        }
        t.scale = Some(k);
    }
    if let (Some(k), Some(why)) = (t.scale.filter(|k| *k > 1.0), &scenario.real_time_only) {
        let why = format!("a scale of {k} cannot apply to this scenario: {why}, which a scale does not speed up; run it at scale 1");
        return TrialResult::early(name.into(), &scenario.path, profile.name(), Outcome::Failed, why, started.elapsed());
    }
    t.artifacts_root = opts.artifacts_root.clone();
    t.attempt = opts.attempt.clone();
    let (mut reason, interrupted) = tokio::select! {
        r = t.run() => (r.err().map(|e| e.reason()), false),
        () = opts.cancel.cancelled() => {
            let during = if t.setup_done.is_some() { "while the scenario ran" } else { "while the lab and its services started" };
            (Some(format!("interrupted (the run was cancelled) {during}")), true)
        }
    };
    let ran_until = Instant::now();
    // How each service ended on its own, before the stop below ends the rest.
    let exits: BTreeMap<String, Option<nslab::host::process::Exit>> = t.procs.iter().map(|(n, p)| (n.clone(), p.exit())).collect();
    // Whatever happened, stop what still runs so the output is complete for reading, each
    // service with its own stop_grace (as scenarios/README.md says): clients first, then the
    // services targets read, so no client sees its server gone (in a scaled trial the stop's
    // milliseconds are seconds of a client's time).
    let serves = |n: &str| scenario.targets.iter().any(|d| matches!(&d.kind, TargetKind::Log { service, .. } if service == n));
    let (servers, clients): (Vec<_>, Vec<_>) = t.procs.iter().partition(|(n, _)| serves(n));
    for (n, p) in clients.into_iter().chain(servers) {
        p.stop(scenario.service(n).and_then(|s| s.stop_grace).unwrap_or(STOP_GRACE)).await;
    }
    let (services, first_requests) = match t.lab.as_ref() {
        Some(lab) => (
            observe::services(scenario, profile, lab, &t.procs, &t.started, &exits, &t.sockets, &t.argv, &t.kernel_addrs).await,
            observe::first_requests(scenario, lab, t.clock(), &t.procs, &t.targets),
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
    all.extend(checks::from_reports(scenario, profile, &services));
    if let Some(why) = &reason {
        all.extend(checks::undecided(scenario, profile, &all, why));
    }
    all.sort_by_key(|(i, _)| *i);
    t.results.extend(all.into_iter().map(|(_, r)| r));
    let failed = reason.is_some() || t.results.iter().any(|r| !r.passed);
    if failed && reason.is_none() {
        reason = Some(failed_summary(&t.results));
    }
    let staleness = match t.lab.as_ref() {
        Some(lab) => artifacts::staleness_rows(lab, t.clock(), scenario, &t.targets, &t.swaps).await,
        None => Vec::new(),
    };
    let mut artifacts = None;
    let mut timeline = None;
    if let (Some(p), Some(lab)) = (t.provision.take(), t.lab.as_ref()) {
        p.teardown().await;
        if let Err(e) = p.write_addresses(lab.artifacts()) {
            tracing::warn!(error = %e, "cannot write the address events");
        }
        artifacts::write_aaaa_log(lab, &p.aaaa_log());
    }
    if let Some(lab) = t.lab.take() {
        // The capture's marks in the picture: every frame sent so far read.
        if let Some(c) = lab.link_capture() {
            c.settle().await;
        }
        let picture = artifacts::write_targets(&lab, t.clock(), &t.targets, &t.dns_steps);
        artifacts::write_facts(&lab, scenario, profile, name, &t.facts);
        // The picture outlives a passing trial's artifacts: it and results.json stay behind.
        let scale = t.clock.as_ref().and_then(|c| c.warp()).map(|w| w.scale());
        let survivors = artifacts::Survivors::new(picture, &t.results, &staleness, &services, &first_requests).with_scale(scale, &t.windows).with_outcome(
            if interrupted {
                Outcome::Interrupted
            } else if failed {
                Outcome::Failed
            } else {
                Outcome::Passed
            },
            reason.as_deref(),
        );
        let dir = lab.artifacts().to_path_buf();
        // A retry's evidence is kept too, to compare with the attempt that failed.
        let keep = failed || opts.keep || opts.attempt.as_ref().is_some_and(|a| a.number > 1);
        let mut survivors = Some(survivors);
        if keep {
            lab.keep_artifacts();
            timeline = survivors.take().and_then(|s| s.write_kept(&dir));
        }
        match lab.teardown().await {
            Ok(kept) => artifacts = kept,
            Err(e) => {
                reason.get_or_insert_with(|| format!("teardown: {e}"));
            }
        }
        if let Some(s) = survivors {
            timeline = s.write_after_removal(&dir);
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
        time_scale: t.clock.as_ref().and_then(|c| c.warp()).map(|w| w.scale()),
        windows: std::mem::take(&mut t.windows),
        reason,
        expectations: t.results,
        listeners: t.listeners,
        links: t.link_figures,
        staleness,
        timeline,
        // Written by the lab's teardown (its tap read to the last packet), in the kept artifacts.
        dns_traffic: artifacts.as_ref().map(|d| d.join("dns-traffic.jsonl")).filter(|p| p.exists()),
        capture: artifacts.as_ref().map(|d| d.join(nslab::lab::capture::CAPTURE_FILE)).filter(|p| p.exists()),
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

impl Trial<'_> {
    /// Builds the lab within its setup allowance ([`setup_allowance`]), then plays the timeline
    /// and checks the expectations within the scenario's `timeout`, counted from the end of
    /// the setup and extended by the start-up time of services the timeline starts: a check
    /// still waiting then is undecided, the others keep their results.
    async fn run(&mut self) -> Result<(), Error> {
        let timeout = self.scenario.timeout;
        let allowance = setup_allowance(self.scenario);
        let t0 = tokio::time::Instant::now();
        let root = trial_root(self.scenario, self.artifacts_root.as_deref());
        let root = match (&self.attempt, root) {
            (Some(a), Some(r)) => Some(a.dir(&r, self.profile, a.number)),
            (_, r) => r,
        };
        tokio::time::timeout_at(t0 + allowance, self.setup(root)).await.map_err(|_| Error::SetupTimeout {
            allowance,
            timeout,
            lab: LAB_BUILD_ALLOWANCE,
            startup: STARTUP_ALLOWANCE,
        })??;
        let base = tokio::time::Instant::now();
        self.setup_took = Some(base - t0);
        self.setup_done = Some(Instant::now());
        // The setup's own start-ups are in its allowance: only the timeline's count from here.
        self.startup_ms.store(0, Ordering::Relaxed);
        let startup = self.startup_ms.clone();
        let ran_out = |during: &'static str, startup: &AtomicU64| Error::Timeout {
            timeout,
            during,
            setup_secs: (base - t0).as_secs_f64(),
            startup_secs: Duration::from_millis(startup.load(Ordering::Relaxed)).as_secs_f64(),
        };
        let starting = self.starting.clone();
        // The timeout is lab time like every duration of the scenario (program time in a scaled
        // trial: the same file runs at 1x and at its scale); the setup's allowance and the
        // start-ups charged stay real, the machine's.
        let limit = self.clock().real_for(timeout);
        within(self.timeline(), base + limit, &startup, &starting).await.ok_or_else(|| ran_out("while the timeline played", &startup))??;
        let deadline = base + limit + Duration::from_millis(startup.load(Ordering::Relaxed));
        self.sockets = tokio::time::timeout_at(deadline, self.listener_report()).await.unwrap_or_default();
        self.listeners = self.sockets.iter().map(|(n, ls)| (n.clone(), ls.iter().map(|l| l.to_string()).collect())).collect();
        let lab = self.lab.as_ref().expect("built above");
        for h in lab.links().hosts() {
            match tokio::time::timeout_at(deadline, lab.link_figures(&h)).await {
                Ok(Ok(Some(f))) => self.link_figures.push(f),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::warn!(host = %h, error = %e, "link figures unreadable"),
                Err(_) => tracing::warn!(host = %h, "link figures not read before the deadline"),
            }
        }
        let clock = self.clock().clone();
        (self.checked, self.windows) = checks::evaluate(
            self.scenario,
            self.profile,
            lab,
            &self.procs,
            &self.targets,
            &self.steps,
            self.provision.as_ref().map(|p| p.watch()),
            &clock,
            deadline,
        )
        .await;
        tracing::debug!(setup = ?(base - t0), scenario = ?base.elapsed(), startup_in_timeline = ?Duration::from_millis(startup.load(Ordering::Relaxed)), "trial timed");
        Ok(())
    }

    /// Builds the lab, starts the targets and the services that start on their own.
    pub(super) async fn setup(&mut self, artifacts_root: Option<PathBuf>) -> Result<(), Error> {
        let s = self.scenario;
        let scenario_dir = std::fs::canonicalize(s.dir()).unwrap_or_else(|_| s.dir().to_path_buf());
        // Programs are started with the scenario's files, wherever the folder is (even in /tmp).
        let mut b = s.lab_builder(self.profile).share_with_hosts(scenario_dir.clone());
        // Builds first, before the lab and its clock: from the cache, or run once in a lab of
        // their own; their output is visible to this lab's programs at its own path, read-only
        // (a program cannot change what later trials will use).
        let mut builds = BTreeMap::new();
        if !s.builds.is_empty() {
            let root = self.artifacts_root.clone().unwrap_or_else(nslab::lab::spec::default_artifacts_root);
            let logs = artifacts_root.clone().unwrap_or_else(|| root.clone()).join("build");
            let builder = crate::runner::build::Builder { root: &root, logs, scenario_dir: &scenario_dir };
            for def in &s.builds {
                let dir = builder.output(def).await.map_err(|source| Error::Build { source })?;
                b = b.share_read_only_with_hosts(dir.clone());
                builds.insert(def.name.clone(), dir);
            }
        }
        if s.provision.is_some() {
            // Addresses a router gives out are not known when /etc/hosts is written: on a
            // provisioned segment names come from the lab DNS, as in a cloud subnet.
            b = b.hosts_file_entries(false);
        }
        if let Some(d) = &s.dns {
            // Templated records take this trial's addresses, from the plan the lab is built to.
            let zones = if d.templated.is_empty() {
                d.zones.clone()
            } else {
                let ctx = crate::runner::context::PlanContext::of(s, self.profile).map_err(|source| Error::LabBuild { source })?;
                let (zones, omitted) = d.zones_in(&ctx).map_err(|what| Error::DnsRecord { what })?;
                for o in omitted {
                    tracing::info!(record = %o.name, kind = %o.kind, template = %o.template, reason = %o.reason, "templated DNS record left out in this profile");
                }
                zones
            };
            // A resolver that recurses starts from the lab's root, which the lab DNS then serves.
            let dns = if s.resolvers.iter().any(|r| r.recurse) { d.lab_dns_with(zones).serve_root() } else { d.lab_dns_with(zones) };
            b = b.dns(dns);
        }
        if let Some(root) = artifacts_root {
            // Folders a passing trial empties (<root>/<folder>/<scenario>) go with it.
            b = b.artifacts_in(root).artifacts_base(self.artifacts_root.clone().unwrap_or_else(nslab::lab::spec::default_artifacts_root));
        }
        let lab = b.build().await.map_err(|e| Error::LabBuild { source: Box::new(e) })?;
        // The warp's origin: after the build, before any target or service starts.
        self.clock = Some(match self.scale.filter(|k| *k > 1.0) {
            Some(k) => crate::runner::clock::LabClock::warped(lab.epoch(), nslab::TimeWarp::new(k).map_err(|e| Error::LabBuild { source: Box::new(e) })?),
            None => crate::runner::clock::LabClock::real(lab.epoch()),
        });
        let mut facts = Facts::of(&lab, self.profile, scenario_dir, s.dns.as_ref().map(|d| d.server_host()));
        facts.builds = builds;
        self.facts = Some(facts);
        let clients = Clients::new(lab.hosts());
        self.clients = Some(clients.clone());
        for def in &s.targets {
            let target = match &def.kind {
                TargetKind::Builtin { host, .. } => {
                    let host = lab.host(host)?.clone();
                    Target::start(def.clone(), &host, self.clock().clone(), clients.clone()).await?
                }
                TargetKind::Log { .. } => Target::from_log(def.clone(), self.clock().clone()),
            };
            self.targets.insert(def.name.clone(), target);
        }
        if let Some(def) = &s.provision {
            self.provision = Some(provision(&lab, def, s).await?);
        }
        self.lab = Some(lab);

        for svc in s.services_for(self.profile).filter(|svc| svc.autostart) {
            self.start(svc).await?;
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
}

/// Prepares the segment's IPv6 provisioning: the router and every declared host but the
/// router get IPv6 and SLAAC (the lab DNS host keeps its fixed addresses, as a cloud resolver
/// does); nothing is advertised until an `ipv6-arrives` step.
async fn provision(lab: &nslab::Lab, def: &crate::scenario::ProvisionDef, s: &Scenario) -> Result<nslab::lab::provision::Provisioner, Error> {
    let router = lab.host(&def.router)?.clone();
    let dns_host = s.dns.as_ref().map(|d| d.server_host().to_string());
    // The segment's hosts: those whose primary interface is on it (every host of a one-segment lab).
    let on_segment = |h: &nslab::Host| h.interfaces().first().is_some_and(|i| i.segment == def.segment);
    let hosts: Vec<nslab::Host> = match &def.hosts {
        Some(list) => lab.hosts().iter().filter(|h| list.iter().any(|n| n == h.name())).cloned().collect(),
        None => lab.hosts().iter().filter(|h| on_segment(h) && h.name() != def.router && Some(h.name()) != dns_host.as_deref()).cloned().collect(),
    };
    let ifname = router.interface_in(&def.segment).map(|i| i.name.clone()).ok_or_else(|| Error::LabBuild {
        source: Box::new(nslab::Error::Invalid { what: format!("router {} is not on segment {}", def.router, def.segment) }),
    })?;
    let rdnss = dns_host.as_deref().and_then(|n| lab.host(n).ok()).and_then(|h| h.ipv6());
    let p = nslab::lab::provision::Provisioner::prepare(&router, &ifname, &hosts, def.ra_config(rdnss), lab.epoch())
        .await
        .map_err(|e| Error::LabBuild { source: Box::new(e) })?;
    if let Some(dns) = lab.dns() {
        if def.aaaa_records {
            p.follow_aaaa(Some(dns)).await;
        }
        if def.dns64 {
            p.set_dns64(dns, Some(nslab::dns::Dns64::new(nslab::lab::nat64::PREFIX, 96).expect("the lab's NAT64 prefix is a /96")))
                .await
                .map_err(|e| Error::LabBuild { source: Box::new(e) })?;
        }
    }
    Ok(p)
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

/// The artifact root of a trial: `<root>/<folder>/<scenario>` so kept runs are easy to find.
fn trial_root(s: &Scenario, root: Option<&Path>) -> Option<PathBuf> {
    let root = root.map(Path::to_path_buf).unwrap_or_else(nslab::lab::spec::default_artifacts_root);
    let stem = s.path.file_stem()?.to_string_lossy().into_owned();
    let folder = s.path.parent().and_then(Path::file_name).map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    Some(root.join(folder).join(stem))
}
