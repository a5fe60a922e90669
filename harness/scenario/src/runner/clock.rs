//! The lab clock of a trial: lab time, in which every `at`, window and figure of a scenario is
//! written, and its conversion from the real stamps the library records.
//!
//! In a trial at scale 1 lab time is real time since the lab's epoch, the library's own stamps.
//! In a scaled trial (`time_scale`, `--time-scale`) lab time is program time: the time its
//! warped programs see, since the warp's origin (taken right after the lab is built, before any
//! target or service starts). A real stamp `t` is then `(t - origin) * k`, a wait of `d` lab time
//! lasts `d / k` real, and every observation (a line of output, a DNS query, a request a target
//! received, a process start or exit) is converted here before a check or a report reads it.
//! Timeouts that guard against a hang (a trial's `timeout`, `ready_timeout`, a step's `timeout`)
//! are about the machine, not the program: they stay real, and are not read through this clock.

use std::time::{Duration, Instant};

use nslab::dns::QueryLogEntry;
use nslab::host::output::Line;
use nslab::host::process::{Exit, Process};
use nslab::TimeWarp;

/// A trial's lab clock (cheap to clone).
#[derive(Debug, Clone)]
pub struct LabClock {
    epoch: Instant,
    warp: Option<TimeWarp>,
}

impl LabClock {
    /// Real lab time: the library's stamps as they are (scale 1).
    pub fn real(epoch: Instant) -> Self {
        Self { epoch, warp: None }
    }

    /// Program time of `warp` (its origin after `epoch`).
    pub fn warped(epoch: Instant, warp: TimeWarp) -> Self {
        Self { epoch, warp: Some(warp) }
    }

    /// The warp of a scaled trial.
    pub fn warp(&self) -> Option<&TimeWarp> {
        self.warp.as_ref()
    }

    /// The scale: program seconds per real second (1 when not scaled).
    pub fn scale(&self) -> f64 {
        self.warp.as_ref().map_or(1.0, TimeWarp::scale)
    }

    /// Lab time now.
    pub fn now(&self) -> Duration {
        match &self.warp {
            Some(w) => w.program_now(),
            None => self.epoch.elapsed(),
        }
    }

    /// Lab time of a stamp the library recorded (real time since the lab's epoch).
    pub fn of(&self, stamp: Duration) -> Duration {
        match &self.warp {
            Some(w) => w.program_at(self.epoch + stamp),
            None => stamp,
        }
    }

    /// The real duration `d` of lab time lasts.
    pub fn real_for(&self, d: Duration) -> Duration {
        match &self.warp {
            Some(w) => w.to_real(d),
            None => d,
        }
    }

    /// Lab time of a real instant (zero before a warp's origin).
    pub fn at(&self, real: Instant) -> Duration {
        match &self.warp {
            Some(w) => w.program_at(real),
            None => real.saturating_duration_since(self.epoch),
        }
    }

    /// Waits `d` of lab time.
    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(self.real_for(d)).await
    }

    /// Waits until lab time `at` (at once if it has passed).
    pub async fn sleep_until(&self, at: Duration) {
        let now = self.now();
        if at > now {
            self.sleep(at - now).await;
        }
    }

    /// A line of output with its lab time.
    pub fn line(&self, l: Line) -> Line {
        Line { at: self.of(l.at), ..l }
    }

    /// A process's lines of output so far, in lab time.
    pub fn lines(&self, p: &Process) -> Vec<Line> {
        let mut v = p.lines();
        if self.warp.is_some() {
            for l in &mut v {
                l.at = self.of(l.at);
            }
        }
        v
    }

    /// When a process was started (its spawn returned), in lab time.
    pub fn started_at(&self, p: &Process) -> Duration {
        self.of(p.started_at())
    }

    /// When the harness began to start it, in lab time.
    pub fn begun_at(&self, p: &Process) -> Duration {
        self.of(p.begun_at())
    }

    /// How a process ended, its time in lab time.
    pub fn exit(&self, p: &Process) -> Option<Exit> {
        p.exit().map(|e| Exit { at: self.of(e.at), ..e })
    }

    /// The DNS server's query log, in lab time.
    pub fn queries(&self, log: &nslab::dns::QueryLog) -> Vec<QueryLogEntry> {
        let mut v = log.entries();
        if self.warp.is_some() {
            for e in &mut v {
                e.at = self.of(e.at);
            }
        }
        v
    }

    /// The DNS messages the lab's tap saw, in lab time.
    pub fn traffic(&self, mut v: Vec<nslab::dns::TrafficEntry>) -> Vec<nslab::dns::TrafficEntry> {
        if self.warp.is_some() {
            for e in &mut v {
                e.at = self.of(e.at);
                e.query_at = e.query_at.map(|q| self.of(q));
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_stamps_become_program_time_at_scale() {
        let epoch = Instant::now();
        let warp = TimeWarp::new(10.0).unwrap();
        let origin = warp.origin().duration_since(epoch);
        let c = LabClock::warped(epoch, warp);
        assert_eq!(c.scale(), 10.0);
        // 300 ms of real time after the origin is 3 s of program time.
        assert_eq!(c.of(origin + Duration::from_millis(300)), Duration::from_secs(3));
        // Before the origin: zero.
        assert_eq!(c.of(Duration::ZERO), Duration::ZERO);
        assert_eq!(c.real_for(Duration::from_secs(30)), Duration::from_secs(3));
        let l = c.line(Line { at: origin + Duration::from_millis(2500), stream: nslab::host::output::Stream::Stdout, text: "green".into() });
        assert_eq!(l.at, Duration::from_secs(25));
    }

    #[test]
    fn at_scale_1_stamps_are_unchanged() {
        let epoch = Instant::now();
        let c = LabClock::real(epoch);
        assert_eq!(c.scale(), 1.0);
        assert_eq!(c.of(Duration::from_millis(1234)), Duration::from_millis(1234));
        assert_eq!(c.real_for(Duration::from_secs(30)), Duration::from_secs(30));
        assert_eq!(c.at(epoch + Duration::from_secs(2)), Duration::from_secs(2));
    }
}
