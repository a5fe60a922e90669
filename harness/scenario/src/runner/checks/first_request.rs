//! Evaluates `first-request`: when a client service's first request reached a target, and over
//! which family.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::observed::{proc, rel, Observed};
use crate::runner::target::Target;
use crate::scenario::{Anchor, FirstRequestCheck, Scenario};
use nslab::host::process::Process;
use nslab::lab::build::Lab;

pub(super) async fn check(c: &FirstRequestCheck, o: &Observed<'_>) -> Result<String, String> {
    first_request(o, o.s, o.lab, o.procs, o.targets, &c.service, &c.target, c.within, c.at_least, c.family, c.from).await
}

#[allow(clippy::too_many_arguments)]
async fn first_request(
    o: &Observed<'_>,
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
    let started = o.clock.started_at(p);
    // What it did is looked for from when the harness began to start it: on a busy machine the
    // spawn call can return after the program has already asked DNS.
    let begun = o.clock.begun_at(p);
    // A built-in target knows which service made each connection: only this one's count. A log
    // target knows the address only: every request from the service's host counts.
    let mine = |r: &crate::runner::target::RequestRecord| t.service().is_some() || r.service.as_deref() == Some(service);
    let first_request = || t.requests_from(&addrs).into_iter().filter(|r| r.at() >= begun && mine(r)).min_by_key(|r| r.at_us);
    let first_query = || {
        let log = lab.dns()?.log();
        o.clock.queries(log).into_iter().filter(|e| e.at >= begun && addrs.contains(&e.client.ip().to_canonical())).map(|e| e.at).min()
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
            (Anchor::DnsQuery, None) if p.exit().is_none() => o.clock.now() + Duration::from_secs(1),
            _ => anchor.unwrap_or(started) + limit,
        };
        let first = first_request();
        // A client that has exited may still have a request on its way into the target's log
        // (the target records it from its own task, which a busy machine runs late): with a
        // window, wait for it to its end rather than stop at the exit.
        if first.is_some() || o.clock.now() > deadline || (p.exit().is_some() && within.is_none()) {
            break first.or_else(first_request);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let Some(r) = first else {
        return Err(format!("no request from {} reached {target} ({} since the service started)", host.name(), rel(o.clock.now(), started)));
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
    match from {
        Anchor::Start => o.window(format!("first request to {target} after the start of {service}"), took),
        Anchor::DnsQuery => o.window(format!("first request to {target} after the first DNS query of {service}"), took),
    }
    let ok = within.is_none_or(|w| took <= w) && at_least.is_none_or(|l| took >= l) && family.is_none_or(|f| f == fam);
    if ok {
        Ok(observed)
    } else {
        Err(observed)
    }
}
