//! Staleness after a DNS change: how long a client kept reaching the old target, why (pinned
//! connection or cached answer, cross-checked with the DNS query log), and the picture of it.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use svg::node::element::{Line, Rectangle, Text};
use svg::Document;

use crate::dns::QueryLog;
use crate::runner::target::{RequestRecord, Target};
use crate::scenario::StaleCause;

/// What one client did around one DNS change.
#[derive(Debug, Clone)]
pub struct Staleness {
    /// The change's lab time.
    pub step_at: Duration,
    /// Its last request to the old target after the change, relative to the change.
    pub last_old: Option<Duration>,
    /// Its first request to the new target after the change, relative to the change.
    pub first_new: Option<Duration>,
    /// Requests to the old target after the change on connections opened before it.
    pub pinned: usize,
    /// Connections opened to the old target after the change.
    pub fresh_conns_to_old: usize,
    /// DNS queries the client made after the change (up to its last request to the old target).
    pub queries_after: usize,
    /// The last answer the client got before the change: its first record, as logged (with TTL).
    pub answer_before: Option<String>,
    /// The cause.
    pub cause: StaleCause,
}

impl Staleness {
    /// How long after the change the client still reached the old target (zero if never).
    pub fn window(&self) -> Duration {
        self.last_old.unwrap_or_default()
    }

    /// Whether the client reached the new target after its last request to the old one.
    pub fn moved(&self) -> bool {
        match (self.first_new, self.last_old) {
            (Some(n), Some(o)) => n >= o,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

impl fmt::Display for Staleness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.last_old {
            Some(d) => write!(f, "last request to the old target {} after the change", secs(d))?,
            None => f.write_str("no request to the old target after the change")?,
        }
        match self.first_new {
            Some(d) => write!(f, ", first to the new one after {}", secs(d))?,
            None => f.write_str(", none to the new one")?,
        }
        write!(
            f,
            "; {} request(s) on connections opened before the change, {} new connection(s) to the old target; {} DNS quer{} after the change",
            self.pinned,
            self.fresh_conns_to_old,
            self.queries_after,
            if self.queries_after == 1 { "y" } else { "ies" }
        )?;
        if let Some(a) = &self.answer_before {
            write!(f, "; answer before the change: {a}")?;
        }
        write!(f, "; cause: {}", self.cause.name())
    }
}

/// Analyses one client (its addresses) around a change at `step_at`.
pub fn analyse(client: &[IpAddr], step_at: Duration, old: &Target, new: &Target, dns: Option<&QueryLog>) -> Staleness {
    let old_reqs: Vec<RequestRecord> = old.requests_from(client).into_iter().filter(|r| r.at() > step_at).collect();
    let new_reqs: Vec<RequestRecord> = new.requests_from(client).into_iter().filter(|r| r.at() > step_at).collect();
    let last_old = old_reqs.iter().map(|r| r.at()).max();
    let first_new = new_reqs.iter().map(|r| r.at()).min();
    let pinned = old_reqs.iter().filter(|r| r.conn_at() <= step_at).count();
    let mut fresh: Vec<u64> = old_reqs.iter().filter(|r| r.conn_at() > step_at).map(|r| r.conn).collect();
    fresh.dedup();
    let (mut queries_after, mut answer_before) = (0, None);
    if let Some(log) = dns {
        let mine: Vec<_> = log.entries().into_iter().filter(|e| client.contains(&e.client.ip().to_canonical())).collect();
        let until = last_old.unwrap_or(Duration::MAX);
        queries_after = mine.iter().filter(|e| e.at > step_at && e.at <= until).count();
        answer_before = mine.iter().rev().find(|e| e.at <= step_at && !e.answers.is_empty()).map(|e| e.answers[0].clone());
    }
    // The last stale request decides: was it on an old connection, or a new one to the old address?
    let last = old_reqs.iter().max_by_key(|r| r.at_us);
    let cause = match last {
        None => StaleCause::None,
        Some(r) if r.conn == 0 => StaleCause::Unknown,
        Some(r) if r.conn_at() <= step_at => StaleCause::ConnectionPinning,
        Some(_) => StaleCause::ResolverCache,
    };
    Staleness {
        step_at,
        last_old: last_old.map(|t| t - step_at),
        first_new: first_new.map(|t| t - step_at),
        pinned,
        fresh_conns_to_old: fresh.len(),
        queries_after,
        answer_before,
        cause,
    }
}

/// A DNS change to mark on the picture: step name, lab time, TTL of the answer before it.
pub struct Mark {
    /// The step's name.
    pub name: String,
    /// Its lab time.
    pub at: Duration,
    /// The TTL clients had been given, when known (shaded after the change).
    pub ttl: Option<Duration>,
}

const COLORS: [&str; 6] = ["#3266c8", "#2e9e4f", "#d0782a", "#8a4fc2", "#c23b5a", "#4f8f9a"];

/// Draws requests per interval to each target over time, new connections as ticks, each DNS
/// change as a line with its TTL window shaded, and writes the SVG to `path`.
///
/// # Errors
/// File errors.
pub fn write_svg(path: &Path, targets: &[Target], marks: &[Mark], end: Duration) -> std::io::Result<()> {
    let (left, width, lane, top) = (110.0_f64, 860.0_f64, 90.0_f64, 40.0_f64);
    let span = end.as_secs_f64().max(1.0);
    let bin = (span / 120.0).max(0.25);
    let nbins = (span / bin).ceil() as usize + 1;
    let x = |t: f64| left + t / span * width;
    let height = top + lane * targets.len() as f64 + 50.0;
    let mut doc = Document::new()
        .set("viewBox", (0, 0, (left + width + 30.0) as i64, height as i64))
        .set("font-family", "sans-serif")
        .set("font-size", 12);
    doc = doc.add(Rectangle::new().set("width", "100%").set("height", "100%").set("fill", "white"));
    for m in marks {
        if let Some(ttl) = m.ttl {
            let w = (x(m.at.as_secs_f64() + ttl.as_secs_f64()).min(left + width) - x(m.at.as_secs_f64())).max(0.0);
            doc = doc.add(Rectangle::new().set("x", x(m.at.as_secs_f64())).set("y", top - 10.0).set("width", w).set("height", lane * targets.len() as f64 + 10.0).set("fill", "#f2e6a8").set("fill-opacity", 0.6));
        }
    }
    for (i, t) in targets.iter().enumerate() {
        let y0 = top + lane * (i as f64 + 1.0) - 10.0;
        let color = COLORS[i % COLORS.len()];
        let reqs = t.requests();
        let mut counts = vec![0usize; nbins];
        for r in &reqs {
            let b = ((r.at().as_secs_f64() / bin) as usize).min(nbins - 1);
            counts[b] += 1;
        }
        let max = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        doc = doc.add(Text::new(format!("{} ({} req)", t.def.name, reqs.len())).set("x", 8).set("y", y0 - lane / 2.0 + 10.0).set("fill", color));
        doc = doc.add(Line::new().set("x1", left).set("x2", left + width).set("y1", y0).set("y2", y0).set("stroke", "#999"));
        for (b, c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            let h = *c as f64 / max * (lane - 30.0);
            doc = doc.add(Rectangle::new().set("x", x(b as f64 * bin)).set("y", y0 - h).set("width", (bin / span * width).max(1.0)).set("height", h).set("fill", color));
        }
        let mut seen = std::collections::BTreeSet::new();
        for r in &reqs {
            if seen.insert(r.conn) {
                let cx = x(r.conn_at().as_secs_f64());
                doc = doc.add(Line::new().set("x1", cx).set("x2", cx).set("y1", y0 + 2.0).set("y2", y0 + 9.0).set("stroke", "black"));
            }
        }
    }
    for m in marks {
        let mx = x(m.at.as_secs_f64());
        doc = doc.add(Line::new().set("x1", mx).set("x2", mx).set("y1", top - 15.0).set("y2", top + lane * targets.len() as f64).set("stroke", "#c00").set("stroke-dasharray", "4 3"));
        doc = doc.add(Text::new(m.name.clone()).set("x", mx + 3.0).set("y", top - 18.0).set("fill", "#c00"));
    }
    let axis_y = top + lane * targets.len() as f64 + 20.0;
    let step = if span > 60.0 { 10.0 } else if span > 20.0 { 5.0 } else { 1.0 };
    let mut t = 0.0;
    while t <= span {
        doc = doc.add(Text::new(format!("{t:.0}s")).set("x", x(t)).set("y", axis_y).set("text-anchor", "middle").set("fill", "#555"));
        t += step;
    }
    doc = doc.add(
        Text::new(format!("requests per {bin:.2} s to each target; ticks: new connections; dashed: DNS change; shaded: TTL given before it"))
            .set("x", left)
            .set("y", axis_y + 20.0)
            .set("fill", "#555"),
    );
    svg::save(path, &doc)
}

/// The TTL in a logged answer record (`name. TTL IN TYPE data`).
pub fn ttl_of(answer: &str) -> Option<Duration> {
    answer.split_whitespace().nth(1)?.parse::<u64>().ok().map(Duration::from_secs)
}
