//! Evaluates `stale`: how long a client kept reaching the old target after a DNS change; a
//! host with several client services is analysed per service, and each must meet it.

use std::time::Duration;

use super::observed::{step_time, Observed};
use crate::runner::client;
use crate::runner::stale;
use crate::scenario::StaleCheck;

pub(super) async fn check(c: &StaleCheck, o: &Observed<'_>) -> Result<String, String> {
    let start = step_time(o.steps, &c.after)?;
    // Watch long enough to tell: the later of the two bounds, plus a second of margin for the
    // machine (lines read late): a real second, k seconds of program time in a scaled trial.
    let horizon = start + c.at_most.unwrap_or_default().max(c.at_least.unwrap_or_default());
    o.clock.sleep_until(horizon).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (old, new) = (&c.old, &c.new);
    let (t_old, t_new) = (o.targets.get(old).ok_or_else(|| format!("no target {old}"))?, o.targets.get(new).ok_or_else(|| format!("no target {new}"))?);
    let who = client::resolve(o.s, o.lab, &c.client)?;
    let clients = client::split(&who, &[t_old, t_new]);
    let several = clients.len() > 1;
    // Every DNS message sent up to now in the log before the layer walk reads it.
    let traffic = match o.lab.dns_traffic() {
        Some(tap) => {
            tap.settle().await;
            o.clock.traffic(tap.log().entries())
        }
        None => Vec::new(),
    };
    let resolvers = o.s.resolver_hosts();
    let chain = stale::Chain { traffic: &traffic, resolvers: &resolvers, scale: o.clock.scale() };
    let (mut texts, mut failed) = (Vec::new(), false);
    for cl in &clients {
        let queries = o.lab.dns().map(|d| o.clock.queries(d.log()));
        let st = stale::analyse(cl, start, t_old, t_new, queries.as_deref(), chain);
        // The windows measured, within the bounds watched (beyond them a figure depends on when
        // this reads, the margin being a real second: nothing to compare).
        let who = if several { format!("{}: ", cl.name()) } else { String::new() };
        let bound = horizon - start;
        if let Some(s) = st.last_old.filter(|s| *s <= bound) {
            o.window(format!("{who}last request to {old} after step {}", c.after), s);
        }
        if let Some(s) = st.first_new.filter(|s| *s <= bound) {
            o.window(format!("{who}first request to {new} after step {}", c.after), s);
        }
        let mut f = stale::failures(&st, c.at_most, c.at_least, c.cause, &c.counts);
        if let Some(h) = &c.held_by {
            f.extend(stale::held_failures(&st, h));
        }
        failed |= !f.is_empty();
        let mut text = if several { format!("{}: {st}", cl.name()) } else { st.to_string() };
        if !f.is_empty() {
            text.push_str(&format!("; failed: {}", f.join("; ")));
        }
        texts.push(text);
    }
    let text = if several { format!("{} client services on host {}: {}", clients.len(), who.host, texts.join(" | ")) } else { texts.join("") };
    if failed {
        Err(text)
    } else {
        Ok(text)
    }
}
