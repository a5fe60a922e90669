//! Argument values several subcommands take.

use nslab::Profile;

/// A time scale (`--time-scale 10`): a number from 1 to 1000.
pub(crate) fn parse_time_scale(s: &str) -> Result<f64, String> {
    let k: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number; expected a number from 1 to 1000, such as 10"))?;
    nslab_scenario::scenario::check_time_scale(k)
}

/// Refuses a `--time-scale` above 1 on scenarios that cannot run scaled: one line per
/// scenario file, saying why (its real-time-only part).
pub(crate) fn refuse_forced_scale(trials: &[nslab_scenario::runner::PlannedTrial], forced: Option<f64>) -> Vec<String> {
    let Some(k) = forced.filter(|k| *k > 1.0) else { return Vec::new() };
    let mut seen = std::collections::BTreeSet::new();
    trials
        .iter()
        .filter_map(|t| {
            let why = t.scenario.real_time_only.as_ref()?;
            seen.insert(t.scenario.path.clone()).then(|| {
                format!(
                    "{}: --time-scale {k} cannot apply to this scenario: {why}, which a scale does not speed up; run it without --time-scale",
                    t.scenario.path.display()
                )
            })
        })
        .collect()
}

/// A profile's name (`--profile ipv6-only`), with the list of names when it is none.
pub(crate) fn parse_profile(s: &str) -> Result<Profile, String> {
    s.parse::<Profile>().map_err(|e| e.to_string())
}
