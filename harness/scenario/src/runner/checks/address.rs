//! Evaluates `address`: the kernel's address events of the provisioned segment's hosts.

use std::time::Duration;

use super::observed::{rel, step_time, Observed};
use crate::scenario::AddressCheck;
use nslab::lab::provision::ra::in_net;

pub(super) async fn check(c: &AddressCheck, o: &Observed<'_>) -> Result<String, String> {
    let watch = o.addresses.ok_or("the lab's segment was not provisioned (no [segments.lan.ipv6])")?;
    let since = match &c.after {
        Some(step) => Some(step_time(o.steps, step)?),
        None => None,
    };
    let matches = |e: &nslab::lab::provision::AddrEvent| {
        e.host == c.host && in_net(e.addr, c.prefix, c.prefix_len) && e.state == c.state && since.is_none_or(|s| e.at >= s)
    };
    let when = |at: Duration| match (&c.after, since) {
        (Some(step), Some(s)) => format!("{} step {step}", rel(at, s)),
        _ => format!("at {:.2}s", at.as_secs_f64()),
    };
    if c.present {
        // Waits (within the trial's deadline) for the kernel's event: a state the timeline led
        // to may come a router advertisement later.
        let e = watch.wait_for(&c.to_string(), Duration::from_secs(86_400), matches).await.map_err(|_| {
            let seen: Vec<String> =
                watch.events().iter().filter(|e| e.host == c.host).map(|e| format!("{} {} at {:.2}s", e.addr, e.state.name(), e.at.as_secs_f64())).collect();
            format!("no such event; the host's address events: {}", if seen.is_empty() { "none".to_string() } else { seen.join(", ") })
        })?;
        Ok(format!("{} {} {}", e.addr, e.state.name(), when(e.at)))
    } else {
        match watch.events().into_iter().find(|e| matches(e)) {
            Some(e) => Err(format!("{} {} {}", e.addr, e.state.name(), when(e.at))),
            None => Ok(format!("none: the host's addresses in {}/{} were never {}", c.prefix, c.prefix_len, c.state.name())),
        }
    }
}
