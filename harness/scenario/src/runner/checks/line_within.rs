//! Evaluates `line-within`: a line in a window after a step.

use std::collections::BTreeMap;
use std::time::Duration;

use super::observed::{proc, rel, step_time, Observed};
use crate::scenario::LineWithinCheck;
use nslab::host::process::Process;

pub(super) async fn check(c: &LineWithinCheck, o: &Observed<'_>) -> Result<String, String> {
    line_within(o, o.procs, o.steps, &c.service, &c.matches, &c.after, c.within, c.min.unwrap_or_default()).await
}

#[allow(clippy::too_many_arguments)]
async fn line_within(
    o: &Observed<'_>,
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
        let done = o.clock.now() > hi || p.exit().is_some();
        let lines = o.clock.lines(p);
        if let Some(l) = lines.iter().find(|l| l.at >= lo && l.at <= hi && re.is_match(&l.text)) {
            o.window(window_name(re, min, after), l.at - start);
            return Ok(format!("{:?} {} step {after}", l.text, rel(l.at, start)));
        }
        if done {
            let first_after = lines.iter().find(|l| l.at >= start && re.is_match(&l.text));
            return Err(match first_after {
                Some(l) => format!("first matching line {:?} came {} step {after}, outside the window", l.text, rel(l.at, start)),
                None => format!("no matching line within {within:?} after step {after} ({} lines of output)", lines.len()),
            });
        }
        // Polled every 20 ms of real time: the reading's own resolution, k times that in lab time.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the window of a line-within spans: `first "^green$" after step swap` (`at least 34s
/// after` with a `min`).
fn window_name(re: &regex::Regex, min: Duration, after: &str) -> String {
    if min.is_zero() {
        format!("first {:?} after step {after}", re.as_str())
    } else {
        format!("first {:?} at least {min:?} after step {after}", re.as_str())
    }
}
