//! Reading `[[expect]]` tables: the keys every kind shares (`kind`, `name`, `profiles`), then
//! the kind's own decoder.

use std::str::FromStr;

use super::expectation::Expectation;
use super::kind::{Check, Kind};
use crate::scenario::decode::{Doc, Result, Str, Table, Val};
use crate::scenario::known::Known;
use nslab::addr::profile::Profile;

const COMMON_KEYS: &[&str] = &["kind", "name", "profiles"];

/// Reads `[[expect]]`.
pub(crate) fn decode_expectations(doc: &Doc<'_>, items: Vec<Val<'_>>, known: &Known) -> Result<Vec<Expectation>> {
    let kinds = Kind::names();
    let mut out = Vec::new();
    for (i, v) in items.into_iter().enumerate() {
        let mut t = Table::new(doc, format!("expectation {}", i + 1), v, "a table written [[expect]]")?;
        let kind = t.req_str("kind", &format!("\"<one of {kinds}>\""))?;
        let k = Kind::from_name(&kind.value)
            .ok_or_else(|| t.bad("kind", &kind.span, format!("{:?} is not a kind of expectation; expected one of {kinds}", kind.value)))?;
        t.what = format!("expectation {} ({})", i + 1, kind.value);
        let allowed: Vec<&str> = COMMON_KEYS.iter().chain(k.keys()).copied().collect();
        t.check_keys(&allowed)?;
        let name = t.str("name")?.map(|s| s.value);
        let profiles = match t.str_list("profiles", "an array of profile names such as [\"ipv6-only\"]")? {
            None => None,
            Some((span, list)) => {
                if list.is_empty() {
                    return Err(t.bad("profiles", &span, "the array is empty; expected at least one profile of the scenario"));
                }
                Some(list.iter().map(|s| profile_of_scenario(&t, s, known)).collect::<Result<Vec<_>>>()?)
            }
        };
        let after_span = t.key_span("after");
        known.take_service_refs();
        let check = k.decode(&mut t, known)?;
        known.check_service_profiles(&t, profiles.as_deref(), &|list| format!("profiles = [{list}] on the expectation"))?;
        check_step_profiles(&t, after_span.as_ref(), &check, profiles.as_deref(), known)?;
        out.push(Expectation { name, profiles, check });
    }
    Ok(out)
}

/// An expectation timed from a step that runs only in some profiles must be limited to those.
fn check_step_profiles(t: &Table<'_, '_>, span: Option<&std::ops::Range<usize>>, check: &Check, mine: Option<&[Profile]>, known: &Known) -> Result<()> {
    let Some(after) = check.after() else { return Ok(()) };
    let Some(step_ps) = known.step_profiles.get(after) else { return Ok(()) };
    let mine = mine.unwrap_or(&known.profiles);
    if let Some(p) = mine.iter().find(|p| !step_ps.contains(p)) {
        let names: Vec<&str> = step_ps.iter().map(|p| p.name()).collect();
        let what = format!(
            "step {after:?} runs only in {}, but {} is checked in {p} too; expected profiles = [{}] on the expectation (or the profile on the step)",
            names.join(", "),
            t.what,
            names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
        );
        return Err(match span {
            Some(sp) => t.doc.err(sp, what),
            None => t.doc.err(&t.span, what),
        });
    }
    Ok(())
}

pub(crate) fn profile_of_scenario(t: &Table<'_, '_>, s: &Str, known: &Known) -> Result<Profile> {
    let p = Profile::from_str(&s.value).map_err(|e| t.bad("profiles", &s.span, e))?;
    if !known.profiles.contains(&p) {
        let have: Vec<&str> = known.profiles.iter().map(|p| p.name()).collect();
        return Err(t.bad("profiles", &s.span, format!("profile {:?} is not among the scenario's profiles; expected one of {}", s.value, have.join(", "))));
    }
    Ok(p)
}
