//! Lab build and teardown: nslab against the same topology built by iproute2, interleaved.
//!
//! Three ways to build a switch namespace with a bridge and N dual-stack host namespaces, each
//! joined to the bridge by one veth, measured in turn (A, B, C, A, B, C, ...) in one run so that
//! every variant sees the same machine:
//!
//! - A, `nslab`: `Lab::builder().profile(DualStack).hosts(..).build()`, then `teardown()`.
//! - B, `ip-batch`: `ip -batch -` scripts; the build is done when the last one exits. iproute2
//!   (6.1) does not accept `-n` on a batch line, so the script is one batch that adds the
//!   namespaces, one `ip -n SW -batch -` for the bridge and veths, and one `ip -n HOST -batch -`
//!   per host: N+2 processes. Teardown is one batch of `netns del`.
//! - C, `shell`: the same steps as a plain shell script, one `ip` command per step.
//! - D, `mininet`: Mininet (Debian's `mininet`, with `bridge-utils`) builds N hosts on one Linux
//!   bridge without a controller (`switch=LinuxBridge, controller=None`, IPv4 from 192.0.2.0/24:
//!   Mininet assigns no IPv6) and stops them, driven by one Python process that lives in its own
//!   network, mount and PID namespace (see `support/mininet.rs`). Where it cannot run, the bench
//!   says why in one line and measures the others.
//! - A', `nslab-no-tap`: A with `dns_tap(false)`: no DNS packet tap. A over A' is the tap's cost
//!   (its sockets, one per host, and its reader thread at build; their drain and close at
//!   teardown), printed as `dns tap on/off`.
//! - patchbay (crates.io), the closest Rust peer, is not measured: its 0.7.0 `Lab::build` puts
//!   198.18.0.1/24 on every lab's IX bridge and allocates from 198.18.1.0/24 and 10.0.0.0/16,
//!   hard-coded, and this project uses documentation prefixes only. The bench prints that line.
//!
//! B and C create each veth end directly in its namespace (no moves), bring links up before
//! adding addresses, add IPv6 addresses with `nodad` and turn off kernel link-local generation
//! (`addrgenmode none`), so their addresses are usable when they exit, as nslab's are. They set
//! no sysctls (`ip` has no sysctl command; `ip netns exec ... sysctl` would cost a fork and exec
//! per host): nslab also turns off router solicitations and IPv6 in the switch, which only makes
//! it do more work.
//!
//! Nothing touches the host's own network namespace. The bench runs in a private mount namespace
//! with a tmpfs over /run/netns, so the `ip netns` names exist only for it: they carry a per-run
//! prefix, a guard deletes them on error, panic, SIGINT or SIGTERM, and even after kill -9 the
//! kernel frees them with the mount namespace.
//!
//! Routed (issue 16): after the sizes above, the 3-segment, 2-router, 9-host lab of
//! `support/routed.rs`, built by nslab and by `ip -batch` scripts of the same topology (plus one
//! `ip netns exec` per router for forwarding), interleaved in the same run, ratio printed
//! (`NSLAB_BENCH_ROUTED=0` skips it).
//!
//! Run as root: `cargo bench -p nslab --bench lab_build`. Environment: `NSLAB_BENCH_ITERS`
//! (measured rounds, default 30), `NSLAB_BENCH_SIZES` (host counts, default `3,10`),
//! `NSLAB_BENCH_JSON` (where the JSON goes, default `target/nslab-bench/lab_build.json`),
//! `NSLAB_BENCH_SETTLE_MS` (pause after each teardown, default 250: the kernel finishes deleting
//! namespaces and veths in the background for about 120 ms, holding the locks the next build
//! needs; without the pause each variant pays for the previous one's cleanup). Prints a
//! table and a JSON line per size; the goals are judged on the 3-host run. It never fails
//! on timing.

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nslab::{Lab, Profile};
use tokio::io::AsyncWriteExt;

#[path = "support/mininet.rs"]
mod mininet;
#[path = "support/routed.rs"]
mod routed;
use mininet::Mininet;

/// Why patchbay is not among the variants (see the module documentation).
const PATCHBAY_NOT_RUN: &str = "patchbay: not run: patchbay 0.7.0's Lab::build puts 198.18.0.1/24 on every lab's IX bridge and allocates from 198.18.1.0/24 and 10.0.0.0/16 (hard-coded in lab.rs), outside the documentation prefixes this project may use";

/// Where `ip netns` keeps its names; covered by a private tmpfs for this process.
const NETNS_RUN_DIR: &str = "/run/netns";
/// Rounds run before measuring (first thread spawns, page cache, ...), never reported.
const WARMUP: usize = 2;
/// The goals of issue 2 for the 3-host dual-stack lab, in milliseconds and as a ratio.
const GOAL_BUILD_MS: f64 = 15.0;
const GOAL_BUILD_RATIO: f64 = 0.7;
const GOAL_TEARDOWN_MS: f64 = 5.0;
/// The goals of issue 8: 3 hosts, and 100 hosts.
const GOAL8_BUILD_MS: f64 = 10.0;
const GOAL8_BUILD_RATIO: f64 = 0.5;
const GOAL8_BUILD_100_MS: f64 = 250.0;

fn main() {
    // Before any thread exists: unshare(CLONE_NEWNS) refuses a multithreaded process.
    if let Err(e) = private_netns_dir() {
        eprintln!("lab_build: {e:#}");
        std::process::exit(1);
    }
    let guard = NamesGuard { prefix: format!("nslabbench-{}-", std::process::id()) };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let outcome = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = run(&guard.prefix) => r,
            _ = tokio::signal::ctrl_c() => bail!("interrupted (SIGINT)"),
            _ = term.recv() => bail!("terminated (SIGTERM)"),
        }
    });
    drop(rt);
    let left = guard.cleanup();
    if !left.is_empty() {
        eprintln!("lab_build: could not delete namespaces {left:?}");
    }
    if let Err(e) = outcome {
        eprintln!("lab_build: {e:#}");
        std::process::exit(1);
    }
}

/// Enters a private mount namespace (nothing mounted here propagates back) and mounts a tmpfs
/// over /run/netns, so that `ip netns add` names live and die with this process.
fn private_netns_dir() -> Result<()> {
    use nix::mount::{mount, MsFlags};
    if !nix::unistd::geteuid().is_root() {
        bail!("needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN): run `sudo -E cargo bench -p nslab --bench lab_build`");
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).context("unshare the mount namespace")?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>).context("make / a slave mount in the private mount namespace")?;
    // `ip netns add` would create the directory too; it is the mount point of the tmpfs.
    std::fs::create_dir_all(NETNS_RUN_DIR).with_context(|| format!("create {NETNS_RUN_DIR}"))?;
    mount(Some("nslabbench"), NETNS_RUN_DIR, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, Some("mode=0755"))
        .with_context(|| format!("mount a private tmpfs on {NETNS_RUN_DIR}"))?;
    Ok(())
}

/// Deletes every `ip netns` name of this run when the bench ends, however it ends.
struct NamesGuard {
    prefix: String,
}

impl NamesGuard {
    /// Deletes the names still there; returns those it could not delete.
    fn cleanup(&self) -> Vec<String> {
        let names = self.remaining();
        for n in &names {
            let _ = std::process::Command::new("ip").args(["netns", "del", n]).stderr(Stdio::null()).status();
        }
        self.remaining()
    }

    fn remaining(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(NETNS_RUN_DIR) else { return Vec::new() };
        let mut v: Vec<String> = dir.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.starts_with(&self.prefix)).collect();
        v.sort();
        v
    }
}

impl Drop for NamesGuard {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// One measured variant.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Nslab,
    IpBatch,
    Shell,
    Mininet,
    NslabNoTap,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Nslab => "nslab",
            Variant::IpBatch => "ip-batch",
            Variant::Shell => "shell",
            Variant::Mininet => "mininet",
            Variant::NslabNoTap => "nslab-no-tap",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Variant::Nslab => "nslab",
            Variant::IpBatch => "ip_batch",
            Variant::Shell => "shell",
            Variant::Mininet => "mininet",
            Variant::NslabNoTap => "nslab_no_tap",
        }
    }
}

/// Build and teardown times of one variant, in milliseconds.
#[derive(Default)]
struct Samples {
    build: Vec<f64>,
    teardown: Vec<f64>,
}

/// Median, 10th and 90th percentile, in milliseconds.
#[derive(Clone, Copy)]
struct Stats {
    median: f64,
    p10: f64,
    p90: f64,
}

impl Stats {
    fn of(samples: &[f64]) -> Stats {
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        Stats { median: percentile(&s, 0.5), p10: percentile(&s, 0.1), p90: percentile(&s, 0.9) }
    }

    fn json(self) -> serde_json::Value {
        serde_json::json!({ "median": round3(self.median), "p10": round3(self.p10), "p90": round3(self.p90) })
    }
}

/// Linear interpolation between closest ranks of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = p * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Ratios far below 1 (a teardown of 0.04 ms against 130 ms) need more than three decimals.
fn round5(x: f64) -> f64 {
    (x * 100_000.0).round() / 100_000.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run(prefix: &str) -> Result<()> {
    let iters: usize = env_or("NSLAB_BENCH_ITERS", "30")?;
    let settle = Duration::from_millis(env_or("NSLAB_BENCH_SETTLE_MS", "250")?);
    let sizes: Vec<usize> = std::env::var("NSLAB_BENCH_SIZES")
        .unwrap_or_else(|_| "3,10".into())
        .split(',')
        .map(|s| s.trim().parse().with_context(|| format!("NSLAB_BENCH_SIZES: {s:?} is not a host count")))
        .collect::<Result<_>>()?;
    let ip = std::process::Command::new("ip").arg("-V").output().context("run `ip -V` (install iproute2)")?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut variants = vec![Variant::Nslab, Variant::IpBatch, Variant::Shell];
    let mut mn = match Mininet::start().await {
        Ok(m) => {
            println!("lab_build: mininet {} (LinuxBridge, no controller, IPv4 only, in a private net/mount/pid namespace)", m.version);
            variants.push(Variant::Mininet);
            Some(m)
        }
        Err(e) => {
            println!("mininet: not run: {}", format!("{e:#}").replace('\n', " "));
            None
        }
    };
    // Last, so that the indices of the others stay as the report reads them.
    variants.push(Variant::NslabNoTap);
    println!("{PATCHBAY_NOT_RUN}");
    let names: Vec<&str> = variants.iter().map(|v| v.name()).collect();
    println!(
        "lab_build: {} | {} cores | load {} | {iters} rounds + {WARMUP} warm-up, interleaved {} | {} ms settle after each teardown",
        String::from_utf8_lossy(&ip.stdout).trim(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        names.join(", "),
        settle.as_millis(),
    );
    // nslab writes and removes each lab's artifact directory there: on a disk file system with
    // online discard, that removal dominates its teardown.
    let artifacts = nslab::lab::spec::default_artifacts_root();
    println!("lab_build: nslab artifacts under {} ({})", artifacts.display(), fs_type(&artifacts));
    let mut round = 0usize;
    let mut results = Vec::new();
    for &n in &sizes {
        let topo = Topology::new(prefix, n);
        let mut samples: Vec<Samples> = variants.iter().map(|_| Samples::default()).collect();
        for i in 0..WARMUP + iters {
            for (v, s) in variants.iter().zip(samples.iter_mut()) {
                round += 1;
                // The first warm-up round also checks that each variant's addresses are usable.
                let (b, t) = measure(*v, &topo, round, i == 0, mn.as_mut()).await.with_context(|| format!("{} with {n} hosts", v.name()))?;
                tokio::time::sleep(settle).await;
                if i >= WARMUP {
                    s.build.push(ms(b));
                    s.teardown.push(ms(t));
                }
            }
        }
        results.push(report(n, iters, &variants, &samples));
    }
    if let Some(m) = mn {
        m.stop().await;
    }
    let routed = if std::env::var("NSLAB_BENCH_ROUTED").map_or(true, |v| v != "0") {
        Some(routed_run(prefix, iters, settle, &mut round).await.context("routed lab")?)
    } else {
        None
    };
    let path = std::env::var_os("NSLAB_BENCH_JSON").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .expect("the workspace holds harness/CRATE")
            .join("target/nslab-bench/lab_build.json")
    });
    write_json(&path, &serde_json::json!({ "bench": "lab_build", "not_run": { "patchbay": PATCHBAY_NOT_RUN }, "sizes": results, "routed": routed }))?;
    println!("lab_build: JSON written to {}", path.display());
    Ok(())
}

/// Writes `value` to `path` (creating its directory), pretty-printed.
fn write_json(path: &std::path::Path, value: &serde_json::Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n").with_context(|| format!("write {}", path.display()))
}

/// The file system type of `path` (or of its nearest existing ancestor), for the report.
fn fs_type(path: &std::path::Path) -> String {
    use nix::sys::statfs::{statfs, EXT4_SUPER_MAGIC, TMPFS_MAGIC};
    let Some(st) = path.ancestors().find_map(|p| statfs(p).ok()) else { return "unknown".into() };
    match st.filesystem_type() {
        TMPFS_MAGIC => "tmpfs".into(),
        EXT4_SUPER_MAGIC => "ext4".into(),
        other => format!("fs magic {:#x}", other.0),
    }
}

fn env_or<T: std::str::FromStr>(key: &str, default: &str) -> Result<T> {
    let v = std::env::var(key).unwrap_or_else(|_| default.into());
    v.trim().parse().map_err(|_| anyhow::anyhow!("{key}: {v:?} is not a number"))
}

/// Builds and tears down once; returns (build, teardown) durations.
async fn measure(v: Variant, topo: &Topology, round: usize, verify: bool, mn: Option<&mut Mininet>) -> Result<(Duration, Duration)> {
    match v {
        Variant::Mininet => mn.expect("the mininet variant runs only with a driver").round(topo.hosts.len(), verify).await,
        Variant::Nslab | Variant::NslabNoTap => {
            let t0 = Instant::now();
            let lab = Lab::builder().profile(Profile::DualStack).hosts(topo.hosts.iter().map(String::as_str)).dns_tap(v == Variant::Nslab).build().await?;
            let build = t0.elapsed();
            if verify {
                verify_nslab(&lab).await?;
            }
            let t1 = Instant::now();
            lab.teardown().await?;
            Ok((build, t1.elapsed()))
        }
        Variant::IpBatch | Variant::Shell => {
            let names = topo.names(round);
            let t0 = Instant::now();
            if v == Variant::IpBatch {
                for (netns, script) in topo.batch_build(&names) {
                    let mut args = Vec::new();
                    if let Some(ns) = netns.as_deref() {
                        args.extend(["-n", ns]);
                    }
                    args.extend(["-batch", "-"]);
                    exec("ip", &args, &script).await?;
                }
            } else {
                exec("sh", &["-e", "-s"], &topo.shell_build(&names)).await?;
            }
            let build = t0.elapsed();
            if verify {
                verify_ip(topo, &names).await?;
            }
            let t1 = Instant::now();
            if v == Variant::IpBatch {
                exec("ip", &["-batch", "-"], &topo.batch_teardown(&names)).await?;
            } else {
                exec("sh", &["-e", "-s"], &topo.shell_teardown(&names)).await?;
            }
            Ok((build, t1.elapsed()))
        }
    }
}

/// Runs `program args` with `stdin` as its standard input; fails with its stderr.
async fn exec(program: &str, args: &[&str], stdin: &str) -> Result<()> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawn {program}"))?;
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin.as_bytes()).await.with_context(|| format!("write the script to {program}"))?;
    drop(input);
    let out = child.wait_with_output().await.with_context(|| format!("wait for {program}"))?;
    if !out.status.success() {
        bail!("`{program} {}` {} on this script:\n{stdin}stderr: {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// The topology every variant builds: host names and their addresses.
struct Topology {
    prefix: String,
    hosts: Vec<String>,
}

/// `ip netns` names of one round: the switch, then one per host.
struct Names {
    switch: String,
    hosts: Vec<String>,
}

impl Topology {
    fn new(prefix: &str, n: usize) -> Topology {
        let hosts = if n == 3 { ["a", "b", "c"].map(String::from).to_vec() } else { (1..=n).map(|i| format!("h{i}")).collect() };
        Topology { prefix: prefix.into(), hosts }
    }

    fn names(&self, round: usize) -> Names {
        let base = format!("{}{round}-", self.prefix);
        Names { switch: format!("{base}sw"), hosts: self.hosts.iter().map(|h| format!("{base}{h}")).collect() }
    }

    /// Host `i`'s number: 10 + i, spelled the same in every family (192.0.2.10, 2001:db8:1::10).
    fn x(i: usize) -> usize {
        10 + i
    }

    /// The steps, as `(namespace to run in, ip arguments)`: namespaces, switch, then each host.
    fn steps(&self, names: &Names) -> Vec<(Option<String>, String)> {
        let sw = Some(names.switch.clone());
        let mut v: Vec<(Option<String>, String)> = Vec::new();
        v.push((None, format!("netns add {}", names.switch)));
        for h in &names.hosts {
            v.push((None, format!("netns add {h}")));
        }
        v.push((sw.clone(), "link add br0 type bridge stp_state 0 mcast_snooping 0".into()));
        v.push((sw.clone(), "link set br0 up".into()));
        for (i, h) in names.hosts.iter().enumerate() {
            let x = Self::x(i);
            v.push((sw.clone(), format!("link add p{x} master br0 up type veth peer name eth0 address 02:00:5e:10:00:{x:02x} netns {h}")));
        }
        for (i, h) in names.hosts.iter().enumerate() {
            let x = Self::x(i);
            let ns = Some(h.clone());
            for step in [
                "link set lo up".to_string(),
                "link set eth0 addrgenmode none".into(),
                "link set eth0 up".into(),
                format!("addr add 192.0.2.{x}/24 dev eth0"),
                format!("addr add 2001:db8:1::{x}/64 dev eth0 nodad"),
                format!("addr add fe80::{x}/64 dev eth0 nodad"),
            ] {
                v.push((ns.clone(), step));
            }
        }
        v
    }

    /// The steps grouped into `ip [-n NS] -batch -` scripts, in order.
    fn batch_build(&self, names: &Names) -> Vec<(Option<String>, String)> {
        let mut out: Vec<(Option<String>, String)> = Vec::new();
        for (ns, step) in self.steps(names) {
            match out.last_mut() {
                Some((last, script)) if *last == ns => writeln!(script, "{step}").unwrap(),
                _ => out.push((ns, format!("{step}\n"))),
            }
        }
        out
    }

    fn shell_build(&self, names: &Names) -> String {
        self.steps(names)
            .into_iter()
            .map(|(ns, step)| match ns {
                Some(ns) => format!("ip -n {ns} {step}\n"),
                None => format!("ip {step}\n"),
            })
            .collect()
    }

    fn all_names<'a>(&self, names: &'a Names) -> impl Iterator<Item = &'a String> {
        std::iter::once(&names.switch).chain(&names.hosts)
    }

    fn batch_teardown(&self, names: &Names) -> String {
        self.all_names(names).map(|n| format!("netns del {n}\n")).collect()
    }

    fn shell_teardown(&self, names: &Names) -> String {
        self.all_names(names).map(|n| format!("ip netns del {n}\n")).collect()
    }
}

/// Every nslab host has its three addresses, none tentative.
async fn verify_nslab(lab: &Lab) -> Result<()> {
    for h in lab.hosts() {
        let addrs: Vec<std::net::IpAddr> = h.addrs().into_iter().chain(h.link_local().map(Into::into)).collect();
        if addrs.len() != 3 {
            bail!("nslab host {} has addresses {addrs:?}; expected IPv4, IPv6 and link-local", h.name());
        }
        for a in addrs {
            if h.is_tentative(a).await? != Some(false) {
                bail!("nslab host {}: {a} is missing or tentative right after build", h.name());
            }
        }
    }
    Ok(())
}

/// Every iproute2 host's eth0 is up with its three addresses, none tentative.
async fn verify_ip(topo: &Topology, names: &Names) -> Result<()> {
    for (i, ns) in names.hosts.iter().enumerate() {
        let x = Topology::x(i);
        let out = tokio::process::Command::new("ip").args(["-n", ns, "-o", "addr", "show", "dev", "eth0"]).output().await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let link = tokio::process::Command::new("ip").args(["-n", ns, "-o", "link", "show", "dev", "eth0"]).output().await?;
        let link = String::from_utf8_lossy(&link.stdout);
        let want = [format!("192.0.2.{x}/24"), format!("2001:db8:1::{x}/64"), format!("fe80::{x}/64")];
        if !link.contains("state UP") || want.iter().any(|w| !text.contains(&format!(" {w} "))) || text.contains("tentative") {
            bail!("namespace {ns} (host {}) is not ready after build:\n{link}{text}", topo.hosts[i]);
        }
    }
    Ok(())
}

fn goal(ok: bool) -> &'static str {
    if ok {
        "holds"
    } else {
        "DOES NOT HOLD"
    }
}

fn report(n: usize, iters: usize, variants: &[Variant], samples: &[Samples]) -> serde_json::Value {
    let stats: Vec<(Stats, Stats)> = samples.iter().map(|s| (Stats::of(&s.build), Stats::of(&s.teardown))).collect();
    println!();
    println!("{n} hosts, dual-stack (mininet: IPv4 only), {iters} rounds (ms)");
    println!(
        "{:<10} {:>9} {:>9} {:>9}   {:>9} {:>9} {:>9}   {:>11} {:>11}",
        "variant", "build p50", "p10", "p90", "down p50", "p10", "p90", "nslab/it b", "nslab/it d"
    );
    let (nb, nt) = stats[0];
    for (v, (b, t)) in variants.iter().zip(&stats) {
        println!(
            "{:<10} {:>9.2} {:>9.2} {:>9.2}   {:>9.2} {:>9.2} {:>9.2}   {:>10.4}x {:>10.4}x",
            v.name(),
            b.median,
            b.p10,
            b.p90,
            t.median,
            t.p10,
            t.p90,
            nb.median / b.median,
            nt.median / t.median
        );
    }
    let mut json = serde_json::json!({
        "bench": "lab_build",
        "hosts": n,
        "profile": "dual-stack",
        "rounds": iters,
        "unit": "ms",
    });
    let mut ratios = Vec::new();
    for (v, (b, t)) in variants.iter().zip(&stats) {
        json[v.key()] = serde_json::json!({ "build": b.json(), "teardown": t.json() });
        if *v != Variant::Nslab {
            ratios.push(format!("nslab/{} {:.3}x", v.name(), nb.median / b.median));
            json[format!("build_ratio_nslab_over_{}", v.key())] = serde_json::json!(round5(nb.median / b.median));
            json[format!("teardown_ratio_nslab_over_{}", v.key())] = serde_json::json!(round5(nt.median / t.median));
        }
    }
    println!("build ratio (medians): {}", ratios.join(", "));
    if let Some((b, t)) = variants.iter().position(|v| *v == Variant::NslabNoTap).map(|i| stats[i]) {
        println!(
            "dns tap on/off (medians): build {:.2} / {:.2} ms = {:.3}x, teardown {:.2} / {:.2} ms = {:.3}x",
            nb.median,
            b.median,
            nb.median / b.median,
            nt.median,
            t.median,
            nt.median / t.median
        );
        json["dns_tap_build_ratio_on_over_off"] = serde_json::json!(round5(nb.median / b.median));
        json["dns_tap_teardown_ratio_on_over_off"] = serde_json::json!(round5(nt.median / t.median));
    }
    let vs_batch = nb.median / stats[1].0.median;
    if n == 3 {
        let build_ms = nb.median <= GOAL_BUILD_MS;
        let build_ratio = vs_batch <= GOAL_BUILD_RATIO;
        let teardown = nt.median <= GOAL_TEARDOWN_MS;
        let build8 = nb.median <= GOAL8_BUILD_MS;
        let ratio8 = vs_batch <= GOAL8_BUILD_RATIO;
        println!("goal (issue 2): nslab build median <= {GOAL_BUILD_MS} ms: {} ({:.2} ms)", goal(build_ms), nb.median);
        println!("goal (issue 2): nslab build median <= {GOAL_BUILD_RATIO}x ip-batch: {} ({vs_batch:.2}x)", goal(build_ratio));
        println!("goal (issue 2): nslab teardown median <= {GOAL_TEARDOWN_MS} ms: {} ({:.2} ms, p90 {:.2} ms)", goal(teardown), nt.median, nt.p90);
        println!("goal (issue 8): nslab build median <= {GOAL8_BUILD_MS} ms: {} ({:.2} ms)", goal(build8), nb.median);
        println!("goal (issue 8): nslab build median <= {GOAL8_BUILD_RATIO}x ip-batch: {} ({vs_batch:.2}x)", goal(ratio8));
        json["goals"] = serde_json::json!({
            "build_median_le_15ms": build_ms,
            "build_le_0_7x_ip_batch": build_ratio,
            "teardown_median_le_5ms": teardown,
            "build_median_le_10ms": build8,
            "build_le_0_5x_ip_batch": ratio8,
        });
    }
    if n == 100 {
        let build = nb.median <= GOAL8_BUILD_100_MS;
        println!("goal (issue 8): nslab build median <= {GOAL8_BUILD_100_MS} ms for 100 hosts: {} ({:.2} ms)", goal(build), nb.median);
        json["goals"] = serde_json::json!({ "build_median_le_250ms": build });
    }
    println!("{json}");
    json
}

/// The routed lab (3 segments, 2 routers, 9 hosts): nslab and ip-batch, interleaved.
async fn routed_run(prefix: &str, iters: usize, settle: Duration, round: &mut usize) -> Result<serde_json::Value> {
    let mut nslab_s = Samples::default();
    let mut batch_s = Samples::default();
    for i in 0..WARMUP + iters {
        *round += 1;
        let t0 = Instant::now();
        let lab = routed::builder().build().await?;
        let b = t0.elapsed();
        if i == 0 {
            routed::verify_nslab(&lab).await?;
        }
        let t1 = Instant::now();
        lab.teardown().await?;
        let t = t1.elapsed();
        tokio::time::sleep(settle).await;
        if i >= WARMUP {
            nslab_s.build.push(ms(b));
            nslab_s.teardown.push(ms(t));
        }
        *round += 1;
        let base = format!("{prefix}{round}-");
        let switch = format!("{base}sw");
        let names: Vec<String> = routed::HOSTS.iter().map(|h| format!("{base}{}", h.0)).collect();
        let t0 = Instant::now();
        for (netns, script) in routed::batch_build(&names, &switch) {
            let mut args = Vec::new();
            if let Some(ns) = netns.as_deref() {
                args.extend(["-n", ns]);
            }
            args.extend(["-batch", "-"]);
            exec("ip", &args, &script).await?;
        }
        for cmd in routed::forwarding(&names) {
            exec("sh", &["-e", "-s"], &format!("{cmd}\n")).await?;
        }
        let b = t0.elapsed();
        if i == 0 {
            routed::verify_ip(&names).await?;
        }
        let t1 = Instant::now();
        let teardown: String = std::iter::once(&switch).chain(&names).map(|n| format!("netns del {n}\n")).collect();
        exec("ip", &["-batch", "-"], &teardown).await?;
        let t = t1.elapsed();
        tokio::time::sleep(settle).await;
        if i >= WARMUP {
            batch_s.build.push(ms(b));
            batch_s.teardown.push(ms(t));
        }
    }
    let (nb, nt) = (Stats::of(&nslab_s.build), Stats::of(&nslab_s.teardown));
    let (bb, bt) = (Stats::of(&batch_s.build), Stats::of(&batch_s.teardown));
    println!();
    println!("routed: 3 segments, 2 routers, 9 hosts, dual-stack, {iters} rounds (ms)");
    println!("{:<10} {:>9} {:>9} {:>9}   {:>9} {:>9} {:>9}", "variant", "build p50", "p10", "p90", "down p50", "p10", "p90");
    for (name, b, t) in [("nslab", nb, nt), ("ip-batch", bb, bt)] {
        println!("{name:<10} {:>9.2} {:>9.2} {:>9.2}   {:>9.2} {:>9.2} {:>9.2}", b.median, b.p10, b.p90, t.median, t.p10, t.p90);
    }
    println!("routed build ratio (medians): nslab/ip-batch {:.3}x", nb.median / bb.median);
    let json = serde_json::json!({
        "segments": 3, "routers": 2, "hosts": 9, "profile": "dual-stack", "rounds": iters, "unit": "ms",
        "nslab": { "build": nb.json(), "teardown": nt.json() },
        "ip_batch": { "build": bb.json(), "teardown": bt.json() },
        "build_ratio_nslab_over_ip_batch": round5(nb.median / bb.median),
        "teardown_ratio_nslab_over_ip_batch": round5(nt.median / bt.median),
    });
    println!("{json}");
    Ok(json)
}
