//! Many trials: collecting them from paths, running them concurrently, and reporting progress.

use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;

use crate::runner::admission::{weight, Admission, Gate};
use crate::runner::planned::PlannedTrial;
use crate::runner::report::TrialResult;
use crate::runner::trial::{run_trial, RunOptions};
use crate::scenario::{self, ScenarioFile};
use nslab::addr::profile::Profile;

/// Loads every scenario at `paths` (files or folders) and expands it into trials, restricted to
/// `profiles` when not empty. Returns the trials and every load error (each `FILE:LINE:COL: ...`).
pub fn collect(paths: &[PathBuf], profiles: &[Profile]) -> (Vec<PlannedTrial>, Vec<String>) {
    let mut trials = Vec::new();
    let mut errors = Vec::new();
    let mut files: Vec<ScenarioFile> = Vec::new();
    for p in paths {
        match scenario::discover(p) {
            Ok(f) => files.extend(f),
            Err(e) => errors.push(e.to_string()),
        }
    }
    files.sort();
    files.dedup();
    for f in files {
        match scenario::load(&f.path) {
            Ok(s) => {
                let s = Arc::new(s);
                for p in s.trials().iter().filter(|p| profiles.is_empty() || profiles.contains(p)) {
                    trials.push(PlannedTrial { name: f.trial_name(*p), scenario: s.clone(), profile: *p });
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    (trials, errors)
}

/// Runs `trials`, at most `jobs` at once whatever they weigh (`-j`), calling `on_done` as each
/// finishes; returns the results in the order of `trials`. Cancelling `opts.cancel` stops the
/// run as [`run_admitted_until`] says; the trials never started are then absent.
pub async fn run_all(trials: &[PlannedTrial], opts: &RunOptions, jobs: usize, on_done: impl FnMut(&TrialResult)) -> Vec<TrialResult> {
    run_admitted_until(trials, opts, &Admission::fixed(jobs), on_done).await.0
}

/// [`run_all`], also returning the names of the trials not started because `opts.cancel` was
/// cancelled first (see [`run_admitted_until`]).
pub async fn run_all_until(trials: &[PlannedTrial], opts: &RunOptions, jobs: usize, on_done: impl FnMut(&TrialResult)) -> (Vec<TrialResult>, Vec<String>) {
    run_admitted_until(trials, opts, &Admission::fixed(jobs), on_done).await
}

/// Runs `trials` as `admission` allows (see [`crate::runner::admission`]), calling `on_done` as
/// each finishes; returns the results in the order of `trials`. Trials mostly wait (on
/// timelines and programs), so running several at once keeps the suite's wall time near its
/// slowest trial; the admission keeps them to what the machine can carry.
pub async fn run_admitted(trials: &[PlannedTrial], opts: &RunOptions, admission: &Admission, on_done: impl FnMut(&TrialResult)) -> Vec<TrialResult> {
    run_admitted_until(trials, opts, admission, on_done).await.0
}

/// [`run_admitted`], also returning the names of the trials not started because `opts.cancel`
/// was cancelled first (empty when it was not). Once it is cancelled no trial starts (one
/// waiting for admission included); the running ones are stopped (their services stopped, their
/// labs torn down, artifacts kept) and reported
/// [`Outcome::Interrupted`](crate::runner::Outcome::Interrupted) with what they had decided.
/// Cancel it from a signal handler (`nslab run` does, on SIGINT and SIGTERM) or from a caller's
/// own code.
pub async fn run_admitted_until(
    trials: &[PlannedTrial],
    opts: &RunOptions,
    admission: &Admission,
    mut on_done: impl FnMut(&TrialResult),
) -> (Vec<TrialResult>, Vec<String>) {
    let gate = Gate::new(admission.clone());
    let gate = &gate;
    let mut out: Vec<Option<TrialResult>> = vec![None; trials.len()];
    let mut stream = futures::stream::iter(longest_first(trials).into_iter().map(|i| (i, &trials[i])))
        // Nothing new starts once the run is cancelled: the stream of trials ends there.
        .take_while(|_| futures::future::ready(!opts.cancel.is_cancelled()))
        .map(|(i, t)| async move {
            let _pass = tokio::select! {
                pass = gate.enter_async(weight(&t.scenario)) => pass,
                () = opts.cancel.cancelled() => return (i, None),
            };
            (i, Some(run_trial(&t.name, &t.scenario, t.profile, opts).await))
        })
        .buffer_unordered(admission.jobs.max(1));
    while let Some((i, r)) = stream.next().await {
        if let Some(r) = r {
            on_done(&r);
            out[i] = Some(r);
        }
    }
    let not_started = trials.iter().zip(&out).filter(|(_, r)| r.is_none()).map(|(t, _)| t.name.clone()).collect();
    (out.into_iter().flatten().collect(), not_started)
}

/// The order to start `trials` in: longest expected first (by the scenario's timeout, the bound
/// its author gave), so that with fewer slots than trials a long one never starts last and the
/// suite's wall time stays near its slowest trial. Ties keep file order.
fn longest_first(trials: &[PlannedTrial]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..trials.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(trials[i].scenario.timeout));
    order
}
