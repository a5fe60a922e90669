//! Evaluates `dns-queries`: the queries one host sent for a name in a window after a step, from
//! the lab's DNS traffic log; how many, and the gaps between them.

use std::time::Duration;

use super::observed::{step_time, Observed};
use crate::scenario::{Asked, Asker, DnsQueriesCheck, WindowEnd};
use nslab::dns::TrafficEntry;

pub(super) async fn check(c: &DnsQueriesCheck, o: &Observed<'_>) -> Result<String, String> {
    let start = step_time(o.steps, &c.after)?;
    let end = match &c.end {
        WindowEnd::For(d) => start + *d,
        WindowEnd::Until(step) => step_time(o.steps, step)?,
    };
    if end < start {
        return Err(format!("the window is empty: step {:?} ended {:.2}s before step {:?}", end_name(c), (start - end).as_secs_f64(), c.after));
    }
    let host = match &c.from {
        Asker::Host(h) => h.clone(),
        Asker::Service(s) => o.s.service(s).map(|d| d.host.clone()).ok_or_else(|| format!("service {s} is not declared"))?,
    };
    let tap = o.lab.dns_traffic().ok_or("the lab has no DNS traffic log (its tap is off)")?;
    // The window is the program's: wait for its end on the lab's clock, then for the tap to
    // have read every packet sent until then.
    o.clock.sleep_until(end).await;
    tap.settle().await;
    judge(c, &host, &o.clock.traffic(tap.log().entries()), start, end)
}

fn end_name(c: &DnsQueriesCheck) -> &str {
    match &c.end {
        WindowEnd::Until(s) => s,
        WindowEnd::For(_) => "",
    }
}

/// Whether `e` is a query of the check's (sent by `host`, for the name and type, to the server).
fn matches(c: &DnsQueriesCheck, host: &str, e: &TrafficEntry) -> bool {
    !e.response
        && !e.forwarded
        && e.host == host
        && e.name == c.name
        && c.qtype.is_none_or(|t| e.qtype == Some(t))
        && match &c.to {
            None => true,
            Some(Asked::Host(h)) => e.to_host.as_deref() == Some(h.as_str()),
            Some(Asked::Addr(ip)) => e.dst.ip() == *ip,
        }
}

/// `+1.23s`: a time relative to the window's start.
fn rel(at: Duration, start: Duration) -> String {
    if at >= start {
        format!("+{:.2}s", (at - start).as_secs_f64())
    } else {
        format!("-{:.2}s", (start - at).as_secs_f64())
    }
}

/// One query and what came back: `+0.41s udp to dns (192.0.2.53:53) A -> NOERROR [app.example.test. 5 IN CNAME blue.example.test.]`.
fn describe(q: &TrafficEntry, all: &[TrafficEntry], start: Duration) -> String {
    let to = q.to_host.as_deref().map_or_else(|| q.dst.to_string(), |h| format!("{h} ({})", q.dst));
    let qtype = q.qtype.map(|t| t.to_string()).unwrap_or_default();
    let answer = all.iter().find(|r| r.response && r.dst == q.src && r.src == q.dst && r.id == q.id && r.transport == q.transport && r.query_at == Some(q.at));
    let back = match answer {
        None => "no answer".to_string(),
        Some(r) if r.answers.is_empty() => format!("{} after {:.0} ms", r.rcode_name(), (r.at - q.at).as_secs_f64() * 1000.0),
        Some(r) => format!(
            "{} [{}] after {:.0} ms",
            r.rcode_name(),
            r.answers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            (r.at - q.at).as_secs_f64() * 1000.0
        ),
    };
    format!("{} {} to {to} {qtype} -> {back}", rel(q.at, start), q.transport)
}

/// The verdict on the queries of `host` in `[start, end)` (lab time); the observed text lists
/// each query with its answer and TTLs, and the gaps between them.
pub(super) fn judge(c: &DnsQueriesCheck, host: &str, all: &[TrafficEntry], start: Duration, end: Duration) -> Result<String, String> {
    let ours: Vec<&TrafficEntry> = all.iter().filter(|e| matches(c, host, e)).collect();
    let inside: Vec<&TrafficEntry> = ours.iter().copied().filter(|e| e.at >= start && e.at < end).collect();
    let n = inside.len() as u64;
    let gaps: Vec<Duration> = inside.windows(2).map(|w| w[1].at - w[0].at).collect();
    let mut text = format!(
        "{n} quer{} from host {host} in the {:.2}s window [{:.2}s, {:.2}s] of lab time",
        if n == 1 { "y" } else { "ies" },
        (end - start).as_secs_f64(),
        start.as_secs_f64(),
        end.as_secs_f64()
    );
    for q in &inside {
        text.push_str(&format!("\n  {}", describe(q, all, start)));
    }
    if !gaps.is_empty() {
        text.push_str(&format!("\n  gaps: {}", gaps.iter().map(|g| format!("{:.2}s", g.as_secs_f64())).collect::<Vec<_>>().join(", ")));
    }
    // The neighbours of the window, for a count of 0 or a window placed wrong.
    if let Some(b) = ours.iter().rev().find(|e| e.at < start) {
        text.push_str(&format!("\n  the last before the window: {}", describe(b, all, start)));
    }
    if let Some(a) = ours.iter().find(|e| e.at >= end) {
        text.push_str(&format!("\n  the first after the window: {}", describe(a, all, start)));
    }
    let mut failed = Vec::new();
    if let Some(k) = c.count.filter(|k| *k != n) {
        failed.push(format!("expected exactly {k}"));
    }
    if let Some(l) = c.at_least.filter(|l| n < *l) {
        failed.push(format!("expected at least {l}"));
    }
    if let Some(m) = c.at_most.filter(|m| n > *m) {
        failed.push(format!("expected at most {m}"));
    }
    if let Some(every) = c.every {
        let (lo, hi) = (every.saturating_sub(c.tolerance), every + c.tolerance);
        let off: Vec<String> =
            gaps.iter().enumerate().filter(|(_, g)| **g < lo || **g > hi).map(|(i, g)| format!("gap {} is {:.2}s", i + 1, g.as_secs_f64())).collect();
        if gaps.is_empty() {
            failed.push(format!("expected queries every {:.2}s, but {n} quer{} make no gap", every.as_secs_f64(), if n == 1 { "y" } else { "ies" }));
        } else if !off.is_empty() {
            failed.push(format!(
                "expected every gap within {:.2}s..{:.2}s ({:.2}s ± {:.2}s): {}",
                lo.as_secs_f64(),
                hi.as_secs_f64(),
                every.as_secs_f64(),
                c.tolerance.as_secs_f64(),
                off.join(", ")
            ));
        }
    }
    if failed.is_empty() {
        Ok(text)
    } else {
        Err(format!("{}; {text}", failed.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nslab::dns::{RecordType, ResponseCode, Transport, WireAnswer};

    fn check(count: Option<u64>, at_least: Option<u64>, at_most: Option<u64>, every: Option<Duration>) -> DnsQueriesCheck {
        DnsQueriesCheck {
            from: Asker::Host("client".into()),
            to: Some(Asked::Host("dns".into())),
            name: "app.example.test.".into(),
            qtype: Some(RecordType::A),
            after: "swap".into(),
            end: WindowEnd::For(Duration::from_secs(5)),
            count,
            at_least,
            at_most,
            every,
            tolerance: every.map_or(Duration::ZERO, |e| e / 4),
        }
    }

    fn q(ms: u64, id: u16) -> TrafficEntry {
        TrafficEntry {
            at: Duration::from_millis(ms),
            host: "client".into(),
            src: "192.0.2.3:40000".parse().unwrap(),
            dst: "192.0.2.53:53".parse().unwrap(),
            to_host: Some("dns".into()),
            transport: Transport::Udp,
            forwarded: false,
            id,
            response: false,
            name: "app.example.test.".into(),
            qtype: Some(RecordType::A),
            rcode: None,
            truncated: false,
            answers: vec![],
            query_at: None,
        }
    }

    fn r(of: &TrafficEntry, ms: u64, ttl: u32) -> TrafficEntry {
        TrafficEntry {
            at: Duration::from_millis(ms),
            host: "dns".into(),
            src: of.dst,
            dst: of.src,
            to_host: Some("client".into()),
            response: true,
            rcode: Some(ResponseCode::NoError),
            answers: vec![WireAnswer { name: "app.example.test.".into(), rtype: "CNAME".into(), ttl, data: "blue.example.test.".into() }],
            query_at: Some(of.at),
            ..of.clone()
        }
    }

    /// Queries at 10.0, 11.0, 12.0, 13.1 s, answered 2 ms later; one before the window (9.5 s).
    fn log() -> Vec<TrafficEntry> {
        let mut v = Vec::new();
        for (i, ms) in [9_500u64, 10_000, 11_000, 12_000, 13_100].into_iter().enumerate() {
            let query = q(ms, i as u16);
            v.push(r(&query, ms + 2, 5));
            v.push(query);
        }
        v.sort_by_key(|e| e.at);
        v
    }

    const START: Duration = Duration::from_secs(10);
    const END: Duration = Duration::from_secs(15);

    #[test]
    fn counts_the_queries_in_the_window_and_lists_them_with_answers_and_ttls() {
        let ok = judge(&check(Some(4), None, None, None), "client", &log(), START, END).unwrap();
        assert!(ok.starts_with("4 queries from host client in the 5.00s window [10.00s, 15.00s]"), "{ok}");
        assert!(ok.contains("+1.00s udp to dns (192.0.2.53:53) A -> NOERROR [app.example.test. 5 IN CNAME blue.example.test.] after 2 ms"), "{ok}");
        assert!(ok.contains("gaps: 1.00s, 1.00s, 1.10s"), "{ok}");
        assert!(ok.contains("the last before the window: -0.50s"), "{ok}");
        let bad = judge(&check(Some(3), None, None, None), "client", &log(), START, END).unwrap_err();
        assert!(bad.starts_with("expected exactly 3; 4 queries"), "{bad}");
        assert!(judge(&check(None, Some(5), None, None), "client", &log(), START, END).unwrap_err().starts_with("expected at least 5;"));
        assert!(judge(&check(None, None, Some(3), None), "client", &log(), START, END).unwrap_err().starts_with("expected at most 3;"));
        assert!(judge(&check(None, Some(4), Some(4), None), "client", &log(), START, END).is_ok());
    }

    #[test]
    fn a_count_of_zero_passes_on_a_quiet_window_and_names_the_neighbours() {
        let quiet = judge(&check(Some(0), None, None, None), "client", &log(), Duration::from_millis(13_200), Duration::from_secs(20)).unwrap();
        assert!(quiet.starts_with("0 queries from host client"), "{quiet}");
        assert!(quiet.contains("the last before the window: -0.10s"), "{quiet}");
        assert!(judge(&check(Some(0), None, None, None), "client", &log(), START, END).is_err());
    }

    #[test]
    fn every_checks_each_gap_against_the_tolerance() {
        let c = check(None, None, None, Some(Duration::from_secs(1)));
        assert!(judge(&c, "client", &log(), START, END).is_ok(), "gaps 1.0, 1.0, 1.1 within 1s ± 0.25s");
        let mut tight = c.clone();
        tight.tolerance = Duration::from_millis(50);
        let bad = judge(&tight, "client", &log(), START, END).unwrap_err();
        assert!(bad.starts_with("expected every gap within 0.95s..1.05s (1.00s ± 0.05s): gap 3 is 1.10s;"), "{bad}");
        let one = judge(&c, "client", &log(), START, Duration::from_millis(10_500)).unwrap_err();
        assert!(one.starts_with("expected queries every 1.00s, but 1 query make no gap"), "{one}");
    }

    #[test]
    fn other_hosts_names_types_servers_responses_and_forwarded_packets_do_not_count() {
        let mut v = log();
        let mut other = q(10_500, 90);
        other.host = "blue".into();
        let mut aaaa = q(10_600, 91);
        aaaa.qtype = Some(RecordType::AAAA);
        let mut elsewhere = q(10_700, 92);
        elsewhere.to_host = None;
        elsewhere.dst = "198.51.100.1:53".parse().unwrap();
        let mut fwd = q(10_800, 93);
        fwd.forwarded = true;
        let mut name = q(10_900, 94);
        name.name = "other.example.test.".into();
        v.extend([other, aaaa, elsewhere, fwd, name]);
        v.sort_by_key(|e| e.at);
        assert!(judge(&check(Some(4), None, None, None), "client", &v, START, END).is_ok());
        let mut by_addr = check(Some(1), None, None, None);
        by_addr.to = Some(Asked::Addr("198.51.100.1".parse().unwrap()));
        by_addr.qtype = None;
        assert!(judge(&by_addr, "client", &v, START, END).is_ok());
        let mut any_type = check(Some(5), None, None, None);
        any_type.qtype = None;
        assert!(judge(&any_type, "client", &v, START, END).is_ok(), "A and AAAA to dns");
    }
}
