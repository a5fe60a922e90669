//! A scenario's lab kept running for a person (`nslab up`): built, then driven step by step.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::artifacts;
use super::state::{Trial, STOP_GRACE};
use crate::runner::error::Error;
use crate::scenario::{Action, Scenario, Step, When};
use nslab::addr::profile::Profile;
use nslab::host::process::Process;
use nslab::lab::build::Lab;

/// A scenario's lab kept running for a person rather than checked: built with its DNS,
/// targets and services (those that start on their own), then driven step by step (a
/// timeline, or commands typed by hand). What `nslab up` holds.
pub struct Session {
    trial: Trial<'static>,
}

impl Session {
    /// Builds `scenario`'s lab in `profile` under `artifacts_root` and starts its targets and
    /// services. On failure the lab is torn down (its artifacts kept) and the error says why.
    ///
    /// # Errors
    /// Why the lab, a target or a service could not start ([`Error::Kept`] when evidence was kept).
    pub async fn start(scenario: &'static Scenario, profile: Profile, artifacts_root: PathBuf) -> Result<Session, Error> {
        let mut trial = Trial::new(scenario, profile);
        // A lab kept for a person runs in real time: its timeline is driven by hand.
        trial.scale = None;
        if let Err(e) = trial.setup(Some(artifacts_root)).await {
            if let Some(lab) = trial.lab.take() {
                for p in trial.procs.values() {
                    p.stop(STOP_GRACE).await;
                }
                lab.keep_artifacts();
                if let Ok(Some(dir)) = lab.teardown().await {
                    return Err(Error::Kept { error: Box::new(e), dir });
                }
            }
            return Err(e);
        }
        Ok(Session { trial })
    }

    /// The running lab.
    pub fn lab(&self) -> &Lab {
        self.trial.lab()
    }

    /// The scenario it runs.
    pub fn scenario(&self) -> &'static Scenario {
        self.trial.scenario
    }

    /// When the named step ended, in lab time (as the lab's DNS query log stamps), once played.
    pub fn step_end(&self, name: &str) -> Option<std::time::Duration> {
        self.trial.steps.get(name).copied()
    }

    /// Its services started so far, by name.
    pub fn services(&self) -> &BTreeMap<String, Process> {
        &self.trial.procs
    }

    /// Plays step `i` of the scenario's timeline (waiting for nothing first).
    ///
    /// # Errors
    /// [`Error::NoStep`], or [`Error::Step`] with why the step failed.
    pub async fn step(&mut self, i: usize) -> Result<(), Error> {
        let step = self.trial.scenario.timeline.get(i).ok_or(Error::NoStep { number: i + 1 })?;
        self.trial.step_and_record(i, step).await.map(drop)
    }

    /// Runs one action, as a timeline step would (a DNS change, a fault, a link going down).
    ///
    /// # Errors
    /// Why the action failed.
    pub async fn act(&mut self, action: Action) -> Result<(), Error> {
        let step = Step { name: None, when: When::AfterPrevious(Duration::ZERO), action, profiles: None };
        self.trial.step(&step).await
    }

    /// Stops every service, writes the targets' logs and timeline, and tears the lab down,
    /// keeping its artifacts. Returns where they are.
    ///
    /// # Errors
    /// [`Error::Teardown`].
    pub async fn finish(mut self) -> Result<Option<PathBuf>, Error> {
        for p in self.trial.procs.values() {
            p.stop(STOP_GRACE).await;
        }
        let Some(lab) = self.trial.lab.take() else { return Ok(None) };
        if let Some(c) = lab.link_capture() {
            c.settle().await;
        }
        let picture = artifacts::write_targets(&lab, self.trial.clock(), &self.trial.targets, &self.trial.dns_steps);
        lab.keep_artifacts();
        artifacts::write_picture(lab.artifacts(), picture);
        lab.teardown().await.map_err(|e| Error::Teardown { source: Box::new(e) })
    }
}
