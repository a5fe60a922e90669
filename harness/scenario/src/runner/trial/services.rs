//! Starting a service in a trial: its files and command line rendered, its program spawned,
//! and its readiness (or its expected failure) waited for, its start-up not charged to the
//! scenario's timeout.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::state::{Trial, STARTUP_ALLOWANCE};
use crate::runner::error::{Error, FileError};
use crate::runner::report::ExpectationResult;
use crate::runner::{evidence, observe};
use crate::scenario::{Condition, ExpectStart, FileContent, Run, ServiceDef};
use nslab::host::handle::Host;
use nslab::host::process::{Command, Process};

impl Trial<'_> {
    /// Starts a service and waits for its readiness, or for its failure when it must fail.
    #[tracing::instrument(name = "service", level = "info", skip_all, fields(service = %svc.name, host = %svc.host))]
    pub(super) async fn start(&mut self, svc: &ServiceDef) -> Result<(), Error> {
        let host = self.host(&svc.host)?;
        let dir = self.lab().artifacts().join("services").join(&svc.name);
        let dir_err = |e| Error::ServiceDir { service: svc.name.clone(), error: Box::new(e) };
        nslab::os::fsafe::artifact_dir(&dir).map_err(dir_err)?;
        // Its program may switch users (postgres through runuser) and must still reach it:
        // the way there becomes searchable (0711), never listable; its files stay 0600.
        let top = self.artifacts_root.clone().unwrap_or_else(nslab::lab::spec::default_artifacts_root);
        let top = std::fs::canonicalize(&top).unwrap_or(top);
        nslab::os::fsafe::allow_traverse(&dir, &top).map_err(|source| Error::ServiceTraverse { service: svc.name.clone(), dir: dir.clone(), source })?;
        let facts = self.facts.as_ref().expect("facts are read after the build");
        let ctx = facts.for_service(dir.clone());
        for f in &svc.files {
            let path = dir.join(&f.path);
            if let Some(parent) = path.parent() {
                nslab::os::fsafe::artifact_dir(parent).map_err(dir_err)?;
            }
            // Owner-only, new, never through a link: a service's files are the caller's.
            let res: Result<(), FileError> = match &f.content {
                FileContent::Inline(t) => {
                    t.render(&ctx).map_err(FileError::from).and_then(|text| Ok(nslab::os::fsafe::write_artifact(&path, text.as_bytes(), 0o600)?))
                }
                FileContent::Resolver { def, root_hints } => facts
                    .resolver_file(def, *root_hints, &dir, &self.scenario.resolver_hosts())
                    .map_err(FileError::Resolver)
                    .and_then(|text| Ok(nslab::os::fsafe::write_artifact(&path, text.as_bytes(), 0o600)?)),
                FileContent::Source(src) => std::fs::read(src)
                    .map_err(|source| FileError::Read { path: src.clone(), source })
                    .and_then(|bytes| Ok(nslab::os::fsafe::write_artifact(&path, &bytes, 0o600)?)),
            };
            res.map_err(|source| Error::ServiceFile { service: svc.name.clone(), file: f.path.clone(), source })?;
        }
        let render = |t: &crate::scenario::Template| t.render(&ctx).map_err(|e| Error::Template { service: svc.name.clone(), source: Box::new(e) });
        let argv: Vec<String> = match &svc.run {
            Run::Command(argv) => argv.iter().map(render).collect::<Result<Vec<_>, _>>()?,
            Run::Shell(script) => vec!["sh".into(), "-c".into(), render(script)?],
        };
        self.argv.insert(svc.name.clone(), argv.clone());
        let argv = if svc.trace {
            // Its socket calls, for the diagnosis of a failed bind or connect; with close, write
            // and its end (exit lines: -q, not -qq), what became of a connect left in progress.
            let log = dir.join("strace.log").display().to_string();
            ["strace", "-f", "-q", "-tt", "-e", "trace=%network,close,write", "-o", log.as_str(), "--"].iter().map(|s| s.to_string()).chain(argv).collect()
        } else {
            argv
        };
        // A scaled trial's programs run at the harness's priority. (They ran at niceness 10 for a
        // while, against the harness acting late among starting JVMs; under stress-ng, whose
        // workers run at 0, that left a JVM ~1/10 of their share of a core, tenths of a second
        // late at every request, seconds of its time at 10x: jvm-default failed its fidelity
        // check in all three profiles, and passed twice in a row at 0; BENCHMARKS.md.) A
        // program the warp cannot reach is refused here, naming the service.
        if let (Some(_), Some(first)) = (self.clock().warp(), argv.first()) {
            nslab::TimeWarp::check_program(first).map_err(|why| Error::Spawn {
                service: svc.name.clone(),
                source: Box::new(nslab::Error::Invalid { what: format!("service {} cannot run in scaled time: {why}", svc.name) }),
            })?;
        }
        let (prog, args) = argv.split_first().ok_or_else(|| Error::EmptyCommand { service: svc.name.clone() })?;
        let mut cmd = Command::new(prog).args(args);
        for (k, v) in &svc.env {
            cmd = cmd.env(k, render(v)?);
        }
        let cwd = match &svc.cwd {
            Some(t) => PathBuf::from(render(t)?),
            None => dir.clone(),
        };
        cmd = cmd.current_dir(cwd).name(svc.name.clone());
        // A scaled trial runs its programs in its warp: their clocks read program time.
        if let Some(w) = self.clock().warp() {
            cmd = cmd.time_warp(w);
        }
        let proc = host.spawn(cmd).await.map_err(|e| Error::Spawn { service: svc.name.clone(), source: Box::new(e) })?;
        self.procs.insert(svc.name.clone(), proc.clone());
        if let Some(c) = &self.clients {
            c.add(&svc.name, &proc);
        }
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
            Err(e) if svc.trace => match evidence::findings(self.lab(), &svc.host, &proc).await {
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
            self.kernel_addrs.insert(svc.name.clone(), evidence::kernel_addresses(&host, &candidates).await);
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
            Err(Error::NotStarted { service: svc.name.clone(), observed })
        }
    }
}

/// Waits for a service's readiness condition; `Ok` says what was seen.
pub(super) async fn wait_ready(host: &Host, proc: &Process, cond: Option<&Condition>, timeout: Duration) -> Result<String, String> {
    match cond {
        None => match proc.exit() {
            Some(e) => Err(format!("exited ({e}) right after start{}", tail(proc))),
            None => Ok("started (no readiness condition)".into()),
        },
        Some(Condition::Listening(spec)) => {
            host.wait_listening(&spec.to_listen(), timeout, Some(proc)).await.map(|l| format!("listening on {l}")).map_err(|e| e.to_string())
        }
        Some(Condition::Line(re)) => proc.wait_for_line(re.as_str(), timeout).await.map(|l| format!("printed {:?}", l.text)).map_err(|e| e.to_string()),
        Some(Condition::Exit { success: false }) => proc.wait_exit(timeout).await.map(|e| format!("ran to completion ({e})")).map_err(|e| e.to_string()),
        Some(Condition::Answers { listening, query }) => {
            let l = host.wait_listening(&listening.to_listen(), timeout, Some(proc)).await.map_err(|e| e.to_string())?;
            // Then a real query, asked again until it is answered NOERROR: the resolver has read
            // its configuration and reaches its upstream.
            let server = std::net::SocketAddr::from(([127, 0, 0, 1], 53));
            let deadline = tokio::time::Instant::now() + timeout;
            let mut last;
            loop {
                if let Some(e) = proc.exit() {
                    return Err(format!("exited ({e}) before it answered a query{}", tail(proc)));
                }
                match nslab::lab::resolver::probe(host, server, query, Duration::from_secs(1)).await {
                    Ok(a) if a.rcode == nslab::dns::ResponseCode::NoError => return Ok(format!("listening on {l} and answered a query for {query}: {a}")),
                    Ok(a) => last = a.to_string(),
                    Err(e) => last = e,
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!("listening on {l}, but no NOERROR answer for {query} from {server}: last {last}{}", tail(proc)));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Some(Condition::Exit { success: true }) => match proc.wait_exit(timeout).await {
            Ok(e) if e.success() => Ok(format!("ran to completion ({e})")),
            Ok(e) => Err(format!("exited ({e}), not with status 0 as ready = {{ exit = \"success\" }} needs{}", tail(proc))),
            Err(e) => Err(e.to_string()),
        },
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
