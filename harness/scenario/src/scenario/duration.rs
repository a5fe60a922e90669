//! Durations as scenario files write them: `"500ms"`, `"30s"`, `"2m"`, `"1m30s"`, `"1.5s"`.

use std::time::Duration;

/// What a duration must look like, for error messages.
pub(crate) const DURATION_HINT: &str = "a duration such as \"500ms\", \"30s\", \"2m\" or \"1m30s\"";

/// Parses a duration: one or more `NUMBER UNIT` parts (units `ms`, `s`, `m`, `h`; the number
/// may have a fractional part), added up. Spaces between parts are allowed.
///
/// # Errors
/// A message saying what is wrong with the text; the caller adds where it is.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("{text:?} is not a duration ({why}); expected {DURATION_HINT}");
    let s = text.trim();
    if s.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut rest = s;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() {
            return Err(bad("a number must come before each unit"));
        }
        let tail = tail.trim_start();
        let unit_len = tail.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(bad("the unit is missing")),
            _ => return Err(bad(&format!("unknown unit {unit:?}; units are ms, s, m, h"))),
        };
        let value: f64 = num.parse().map_err(|_| bad(&format!("{num:?} is not a number")))?;
        let part = Duration::try_from_secs_f64(value * scale).map_err(|_| bad("it is too long"))?;
        total = total.checked_add(part).ok_or_else(|| bad("it is too long"))?;
        if total > Duration::from_secs(7 * 24 * 3600) {
            return Err(bad("it is longer than a week"));
        }
        rest = tail.trim_start();
    }
    Ok(total)
}

/// Formats a duration the way scenario files write it (`"1.5s"`, `"250ms"`, `"2m"`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 && !d.is_zero() {
        return format!("{}us", d.as_micros());
    }
    if ms % 60_000 == 0 && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else if ms > 1000 {
        format!("{}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_compounds() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1m 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn refusals_say_what_is_expected() {
        assert_eq!(
            parse_duration("30").unwrap_err(),
            "\"30\" is not a duration (the unit is missing); expected a duration such as \"500ms\", \"30s\", \"2m\" or \"1m30s\""
        );
        assert!(parse_duration("5 seconds").unwrap_err().contains("unknown unit \"seconds\""));
        assert!(parse_duration("").unwrap_err().contains("it is empty"));
        assert!(parse_duration("s").unwrap_err().contains("a number must come before"));
        assert!(parse_duration("1..2s").unwrap_err().contains("\"1..2\" is not a number"));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("9999999999999999999999h").is_err());
        assert!(parse_duration("200h").unwrap_err().contains("longer than a week"));
    }

    #[test]
    fn formats_round_trip() {
        for s in ["250ms", "1.5s", "30s", "2m"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
