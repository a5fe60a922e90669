//! Kernel tests of link conditions without netem (nslab::lab::link): the loss asked is the loss a
//! receiver sees, within a statistical bound; a delay holds packets at least as long as asked; a
//! rate limit keeps to its token bucket; one family conditioned leaves the other untouched; a
//! cleared condition lets everything through again; and nothing is left behind, on the machine
//! (its nftables, iptables and qdiscs) or in the process (the queue thread).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use libtest_mimic::Arguments;
use nslab::lab::link::{LinkCondition, LinkFamily};
use nslab::{HostSpec, Lab, Profile};
use nslab_tests::{ensure, err};

fn main() -> std::process::ExitCode {
    nslab_tests::enter_rootless();
    let args = Arguments::from_args();
    let before = (!args.list && nslab_tests::kernel_unavailable().is_none()).then(machine_filters);
    let trials = vec![
        nslab_tests::trial_requiring("loss/random/20-percent-over-5000-datagrams-within-5-sigma", &["nft"], || loss(false)),
        nslab_tests::trial_requiring("loss/bursty/20-percent-in-bursts-of-4-within-5-sigma", &["iptables"], || loss(true)),
        nslab_tests::trial_requiring("delay/udp-echo-rtt-is-at-least-the-asked-delay", &["iptables"], delay),
        nslab_tests::trial_requiring("delay/ipv6-only/ipv4-packets-are-not-held", &["iptables", "ip6tables"], per_family_delay),
        nslab_tests::trial_requiring("rate/token-bucket-bounds-the-bytes-sent", &["tc"], || rate(LinkFamily::Both)),
        nslab_tests::trial_requiring("rate/ipv6-only/ipv4-bytes-are-not-limited", &["tc"], || rate(LinkFamily::Ipv6)),
        nslab_tests::trial_requiring("clear/a-cleared-condition-lets-packets-through-and-removes-its-rules", &["nft", "iptables", "tc"], clear),
        nslab_tests::trial_requiring("teardown/the-queue-thread-ends-with-the-lab", &["iptables"], queue_thread_ends),
    ];
    let code = nslab_tests::run_checking_host(&args, trials);
    if let Some(before) = before {
        let after = machine_filters();
        if before != after {
            eprintln!("machine firewall/qdiscs: FAILED, changed during these tests:\n--- before\n{before}\n--- after\n{after}");
            return std::process::ExitCode::FAILURE;
        }
        println!("machine firewall/qdiscs: ok (nft list ruleset, iptables -S, ip6tables -S, tc qdisc show identical before and after)");
    }
    code
}

/// The machine's own nftables ruleset, iptables rules and qdiscs, as text.
fn machine_filters() -> String {
    let mut s = String::new();
    for (prog, args) in
        [("nft", &["list", "ruleset"][..]), ("iptables", &["-S"]), ("ip6tables", &["-S"]), ("iptables", &["-t", "mangle", "-S"]), ("tc", &["qdisc", "show"])]
    {
        let out =
            std::process::Command::new(prog).args(args).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_else(|e| format!("<{e}>"));
        s.push_str(&format!("$ {prog} {}\n{out}", args.join(" ")));
    }
    s
}

/// A guard against a hang, not a claim about speed.
const GUARD: Duration = Duration::from_secs(30);

async fn two_hosts(profile: Profile) -> Result<(Lab, nslab::Host, nslab::Host), String> {
    let lab = Lab::builder().profile(profile).hosts([HostSpec::new("server"), HostSpec::new("client")]).build().await.map_err(err)?;
    let server = lab.host("server").map_err(err)?.clone();
    let client = lab.host("client").map_err(err)?.clone();
    Ok((lab, server, client))
}

/// A UDP socket in `host` with a receive buffer large enough that the receiver never drops.
async fn udp(host: &nslab::Host, addr: SocketAddr) -> Result<tokio::net::UdpSocket, String> {
    let s = host.socket(socket2::Domain::for_address(addr), socket2::Type::DGRAM, None).await.map_err(err)?;
    s.set_recv_buffer_size(16 << 20).map_err(|e| e.to_string())?;
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    s.bind(&addr.into()).map_err(|e| e.to_string())?;
    tokio::net::UdpSocket::from_std(s.into()).map_err(|e| e.to_string())
}

/// Sends `n` numbered datagrams from `client` to `server`'s `to`, then an end marker until it
/// arrives; returns which numbers arrived. The loss is on the client's link.
async fn numbered(client: &nslab::Host, server: &nslab::Host, to: SocketAddr, n: u32) -> Result<Vec<bool>, String> {
    let rx = udp(server, to).await?;
    let unspec: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal");
    let tx = client.bind_udp(unspec).await.map_err(err)?;
    let mut got = vec![false; n as usize];
    for i in 0..n {
        tx.send_to(&i.to_be_bytes(), to).await.map_err(|e| e.to_string())?;
        if i % 64 == 63 {
            // Drain what arrived so far; and pace the sender as a program is paced, so that the
            // queue's socket (bursty loss is decided in userspace) is not flooded: the test is of
            // the loss model, the kernel's own queue drops are reported apart.
            drain(&rx, &mut got);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    // The end marker is lost too, at the asked rate: resend until one arrives (the lab's only
    // clock here is the receiver's reads).
    let end = u32::MAX.to_be_bytes();
    let deadline = Instant::now() + GUARD;
    loop {
        tx.send_to(&end, to).await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 8];
        match tokio::time::timeout(Duration::from_millis(20), rx.recv_from(&mut buf)).await {
            Ok(Ok((4, _))) => {
                let v = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes"));
                if v == u32::MAX {
                    break;
                }
                if let Some(g) = got.get_mut(v as usize) {
                    *g = true;
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => ensure!(Instant::now() < deadline, "no end marker arrived within {GUARD:?}"),
        }
    }
    // Datagrams sent before the marker that arrived are queued before it: read them all.
    drain(&rx, &mut got);
    Ok(got)
}

fn drain(rx: &tokio::net::UdpSocket, got: &mut [bool]) {
    let mut buf = [0u8; 8];
    while let Ok((4, _)) = rx.try_recv_from(&mut buf) {
        let v = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes"));
        if let Some(g) = got.get_mut(v as usize) {
            *g = true;
        }
    }
}

/// Mean length of the runs of lost datagrams.
fn mean_burst(got: &[bool]) -> f64 {
    let (mut lost, mut runs, mut prev) = (0u32, 0u32, true);
    for &g in got {
        if !g {
            lost += 1;
            if prev {
                runs += 1;
            }
        }
        prev = g;
    }
    if runs == 0 {
        0.0
    } else {
        f64::from(lost) / f64::from(runs)
    }
}

/// 20% loss over 5000 datagrams. Random: binomial, sigma = sqrt(p(1-p)/N) = 0.57%; bursty (Gilbert,
/// mean burst 4): the chain's correlation widens it by sqrt((1+l)/(1-l)) with l = 1 - q - r =
/// 0.6875, to 1.3%. The bound is 5 sigma: a wrong mechanism (no loss, 2x the loss) fails, chance
/// does not (5 sigma: once in 1.7 million runs). Burstiness tells the two apart: independent losses
/// have mean runs of 1/(1-p) = 1.25, Gilbert's mean runs of 4.
async fn loss(bursty: bool) -> Result<(), String> {
    let (lab, server, client) = two_hosts(Profile::DualStack).await?;
    let mut cond = LinkCondition::new().loss(0.2).family(LinkFamily::Ipv4);
    if bursty {
        cond = cond.burst(4);
    }
    let n = 5000u32;
    let to = SocketAddr::new(IpAddr::V4(server.ipv4().ok_or("server has no IPv4")?), 9000);
    // The neighbour resolved first: packets waiting for ARP are not the link's to lose.
    let _echo = echo_server(&server, SocketAddr::new(to.ip(), 7)).await?;
    echo_rtts(&client, SocketAddr::new(to.ip(), 7), 1).await?;
    lab.set_link_condition("client", &cond).await.map_err(err)?;
    let got = numbered(&client, &server, to, n).await?;
    let arrived = got.iter().filter(|g| **g).count() as f64;
    let loss = 1.0 - arrived / f64::from(n);
    let sigma = if bursty { 0.0057 * (1.6875f64 / 0.3125).sqrt() } else { 0.0057 };
    ensure!(
        (loss - 0.2).abs() <= 5.0 * sigma,
        "asked 20% loss; the receiver saw {:.2}% of {n} datagrams lost (bound ±{:.2}%)",
        loss * 100.0,
        5.0 * sigma * 100.0
    );
    let burst = mean_burst(&got);
    if bursty {
        ensure!(burst > 2.5, "bursty loss: lost datagrams came in runs of mean {burst:.2}, asked 4 (independent losses give 1.25)");
    } else {
        ensure!(burst < 2.0, "random loss: lost datagrams came in runs of mean {burst:.2} (independent losses give 1.25)");
    }
    let fig = lab.link_figures("client").await.map_err(err)?.ok_or("no figures for a host with a condition")?;
    let l = fig.loss.ok_or("no loss figures")?;
    // The mechanism's own count covers the datagrams and end markers: its drops are the lost ones.
    let lost = got.iter().filter(|g| !**g).count() as u64;
    let kernel = fig.delay.map_or(0, |d| d.kernel_dropped);
    ensure!(kernel == 0, "the kernel dropped {kernel} packets before the queue saw them");
    ensure!(l.seen >= u64::from(n) && l.dropped >= lost, "the mechanism counted {} dropped of {} seen; the receiver missed {lost} of {n}", l.dropped, l.seen);
    ensure!((l.fraction() - 0.2).abs() <= 5.0 * sigma, "the mechanism's own count: {:.2}% dropped", l.fraction() * 100.0);
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// Echoes every datagram the `server` gets on `addr`.
async fn echo_server(server: &nslab::Host, addr: SocketAddr) -> Result<tokio::task::JoinHandle<()>, String> {
    let s = server.bind_udp(addr).await.map_err(err)?;
    Ok(tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let _ = s.send_to(&buf[..n], from).await;
        }
    }))
}

/// Round-trip times of `n` echoes, one at a time.
async fn echo_rtts(client: &nslab::Host, to: SocketAddr, n: u32) -> Result<Vec<Duration>, String> {
    let unspec: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal");
    let s = client.bind_udp(unspec).await.map_err(err)?;
    let mut out = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        s.send_to(&i.to_be_bytes(), to).await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 8];
        loop {
            let (len, _) = tokio::time::timeout(GUARD, s.recv_from(&mut buf))
                .await
                .map_err(|_| format!("no echo from {to} within {GUARD:?}"))?
                .map_err(|e| e.to_string())?;
            if len == 4 && buf[..4] == i.to_be_bytes() {
                break;
            }
        }
        out.push(t.elapsed());
    }
    Ok(out)
}

/// The server's replies held 100 ms: every round trip takes at least that (a lower bound; the
/// machine may add, never remove), and the queue's own figures say it held each reply that long.
async fn delay() -> Result<(), String> {
    let (lab, server, client) = two_hosts(Profile::DualStack).await?;
    let asked = Duration::from_millis(100);
    lab.set_link_condition("server", &LinkCondition::new().delay(asked).jitter(Duration::from_millis(5))).await.map_err(err)?;
    let to = SocketAddr::new(IpAddr::V4(server.ipv4().ok_or("no IPv4")?), 7);
    let _echo = echo_server(&server, to).await?;
    let rtts = echo_rtts(&client, to, 20).await?;
    let min = rtts.iter().min().copied().unwrap_or_default();
    ensure!(min >= asked - Duration::from_millis(5), "asked 100 ms ± 5 ms on the server's replies; the shortest round trip was {min:?}");
    let fig = lab.link_figures("server").await.map_err(err)?.ok_or("no figures")?;
    let d = fig.delay.ok_or("no delay figures")?;
    ensure!(d.packets >= 20 && d.min >= asked - Duration::from_millis(5), "the queue held {} packets, shortest {:?}", d.packets, d.min);
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// IPv6 delayed 200 ms, IPv4 not: IPv6 round trips take at least 200 ms, and the queue, which
/// counts every packet it holds, holds none of the IPv4 exchange.
async fn per_family_delay() -> Result<(), String> {
    let (lab, server, client) = two_hosts(Profile::DualStack).await?;
    let asked = Duration::from_millis(200);
    let v4 = SocketAddr::new(IpAddr::V4(server.ipv4().ok_or("no IPv4")?), 7);
    let v6 = SocketAddr::new(IpAddr::V6(server.ipv6().ok_or("no IPv6")?), 7);
    let _e4 = echo_server(&server, v4).await?;
    let _e6 = echo_server(&server, v6).await?;
    // Neighbours resolved before the condition, so that the counts below are the echoes'.
    echo_rtts(&client, v4, 1).await?;
    echo_rtts(&client, v6, 1).await?;
    lab.set_link_condition("server", &LinkCondition::slow_ipv6().delay(asked)).await.map_err(err)?;
    let h0 = held(&lab).await?;
    echo_rtts(&client, v4, 20).await?;
    let h1 = held(&lab).await?;
    ensure!(h1 == h0, "IPv4 must be untouched, yet the IPv6 queue held {} packets during 20 IPv4 echoes", h1 - h0);
    let rtts = echo_rtts(&client, v6, 10).await?;
    let min = rtts.iter().min().copied().unwrap_or_default();
    ensure!(min >= asked, "IPv6 replies held 200 ms; the shortest IPv6 round trip was {min:?}");
    let h2 = held(&lab).await?;
    ensure!(h2 >= h1 + 10, "the queue held {} packets during 10 IPv6 echoes", h2 - h1);
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// The server sends 400 kB over TCP to the client through a 2 Mbit/s limit. By the token
/// bucket's definition the limited class sent at most `burst + rate * T` bytes in any time `T`,
/// so over a `T` measured around the transfer (longer than the transfer: the bound only gets
/// looser under load) the kernel's byte count must keep to it; the limit must have acted
/// (overlimits); and with IPv6 limited, the IPv4 transfer's bytes go by the unlimited class.
async fn rate(family: LinkFamily) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (lab, server, client) = two_hosts(Profile::DualStack).await?;
    let rate_bps = 2_000_000u64;
    lab.set_link_condition("server", &LinkCondition::new().rate(rate_bps).family(family)).await.map_err(err)?;
    let addr = match family {
        LinkFamily::Ipv6 => SocketAddr::new(IpAddr::V4(server.ipv4().ok_or("no IPv4")?), 9100),
        _ => SocketAddr::new(IpAddr::V6(server.ipv6().ok_or("no IPv6")?), 9100),
    };
    let l = server.bind_tcp(addr).await.map_err(err)?;
    let size = 400_000usize;
    let send = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.map_err(|e| e.to_string())?;
        s.write_all(&vec![7u8; size]).await.map_err(|e| e.to_string())?;
        s.shutdown().await.map_err(|e| e.to_string())
    });
    let t0 = Instant::now();
    let mut c = client.connect_tcp(addr).await.map_err(err)?;
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), c.read_to_end(&mut got)).await.map_err(|_| "transfer hung")?.map_err(|e| e.to_string())?;
    let t = t0.elapsed();
    send.await.map_err(|e| e.to_string())??;
    ensure!(got.len() == size, "received {} of {size} bytes", got.len());
    let fig = lab.link_figures("server").await.map_err(err)?.ok_or("no figures")?;
    let r = fig.rate.ok_or("no rate figures")?;
    if family == LinkFamily::Ipv6 {
        ensure!(r.bytes < size as u64 / 10, "IPv4 must be untouched, yet the IPv6 class sent {} bytes during a {size}-byte IPv4 transfer", r.bytes);
        return lab.teardown().await.map(|_| ()).map_err(err);
    }
    // tbf sends a packet only when the bucket holds its whole length: bytes <= burst + rate * T.
    let burst = (rate_bps / 8 / 100).max(3100);
    let bound = burst as f64 + rate_bps as f64 / 8.0 * t.as_secs_f64();
    ensure!(r.bytes >= size as u64, "the limited class sent {} bytes, less than the {size} bytes of the transfer", r.bytes);
    ensure!(r.bytes as f64 <= bound, "the limited class sent {} bytes in {t:?}: more than burst + rate × T = {bound:.0}", r.bytes);
    ensure!(r.overlimits > 0, "the limit never acted (overlimits 0) on a {size}-byte transfer");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// Text of a tool run inside a host.
async fn inside(host: &nslab::Host, prog: &str, args: &[&str]) -> Result<String, String> {
    let p = host.run(nslab::Command::new(prog).args(args), GUARD).await.map_err(err)?;
    Ok(p.stdout())
}

/// 100% loss and a delay and a rate: nothing arrives and the mechanisms count it; after clear,
/// the rules, queue hook and qdisc are gone from the host and datagrams arrive again.
async fn clear() -> Result<(), String> {
    let (lab, server, client) = two_hosts(Profile::DualStack).await?;
    let to = SocketAddr::new(IpAddr::V4(server.ipv4().ok_or("no IPv4")?), 7);
    let _echo = echo_server(&server, to).await?;
    lab.set_link_condition("client", &LinkCondition::new().loss(1.0).delay(Duration::from_millis(10)).rate(10_000_000)).await.map_err(err)?;
    let s = client.bind_udp("0.0.0.0:0".parse().expect("literal")).await.map_err(err)?;
    for i in 0u32..10 {
        s.send_to(&i.to_be_bytes(), to).await.map_err(|e| e.to_string())?;
    }
    // The queue holds them 10 ms before the loss rule sees them: wait for the rule's count.
    let deadline = Instant::now() + GUARD;
    let l = loop {
        let fig = lab.link_figures("client").await.map_err(err)?.ok_or("no figures")?;
        let l = fig.loss.ok_or("no loss figures")?;
        if l.seen >= 10 || Instant::now() > deadline {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    ensure!(l.dropped >= 10 && l.dropped == l.seen, "100% loss: the rule dropped {} of {} packets", l.dropped, l.seen);
    let ruleset = inside(&client, "nft", &["list", "ruleset"]).await?;
    ensure!(ruleset.contains("nslab_link"), "the loss table is missing while applied:\n{ruleset}");
    let last = lab.clear_link_condition("client").await.map_err(err)?.ok_or("clear returned no figures")?;
    ensure!(last.loss.is_some_and(|l| l.dropped >= 10), "clear's last figures lost the drops: {last:?}");
    let ruleset = inside(&client, "nft", &["list", "ruleset"]).await?;
    ensure!(!ruleset.contains("nslab_link"), "the loss table is left after clear:\n{ruleset}");
    let mangle = inside(&client, "iptables", &["-t", "mangle", "-S"]).await?;
    ensure!(!mangle.contains("NFQUEUE"), "the queue rule is left after clear:\n{mangle}");
    let qdisc = inside(&client, "tc", &["qdisc", "show", "dev", client.interface()]).await?;
    ensure!(!qdisc.contains("htb"), "the rate qdisc is left after clear:\n{qdisc}");
    ensure!(lab.link_figures("client").await.map_err(err)?.is_none(), "figures remain after clear");
    echo_rtts(&client, to, 5).await?;
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// Names of this process's threads.
fn threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.flatten().filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok()).map(|s| s.trim().to_string()).collect())
        .unwrap_or_default()
}

/// A lab built with a delayed host (from its spec) runs a queue thread; after teardown the
/// thread is gone.
async fn queue_thread_ends() -> Result<(), String> {
    let lab = Lab::builder()
        .hosts([HostSpec::new("qthread").link(LinkCondition::new().delay(Duration::from_millis(5))), HostSpec::new("peer")])
        .build()
        .await
        .map_err(err)?;
    let tid = lab.links().queue_thread_id("qthread").ok_or("no queue thread for a delayed host")?;
    ensure!(threads().iter().any(|t| t == "nslab-link-qthr"), "no thread named nslab-link-qthr: {:?}", threads());
    ensure!(std::path::Path::new(&format!("/proc/self/task/{tid}")).exists(), "queue thread {tid} not running");
    lab.teardown().await.map_err(err)?;
    ensure!(!std::path::Path::new(&format!("/proc/self/task/{tid}")).exists(), "queue thread {tid} still runs after teardown");
    Ok(())
}

/// Packets the server's queue has held so far.
async fn held(lab: &Lab) -> Result<u64, String> {
    Ok(lab.link_figures("server").await.map_err(err)?.and_then(|f| f.delay).map_or(0, |d| d.packets))
}
