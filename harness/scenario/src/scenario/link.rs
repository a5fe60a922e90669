//! A host's `link`: the condition of what it sends on its lab interface (loss, burst, delay,
//! jitter, rate, family), as a table or the preset name `"slow-ipv6"`.

use std::ops::Range;

use toml::de::DeValue;

use super::decode::{Result, Table};
use nslab::lab::link::{LinkCondition, LinkFamily};

/// Keys of a link table.
pub(crate) const LINK_KEYS: &[&str] = &["loss", "burst", "delay", "jitter", "rate", "family"];
/// Preset names a `link` may be.
pub(crate) const PRESETS: &[&str] = &["slow-ipv6"];

/// Reads `link` of `t` (a host table), when present.
pub(crate) fn decode_link(t: &mut Table<'_, '_>) -> Result<Option<LinkCondition>> {
    let doc = t.doc;
    let Some(v) = t.take("link") else { return Ok(None) };
    let span = v.span();
    if let DeValue::String(s) = v.get_ref() {
        return match s.as_ref() {
            "slow-ipv6" => Ok(Some(LinkCondition::slow_ipv6())),
            other => Err(doc.err(&span, format!("link in {} is the preset {other:?}, which does not exist; expected one of {}", t.what, PRESETS.join(", ")))),
        };
    }
    let what = format!("the link of {}", t.what);
    let lt = Table::new(doc, what, v, "a table such as { delay = \"300ms\", family = \"ipv6\" } or the preset \"slow-ipv6\"")?;
    decode_condition(lt).map(Some)
}

/// Reads the condition keys of a table (a host's `link`, a `link-condition` step); other keys
/// must be checked by the caller.
pub(crate) fn decode_condition(mut lt: Table<'_, '_>) -> Result<LinkCondition> {
    lt.check_keys(LINK_KEYS)?;
    condition_keys(&mut lt)
}

/// Takes the condition keys out of `lt`, leaving any other key.
pub(crate) fn condition_keys(lt: &mut Table<'_, '_>) -> Result<LinkCondition> {
    let mut c = LinkCondition::new();
    if let Some(s) = lt.str("loss")? {
        c = c.loss(percent(&s.value).map_err(|e| lt.bad("loss", &s.span, e))?);
    }
    if let Some(n) = lt.int("burst", 1..=10_000)? {
        if c.loss_ppm == 0 {
            return Err(lt.bad("burst", &lt.span.clone(), "a loss burst needs a loss; expected loss = \"20%\" with it"));
        }
        c = c.burst(n as u32);
    }
    if let Some(d) = lt.duration("delay")? {
        c = c.delay(d);
    }
    if let Some(j) = lt.duration("jitter")? {
        c = c.jitter(j);
    }
    if let Some(s) = lt.str("rate")? {
        c = c.rate(rate(&s.value).map_err(|e| lt.bad("rate", &s.span, e))?);
    }
    if let Some(s) = lt.str("family")? {
        c = c.family(family(&s.value, &s.span).map_err(|e| lt.bad("family", &s.span, e))?);
    }
    Ok(c)
}

/// `"20%"`, `"0.5%"` as a fraction.
fn percent(text: &str) -> std::result::Result<f64, String> {
    let bad = || format!("{text:?} is not a loss; expected a percentage from \"0%\" to \"100%\" such as \"20%\" or \"0.5%\"");
    let n: f64 = text.strip_suffix('%').ok_or_else(bad)?.trim().parse().map_err(|_| bad())?;
    if !(0.0..=100.0).contains(&n) {
        return Err(bad());
    }
    Ok(n / 100.0)
}

/// `"10mbit"`, `"512kbit"`, `"1gbit"`, `"64000bit"` as bits per second.
fn rate(text: &str) -> std::result::Result<u64, String> {
    let bad = || format!("{text:?} is not a rate; expected a number of bits per second with a unit such as \"10mbit\", \"512kbit\" or \"1gbit\"");
    let t = text.trim().to_ascii_lowercase();
    let (num, mult) = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)]
        .iter()
        .find_map(|(u, m)| t.strip_suffix(u).map(|n| (n.trim().to_string(), *m)))
        .ok_or_else(bad)?;
    let n: f64 = num.parse().map_err(|_| bad())?;
    let bps = n * mult;
    if !(8000.0..=100e9).contains(&bps) {
        return Err(format!("{text:?} is out of range; expected a rate from \"8kbit\" to \"100gbit\""));
    }
    Ok(bps.round() as u64)
}

fn family(text: &str, _span: &Range<usize>) -> std::result::Result<LinkFamily, String> {
    match text {
        "ipv4" => Ok(LinkFamily::Ipv4),
        "ipv6" => Ok(LinkFamily::Ipv6),
        "both" => Ok(LinkFamily::Both),
        other => Err(format!("{other:?} is not a family; expected \"ipv4\", \"ipv6\" or \"both\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_rates_and_families() {
        assert_eq!(percent("20%"), Ok(0.2));
        assert_eq!(percent("0.5%"), Ok(0.005));
        assert!(percent("120%").unwrap_err().contains("from \"0%\" to \"100%\""));
        assert!(percent("20").is_err());
        assert_eq!(rate("10mbit"), Ok(10_000_000));
        assert_eq!(rate("512kbit"), Ok(512_000));
        assert!(rate("fast").unwrap_err().contains("not a rate"));
        assert_eq!(family("ipv6", &(0..0)), Ok(LinkFamily::Ipv6));
        assert!(family("ipv5", &(0..0)).is_err());
    }
}
