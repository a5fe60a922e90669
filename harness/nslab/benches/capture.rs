//! The cost of the packet capture of every lab link (nslab::lab::capture), capture on vs off in
//! the same run, interleaved:
//!
//! - DNS throughput: two labs, each a client and nslab's DNS server (`ipv4-only`), one with the
//!   capture (default ring), one built with `capture_ring(None)`; rounds of
//!   `dnsperf -l SECS -c 4 -q 100` alternate between them. Every query and answer crosses two
//!   captured links (the client's and the DNS host's), so the capture sees four frames per query.
//!   (The library's default is no capture: both variants say which they want.)
//! - Lab build and teardown: a three-host dual-stack lab (two hosts and the DNS host) built and
//!   torn down ITER times with the capture, ITER times without, alternating.
//!
//! Prints the medians, the ratios on/off and the differences, whether the goal holds (qps at
//! least 0.95x; build and teardown each at most 5% and 1 ms slower), the load average, and a
//! JSON line. It never fails on figures.
//!
//! Run as root: `cargo bench -p nslab --bench capture`. Environment: `NSLAB_CAPTURE_BENCH_ROUNDS`
//! (default 5), `NSLAB_CAPTURE_BENCH_SECS` (default 3), `NSLAB_CAPTURE_BENCH_ITER` (default 20),
//! `NSLAB_BENCH_JSON` (default `target/nslab-bench/capture.json`).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nslab::dns::{RecordValue, Soa, Zone};
use nslab::{Command, Lab, LabDns, Profile};

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_else(|_| "?".into())
}

/// dnsperf's "Queries per second:" figure.
fn qps(out: &str) -> Option<f64> {
    out.lines().find(|l| l.trim_start().starts_with("Queries per second:"))?.split_whitespace().find_map(|w| w.parse::<f64>().ok())
}

async fn dns_lab(capture: bool) -> Result<Lab> {
    let zone = Zone::new("example.test", Soa::new("ns", "hostmaster")).record("app", 60, RecordValue::A("192.0.2.99".parse()?));
    let ring = if capture { Some(nslab::lab::capture::DEFAULT_RING_BYTES) } else { None };
    let b = Lab::builder().profile(Profile::Ipv4Only).hosts(["client"]).dns(LabDns::new().zone(zone)).capture_ring(ring);
    let lab = b.build().await?;
    let client = lab.host("client")?;
    std::fs::create_dir_all(client.dir())?;
    std::fs::write(client.dir().join("queries.txt"), "app.example.test A\n")?;
    Ok(lab)
}

async fn run() -> Result<()> {
    if std::process::Command::new("which").arg("dnsperf").output().map(|o| !o.status.success()).unwrap_or(true) {
        bail!("dnsperf is not installed (`bash scripts/setup.sh --bench` installs it)");
    }
    let (rounds, secs, iters) = (env_or("NSLAB_CAPTURE_BENCH_ROUNDS", 5), env_or("NSLAB_CAPTURE_BENCH_SECS", 3), env_or("NSLAB_CAPTURE_BENCH_ITER", 20));
    let load_before = loadavg();
    println!("capture: {rounds} dnsperf rounds x {secs} s and {iters} builds, capture on and off interleaved; load average before: {load_before}");

    // 1. DNS throughput.
    let labs = [dns_lab(true).await?, dns_lab(false).await?];
    let mut qs: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (i, lab) in labs.iter().enumerate() {
            let client = lab.host("client")?;
            let server = lab.host("dns")?.ipv4().context("dns host without IPv4")?.to_string();
            let queries = client.dir().join("queries.txt").display().to_string();
            let p = client
                .run(
                    Command::new("dnsperf").args(["-s", &server, "-d", &queries, "-l", &secs.to_string(), "-c", "4", "-q", "100"]),
                    Duration::from_secs(secs + 30),
                )
                .await?;
            let Some(q) = qps(&p.stdout()) else { bail!("no figures in dnsperf's output:\n{}", p.output()) };
            println!("round {}: capture {:<3} {q:>10.0} qps", round + 1, if i == 0 { "on" } else { "off" });
            qs[i].push(q);
        }
    }
    let (dropped, evicted) = labs[0].link_capture().map(|c| c.losses()).unwrap_or_default();
    let [on_lab, off_lab] = labs;
    on_lab.teardown().await?;
    off_lab.teardown().await?;
    let (q_on, q_off) = (median(&mut qs[0]), median(&mut qs[1]));

    // 2. Build and teardown.
    let mut build: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut down: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..iters {
        for (i, on) in [true, false].into_iter().enumerate() {
            let t0 = Instant::now();
            let ring = if on { Some(nslab::lab::capture::DEFAULT_RING_BYTES) } else { None };
            let b = Lab::builder().profile(Profile::DualStack).hosts(["a", "b"]).dns(LabDns::new()).capture_ring(ring);
            let lab = b.build().await?;
            let t1 = Instant::now();
            lab.teardown().await?;
            build[i].push((t1 - t0).as_secs_f64() * 1e3);
            down[i].push(t1.elapsed().as_secs_f64() * 1e3);
        }
    }
    let (b_on, b_off) = (median(&mut build[0]), median(&mut build[1]));
    let (d_on, d_off) = (median(&mut down[0]), median(&mut down[1]));
    let load_after = loadavg();

    let qps_ratio = q_on / q_off;
    let within = |on: f64, off: f64| on / off <= 1.05 && on - off <= 1.0;
    println!("\ncapture on/off (medians):");
    println!("  dns qps       {q_on:>10.0} / {q_off:>10.0} = {qps_ratio:.3}x (goal >= 0.95: {})", if qps_ratio >= 0.95 { "holds" } else { "MISSED" });
    println!(
        "  lab build     {b_on:>8.2} / {b_off:>8.2} ms = {:.3}x, {:+.2} ms (goal <= 5% and <= 1 ms: {})",
        b_on / b_off,
        b_on - b_off,
        if within(b_on, b_off) { "holds" } else { "MISSED" }
    );
    println!(
        "  lab teardown  {d_on:>8.2} / {d_off:>8.2} ms = {:.3}x, {:+.2} ms (goal <= 5% and <= 1 ms: {})",
        d_on / d_off,
        d_on - d_off,
        if within(d_on, d_off) { "holds" } else { "MISSED" }
    );
    println!("  frames the kernel dropped on the capture socket during the qps rounds: {dropped}; pushed out of the rings: {evicted}");
    println!("load average before: {load_before}; after: {load_after}");
    let json = serde_json::json!({
        "bench": "capture", "rounds": rounds, "secs": secs, "iters": iters,
        "dns_qps_on": q_on, "dns_qps_off": q_off, "dns_qps_ratio_on_over_off": qps_ratio,
        "build_ms_on": b_on, "build_ms_off": b_off, "teardown_ms_on": d_on, "teardown_ms_off": d_off,
        "capture_dropped_by_kernel": dropped, "capture_evicted": evicted,
        "load_before": load_before, "load_after": load_after,
    });
    println!("{json}");
    let path = std::env::var_os("NSLAB_BENCH_JSON").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("the workspace holds harness/CRATE").join("target/nslab-bench/capture.json")
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&json)? + "\n").with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    if let Err(e) = rt.block_on(run()) {
        eprintln!("capture: {e:#}");
        std::process::exit(1);
    }
}
