//! One trial to run: a scenario in one profile, as the suite and its admission see it.

use std::sync::Arc;

use crate::scenario::Scenario;
use nslab::addr::profile::Profile;

/// One trial to run: a scenario in one profile.
#[derive(Debug, Clone)]
pub struct PlannedTrial {
    /// `<folder>/<scenario>/<profile>`.
    pub name: String,
    /// The scenario.
    pub scenario: Arc<Scenario>,
    /// The profile.
    pub profile: Profile,
}
