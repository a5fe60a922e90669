//! How many trials run at once: decided from the machine (cores, memory) and from what each
//! trial's programs use, so that `nslab run`, `nslab matrix`, the scenarios under `cargo test`
//! and the suite bench start no more than the machine can carry. `-j N` overrides it.
//!
//! A trial mostly waits (TTLs, timeouts, timelines), so several share a core; what it costs
//! comes from its programs, read from its services' commands: a JVM (java, javac) spends a
//! second or more of CPU and a few hundred MiB starting, PostgreSQL (initdb, postgres) more.
//! Each trial weighs [`LIGHT`] plus the weight of its heaviest program, and the trials running
//! at once weigh at most [`UNITS_PER_CORE`] per core, and fit in half the available memory.

use std::sync::{Condvar, Mutex};

use crate::runner::planned::PlannedTrial;
use crate::scenario::{Run, Scenario};

/// Weight units per core.
pub const UNITS_PER_CORE: u32 = 6;
/// The weight of a trial whose programs are light (python3, curl, gunicorn, nginx ...).
pub const LIGHT: u32 = 1;
/// Added for a trial that runs a JVM.
pub const JVM: u32 = 1;
/// Added for a trial that runs PostgreSQL.
pub const POSTGRES: u32 = 2;
/// Memory a light trial may use (its namespaces, DNS server, small programs), MiB.
const LIGHT_MIB: u64 = 64;
/// Memory a JVM or PostgreSQL adds, MiB.
const HEAVY_MIB: u64 = 256;

/// What a trial uses, read from its programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weight {
    /// Weight units (CPU).
    pub units: u32,
    /// Memory, MiB.
    pub mib: u64,
}

/// The weight of a trial of `s`.
pub fn weight(s: &Scenario) -> Weight {
    let words: Vec<String> = s
        .services
        .iter()
        .flat_map(|d| match &d.run {
            Run::Command(argv) => argv.iter().take(1).map(|t| t.source().to_string()).collect::<Vec<_>>(),
            Run::Shell(t) => t.source().split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|').map(str::to_string).collect(),
        })
        .map(|w| w.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    let has = |names: &[&str]| words.iter().any(|w| names.contains(&w.as_str()));
    let (extra, mib) = if has(&["postgres", "initdb", "pg_ctl"]) {
        (POSTGRES, HEAVY_MIB)
    } else if has(&["java", "javac"]) {
        (JVM, HEAVY_MIB)
    } else {
        (0, 0)
    };
    Weight { units: LIGHT + extra, mib: LIGHT_MIB + mib }
}

/// The machine's share for trials, and how it was decided.
#[derive(Debug, Clone)]
pub struct Admission {
    /// Weight units of the trials that may run at once (`u32::MAX` under `-j`).
    pub units: u32,
    /// Memory they may use, MiB (`u64::MAX` under `-j`).
    pub mib: u64,
    /// At most this many trials at once.
    pub jobs: usize,
    /// The line to print: what was chosen and from what.
    pub summary: String,
}

impl Admission {
    /// `jobs` trials at once whatever they weigh (`-j`).
    pub fn fixed(jobs: usize) -> Self {
        let jobs = jobs.max(1);
        Admission { units: u32::MAX, mib: u64::MAX, jobs, summary: format!("{jobs} trial(s) at once (-j)") }
    }

    /// Decided from this machine's cores and available memory, for `trials`.
    pub fn for_machine(trials: &[PlannedTrial]) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        Self::decide(cores, mem_available_mib(), trials.iter().map(|t| weight(&t.scenario)))
    }

    fn decide(cores: u32, avail_mib: Option<u64>, weights: impl Iterator<Item = Weight>) -> Self {
        let units = cores.max(1) * UNITS_PER_CORE;
        let mib = avail_mib.map_or(u64::MAX, |m| m / 2);
        let ws: Vec<Weight> = weights.collect();
        // As many as fit when the lightest go first: the count bound for the light ones.
        let jobs = (units / LIGHT).max(1) as usize;
        let jobs = jobs.min((mib / LIGHT_MIB).max(1) as usize).min(ws.len().max(1));
        let heavy = ws.iter().filter(|w| w.units > LIGHT).count();
        let mem = avail_mib.map_or("memory unknown".to_string(), |m| format!("{:.1} GiB available", m as f64 / 1024.0));
        let summary = format!(
            "up to {jobs} trial(s) at once: {cores} core(s) x {UNITS_PER_CORE} weight units and half of {mem}; a trial weighs {LIGHT}, {} with a JVM, {} with PostgreSQL ({heavy} of {} here); -j N overrides",
            LIGHT + JVM,
            LIGHT + POSTGRES,
            ws.len()
        );
        Admission { units, mib, jobs, summary }
    }

    /// A trial's share, clamped so that a trial heavier than the whole budget still runs (alone).
    pub fn share(&self, w: Weight) -> (u32, u64) {
        (w.units.min(self.units), w.mib.min(self.mib))
    }
}

/// MemAvailable from /proc/meminfo, MiB.
fn mem_available_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib / 1024)
}

/// A blocking gate for threads that each run one trial (the `cargo test` harness): a trial
/// enters with its share and waits while the others running hold too much.
#[derive(Debug)]
pub struct Gate {
    admission: Admission,
    used: Mutex<(u32, u64)>,
    freed: Condvar,
    freed_async: tokio::sync::Notify,
}

/// A trial's place through a [`Gate`], given back when dropped.
#[derive(Debug)]
pub struct Pass<'a> {
    gate: &'a Gate,
    share: (u32, u64),
}

impl Gate {
    /// A gate for `admission`.
    pub fn new(admission: Admission) -> Self {
        Gate { admission, used: Mutex::new((0, 0)), freed: Condvar::new(), freed_async: tokio::sync::Notify::new() }
    }

    /// The admission it applies.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    fn fits(&self, used: (u32, u64), share: (u32, u64)) -> bool {
        // An empty gate always admits: a trial heavier than the budget runs alone.
        (used.0 == 0 && used.1 == 0) || (used.0.saturating_add(share.0) <= self.admission.units && used.1.saturating_add(share.1) <= self.admission.mib)
    }

    /// Takes the share of a trial of weight `w` if it fits now.
    pub fn try_enter(&self, w: Weight) -> Option<Pass<'_>> {
        let share = self.admission.share(w);
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if !self.fits(*used, share) {
            return None;
        }
        used.0 += share.0;
        used.1 += share.1;
        Some(Pass { gate: self, share })
    }

    /// Waits (blocking the thread) until a trial of weight `w` fits, and takes its share.
    pub fn enter(&self, w: Weight) -> Pass<'_> {
        let share = self.admission.share(w);
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while !self.fits(*used, share) {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        used.0 += share.0;
        used.1 += share.1;
        Pass { gate: self, share }
    }

    /// Waits (asynchronously) until a trial of weight `w` fits, and takes its share.
    pub async fn enter_async(&self, w: Weight) -> Pass<'_> {
        loop {
            let freed = self.freed_async.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(p) = self.try_enter(w) {
                return p;
            }
            freed.await;
        }
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut used = self.gate.used.lock().unwrap_or_else(|e| e.into_inner());
        used.0 -= self.share.0;
        used.1 -= self.share.1;
        self.gate.freed.notify_all();
        self.gate.freed_async.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cores_carry_twelve_light_trials_or_six_with_a_jvm() {
        let light = Weight { units: LIGHT, mib: LIGHT_MIB };
        let a = Admission::decide(2, Some(8 * 1024), std::iter::repeat_n(light, 40));
        assert_eq!((a.units, a.jobs), (12, 12));
        let jvm = Weight { units: LIGHT + JVM, mib: LIGHT_MIB + HEAVY_MIB };
        assert_eq!(a.share(jvm), (2, 320));
        assert!(a.summary.starts_with("up to 12 trial(s) at once: 2 core(s) x 6 weight units and half of 8.0 GiB available"), "{}", a.summary);
    }

    #[test]
    fn memory_bounds_the_count_and_few_trials_need_few_slots() {
        let light = Weight { units: LIGHT, mib: LIGHT_MIB };
        assert_eq!(Admission::decide(8, Some(512), std::iter::repeat_n(light, 40)).jobs, 4);
        assert_eq!(Admission::decide(8, Some(8192), std::iter::repeat_n(light, 3)).jobs, 3);
    }

    #[test]
    fn the_gate_holds_a_heavy_trial_until_there_is_room() {
        let gate = Gate::new(Admission::decide(1, None, std::iter::empty()));
        let heavy = Weight { units: 5, mib: 0 };
        let light = Weight { units: 1, mib: 0 };
        let first = gate.try_enter(heavy).expect("an empty gate admits");
        assert!(gate.try_enter(heavy).is_none(), "5 + 5 units on a 6-unit budget");
        let l = gate.try_enter(light).expect("5 + 1 units fit");
        drop(first);
        drop(l);
        let big = Weight { units: 50, mib: 0 };
        let alone = gate.try_enter(big).expect("heavier than the budget: runs alone");
        assert!(gate.try_enter(light).is_none());
        drop(alone);
    }
}
