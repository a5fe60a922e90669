//! Evaluates `stale`: how long a client kept reaching the old target after a DNS change.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use super::observed::{step_time, Observed};
use crate::runner::stale;
use crate::runner::target::Target;
use crate::scenario::{StaleCause, StaleCheck, StaleCounts};
use nslab::lab::build::Lab;

pub(super) async fn check(c: &StaleCheck, o: &Observed<'_>) -> Result<String, String> {
    stale_check(o.lab, o.targets, o.steps, &c.client, &c.after, &c.old, &c.new, c.at_most, c.at_least, c.cause, &c.counts).await
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
    let failed = stale::failures(&st, at_most, at_least, cause, counts);
    if failed.is_empty() {
        Ok(st.to_string())
    } else {
        Err(format!("{st}; failed: {}", failed.join("; ")))
    }
}
