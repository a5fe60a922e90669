//! DNS throughput: nslab's embedded server against Knot and NSD on the same lab path.
//!
//! One lab: a client host running dnsperf, and three server hosts: `dns` (nslab's server, served
//! from this process), `knot` (knotd, one UDP worker) and `nsd` (one server process), each
//! authoritative for the same zone. Rounds are interleaved (nslab, knot, nsd, nslab, ...); each
//! round is `dnsperf -l SECS -c 4 -q 100` of one name. Prints queries per second and average
//! latency (medians), the ratio nslab/knot, and a JSON line. It never fails on figures.
//!
//! Run as root: `cargo bench -p nslab --bench dns_perf`. Environment: `NSLAB_DNS_BENCH_ROUNDS`
//! (default 3), `NSLAB_DNS_BENCH_SECS` (default 5). Traffic stays inside the lab's namespaces.

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

/// (queries per second, average latency in ms) from dnsperf's report.
fn parse(out: &str) -> Option<(f64, f64)> {
    let num = |key: &str| out.lines().find(|l| l.trim_start().starts_with(key)).and_then(|l| l.split_whitespace().find_map(|w| w.parse::<f64>().ok()));
    Some((num("Queries per second:")?, num("Average Latency (s):")? * 1000.0))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn run() -> Result<()> {
    for p in ["dnsperf", "knotd", "nsd"] {
        if std::process::Command::new("which").arg(p).output().map(|o| !o.status.success()).unwrap_or(true) {
            bail!("{p} is not installed (scripts/setup.sh installs it)");
        }
    }
    let (rounds, secs) = (env_or("NSLAB_DNS_BENCH_ROUNDS", 3), env_or("NSLAB_DNS_BENCH_SECS", 5));
    let zone = Zone::new("example.test", Soa::new("ns", "hostmaster")).record("app", 60, RecordValue::A("192.0.2.99".parse()?));
    let lab = Lab::builder().profile(Profile::Ipv4Only).hosts(["client", "knot", "nsd"]).dns(LabDns::new().zone(zone)).build().await?;
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
    let servers = [("nslab", lab.host("dns")?.ipv4().unwrap()), ("knot", k), ("nsd", n)];
    let mut qps: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
    println!("dns_perf: {rounds} rounds x {secs} s per server, interleaved; dnsperf -c 4 -q 100 over the lab's veth path");
    for round in 0..rounds {
        for (i, (name, addr)) in servers.iter().enumerate() {
            let p = client
                .run(
                    Command::new("dnsperf").args(["-s", &addr.to_string(), "-d", &queries.display().to_string(), "-l", &secs.to_string(), "-c", "4", "-q", "100"]),
                    Duration::from_secs(secs + 30),
                )
                .await?;
            let Some((q, l)) = parse(&p.stdout()) else { bail!("{name}: no figures in dnsperf's output:\n{}", p.output()) };
            println!("round {}: {name:<6} {q:>10.0} qps  {l:.3} ms avg", round + 1);
            qps[i].push(q);
            lat[i].push(l);
        }
    }
    let meds: Vec<(f64, f64)> = qps.iter_mut().zip(lat.iter_mut()).map(|(q, l)| (median(q), median(l))).collect();
    println!("\nserver     qps median   avg latency median");
    for ((name, _), (q, l)) in servers.iter().zip(&meds) {
        println!("{name:<8} {q:>12.0}   {l:.3} ms");
    }
    let ratio = meds[0].0 / meds[1].0;
    println!("nslab/knot {ratio:.2}x, nslab/nsd {:.2}x; goal nslab >= 0.8x knot: {}", meds[0].0 / meds[2].0, if ratio >= 0.8 { "holds" } else { "DOES NOT HOLD" });
    println!(
        "{}",
        serde_json::json!({"bench": "dns_perf", "rounds": rounds, "secs": secs, "qps": {"nslab": meds[0].0, "knot": meds[1].0, "nsd": meds[2].0}, "latency_ms": {"nslab": meds[0].1, "knot": meds[1].1, "nsd": meds[2].1}, "ratio_nslab_over_knot": ratio})
    );
    kp.stop(Duration::from_secs(2)).await;
    np.stop(Duration::from_secs(2)).await;
    lab.teardown().await?;
    Ok(())
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    if let Err(e) = rt.block_on(run()) {
        eprintln!("dns_perf: {e:#}");
        std::process::exit(1);
    }
}
