//! Kernel tests of IPv6 provisioning by the real protocols: radvd in a router host advertises,
//! the hosts' kernels do SLAAC (with DAD where the host has it), rdisc6 sees the DNS options,
//! renumbering deprecates, advertising stops, the lab DNS follows, and nothing is left behind.

use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;

use libtest_mimic::Arguments;
use nslab::lab::provision::{dhcp, ra, AddrState, Mode, Provisioner, RaConfig};
use nslab::{Command, HostSpec, Lab, LabDns, Profile};
use nslab_tests::{ensure, err, trial_requiring};

fn main() -> std::process::ExitCode {
    nslab_tests::enter_rootless();
    let args = Arguments::from_args();
    let trials = vec![
        trial_requiring("slaac/dad/address-arrives-tentative-then-usable", &["radvd"], || arrives(true)),
        trial_requiring("slaac/no-dad/address-arrives-usable-at-once", &["radvd"], || arrives(false)),
        trial_requiring("ra/rdnss-and-dnssl-seen-by-rdisc6", &["radvd", "rdisc6"], rdnss_dnssl),
        trial_requiring("renumber/old-prefix-deprecated-new-one-preferred", &["radvd"], renumber),
        trial_requiring("ipv6-only/ipv4-addresses-go-slaac-arrives", &["radvd", "ip"], ipv6_only),
        trial_requiring("stop-advertising/default-route-goes-addresses-stay", &["radvd", "ip"], stop_advertising),
        trial_requiring("aaaa/record-appears-after-the-address-is-usable", &["radvd"], aaaa_follows),
        trial_requiring("dns64/switched-on-and-off-for-the-segment", &["radvd"], dns64_switch),
        trial_requiring("dhcpv6/lease-from-kea-via-dhclient", &["radvd", "kea-dhcp6", "dhclient"], dhcpv6),
    ];
    nslab_tests::run_checking_host(&args, trials)
}

/// A hang guard for what the kernel and radvd must do (an advertisement every 3-4 s, DAD 1-2 s),
/// not a claim about speed.
const GUARD: Duration = Duration::from_secs(60);

async fn lab(dad: bool, dns: bool) -> Result<(Lab, Provisioner), String> {
    // No /etc/hosts entries: names are resolved by the lab DNS, whose AAAA records follow.
    let mut b = Lab::builder().profile(Profile::Ipv4Only).hosts_file_entries(false).hosts([
        HostSpec::new("router").dad(dad),
        HostSpec::new("web").dad(dad),
        HostSpec::new("worker").dad(dad),
    ]);
    if dns {
        b = b.dns(LabDns::new());
    }
    let lab = b.build().await.map_err(err)?;
    let router = lab.host("router").map_err(err)?.clone();
    let hosts: Vec<nslab::Host> = lab.hosts().iter().filter(|h| h.name() == "web" || h.name() == "worker").cloned().collect();
    let cfg = RaConfig { rdnss: vec!["2001:db8:1::35".parse().expect("literal")], dnssl: vec!["lab.test".into()], ..RaConfig::default() };
    let p = Provisioner::prepare(&router, router.interface(), &hosts, cfg, lab.epoch()).await.map_err(err)?;
    Ok((lab, p))
}

async fn finish(lab: Lab, p: Provisioner) -> Result<(), String> {
    let pids = lab.process_ids();
    p.teardown().await;
    lab.teardown().await.map_err(err)?;
    let left: Vec<u32> = pids.into_iter().filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists()).collect();
    ensure!(left.is_empty(), "processes of the lab left after teardown: {left:?}");
    Ok(())
}

async fn arrives(dad: bool) -> Result<(), String> {
    let (lab, p) = lab(dad, false).await?;
    let web = lab.host("web").map_err(err)?.clone();
    let prefix = ra::segment_prefix(0);
    // Before the router advertises: IPv6 on (a kernel link-local address), no global address.
    let before = p.watch().current("web");
    ensure!(before.iter().all(|(a, _)| a.segments()[0] == 0xfe80), "web has a global address before any advertisement: {before:?}");
    ensure!(before.iter().any(|(a, _)| a.segments()[0] == 0xfe80), "web has no kernel link-local address after prepare: {before:?}");
    let global = web.addrs();
    ensure!(global.iter().all(|a| a.is_ipv4()), "an ipv4-only host's plan has an IPv6 address: {global:?}");
    p.ipv6_arrives(Mode::DualStack).await.map_err(err)?;
    let usable = p.wait_address(&web, prefix, AddrState::Usable, GUARD).await.map_err(err)?;
    // DAD's probes are neighbour solicitations; web sends none otherwise before it talks to
    // anyone (the router's advertisement gave it the router's link-layer address).
    let probes = solicitations_sent(&web).await?;
    let tentative = p.watch().events().into_iter().find(|e| e.host == "web" && e.addr == usable.addr && e.state == AddrState::Tentative);
    if dad {
        let t = tentative.ok_or_else(|| format!("with DAD, {} should have been tentative before usable: {:?}", usable.addr, p.watch().events()))?;
        ensure!(t.at <= usable.at, "tentative at {:?} after usable at {:?}", t.at, usable.at);
        ensure!(probes >= 1, "with DAD, web sent no neighbour solicitation before {} was usable", usable.addr);
    } else {
        // Not "never tentative": the kernel flags every new address tentative until its DAD work
        // item runs, which without DAD clears the flag at once and sends nothing; a list of the
        // addresses taken in between (the watcher's, on the prefix event) shows the flag.
        ensure!(probes == 0, "without DAD, web sent {probes} neighbour solicitation(s) before {} was usable (tentative: {tentative:?})", usable.addr);
    }
    // SLAAC made it from the MAC (EUI-64) inside the advertised prefix, and it serves.
    ensure!(ra::in_prefix(usable.addr, prefix), "{} not in {prefix}/64", usable.addr);
    let l = web.bind_tcp(SocketAddr::new(usable.addr.into(), 8080)).await.map_err(err)?;
    let worker = lab.host("worker").map_err(err)?.clone();
    p.wait_address(&worker, prefix, AddrState::Usable, GUARD).await.map_err(err)?;
    let c = worker.connect_tcp(SocketAddr::new(usable.addr.into(), 8080));
    let (c, a) = tokio::join!(tokio::time::timeout(GUARD, c), l.accept());
    c.map_err(|_| "connect to the SLAAC address hung".to_string())?.map_err(err)?;
    a.map_err(|e| e.to_string())?;
    drop(l);
    finish(lab, p).await
}

/// Neighbour solicitations `host` has sent on its lab interface (`/proc/net/dev_snmp6`).
async fn solicitations_sent(host: &nslab::Host) -> Result<u64, String> {
    let path = format!("/proc/thread-self/net/dev_snmp6/{}", host.interface());
    let text = host.in_netns(move || std::fs::read_to_string(path)).await.map_err(err)?.map_err(|e| e.to_string())?;
    let name = "Icmp6OutNeighborSolicits";
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).ok_or_else(|| format!("no {name} in {}'s dev_snmp6", host.name()))
}

async fn rdnss_dnssl() -> Result<(), String> {
    let (lab, p) = lab(false, false).await?;
    let web = lab.host("web").map_err(err)?.clone();
    p.ipv6_arrives(Mode::DualStack).await.map_err(err)?;
    // rdisc6 solicits and prints the advertisement it gets back (-1: the first one).
    let out = web.run(Command::new("rdisc6").args(["-1", "-r", "10", "-w", "2000", web.interface()]).name("rdisc6"), GUARD).await.map_err(err)?;
    let text = out.output();
    ensure!(out.exit().is_some_and(|e| e.success()), "rdisc6 failed: {text}");
    ensure!(text.contains("Recursive DNS server     : 2001:db8:1::35"), "rdisc6 did not show the RDNSS option: {text}");
    ensure!(text.contains("DNS search list          : lab.test"), "rdisc6 did not show the DNSSL option: {text}");
    ensure!(text.contains("Prefix                   : 2001:db8:1::/64"), "rdisc6 did not show the prefix: {text}");
    finish(lab, p).await
}

async fn renumber() -> Result<(), String> {
    let (lab, p) = lab(false, false).await?;
    let web = lab.host("web").map_err(err)?.clone();
    let old = ra::segment_prefix(0);
    p.ipv6_arrives(Mode::DualStack).await.map_err(err)?;
    let first = p.wait_address(&web, old, AddrState::Usable, GUARD).await.map_err(err)?;
    let new = p.renumber().await.map_err(err)?;
    ensure!(new == "2001:db8:1:1::".parse::<Ipv6Addr>().expect("literal"), "first renumbering prefix {new}");
    let dep = p.wait_address(&web, old, AddrState::Deprecated, GUARD).await.map_err(err)?;
    ensure!(dep.addr == first.addr, "another address got deprecated: {} (had {})", dep.addr, first.addr);
    ensure!(dep.preferred == Some(0), "deprecated with preferred lifetime {:?}, expected 0", dep.preferred);
    let fresh = p.wait_address(&web, new, AddrState::Usable, GUARD).await.map_err(err)?;
    // The deprecated address stays on the interface (valid lifetime left), usable by a bind.
    let now = p.watch().current("web");
    ensure!(now.contains(&(first.addr, AddrState::Deprecated)) && now.contains(&(fresh.addr, AddrState::Usable)), "addresses now: {now:?}");
    let l = web.bind_tcp(SocketAddr::new(first.addr.into(), 8081)).await.map_err(err)?;
    drop(l);
    finish(lab, p).await
}

async fn default_route(h: &nslab::Host) -> Result<String, String> {
    let out = h.run(Command::new("ip").args(["-6", "route", "show", "default"]).name("ip-route"), GUARD).await.map_err(err)?;
    Ok(out.stdout())
}

async fn stop_advertising() -> Result<(), String> {
    let (lab, p) = lab(false, false).await?;
    let web = lab.host("web").map_err(err)?.clone();
    p.ipv6_arrives(Mode::DualStack).await.map_err(err)?;
    let addr = p.wait_address(&web, ra::segment_prefix(0), AddrState::Usable, GUARD).await.map_err(err)?;
    let route = default_route(&web).await?;
    ensure!(route.contains("proto ra"), "no default route from the advertisement: {route:?}");
    p.stop_advertising().await.map_err(err)?;
    ensure!(!p.advertising().await, "radvd still running after stop-advertising");
    // radvd's last advertisement (router lifetime 0) removes the default route; it was sent
    // before radvd exited, the host handles it from its softirq: wait for the kernel's state.
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let r = default_route(&web).await?;
        if r.trim().is_empty() {
            break;
        }
        ensure!(tokio::time::Instant::now() < deadline, "the default route is still there after radvd ended: {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let now = p.watch().current("web");
    ensure!(now.contains(&(addr.addr, AddrState::Usable)), "the SLAAC address should stay until its valid lifetime ends: {now:?}");
    finish(lab, p).await
}

async fn aaaa_follows() -> Result<(), String> {
    let (lab, p) = lab(true, true).await?;
    let web = lab.host("web").map_err(err)?.clone();
    let dns = lab.dns_server().map_err(err)?.clone();
    p.follow_aaaa(Some(&dns)).await;
    p.ipv6_arrives(Mode::DualStack).await.map_err(err)?;
    let usable = p.wait_address(&web, ra::segment_prefix(0), AddrState::Usable, GUARD).await.map_err(err)?;
    let deadline = tokio::time::Instant::now() + GUARD;
    let published = loop {
        if let Some(e) = p.aaaa_log().into_iter().find(|(_, h, a)| h == "web" && a.contains(&usable.addr)) {
            break e;
        }
        ensure!(tokio::time::Instant::now() < deadline, "no AAAA for web's {} published", usable.addr);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    ensure!(published.0 >= usable.at, "AAAA published at {:?}, before the address was usable at {:?}", published.0, usable.at);
    let tentative = p.watch().events().into_iter().find(|e| e.host == "web" && e.addr == usable.addr && e.state == AddrState::Tentative);
    ensure!(tentative.is_some(), "with DAD the address should have been tentative first");
    // A program in the segment resolves it.
    let out = lab.host("worker").map_err(err)?.run(Command::new("getent").args(["ahostsv6", "web.lab.test"]).name("getent"), GUARD).await.map_err(err)?;
    ensure!(out.stdout().contains(&usable.addr.to_string()), "getent ahostsv6 web.lab.test: {:?}", out.output());
    finish(lab, p).await
}

async fn dns64_switch() -> Result<(), String> {
    let lab = Lab::builder()
        .profile(Profile::Ipv4Only)
        .hosts(["router", "web"])
        .dns(LabDns::new().zone(nslab::dns::Zone::new("example.test", nslab::dns::Soa::new("dns.lab.test.", "h.lab.test.")).record(
            "legacy",
            60,
            nslab::dns::RecordValue::A("192.0.2.200".parse().expect("literal")),
        )))
        .build()
        .await
        .map_err(err)?;
    let router = lab.host("router").map_err(err)?.clone();
    let web = lab.host("web").map_err(err)?.clone();
    let p = Provisioner::prepare(&router, router.interface(), std::slice::from_ref(&web), RaConfig::default(), lab.epoch()).await.map_err(err)?;
    let dns = lab.dns_server().map_err(err)?.clone();
    let ask = |h: nslab::Host| async move {
        let out = h.run(Command::new("getent").args(["ahostsv6", "legacy.example.test"]).name("getent"), GUARD).await.map_err(err)?;
        Ok::<String, String>(out.stdout())
    };
    let off = ask(web.clone()).await?;
    ensure!(!off.contains("2001:db8:6464::"), "an AAAA was synthesized before DNS64 was switched on: {off:?}");
    p.set_dns64(&dns, Some(nslab::dns::Dns64::new(nslab::lab::nat64::PREFIX, 96).map_err(|e| e.to_string())?)).await.map_err(err)?;
    let on = ask(web.clone()).await?;
    ensure!(on.contains("2001:db8:6464::c000:2c8"), "no synthesized AAAA (2001:db8:6464::c000:2c8) with DNS64 on for the segment: {on:?}");
    p.set_dns64(&dns, None).await.map_err(err)?;
    let again = ask(web.clone()).await?;
    ensure!(!again.contains("2001:db8:6464::"), "an AAAA was synthesized after DNS64 was switched off: {again:?}");
    finish(lab, p).await
}

async fn dhcpv6() -> Result<(), String> {
    let lab = Lab::builder().profile(Profile::Ipv4Only).hosts(["router", "web"]).build().await.map_err(err)?;
    let router = lab.host("router").map_err(err)?.clone();
    let web = lab.host("web").map_err(err)?.clone();
    let cfg = RaConfig { managed: true, other: true, ..RaConfig::default() };
    let p = Provisioner::prepare(&router, router.interface(), std::slice::from_ref(&web), cfg, lab.epoch()).await.map_err(err)?;
    p.ipv6_arrives(Mode::DualStack).await.map_err(err)?;
    p.start_dhcp6(std::slice::from_ref(&web)).await.map_err(err)?;
    let leased = p
        .watch()
        .wait_for("web to get an address from the DHCPv6 pool", GUARD, |e| e.host == "web" && dhcp::in_pool(e.addr, 0) && e.state == AddrState::Usable)
        .await
        .map_err(err)?;
    ensure!(
        leased.prefix_len == 128,
        "the leased address {} has prefix length {}, expected 128 (the prefix comes from the RA)",
        leased.addr,
        leased.prefix_len
    );
    // The lease seen by both sides: kea's lease file and dhclient's event (BOUND6).
    let events = dhcp::client_events(&web);
    ensure!(events.iter().any(|l| l.starts_with(&format!("BOUND6 {}", leased.addr))), "dhclient's script saw no BOUND6 for {}: {events:?}", leased.addr);
    let deadline = tokio::time::Instant::now() + GUARD;
    while !dhcp::server_leases(&router).contains(&leased.addr) {
        ensure!(tokio::time::Instant::now() < deadline, "kea's lease file has no lease for {}: {:?}", leased.addr, dhcp::server_leases(&router));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The SLAAC address arrives beside it (the prefix is autonomous too).
    p.watch()
        .wait_for("web's SLAAC address", GUARD, |e| {
            e.host == "web" && ra::in_prefix(e.addr, ra::segment_prefix(0)) && !dhcp::in_pool(e.addr, 0) && e.state == AddrState::Usable
        })
        .await
        .map_err(err)?;
    finish(lab, p).await
}

async fn ipv6_only() -> Result<(), String> {
    let (lab, p) = lab(false, false).await?;
    let web = lab.host("web").map_err(err)?.clone();
    let router = lab.host("router").map_err(err)?.clone();
    let v4 = |h: nslab::Host| async move {
        let out = h.run(Command::new("ip").args(["-4", "-o", "addr", "show", "dev", h.interface()]).name("ip-addr"), GUARD).await.map_err(err)?;
        Ok::<String, String>(out.stdout())
    };
    ensure!(v4(web.clone()).await?.contains("192.0.2."), "web should start with its IPv4 address");
    p.ipv6_arrives(Mode::Ipv6Only).await.map_err(err)?;
    p.wait_address(&web, ra::segment_prefix(0), AddrState::Usable, GUARD).await.map_err(err)?;
    let left = v4(web.clone()).await?;
    ensure!(left.trim().is_empty(), "web still has IPv4 after ipv6-arrives with mode ipv6-only: {left:?}");
    // The router keeps its IPv4 address (it is not one of the segment's hosts).
    ensure!(v4(router).await?.contains("192.0.2."), "the router lost its IPv4 address");
    finish(lab, p).await
}
