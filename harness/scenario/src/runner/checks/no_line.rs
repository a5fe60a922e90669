//! Evaluates `no-line`: no matching line for a while after a step.

use std::collections::BTreeMap;
use std::time::Duration;

use super::observed::{proc, rel, step_time, Observed};
use crate::scenario::NoLineCheck;
use nslab::host::process::Process;

pub(super) async fn check(c: &NoLineCheck, o: &Observed<'_>) -> Result<String, String> {
    no_line(o, o.procs, o.steps, &c.service, &c.matches, &c.after, c.duration).await
}

async fn no_line(
    o: &Observed<'_>,
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
    o.clock.sleep_until(end).await;
    let lines = o.clock.lines(p);
    match lines.iter().find(|l| l.at >= start && l.at <= end && re.is_match(&l.text)) {
        Some(l) => {
            // The window measured, when the line came inside it (a line after the window is
            // seen or not depending on when this reads: no figure to compare).
            o.window(format!("first {:?} after step {after}", re.as_str()), l.at - start);
            Err(format!("{:?} {} step {after}", l.text, rel(l.at, start)))
        }
        None => {
            let next = lines.iter().find(|l| l.at > end && re.is_match(&l.text));
            Ok(match next {
                Some(l) => format!("none for {duration:?}; the first came {} step {after}", rel(l.at, start)),
                None => format!("none for {duration:?} after step {after}"),
            })
        }
    }
}
