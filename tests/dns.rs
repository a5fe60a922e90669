//! Kernel tests of the lab's DNS server with real resolvers: dig, glibc getaddrinfo (getent), the
//! JVM; in every profile; CNAME swaps, serial bumps, the query log (and its artifact file), TCP
//! over every family, each fault kind, DNS64.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use libtest_mimic::Arguments;
use nslab::dns::{Dns64, Fault, FaultTarget, LogFilter, QueryLogEntry, RecordSpec, RecordType, RecordValue as V, ResponseCode, Soa, Transport, Zone};
use nslab::{Command, Host, HostSpec, Lab, LabDns, Profile};
use nslab_tests::{ensure, err, kernel_trial, trial_requiring};

const T: Duration = Duration::from_secs(20);

fn main() -> std::process::ExitCode {
    nslab_tests::enter_rootless();
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for p in Profile::ALL {
        trials.push(trial_requiring(format!("dns/{p}/dig-getent-swap-serial-tcp-and-query-log"), &["dig", "getent"], move || resolvers(p)));
    }
    for p in Profile::ALL {
        trials.push(trial_requiring(format!("dns/{p}/jvm-resolves-through-the-lab-server"), &["java"], move || jvm(p)));
    }
    trials.push(trial_requiring("dns/faults-seen-by-dig", &["dig"], faults));
    trials.push(trial_requiring("dns/tcp-only-drops-udp-and-answers-tcp", &["dig", "getent"], tcp_only));
    trials.push(trial_requiring("dns/query-log-is-in-the-kept-artifacts", &["dig"], query_log_artifact));
    trials.push(kernel_trial("dns/a-host-sharing-no-family-with-the-dns-host-fails-the-build", no_common_family));
    for p in [Profile::DualStack, Profile::Ipv6Only] {
        trials.push(trial_requiring(format!("dns/{p}/each-host-asks-the-resolver-it-names-with-its-options"), &["getent"], move || resolver_choice(p)));
    }
    trials.push(kernel_trial("dns/a-resolver-the-host-cannot-reach-fails-the-build", resolver_unreachable));
    for p in [Profile::DualStack, Profile::Ipv6Only] {
        trials.push(trial_requiring(format!("dns/{p}/unbound-primes-from-the-lab-root-then-iterates"), &["unbound", "dig"], move || recurse_from_root(p)));
    }
    trials.push(trial_requiring("dns/wait-query-filtered-by-host-returns-that-hosts-query", &["dig"], wait_query_by_host));
    trials.push(trial_requiring("dns/wait-dns-query-step-ends-when-the-query-came", &["dig"], wait_step_ends_at_the_query));
    trials.push(kernel_trial("dns/a-lab-without-dns-says-so-when-asked-for-its-server", no_dns_server));
    trials.push(kernel_trial("dns/a-declared-host-named-dns-is-refused-unless-placed-with-on-host", host_named_dns));
    trials.push(trial_requiring("dns/dns64-gives-ipv6-only-hosts-a-synthesized-aaaa", &["dig", "getent"], dns64));
    trials.push(trial_requiring("dns/ipv6-only-nat64-reaches-an-ipv4-only-server-through-tayga", &["tayga", "curl"], nat64));
    nslab_tests::run_checking_host(&args, trials)
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

/// The flags of every answer from the lab server to dig: a response (qr), authoritative (aa),
/// and dig's recursion-desired bit copied back (rd); never recursion available (ra).
const FLAGS: [&str; 3] = ["qr", "aa", "rd"];

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
    let mut d = Dig {
        status: String::new(),
        flags: Vec::new(),
        answer: Vec::new(),
        authority: Vec::new(),
        raw: raw.clone() + &p.stderr(),
        exit: p.exit().and_then(|e| e.code()),
    };
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

impl Dig {
    /// Checks the status and the exact flags (`qr aa rd`).
    fn expect(&self, what: &str, status: &str) -> Result<(), String> {
        ensure!(
            self.status == status && self.flags == FLAGS,
            "{what}: dig status {} flags {:?}, expected {status} {FLAGS:?}\n{}",
            self.status,
            self.flags,
            self.raw
        );
        Ok(())
    }
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

/// Whether NSLAB_KEEP_ARTIFACTS=1 asks every lab to keep its artifacts.
fn keep_artifacts_asked() -> bool {
    std::env::var_os("NSLAB_KEEP_ARTIFACTS").is_some_and(|v| v == "1")
}

/// After a successful teardown: artifacts are removed, unless NSLAB_KEEP_ARTIFACTS=1 keeps them.
fn expect_artifacts_as_asked(kept: Option<PathBuf>) -> Result<(), String> {
    if keep_artifacts_asked() {
        ensure!(kept.is_some(), "NSLAB_KEEP_ARTIFACTS=1: the artifacts should have been kept");
    } else {
        ensure!(kept.is_none(), "artifacts should be removed after success, kept in {kept:?}");
    }
    Ok(())
}

/// Hosts client, blue and green in `profile`, with the blue/green zone and no /etc/hosts entries
/// (so every name resolves through the lab's DNS server). Where blue has a link-local address,
/// `blue-ll.example.test` carries it (AAAA, added at runtime): the one address a link-local-only
/// host can get from DNS.
async fn blue_green_lab(profile: Profile) -> Result<Lab, String> {
    let lab = Lab::builder()
        .profile(profile)
        .hosts(["client", "blue", "green"])
        .hosts_file_entries(false)
        .dns(LabDns::new().zone(zone()))
        .build()
        .await
        .map_err(err)?;
    if let Some(ll) = lab.host("blue").map_err(err)?.link_local() {
        lab.dns().expect("lab has DNS").zone("example.test").map_err(err)?.add_record(RecordSpec::new("blue-ll", 60, V::Aaaa(ll))).await.map_err(err)?;
    }
    Ok(lab)
}

/// The query log's entries for `name` since `at`.
fn logged(lab: &Lab, name: &str, at: Duration) -> Vec<QueryLogEntry> {
    lab.dns().expect("lab has DNS").log().query(&LogFilter::new().name(name).since(at))
}

/// The distinct addresses `getent ahosts` printed (first column).
fn getent_addrs(out: &str) -> BTreeSet<String> {
    out.lines().filter_map(|l| l.split_whitespace().next()).map(String::from).collect()
}

/// The addresses of `target` that glibc's getaddrinfo (AI_ADDRCONFIG, as getent ahosts asks)
/// returns on `client`: IPv4 if the client has a non-loopback IPv4 address, IPv6 if it has any
/// non-loopback IPv6 address (link-local counts).
fn expected_gai(client: &Host, target: &Host) -> BTreeSet<String> {
    let v4 = client.ipv4().is_some();
    let v6 = client.ipv6().is_some() || client.link_local().is_some();
    target.addrs().into_iter().filter(|a| if a.is_ipv4() { v4 } else { v6 }).map(|a| a.to_string()).collect()
}

async fn resolvers(profile: Profile) -> Result<(), String> {
    let lab = blue_green_lab(profile).await?;
    let client = lab.host("client").map_err(err)?.clone();
    let blue = lab.host("blue").map_err(err)?.clone();
    let green = lab.host("green").map_err(err)?.clone();
    let dns_host = lab.host("dns").map_err(err)?.clone();
    let dns = lab.dns().expect("lab has DNS").clone();
    let me = client_addr(&client);

    // The record type this profile has addresses of (link-local-only hosts have none in DNS).
    let (qtype, addr_of): (&str, fn(&Host) -> Option<String>) = if profile.has_ipv4() {
        ("A", |h| h.ipv4().map(|a| a.to_string()))
    } else if profile.has_global_ipv6() {
        ("AAAA", |h| h.ipv6().map(|a| a.to_string()))
    } else {
        ("TXT", |_| None)
    };

    // dig: exact records, TTLs and flags.
    let d = dig(&client, &["app.example.test", qtype]).await?;
    // Link-local-only hosts have no address DNS can carry, so blue.example.test has no data:
    // the CNAME leads to a name that does not exist (NXDOMAIN with the CNAME, as Knot answers).
    let want_status = if profile == Profile::LinkLocalOnly { "NXDOMAIN" } else { "NOERROR" };
    d.expect(&format!("{profile}: dig app {qtype}"), want_status)?;
    let mut want = vec!["app.example.test. 5 IN CNAME blue.example.test.".to_string()];
    if let Some(a) = addr_of(&blue) {
        want.push(format!("blue.example.test. 60 IN {qtype} {a}"));
    }
    ensure!(d.answer == want, "{profile}: dig app {qtype}: answer {:?}, expected {want:?}\n{}", d.answer, d.raw);

    let d = dig(&client, &["info.example.test", "TXT"]).await?;
    d.expect(&format!("{profile}: dig info TXT"), "NOERROR")?;
    ensure!(d.answer == vec!["info.example.test. 120 IN TXT \"nslab lab\"".to_string()], "{profile}: TXT {:?}", d.answer);
    let d = dig(&client, &["nope.example.test", "A"]).await?;
    d.expect(&format!("{profile}: dig nope"), "NXDOMAIN")?;
    ensure!(
        d.authority.first().is_some_and(|s| s.starts_with("example.test. 30 IN SOA dns.example.test. hostmaster.example.test.")),
        "{profile}: negative answer must carry the SOA with TTL min(ttl, minimum) = 30: {:?}",
        d.authority
    );

    // glibc's getaddrinfo, through the lab's resolv.conf (no /etc/hosts entries for lab hosts):
    // exactly the addresses the lab server gives, and the queries in the log from this client.
    if profile == Profile::LinkLocalOnly {
        // A link-local-only host can still resolve: blue-ll carries blue's fe80:: address.
        let ll = blue.link_local().expect("link-local-only hosts have a link-local address").to_string();
        let at = dns.log().now();
        let g = client.run(Command::new("getent").args(["ahosts", "blue-ll"]), T).await.map_err(err)?;
        ensure!(
            g.exit().and_then(|e| e.code()) == Some(0)
                && getent_addrs(&g.stdout()) == BTreeSet::from([ll.clone()])
                && g.stdout().contains("blue-ll.example.test"),
            "{profile}: getent ahosts blue-ll should give exactly {ll} as blue-ll.example.test (search list): {}",
            g.output()
        );
        let log = logged(&lab, "blue-ll.example.test", at);
        ensure!(
            log.iter().any(|e| e.client.ip() == me
                && e.qtype == Some(RecordType::AAAA)
                && e.rcode == Some(ResponseCode::NoError)
                && e.answers.iter().any(|a| matches!(a.data, V::Aaaa(ip) if ip.to_string() == ll))),
            "{profile}: the log should show {me} asking AAAA blue-ll and getting {ll}: {log:#?}"
        );
        // The CNAME to a name without data: getaddrinfo finds no address (and says so).
        let g = client.run(Command::new("getent").args(["ahosts", "app.example.test"]), T).await.map_err(err)?;
        ensure!(g.exit().and_then(|e| e.code()) == Some(2), "{profile}: getent ahosts app should find no address: {}", g.output());
    } else {
        let want = expected_gai(&client, &blue);
        let at = dns.log().now();
        let g = client.run(Command::new("getent").args(["ahosts", "app.example.test"]), T).await.map_err(err)?;
        ensure!(!want.is_empty() && getent_addrs(&g.stdout()) == want, "{profile}: getent ahosts app should give exactly {want:?}: {}", g.output());
        let log = logged(&lab, "app.example.test", at);
        ensure!(
            !log.is_empty()
                && log.iter().all(|e| e.client.ip() == me
                    && e.rcode == Some(ResponseCode::NoError)
                    && e.answers.iter().any(|a| a.data == V::Cname("blue.example.test.".into()))),
            "{profile}: the log should show getent's queries from {me}, answered with the CNAME to blue: {log:#?}"
        );
        // The search list completes a bare name.
        let want = expected_gai(&client, &green);
        let g = client.run(Command::new("getent").args(["ahosts", "green"]), T).await.map_err(err)?;
        ensure!(
            getent_addrs(&g.stdout()) == want && g.stdout().contains("green.example.test"),
            "{profile}: getent ahosts green should give {want:?} as green.example.test: {}",
            g.output()
        );
    }

    // The swap is visible to the very next query.
    let swapped_at = dns.log().now();
    dns.zone("example.test").map_err(err)?.swap_cname("app", "green").await.map_err(err)?;
    let d = dig(&client, &["app.example.test", qtype]).await?;
    d.expect(&format!("{profile}: dig app after the swap"), want_status)?;
    let mut want = vec!["app.example.test. 5 IN CNAME green.example.test.".to_string()];
    if let Some(a) = addr_of(&green) {
        want.push(format!("green.example.test. 60 IN {qtype} {a}"));
    }
    ensure!(d.answer == want, "{profile}: after swap: {:?}, expected {want:?}", d.answer);

    // The query log saw the client by its lab address, before and after the swap.
    let after = dns.log().query(&LogFilter::new().name("app.example.test").since(swapped_at));
    ensure!(!after.is_empty(), "{profile}: no query for app after the swap in the log");
    ensure!(
        after.iter().all(|e| e.client.ip() == me
            && e.transport == Transport::Udp
            && e.rcode_name() == want_status
            && e.answers.iter().any(|a| a.names("green.example.test"))),
        "{profile}: log after swap should show {me} getting green over UDP: {after:#?}"
    );
    let before = dns.log().query(&LogFilter::new().name("app.example.test").until(swapped_at));
    ensure!(
        before.iter().any(|e| e.client.ip() == me && e.answers.iter().any(|a| a.names("blue.example.test"))),
        "{profile}: log before swap should show {me} getting blue: {before:#?}"
    );

    // A serial bump is what the next SOA query shows.
    let zone = dns.zone("example.test").map_err(err)?;
    let serial_of = |d: &Dig| d.answer.first().and_then(|l| l.split(' ').nth(6)).and_then(|s| s.parse::<u32>().ok());
    let d = dig(&client, &["example.test", "SOA"]).await?;
    d.expect(&format!("{profile}: dig SOA"), "NOERROR")?;
    let serial = zone.serial().await;
    ensure!(serial_of(&d) == Some(serial), "{profile}: dig SOA should show serial {serial}: {:?}", d.answer);
    let bumped = zone.bump_serial().await.map_err(err)?;
    ensure!(bumped == serial.wrapping_add(1), "{profile}: bump_serial returned {bumped} after {serial}");
    let d = dig(&client, &["example.test", "SOA"]).await?;
    ensure!(
        serial_of(&d) == Some(bumped) && d.answer[0].starts_with("example.test. 3600 IN SOA dns.example.test. hostmaster.example.test. "),
        "{profile}: after bump_serial, dig SOA should show serial {bumped}: {:?}",
        d.answer
    );

    // TCP, to every address of the DNS host this client can reach: the resolv.conf default, and
    // explicitly its global IPv6 and its link-local address (with the client's interface as scope).
    let mut targets: Vec<(String, IpAddr)> = vec![(String::new(), me)];
    if !profile.ipv6_broken() {
        if let (Some(mine), Some(theirs)) = (client.ipv6(), dns_host.ipv6()) {
            targets.push((format!("@{theirs}"), mine.into()));
        }
        if let (Some(mine), Some(theirs)) = (client.link_local(), dns_host.link_local()) {
            targets.push((format!("@{theirs}%{}", client.interface()), mine.into()));
        }
    }
    for (server, from) in targets {
        let at = dns.log().now();
        let mut args = vec!["+tcp", "info.example.test", "TXT"];
        if !server.is_empty() {
            args.insert(0, &server);
        }
        let d = dig(&client, &args).await?;
        d.expect(&format!("{profile}: dig +tcp {server}"), "NOERROR")?;
        ensure!(d.answer == vec!["info.example.test. 120 IN TXT \"nslab lab\"".to_string()], "{profile}: dig +tcp {server}: {:?}", d.answer);
        let log = logged(&lab, "info.example.test", at);
        ensure!(
            log.len() == 1 && log[0].transport == Transport::Tcp && log[0].client.ip() == from && log[0].rcode == Some(ResponseCode::NoError),
            "{profile}: dig +tcp {server}: the log should show one TCP query from {from}: {log:#?}"
        );
    }

    let kept = lab.teardown().await.map_err(err)?;
    expect_artifacts_as_asked(kept)
}

async fn jvm(profile: Profile) -> Result<(), String> {
    let lab = blue_green_lab(profile).await?;
    let client = lab.host("client").map_err(err)?;
    let blue = lab.host("blue").map_err(err)?;
    // A link-local-only host has no address in DNS but blue-ll's (blue's fe80:: address).
    let (name, want) = if profile == Profile::LinkLocalOnly {
        ("blue-ll.example.test", blue.link_local().map(IpAddr::from).into_iter().collect::<Vec<_>>())
    } else {
        ("app.example.test", expected_gai(client, blue).into_iter().map(|a| a.parse().unwrap()).collect())
    };
    let want: Vec<String> = want.iter().map(|a| format!("{name} {a}")).collect();
    let at = lab.dns().unwrap().log().now();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/java/Resolve.java");
    // -XX:-UsePerfData: no /tmp/hsperfdata file, whose warnings (on stdout) JVMs running at once
    // in PID namespaces of their own (all pid 2) would print.
    let p = client
        .run(Command::new("java").args(["-Xshare:auto", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", src, name]), Duration::from_secs(60))
        .await
        .map_err(err)?;
    let got: BTreeSet<String> = p.stdout().lines().filter(|l| l.starts_with(&format!("{name} "))).map(|l| normalize_java_v6(l.to_string())).collect();
    ensure!(!want.is_empty() && got == want.iter().cloned().collect(), "{profile}: JVM resolved {got:?}, expected {want:?}\n{}", p.output());
    let me = client_addr(client);
    let log = logged(&lab, name, at);
    ensure!(
        log.iter().any(|e| e.client.ip() == me && e.rcode == Some(ResponseCode::NoError) && !e.answers.is_empty()),
        "{profile}: the JVM's queries for {name} should be in the log from {me}: {log:#?}"
    );
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

/// A scenario's `wait-dns-query` step ends at the query's own time in the lab DNS's log, not when
/// the harness noticed it (later: it polls the log, and on a busy machine it is late), so a
/// window after the step counts from the look-up itself.
async fn wait_step_ends_at_the_query() -> Result<(), String> {
    const SCENARIO: &str = r#"
description = "a client asks for app.example.test every 0.2 s"
profiles = ["ipv4-only"]

[requires]
dig = "*"

[hosts.client]

[dns]
[[dns.zones]]
origin = "example.test"
records = [{ name = "app", type = "A", value = "192.0.2.80", ttl = 1 }]

[services.asker]
host = "client"
shell = "while :; do dig +short +tries=1 +time=5 @{{dns.ipv4}} app.example.test A; sleep 0.2; done"
ready = { line = "^192.0.2.80$" }

[[timeline]]
name = "lookup"
action = "wait-dns-query"
host = "client"
query = "app.example.test"
"#;
    let path = std::path::Path::new("wait-dns-query-step.toml");
    let scenario: &'static nslab_scenario::scenario::Scenario =
        Box::leak(Box::new(nslab_scenario::scenario::parse_str(path, SCENARIO).map_err(|e| e.to_string())?));
    let root = tempfile::tempdir().map_err(err)?;
    let mut session = nslab_scenario::runner::Session::start(scenario, Profile::Ipv4Only, root.path().to_path_buf()).await.map_err(|e| e.to_string())?;
    let played = session.step(0).await.map_err(|e| e.to_string());
    let end = session.step_end("lookup");
    let log = session.lab().dns().map(|d| d.log().entries()).unwrap_or_default();
    session.finish().await.map_err(|e| e.to_string())?;
    played?;
    let end = end.ok_or("the step left no end time")?;
    let asked: Vec<_> = log.iter().filter(|e| e.name.trim_end_matches('.') == "app.example.test").map(|e| e.at).collect();
    ensure!(asked.contains(&end), "the step ended at {end:?}, no query's time (the client's queries came at {asked:?})");
    Ok(())
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

    f.set(&blue, Fault::Truncate).map_err(err)?;
    let since = dns.log().now();
    let p = client.run(Command::new("dig").args(["+tries=1", "+time=2", "blue.example.test", "A"]), T).await.map_err(err)?;
    let out = p.stdout();
    ensure!(out.contains(";; Truncated, retrying in TCP mode.") && out.contains("status: NOERROR"), "truncate: dig should retry over TCP and succeed:\n{out}");
    let log = dns.log().query(&LogFilter::new().name("blue.example.test").since(since));
    let transports: Vec<Transport> = log.iter().map(|e| e.transport).collect();
    ensure!(transports == vec![Transport::Udp, Transport::Tcp] && log[0].truncated, "truncate: log should show a truncated UDP answer then TCP: {log:#?}");
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

/// TCP only: a UDP query gets nothing back (dig and glibc, which retry over TCP only after a
/// truncated answer, time out), `dig +tcp` gets the answer, and the log shows both.
async fn tcp_only() -> Result<(), String> {
    let lab = blue_green_lab(Profile::Ipv4Only).await?;
    let client = lab.host("client").map_err(err)?.clone();
    let blue = lab.host("blue").map_err(err)?.ipv4().expect("ipv4-only host has IPv4").to_string();
    let dns = lab.dns().unwrap().clone();
    let me = client_addr(&client);
    dns.faults().set(&FaultTarget::Server, Fault::TcpOnly).map_err(err)?;

    let at = dns.log().now();
    let d = dig(&client, &["blue.example.test", "A"]).await?;
    ensure!(
        d.exit == Some(9) && d.raw.contains("timed out") && d.answer.is_empty(),
        "tcp-only: dig over UDP should time out (exit 9): exit {:?}\n{}",
        d.exit,
        d.raw
    );
    let d = dig(&client, &["+tcp", "blue.example.test", "A"]).await?;
    d.expect("tcp-only: dig +tcp", "NOERROR")?;
    ensure!(d.answer == vec![format!("blue.example.test. 60 IN A {blue}")], "tcp-only: dig +tcp answer {:?}", d.answer);
    let log = logged(&lab, "blue.example.test", at);
    let seen: Vec<(Transport, Option<ResponseCode>, bool, Option<Fault>)> = log.iter().map(|e| (e.transport, e.rcode, e.truncated, e.fault)).collect();
    ensure!(
        seen == vec![(Transport::Udp, None, false, Some(Fault::TcpOnly)), (Transport::Tcp, Some(ResponseCode::NoError), false, Some(Fault::TcpOnly))]
            && log.iter().all(|e| e.client.ip() == me),
        "tcp-only: the log should show the dropped UDP query, then the TCP one answered, both from {me}: {log:#?}"
    );

    // glibc does not try TCP by itself either: getaddrinfo gives up (timeout:1 attempts:2).
    let at = dns.log().now();
    let g = client.run(Command::new("getent").args(["ahosts", "green.example.test"]), T).await.map_err(err)?;
    ensure!(g.exit().and_then(|e| e.code()) == Some(2) && g.stdout().is_empty(), "tcp-only: getent should find nothing: {}", g.output());
    let log = logged(&lab, "green.example.test", at);
    ensure!(
        !log.is_empty() && log.iter().all(|e| e.transport == Transport::Udp && e.rcode.is_none() && e.client.ip() == me),
        "tcp-only: getent's queries should all be UDP and unanswered: {log:#?}"
    );

    // Switched off, UDP answers again.
    dns.faults().clear_all();
    let d = dig(&client, &["blue.example.test", "A"]).await?;
    d.expect("after tcp-only", "NOERROR")?;
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// With artifacts kept, the lab's query log is in `dns/queries.jsonl`: one JSON line per query.
async fn query_log_artifact() -> Result<(), String> {
    let lab = Lab::builder()
        .hosts(["client", "blue", "green"])
        .hosts_file_entries(false)
        .dns(LabDns::new().zone(zone()))
        .keep_artifacts(true)
        .build()
        .await
        .map_err(err)?;
    let client = lab.host("client").map_err(err)?.clone();
    let me = client.ipv4().expect("ipv4 host").to_string();
    dig(&client, &["app.example.test", "A"]).await?.expect("dig app", "NOERROR")?;
    dig(&client, &["+tcp", "nope.example.test", "A"]).await?.expect("dig nope", "NXDOMAIN")?;
    let logged = lab.dns().unwrap().log().len();
    let dir = lab.teardown().await.map_err(err)?.ok_or("keep_artifacts(true): teardown should keep the artifacts")?;
    let path = dir.join("dns/queries.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let lines: Vec<serde_json::Value> =
        text.lines().map(serde_json::from_str).collect::<Result<_, _>>().map_err(|e| format!("{}: {e}\n{text}", path.display()))?;
    ensure!(lines.len() == logged && logged >= 2, "{}: {} lines, the log had {logged} entries:\n{text}", path.display(), lines.len());
    let from_me = |l: &serde_json::Value| l["client"].as_str().and_then(|c| c.parse::<std::net::SocketAddr>().ok()).is_some_and(|c| c.ip().to_string() == me);
    ensure!(
        lines.iter().any(|l| from_me(l)
            && l["name"] == "app.example.test."
            && l["qtype"] == "A"
            && l["transport"] == "udp"
            && l["rcode"] == "NOERROR"
            && l["answers"].as_array().is_some_and(|a| a.iter().any(|r| r == "app.example.test. 5 IN CNAME blue.example.test."))
            && l["at_us"].is_u64()),
        "{}: no line for the client's ({me}) UDP query for app:\n{text}",
        path.display()
    );
    ensure!(
        lines.iter().any(|l| from_me(l) && l["name"] == "nope.example.test." && l["transport"] == "tcp" && l["rcode"] == "NXDOMAIN"),
        "{}: no line for the client's TCP query for nope:\n{text}",
        path.display()
    );
    if !keep_artifacts_asked() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("remove {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// `Lab::wait_query` with `LogFilter::host`: the wait returns the query of the host asked for
/// (over IPv6 here), not another host's for the same name (over IPv4), and a wait for a query
/// that never comes says what it waited for and what the server did log.
async fn wait_query_by_host() -> Result<(), String> {
    let lab = Lab::builder().profile(Profile::DualStack).hosts(["a", "b", "blue", "green"]).dns(LabDns::new().zone(zone())).build().await.map_err(err)?;
    let (a, b) = (lab.host("a").map_err(err)?.clone(), lab.host("b").map_err(err)?.clone());
    let dns_v6 = lab.host(nslab::DNS_HOST).map_err(err)?.ipv6().ok_or("the DNS host is dual-stack")?;
    let t0 = lab.dns_server().map_err(err)?.log().now();
    let from_a = LogFilter::new().name("blue.example.test").qtype(nslab::dns::RecordType::A).host(&a).since(t0);

    // b asks first, over IPv4 (resolv.conf lists the IPv4 server first on dual-stack).
    let d = dig(&b, &["blue.example.test", "A"]).await?;
    ensure!(d.status == "NOERROR", "b's dig: {}", d.raw);
    let by_b = lab.wait_query(&LogFilter::new().name("blue.example.test").host(&b).since(t0), T).await.map_err(err)?;
    ensure!(by_b.client.ip() == IpAddr::V4(b.ipv4().unwrap()), "b's query came from {}", by_b.client);
    ensure!(lab.dns_server().map_err(err)?.log().first(&from_a).is_none(), "b's query must not match a filter for host a");
    // Nothing from a will come: the short wait runs out, naming the filter and showing b's query.
    let e = lab.wait_query(&from_a, Duration::from_millis(200)).await.unwrap_err();
    let msg = err(e);
    ensure!(
        msg.starts_with(&format!(
            "timed out after 200ms waiting for a DNS query in lab {} (name blue.example.test., type A, from {} or {} or {}, at or after",
            lab.name(),
            a.ipv4().unwrap(),
            a.ipv6().unwrap(),
            a.link_local().unwrap()
        )) && msg.contains(&format!("| {:?} {} udp blue.example.test. A -> NOERROR", by_b.at, by_b.client)),
        "timeout message: {msg}"
    );

    // a asks over IPv6 while the test waits for it.
    let q = a.spawn(Command::new("dig").args(["+tries=1", "+time=5", &format!("@{dns_v6}"), "blue.example.test", "A"])).await.map_err(err)?;
    let by_a = lab.wait_query(&from_a, T).await.map_err(err)?;
    ensure!(by_a.client.ip() == IpAddr::V6(a.ipv6().unwrap()), "a's query came from {}, expected {}", by_a.client, a.ipv6().unwrap());
    ensure!(by_a.at >= by_b.at && by_a.rcode == Some(nslab::dns::ResponseCode::NoError), "a's query: {by_a:?}");
    let exit = q.wait_exit(T).await.map_err(err)?;
    ensure!(exit.success(), "a's dig: {exit} {}", q.output());
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// A lab built without DNS answers `dns_server()` and `wait_query` with an error naming the lab
/// and how to add a server.
async fn no_dns_server() -> Result<(), String> {
    let lab = Lab::builder().hosts(["a"]).build().await.map_err(err)?;
    let want = format!("lab {} has no DNS server; build it with LabBuilder::dns(LabDns::new()) to get one", lab.name());
    let e = lab.dns_server().unwrap_err();
    ensure!(matches!(e, nslab::Error::NoDns { .. }) && e.to_string() == want, "dns_server(): {e:?}");
    let e = lab.wait_query(&LogFilter::new(), T).await.unwrap_err();
    ensure!(e.to_string() == want, "wait_query(): {e}");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// A declared host named `dns` in a lab with DNS would silently become the DNS server: the build
/// refuses it, naming the host and the two fixes; placed there with `on_host`, it serves.
async fn host_named_dns() -> Result<(), String> {
    let built = Lab::builder().name("clash").hosts(["client", "dns"]).dns(LabDns::new()).build().await;
    match built {
        Ok(lab) => {
            lab.teardown().await.map_err(err)?;
            return Err("a lab declaring a host \"dns\" next to LabBuilder::dns should not build".into());
        }
        Err(e) => ensure!(
            matches!(e, nslab::Error::Invalid { .. })
                && e.to_string()
                    == "invalid lab definition: lab clash declares a host named \"dns\", the name of the host LabBuilder::dns adds to serve the lab's DNS, \
                        so your host would silently become the DNS server; rename your host, or serve the DNS from it on purpose with LabDns::new().on_host(\"dns\")",
            "unexpected error: {e}"
        ),
    }
    // Asked for explicitly, it is the DNS host (and the lab has no other).
    let lab = Lab::builder().hosts(["client", "dns"]).dns(LabDns::new().on_host("dns")).build().await.map_err(err)?;
    let names: Vec<&str> = lab.hosts().iter().map(|h| h.name()).collect();
    ensure!(names == ["client", "dns"], "hosts: {names:?}");
    let dns_ip = lab.host("dns").map_err(err)?.ipv4().ok_or("dual-stack host")?;
    ensure!(lab.dns_server().map_err(err)?.local_addrs().iter().any(|(_, a)| a.ip() == IpAddr::V4(dns_ip)), "the server listens on host dns");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// The first UDP datagram on any of `sockets`, or `None` when `p` exits before one arrives.
async fn first_datagram(sockets: Vec<tokio::net::UdpSocket>, p: &nslab::Process) -> Result<Option<(Vec<u8>, std::net::SocketAddr)>, String> {
    let mut recv = tokio::task::JoinSet::new();
    for s in sockets {
        recv.spawn(async move {
            let mut buf = vec![0u8; 1500];
            s.recv_from(&mut buf).await.map(|(n, from)| (buf[..n].to_vec(), from))
        });
    }
    tokio::select! {
        r = recv.join_next() => r.ok_or("no socket")?.map_err(|e| e.to_string())?.map(Some).map_err(|e| e.to_string()),
        e = p.wait_exit(Duration::from_secs(60)) => { e.map_err(err)?; Ok(None) }
    }
}

/// Issue 15: each host's resolver is a choice. `client` names the host `cache` (the harness
/// listens on its UDP port 53 and sees the look-up arrive there), `local` names its own loopback
/// (the same, on 127.0.0.1), `blue` keeps the lab DNS (its look-up is in the server's log); the
/// resolv.conf options are in the file the programs read.
async fn resolver_choice(profile: Profile) -> Result<(), String> {
    use nslab::{ResolvOptions, Resolver};
    let lab = Lab::builder()
        .profile(profile)
        .hosts([
            HostSpec::new("client").resolver(Resolver::Host("cache".into())).resolv_options(ResolvOptions::new().timeout(1).attempts(1).ndots(2).rotate(true)),
            HostSpec::new("cache"),
            HostSpec::new("local").resolver(Resolver::Address("127.0.0.1".parse().unwrap())).resolv_options(ResolvOptions::new().attempts(1)),
            HostSpec::new("blue"),
            HostSpec::new("green"),
        ])
        .hosts_file_entries(false)
        .dns(LabDns::new().zone(zone()))
        .build()
        .await
        .map_err(err)?;
    let (client, cache, local, plain) =
        (lab.host("client").map_err(err)?, lab.host("cache").map_err(err)?, lab.host("local").map_err(err)?, lab.host("blue").map_err(err)?);
    let conf = client.run(Command::new("cat").arg("/etc/resolv.conf"), T).await.map_err(err)?.stdout();
    let want: Vec<String> = cache.addrs().iter().map(|a| format!("nameserver {a}")).collect();
    ensure!(
        conf.contains("options timeout:1 attempts:1 rotate ndots:2\n")
            && want.iter().all(|w| conf.contains(w.as_str()))
            && conf.matches("nameserver").count() == want.len(),
        "client's resolv.conf should name only cache ({want:?}) with its options, got:\n{conf}"
    );
    let mut at_cache = Vec::new();
    for a in cache.addrs() {
        at_cache.push(cache.bind_udp(std::net::SocketAddr::new(a, 53)).await.map_err(err)?);
    }
    let p = client.spawn(Command::new("getent").args(["ahosts", "probe-client.example.test"])).await.map_err(err)?;
    let (q, from) = first_datagram(at_cache, &p).await?.ok_or_else(|| format!("client's look-up never reached cache; getent: {}", p.output()))?;
    ensure!(q.windows(12).any(|w| w == b"probe-client"), "cache got a datagram without the name asked for: {q:?}");
    ensure!(client.addrs().contains(&from.ip()), "the look-up came from {from}, not from client ({:?})", client.addrs());
    let _ = p.wait_exit(T).await;

    let at_local = vec![local.bind_udp("127.0.0.1:53".parse().unwrap()).await.map_err(err)?];
    let p = local.spawn(Command::new("getent").args(["ahosts", "probe-local.example.test"])).await.map_err(err)?;
    let (q, _) = first_datagram(at_local, &p).await?.ok_or_else(|| format!("local's look-up never reached its loopback; getent: {}", p.output()))?;
    ensure!(q.windows(11).any(|w| w == b"probe-local"), "local's loopback got a datagram without the name asked for: {q:?}");
    let _ = p.wait_exit(T).await;
    ensure!(logged(&lab, "probe-client.example.test", Duration::ZERO).is_empty(), "client's look-up should not reach the lab DNS");
    ensure!(logged(&lab, "probe-local.example.test", Duration::ZERO).is_empty(), "local's look-up should not reach the lab DNS");

    let g = plain.run(Command::new("getent").args(["ahosts", "green.example.test"]), T).await.map_err(err)?;
    ensure!(g.exit().is_some_and(|e| e.success()), "blue (as plain) resolves through the lab DNS: {}", g.output());
    let from_plain: Vec<QueryLogEntry> = lab.dns().unwrap().log().query(&LogFilter::new().name("green.example.test").host(plain));
    ensure!(!from_plain.is_empty(), "blue's look-up should be in the lab DNS log");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// A resolver a host could not reach is refused when the lab is built, with the reason.
async fn resolver_unreachable() -> Result<(), String> {
    use nslab::Resolver;
    let e = Lab::builder()
        .hosts([HostSpec::new("client").profile(Profile::Ipv6Only).resolver(Resolver::Address("192.0.2.53".parse().unwrap()))])
        .build()
        .await
        .err()
        .map(|e| e.to_string());
    ensure!(
        e.as_deref()
            == Some("invalid lab definition: host \"client\" (profile ipv6-only) has no IPv4, so it could not reach its resolver 192.0.2.53; expected an address in a family the host has"),
        "got {e:?}"
    );
    let e = Lab::builder()
        .hosts([HostSpec::new("client").profile(Profile::Ipv6Only).resolver(Resolver::Host("cache".into())), HostSpec::new("cache").profile(Profile::Ipv4Only)])
        .build()
        .await
        .err()
        .map(|e| e.to_string());
    ensure!(e.as_deref().is_some_and(|e| e.contains("shares no address family with its resolver host \"cache\" (profile ipv4-only)")), "got {e:?}");
    let e = Lab::builder().hosts([HostSpec::new("client").resolver(Resolver::Address("8.8.8.8".parse().unwrap()))]).build().await.err().map(|e| e.to_string());
    ensure!(e.as_deref().is_some_and(|e| e.contains("resolver address 8.8.8.8 is outside the lab")), "got {e:?}");
    Ok(())
}

/// A host that shares no address family with the DNS host could never reach it: the build fails
/// and says why, instead of pointing its resolv.conf somewhere else.
async fn no_common_family() -> Result<(), String> {
    let built = Lab::builder()
        .profile(Profile::Ipv6Only)
        .hosts([HostSpec::new("client"), HostSpec::new("resolver").profile(Profile::Ipv4Only)])
        .dns(LabDns::new().on_host("resolver"))
        .build()
        .await;
    match built {
        Ok(lab) => {
            lab.teardown().await.map_err(err)?;
            Err("a lab whose IPv6-only host can not reach its IPv4-only DNS host should not build".into())
        }
        Err(e) => {
            let msg = err(e);
            ensure!(
                msg.contains("host \"client\" (profile ipv6-only) shares no address family with the DNS host \"resolver\" (profile ipv4-only)"),
                "unexpected error: {msg}"
            );
            Ok(())
        }
    }
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
    let synth: std::net::Ipv6Addr =
        format!("64:ff9b::{:x}:{:x}", u16::from(o[0]) << 8 | u16::from(o[1]), u16::from(o[2]) << 8 | u16::from(o[3])).parse().unwrap();
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
    let c =
        client.run(Command::new("curl").args(["-sS", "--max-time", "5", "-w", " %{remote_ip}", "http://legacy.example.test:8000/"]), T).await.map_err(err)?;
    let out = c.stdout();
    ensure!(out.starts_with("legacy\n 2001:db8:6464::"), "curl through NAT64 should answer from a 2001:db8:6464::/96 address, got {out:?} {}", c.stderr());
    let peer = tokio::time::timeout(T, server).await.map_err(|_| format!("the server saw no connection within {T:?}"))?.map_err(|e| e.to_string())??;
    ensure!(peer.ip().to_string().starts_with("198.51.100."), "the IPv4-only server should see a NAT64 pool address, saw {peer}");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// A lab DNS that serves the root (`LabDns::serve_root`) and an unbound from
/// `nslab::lab::resolver` whose only root hint is the lab DNS: its first query to the lab DNS is
/// the priming `. NS`, the name is answered only after it, and dig through unbound gets blue's
/// address. Without the root zone the priming query is REFUSED and unbound never answers NOERROR.
async fn recurse_from_root(p: Profile) -> Result<(), String> {
    use nslab::lab::resolver::{probe, ResolverKind, ResolverMode, ResolverSpec};
    let lab = Lab::builder().profile(p).hosts(["cache", "client", "blue", "green"]).dns(LabDns::new().zone(zone()).serve_root()).build().await.map_err(err)?;
    let cache = lab.host("cache").map_err(err)?.clone();
    let dns = lab.host(nslab::DNS_HOST).map_err(err)?;
    let hints: Vec<IpAddr> = cache.addrs().iter().filter_map(|a| dns.addrs().into_iter().find(|d| d.is_ipv4() == a.is_ipv4())).collect();
    ensure!(!hints.is_empty(), "the DNS host shares a family with cache");
    let mut spec = ResolverSpec::new(ResolverKind::Unbound, ResolverMode::Recurse { root_hints: hints });
    spec.listen = cache.addrs();
    let dir = lab.artifacts().join("unbound");
    nslab::os::fsafe::artifact_dir(&dir).map_err(err)?;
    let conf = spec.config(&dir).map_err(err)?;
    nslab::os::fsafe::write_artifact(&dir.join(&conf.file), conf.text.as_bytes(), 0o600).map_err(err)?;
    let t0 = lab.dns_server().map_err(err)?.log().now();
    let (prog, args) = conf.command.split_first().ok_or("a command")?;
    let unbound = cache.spawn(Command::new(prog).args(args).current_dir(&dir)).await.map_err(err)?;
    cache.wait_listening(&nslab::Listen::udp(53).addr(IpAddr::from([127, 0, 0, 1])), T, Some(&unbound)).await.map_err(err)?;
    let server = std::net::SocketAddr::from(([127, 0, 0, 1], 53));
    let mut answer = String::new();
    for _ in 0..50 {
        answer = probe(&cache, server, "app.example.test", Duration::from_secs(2)).await.map_or_else(|e| e, |a| a.to_string());
        if answer.starts_with("No Error") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A: the CNAME and blue's A; ipv6-only: the CNAME alone (blue has no A there).
    let want = if p.has_ipv4() { "No Error with 2 answer record(s)" } else { "No Error with 1 answer record(s)" };
    ensure!(answer == want, "unbound's answer for app.example.test: {answer}\n{}", unbound.output());
    let from_cache: Vec<QueryLogEntry> =
        lab.dns_server().map_err(err)?.log().entries().into_iter().filter(|e| e.at >= t0 && cache.addrs().contains(&e.client.ip())).collect();
    let first = from_cache.first().ok_or("unbound asked the lab DNS nothing")?;
    ensure!(first.name == "." && first.qtype == Some(RecordType::NS) && first.rcode == Some(ResponseCode::NoError), "unbound's first query: {first:?}");
    ensure!(from_cache.iter().any(|e| e.name == "app.example.test."), "unbound never asked for app.example.test.: {from_cache:?}");
    let blue = lab.host("blue").map_err(err)?;
    let client = lab.host("client").map_err(err)?;
    let (ty, want) = if p.has_ipv4() { ("A", blue.ipv4().map(IpAddr::V4)) } else { ("AAAA", blue.ipv6().map(IpAddr::V6)) };
    let at = cache.addrs().into_iter().find(|a| client.addrs().iter().any(|c| c.is_ipv4() == a.is_ipv4())).ok_or("client and cache share a family")?;
    let out = client.run(Command::new("dig").args(["+short", "+tries=1", "+time=3", &format!("@{at}"), "app.example.test", ty]), T).await.map_err(err)?;
    let last = out.output().lines().last().unwrap_or("").trim().to_string();
    ensure!(last.parse::<IpAddr>().ok() == want, "dig through unbound: {:?}, expected {want:?}", out.output());
    unbound.stop(Duration::from_secs(2)).await;
    lab.teardown().await.map_err(err)?;
    Ok(())
}
