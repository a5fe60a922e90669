//! When each expectation is checked: while the lab runs (all at once, within the trial's
//! deadline), after the services stopped (their complete output), or from the services'
//! reports; and the results of those a trial could not decide.

use std::collections::BTreeMap;
use std::time::Duration;

use super::observed::Observed;
use super::{address, bind_error, connect, diagnosis, dns_queries, exit, first_request, line_within, listening, never_reaches, no_line, output, stale};
use crate::runner::clock::LabClock;
use crate::runner::observe::ServiceReport;
use crate::runner::report::{ExpectationResult, MeasuredWindow};
use crate::runner::target::Target;
use crate::scenario::{Check, Scenario};
use nslab::addr::profile::Profile;
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

/// Checks `check` on the running lab; `None` for the checks decided later: those that read
/// the complete output ([`evaluate_late`]) and the diagnoses of untraced services
/// ([`from_reports`]).
async fn live(check: &Check, o: &Observed<'_>) -> Option<Result<String, String>> {
    Some(match check {
        Check::Exit(c) => exit::check(c, o).await,
        Check::LineWithin(c) => line_within::check(c, o).await,
        Check::NoLine(c) => no_line::check(c, o).await,
        Check::Connect(c) => connect::check(c, o).await,
        Check::Listening(c) => listening::check(c, o).await,
        Check::Stale(c) => stale::check(c, o).await,
        Check::FirstRequest(c) => first_request::check(c, o).await,
        Check::Diagnosis(c) if diagnosis::reads_output(o.s, c) => return None,
        Check::Diagnosis(c) => diagnosis::check(c, o).await,
        Check::NeverReaches(c) => never_reaches::check(c, o).await,
        Check::DnsQueries(c) => dns_queries::check(c, o).await,
        Check::Address(c) => address::check(c, o).await,
        Check::Output(_) | Check::BindError(_) => return None,
    })
}

/// The service whose complete output `check` reads, for the checks [`evaluate_late`] decides.
fn reads_complete_output(check: &Check) -> Option<&str> {
    match check {
        Check::Output(c) => Some(&c.service),
        Check::BindError(c) => Some(&c.service),
        _ => None,
    }
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
    addresses: Option<&nslab::lab::provision::AddressWatch>,
    clock: &LabClock,
    deadline: tokio::time::Instant,
) -> (Vec<Indexed>, Vec<MeasuredWindow>) {
    let futs = s.expectations.iter().enumerate().filter(|(_, e)| e.applies_to(profile)).map(|(i, e)| async move {
        let o = Observed { s, lab, procs, targets, steps, addresses, clock, windows: Default::default() };
        let desc = e.description();
        let r = match tokio::time::timeout_at(deadline, live(&e.check, &o)).await {
            Ok(None) => return None,
            Ok(Some(r)) => r,
            Err(_) => {
                return Some(((i, undecided_result(desc, &format!("the trial's timeout of {:?} ran out while this was being checked", s.timeout))), Vec::new()))
            }
        };
        let (passed, observed) = match r {
            Ok(o) => (true, o),
            Err(o) => (false, o),
        };
        let windows = o
            .windows
            .into_inner()
            .into_iter()
            .map(|(what, d)| MeasuredWindow { expectation: i, description: desc.clone(), what, seconds: d.as_secs_f64() })
            .collect();
        Some(((i, result(passed, desc, observed)), windows))
    });
    let (results, windows): (Vec<Indexed>, Vec<Vec<MeasuredWindow>>) = futures::future::join_all(futs).await.into_iter().flatten().unzip();
    (results, windows.into_iter().flatten().collect())
}

/// Checks the output of services that have stopped: output and bind errors. `stopped_early`
/// says why the trial ended before its timeline did, if it did: a service it never started is
/// then undecided rather than failed.
pub fn evaluate_late(s: &Scenario, profile: Profile, procs: &BTreeMap<String, Process>, stopped_early: Option<&str>) -> Vec<Indexed> {
    s.expectations
        .iter()
        .enumerate()
        .filter(|(_, e)| e.applies_to(profile))
        .filter_map(|(i, e)| {
            let service = reads_complete_output(&e.check)?;
            if let (Some(why), false) = (stopped_early, procs.contains_key(service)) {
                return Some((i, undecided_result(e.description(), &format!("service {service} was never started: {why}"))));
            }
            let r = match &e.check {
                Check::Output(c) => output::check(c, procs),
                Check::BindError(c) => bind_error::check(c, procs),
                _ => return None,
            };
            let (passed, observed) = match r {
                Ok(o) => (true, o),
                Err(o) => (false, o),
            };
            Some((i, result(passed, e.description(), observed)))
        })
        .collect()
}

/// The `diagnosis` expectations on untraced services, checked against what their reports say
/// (the errno their output shows, the address it names and the lab's facts), with their index
/// in the file.
pub fn from_reports(s: &Scenario, profile: Profile, reports: &[ServiceReport]) -> Vec<Indexed> {
    s.expectations
        .iter()
        .enumerate()
        .filter(|(_, e)| e.applies_to(profile))
        .filter_map(|(i, e)| {
            let Check::Diagnosis(c) = &e.check else { return None };
            if !diagnosis::reads_output(s, c) {
                return None;
            }
            let (passed, observed) = diagnosis::from_report(c, reports);
            Some((i, ExpectationResult { description: e.description(), passed, decided: true, observed }))
        })
        .collect()
}
