//! `kind = "never-reaches"`: a client sends no request to a target in a window after a step.

use std::fmt;
use std::time::Duration;

use crate::scenario::decode::{Result, Table};
use crate::scenario::duration::format_duration;
use crate::scenario::expect::spec::{client, step, target_of, ClientRef, KindSpec};
use crate::scenario::known::Known;

/// No request from `client` (a host, or a service) reaches `target` after step `after`, for
/// `duration` or, without one, until the end of the timeline.
#[derive(Debug, Clone)]
pub struct NeverReachesCheck {
    /// The client: a host (every request from its addresses) or a service (the requests a
    /// built-in target attributed to it).
    pub client: ClientRef,
    /// The target it must not reach.
    pub target: String,
    /// The named step the window starts at.
    pub after: String,
    /// Length of the window; `None`: until the end of the timeline.
    pub duration: Option<Duration>,
}

impl KindSpec for NeverReachesCheck {
    const NAME: &'static str = "never-reaches";
    const KEYS: &'static [&'static str] = &["client", "target", "after", "for"];

    fn decode(t: &mut Table<'_, '_>, known: &Known) -> Result<Self> {
        let client = client(t, known)?;
        let target = target_of(t, "target", &client, known)?;
        let after = step(t, known)?;
        let duration = t.positive_duration("for")?;
        Ok(NeverReachesCheck { client, target, after, duration })
    }

    fn after(&self) -> Option<&str> {
        Some(&self.after)
    }
}

impl fmt::Display for NeverReachesCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let NeverReachesCheck { client, target, after, duration } = self;
        match duration {
            Some(d) => write!(f, "client {client} sends no request to {target} for {} after step {after}", format_duration(*d)),
            None => write!(f, "client {client} sends no request to {target} after step {after}, to the end of the timeline"),
        }
    }
}
