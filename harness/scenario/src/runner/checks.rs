//! Checking a scenario's expectations against what the lab observed.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use crate::runner::report::ExpectationResult;
use crate::runner::stale;
use crate::runner::target::Target;
use crate::scenario::{Anchor, Check, ConnectFamily, ConnectResult, ConnectTarget, Errno, ListenTarget, OutputStream, Scenario, StaleCause, StaleCounts};
use nslab::addr::profile::Profile;
use nslab::host::handle::Host;
use nslab::host::output::Stream;
use nslab::host::process::Process;
use nslab::lab::build::Lab;

/// Result of one expectation with its index in the file.
pub type Indexed = (usize, ExpectationResult);

fn result(passed: bool, desc: String, observed: String) -> ExpectationResult {
    ExpectationResult { description: desc, passed, observed, decided: true }
}

/// An expectation the trial could not decide (it ran out of time, or stopped early): not
/// passed, and `observed` says why.
fn undecided_result(desc: String, why: &str) -> ExpectationResult {
    ExpectationResult { description: desc, passed: false, observed: format!("not decided: {why}"), decided: false }
}

/// Every expectation of `profile` without a result in `done`, marked undecided with `why`: a
/// trial that stops early still reports each expectation.
pub fn undecided(s: &Scenario, profile: Profile, done: &[Indexed], why: &str) -> Vec<Indexed> {
    s.expectations
        .iter()
        .enumerate()
        .filter(|(i, e)| e.applies_to(profile) && !done.iter().any(|(j, _)| j == i))
        .map(|(i, e)| (i, undecided_result(e.description(), why)))
        .collect()
}

/// Whether a check reads the complete output (so it runs after the services are stopped).
fn is_late(c: &Check) -> bool {
    matches!(c, Check::Output { .. } | Check::BindError { .. })
}

/// Checks everything that observes the running lab (exits, timing windows, connections,
/// listeners), all at once, so the trial lasts as long as its longest window, not their sum.
/// A check still waiting at `deadline` (the trial's timeout) is reported undecided; the others
/// keep their results.
#[allow(clippy::too_many_arguments)]
pub async fn evaluate(
    s: &Scenario,
    profile: Profile,
    lab: &Lab,
    procs: &BTreeMap<String, Process>,
    targets: &BTreeMap<String, Target>,
    steps: &BTreeMap<String, Duration>,
    deadline: tokio::time::Instant,
) -> Vec<Indexed> {
    let futs = s
        .expectations
        .iter()
        .enumerate()
        .filter(|(_, e)| e.applies_to(profile) && !is_late(&e.check) && !crate::runner::observe::reads_output(s, &e.check))
        .map(|(i, e)| async move {
            let desc = e.description();
            let check = async {
                match &e.check {
                    Check::Exit { service, code, success } => check_exit(procs, service, *code, *success).await,
                    Check::LineWithin { service, matches, after, within, min } => {
                        line_within(lab, procs, steps, service, matches, after, *within, min.unwrap_or_default()).await
                    }
                    Check::NoLine { service, matches, after, duration } => no_line(lab, procs, steps, service, matches, after, *duration).await,
                    Check::Connect { from, to, family, result, timeout } => connect(lab, from, to, *family, *result, *timeout).await,
                    Check::Listening { target, on, exactly } => listening(s, lab, procs, target, on, *exactly).await,
                    Check::Stale { client, after, old, new, at_most, at_least, cause, counts } => {
                        stale_check(lab, targets, steps, client, after, old, new, *at_most, *at_least, *cause, counts).await
                    }
                    Check::FirstRequest { service, target, within, at_least, family, from } => {
                        first_request(s, lab, procs, targets, service, target, *within, *at_least, *family, *from).await
                    }
                    Check::Diagnosis { service, cause } => diagnosis(s, lab, procs, service, *cause).await,
                    Check::Output { .. } | Check::BindError { .. } => unreachable!("late checks are filtered out"),
                }
            };
            let r = match tokio::time::timeout_at(deadline, check).await {
                Ok(r) => r,
                Err(_) => return (i, undecided_result(desc, &format!("the trial's timeout of {:?} ran out while this was being checked", s.timeout))),
            };
            let (passed, observed) = match r {
                Ok(o) => (true, o),
                Err(o) => (false, o),
            };
            (i, result(passed, desc, observed))
        });
    futures::future::join_all(futs).await
}

/// Checks the output of services that have stopped: output and bind errors. `stopped_early`
/// says why the trial ended before its timeline did, if it did: a service it never started is
/// then undecided rather than failed.
pub fn evaluate_late(s: &Scenario, profile: Profile, procs: &BTreeMap<String, Process>, stopped_early: Option<&str>) -> Vec<Indexed> {
    s.expectations
        .iter()
        .enumerate()
        .filter(|(_, e)| e.applies_to(profile) && is_late(&e.check))
        .map(|(i, e)| {
            let service = match &e.check {
                Check::Output { service, .. } | Check::BindError { service, .. } => service,
                _ => unreachable!("only late checks"),
            };
            if let (Some(why), false) = (stopped_early, procs.contains_key(service)) {
                return (i, undecided_result(e.description(), &format!("service {service} was never started: {why}")));
            }
            let r = match &e.check {
                Check::Output { service, stream, matches, not_matches } => output(procs, service, *stream, matches.as_ref(), not_matches.as_ref()),
                Check::BindError { service, errno, message } => bind_error(procs, service, *errno, message.as_deref()),
                _ => unreachable!("only late checks"),
            };
            let (passed, observed) = match r {
                Ok(o) => (true, o),
                Err(o) => (false, o),
            };
            (i, result(passed, e.description(), observed))
        })
        .collect()
}

fn proc<'a>(procs: &'a BTreeMap<String, Process>, service: &str) -> Result<&'a Process, String> {
    procs.get(service).ok_or_else(|| format!("service {service} was never started"))
}

/// Waits for the service to exit, with no bound of its own: the trial's deadline in [`evaluate`]
/// decides, so a program still running then is undecided, never "failed" by a second timer that
/// happened to fire in the same tick.
async fn check_exit(procs: &BTreeMap<String, Process>, service: &str, code: Option<i32>, success: Option<bool>) -> Result<String, String> {
    let p = proc(procs, service)?;
    // Duration::MAX: tokio waits without a deadline (far future).
    let exit = p.wait_exit(Duration::MAX).await.map_err(|e| e.to_string())?;
    let ok = code.is_none_or(|c| exit.code() == Some(c)) && success.is_none_or(|s| exit.success() == s);
    let observed = format!("exited: {exit}");
    if ok {
        Ok(observed)
    } else {
        Err(observed)
    }
}

#[allow(clippy::too_many_arguments)]
async fn stale_check(
    lab: &Lab,
    targets: &BTreeMap<String, Target>,
    steps: &BTreeMap<String, Duration>,
    client: &str,
    after: &str,
    old: &str,
    new: &str,
    at_most: Option<Duration>,
    at_least: Option<Duration>,
    cause: Option<StaleCause>,
    counts: &StaleCounts,
) -> Result<String, String> {
    let start = step_time(steps, after)?;
    // Watch long enough to tell: the later of the two bounds, plus a second of margin.
    let horizon = start + at_most.unwrap_or_default().max(at_least.unwrap_or_default()) + Duration::from_secs(1);
    let now = lab.elapsed();
    if horizon > now {
        tokio::time::sleep(horizon - now).await;
    }
    let host = lab.host(client).map_err(|e| e.to_string())?;
    let addrs: Vec<IpAddr> = host.addrs().into_iter().chain(host.link_local().map(IpAddr::V6)).collect();
    let (o, n) = (targets.get(old).ok_or_else(|| format!("no target {old}"))?, targets.get(new).ok_or_else(|| format!("no target {new}"))?);
    let st = stale::analyse(&addrs, start, o, n, lab.dns().map(|d| d.log()));
    let observed = st.to_string();
    let mut ok = true;
    if let Some(m) = at_most {
        ok &= st.moved() && st.window() <= m;
    }
    if let Some(l) = at_least {
        ok &= st.last_old.is_some_and(|w| w >= l);
    }
    if let Some(c) = cause {
        ok &= st.cause == c;
    }
    ok &= stale::counts_hold(&st, counts);
    if ok {
        Ok(observed)
    } else {
        Err(observed)
    }
}

#[allow(clippy::too_many_arguments)]
async fn first_request(
    s: &Scenario,
    lab: &Lab,
    procs: &BTreeMap<String, Process>,
    targets: &BTreeMap<String, Target>,
    service: &str,
    target: &str,
    within: Option<Duration>,
    at_least: Option<Duration>,
    family: Option<nslab::host::listeners::Family>,
    from: Anchor,
) -> Result<String, String> {
    let p = proc(procs, service)?;
    let def = s.service(service).ok_or_else(|| format!("no service {service}"))?;
    let host = lab.host(&def.host).map_err(|e| e.to_string())?;
    let addrs: Vec<IpAddr> = host.addrs().into_iter().chain(host.link_local().map(IpAddr::V6)).collect();
    let t = targets.get(target).ok_or_else(|| format!("no target {target}"))?;
    let started = p.started_at();
    // What it did is looked for from when the harness began to start it: on a busy machine the
    // spawn call can return after the program has already asked DNS.
    let begun = p.begun_at();
    let first_request = || t.requests_from(&addrs).into_iter().filter(|r| r.at() >= begun).min_by_key(|r| r.at_us);
    let first_query = || {
        let log = lab.dns()?.log();
        log.entries().into_iter().filter(|e| e.at >= begun && addrs.contains(&e.client.ip().to_canonical())).map(|e| e.at).min()
    };
    // Wait for the first request, up to the window's end (or the trial's timeout). The window
    // is counted from the anchor, which for a DNS query is only known once the query came.
    let limit = within.unwrap_or(s.timeout);
    let first = loop {
        let anchor = match from {
            Anchor::Start => Some(started),
            Anchor::DnsQuery => first_query(),
        };
        // No query yet (a JVM still starting): the window has not begun; wait for it, as long
        // as the program runs (the trial's deadline bounds this check).
        let deadline = match (from, anchor) {
            (Anchor::DnsQuery, None) if p.exit().is_none() => lab.elapsed() + Duration::from_secs(1),
            _ => anchor.unwrap_or(started) + limit,
        };
        let first = first_request();
        // A client that has exited may still have a request on its way into the target's log
        // (the target records it from its own task, which a busy machine runs late): with a
        // window, wait for it to its end rather than stop at the exit.
        if first.is_some() || lab.elapsed() > deadline || (p.exit().is_some() && within.is_none()) {
            break first.or_else(first_request);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let Some(r) = first else {
        return Err(format!("no request from {} reached {target} ({} since the service started)", host.name(), rel(lab.elapsed(), started)));
    };
    let fam = nslab::host::listeners::Family::of(&r.client.ip());
    let fam_name = if fam == nslab::host::listeners::Family::V4 { "IPv4" } else { "IPv6" };
    let after_start = r.at().saturating_sub(started);
    let (took, observed) = match from {
        Anchor::Start => (after_start, format!("first request after {:.3}s over {fam_name} from {}", after_start.as_secs_f64(), r.client)),
        Anchor::DnsQuery => {
            let Some(q) = first_query() else {
                return Err(format!(
                    "{} made no DNS query after the service started, so there is nothing to count from (first request after {:.3}s)",
                    host.name(),
                    after_start.as_secs_f64()
                ));
            };
            let took = r.at().saturating_sub(q);
            let observed = format!(
                "first request {:.3}s after its first DNS query ({:.3}s after the service started) over {fam_name} from {}",
                took.as_secs_f64(),
                after_start.as_secs_f64(),
                r.client
            );
            (took, observed)
        }
    };
    let ok = within.is_none_or(|w| took <= w) && at_least.is_none_or(|l| took >= l) && family.is_none_or(|f| f == fam);
    if ok {
        Ok(observed)
    } else {
        Err(observed)
    }
}

/// The findings of a traced service's calls (waits for it to exit first, at most 10 s).
pub async fn findings(lab: &Lab, host: &str, p: &Process) -> Result<Vec<crate::runner::diagnose::Finding>, String> {
    let _ = p.wait_exit(Duration::from_secs(10)).await;
    let h = lab.host(host).map_err(|e| e.to_string())?;
    let path = lab.artifacts().join("services").join(p.name()).join("strace.log");
    let log = std::fs::read_to_string(&path).map_err(|e| format!("no call log at {}: {e}", path.display()))?;
    let (addrs, tentative) = crate::runner::observe::addresses_for_log(h, &log).await;
    let mut found = crate::runner::diagnose::diagnose_with(&log, &addrs, &tentative);
    crate::runner::observe::try_other_family(lab, h, &mut found).await;
    Ok(found)
}

async fn diagnosis(s: &Scenario, lab: &Lab, procs: &BTreeMap<String, Process>, service: &str, want: crate::scenario::Cause) -> Result<String, String> {
    let p = proc(procs, service)?;
    let def = s.service(service).ok_or_else(|| format!("no service {service}"))?;
    let found = findings(lab, &def.host, p).await?;
    match found.iter().find(|f| f.cause == want) {
        Some(f) => Ok(format!("{}: {}", f.cause.name(), f.call)),
        None if found.is_empty() => Err("no failing socket, bind or connect call".into()),
        None => Err(found.iter().map(|f| format!("{}: {}", f.cause.name(), f.call)).collect::<Vec<_>>().join("; ")),
    }
}

fn step_time(steps: &BTreeMap<String, Duration>, step: &str) -> Result<Duration, String> {
    steps.get(step).copied().ok_or_else(|| format!("step {step:?} did not run"))
}

fn rel(at: Duration, start: Duration) -> String {
    if at >= start {
        format!("{:.2}s after", (at - start).as_secs_f64())
    } else {
        format!("{:.2}s before", (start - at).as_secs_f64())
    }
}

#[allow(clippy::too_many_arguments)]
async fn line_within(
    lab: &Lab,
    procs: &BTreeMap<String, Process>,
    steps: &BTreeMap<String, Duration>,
    service: &str,
    re: &regex::Regex,
    after: &str,
    within: Duration,
    min: Duration,
) -> Result<String, String> {
    let p = proc(procs, service)?;
    let start = step_time(steps, after)?;
    let (lo, hi) = (start + min, start + within);
    loop {
        // Once it has exited, its output is complete: no need to wait out the window.
        let done = lab.elapsed() > hi || p.exit().is_some();
        let lines = p.lines();
        if let Some(l) = lines.iter().find(|l| l.at >= lo && l.at <= hi && re.is_match(&l.text)) {
            return Ok(format!("{:?} {} step {after}", l.text, rel(l.at, start)));
        }
        if done {
            let first_after = lines.iter().find(|l| l.at >= start && re.is_match(&l.text));
            return Err(match first_after {
                Some(l) => format!("first matching line {:?} came {} step {after}, outside the window", l.text, rel(l.at, start)),
                None => format!("no matching line within {within:?} after step {after} ({} lines of output)", lines.len()),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn no_line(
    lab: &Lab,
    procs: &BTreeMap<String, Process>,
    steps: &BTreeMap<String, Duration>,
    service: &str,
    re: &regex::Regex,
    after: &str,
    duration: Duration,
) -> Result<String, String> {
    let p = proc(procs, service)?;
    let start = step_time(steps, after)?;
    let end = start + duration;
    let now = lab.elapsed();
    if end > now {
        tokio::time::sleep(end - now).await;
    }
    let lines = p.lines();
    match lines.iter().find(|l| l.at >= start && l.at <= end && re.is_match(&l.text)) {
        Some(l) => Err(format!("{:?} {} step {after}", l.text, rel(l.at, start))),
        None => {
            let next = lines.iter().find(|l| l.at > end && re.is_match(&l.text));
            Ok(match next {
                Some(l) => format!("none for {duration:?}; the first came {} step {after}", rel(l.at, start)),
                None => format!("none for {duration:?} after step {after}"),
            })
        }
    }
}

async fn ifindex(host: &Host, name: &str) -> Result<u32, String> {
    let n = name.to_string();
    host.in_netns(move || nix::net::if_::if_nametoindex(n.as_str()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("no interface {name} in host {}: {e}", host.name()))
}

async fn connect(lab: &Lab, from: &str, to: &ConnectTarget, family: Option<ConnectFamily>, want: ConnectResult, timeout: Duration) -> Result<String, String> {
    let src = lab.host(from).map_err(|e| e.to_string())?;
    let addr: SocketAddr = match to {
        ConnectTarget::Host { host, port } => {
            let dst = lab.host(host).map_err(|e| e.to_string())?;
            let profile = dst.profile();
            let none = |what: &str| format!("host {host} has no {what} address in profile {profile}");
            match family {
                Some(ConnectFamily::Ipv4) => SocketAddr::new(dst.ipv4().ok_or_else(|| none("IPv4"))?.into(), *port),
                Some(ConnectFamily::Ipv6) => SocketAddr::new(dst.ipv6().ok_or_else(|| none("IPv6"))?.into(), *port),
                Some(ConnectFamily::LinkLocal) => {
                    let ll = dst.link_local().ok_or_else(|| none("link-local"))?;
                    SocketAddr::V6(SocketAddrV6::new(ll, *port, 0, ifindex(src, src.interface()).await?))
                }
                None => match dst.addrs().first() {
                    Some(a) => SocketAddr::new(*a, *port),
                    None => {
                        let ll = dst.link_local().ok_or_else(|| none("usable"))?;
                        SocketAddr::V6(SocketAddrV6::new(ll, *port, 0, ifindex(src, src.interface()).await?))
                    }
                },
            }
        }
        ConnectTarget::Addr { ip, scope, port } => match (ip, scope) {
            (IpAddr::V6(v6), Some(ifname)) => SocketAddr::V6(SocketAddrV6::new(*v6, *port, 0, ifindex(src, ifname).await?)),
            _ => SocketAddr::new(*ip, *port),
        },
    };
    let got = match tokio::time::timeout(timeout, src.connect_tcp(addr)).await {
        Ok(Ok(_)) => ConnectResult::Ok,
        Ok(Err(e)) => match e.os_error().and_then(|n| Errno::from_number(i64::from(n)).ok()) {
            Some(errno) => ConnectResult::Errno(errno),
            None => return Err(format!("connect to {addr} failed: {}", nslab::error::chain(&e))),
        },
        Err(_) => ConnectResult::Timeout,
    };
    let observed = match got {
        ConnectResult::Ok => format!("connected to {addr}"),
        ConnectResult::Timeout => format!("no answer from {addr} within {timeout:?}"),
        ConnectResult::Errno(e) => format!("connect to {addr} failed with {} ({})", e.name, e.number),
    };
    if got == want {
        Ok(observed)
    } else {
        Err(observed)
    }
}

async fn listening(
    s: &Scenario,
    lab: &Lab,
    procs: &BTreeMap<String, Process>,
    target: &ListenTarget,
    on: &[crate::scenario::ListenSpec],
    exactly: bool,
) -> Result<String, String> {
    let (host, owned) = match target {
        ListenTarget::Host(h) => (lab.host(h).map_err(|e| e.to_string())?.clone(), None),
        ListenTarget::Service(svc) => {
            let def = s.service(svc).ok_or_else(|| format!("no service {svc}"))?;
            let p = proc(procs, svc)?;
            (lab.host(&def.host).map_err(|e| e.to_string())?.clone(), Some(p.socket_inodes()))
        }
    };
    let all = host.listeners().await.map_err(|e| e.to_string())?;
    let mine: Vec<_> = all.into_iter().filter(|l| owned.as_ref().is_none_or(|o| o.contains(&l.inode))).collect();
    let shown = if mine.is_empty() { "nothing".to_string() } else { mine.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", ") };
    let mut missing = Vec::new();
    let mut used = vec![false; mine.len()];
    for spec in on {
        let want = spec.to_listen();
        let hit = mine.iter().enumerate().find(|(_, l)| want.matches(l) && spec.v6only.is_none_or(|v| l.v6only == v));
        match hit {
            Some((i, _)) => used[i] = true,
            None => missing.push(spec.to_string()),
        }
    }
    let extra: Vec<String> = mine.iter().zip(&used).filter(|(_, u)| !**u).map(|(l, _)| l.to_string()).collect();
    if !missing.is_empty() {
        return Err(format!("listening on {shown}; missing {}", missing.join(", ")));
    }
    if exactly && !extra.is_empty() {
        return Err(format!("listening on {shown}; not expected: {}", extra.join(", ")));
    }
    Ok(format!("listening on {shown}"))
}

fn text_of(p: &Process, stream: OutputStream) -> String {
    match stream {
        OutputStream::Stdout => p.stdout(),
        OutputStream::Stderr => p.stderr(),
        OutputStream::Both => p.lines().iter().filter(|l| matches!(l.stream, Stream::Stdout | Stream::Stderr)).map(|l| l.text.clone() + "\n").collect(),
    }
}

fn output(
    procs: &BTreeMap<String, Process>,
    service: &str,
    stream: OutputStream,
    matches: Option<&regex::Regex>,
    not_matches: Option<&regex::Regex>,
) -> Result<String, String> {
    let p = proc(procs, service)?;
    let text = text_of(p, stream);
    let mut seen = Vec::new();
    if let Some(re) = matches {
        match text.lines().find(|l| re.is_match(l)) {
            Some(l) => seen.push(format!("matching line {l:?}")),
            None => return Err(format!("no line matches /{}/; output:{}", re.as_str(), tail(&text))),
        }
    }
    if let Some(re) = not_matches {
        if let Some(l) = text.lines().find(|l| re.is_match(l)) {
            return Err(format!("line {l:?} matches /{}/", re.as_str()));
        }
        seen.push(format!("no line matches /{}/", re.as_str()));
    }
    Ok(seen.join("; "))
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return " (none)".into();
    }
    let start = lines.len().saturating_sub(10);
    format!("\n  | {}", lines[start..].join("\n  | "))
}

/// A bind failure shows in a program's output as the errno's text or number, in the forms
/// programs print it: `Address already in use`, `[Errno 98]`, `(98: ...)`, `errno 98`.
fn bind_error(procs: &BTreeMap<String, Process>, service: &str, errno: Errno, message: Option<&str>) -> Result<String, String> {
    let p = proc(procs, service)?;
    let text = p.output();
    let desc = nix::errno::Errno::from_raw(errno.number).desc();
    let n = errno.number;
    let forms = [desc.to_string(), format!("[Errno {n}]"), format!("({n}:"), format!("errno {n}"), format!("errno={n}"), errno.name.to_string()];
    let line = text.lines().find(|l| forms.iter().any(|f| l.contains(f.as_str())));
    let Some(line) = line else {
        return Err(format!("no line shows {} ({n}, \"{desc}\"); output:{}", errno.name, tail(&text)));
    };
    if let Some(m) = message {
        if !text.contains(m) {
            return Err(format!("saw {line:?} but no {m:?} in the output"));
        }
    }
    Ok(format!("{line:?}"))
}
