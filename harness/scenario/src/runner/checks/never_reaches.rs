//! Evaluates `never-reaches`: no request from a client (a host, or a service) reaches a target
//! in a window after a step, waited for to its end.

use std::time::Duration;

use super::observed::{proc, step_time, Observed};
use crate::runner::client;
use crate::scenario::{ClientRef, NeverReachesCheck};

pub(super) async fn check(c: &NeverReachesCheck, o: &Observed<'_>) -> Result<String, String> {
    let start = step_time(o.steps, &c.after)?;
    if let ClientRef::Service(s) = &c.client {
        proc(o.procs, s)?;
    }
    let t = o.targets.get(&c.target).ok_or_else(|| format!("no target {}", c.target))?;
    let who = client::resolve(o.s, o.lab, &c.client)?;
    // The window ends `for` after the step (waited for), or where the timeline ended: checks of
    // the running lab start when it has.
    let end = match c.duration {
        Some(d) => {
            let end = start + d;
            o.clock.sleep_until(end).await;
            end
        }
        None => o.clock.now(),
    };
    let secs = |d: Duration| format!("{:.2}s", d.as_secs_f64());
    let window = format!("from step {} ({}) to {}", c.after, secs(start), secs(end));
    let inside: Vec<_> = who.requests_to(t).into_iter().filter(|r| r.at() > start && r.at() <= end).collect();
    // What else it did meanwhile shows it was running, not only absent.
    let elsewhere: Vec<String> = o
        .targets
        .iter()
        .filter(|(name, _)| **name != c.target)
        .map(|(name, other)| (name, who.requests_to(other).into_iter().filter(|r| r.at() > start && r.at() <= end).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{n} to {name}"))
        .collect();
    let meanwhile = if elsewhere.is_empty() { "no request to another target".to_string() } else { format!("requests meanwhile: {}", elsewhere.join(", ")) };
    match inside.first() {
        None => Ok(format!("no request from {} reached {} {window}; {meanwhile}", c.client, c.target)),
        Some(first) => Err(format!(
            "{} request(s) from {} reached {} {window}, the first {} after the step from {}{}; {meanwhile}",
            inside.len(),
            c.client,
            c.target,
            secs(first.at().saturating_sub(start)),
            first.client,
            first.pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        )),
    }
}
