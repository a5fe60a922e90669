//! What every kind of expectation provides ([`KindSpec`]), and the readers kinds share.

use std::fmt;

use crate::scenario::decode::{Result, Table};
use crate::scenario::known::{refer, regex, Known};

/// A kind of expectation: its name, its keys and its decoder, next to its model. The list of
/// kinds (`kind.rs`) is made from these, so a kind cannot be named without keys or decoded
/// without a name.
pub(crate) trait KindSpec: Sized + fmt::Display {
    /// The name `kind = "..."` gives it.
    const NAME: &'static str;
    /// The keys it allows besides `kind`, `name` and `profiles`.
    const KEYS: &'static [&'static str];
    /// Reads the check from its table (whose keys are already checked against [`Self::KEYS`]).
    fn decode(t: &mut Table<'_, '_>, known: &Known) -> Result<Self>;
    /// The named step its window starts at, if it has one.
    fn after(&self) -> Option<&str> {
        None
    }
}

/// `service = "<a declared service>"`, required.
pub(crate) fn service(t: &mut Table<'_, '_>, known: &Known) -> Result<String> {
    let s = t.req_str("service", "\"<a declared service>\"")?;
    crate::scenario::known::refer_service(t, "service", &s, known)
}

/// `after = "<the name of a timeline step>"`, required.
pub(crate) fn step(t: &mut Table<'_, '_>, known: &Known) -> Result<String> {
    let s = t.req_str("after", "\"<the name of a timeline step>\"")?;
    refer(t, "after", &s, "step", &known.steps)
}

/// A required regex under `key`.
pub(crate) fn required_regex(t: &mut Table<'_, '_>, key: &str) -> Result<regex::Regex> {
    let s = t.req_str(key, "\"<regex>\"")?;
    regex(t, key, &s)
}
