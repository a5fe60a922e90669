//! DNS throughput: nslab's embedded server against Knot and NSD on the same lab path.
//!
//! One lab: a client host running dnsperf, and three server hosts: `dns` (nslab's server, served
//! from this process), `knot` (knotd, one UDP worker) and `nsd` (one server process), each
//! authoritative for the same zone. Rounds are interleaved (nslab, knot, nsd, nslab, ...); each
//! round is `dnsperf -l SECS -c 4 -q 100` of one name. Prints queries per second and average
//! latency (medians), each server's CPU time per answered query (all its threads, from
//! `/proc/PID/task/*/schedstat`: other load on the machine disturbs it less than throughput),
//! the queries each server lost (dnsperf's "Queries lost", summed over the rounds), the ratio
//! nslab/knot, whether the goal holds (nslab at least 0.8x Knot's qps with no lost
//! queries), the load average before and after, and a JSON line. It never fails on figures.
//!
//! The DNS packet tap's cost: a second lab built with `dns_tap(false)` (a client and nslab's
//! server, nothing else) is measured as `nslab-no-tap` in the same interleaved rounds; `dns tap
//! on/off` prints nslab's qps and CPU per query with the tap over those without (in the first
//! lab every host has its tap, so every query and answer goes through it).
//!
//! Run as root: `cargo bench -p nslab --bench dns_perf`. Environment: `NSLAB_DNS_BENCH_ROUNDS`
//! (default 3), `NSLAB_DNS_BENCH_SECS` (default 5), `NSLAB_BENCH_JSON` (where the JSON goes, default
//! `target/nslab-bench/dns_perf.json`). Traffic stays inside the lab's namespaces.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use nslab::dns::{RecordValue, Soa, Zone};
use nslab::{Command, Host, Lab, LabDns, Listen, Process, Profile};

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn zone_file(ns: &str, app: &str) -> String {
    format!("$ORIGIN example.test.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A {ns}\napp A {app}\n")
}

async fn start(host: &Host, name: &str, conf_name: &str, conf: String, cmd: Command) -> Result<Process> {
    let dir = host.dir().join(name);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("example.test.zone"), zone_file(&host.ipv4().unwrap().to_string(), "192.0.2.99"))?;
    std::fs::write(dir.join(conf_name), conf.replace("DIR", &dir.display().to_string()))?;
    let p = host.spawn(cmd.current_dir(&dir)).await?;
    host.wait_listening(&Listen::udp(53), Duration::from_secs(10), Some(&p)).await?;
    Ok(p)
}

/// One dnsperf run's figures, and the server's CPU time over the run.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Run {
    qps: f64,
    latency_ms: f64,
    sent: u64,
    lost: u64,
    /// Server CPU time (user + system, every thread) per answered query, in microseconds.
    cpu_us_per_query: f64,
}

/// The figures of dnsperf's report ("Queries sent:", "Queries lost:", "Queries per second:",
/// "Average Latency (s):"), with no CPU figure yet; `None` if one is missing.
fn parse(out: &str) -> Option<Run> {
    let line = |key: &str| out.lines().find(|l| l.trim_start().starts_with(key));
    let num = |key: &str| line(key).and_then(|l| l.split_whitespace().find_map(|w| w.parse::<f64>().ok()));
    let count = |key: &str| line(key).and_then(|l| l.split_whitespace().find_map(|w| w.parse::<u64>().ok()));
    Some(Run {
        qps: num("Queries per second:")?,
        latency_ms: num("Average Latency (s):")? * 1000.0,
        sent: count("Queries sent:")?,
        lost: count("Queries lost:")?,
        cpu_us_per_query: f64::NAN,
    })
}

/// Nanoseconds on CPU of every thread of these processes so far (`/proc/PID/task/*/schedstat`).
/// A measure of the server's own cost that a busy machine disturbs less than its throughput.
fn cpu_ns(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_dir(format!("/proc/{pid}/task")).ok())
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The 1-, 5- and 15-minute load averages, as /proc/loadavg gives them.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_else(|_| "?".into())
}

/// One server's figures over every round.
struct Summary {
    qps: f64,
    latency_ms: f64,
    cpu_us_per_query: f64,
    sent: u64,
    lost: u64,
}

impl Summary {
    fn of(runs: &[Run]) -> Self {
        let med = |f: fn(&Run) -> f64| median(&mut runs.iter().map(f).collect::<Vec<_>>());
        Summary {
            qps: med(|r| r.qps),
            latency_ms: med(|r| r.latency_ms),
            cpu_us_per_query: med(|r| r.cpu_us_per_query),
            sent: runs.iter().map(|r| r.sent).sum(),
            lost: runs.iter().map(|r| r.lost).sum(),
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn run() -> Result<()> {
    for p in ["dnsperf", "knotd", "nsd"] {
        if std::process::Command::new("which").arg(p).output().map(|o| !o.status.success()).unwrap_or(true) {
            bail!("{p} is not installed (`bash scripts/setup.sh --bench` installs it)");
        }
    }
    let (rounds, secs) = (env_or("NSLAB_DNS_BENCH_ROUNDS", 3), env_or("NSLAB_DNS_BENCH_SECS", 5));
    let zone = Zone::new("example.test", Soa::new("ns", "hostmaster")).record("app", 60, RecordValue::A("192.0.2.99".parse()?));
    let lab = Lab::builder().profile(Profile::Ipv4Only).hosts(["client", "knot", "nsd"]).dns(LabDns::new().zone(zone.clone())).build().await?;
    let bare = Lab::builder().profile(Profile::Ipv4Only).hosts(["client"]).dns(LabDns::new().zone(zone)).dns_tap(false).build().await?;
    let bare_client = bare.host("client")?.clone();
    std::fs::create_dir_all(bare_client.dir())?;
    let bare_queries = bare_client.dir().join("queries.txt");
    std::fs::write(&bare_queries, "app.example.test A\n")?;
    let knot = lab.host("knot")?.clone();
    let nsd = lab.host("nsd")?.clone();
    let k = knot.ipv4().unwrap();
    let n = nsd.ipv4().unwrap();
    let knot_conf = format!(
        "server:\n    listen: {k}@53\n    rundir: DIR\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\ndatabase:\n    storage: DIR\nlog:\n  - target: stderr\n    any: warning\nzone:\n  - domain: example.test\n    file: DIR/example.test.zone\n"
    );
    let nsd_conf = format!(
        "server:\n    ip-address: {n}\n    port: 53\n    server-count: 1\n    username: \"\"\n    chroot: \"\"\n    zonesdir: DIR\n    pidfile: DIR/nsd.pid\n    xfrdfile: DIR/xfrd.state\n    zonelistfile: DIR/zone.list\n    database: \"\"\n    verbosity: 0\n    rrl-ratelimit: 0\nremote-control:\n    control-enable: no\nzone:\n    name: example.test\n    zonefile: example.test.zone\n"
    );
    let kp = start(&knot, "knot", "knot.conf", knot_conf, Command::new("knotd").args(["-c", "knot.conf"])).await.context("start knotd")?;
    let np = start(&nsd, "nsd", "nsd.conf", nsd_conf, Command::new("nsd").args(["-d", "-c", "nsd.conf"])).await.context("start nsd")?;
    let client = lab.host("client")?.clone();
    let dir = client.dir().to_path_buf();
    std::fs::create_dir_all(&dir)?;
    let queries = dir.join("queries.txt");
    std::fs::write(&queries, "app.example.test A\n")?;
    let nslab_pids = [std::process::id()];
    // Name, address, and the processes whose CPU time is the server's.
    type Pids<'a> = Box<dyn Fn() -> Vec<u32> + 'a>;
    let servers: [(&str, std::net::Ipv4Addr, Pids); 4] = [
        ("nslab", lab.host("dns")?.ipv4().unwrap(), Box::new(move || nslab_pids.to_vec())),
        ("knot", k, Box::new(|| kp.process_tree())),
        ("nsd", n, Box::new(|| np.process_tree())),
        ("nslab-no-tap", bare.host("dns")?.ipv4().unwrap(), Box::new(move || nslab_pids.to_vec())),
    ];
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); servers.len()];
    let load_before = loadavg();
    println!("dns_perf: {rounds} rounds x {secs} s per server, interleaved; dnsperf -c 4 -q 100 over the lab's veth path; load average before: {load_before}");
    for round in 0..rounds {
        for (i, (name, addr, pids)) in servers.iter().enumerate() {
            let cpu_before = cpu_ns(&pids());
            let (client, queries) = if *name == "nslab-no-tap" { (&bare_client, &bare_queries) } else { (&client, &queries) };
            let p = client
                .run(
                    Command::new("dnsperf").args([
                        "-s",
                        &addr.to_string(),
                        "-d",
                        &queries.display().to_string(),
                        "-l",
                        &secs.to_string(),
                        "-c",
                        "4",
                        "-q",
                        "100",
                    ]),
                    Duration::from_secs(secs + 30),
                )
                .await?;
            let cpu = cpu_ns(&pids()).saturating_sub(cpu_before);
            let Some(mut r) = parse(&p.stdout()) else { bail!("{name}: no figures in dnsperf's output:\n{}", p.output()) };
            r.cpu_us_per_query = cpu as f64 / 1000.0 / (r.sent - r.lost).max(1) as f64;
            println!(
                "round {}: {name:<6} {:>10.0} qps  {:.3} ms avg  {:.2} us CPU/query  {} sent  {} lost",
                round + 1,
                r.qps,
                r.latency_ms,
                r.cpu_us_per_query,
                r.sent,
                r.lost
            );
            runs[i].push(r);
        }
    }
    let load_after = loadavg();
    let sums: Vec<Summary> = runs.iter().map(|rs| Summary::of(rs)).collect();
    println!("\nserver     qps median   avg latency median   server CPU/query median   sent        lost");
    for ((name, _, _), s) in servers.iter().zip(&sums) {
        println!("{name:<8} {:>12.0}   {:>8.3} ms          {:>8.2} us                {:>10}  {}", s.qps, s.latency_ms, s.cpu_us_per_query, s.sent, s.lost);
    }
    let ratio = sums[0].qps / sums[1].qps;
    let holds = |ok: bool| if ok { "holds" } else { "DOES NOT HOLD" };
    println!("nslab/knot {ratio:.2}x, nslab/nsd {:.2}x", sums[0].qps / sums[2].qps);
    println!("goal nslab >= 0.8x knot qps: {}", holds(ratio >= 0.8));
    for ((name, _, _), s) in servers.iter().zip(&sums) {
        println!("goal no lost queries, {name}: {} ({} lost of {} sent)", holds(s.lost == 0), s.lost, s.sent);
    }
    let tap_qps = sums[0].qps / sums[3].qps;
    let tap_cpu = sums[0].cpu_us_per_query / sums[3].cpu_us_per_query;
    println!(
        "dns tap on/off (medians): nslab {:.0} / {:.0} qps = {tap_qps:.3}x, CPU/query {:.2} / {:.2} us = {tap_cpu:.3}x (the tap's reader runs in this process too)",
        sums[0].qps, sums[3].qps, sums[0].cpu_us_per_query, sums[3].cpu_us_per_query
    );
    println!("load average before: {load_before}, after: {load_after}");
    let per = |f: fn(&Summary) -> serde_json::Value| -> serde_json::Value {
        servers.iter().zip(&sums).map(|((n, _, _), s)| ((*n).to_string(), f(s))).collect::<serde_json::Map<_, _>>().into()
    };
    let json = serde_json::json!({
        "bench": "dns_perf", "rounds": rounds, "secs": secs,
        "qps": per(|s| s.qps.into()), "latency_ms": per(|s| s.latency_ms.into()), "cpu_us_per_query": per(|s| s.cpu_us_per_query.into()),
        "sent": per(|s| s.sent.into()), "lost": per(|s| s.lost.into()),
        "ratio_nslab_over_knot": ratio, "goal_ratio_holds": ratio >= 0.8, "goal_no_loss_holds": sums[0].lost == 0,
        "loadavg_before": load_before, "loadavg_after": load_after,
        "dns_tap_qps_ratio_on_over_off": tap_qps, "dns_tap_cpu_ratio_on_over_off": tap_cpu,
        "dns_tap_packets_logged": lab.dns_traffic().map(|t| t.log().entries().len()),
        "dns_tap_evicted": lab.dns_traffic().map(|t| t.log().evicted()),
        "dns_tap_dropped_by_kernel": lab.dns_traffic().map(|t| t.log().dropped()),
    });
    println!("{json}");
    let path = std::env::var_os("NSLAB_BENCH_JSON").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("the workspace holds harness/CRATE").join("target/nslab-bench/dns_perf.json")
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&json)? + "\n").with_context(|| format!("write {}", path.display()))?;
    println!("dns_perf: JSON written to {}", path.display());
    drop(servers);
    kp.stop(Duration::from_secs(2)).await;
    np.stop(Duration::from_secs(2)).await;
    lab.teardown().await?;
    bare.teardown().await?;
    Ok(())
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    if let Err(e) = rt.block_on(run()) {
        eprintln!("dns_perf: {e:#}");
        std::process::exit(1);
    }
}
