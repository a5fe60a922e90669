//! What a time warp buys and what it costs: the real time a JVM takes to see its address cache
//! (networkaddress.cache.ttl=30) expire, at 1x and at each scale, with the fidelity of what it
//! measured (the program-time window between caching and the first fresh answer, against the
//! 30 s it should be) and the rate its clock ran at against the harness's; then the cost of a
//! warped `System.nanoTime()`.
//!
//! Run as root with java on PATH: `cargo bench -p nslab --bench timewarp`. `NSLAB_BENCH_SCALES`
//! (default `1,10,30`). Prints figures; it never fails on timing.

use std::time::{Duration, Instant};

use nslab::dns::{RecordKind, RecordValue as V, Soa, Zone};
use nslab::{Command, Lab, LabDns, Profile, TimeWarp};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/java/WarpWaits.java");
const JAVA: [&str; 3] = ["-Xshare:auto", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData"];

fn main() {
    nslab::os::rootless::enter().expect("root or rootless mode");
    let scales: Vec<f64> = std::env::var("NSLAB_BENCH_SCALES")
        .unwrap_or_else(|_| "1,10,30".into())
        .split(',')
        .map(|s| s.trim().parse().expect("NSLAB_BENCH_SCALES: numbers"))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async {
        let root = tempfile::tempdir().expect("artifacts");
        println!("JVM address cache, ttl 30 s (program time), expiry seen by the JVM:");
        println!("{:>6} {:>12} {:>12} {:>14} {:>12} {:>11}", "scale", "real (s)", "JVM run (s)", "window (s)", "error (ms)", "clock rate");
        for &k in &scales {
            let zone =
                Zone::new("example.test", Soa::new("dns.example.test.", "hostmaster.example.test.")).record("app", 5, V::A("192.0.2.10".parse().unwrap()));
            let lab =
                Lab::builder().artifacts_in(root.path()).profile(Profile::Ipv4Only).host("client").dns(LabDns::new().zone(zone)).build().await.expect("lab");
            let client = lab.host("client").expect("host").clone();
            let warp = TimeWarp::new(k).expect("scale");
            let t = Instant::now();
            let p = client.spawn(Command::new("java").args(JAVA).args([SRC, "cache", "app.example.test", "192.0.2.10"]).time_warp(&warp)).await.expect("java");
            let first = p.wait_for_line("^first ", Duration::from_secs(600)).await.expect("first lookup");
            let zc = lab.dns().expect("dns").zone("example.test").expect("zone");
            zc.replace_set("app", RecordKind::A, 5, vec![V::A("192.0.2.11".parse().unwrap())]).await.expect("swap");
            let changed = p.wait_for_line("^changed ", Duration::from_secs(600)).await.expect("fresh lookup");
            p.wait_exit(Duration::from_secs(60)).await.expect("exit");
            let run = t.elapsed();
            let field = |text: &str, key: &str| -> Duration {
                let v = text.split_whitespace().find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('='))).expect("field");
                warp.program_monotonic(Duration::from_nanos(v.parse().expect("nanos"))).expect("after origin")
            };
            let window = field(&changed.text, "after").saturating_sub(field(&first.text, "before"));
            let real = changed.at.saturating_sub(first.at);
            let rate = (field(&changed.text, "after") - field(&first.text, "after")).as_secs_f64() / real.as_secs_f64();
            let error_ms = (window.as_secs_f64() - 30.0) * 1000.0;
            println!("{k:>6} {:>12.3} {:>12.3} {:>14.3} {:>12.1} {:>10.2}x", real.as_secs_f64(), run.as_secs_f64(), window.as_secs_f64(), error_ms, rate);
            lab.teardown().await.expect("teardown");
        }
        println!("(window: program time from the start of the caching lookup to the end of the first fresh one; the JVM asks every 100 ms,");
        println!(" so 30.0-30.1 s plus its lookup is exact; error: window - 30 s; clock rate: the JVM's program time over the harness's real time)");

        let lab = Lab::builder().artifacts_in(root.path()).host("client").build().await.expect("lab");
        let client = lab.host("client").expect("host").clone();
        let n = 20_000_000;
        for k in [None, Some(10.0)] {
            let mut cmd = Command::new("java").args(JAVA).args([SRC, "rate", &n.to_string()]);
            let warp = k.map(|k| TimeWarp::new(k).expect("scale"));
            if let Some(w) = &warp {
                cmd = cmd.time_warp(w);
            }
            let p = client.run(cmd, Duration::from_secs(600)).await.expect("java rate");
            let out = p.stdout();
            let program_ns: f64 = out.split_whitespace().find_map(|kv| kv.strip_prefix("program_ns=")).and_then(|v| v.parse().ok()).expect("program_ns");
            let real_ns = program_ns / k.unwrap_or(1.0);
            println!("System.nanoTime() {}: {:.1} ns per call (real)", if k.is_some() { "warped 10x" } else { "unwarped  " }, real_ns / n as f64);
        }
        lab.teardown().await.expect("teardown");
    });
}
