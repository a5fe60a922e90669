//! Link conditions without netem: loss, delay with jitter and rate limits on a host's lab
//! interface, built from what kernels without `sch_netem` have, and the figures each mechanism
//! achieved.
//!
//! - Random loss: an nftables rule in the host's namespace, `numgen random mod 1000000 < N drop`,
//!   on the interface's `netdev` egress hook (silent to the sender, as a lossy wire is), counted by
//!   nft counters.
//! - Delay, jitter and bursty loss: packets sent by an `iptables`/`ip6tables` `NFQUEUE` rule
//!   (nft's own `queue` statement is missing on such kernels) to a netfilter queue whose socket is
//!   opened inside the host's namespace and served by one harness thread, which holds each packet
//!   and gives its ACCEPT verdict when its time comes (or DROP, for bursty loss decided by a
//!   Gilbert model). Order is kept unless reordering is asked. The thread records the time it held
//!   each packet.
//! - Rate: a tbf qdisc on the interface (both families), or an htb qdisc with one limited class
//!   chosen by a u32 filter on the ethertype (one family), read back from the kernel's statistics.
//!
//! Every rule, qdisc and socket lives in the host's namespace and goes with it; nothing of the
//! machine's own firewall or qdiscs changes. Direction: egress of the host's lab interface (what the
//! host sends); to condition both directions, condition both ends.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::host::handle::Host;
use crate::host::process::Command;

/// The nftables table of a host's conditions (in the host's own namespace).
const NFT_TABLE: &str = "nslab_link";
/// The netfilter queue number (queues are per namespace).
const QUEUE_NUM: u16 = 0;
/// How many packets the kernel keeps for the queue before it drops (a delay of 1 s at 10k pps).
const QUEUE_MAX_LEN: u32 = 16384;
/// How often the queue thread looks for packets and due verdicts (the socket is read without
/// blocking: the queue crate does not expose its descriptor to poll on).
const TICK: Duration = Duration::from_micros(200);
/// Most held-time samples kept for the percentiles.
const MAX_SAMPLES: usize = 1 << 20;
/// How long a `tc`/`nft`/`iptables` run may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// Which IP family a condition applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkFamily {
    /// IPv4 packets only.
    Ipv4,
    /// IPv6 packets only.
    Ipv6,
    /// Both families (the default).
    #[default]
    Both,
}

impl LinkFamily {
    /// The name used in scenario files and reports (`ipv4`, `ipv6`, `both`).
    pub fn as_str(self) -> &'static str {
        match self {
            LinkFamily::Ipv4 => "ipv4",
            LinkFamily::Ipv6 => "ipv6",
            LinkFamily::Both => "both",
        }
    }

    fn v4(self) -> bool {
        self != LinkFamily::Ipv6
    }

    fn v6(self) -> bool {
        self != LinkFamily::Ipv4
    }
}

/// What a link should do to the packets a host sends on its lab interface. Built with
/// [`LinkCondition::new`] and its setters, or [`LinkCondition::slow_ipv6`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LinkCondition {
    /// Packets lost, in parts per million.
    pub loss_ppm: u32,
    /// Mean length of a loss burst in packets (Gilbert model); `None`: independent losses.
    pub burst: Option<u32>,
    /// Time each packet is held.
    pub delay: Duration,
    /// Uniform spread around `delay`: each packet is held `delay ± jitter`.
    pub jitter: Duration,
    /// Whether jitter may reorder packets (default: order kept, a packet never leaves before the
    /// one ahead of it).
    pub reorder: bool,
    /// Rate limit in bits per second.
    pub rate_bps: Option<u64>,
    /// Which family is conditioned.
    pub family: LinkFamily,
}

impl LinkCondition {
    /// No condition: every packet passes untouched.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `slow-ipv6` preset: IPv6 packets held 300 ms, IPv4 untouched.
    pub fn slow_ipv6() -> Self {
        Self::new().delay(Duration::from_millis(300)).family(LinkFamily::Ipv6)
    }

    /// Loses this fraction of packets (0.0 to 1.0).
    pub fn loss(mut self, fraction: f64) -> Self {
        self.loss_ppm = (fraction.clamp(0.0, 1.0) * 1e6).round() as u32;
        self
    }

    /// Loses packets in bursts of this mean length (packets), keeping [`LinkCondition::loss`]
    /// as the overall fraction.
    pub fn burst(mut self, mean_len: u32) -> Self {
        self.burst = Some(mean_len.max(1));
        self
    }

    /// Holds each packet this long.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// Spreads the delay uniformly by ± this much.
    pub fn jitter(mut self, j: Duration) -> Self {
        self.jitter = j;
        self
    }

    /// Lets jitter reorder packets.
    pub fn reorder(mut self, on: bool) -> Self {
        self.reorder = on;
        self
    }

    /// Limits the rate to this many bits per second.
    pub fn rate(mut self, bits_per_second: u64) -> Self {
        self.rate_bps = Some(bits_per_second);
        self
    }

    /// Applies the condition to one family only (default both).
    pub fn family(mut self, f: LinkFamily) -> Self {
        self.family = f;
        self
    }

    /// Asked loss as a fraction.
    pub fn loss_fraction(&self) -> f64 {
        f64::from(self.loss_ppm) / 1e6
    }

    /// Whether the netfilter queue serves this condition (delay, jitter or bursty loss).
    fn needs_queue(&self) -> bool {
        !self.delay.is_zero() || !self.jitter.is_zero() || (self.burst.is_some() && self.loss_ppm > 0)
    }

    /// Whether the nftables rule does the loss.
    fn nft_loss(&self) -> bool {
        self.loss_ppm > 0 && self.burst.is_none()
    }

    /// A short description for logs and reports: `loss 20% delay 300ms ±10ms rate 1000000bit/s ipv6`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.loss_ppm > 0 {
            parts.push(format!("loss {}%", self.loss_fraction() * 100.0));
        }
        if let Some(b) = self.burst {
            parts.push(format!("burst {b}"));
        }
        if !self.delay.is_zero() {
            parts.push(format!("delay {:?}", self.delay));
        }
        if !self.jitter.is_zero() {
            parts.push(format!("jitter {:?}", self.jitter));
        }
        if let Some(r) = self.rate_bps {
            parts.push(format!("rate {r}bit/s"));
        }
        if parts.is_empty() {
            parts.push("none".into());
        }
        parts.push(self.family.as_str().into());
        parts.join(" ")
    }
}

/// Loss the host's link achieved: packets seen by the mechanism and dropped by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LossFigures {
    /// Packets the loss mechanism saw (of the conditioned family).
    pub seen: u64,
    /// Packets it dropped.
    pub dropped: u64,
}

impl LossFigures {
    /// Dropped over seen (0 when nothing was seen).
    pub fn fraction(&self) -> f64 {
        if self.seen == 0 {
            0.0
        } else {
            self.dropped as f64 / self.seen as f64
        }
    }
}

/// Delays the queue applied: how long it held the packets it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DelayFigures {
    /// Packets the queue received (held, dropped by the Gilbert model, or still held).
    pub received: u64,
    /// Packets held and accepted (their hold complete).
    pub packets: u64,
    /// Shortest hold.
    pub min: Duration,
    /// Median hold.
    pub p50: Duration,
    /// 99th percentile hold.
    pub p99: Duration,
    /// Longest hold.
    pub max: Duration,
    /// Packets the kernel dropped before the queue thread saw them (its queue or the socket's
    /// receive buffer full: `/proc/net/netfilter/nfnetlink_queue`), lost outside the model.
    pub kernel_dropped: u64,
}

/// What the rate limit's qdisc (tbf) or class (htb) did (the kernel's own counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RateFigures {
    /// Bytes the limited class sent.
    pub bytes: u64,
    /// Packets it sent.
    pub packets: u64,
    /// Packets it dropped (queue full).
    pub drops: u64,
    /// Times a packet had to wait for tokens: the limit acted.
    pub overlimits: u64,
}

/// Asked vs achieved for one host's link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkFigures {
    /// The host.
    pub host: String,
    /// What was asked.
    pub asked: LinkCondition,
    /// Loss achieved (when loss was asked).
    pub loss: Option<LossFigures>,
    /// Delays applied (when delay, jitter or bursty loss was asked).
    pub delay: Option<DelayFigures>,
    /// Rate limiter counters (when a rate was asked).
    pub rate: Option<RateFigures>,
    /// Time since the condition was applied.
    pub applied_for: Duration,
}

impl LinkFigures {
    /// One line: asked, then what each mechanism did.
    pub fn describe(&self) -> String {
        let mut s = format!("{}: asked {}", self.host, self.asked.describe());
        if let Some(l) = &self.loss {
            s.push_str(&format!("; loss {:.2}% ({} of {} packets)", l.fraction() * 100.0, l.dropped, l.seen));
        }
        if let Some(d) = &self.delay {
            s.push_str(&format!("; queue got {} packets, held {} to their time: p50 {:.1} ms p99 {:.1} ms", d.received, d.packets, ms(d.p50), ms(d.p99)));
            if d.kernel_dropped > 0 {
                s.push_str(&format!(" ({} dropped by the kernel before the queue)", d.kernel_dropped));
            }
        }
        if let Some(r) = &self.rate {
            s.push_str(&format!("; rate class sent {} bytes in {} packets, {} drops, {} overlimits", r.bytes, r.packets, r.drops, r.overlimits));
        }
        s
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What the queue thread counts, shared with the harness.
#[derive(Default)]
struct QueueStats {
    seen: u64,
    dropped: u64,
    /// Held time of each accepted packet, in microseconds.
    held_us: Vec<u32>,
    /// Why the thread stopped early, if it did.
    failed: Option<String>,
}

/// The running queue of one host: its thread and what it counts.
struct QueueServer {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<QueueStats>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The thread's id, for its CPU time in /proc/self/task/TID/stat.
    tid: Arc<Mutex<Option<i32>>>,
}

impl QueueServer {
    fn start(queue: nfq::Queue, cond: &LinkCondition, host: &str) -> Result<QueueServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(QueueStats::default()));
        let tid = Arc::new(Mutex::new(None));
        let served = Served::new(cond);
        let (s, st, t) = (stop.clone(), stats.clone(), tid.clone());
        let thread = std::thread::Builder::new()
            .name(format!("nslab-link-{host}"))
            .spawn(move || {
                *t.lock().unwrap_or_else(PoisonError::into_inner) = Some(nix::unistd::gettid().as_raw());
                served.run(queue, &s, &st);
            })
            .map_err(|source| Error::Namespace { op: "start the link queue thread", what: format!("host {host}"), source })?;
        Ok(QueueServer { stop, stats, thread: Some(thread), tid })
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for QueueServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The queue thread's decisions: delays, jitter, Gilbert loss.
struct Served {
    delay: Duration,
    jitter: Duration,
    reorder: bool,
    /// Gilbert model: probability of entering the loss state from the good one, and of leaving it.
    gilbert: Option<(f64, f64)>,
    rng: fastrand::Rng,
}

impl Served {
    fn new(c: &LinkCondition) -> Self {
        let gilbert = match c.burst {
            Some(b) if c.loss_ppm > 0 => {
                // Stationary loss p with mean burst b: leave the bad state with r = 1/b, enter it with
                // q = p r / (1 - p), so that q / (q + r) = p.
                let p = c.loss_fraction().min(0.999_999);
                let r = 1.0 / f64::from(b);
                Some(((p * r / (1.0 - p)).min(1.0), r))
            }
            _ => None,
        };
        Served { delay: c.delay, jitter: c.jitter, reorder: c.reorder, gilbert, rng: fastrand::Rng::new() }
    }

    /// This packet's hold time.
    fn hold(&mut self) -> Duration {
        if self.jitter.is_zero() {
            return self.delay;
        }
        let j = self.jitter.as_secs_f64();
        let d = self.delay.as_secs_f64() + (self.rng.f64() * 2.0 - 1.0) * j;
        Duration::from_secs_f64(d.max(0.0))
    }

    fn run(mut self, mut q: nfq::Queue, stop: &AtomicBool, stats: &Mutex<QueueStats>) {
        q.set_nonblocking(true);
        // (due, received, message), in verdict order.
        let mut held: VecDeque<(Instant, Instant, nfq::Message)> = VecDeque::new();
        let mut bad = false;
        let mut last_due = Instant::now();
        let (mut seen, mut dropped) = (0u64, 0u64);
        let mut failed = None;
        let mut to_drop: Vec<nfq::Message> = Vec::new();
        let mut due_now: Vec<nfq::Message> = Vec::new();
        loop {
            let stopping = stop.load(Ordering::Relaxed);
            // Read everything queued.
            loop {
                match q.recv() {
                    Ok(mut msg) => {
                        let now = Instant::now();
                        seen += 1;
                        if let Some((enter, leave)) = self.gilbert {
                            bad = if bad { self.rng.f64() >= leave } else { self.rng.f64() < enter };
                            if bad {
                                dropped += 1;
                                msg.set_verdict(nfq::Verdict::Drop);
                                to_drop.push(msg);
                                continue;
                            }
                        }
                        let mut due = now + self.hold();
                        if !self.reorder && due < last_due {
                            due = last_due;
                        }
                        last_due = last_due.max(due);
                        msg.set_verdict(nfq::Verdict::Accept);
                        let at = if self.reorder { held.partition_point(|(d, _, _)| *d <= due) } else { held.len() };
                        held.insert(at, (due, now, msg));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                    Err(e) => {
                        failed = Some(format!("recv: {e}"));
                        break;
                    }
                }
            }
            // The counts are published before the verdicts: whoever sees a packet's effect finds it
            // counted. All held packets are due when stopping: nothing stays held.
            let now = Instant::now();
            {
                let mut st = stats.lock().unwrap_or_else(PoisonError::into_inner);
                st.seen = seen;
                st.dropped = dropped;
                while held.front().is_some_and(|(due, _, _)| stopping || *due <= now) {
                    let Some((_, got, msg)) = held.pop_front() else { break };
                    if st.held_us.len() < MAX_SAMPLES {
                        st.held_us.push(u32::try_from(got.elapsed().as_micros()).unwrap_or(u32::MAX));
                    }
                    due_now.push(msg);
                }
            }
            for msg in to_drop.drain(..).chain(due_now.drain(..)) {
                if let Err(e) = q.verdict(msg) {
                    failed = Some(format!("verdict: {e}"));
                }
            }
            if let Some(f) = &failed {
                stats.lock().unwrap_or_else(PoisonError::into_inner).failed = Some(f.clone());
            }
            if stopping || failed.is_some() {
                return;
            }
            let pause = held.front().map_or(TICK, |(due, _, _)| due.saturating_duration_since(Instant::now()).min(TICK));
            std::thread::sleep(pause);
        }
    }
}

/// One host's applied condition: what to undo and where the figures are.
struct Applied {
    host: Host,
    asked: LinkCondition,
    since: Instant,
    queue: Option<QueueServer>,
}

/// The link conditions of a lab's hosts. Owned by the lab: its queue threads end with it.
#[derive(Default)]
pub struct Links {
    applied: Mutex<Vec<Applied>>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_list().entries(a.iter().map(|a| (a.host.name().to_string(), a.asked.describe()))).finish()
    }
}

async fn tool(host: &Host, name: &str, args: &[&str]) -> Result<String> {
    let p = host.run(Command::new(name).args(args).name(format!("link-{name}")), TOOL_TIMEOUT).await?;
    if !p.exit().is_some_and(|e| e.success()) {
        return Err(Error::Invalid { what: format!("`{name} {}` failed in host {}: {}", args.join(" "), host.name(), p.output().trim()) });
    }
    Ok(p.stdout())
}

impl Links {
    /// Applies `cond` to `host`'s lab interface, replacing the condition it had.
    ///
    /// # Errors
    /// [`Error::Invalid`] when a tool (`nft`, `iptables`, `tc`) refuses, naming the command and
    /// its output; [`Error::Namespace`] when the queue socket cannot be opened in the host.
    pub async fn set(&self, host: &Host, cond: &LinkCondition) -> Result<()> {
        self.clear(host).await?;
        let mut applied = Applied { host: host.clone(), asked: cond.clone(), since: Instant::now(), queue: None };
        let done = Self::install(host, cond, &mut applied).await;
        self.applied.lock().unwrap_or_else(PoisonError::into_inner).push(applied);
        if let Err(e) = done {
            // Undo what was installed (a queue rule without its reader would drop every packet).
            if let Err(undo) = self.clear(host).await {
                tracing::warn!(host = %host.name(), error = %undo, "a partly applied link condition was not fully removed");
            }
            return Err(e);
        }
        tracing::info!(host = %host.name(), condition = %cond.describe(), "link condition applied");
        Ok(())
    }

    /// Installs `cond`'s mechanisms in `host`, recording the queue in `applied` as soon as it runs.
    async fn install(host: &Host, cond: &LinkCondition, applied: &mut Applied) -> Result<()> {
        let ifname = host.interface().to_string();
        if cond.nft_loss() {
            let families: Vec<&str> = [(cond.family.v4(), "ip"), (cond.family.v6(), "ip6")].iter().filter(|(on, _)| *on).map(|(_, f)| *f).collect();
            // The device's egress hook (after routing and the queue, before the qdisc): a drop
            // there is silent to the sender, as on a lossy wire. In postrouting it would fail the
            // sender's sendmsg with EPERM instead.
            let mut script =
                format!("add table netdev {NFT_TABLE}; add chain netdev {NFT_TABLE} loss {{ type filter hook egress device \"{ifname}\" priority 0; }};");
            // numgen's value is below its modulus: 100% loss is a plain drop.
            let draw = if cond.loss_ppm >= 1_000_000 { String::new() } else { format!("numgen random mod 1000000 < {} ", cond.loss_ppm) };
            for f in families {
                // The first rule counts what the loss rule sees; the second drops.
                script.push_str(&format!(
                    " add rule netdev {NFT_TABLE} loss meta protocol {f} counter comment \"seen\";\
                     add rule netdev {NFT_TABLE} loss meta protocol {f} {draw}counter drop comment \"dropped\";"
                ));
            }
            tool(host, "nft", &[&script]).await?;
        }
        if cond.needs_queue() {
            let q = host
                .in_netns(|| -> std::io::Result<nfq::Queue> {
                    let mut q = nfq::Queue::open()?;
                    q.bind(QUEUE_NUM)?;
                    // Metadata only: verdicts never change a packet, and small messages keep the
                    // socket's receive buffer from overflowing (which would drop packets).
                    q.set_copy_range(QUEUE_NUM, 0)?;
                    q.set_queue_max_len(QUEUE_NUM, QUEUE_MAX_LEN)?;
                    Ok(q)
                })
                .await?
                .map_err(|source| Error::Namespace { op: "open the link's netfilter queue", what: format!("host {}", host.name()), source })?;
            applied.queue = Some(QueueServer::start(q, cond, host.name())?);
            for (prog, rule) in queue_rules(cond.family, &ifname) {
                let mut args = vec!["-w", "-t", "mangle", "-A", "POSTROUTING"];
                args.extend(rule.iter().map(String::as_str));
                tool(host, prog, &args).await?;
            }
        }
        if let Some(rate) = cond.rate_bps {
            let rate_s = format!("{rate}bit");
            // Burst: 10 ms at the asked rate, at least two full-size frames.
            let burst = format!("{}b", (rate / 8 / 100).max(3100));
            if cond.family == LinkFamily::Both {
                // tbf: the token bucket itself; packets wait up to 10 s for tokens, never dropped
                // sooner.
                tool(host, "tc", &["qdisc", "replace", "dev", &ifname, "root", "handle", "1:", "tbf", "rate", &rate_s, "burst", &burst, "latency", "10s"])
                    .await?;
            } else {
                // htb: class 1:10 unlimited for the other family, 1:20 limited, chosen by ethertype.
                let proto = if cond.family == LinkFamily::Ipv6 { "ipv6" } else { "ip" };
                tool(host, "tc", &["qdisc", "replace", "dev", &ifname, "root", "handle", "1:", "htb", "default", "10", "r2q", "1000"]).await?;
                tool(host, "tc", &["class", "add", "dev", &ifname, "parent", "1:", "classid", "1:10", "htb", "rate", "100gbit", "quantum", "60000"]).await?;
                tool(
                    host,
                    "tc",
                    &["class", "add", "dev", &ifname, "parent", "1:", "classid", "1:20", "htb", "rate", &rate_s, "burst", &burst, "cburst", &burst],
                )
                .await?;
                tool(
                    host,
                    "tc",
                    &["filter", "add", "dev", &ifname, "parent", "1:", "protocol", proto, "prio", "1", "u32", "match", "u32", "0", "0", "classid", "1:20"],
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Removes `host`'s condition (rules, qdisc, queue), returning its last figures; `None` when
    /// it had none. Held packets are accepted before the queue closes.
    ///
    /// # Errors
    /// As [`Links::set`].
    pub async fn clear(&self, host: &Host) -> Result<Option<LinkFigures>> {
        let taken = {
            let mut a = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
            a.iter().position(|a| a.host.name() == host.name()).map(|i| a.remove(i))
        };
        let Some(mut applied) = taken else { return Ok(None) };
        let figures = figures_of(&applied).await;
        let ifname = host.interface().to_string();
        let c = &applied.asked;
        let mut failures = Vec::new();
        if c.nft_loss() {
            if let Err(e) = tool(host, "nft", &["delete", "table", "netdev", NFT_TABLE]).await {
                failures.push(e.to_string());
            }
        }
        if applied.queue.is_some() {
            for (prog, rule) in queue_rules(c.family, &ifname) {
                let mut args = vec!["-w", "-t", "mangle", "-D", "POSTROUTING"];
                args.extend(rule.iter().map(String::as_str));
                if let Err(e) = tool(host, prog, &args).await {
                    failures.push(e.to_string());
                }
            }
        }
        if let Some(mut q) = applied.queue.take() {
            tokio::task::spawn_blocking(move || q.stop()).await.ok();
        }
        if c.rate_bps.is_some() {
            if let Err(e) = tool(host, "tc", &["qdisc", "del", "dev", &ifname, "root"]).await {
                failures.push(e.to_string());
            }
        }
        if !failures.is_empty() {
            return Err(Error::Invalid { what: format!("clearing the link condition of host {}: {}", host.name(), failures.join("; ")) });
        }
        tracing::info!(host = %host.name(), "link condition cleared");
        figures.map(Some)
    }

    /// Asked vs achieved for `host`'s current condition; `None` when it has none.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `nft` or `tc` cannot be read, or the queue thread failed.
    pub async fn figures(&self, host: &str) -> Result<Option<LinkFigures>> {
        let snapshot = {
            let a = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
            a.iter().find(|a| a.host.name() == host).map(|a| (a.host.clone(), a.asked.clone(), a.since, a.queue.as_ref().map(|q| q.stats.clone())))
        };
        let Some((h, asked, since, stats)) = snapshot else { return Ok(None) };
        read_figures(&h, &asked, since, stats.as_deref()).await.map(Some)
    }

    /// The queue thread's id for `host` (for its CPU time in `/proc/self/task/TID/stat`).
    pub fn queue_thread_id(&self, host: &str) -> Option<i32> {
        let a = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        a.iter().find(|a| a.host.name() == host).and_then(|a| a.queue.as_ref()).and_then(|q| *q.tid.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Hosts with a condition, in the order they got it.
    pub fn hosts(&self) -> Vec<String> {
        self.applied.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|a| a.host.name().to_string()).collect()
    }

    /// Stops every queue thread (accepting what they hold). The rules and qdiscs go with the
    /// namespaces.
    pub(crate) fn stop_all(&self) {
        let all = std::mem::take(&mut *self.applied.lock().unwrap_or_else(PoisonError::into_inner));
        drop(all);
    }
}

/// The mangle POSTROUTING rules that send `family`'s packets out of `ifname` to the queue, with
/// their program. IPv6 neighbour discovery is not held (as ARP, not IP, is not): a slow path is a
/// slow route, not a slow wire, and neighbours held would add the delay twice to a first packet.
fn queue_rules(family: LinkFamily, ifname: &str) -> Vec<(&'static str, Vec<String>)> {
    let to_queue = |_: ()| ["-o", ifname, "-j", "NFQUEUE", "--queue-num", &QUEUE_NUM.to_string()].map(String::from).to_vec();
    let mut out = Vec::new();
    if family.v4() {
        out.push(("iptables", to_queue(())));
    }
    if family.v6() {
        for t in ["neighbour-solicitation", "neighbour-advertisement", "router-solicitation"] {
            out.push(("ip6tables", ["-o", ifname, "-p", "ipv6-icmp", "--icmpv6-type", t, "-j", "RETURN"].map(String::from).to_vec()));
        }
        out.push(("ip6tables", to_queue(())));
    }
    out
}

async fn figures_of(a: &Applied) -> Result<LinkFigures> {
    read_figures(&a.host, &a.asked, a.since, a.queue.as_ref().map(|q| &*q.stats)).await
}

async fn read_figures(host: &Host, asked: &LinkCondition, since: Instant, stats: Option<&Mutex<QueueStats>>) -> Result<LinkFigures> {
    let mut fig = LinkFigures { host: host.name().to_string(), asked: asked.clone(), loss: None, delay: None, rate: None, applied_for: since.elapsed() };
    if let Some(stats) = stats {
        let (seen, dropped, mut held, failed) = {
            let st = stats.lock().unwrap_or_else(PoisonError::into_inner);
            (st.seen, st.dropped, st.held_us.clone(), st.failed.clone())
        };
        if let Some(f) = failed {
            return Err(Error::Invalid { what: format!("the link queue of host {} failed: {f}", host.name()) });
        }
        held.sort_unstable();
        let mut d = delay_figures(&held);
        d.received = seen;
        d.kernel_dropped =
            host.in_netns(|| std::fs::read_to_string("/proc/thread-self/net/netfilter/nfnetlink_queue")).await?.ok().and_then(|t| queue_drops(&t)).unwrap_or(0);
        fig.delay = Some(d);
        if asked.burst.is_some() && asked.loss_ppm > 0 {
            fig.loss = Some(LossFigures { seen, dropped });
        }
    }
    if asked.nft_loss() {
        let json = tool(host, "nft", &["-j", "list", "table", "netdev", NFT_TABLE]).await?;
        fig.loss = Some(nft_counters(&json).ok_or_else(|| Error::Invalid { what: format!("unreadable nft counters in host {}: {json}", host.name()) })?);
    }
    if asked.rate_bps.is_some() {
        // tc prints htb classes as text only (its -j is ignored for them): text for both.
        let (what, head) = if asked.family == LinkFamily::Both { ("qdisc", "qdisc tbf 1: ") } else { ("class", "class htb 1:20 ") };
        let text = tool(host, "tc", &["-s", what, "show", "dev", host.interface()]).await?;
        fig.rate = Some(tc_stats(&text, head).ok_or_else(|| Error::Invalid { what: format!("no {head}in host {}: {text}", host.name()) })?);
    }
    Ok(fig)
}

/// Min, p50, p99, max of sorted microsecond samples.
fn delay_figures(sorted_us: &[u32]) -> DelayFigures {
    let at = |q: f64| -> Duration {
        if sorted_us.is_empty() {
            return Duration::ZERO;
        }
        let i = ((sorted_us.len() - 1) as f64 * q).round() as usize;
        Duration::from_micros(u64::from(sorted_us[i]))
    };
    DelayFigures { received: 0, packets: sorted_us.len() as u64, min: at(0.0), p50: at(0.5), p99: at(0.99), max: at(1.0), kernel_dropped: 0 }
}

/// Drops of queue [`QUEUE_NUM`] in `/proc/net/netfilter/nfnetlink_queue` (`queue_dropped` +
/// `user_dropped`, the 6th and 7th fields).
fn queue_drops(text: &str) -> Option<u64> {
    let qn = QUEUE_NUM.to_string();
    let w: Vec<&str> = text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|w| w.first() == Some(&qn.as_str()))?;
    Some(w.get(5)?.parse::<u64>().ok()? + w.get(6)?.parse::<u64>().ok()?)
}

/// Sums the `seen` and `dropped` counters of `nft -j list table`.
fn nft_counters(json: &str) -> Option<LossFigures> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let mut out = LossFigures::default();
    let mut found = false;
    for item in v.get("nftables")?.as_array()? {
        let Some(rule) = item.get("rule") else { continue };
        let comment = rule.get("comment").and_then(|c| c.as_str()).unwrap_or("");
        let packets = rule.get("expr")?.as_array()?.iter().find_map(|e| e.get("counter")?.get("packets")?.as_u64())?;
        match comment {
            "seen" => out.seen += packets,
            "dropped" => out.dropped += packets,
            _ => continue,
        }
        found = true;
    }
    found.then_some(out)
}

/// The statistics of the qdisc or class whose line starts with `head` in `tc -s qdisc|class
/// show`: the next line, ` Sent B bytes P pkt (dropped D, overlimits O requeues R)`.
fn tc_stats(text: &str, head: &str) -> Option<RateFigures> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(head));
    lines.next()?;
    let sent = lines.next()?.replace(['(', ')', ','], " ");
    let w: Vec<&str> = sent.split_whitespace().collect();
    let after = |k: &str| w.iter().position(|x| *x == k).and_then(|i| w.get(i + 1)).and_then(|v| v.parse::<u64>().ok());
    let before = |k: &str| w.iter().position(|x| *x == k).and_then(|i| i.checked_sub(1)).and_then(|i| w[i].parse::<u64>().ok());
    Some(RateFigures { bytes: before("bytes")?, packets: before("pkt")?, drops: after("dropped")?, overlimits: after("overlimits")? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nft_counters_sum_seen_and_dropped_per_family() {
        let json = r#"{"nftables":[{"metainfo":{}},{"table":{"family":"inet","name":"nslab_link"}},
        {"rule":{"chain":"loss","comment":"seen","expr":[{"match":{}},{"counter":{"packets":100,"bytes":1}}]}},
        {"rule":{"chain":"loss","comment":"dropped","expr":[{"match":{}},{"counter":{"packets":20,"bytes":1}},{"drop":null}]}},
        {"rule":{"chain":"loss","comment":"seen","expr":[{"counter":{"packets":50,"bytes":1}}]}},
        {"rule":{"chain":"loss","comment":"dropped","expr":[{"counter":{"packets":5,"bytes":1}},{"drop":null}]}}]}"#;
        assert_eq!(nft_counters(json), Some(LossFigures { seen: 150, dropped: 25 }));
        assert_eq!(nft_counters(r#"{"nftables":[]}"#), None);
    }

    #[test]
    fn htb_class_reads_the_limited_class() {
        let text = "class htb 1:10 root prio 0 rate 100Gbit ceil 100Gbit burst 0b cburst 0b \n Sent 5 bytes 1 pkt (dropped 0, overlimits 0 requeues 0) \n\
                    class htb 1:20 root prio 0 rate 2Mbit ceil 2Mbit burst 3100b cburst 3100b \n Sent 424436 bytes 284 pkt (dropped 1, overlimits 19 requeues 0) \n backlog 90b 1p requeues 0\n";
        assert_eq!(tc_stats(text, "class htb 1:20 "), Some(RateFigures { bytes: 424436, packets: 284, drops: 1, overlimits: 19 }));
        assert_eq!(tc_stats(text, "class htb 1:30 "), None);
    }

    #[test]
    fn queue_drops_are_read_for_the_lab_queue() {
        assert_eq!(queue_drops("    0  12345     0 1     0  3  4    99  1\n"), Some(7));
        assert_eq!(queue_drops("    1  12345     0 1     0  3  4    99  1\n"), None);
    }

    #[test]
    fn percentiles_of_held_times() {
        let s: Vec<u32> = (1..=100).collect();
        let d = delay_figures(&s);
        assert_eq!((d.min, d.p50, d.p99, d.max), (Duration::from_micros(1), Duration::from_micros(51), Duration::from_micros(99), Duration::from_micros(100)));
    }

    #[test]
    fn gilbert_model_keeps_the_asked_loss_in_bursts() {
        let c = LinkCondition::new().loss(0.2).burst(4);
        let mut s = Served::new(&c);
        s.rng = fastrand::Rng::with_seed(7);
        let (enter, leave) = s.gilbert.expect("bursty loss uses the Gilbert model");
        let (mut bad, mut lost, mut bursts) = (false, 0u32, 0u32);
        let n = 200_000;
        for _ in 0..n {
            let was = bad;
            bad = if bad { s.rng.f64() >= leave } else { s.rng.f64() < enter };
            lost += u32::from(bad);
            bursts += u32::from(bad && !was);
        }
        let frac = f64::from(lost) / f64::from(n);
        let mean_burst = f64::from(lost) / f64::from(bursts);
        assert!((frac - 0.2).abs() < 0.01, "loss {frac}");
        assert!((mean_burst - 4.0).abs() < 0.3, "mean burst {mean_burst}");
    }

    #[test]
    fn slow_ipv6_holds_ipv6_300ms() {
        let c = LinkCondition::slow_ipv6();
        assert_eq!((c.delay, c.family, c.needs_queue(), c.nft_loss()), (Duration::from_millis(300), LinkFamily::Ipv6, true, false));
        assert_eq!(c.describe(), "delay 300ms ipv6");
    }
}
