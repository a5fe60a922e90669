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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn time_scales_from_the_command_line() {
        assert_eq!(parse_time_scale("10"), Ok(10.0));
        assert_eq!(parse_time_scale("2.5"), Ok(2.5));
        assert_eq!(parse_time_scale("10x").unwrap_err(), "\"10x\" is not a number; expected a number from 1 to 1000, such as 10");
        assert!(parse_time_scale("0.5").unwrap_err().starts_with("0.5 is below 1; expected a number from 1 to 1000"));
        assert!(parse_time_scale("1001").unwrap_err().starts_with("1001 is above 1000"));
        assert!(parse_time_scale("NaN").unwrap_err().starts_with("NaN is not a finite number"));
    }

    fn trial(toml: &str) -> nslab_scenario::runner::PlannedTrial {
        let s = nslab_scenario::scenario::parse_str(Path::new("s.toml"), toml).unwrap();
        nslab_scenario::runner::PlannedTrial { name: "x/s/dual-stack".into(), scenario: std::sync::Arc::new(s), profile: Profile::DualStack }
    }

    #[test]
    fn a_forced_scale_is_refused_on_kernel_timers_only() {
        let plain = trial("description = \"d\"\n[hosts.a]\n");
        let dad = trial("description = \"d\"\n[hosts.a]\ndad = true\n");
        assert!(refuse_forced_scale(&[plain.clone(), dad.clone()], Some(1.0)).is_empty(), "scale 1 is real time: nothing to refuse");
        assert!(refuse_forced_scale(&[plain.clone(), dad.clone()], None).is_empty());
        assert_eq!(
            refuse_forced_scale(&[plain, dad], Some(10.0)),
            vec![
                "s.toml: --time-scale 10 cannot apply to this scenario: host \"a\" has dad = true: duplicate address detection runs on the kernel's timers, in real time, which a scale does not speed up; run it without --time-scale"
                    .to_string()
            ]
        );
    }
}
