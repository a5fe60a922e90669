//! Stale DNS after a blue/green CNAME swap: `app.example.test` is a CNAME to `blue`, the lab's DNS
//! server swaps it to `green`, and two real clients are asked which target they reach.
//!
//! - a long-lived Python client that resolved the name once, at start, and keeps the address (as
//!   a connection pool or a client built at start-up does): after the swap it still reaches
//!   blue, and the DNS server never heard from it again;
//! - curl, which resolves for each run: after the swap it reaches green, and the DNS server
//!   logged its query.
//!
//! Which target a request reached is what the target answers (`blue` or `green`), not what a
//! client says it resolved. Nothing waits by sleeping: the Python client makes its next request
//! when the test signals it (SIGUSR1), after the swap.
//!
//! A complete test program (`harness = false`): `cargo run -p nslab --example stale_dns` runs it
//! (as root, or without root in rootless mode; its tests are reported ignored where neither
//! works or python3 / curl is missing).

use std::time::Duration;

use nslab::dns::{LogFilter, RecordValue, Soa, Zone};
use nslab::testing;
use nslab::{Command, Host, Lab, LabDns, Listen, Profile, Signal};

/// A guard against a hang, never a claim about speed: a loaded machine starts programs late.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Resolves `app.example.test` once and keeps the address; requests `/` at start and then once
/// per SIGUSR1, printing which target answered.
const CACHING_CLIENT: &str = r#"
import http.client, signal, socket
# Blocked before anything is printed: a SIGUSR1 sent after the first line is waited for, never fatal.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
addr = socket.getaddrinfo("app.example.test", 8000, type=socket.SOCK_STREAM)[0][4][0]
print("resolved app.example.test to", addr, flush=True)
n = 0
while True:
    n += 1
    conn = http.client.HTTPConnection(addr, 8000, timeout=30)
    conn.request("GET", "/")
    print(f"request {n} reached {conn.getresponse().read().decode().strip()}", flush=True)
    conn.close()
    signal.sigwait({signal.SIGUSR1})
"#;

fn main() -> std::process::ExitCode {
    testing::main(vec![testing::test_requiring(
        "stale-dns/after-a-cname-swap-a-client-that-resolved-once-keeps-reaching-blue-and-curl-reaches-green",
        &["python3", "curl"],
        cname_swap,
    )])
}

/// Starts a web server in `host` whose every answer is the host's name.
async fn target(host: &Host) -> nslab::Result<()> {
    let name = host.name();
    // The host's own /tmp: nothing of the machine is written.
    let script = format!("mkdir -p /tmp/www && echo {name} > /tmp/www/index.html && exec python3 -m http.server 8000 --bind :: --directory /tmp/www");
    let web = host.spawn(Command::shell(script).name("web")).await?;
    host.wait_listening(&Listen::tcp(8000), HANG_GUARD, Some(&web)).await?;
    Ok(())
}

/// What curl in `host` got from `app.example.test`: the target's name.
async fn curl(host: &Host) -> nslab::Result<String> {
    let p = host.run(Command::new("curl").args(["-sS", "--max-time", "30", "http://app.example.test:8000/"]), HANG_GUARD).await?;
    assert!(p.exit().is_some_and(|e| e.success()), "curl failed: {}", p.output());
    Ok(p.stdout().trim().to_string())
}

async fn cname_swap() -> nslab::Result<()> {
    let zone = Zone::new("example.test", Soa::new("ns", "hostmaster"))
        .record("app", 5, RecordValue::Cname("blue".into()))
        .record("blue", 60, RecordValue::Host("blue".into()))
        .record("green", 60, RecordValue::Host("green".into()));
    let lab = Lab::builder()
        .profile(Profile::DualStack)
        .hosts(["blue", "green", "cached", "plain"])
        // Names resolve through the lab's DNS server only.
        .hosts_file_entries(false)
        .dns(LabDns::new().zone(zone))
        .build()
        .await?;
    let (cached, plain) = (lab.host("cached")?, lab.host("plain")?);
    target(lab.host("blue")?).await?;
    target(lab.host("green")?).await?;

    // Before the swap both clients reach blue.
    let client = cached.spawn(Command::new("python3").args(["-c", CACHING_CLIENT]).name("caching-client")).await?;
    let first = client.wait_for_line("^request 1 reached ", HANG_GUARD).await?;
    assert_eq!(first.text, "request 1 reached blue");
    assert_eq!(curl(plain).await?, "blue");

    let dns = lab.dns_server()?;
    let swapped_at = dns.log().now();
    dns.zone("example.test")?.swap_cname("app", "green").await?;

    // After it, curl resolves again and reaches green; the server logged its query.
    assert_eq!(curl(plain).await?, "green");
    let app = LogFilter::new().name("app.example.test").since(swapped_at);
    let query = lab.wait_query(&app.clone().host(plain), HANG_GUARD).await?;
    assert!(plain.addrs().contains(&query.client.ip()), "the query came from {}", query.client);

    // The caching client's next request, made now, still reaches blue ...
    client.signal(Signal::SIGUSR1)?;
    let second = client.wait_for_line("^request 2 reached ", HANG_GUARD).await?;
    assert_eq!(second.text, "request 2 reached blue", "the caching client: {}", client.output());
    // ... because it never asked the DNS server again.
    assert_eq!(dns.log().first(&app.host(cached)), None, "the caching client queried the DNS server after the swap");

    lab.teardown().await?;
    Ok(())
}
