//! One `[[expect]]` table: a check, its name and the profiles it applies to.

use super::kind::Check;
use nslab::addr::profile::Profile;

/// One expectation.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// A name for reports, when given.
    pub name: Option<String>,
    /// Only checked in these profiles; `None`: in every profile of the scenario.
    pub profiles: Option<Vec<Profile>>,
    /// What is checked.
    pub check: Check,
}

impl Expectation {
    /// Whether it is checked in a trial with `profile`.
    pub fn applies_to(&self, profile: Profile) -> bool {
        self.profiles.as_ref().is_none_or(|ps| ps.contains(&profile))
    }

    /// How reports name it: its `name`, or a sentence made from the check.
    pub fn description(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.check.to_string())
    }
}
