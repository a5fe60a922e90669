//! Link conditions without netem (nslab::lab::link), asked vs achieved, and what each costs, in
//! one run:
//! - loss, random (nft numgen on the egress hook) and bursty (Gilbert model in the queue):
//!   20% asked over `N` UDP datagrams, loss seen by the receiver;
//! - delay (netfilter queue): 20 ms asked, per-packet hold (the queue's own figures) and the UDP
//!   echo round trip minus the same echo's round trip without a condition, p50/p99;
//! - rate (tbf): 10 Mbit/s asked, a 4 MB TCP transfer, bytes received over its time.
//!
//! CPU: the queue thread's own (utime+stime of /proc/self/task/TID/stat) and the whole
//! process's (/proc/self/stat: the harness's work plus the kernel's done on its behalf)
//! with and without the condition, the same workload both times.
//!
//! Run as root: `cargo bench -p nslab --bench link_conditions`. `NSLAB_BENCH_N` (datagrams and
//! echoes, default 20000 / 2000). Goal on the reference machine: loss and rate within 10% of
//! asked, delay p50 within 2 ms. It prints; it never fails on figures.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use nslab::lab::link::LinkCondition;
use nslab::{Host, Lab};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// CPU time of the whole process, all threads (/proc/self/stat).
fn cpu_self() -> Duration {
    cpu_of("/proc/self/stat")
}

/// CPU time of one thread of this process (/proc/self/task/TID/stat).
fn cpu_thread(tid: i32) -> Duration {
    cpu_of(&format!("/proc/self/task/{tid}/stat"))
}

/// utime + stime of a stat file, in clock ticks converted to time.
fn cpu_of(path: &str) -> Duration {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the comm: state is field 3, utime 14, stime 15 (1-based): indexes 11 and 12 here.
    let ticks: u64 = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

async fn udp(host: &Host, addr: SocketAddr) -> tokio::net::UdpSocket {
    let s = host.socket(socket2::Domain::for_address(addr), socket2::Type::DGRAM, None).await.expect("socket");
    s.set_recv_buffer_size(16 << 20).expect("rcvbuf");
    s.set_nonblocking(true).expect("nonblocking");
    s.bind(&addr.into()).expect("bind");
    tokio::net::UdpSocket::from_std(s.into()).expect("tokio socket")
}

/// Sends `n` datagrams paced in groups of 32; returns how many arrived.
async fn blast(client: &Host, server: &Host, n: u32, port: u16) -> u32 {
    let to = SocketAddr::new(IpAddr::V4(server.ipv4().expect("ipv4")), port);
    let rx = udp(server, to).await;
    let tx = client.bind_udp("0.0.0.0:0".parse().expect("literal")).await.expect("bind");
    let mut got = 0u32;
    let mut buf = [0u8; 64];
    for i in 0..n {
        tx.send_to(&i.to_be_bytes(), to).await.expect("send");
        if i % 32 == 31 {
            while rx.try_recv_from(&mut buf).is_ok() {
                got += 1;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    // What is still on its way (delays are 0 here; 200 ms is far more than the path).
    let end = Instant::now() + Duration::from_millis(200);
    while let Ok(Ok(_)) = tokio::time::timeout(end.saturating_duration_since(Instant::now()), rx.recv_from(&mut buf)).await {
        got += 1;
    }
    got
}

async fn echo_rtts(client: &Host, server: &Host, n: u32, port: u16) -> Vec<Duration> {
    let to = SocketAddr::new(IpAddr::V4(server.ipv4().expect("ipv4")), port);
    let s = server.bind_udp(to).await.expect("bind echo");
    let echo = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while let Ok((k, from)) = s.recv_from(&mut buf).await {
            let _ = s.send_to(&buf[..k], from).await;
        }
    });
    let c = client.bind_udp("0.0.0.0:0".parse().expect("literal")).await.expect("bind");
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    for i in 0..n {
        let t = Instant::now();
        c.send_to(&i.to_be_bytes(), to).await.expect("send");
        loop {
            let (k, _) = tokio::time::timeout(Duration::from_secs(10), c.recv_from(&mut buf)).await.expect("echo").expect("recv");
            if k == 4 && buf[..4] == i.to_be_bytes() {
                break;
            }
        }
        out.push(t.elapsed());
    }
    echo.abort();
    out
}

async fn transfer(client: &Host, server: &Host, size: usize, port: u16) -> Duration {
    let addr = SocketAddr::new(IpAddr::V4(server.ipv4().expect("ipv4")), port);
    let l = server.bind_tcp(addr).await.expect("listen");
    let send = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        s.write_all(&vec![1u8; size]).await.expect("write");
        s.shutdown().await.expect("shutdown");
    });
    let mut c = client.connect_tcp(addr).await.expect("connect");
    let mut first = [0u8; 1];
    c.read_exact(&mut first).await.expect("first byte");
    // From the first byte: the handshake is not the rate's.
    let t = Instant::now();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).await.expect("read");
    let d = t.elapsed();
    assert_eq!(rest.len() + 1, size);
    send.await.expect("sender");
    d
}

fn pct(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    nslab::os::rootless::enter().expect("root or rootless mode");
    let n: u32 = std::env::var("NSLAB_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(20000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async {
        let root = tempfile::tempdir().expect("artifacts");
        let lab = Lab::builder().artifacts_in(root.path()).hosts(["server", "client"]).build().await.expect("lab");
        let (server, client) = (lab.host("server").expect("server").clone(), lab.host("client").expect("client").clone());
        // Neighbours resolved, baselines without a condition.
        echo_rtts(&client, &server, 10, 7000).await;
        println!("link conditions, asked vs achieved (n = {n} datagrams, {} echoes)", n / 10);

        // Loss: random then bursty.
        let c0 = cpu_self();
        let base = blast(&client, &server, n, 9000).await;
        let cpu_base = cpu_self() - c0;
        for (name, cond) in [("random (nft numgen)", LinkCondition::new().loss(0.2)), ("bursty, mean 4 (queue, Gilbert)", LinkCondition::new().loss(0.2).burst(4))] {
            lab.set_link_condition("client", &cond).await.expect("apply");
            let tid = lab.links().queue_thread_id("client");
            let (c0, t0) = (cpu_self(), tid.map(cpu_thread));
            let got = blast(&client, &server, n, 9001).await;
            let (cpu, tcpu) = (cpu_self() - c0, tid.map(cpu_thread).zip(t0).map(|(a, b)| a - b));
            let fig = lab.clear_link_condition("client").await.expect("clear").expect("figures");
            let loss = 1.0 - f64::from(got) / f64::from(base);
            println!(
                "loss {name}: asked 20.00%, receiver saw {:.2}% ({} of {base} arrived), mechanism {:.2}%; process CPU {:.0} ms vs {:.0} ms without{}",
                loss * 100.0,
                got,
                fig.loss.map_or(0.0, |l| l.fraction() * 100.0),
                ms(cpu),
                ms(cpu_base),
                tcpu.map_or(String::new(), |t| format!(", queue thread {:.0} ms", ms(t)))
            );
        }

        // Delay 20 ms on the server's replies.
        let echoes = n / 10;
        let c0 = cpu_self();
        let mut base = echo_rtts(&client, &server, echoes, 7001).await;
        let cpu_base = cpu_self() - c0;
        let base50 = pct(&mut base, 0.5);
        for (name, cond) in [
            ("20 ms", LinkCondition::new().delay(Duration::from_millis(20))),
            ("20 ms ± 5 ms", LinkCondition::new().delay(Duration::from_millis(20)).jitter(Duration::from_millis(5))),
        ] {
            lab.set_link_condition("server", &cond).await.expect("apply");
            let tid = lab.links().queue_thread_id("server").expect("queue thread");
            let (c0, t0) = (cpu_self(), cpu_thread(tid));
            let mut rtts = echo_rtts(&client, &server, echoes, 7002).await;
            let (cpu, tcpu) = (cpu_self() - c0, cpu_thread(tid) - t0);
            let fig = lab.clear_link_condition("server").await.expect("clear").expect("figures");
            let d = fig.delay.expect("delay figures");
            let (p50, p99) = (pct(&mut rtts, 0.5), pct(&mut rtts, 0.99));
            println!(
                "delay {name}: held p50 {:.2} ms p99 {:.2} ms ({} packets); echo RTT minus baseline ({:.3} ms) p50 {:.2} ms p99 {:.2} ms; process CPU {:.0} ms vs {:.0} ms without, queue thread {:.0} ms",
                ms(d.p50),
                ms(d.p99),
                d.packets,
                ms(base50),
                ms(p50.saturating_sub(base50)),
                ms(p99.saturating_sub(base50)),
                ms(cpu),
                ms(cpu_base),
                ms(tcpu)
            );
        }

        // Rate: 10 Mbit/s, a 4 MB transfer from the server.
        let size = 4_000_000usize;
        let c0 = cpu_self();
        let t_base = transfer(&client, &server, size, 9100).await;
        let cpu_base = cpu_self() - c0;
        for (name, asked) in [("10 Mbit/s (tbf)", 10_000_000u64)] {
            lab.set_link_condition("server", &LinkCondition::new().rate(asked)).await.expect("apply");
            let c0 = cpu_self();
            let t = transfer(&client, &server, size, 9101).await;
            let cpu = cpu_self() - c0;
            let fig = lab.clear_link_condition("server").await.expect("clear").expect("figures");
            let r = fig.rate.expect("rate figures");
            let goodput = (size - 1) as f64 * 8.0 / t.as_secs_f64();
            println!(
                "rate {name}: achieved {:.2} Mbit/s of payload ({:.2} Mbit/s on the wire by the qdisc's bytes over the same time), {} overlimits; unlimited {:.0} Mbit/s; process CPU {:.0} ms vs {:.0} ms without",
                goodput / 1e6,
                r.bytes as f64 * 8.0 / t.as_secs_f64() / 1e6,
                r.overlimits,
                (size - 1) as f64 * 8.0 / t_base.as_secs_f64() / 1e6,
                ms(cpu),
                ms(cpu_base)
            );
        }
        lab.teardown().await.expect("teardown");
    });
}
