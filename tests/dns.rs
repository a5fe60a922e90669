//! Kernel tests of the lab's DNS server with real resolvers: dig, glibc getaddrinfo (getent), the
//! JVM; in every profile; CNAME swaps, the query log, each fault kind, DNS64.

use std::net::IpAddr;
use std::time::Duration;

use libtest_mimic::Arguments;
use nslab::dns::{Dns64, Fault, FaultTarget, LogFilter, RecordValue as V, Soa, Transport, Zone};
use nslab::{Command, Host, HostSpec, Lab, LabDns, Profile};
use nslab_tests::{ensure, err, trial_requiring};

const T: Duration = Duration::from_secs(20);

fn main() -> std::process::ExitCode {
    nslab_tests::enter_rootless();
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for p in Profile::BASIC {
        trials.push(trial_requiring(format!("dns/{p}/dig-getent-swap-and-query-log"), &["dig", "getent"], move || resolvers(p)));
    }
    for p in [Profile::Ipv4Only, Profile::DualStack, Profile::Ipv6Only] {
        trials.push(trial_requiring(format!("dns/{p}/jvm-resolves-through-the-lab-server"), &["java"], move || jvm(p)));
    }
    trials.push(trial_requiring("dns/faults-seen-by-dig", &["dig"], faults));
    trials.push(trial_requiring("dns/dns64-gives-ipv6-only-hosts-a-synthesized-aaaa", &["dig", "getent"], dns64));
    trials.push(trial_requiring("dns/ipv6-only-nat64-reaches-an-ipv4-only-server-through-tayga", &["tayga", "curl"], nat64));
    libtest_mimic::run(&args, trials).exit_code()
}

fn zone() -> Zone {
    let mut soa = Soa::new("dns.example.test.", "hostmaster.example.test.");
    soa.minimum = 30;
    Zone::new("example.test", soa)
        .record("app", 5, V::Cname("blue".into()))
        .record("blue", 60, V::Host("blue".into()))
        .record("green", 60, V::Host("green".into()))
        .record("info", 120, V::Txt(vec!["nslab lab".into()]))
}

/// What dig printed, normalised: status, flags, and the answer and authority records with
/// single spaces.
#[derive(Debug)]
struct Dig {
    status: String,
    flags: Vec<String>,
    answer: Vec<String>,
    authority: Vec<String>,
    raw: String,
    exit: Option<i32>,
}

async fn dig(h: &Host, args: &[&str]) -> Result<Dig, String> {
    let p = h
        .run(Command::new("dig").args(["+noall", "+comments", "+answer", "+authority", "+nocookie", "+tries=1", "+time=2"]).args(args), T)
        .await
        .map_err(err)?;
    let raw = p.stdout();
    let mut d = Dig { status: String::new(), flags: Vec::new(), answer: Vec::new(), authority: Vec::new(), raw: raw.clone() + &p.stderr(), exit: p.exit().and_then(|e| e.code()) };
    let mut section = "";
    for line in raw.lines() {
        if let Some(rest) = line.split("status: ").nth(1) {
            d.status = rest.split(',').next().unwrap_or("").to_string();
        } else if let Some(rest) = line.strip_prefix(";; flags: ") {
            d.flags = rest.split(';').next().unwrap_or("").split_whitespace().map(String::from).collect();
        } else if line.starts_with(";; ANSWER SECTION") {
            section = "answer";
        } else if line.starts_with(";; AUTHORITY SECTION") {
            section = "authority";
        } else if !line.trim().is_empty() && !line.starts_with(';') {
            let norm = line.split_whitespace().collect::<Vec<_>>().join(" ");
            match section {
                "answer" => d.answer.push(norm),
                "authority" => d.authority.push(norm),
                _ => {}
            }
        }
    }
    Ok(d)
}

fn client_addr(h: &Host) -> IpAddr {
    // Which address the client's queries come from: the first nameserver's family.
    match (h.ipv4(), h.ipv6(), h.link_local()) {
        (Some(v4), _, _) => v4.into(),
        (None, Some(v6), _) => v6.into(),
        (_, _, Some(ll)) => ll.into(),
        _ => unreachable!("every profile has an address"),
    }
}

/// Hosts client, blue and green in `profile`, with the blue/green zone and no /etc/hosts entries
/// (so every name resolves through the lab's DNS server).
async fn blue_green_lab(profile: Profile) -> Result<Lab, String> {
    Lab::builder()
        .profile(profile)
        .hosts(["client", "blue", "green"])
        .hosts_file_entries(false)
        .dns(LabDns::new().zone(zone()))
        .build()
        .await
        .map_err(err)
}

async fn resolvers(profile: Profile) -> Result<(), String> {
    let lab = blue_green_lab(profile).await?;
    let client = lab.host("client").map_err(err)?.clone();
    let blue = lab.host("blue").map_err(err)?.clone();
    let green = lab.host("green").map_err(err)?.clone();
    let dns = lab.dns().expect("lab has DNS").clone();

    // The record type this profile has addresses of (link-local-only hosts have none in DNS).
    let (qtype, addr_of): (&str, fn(&Host) -> Option<String>) = if profile.has_ipv4() {
        ("A", |h| h.ipv4().map(|a| a.to_string()))
    } else if profile.has_global_ipv6() {
        ("AAAA", |h| h.ipv6().map(|a| a.to_string()))
    } else {
        ("TXT", |_| None)
    };

    let d = dig(&client, &["app.example.test", qtype]).await?;
    // Link-local-only hosts have no address DNS can carry, so blue.example.test has no data:
    // the CNAME leads to a name that does not exist (NXDOMAIN with the CNAME, as Knot answers).
    let want_status = if profile == Profile::LinkLocalOnly { "NXDOMAIN" } else { "NOERROR" };
    ensure!(d.status == want_status && d.flags.contains(&"aa".to_string()), "{profile}: dig app: status {} flags {:?}\n{}", d.status, d.flags, d.raw);
    let mut want = vec!["app.example.test. 5 IN CNAME blue.example.test.".to_string()];
    if let Some(a) = addr_of(&blue) {
        want.push(format!("blue.example.test. 60 IN {qtype} {a}"));
    }
    ensure!(d.answer == want, "{profile}: dig app {qtype}: answer {:?}, expected {want:?}\n{}", d.answer, d.raw);

    let d = dig(&client, &["info.example.test", "TXT"]).await?;
    ensure!(d.answer == vec!["info.example.test. 120 IN TXT \"nslab lab\"".to_string()], "{profile}: TXT {:?}", d.answer);
    let d = dig(&client, &["nope.example.test", "A"]).await?;
    ensure!(d.status == "NXDOMAIN", "{profile}: nope: {}", d.status);
    ensure!(
        d.authority.first().is_some_and(|s| s.starts_with("example.test. 30 IN SOA dns.example.test. hostmaster.example.test.")),
        "{profile}: negative answer must carry the SOA with TTL min(ttl, minimum) = 30: {:?}",
        d.authority
    );

    // glibc's getaddrinfo, through the lab's resolv.conf (no /etc/hosts entries for lab hosts).
    let g = client.run(Command::new("getent").args(["ahosts", "app.example.test"]), T).await.map_err(err)?;
    match addr_of(&blue).or_else(|| blue.ipv6().map(|a| a.to_string())) {
        Some(a) if profile != Profile::LinkLocalOnly => ensure!(g.stdout().contains(&a), "{profile}: getent ahosts app should give {a}: {}", g.output()),
        _ => ensure!(g.exit().and_then(|e| e.code()) == Some(2), "{profile}: getent should find no address: {}", g.output()),
    }
    // The search list completes a bare name.
    let g = client.run(Command::new("getent").args(["ahosts", "green"]), T).await.map_err(err)?;
    if let Some(a) = addr_of(&green) {
        ensure!(g.stdout().contains(&format!("{a} ")) && g.stdout().contains("green.example.test"), "{profile}: getent ahosts green should give {a} as green.example.test: {}", g.output());
    }

    // The swap is visible to the very next query.
    let swapped_at = dns.log().now();
    dns.zone("example.test").map_err(err)?.swap_cname("app", "green").await.map_err(err)?;
    let d = dig(&client, &["app.example.test", qtype]).await?;
    ensure!(d.answer.first().map(String::as_str) == Some("app.example.test. 5 IN CNAME green.example.test."), "{profile}: after swap: {:?}", d.answer);

    // The query log saw the client by its lab address, before and after the swap.
    let after = dns.log().query(&LogFilter::new().name("app.example.test").since(swapped_at));
    let want_ip = client_addr(&client);
    ensure!(!after.is_empty(), "{profile}: no query for app after the swap in the log");
    ensure!(
        after.iter().all(|e| e.client.ip() == want_ip && e.rcode == want_status && e.answers.iter().any(|a| a.contains("green.example.test"))),
        "{profile}: log after swap should show {want_ip} getting green: {after:#?}"
    );
    let before = dns.log().query(&LogFilter::new().name("app.example.test").until(swapped_at));
    ensure!(before.iter().any(|e| e.answers.iter().any(|a| a.contains("blue.example.test"))), "{profile}: log before swap should show blue");
    let kept = lab.teardown().await.map_err(err)?;
    ensure!(kept.is_none(), "artifacts should be removed after success");
    Ok(())
}

async fn jvm(profile: Profile) -> Result<(), String> {
    let lab = blue_green_lab(profile).await?;
    let client = lab.host("client").map_err(err)?;
    let blue = lab.host("blue").map_err(err)?;
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/java/Resolve.java");
    let p = client.run(Command::new("java").args(["-Xshare:auto", "-XX:TieredStopAtLevel=1", src, "app.example.test"]), Duration::from_secs(60)).await.map_err(err)?;
    let want: Vec<String> = blue.addrs().iter().map(|a| format!("app.example.test {a}")).collect();
    let got: Vec<String> = p.stdout().lines().map(|l| l.replace("0:0:0:0:0:0:0:", "::")).map(normalize_java_v6).collect();
    ensure!(!want.is_empty() && want.iter().all(|w| got.contains(w)), "{profile}: JVM resolved {got:?}, expected {want:?}\n{}", p.output());
    let log = lab.dns().unwrap().log().query(&LogFilter::new().name("app.example.test"));
    ensure!(log.iter().any(|e| e.client.ip() == client_addr(client)), "{profile}: JVM queries should be in the log from {}", client_addr(client));
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// Java prints IPv6 addresses uncompressed (2001:db8:1:0:0:0:0:23): compress them for comparison.
fn normalize_java_v6(line: String) -> String {
    let Some((name, addr)) = line.split_once(' ') else { return line };
    match addr.parse::<IpAddr>() {
        Ok(a) => format!("{name} {a}"),
        Err(_) => line,
    }
}

async fn faults() -> Result<(), String> {
    let lab = Lab::builder().hosts(["client", "blue", "green"]).dns(LabDns::new().zone(zone())).build().await.map_err(err)?;
    let client = lab.host("client").map_err(err)?.clone();
    let dns = lab.dns().unwrap().clone();
    let f = dns.faults();
    let blue = FaultTarget::Name("blue.example.test".into());
    for (fault, status) in [(Fault::ServFail, "SERVFAIL"), (Fault::NxDomain, "NXDOMAIN"), (Fault::Refused, "REFUSED")] {
        f.set(&blue, fault).map_err(err)?;
        let d = dig(&client, &["blue.example.test", "A"]).await?;
        ensure!(d.status == status, "fault {fault:?}: dig status {}, expected {status}\n{}", d.status, d.raw);
    }
    // Other names are unaffected by a per-name fault.
    let d = dig(&client, &["green.example.test", "A"]).await?;
    ensure!(d.status == "NOERROR" && d.answer.len() == 1, "green should be unaffected: {}", d.raw);

    f.set(&blue, Fault::Drop).map_err(err)?;
    let d = dig(&client, &["blue.example.test", "A"]).await?;
    ensure!(d.exit == Some(9) && d.raw.contains("timed out"), "drop: dig should time out (exit 9): exit {:?}\n{}", d.exit, d.raw);

    f.set(&blue, Fault::Delay(Duration::from_millis(1200))).map_err(err)?;
    let t = std::time::Instant::now();
    let d = dig(&client, &["blue.example.test", "A"]).await?;
    let took = t.elapsed();
    ensure!(d.status == "NOERROR" && took >= Duration::from_millis(1200), "delay: answered {} after {took:?}", d.status);

    for fault in [Fault::Truncate, Fault::TcpOnly] {
        f.set(&blue, fault).map_err(err)?;
        let since = dns.log().now();
        let p = client.run(Command::new("dig").args(["+tries=1", "+time=2", "blue.example.test", "A"]), T).await.map_err(err)?;
        let out = p.stdout();
        ensure!(out.contains(";; Truncated, retrying in TCP mode.") && out.contains("status: NOERROR"), "{fault:?}: dig should retry over TCP and succeed:\n{out}");
        let log = dns.log().query(&LogFilter::new().name("blue.example.test").since(since));
        let transports: Vec<Transport> = log.iter().map(|e| e.transport).collect();
        ensure!(transports == vec![Transport::Udp, Transport::Tcp] && log[0].truncated, "{fault:?}: log should show a truncated UDP answer then TCP: {log:#?}");
    }
    f.clear_all();
    let server = FaultTarget::Server;
    f.set(&server, Fault::ServFail).map_err(err)?;
    let d = dig(&client, &["green.example.test", "A"]).await?;
    ensure!(d.status == "SERVFAIL", "server-wide fault: {}", d.status);
    f.clear_all();
    let d = dig(&client, &["blue.example.test", "A"]).await?;
    ensure!(d.status == "NOERROR", "after clearing: {}", d.status);
    lab.teardown().await.map_err(err)?;
    Ok(())
}

async fn dns64() -> Result<(), String> {
    let lab = Lab::builder()
        .profile(Profile::Ipv6Only)
        .hosts([HostSpec::new("client"), HostSpec::new("legacy").profile(Profile::Ipv4Only)])
        .hosts_file_entries(false)
        .dns(
            LabDns::new()
                .zone(Zone::new("example.test", Soa::new("dns", "hostmaster")).record("legacy", 300, V::Host("legacy".into())))
                .dns64(Dns64::well_known()),
        )
        .build()
        .await
        .map_err(err)?;
    let client = lab.host("client").map_err(err)?;
    let v4 = lab.host("legacy").map_err(err)?.ipv4().unwrap();
    let o = v4.octets();
    let synth: std::net::Ipv6Addr = format!("64:ff9b::{:x}:{:x}", u16::from(o[0]) << 8 | u16::from(o[1]), u16::from(o[2]) << 8 | u16::from(o[3])).parse().unwrap();
    let d = dig(client, &["legacy.example.test", "AAAA"]).await?;
    ensure!(d.answer.iter().any(|a| a.ends_with(&format!("IN AAAA {synth}"))), "DNS64: expected AAAA {synth}, got {:?}\n{}", d.answer, d.raw);
    let g = client.run(Command::new("getent").args(["ahosts", "legacy.example.test"]), T).await.map_err(err)?;
    ensure!(g.stdout().contains(&synth.to_string()), "getent on the IPv6-only host should get {synth}: {}", g.output());
    lab.teardown().await.map_err(err)?;
    Ok(())
}

async fn nat64() -> Result<(), String> {
    let lab = Lab::builder()
        .profile(Profile::Ipv6OnlyNat64)
        .hosts([HostSpec::new("client"), HostSpec::new("legacy").profile(Profile::Ipv4Only)])
        .hosts_file_entries(false)
        .dns(LabDns::new().zone(Zone::new("example.test", Soa::new("dns", "hostmaster")).record("legacy", 300, V::Host("legacy".into()))))
        .build()
        .await
        .map_err(err)?;
    let client = lab.host("client").map_err(err)?.clone();
    let legacy = lab.host("legacy").map_err(err)?.clone();
    ensure!(client.ipv4().is_none() && legacy.ipv6().is_none(), "client must be IPv6-only and legacy IPv4-only");
    let l = legacy.bind_tcp("0.0.0.0:8000".parse().unwrap()).await.map_err(err)?;
    let server = tokio::spawn(async move {
        let (mut s, peer) = l.accept().await.map_err(|e| e.to_string())?;
        use tokio::io::AsyncWriteExt;
        let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\nlegacy\n").await;
        Ok::<_, String>(peer)
    });
    // DNS64 is on by itself in a NAT64 lab; curl resolves a synthesized AAAA and goes through tayga.
    let c = client.run(Command::new("curl").args(["-sS", "--max-time", "5", "-w", " %{remote_ip}", "http://legacy.example.test:8000/"]), T).await.map_err(err)?;
    let out = c.stdout();
    ensure!(out.starts_with("legacy\n 2001:db8:6464::"), "curl through NAT64 should answer from a 2001:db8:6464::/96 address, got {out:?} {}", c.stderr());
    let peer = tokio::time::timeout(Duration::from_secs(2), server).await.map_err(|_| "server saw no connection".to_string())?.map_err(|e| e.to_string())??;
    ensure!(peer.ip().to_string().starts_with("198.51.100."), "the IPv4-only server should see a NAT64 pool address, saw {peer}");
    lab.teardown().await.map_err(err)?;
    Ok(())
}
