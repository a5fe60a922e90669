//! Evaluates `diagnosis`: the cause of a failed call, from a traced service's calls while the
//! lab runs, or for an untraced service from its report (its output and the lab's facts).

use std::collections::BTreeMap;

use super::observed::{proc, Observed};
use crate::runner::evidence::findings;
use crate::runner::observe::ServiceReport;
use crate::scenario::{DiagnosisCheck, Scenario};
use nslab::host::process::Process;
use nslab::lab::build::Lab;

pub(super) async fn check(c: &DiagnosisCheck, o: &Observed<'_>) -> Result<String, String> {
    diagnosis(o.s, o.lab, o.procs, &c.service, c.cause).await
}

/// Whether it is a diagnosis of an untraced service: read from its output and the lab's facts
/// after the trial (by [`from_report`]), not from its calls.
pub(super) fn reads_output(s: &Scenario, c: &DiagnosisCheck) -> bool {
    s.service(&c.service).is_some_and(|d| !d.trace)
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

/// Whether an untraced service's report shows the cause: (passed, observed).
pub(super) fn from_report(c: &DiagnosisCheck, reports: &[ServiceReport]) -> (bool, String) {
    let DiagnosisCheck { service, cause } = c;
    let r = reports.iter().find(|r| &r.name == service);
    match r {
        None => (false, format!("service {service} was never started")),
        Some(ServiceReport { cause: None, errno: None, partial: Some((errno, c, evidence)), .. }) => match c {
            Some(c) => (c == cause.name(), format!("{c} ({errno}), though it started: {evidence}")),
            None => (false, format!("it started; its output shows {errno} but no cause follows from the lab's facts: {evidence}")),
        },
        Some(r) => match (&r.cause, &r.errno) {
            (Some(c), _) => (c == cause.name(), format!("{c} ({}): {}", r.errno.as_deref().unwrap_or("?"), r.evidence.as_deref().unwrap_or(""))),
            (None, Some(errno)) => {
                (false, format!("its output shows {errno} but no cause follows from the lab's facts: {}", r.evidence.as_deref().unwrap_or("")))
            }
            (None, None) => (false, "its output shows no failed call with an errno".to_string()),
        },
    }
}
