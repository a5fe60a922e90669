//! `kind = "no-line"`: no line matching a regex appears for a while after a step.

use std::fmt;
use std::time::Duration;

use crate::scenario::decode::{Result, Table};
use crate::scenario::duration::format_duration;
use crate::scenario::expect::spec::{required_regex, service, step, KindSpec};
use crate::scenario::known::Known;

/// No line matching a regex appears for `duration` after a step.
#[derive(Debug, Clone)]
pub struct NoLineCheck {
    /// The service.
    pub service: String,
    /// The line.
    pub matches: regex::Regex,
    /// The named step the window starts at.
    pub after: String,
    /// Length of the window.
    pub duration: Duration,
}

impl KindSpec for NoLineCheck {
    const NAME: &'static str = "no-line";
    const KEYS: &'static [&'static str] = &["service", "matches", "after", "for"];

    fn decode(t: &mut Table<'_, '_>, known: &Known) -> Result<Self> {
        let service = service(t, known)?;
        let matches = required_regex(t, "matches")?;
        let after = step(t, known)?;
        let duration = t.positive_duration("for")?.ok_or_else(|| t.missing("for", "\"20s\""))?;
        Ok(NoLineCheck { service, matches, after, duration })
    }

    fn after(&self) -> Option<&str> {
        Some(&self.after)
    }
}

impl fmt::Display for NoLineCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let NoLineCheck { service, matches, after, duration } = self;
        write!(f, "service {service} prints no line matching {:?} for {} after step {after}", matches.as_str(), format_duration(*duration))
    }
}
