//! What a trial holds while it runs ([`Trial`]), the allowances its phases get, and the
//! lookups every phase uses.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runner::checks;
use crate::runner::clock::LabClock;
use crate::runner::context::Facts;
use crate::runner::error::Error;
use crate::runner::report::ExpectationResult;
use crate::runner::stale::MarkKind;
use crate::runner::target::Target;
use crate::scenario::Scenario;
use nslab::addr::profile::Profile;
use nslab::host::handle::Host;
use nslab::host::process::Process;
use nslab::lab::build::Lab;

/// The default grace period of `stop` steps and of the final stop.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(2);

/// How long a program may take to show a first sign of life (a line of output) on top of its
/// `ready_timeout`: its `ready_timeout` counts from that first line, so a start-up slowed by a
/// busy machine (an interpreter or a JVM loading) is not charged to it. A program that prints
/// nothing before it is ready gets its `ready_timeout` plus this.
pub const STARTUP_ALLOWANCE: Duration = Duration::from_secs(30);

/// The part of the setup allowance for building the lab (namespaces, links, DNS server); each
/// service started before the timeline adds its `ready_timeout` and [`STARTUP_ALLOWANCE`].
pub const LAB_BUILD_ALLOWANCE: Duration = Duration::from_secs(60);

/// How long a trial's setup (the lab built, its targets and the services that start on their
/// own ready) may take: not part of the scenario's `timeout`, which covers its own timeline.
pub fn setup_allowance(s: &Scenario) -> Duration {
    // A build that is not cached yet runs in its own lab: another lab build, and its timeout.
    let builds = s.builds.iter().map(|b| LAB_BUILD_ALLOWANCE + b.timeout).sum::<Duration>();
    LAB_BUILD_ALLOWANCE + builds + s.services.iter().filter(|d| d.autostart).map(|d| d.ready_timeout + STARTUP_ALLOWANCE).sum::<Duration>()
}

/// What a trial holds while it runs: its lab, services, targets, what the timeline did and
/// the results so far.
pub(super) struct Trial<'a> {
    pub(super) scenario: &'a Scenario,
    pub(super) profile: Profile,
    pub(super) lab: Option<Lab>,
    pub(super) procs: BTreeMap<String, Process>,
    pub(super) targets: BTreeMap<String, Target>,
    /// DNS changes and stops of a target's service in the timeline: step name (or kind), the
    /// lab time it ended, and which of the two it was.
    pub(super) dns_steps: Vec<(String, Duration, MarkKind)>,
    /// CNAME swaps: (zone, record), step label, lab time, old and new target (first labels of
    /// the CNAME targets).
    pub(super) swaps: Vec<Swap>,
    /// Lab time at which each named step ended.
    pub(super) steps: BTreeMap<String, Duration>,
    /// Service start checks, in start order.
    pub(super) results: Vec<ExpectationResult>,
    /// Expectations checked while the lab ran, with their index in the file.
    pub(super) checked: Vec<checks::Indexed>,
    /// The windows those expectations measured.
    pub(super) windows: Vec<crate::runner::report::MeasuredWindow>,
    /// The listener report: what each service listened on after the timeline (nothing for
    /// those that had exited).
    pub(super) listeners: BTreeMap<String, Vec<String>>,
    /// The same, as the kernel reported the sockets.
    pub(super) sockets: BTreeMap<String, Vec<nslab::host::listeners::Listener>>,
    /// Whether each started service became ready.
    pub(super) started: BTreeMap<String, bool>,
    /// Each started service's rendered command line.
    pub(super) argv: BTreeMap<String, Vec<String>>,
    /// For each service that failed to start: what the kernel said right then about the
    /// addresses involved (present, tentative).
    pub(super) kernel_addrs: BTreeMap<String, Vec<(std::net::IpAddr, bool)>>,
    pub(super) facts: Option<Facts>,
    /// Where the lab's artifact directory goes.
    pub(super) artifacts_root: Option<PathBuf>,
    /// The attempt under a retrying runner, whose own directory the lab's goes in.
    pub(super) attempt: Option<crate::runner::attempt::Attempt>,
    /// When the lab was built and its services started (the end of setup).
    pub(super) setup_done: Option<Instant>,
    /// How long the setup took (lab build, targets, services started on their own).
    pub(super) setup_took: Option<Duration>,
    /// Start-up time of services the timeline started, in milliseconds: from each one's start
    /// to its first line of output (or to its readiness, for one that printed nothing), not
    /// charged to the scenario's timeout.
    pub(super) startup_ms: Arc<AtomicU64>,
    /// Whether a service is starting (its readiness wait, bounded by its own ready_timeout and
    /// the start-up allowance, has not ended): its start-up is charged when it ends.
    pub(super) starting: Arc<AtomicBool>,
    /// Figures of the link conditions the trial applied: those cleared in the timeline, then
    /// those still applied at the end.
    pub(super) link_figures: Vec<nslab::lab::link::LinkFigures>,
    /// The lab's hosts and started services, which built-in targets ask who made a connection.
    pub(super) clients: Option<Arc<crate::runner::attribution::Clients>>,
    /// The IPv6 provisioning of the lab's segment (`[segments.lan.ipv6]`).
    pub(super) provision: Option<nslab::lab::provision::Provisioner>,
    /// The scale the trial runs at (`--time-scale`, else the scenario's `time_scale`); `None`
    /// or 1: real time.
    pub(super) scale: Option<f64>,
    /// The lab clock, once the lab is built: real, or the program time of the trial's warp.
    pub(super) clock: Option<LabClock>,
}

/// One CNAME swap of the timeline.
pub(super) struct Swap {
    pub(super) key: (String, String),
    pub(super) step: String,
    pub(super) at: Duration,
    pub(super) old: String,
    pub(super) new: String,
}

impl<'a> Trial<'a> {
    pub(super) fn new(scenario: &'a Scenario, profile: Profile) -> Self {
        Trial {
            scenario,
            profile,
            lab: None,
            procs: BTreeMap::new(),
            targets: BTreeMap::new(),
            steps: BTreeMap::new(),
            dns_steps: Vec::new(),
            swaps: Vec::new(),
            results: Vec::new(),
            checked: Vec::new(),
            windows: Vec::new(),
            listeners: BTreeMap::new(),
            link_figures: Vec::new(),
            sockets: BTreeMap::new(),
            started: BTreeMap::new(),
            argv: BTreeMap::new(),
            kernel_addrs: BTreeMap::new(),
            facts: None,
            artifacts_root: None,
            attempt: None,
            setup_done: None,
            setup_took: None,
            startup_ms: Arc::new(AtomicU64::new(0)),
            starting: Arc::new(AtomicBool::new(false)),
            clients: None,
            provision: None,
            scale: scenario.time_scale,
            clock: None,
        }
    }

    pub(super) fn lab(&self) -> &Lab {
        self.lab.as_ref().expect("lab is built before it is used")
    }

    /// The lab clock (lab time: program time in a scaled trial).
    pub(super) fn clock(&self) -> &LabClock {
        self.clock.as_ref().expect("the clock is set when the lab is built")
    }

    pub(super) fn host(&self, name: &str) -> Result<Host, Error> {
        Ok(self.lab().host(name).cloned()?)
    }

    pub(super) fn proc(&self, service: &str) -> Result<Process, Error> {
        self.procs.get(service).cloned().ok_or_else(|| Error::NotRunning { service: service.to_owned() })
    }

    pub(super) fn provisioner(&self) -> Result<&nslab::lab::provision::Provisioner, Error> {
        self.provision.as_ref().ok_or(Error::NoProvision)
    }

    pub(super) fn dns(&self) -> Result<&nslab::dns::DnsServer, Error> {
        self.lab().dns().ok_or(Error::NoDns)
    }
}
