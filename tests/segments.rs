//! Kernel tests of routed labs (nslab::lab::segment): per-segment addressing, routes both ways
//! through two routers in both families, a router's missing route (ICMP unreachable: the errno;
//! black hole: the hang), the DNS host on every segment, per-segment MTU, the PMTUD black hole
//! (a connection that handshakes and then stalls) against working PMTUD, and no leak.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use libtest_mimic::Arguments;
use nslab::lab::segment::{RouteState, RouterSpec, SegmentSpec};
use nslab::{Command, Family, Host, HostSpec, Lab, LabDns, Profile};
use nslab_tests::{ensure, err, kernel_trial, trial_requiring};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() -> std::process::ExitCode {
    nslab_tests::enter_rootless();
    let args = Arguments::from_args();
    let mut trials = vec![
        kernel_trial("addressing/every-interface-has-its-segments-prefixes-and-mac", addressing),
        kernel_trial("routes/ipv4-and-ipv6/hosts-reach-each-other-across-two-routers-both-ways", routes_both_ways),
        kernel_trial("routes/ipv4-only-segment/reaches-a-dual-stack-segment-over-ipv4-only", mixed_profiles),
        kernel_trial("dns/the-dns-host-answers-on-every-segment", dns_everywhere),
        kernel_trial("mtu/links-and-bridge-have-their-segments-mtu", mtu),
        kernel_trial("leak/a-routed-lab-leaves-no-namespace-or-process", leak),
    ];
    for fam in [Family::V4, Family::V6] {
        let f = fam_name(fam);
        trials.push(kernel_trial(format!("missing-route/{f}/unreachable-fails-the-connect-with-enetunreach"), move || missing(fam, RouteState::Unreachable)));
        trials
            .push(kernel_trial(format!("missing-route/{f}/blackhole-hangs-the-connect-until-the-route-is-back"), move || missing(fam, RouteState::Blackhole)));
        trials.push(trial_requiring(format!("pmtud/{f}/blackhole-preset-stalls-after-the-handshake"), &["nft"], move || pmtud(fam, true)));
        trials.push(trial_requiring(format!("pmtud/{f}/without-the-preset-the-transfer-completes"), &["nft"], move || pmtud(fam, false)));
    }
    nslab_tests::run_checking_host(&args, trials)
}

/// A guard against a hang of what must succeed; not a claim about speed.
const GUARD: Duration = Duration::from_secs(30);
/// How long a connect that must not complete is given to show it does not (as tests/link.rs).
const HANG: Duration = Duration::from_secs(3);

fn fam_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

/// lan (client) - r1 - wan - r2 - dc (server): three segments, two routers.
fn three_segments(profile: Profile) -> nslab::LabBuilder {
    Lab::builder()
        .profile(profile)
        .segment(SegmentSpec::new("lan"))
        .segment(SegmentSpec::new("wan"))
        .segment(SegmentSpec::new("dc"))
        .host(HostSpec::new("client").segments(["lan"]))
        .host(HostSpec::new("r1").segments(["lan", "wan"]).router(RouterSpec::new()))
        .host(HostSpec::new("r2").segments(["wan", "dc"]).router(RouterSpec::new()))
        .host(HostSpec::new("server").segments(["dc"]))
}

/// The `ip -o addr`/`ip -o link` output of a host, read by `ip` in it.
async fn ip(h: &Host, args: &[&str]) -> Result<String, String> {
    let p = h.run(Command::new("ip").args(args), GUARD).await.map_err(err)?;
    ensure!(p.exit().is_some_and(|e| e.success()), "ip {} failed in {}: {}", args.join(" "), h.name(), p.output());
    Ok(p.stdout())
}

async fn addressing() -> Result<(), String> {
    let lab = three_segments(Profile::DualStack).build().await.map_err(err)?;
    let r1 = lab.host("r1").map_err(err)?;
    let slot = r1.slot().slot;
    let i = r1.interfaces();
    ensure!(i.len() == 2, "r1 should have two interfaces: {i:?}");
    ensure!((i[0].name.as_str(), i[0].segment.as_str(), i[1].name.as_str(), i[1].segment.as_str()) == ("eth0", "lan", "eth1", "wan"), "{i:?}");
    ensure!(i[0].ipv4 == Some(format!("192.0.2.{slot}").parse().unwrap()), "r1 on lan: {:?}", i[0].ipv4);
    ensure!(i[1].ipv4 == Some(format!("198.51.100.{slot}").parse().unwrap()), "r1 on wan: {:?}", i[1].ipv4);
    ensure!(i[1].ipv6 == Some(format!("2001:db8:2::{slot}").parse().unwrap()), "r1 on wan: {:?}", i[1].ipv6);
    let server = lab.host("server").map_err(err)?;
    let s = server.slot().slot;
    ensure!(server.ipv4() == Some(format!("203.0.113.{s}").parse().unwrap()), "the server's primary is on dc: {:?}", server.ipv4());
    ensure!(server.ipv6() == Some(format!("2001:db8:3::{s}").parse().unwrap()), "{:?}", server.ipv6());
    // What the kernel has, not only what the plan says.
    let addrs = ip(r1, &["-o", "addr", "show", "dev", "eth1"]).await?;
    for want in [format!("198.51.100.{slot}/24"), format!("2001:db8:2::{slot}/64")] {
        ensure!(addrs.contains(&want), "r1's eth1 lacks {want}:\n{addrs}");
    }
    let links = ip(r1, &["-o", "link", "show"]).await?;
    for want in [format!("02:00:5e:10:00:{slot:02x}"), format!("02:00:5e:10:01:{slot:02x}")] {
        ensure!(links.contains(&want), "r1 should have MAC {want} (one per segment):\n{links}");
    }
    let table = lab.address_table();
    ensure!(table["r1"].len() == 4, "the address table lists every interface's addresses: {:?}", table["r1"]);
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// Connects from `client` to `server`'s `addr` and returns the peer address the server saw.
async fn connect_seen(client: &Host, server: &Host, addr: IpAddr, port: u16) -> Result<IpAddr, String> {
    let l = server.bind_tcp(SocketAddr::new(addr, port)).await.map_err(err)?;
    let acc = tokio::spawn(async move { l.accept().await.map(|(_, peer)| peer) });
    tokio::time::timeout(GUARD, client.connect_tcp(SocketAddr::new(addr, port))).await.map_err(|_| format!("connect to {addr} hung"))?.map_err(err)?;
    let peer = acc.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    Ok(peer.ip())
}

async fn routes_both_ways() -> Result<(), String> {
    let lab = three_segments(Profile::DualStack).build().await.map_err(err)?;
    let (client, server) = (lab.host("client").map_err(err)?, lab.host("server").map_err(err)?);
    let mut port = 7000;
    for (a, b) in [(client, server), (server, client)] {
        for dst in b.addrs() {
            port += 1;
            let seen = connect_seen(a, b, dst, port).await.map_err(|e| format!("{} -> {} {dst}: {e}", a.name(), b.name()))?;
            // No NAT: the far end sees the near end's own address on its segment.
            ensure!(a.addrs().contains(&seen), "{} saw {seen}, not one of {}'s addresses {:?}", b.name(), a.name(), a.addrs());
        }
    }
    // Routers reach the far segment through the other router.
    let r1 = lab.host("r1").map_err(err)?;
    let routes = ip(r1, &["-6", "route", "show"]).await?;
    let r2 = lab.host("r2").map_err(err)?;
    let via = r2.interface_in("wan").and_then(|i| i.ipv6).ok_or("r2 has no IPv6 on wan")?;
    ensure!(routes.contains(&format!("2001:db8:3::/64 via {via}")), "r1 should route dc through r2 ({via}):\n{routes}");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

async fn mixed_profiles() -> Result<(), String> {
    let lab = Lab::builder()
        .segment(SegmentSpec::new("office").profile(Profile::Ipv4Only))
        .segment(SegmentSpec::new("dc").profile(Profile::DualStack))
        .host(HostSpec::new("client").segments(["office"]))
        .host(HostSpec::new("router").segments(["office", "dc"]).router(RouterSpec::new()))
        .host(HostSpec::new("server").segments(["dc"]))
        .build()
        .await
        .map_err(err)?;
    let (client, server, router) = (lab.host("client").map_err(err)?, lab.host("server").map_err(err)?, lab.host("router").map_err(err)?);
    ensure!(client.ipv6().is_none() && server.ipv6().is_some(), "families per segment: client {:?}, server {:?}", client.addrs(), server.addrs());
    // The router: IPv6 off on its IPv4-only interface only.
    ensure!(router.sysctl("net.ipv6.conf.eth0.disable_ipv6").await.map_err(err)?.trim() == "1", "IPv6 should be off on the router's office interface");
    ensure!(router.sysctl("net.ipv6.conf.eth1.disable_ipv6").await.map_err(err)?.trim() == "0", "IPv6 should be on on the router's dc interface");
    let v4 = server.ipv4().ok_or("server has no IPv4")?;
    let seen = connect_seen(client, server, v4.into(), 7100).await?;
    ensure!(client.addrs().contains(&seen), "server saw {seen}");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// The outcome of a TCP connect given `wait`: Ok, the errno, or `Hang` when it did not finish.
#[derive(Debug, PartialEq)]
enum Outcome {
    Connected,
    Errno(i32),
    Hang,
}

async fn try_connect(client: &Host, addr: SocketAddr, wait: Duration) -> Outcome {
    match tokio::time::timeout(wait, client.connect_tcp(addr)).await {
        Ok(Ok(_)) => Outcome::Connected,
        Ok(Err(e)) => Outcome::Errno(e.os_error().unwrap_or(-1)),
        Err(_) => Outcome::Hang,
    }
}

async fn missing(fam: Family, state: RouteState) -> Result<(), String> {
    let lab = three_segments(Profile::DualStack).build().await.map_err(err)?;
    let (client, server) = (lab.host("client").map_err(err)?, lab.host("server").map_err(err)?);
    let addr = match fam {
        Family::V4 => IpAddr::V4(server.ipv4().ok_or("no v4")?),
        Family::V6 => IpAddr::V6(server.ipv6().ok_or("no v6")?),
    };
    let other = match fam {
        Family::V4 => IpAddr::V6(server.ipv6().ok_or("no v6")?),
        Family::V6 => IpAddr::V4(server.ipv4().ok_or("no v4")?),
    };
    let l = server.bind_tcp(SocketAddr::new(addr, 7200)).await.map_err(err)?;
    let l2 = server.bind_tcp(SocketAddr::new(other, 7200)).await.map_err(err)?;
    tokio::spawn(async move { while l.accept().await.is_ok() {} });
    tokio::spawn(async move { while l2.accept().await.is_ok() {} });
    let target = SocketAddr::new(addr, 7200);
    ensure!(try_connect(client, target, GUARD).await == Outcome::Connected, "before: the connect should work");
    lab.set_route("r1", fam, state).await.map_err(err)?;
    let got = try_connect(client, target, if state == RouteState::Blackhole { HANG } else { GUARD }).await;
    match state {
        // The router's ICMP destination unreachable (no route) ends the SYN_SENT socket at once.
        RouteState::Unreachable => ensure!(got == Outcome::Errno(libc::ENETUNREACH), "{state} on r1: expected ENETUNREACH (101), got {got:?}"),
        _ => ensure!(got == Outcome::Hang, "{state} on r1: the connect should hang, got {got:?}"),
    }
    // The other family still crosses r1.
    ensure!(try_connect(client, SocketAddr::new(other, 7200), GUARD).await == Outcome::Connected, "the other family should still cross r1");
    // The router's own traffic is untouched: it still reaches the far segment.
    let r1 = lab.host("r1").map_err(err)?;
    ensure!(try_connect(r1, target, GUARD).await == Outcome::Connected, "r1's own connect should not meet the rule");
    lab.set_route("r1", fam, RouteState::Present).await.map_err(err)?;
    ensure!(try_connect(client, target, GUARD).await == Outcome::Connected, "after the route is back the connect should work");
    // A host that is not a router is refused with a clear error.
    let e = lab.set_route("client", fam, state).await.unwrap_err().to_string();
    ensure!(e.contains("host client is not a router"), "{e}");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

async fn dns_everywhere() -> Result<(), String> {
    let lab = Lab::builder()
        .hosts_file_entries(false)
        .dns(LabDns::new())
        .segment(SegmentSpec::new("lan"))
        .segment(SegmentSpec::new("wan").profile(Profile::Ipv4Only).mtu(576))
        .segment(SegmentSpec::new("dc").profile(Profile::Ipv6Only))
        .host(HostSpec::new("a").segments(["lan"]))
        .host(HostSpec::new("b").segments(["wan"]))
        .host(HostSpec::new("c").segments(["dc"]))
        .build()
        .await
        .map_err(err)?;
    let dns = lab.host("dns").map_err(err)?;
    ensure!(dns.interfaces().len() == 3, "the DNS host is on every segment: {:?}", dns.interfaces());
    // With each segment's families: no IPv6 on the IPv4-only one (whose MTU IPv6 could not use).
    let fams: Vec<(bool, bool)> = dns.interfaces().iter().map(|i| (i.ipv4.is_some(), i.ipv6.is_some())).collect();
    ensure!(fams == vec![(true, true), (true, false), (false, true)], "the DNS host's families per segment: {fams:?}");
    for (h, seg) in [("a", "lan"), ("b", "wan"), ("c", "dc")] {
        let host = lab.host(h).map_err(err)?;
        let on = dns.interface_in(seg).ok_or("dns not on segment")?;
        let resolv = host.etc_file("resolv.conf").unwrap_or_default().to_string();
        let want: Vec<String> = host.interfaces()[0]
            .addrs()
            .iter()
            .filter_map(|a| on.addrs().into_iter().find(|d| d.is_ipv4() == a.is_ipv4()))
            .map(|d| format!("nameserver {d}"))
            .collect();
        ensure!(!want.is_empty() && want.iter().all(|w| resolv.contains(w.as_str())), "{h}'s resolv.conf should name {want:?}:\n{resolv}");
        // A real look-up through the lab DNS (no /etc/hosts entries): the answer is the server's.
        let p = host.run(Command::new("getent").args(["ahosts", "a.lab.test"]), GUARD).await.map_err(err)?;
        let a = lab.host("a").map_err(err)?;
        let out = p.stdout();
        ensure!(a.addrs().iter().any(|x| out.contains(&x.to_string())), "{h} should resolve a.lab.test through the DNS host on {seg}:\n{}", p.output());
    }
    lab.teardown().await.map_err(err)?;
    Ok(())
}

async fn mtu() -> Result<(), String> {
    let lab = Lab::builder()
        .segment(SegmentSpec::new("lan"))
        .segment(SegmentSpec::new("transit").mtu(1280))
        .host(HostSpec::new("r").segments(["lan", "transit"]).router(RouterSpec::new()))
        .host(HostSpec::new("far").segments(["transit"]))
        .build()
        .await
        .map_err(err)?;
    let r = lab.host("r").map_err(err)?;
    let links = ip(r, &["-o", "link", "show"]).await?;
    let mtu_of = |name: &str| {
        links.lines().find(|l| l.contains(&format!(" {name}@"))).and_then(|l| l.split(" mtu ").nth(1)?.split_whitespace().next().map(str::to_string))
    };
    ensure!(mtu_of("eth0").as_deref() == Some("1500"), "lan keeps 1500:\n{links}");
    ensure!(mtu_of("eth1").as_deref() == Some("1280"), "transit has 1280:\n{links}");
    ensure!(r.interfaces()[1].mtu == Some(1280), "{:?}", r.interfaces()[1]);
    // A bad MTU is refused before anything is built.
    let e = Lab::builder()
        .segment(SegmentSpec::new("a"))
        .segment(SegmentSpec::new("b").mtu(1000))
        .host(HostSpec::new("h").segments(["b"]))
        .build()
        .await
        .unwrap_err()
        .to_string();
    ensure!(e.contains("segment \"b\" has MTU 1000 and host \"h\" has IPv6 on it"), "{e}");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// The PMTUD topology: client (lan, 1500) - r1 - transit (1280) - r2 - server (dc, 1500), the
/// preset on r2, where the server's full-size segments meet the small link.
async fn pmtud(fam: Family, preset: bool) -> Result<(), String> {
    let profile = match fam {
        Family::V4 => Profile::Ipv4Only,
        Family::V6 => Profile::Ipv6Only,
    };
    let r2 = if preset { RouterSpec::new().drop_packet_too_big() } else { RouterSpec::new() };
    let lab = Lab::builder()
        .profile(profile)
        .segment(SegmentSpec::new("lan"))
        .segment(SegmentSpec::new("transit").mtu(1280))
        .segment(SegmentSpec::new("dc"))
        .host(HostSpec::new("client").segments(["lan"]))
        .host(HostSpec::new("r1").segments(["lan", "transit"]).router(RouterSpec::new()))
        .host(HostSpec::new("r2").segments(["transit", "dc"]).router(r2))
        .host(HostSpec::new("server").segments(["dc"]))
        .build()
        .await
        .map_err(err)?;
    let (client, server, r2) = (lab.host("client").map_err(err)?, lab.host("server").map_err(err)?, lab.host("r2").map_err(err)?.clone());
    let addr = server.addrs()[0];
    const SIZE: usize = 200 * 1024;
    let l = server.bind_tcp(SocketAddr::new(addr, 8080)).await.map_err(err)?;
    let sent = tokio::spawn(async move {
        let (mut s, _) = l.accept().await?;
        s.write_all(&vec![b'x'; SIZE]).await?;
        s.shutdown().await?;
        Ok::<_, std::io::Error>(())
    });
    let mut c =
        tokio::time::timeout(GUARD, client.connect_tcp(SocketAddr::new(addr, 8080))).await.map_err(|_| "the handshake hung".to_string())?.map_err(err)?;
    if preset {
        // The handshake completed (small packets cross). Hold until r2 has dropped the PTB of
        // the first full-size segment and of a retransmission of it: the sender never learns.
        let deadline = tokio::time::Instant::now() + GUARD;
        let mut dropped = 0;
        while dropped < 2 {
            ensure!(tokio::time::Instant::now() < deadline, "r2 dropped {dropped} PTB messages within {GUARD:?}; expected at least 2");
            tokio::time::sleep(Duration::from_millis(50)).await;
            dropped = r2.dropped_packet_too_big().await.map_err(err)?;
        }
        let mut buf = vec![0u8; SIZE];
        let got = match c.try_read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(format!("read failed: {e}")),
        };
        ensure!(got == 0, "the client received {got} bytes although every full-size segment's PTB was dropped ({dropped} dropped)");
        ensure!(!sent.is_finished(), "the server should still be sending");
        sent.abort();
    } else {
        let mut buf = Vec::new();
        tokio::time::timeout(GUARD, c.read_to_end(&mut buf))
            .await
            .map_err(|_| "the transfer stalled without the preset".to_string())?
            .map_err(|e| e.to_string())?;
        ensure!(buf.len() == SIZE, "received {} of {SIZE} bytes", buf.len());
        sent.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        // Kernel PMTUD worked: the server learned the transit's MTU for the client.
        let caddr = client.addrs()[0].to_string();
        let route = ip(server, &["route", "get", &caddr]).await?;
        ensure!(route.contains("mtu 1280"), "the server should have learned path MTU 1280 to {caddr}:\n{route}");
        let e = r2.dropped_packet_too_big().await.unwrap_err().to_string();
        ensure!(e.contains("has no PMTUD black hole preset"), "{e}");
    }
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// Every process with `ino` as a network namespace (its own or an open descriptor).
fn holders(inodes: &BTreeSet<u64>) -> Vec<String> {
    let mut out = Vec::new();
    for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let mut links = vec![];
        if let Ok(l) = std::fs::read_link(p.path().join("ns/net")) {
            links.push(l.to_string_lossy().into_owned());
        }
        if let Ok(fds) = std::fs::read_dir(p.path().join("fd")) {
            links.extend(fds.flatten().filter_map(|f| std::fs::read_link(f.path()).ok()).map(|l| l.to_string_lossy().into_owned()));
        }
        for l in links {
            if let Some(ino) = l.strip_prefix("net:[").and_then(|r| r.strip_suffix(']')).and_then(|i| i.parse::<u64>().ok()) {
                if inodes.contains(&ino) {
                    out.push(format!("pid {} holds {l}", p.file_name().to_string_lossy()));
                }
            }
        }
    }
    out
}

async fn leak() -> Result<(), String> {
    // A dropped lab keeps its artifacts (evidence): in a directory this test removes.
    let kept = tempfile::tempdir().map_err(|e| e.to_string())?;
    for drop_it in [false, true] {
        let lab = three_segments(Profile::DualStack).dns(LabDns::new()).artifacts_in(kept.path()).build().await.map_err(err)?;
        let server = lab.host("server").map_err(err)?;
        let p = server.spawn(Command::new("sleep").arg("600")).await.map_err(err)?;
        let pid = p.pid();
        let inodes: BTreeSet<u64> = lab.netns_inodes().into_iter().collect();
        ensure!(inodes.len() == 6, "switch + 5 hosts: {inodes:?}");
        ensure!(!holders(&inodes).is_empty(), "held while it runs");
        if drop_it {
            drop(lab); // the error path: the backstop cleans up (artifacts kept)
        } else {
            lab.teardown().await.map_err(err)?;
        }
        let deadline = tokio::time::Instant::now() + GUARD;
        loop {
            let left = holders(&inodes);
            let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
            if left.is_empty() && !alive {
                break;
            }
            ensure!(tokio::time::Instant::now() < deadline, "after {}: still there: {left:?}, sleep alive: {alive}", if drop_it { "drop" } else { "teardown" });
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}
