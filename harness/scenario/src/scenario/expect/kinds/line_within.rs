//! `kind = "line-within"`: a line matching a regex appears within a window after a step.

use std::fmt;
use std::time::Duration;

use crate::scenario::decode::{Result, Table};
use crate::scenario::duration::format_duration;
use crate::scenario::expect::spec::{required_regex, service, step, KindSpec};
use crate::scenario::known::Known;

/// A line matching a regex appears within `within` after a step (and not before `min`).
#[derive(Debug, Clone)]
pub struct LineWithinCheck {
    /// The service.
    pub service: String,
    /// The line.
    pub matches: regex::Regex,
    /// The named step the window starts at (when it ended).
    pub after: String,
    /// End of the window.
    pub within: Duration,
    /// Start of the window; `None`: right at the step.
    pub min: Option<Duration>,
}

impl KindSpec for LineWithinCheck {
    const NAME: &'static str = "line-within";
    const KEYS: &'static [&'static str] = &["service", "matches", "after", "within", "min"];

    fn decode(t: &mut Table<'_, '_>, known: &Known) -> Result<Self> {
        let service = service(t, known)?;
        let matches = required_regex(t, "matches")?;
        let after = step(t, known)?;
        let within_span = t.key_span("within");
        let within = t.positive_duration("within")?.ok_or_else(|| t.missing("within", "\"6s\""))?;
        let min = t.duration("min")?;
        if let (Some(m), Some(span)) = (min, within_span) {
            if m >= within {
                return Err(t.bad("within", &span, format!("{} is not after min = {}; expected within > min", format_duration(within), format_duration(m))));
            }
        }
        Ok(LineWithinCheck { service, matches, after, within, min })
    }

    fn after(&self) -> Option<&str> {
        Some(&self.after)
    }
}

impl fmt::Display for LineWithinCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let LineWithinCheck { service, matches, after, within, min } = self;
        write!(f, "service {service} prints a line matching {:?} ", matches.as_str())?;
        match min {
            Some(m) => write!(f, "between {} and {} after step {after}", format_duration(*m), format_duration(*within)),
            None => write!(f, "within {} after step {after}", format_duration(*within)),
        }
    }
}
