//! DNS server latencies that tests no longer bound: the tests check that each event happens and
//! in which order (read from the server's log); how fast is the machine's business, so it is
//! measured here and printed.
//!
//! On loopback, no privileges needed, nslab's server in this process (a 2-thread runtime):
//! - canary: one well-formed UDP query after another, alone, then while hostile input arrives
//!   (random and cut datagrams, idle and trickling TCP connections), as in
//!   `dns_robustness`'s property test: median, 99th percentile and worst answer time (a query
//!   lost is sent again after a second, and counted);
//! - held: the same while queries are held by a delay fault (other clients must not wait);
//! - shutdown: how long `DnsServer::shutdown` takes with 40 idle TCP connections and a held
//!   query (the test only checks that it does not wait for them).
//!
//! Run: `cargo bench -p nslab --bench dns_latency`. Environment: `NSLAB_DNS_LATENCY_QUERIES`
//! (canary queries per phase, default 2000), `NSLAB_BENCH_JSON` (default
//! `target/nslab-bench/dns_latency.json`). It prints figures; it has no goals and never fails
//! on them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nslab::dns::{DnsOptions, DnsServer, DnsSockets, Fault, FaultTarget, RecordValue, Soa, Zone};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// A fixed query for `name`, type A, with `id`.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(u8::try_from(label.len()).expect("short label"));
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0x00, 0x00, 0x01, 0x00, 0x01]);
    q
}

/// A small deterministic generator (xorshift), so every run sends the same hostile bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

async fn start() -> Result<(DnsServer, SocketAddr)> {
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = udp.local_addr()?;
        if let Ok(tcp) = TcpListener::bind(addr).await {
            let zone = Zone::new("example.test", Soa::new("ns", "hostmaster")).record("blue", 60, RecordValue::A("192.0.2.10".parse()?)).record(
                "held",
                60,
                RecordValue::A("192.0.2.11".parse()?),
            );
            let mut options = DnsOptions::new(Instant::now());
            options.tcp_idle_timeout = Duration::from_secs(3600);
            let server = DnsServer::start(DnsSockets { udp: vec![udp], tcp: vec![tcp] }, vec![zone], options)?;
            return Ok((server, addr));
        }
    }
    bail!("no free UDP and TCP port pair on 127.0.0.1")
}

/// `n` canary queries, one after another: each one's time to its answer, and how many were
/// sent again after a second without an answer (lost, as UDP may be; a client retries too).
async fn canaries(server: SocketAddr, n: usize) -> Result<(Vec<Duration>, usize)> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::with_capacity(n);
    let mut retried = 0;
    for i in 0..n {
        let id = u16::try_from(i % 65536).expect("in range");
        let t = Instant::now();
        'retry: for attempt in 0..30 {
            if attempt > 0 {
                retried += 1;
            }
            socket.send_to(&query(id, "blue.example.test"), server).await?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            while let Ok(got) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
                let (len, _) = got?;
                if len >= 2 && buf[..2] == id.to_be_bytes() {
                    break 'retry;
                }
            }
            if attempt == 29 {
                bail!("canary query {i} got no answer to 30 attempts a second apart");
            }
        }
        out.push(t.elapsed());
    }
    Ok((out, retried))
}

/// Hostile input until `stop`: random and cut datagrams, 20 idle and 20 trickling TCP connections.
fn hostile(rt: &tokio::runtime::Runtime, server: SocketAddr, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let stop = stop.clone();
        tasks.push(rt.spawn(async move {
            let Ok(mut s) = TcpStream::connect(server).await else { return };
            let frame = {
                let q = query(7, "blue.example.test");
                let mut f = u16::try_from(q.len()).expect("short").to_be_bytes().to_vec();
                f.extend_from_slice(&q);
                f
            };
            let mut at = 0;
            while !stop.load(Ordering::Relaxed) {
                if i % 2 == 1 {
                    if s.write_all(&frame[at % frame.len()..=at % frame.len()]).await.is_err() {
                        return;
                    }
                    at += 1;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    tasks.push(rt.spawn(async move {
        let Ok(socket) = UdpSocket::bind("127.0.0.1:0").await else { return };
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let base = query(9, "blue.example.test");
        while !stop.load(Ordering::Relaxed) {
            let bytes: Vec<u8> = if rng.below(2) == 0 {
                (0..rng.below(600)).map(|_| rng.next() as u8).collect()
            } else {
                let mut b = base.clone();
                for _ in 0..rng.below(6) {
                    let at = usize::try_from(rng.below(b.len() as u64)).expect("in range");
                    b[at] = rng.next() as u8;
                }
                b.truncate(usize::try_from(rng.below(b.len() as u64 + 1)).expect("in range"));
                b
            };
            let _ = socket.send_to(&bytes, server).await;
            // About a thousand a second: hostile, not a flood that overflows the socket.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }));
    tasks
}

/// Median, 99th percentile and worst, in milliseconds.
fn summary(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let p = |q: f64| ms(v[((v.len() - 1) as f64 * q).round() as usize]);
    (p(0.5), p(0.99), ms(*v.last().expect("at least one")))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_else(|_| "?".into())
}

fn main() -> Result<()> {
    let n: usize = std::env::var("NSLAB_DNS_LATENCY_QUERIES").ok().and_then(|s| s.parse().ok()).unwrap_or(2000).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let load_before = loadavg();
    let mut rows = Vec::new();
    let mut row = |phase: &str, (lat, retried): (Vec<Duration>, usize)| {
        let (median, p99, max) = summary(lat);
        println!("{phase:<34} {n:>6} queries: median {median:>7.3} ms, p99 {p99:>7.3} ms, max {max:>8.3} ms, {retried} sent again");
        rows.push(serde_json::json!({ "phase": phase, "queries": n, "median_ms": median, "p99_ms": p99, "max_ms": max, "sent_again": retried }));
    };

    let (server, addr) = rt.block_on(start())?;
    row("canary alone", rt.block_on(canaries(addr, n))?);

    let stop = Arc::new(AtomicBool::new(false));
    let tasks = hostile(&rt, addr, stop.clone());
    row("canary amid hostile input", rt.block_on(canaries(addr, n))?);
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = rt.block_on(t);
    }

    // Ten queries held for an hour by a delay fault while the canary asks.
    server.faults().set(&FaultTarget::Name("held.example.test".into()), Fault::Delay(Duration::from_secs(3600)))?;
    let held = rt.block_on(async {
        let s = UdpSocket::bind("127.0.0.1:0").await?;
        for id in 0..10 {
            s.send_to(&query(id, "held.example.test"), addr).await?;
        }
        anyhow::Ok(s)
    })?;
    row("canary while 10 queries are held", rt.block_on(canaries(addr, n))?);
    drop(held);
    rt.block_on(server.shutdown())?;

    // Shutdown with 40 idle TCP connections and a held query, ten times.
    let mut shutdowns = Vec::new();
    for _ in 0..10 {
        let took = rt.block_on(async {
            let (server, addr) = start().await?;
            let mut idle = Vec::new();
            for _ in 0..40 {
                idle.push(TcpStream::connect(addr).await?);
            }
            server.faults().set(&FaultTarget::Name("held.example.test".into()), Fault::Delay(Duration::from_secs(3600)))?;
            let s = UdpSocket::bind("127.0.0.1:0").await?;
            s.send_to(&query(1, "held.example.test"), addr).await?;
            canaries(addr, 1).await?;
            let t = Instant::now();
            server.shutdown().await?;
            anyhow::Ok(t.elapsed())
        })?;
        shutdowns.push(took);
    }
    let (median, p99, max) = summary(shutdowns);
    println!("{:<34} {:>6} runs:    median {median:>7.3} ms, p99 {p99:>7.3} ms, max {max:>8.3} ms", "shutdown (40 idle TCP, 1 held)", 10);
    rows.push(
        serde_json::json!({ "phase": "shutdown with 40 idle TCP connections and a held query", "runs": 10, "median_ms": median, "p99_ms": p99, "max_ms": max }),
    );

    let load_after = loadavg();
    println!("load average before {load_before}, after {load_after} (1/5/15 min); figures only, no goals");
    let path = std::env::var_os("NSLAB_BENCH_JSON").map(std::path::PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("the workspace holds harness/CRATE").join("target/nslab-bench/dns_latency.json")
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let json = serde_json::json!({ "bench": "dns_latency", "rows": rows, "loadavg_before": load_before, "loadavg_after": load_after });
    std::fs::write(&path, serde_json::to_string_pretty(&json)? + "\n").with_context(|| format!("write {}", path.display()))?;
    println!("JSON: {}", path.display());
    Ok(())
}
