//! What the checks read (the running lab, its services and targets, when the named steps
//! ended) and the lookups they share.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::runner::clock::LabClock;
use crate::runner::target::Target;
use crate::scenario::Scenario;
use nslab::host::process::Process;
use nslab::lab::build::Lab;

/// The running trial, as the checks of the running lab see it.
pub(super) struct Observed<'a> {
    pub(super) s: &'a Scenario,
    pub(super) lab: &'a Lab,
    pub(super) procs: &'a BTreeMap<String, Process>,
    pub(super) targets: &'a BTreeMap<String, Target>,
    /// Lab time at which each named step ended.
    pub(super) steps: &'a BTreeMap<String, Duration>,
    /// The address events of the provisioned segment's hosts, if it is provisioned.
    pub(super) addresses: Option<&'a nslab::lab::provision::AddressWatch>,
    /// The lab clock: every time a check compares or prints is lab time (program time in a
    /// scaled trial), its observations converted through it.
    pub(super) clock: &'a LabClock,
    /// The windows this expectation measured (what, lab time), for the report and the
    /// fidelity check.
    pub(super) windows: std::cell::RefCell<Vec<(String, Duration)>>,
}

impl Observed<'_> {
    /// Records a window the check measured: `what` it spans and how long it was (lab time).
    pub(super) fn window(&self, what: impl Into<String>, d: Duration) {
        self.windows.borrow_mut().push((what.into(), d));
    }
}

pub(super) fn proc<'a>(procs: &'a BTreeMap<String, Process>, service: &str) -> Result<&'a Process, String> {
    procs.get(service).ok_or_else(|| format!("service {service} was never started"))
}

pub(super) fn step_time(steps: &BTreeMap<String, Duration>, step: &str) -> Result<Duration, String> {
    steps.get(step).copied().ok_or_else(|| format!("step {step:?} did not run"))
}

pub(super) fn rel(at: Duration, start: Duration) -> String {
    if at >= start {
        format!("{:.2}s after", (at - start).as_secs_f64())
    } else {
        format!("{:.2}s before", (start - at).as_secs_f64())
    }
}

pub(super) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return " (none)".into();
    }
    let start = lines.len().saturating_sub(10);
    format!("\n  | {}", lines[start..].join("\n  | "))
}
