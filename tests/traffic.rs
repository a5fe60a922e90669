//! Kernel tests of the lab's DNS packet tap: every layer's DNS messages (a client asking a
//! cache on 127.0.0.1, the cache asking the lab DNS, the answers back) in one log, in lab time,
//! paired, with the sending and the receiving host; the last packets before teardown in
//! `dns-traffic.jsonl`; a lab without the tap has none.

use std::time::Duration;

use libtest_mimic::Arguments;
use nslab::dns::{RecordValue as V, Soa, TrafficEntry, Transport, Zone};
use nslab::{Command, Host, Lab, LabDns, Listen};
use nslab_tests::{ensure, err, kernel_trial, trial_requiring};

const T: Duration = Duration::from_secs(20);

fn main() -> std::process::ExitCode {
    nslab_tests::enter_rootless();
    let args = Arguments::from_args();
    let trials = vec![
        trial_requiring("traffic/every-layer-of-a-cache-chain-is-seen-once-in-the-host-that-sent-it", &["dig", "python3"], chain),
        trial_requiring("traffic/udp-and-tcp-over-both-families-with-answers-and-ttls", &["dig"], families),
        trial_requiring("traffic/the-last-packets-before-teardown-are-in-the-artifact", &["dig"], last_packets),
        kernel_trial("traffic/a-lab-built-without-the-tap-has-no-traffic-log", no_tap),
    ];
    nslab_tests::run_checking_host(&args, trials)
}

fn zone() -> Zone {
    Zone::new("example.test", Soa::new("dns.example.test.", "hostmaster.example.test.")).record("app", 5, V::Cname("blue".into())).record(
        "blue",
        60,
        V::Host("blue".into()),
    )
}

async fn dig(h: &Host, args: &[&str]) -> Result<String, String> {
    let p = h.run(Command::new("dig").args(["+short", "+tries=1", "+time=5"]).args(args), T).await.map_err(err)?;
    ensure!(p.exit().is_some_and(|e| e.success()), "dig {args:?} in {}: {:?}\n{}{}", h.name(), p.exit(), p.stdout(), p.stderr());
    Ok(p.stdout())
}

async fn traffic(lab: &Lab) -> Result<Vec<TrafficEntry>, String> {
    let tap = lab.dns_traffic().ok_or("the lab has no DNS tap")?;
    tap.settle().await;
    Ok(tap.log().entries())
}

fn show(v: &[TrafficEntry]) -> String {
    v.iter().map(|e| format!("\n  | {e}")).collect()
}

/// A caching forwarder in the client host, on 127.0.0.1:53, that asks the lab DNS: a tiny
/// python relay (one question, one answer).
const RELAY: &str = r#"
import socket, sys
up = (sys.argv[1], 53)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
print("ready", flush=True)
while True:
    q, client = s.recvfrom(4096)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(q, up)
    a, _ = u.recvfrom(4096)
    s.sendto(a, client)
"#;

async fn chain() -> Result<(), String> {
    let lab = Lab::builder().hosts(["client", "blue"]).hosts_file_entries(false).dns(LabDns::new().zone(zone())).build().await.map_err(err)?;
    let client = lab.host("client").map_err(err)?.clone();
    let dns_ip = lab.host("dns").map_err(err)?.ipv4().ok_or("dns host without IPv4")?;
    let relay = client.spawn(Command::new("python3").args(["-c", RELAY, &dns_ip.to_string()])).await.map_err(err)?;
    client.wait_listening(&Listen::udp(53).addr("127.0.0.1".parse().unwrap()), T, Some(&relay)).await.map_err(err)?;
    let before = lab.elapsed();
    let out = dig(&client, &["@127.0.0.1", "app.example.test", "A"]).await?;
    let after = lab.elapsed();
    ensure!(out.contains("blue.example.test."), "dig through the relay: {out}");
    let all = traffic(&lab).await?;
    let v: Vec<&TrafficEntry> = all.iter().filter(|e| e.name == "app.example.test." && e.at >= before).collect();
    let shown = show(&all);
    // 1. dig -> relay over loopback; 2. relay -> lab DNS; 3. lab DNS -> relay; 4. relay -> dig.
    ensure!(v.len() == 4, "expected exactly four messages for app.example.test (each seen once, by its sender), got {}:{shown}", v.len());
    let is = |e: &TrafficEntry, host: &str, to: &str, response: bool| e.host == host && e.to_host.as_deref() == Some(to) && e.response == response;
    ensure!(is(v[0], "client", "client", false) && v[0].dst.ip().is_loopback() && v[0].dst.port() == 53, "1st: dig to 127.0.0.1:53:{shown}");
    ensure!(is(v[1], "client", "dns", false) && v[1].dst.ip() == dns_ip, "2nd: the relay asks the lab DNS:{shown}");
    ensure!(is(v[2], "dns", "client", true) && v[2].rcode_name() == "NOERROR", "3rd: the lab DNS answers the relay:{shown}");
    ensure!(is(v[3], "client", "client", true) && v[3].dst == v[0].src, "4th: the relay answers dig:{shown}");
    ensure!(v[2].query_at == Some(v[1].at) && v[3].query_at == Some(v[0].at), "responses paired with their queries:{shown}");
    ensure!(
        v.windows(2).all(|w| w[0].at <= w[1].at) && v[0].at >= before && v[3].at <= after,
        "in order, within the dig's run [{before:?}, {after:?}]:{shown}"
    );
    ensure!(v[2].answers.iter().any(|a| a.rtype == "CNAME" && a.ttl == 5 && a.data == "blue.example.test."), "the lab DNS's answer with its TTL:{shown}");
    relay.kill().await;
    lab.teardown().await.map_err(err)?;
    Ok(())
}

async fn families() -> Result<(), String> {
    let lab = Lab::builder().hosts(["client", "blue"]).hosts_file_entries(false).dns(LabDns::new().zone(zone())).build().await.map_err(err)?;
    let client = lab.host("client").map_err(err)?.clone();
    let dns = lab.host("dns").map_err(err)?.clone();
    let (v4, v6) = (dns.ipv4().ok_or("no ipv4")?, dns.ipv6().ok_or("no ipv6")?);
    for (server, tcp) in [(v4.to_string(), false), (v4.to_string(), true), (v6.to_string(), false), (v6.to_string(), true)] {
        let at = format!("@{server}");
        let mut args = vec![at.as_str(), "blue.example.test", "A"];
        if tcp {
            args.insert(0, "+tcp");
        }
        dig(&client, &args).await?;
    }
    let all = traffic(&lab).await?;
    let shown = show(&all);
    let (a4, a6): (std::net::IpAddr, std::net::IpAddr) = (v4.into(), v6.into());
    for (ip, transport) in [(a4, Transport::Udp), (a4, Transport::Tcp), (a6, Transport::Udp), (a6, Transport::Tcp)] {
        let q = all.iter().find(|e| !e.response && e.host == "client" && e.dst.ip() == ip && e.transport == transport && e.name == "blue.example.test.");
        let q = q.ok_or_else(|| format!("no {transport} query from client to {ip}:{shown}"))?;
        let r = all.iter().find(|e| e.response && e.host == "dns" && e.dst == q.src && e.id == q.id && e.transport == transport);
        let r = r.ok_or_else(|| format!("no {transport} answer to {}:{shown}", q.src))?;
        ensure!(r.query_at == Some(q.at) && r.at >= q.at, "paired in time:{shown}");
        let blue = lab.host("blue").map_err(err)?.ipv4().unwrap().to_string();
        ensure!(r.answers.iter().any(|a| a.rtype == "A" && a.ttl == 60 && a.data == blue), "the A record with TTL 60:{shown}");
    }
    ensure!(lab.dns_traffic().unwrap().log().dropped() == 0, "no packet dropped");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

const BURST_N: usize = 3000;

/// Sends 3000 queries for burst.example.test as fast as it can, reading no answer.
const BURST: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
q = b"".join(bytes([len(p)]) + p for p in [b"burst", b"example", b"test"]) + b"\0" + struct.pack("!HH", 1, 1)
for i in range(3000):
    s.sendto(struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0) + q, (sys.argv[1], 53))
"#;

async fn last_packets() -> Result<(), String> {
    let lab =
        Lab::builder().hosts(["client", "blue"]).hosts_file_entries(false).dns(LabDns::new().zone(zone())).keep_artifacts(true).build().await.map_err(err)?;
    let client = lab.host("client").map_err(err)?.clone();
    // No settle and no read before the teardown: the tap's stop has to read them.
    dig(&client, &["+tcp", "app.example.test", "AAAA"]).await?;
    dig(&client, &["blue.example.test", "A"]).await?;
    // A burst the reader cannot keep up with: what is still queued at teardown must be read then.
    let ip = lab.host("dns").map_err(err)?.ipv4().ok_or("dns host without IPv4")?.to_string();
    let burst = client.run(Command::new("python3").args(["-c", BURST, &ip]), T).await.map_err(err)?;
    ensure!(burst.exit().is_some_and(|e| e.success()), "the burst: {:?} {}", burst.exit(), burst.stderr());
    let dir = lab.teardown().await.map_err(err)?.ok_or("keep_artifacts(true): teardown should keep the artifacts")?;
    let path = dir.join("dns-traffic.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let lines: Vec<serde_json::Value> =
        text.lines().map(serde_json::from_str).collect::<Result<_, _>>().map_err(|e| format!("{}: {e}\n{text}", path.display()))?;
    let has = |name: &str, response: bool, transport: &str| {
        lines.iter().any(|l| l["name"] == name && l["response"] == response && l["transport"] == transport && l["at_us"].is_u64())
    };
    ensure!(has("app.example.test.", false, "tcp") && has("app.example.test.", true, "tcp"), "{}: the TCP query and its answer:\n{text}", path.display());
    ensure!(has("blue.example.test.", false, "udp") && has("blue.example.test.", true, "udp"), "{}: the last query and its answer:\n{text}", path.display());
    let burst = lines.iter().filter(|l| l["name"] == "burst.example.test." && l["response"] == false && l["host"] == "client").count();
    ensure!(burst == BURST_N, "{}: {burst} of the burst's {BURST_N} queries", path.display());
    ensure!(
        lines.iter().any(|l| l["name"] == "blue.example.test."
            && l["response"] == true
            && l["host"] == "dns"
            && l["to_host"] == "client"
            && l["query_at_us"].is_u64()),
        "{}: the answer names sender, receiver and its query's time:\n{text}",
        path.display()
    );
    if std::env::var_os("NSLAB_KEEP_ARTIFACTS").is_none_or(|v| v != "1") {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("remove {}: {e}", dir.display()))?;
    }
    Ok(())
}

async fn no_tap() -> Result<(), String> {
    let lab = Lab::builder().hosts(["a"]).dns_tap(false).build().await.map_err(err)?;
    ensure!(lab.dns_traffic().is_none(), "dns_tap(false): no tap");
    lab.teardown().await.map_err(err)?;
    Ok(())
}
