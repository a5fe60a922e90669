//! `time_scale`: a trial run in scaled time, and the scenarios that cannot be: those whose
//! behaviour rests on timers of the kernel, which a scale does not reach.

use toml::de::DeValue;

use super::decode::{int_of, Result, Table, Val};
use super::hosts::HostDef;
use super::timeline::{Action, DnsFault, LinkState, Step};
use nslab::lab::segment::RouteState;

/// The largest scale accepted: beyond it a millisecond of the machine's own delay (scheduling, a
/// pipe read) is more than a second of program time, more than the windows scenarios measure
/// can bear.
pub const MAX_TIME_SCALE: f64 = 1000.0;

/// What a scale must be, for messages.
pub(crate) const SCALE_HINT: &str = "a number from 1 to 1000, such as 10 (programs see time pass that many times faster)";

/// Checks a scale given anywhere (the file, the command line): finite, from 1 to
/// [`MAX_TIME_SCALE`].
///
/// # Errors
/// A message saying what is wrong and what is expected.
pub fn check_time_scale(k: f64) -> std::result::Result<f64, String> {
    if !k.is_finite() {
        return Err(format!("{k} is not a finite number; expected {SCALE_HINT}"));
    }
    if k < 1.0 {
        return Err(format!("{k} is below 1; expected {SCALE_HINT}: a scale speeds time up, 1 is real time"));
    }
    if k > MAX_TIME_SCALE {
        return Err(format!(
            "{k} is above {MAX_TIME_SCALE}; expected {SCALE_HINT}: beyond it a millisecond of the machine's own delay is more than a second of program time"
        ));
    }
    Ok(k)
}

/// Reads `time_scale` of `t` (the scenario's top level), with where its value is written.
pub(crate) fn decode_time_scale(t: &mut Table<'_, '_>) -> Result<Option<(f64, std::ops::Range<usize>)>> {
    let Some(v) = t.take("time_scale") else { return Ok(None) };
    let span = v.span();
    let k = number(&v).ok_or_else(|| t.wrong("time_scale", &v, SCALE_HINT))?;
    let k = check_time_scale(k).map_err(|e| t.bad("time_scale", &span, e))?;
    Ok(Some((k, span)))
}

fn number(v: &Val<'_>) -> Option<f64> {
    match v.get_ref() {
        DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok().or_else(|| match f.as_str() {
            s if s.ends_with("nan") => Some(f64::NAN),
            s if s.starts_with('-') => Some(f64::NEG_INFINITY),
            _ => Some(f64::INFINITY),
        }),
        other => int_of(other).flatten().map(|n| n as f64),
    }
}

/// Why a scenario cannot run in scaled time, if it cannot: the first thing it declares whose
/// behaviour is timed by the kernel (DAD, router advertisements, TCP retransmissions into a
/// black hole or a down link, path MTU discovery) or by the harness in real time (link
/// conditions, which delay and drop packets on real timers). A scale would leave those in real
/// time while the program's own clock ran faster: the trial would measure a mixture.
pub fn real_time_only(
    hosts: &[HostDef],
    segments: &[super::segment::SegmentDef],
    services: &[super::service::ServiceDef],
    provisioned: bool,
    timeline: &[Step],
) -> Option<String> {
    const DAD: &str = "duplicate address detection runs on the kernel's timers, in real time";
    const LINK: &str = "the harness delays, limits and drops its packets on real timers";
    const TCP: &str = "a connection into it waits on the kernel's TCP retransmission timers, in real time";
    if provisioned {
        return Some("the segment has IPv6 provisioning ([segments.<name>.ipv6]): router advertisements, SLAAC lifetimes and duplicate address detection run on the kernel's timers, in real time".to_string());
    }
    for h in hosts {
        if h.dad {
            return Some(format!("host {:?} has dad = true: {DAD}", h.name));
        }
        if h.link.is_some() {
            return Some(format!("host {:?} has a link condition (link = ...): {LINK}", h.name));
        }
        if let Some(r) = &h.router {
            if [nslab::Family::V4, nslab::Family::V6].iter().any(|f| r.route(*f) == RouteState::Blackhole) {
                return Some(format!("router {:?} has a route that is a black hole: {TCP}", h.name));
            }
            if r.drops_packet_too_big() {
                return Some(format!(
                    "router {:?} drops packet-too-big messages: path MTU discovery times out on the kernel's TCP timers, in real time",
                    h.name
                ));
            }
        }
    }
    if let Some(s) = services.iter().find(|s| s.trace) {
        return Some(format!(
            "service {:?} has trace = true: strace stamps its calls in real time, and the diagnosis times a hung connect from those stamps",
            s.name
        ));
    }
    if let Some(s) = segments.iter().find(|s| s.mtu.is_some()) {
        return Some(format!("segment {:?} has an mtu: path MTU discovery runs on the kernel's timers, in real time", s.name));
    }
    for (i, step) in timeline.iter().enumerate() {
        let why = match &step.action {
            Action::AddAddress { dad: true, .. } | Action::AddAddress { hold: true, .. } | Action::ChangeAddress { dad: true, .. } => DAD,
            Action::CompleteDad { .. } | Action::ReleaseDad { .. } => DAD,
            Action::WaitAddress { .. } => "it waits for an address state the kernel's DAD and lifetime timers decide, in real time",
            Action::Ipv6Arrives { .. } | Action::Renumber { .. } | Action::StopAdvertising { .. } => {
                "router advertisements, SLAAC lifetimes and DAD run on real timers"
            }
            Action::LinkCondition { condition: Some(_), .. } => LINK,
            Action::Link { state: LinkState::Down, .. } => "a connection over a down link waits on the kernel's TCP retransmission timers, in real time",
            Action::Route { state: RouteState::Blackhole, .. } => TCP,
            Action::DnsFault { fault: DnsFault::Drop | DnsFault::TcpOnly | DnsFault::Delay(_), .. } => {
                "a query left unanswered is retried on the C library's resolver timeout, a wait inside glibc the warp does not reach: it stays real"
            }
            _ => continue,
        };
        return Some(format!("timeline step {} ({}): {why}", i + 1, step.action.kind()));
    }
    None
}

/// The error for a scale on a scenario [`real_time_only`] refuses.
pub(crate) fn refusal(why: &str) -> String {
    format!("a scale cannot apply to this scenario: {why}, which a scale does not speed up, so the trial would mix program time and real time; expected no time_scale here")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_from_1_to_1000() {
        assert_eq!(check_time_scale(1.0), Ok(1.0));
        assert_eq!(check_time_scale(10.0), Ok(10.0));
        assert_eq!(check_time_scale(1000.0), Ok(1000.0));
        assert_eq!(check_time_scale(0.5).unwrap_err(), "0.5 is below 1; expected a number from 1 to 1000, such as 10 (programs see time pass that many times faster): a scale speeds time up, 1 is real time");
        assert!(check_time_scale(1000.5).unwrap_err().starts_with("1000.5 is above 1000; expected a number from 1 to 1000"));
        assert!(check_time_scale(f64::NAN).unwrap_err().starts_with("NaN is not a finite number"));
        assert!(check_time_scale(f64::INFINITY).unwrap_err().starts_with("inf is not a finite number"));
    }
}
