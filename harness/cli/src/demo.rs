//! The demonstration the README's first command runs: every profile as programs see it.
//!
//! Each profile gets a lab of its own. The probes are a program (python3) run inside the client
//! host, under the profile, as any program under test would be: in `no-ipv6` the seccomp filter
//! makes its `socket(AF_INET6)` fail with EAFNOSUPPORT (97); in `ipv6-only-nat64` it reaches an
//! IPv4-only server through the NAT64 prefix and through a name the lab's DNS64 synthesised.
//! The labs are built and probed at once, so the whole demo takes about as long as its slowest
//! profile (`broken-ipv6`, whose IPv6 connects hang until the probe's timeout).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use nslab::addr::profile::Profile;
use nslab::dns::{RecordValue, Soa, Zone};
use nslab::error::{Error, Result};
use nslab::host::process::Command;
use nslab::lab::build::Lab;
use nslab::lab::dns_host::LabDns;
use nslab::lab::spec::HostSpec;

/// How long a probe waits for a connect before it reports a timeout.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The IPv4-only server of the `ipv6-only-nat64` lab, and its name in the DNS64 zone.
const LEGACY: &str = "legacy";
const LEGACY_ZONE: &str = "example.test";

/// One probe of the demonstration and what the program saw.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// What was tried, in words.
    pub what: String,
    /// What the program saw: `Ok(detail)` when it connected (the detail says what a name resolved
    /// to, if any), `Err(detail)` with the step that failed and the errno, or the time after which
    /// it gave up.
    pub outcome: std::result::Result<String, String>,
}

/// The results of one profile.
#[derive(Debug, Clone)]
pub struct ProfileReport {
    /// The profile.
    pub profile: Profile,
    /// Time to build the lab.
    pub build: Duration,
    /// Time to tear it down.
    pub teardown: Duration,
    /// Each probe, in order.
    pub attempts: Vec<Attempt>,
    /// What `ip -brief address` shows in the client host (a real program run inside it).
    pub client_addresses: String,
    /// Where the IPv4-only server saw connections come from (`ipv6-only-nat64` only).
    pub legacy_peers: Vec<SocketAddr>,
}

/// The probe program: one thread per target, each making a socket and connecting with a
/// timeout; one line per target, `index<TAB>ok|err<TAB>detail`.
const PROBE: &str = r#"
import errno, json, os, socket, sys, threading, time
timeout = float(sys.argv[1])
targets = json.loads(sys.argv[2])
out = [None] * len(targets)
def why(e):
    name = errno.errorcode.get(e.errno, "?")
    return "%s (errno %d, %s)" % (os.strerror(e.errno), e.errno, name)
def probe(i, t):
    fam = socket.AF_INET6 if t["family"] == 6 else socket.AF_INET
    famname = "AF_INET6" if fam == socket.AF_INET6 else "AF_INET"
    addr = t.get("addr")
    note = ""
    if "name" in t:
        try:
            infos = socket.getaddrinfo(t["name"], t["port"], 0, socket.SOCK_STREAM)
        except socket.gaierror as e:
            out[i] = "err\tgetaddrinfo(%s): %s" % (t["name"], e.strerror); return
        fam, _, _, _, sa = infos[0]
        famname = "AF_INET6" if fam == socket.AF_INET6 else "AF_INET"
        addr = sa[0]
        note = "resolved to %s" % addr
    try:
        s = socket.socket(fam, socket.SOCK_STREAM)
    except OSError as e:
        out[i] = "err\tsocket(%s): %s" % (famname, why(e)); return
    s.settimeout(timeout)
    scope = socket.if_nametoindex(t["scope"]) if t.get("scope") else 0
    sa = (addr, t["port"], 0, scope) if fam == socket.AF_INET6 else (addr, t["port"])
    start = time.monotonic()
    try:
        s.connect(sa)
        out[i] = "ok\t%s" % note
    except socket.timeout:
        out[i] = "err\tconnect: no answer, gave up after %.1f s%s" % (time.monotonic() - start, note and ", " + note)
    except OSError as e:
        out[i] = "err\tconnect: %s%s" % (why(e), note and ", " + note)
    finally:
        s.close()
ths = [threading.Thread(target=probe, args=(i, t)) for i, t in enumerate(targets)]
for th in ths: th.start()
for th in ths: th.join()
for i, o in enumerate(out):
    print("%d\t%s" % (i, o))
"#;

/// One target of the probe program.
struct Target {
    what: String,
    json: serde_json::Value,
}

fn to(what: String, addr: IpAddr, port: u16) -> Target {
    let family = if addr.is_ipv4() { 4 } else { 6 };
    Target { what, json: serde_json::json!({ "family": family, "addr": addr.to_string(), "port": port }) }
}

/// Builds a lab in `profile` (a `server` and a `client`; in `ipv6-only-nat64` also an IPv4-only
/// `legacy` server), listens on `0.0.0.0:8000` and `[::]:8001` in the server, and runs the probe
/// program in the client under the profile.
///
/// # Errors
/// Lab build or teardown failures, or a probe program that could not run (python3 missing).
/// A connection that fails is a result, not an error.
pub async fn run_profile(profile: Profile) -> Result<ProfileReport> {
    let t = Instant::now();
    let mut b = Lab::builder().profile(profile).host("server").host("client");
    if profile.uses_nat64() {
        b = b.host(HostSpec::new(LEGACY).profile(Profile::Ipv4Only)).dns(LabDns::new().zone(Zone::new(LEGACY_ZONE, Soa::new("ns", "hostmaster")).record(
            LEGACY,
            60,
            RecordValue::Host(LEGACY.into()),
        )));
    }
    let lab = b.build().await?;
    let build = t.elapsed();
    let report = probe_lab(&lab, profile).await;
    let t = Instant::now();
    let down = lab.teardown().await.map_err(|e| Error::Invalid { what: e.to_string() });
    down?;
    let mut report = report?;
    report.build = build;
    report.teardown = t.elapsed();
    Ok(report)
}

async fn probe_lab(lab: &Lab, profile: Profile) -> Result<ProfileReport> {
    let server = lab.host("server")?.clone();
    let client = lab.host("client")?.clone();
    let slot = server.slot();
    let mut tasks = Vec::new();
    for addr in [SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8000)), SocketAddr::from((Ipv6Addr::UNSPECIFIED, 8001))] {
        match server.bind_tcp(addr).await {
            Ok(l) => tasks.push(tokio::spawn(async move { while let Ok((_s, _)) = l.accept().await {} })),
            Err(e) => tracing::info!(%addr, error = %e, "listener not available"),
        }
    }
    let mut targets = vec![
        to(format!("IPv4 {}:8000 (server on 0.0.0.0)", slot.v4), IpAddr::V4(slot.v4), 8000),
        to(format!("IPv6 [{}]:8001 (server on [::])", slot.v6), IpAddr::V6(slot.v6), 8001),
        to(format!("IPv6 [{}]:8000 (server on 0.0.0.0 only)", slot.v6), IpAddr::V6(slot.v6), 8000),
        to(format!("link-local [{}]:8001 without scope id", slot.link_local), IpAddr::V6(slot.link_local), 8001),
    ];
    let mut scoped = to(format!("link-local [{}%{}]:8001 with scope id", slot.link_local, client.interface()), IpAddr::V6(slot.link_local), 8001);
    scoped.json["scope"] = client.interface().into();
    targets.push(scoped);
    // The NAT64 path: an IPv4-only server, reached by its IPv4 address (no route from an
    // IPv6-only host), through the NAT64 prefix, and by a name only DNS64 gives an AAAA.
    let (peers_tx, mut peers_rx) = tokio::sync::mpsc::unbounded_channel();
    if profile.uses_nat64() {
        let legacy = lab.host(LEGACY)?.clone();
        let v4 = legacy.ipv4().ok_or_else(|| Error::Invalid { what: format!("host {LEGACY} has no IPv4 address") })?;
        let l = legacy.bind_tcp(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8000))).await?;
        tasks.push(tokio::spawn(async move {
            while let Ok((_s, peer)) = l.accept().await {
                let _ = peers_tx.send(peer);
            }
        }));
        let o = v4.octets();
        let mapped = nslab::lab::nat64::PREFIX.segments();
        let mapped = Ipv6Addr::new(mapped[0], mapped[1], mapped[2], 0, 0, 0, u16::from_be_bytes([o[0], o[1]]), u16::from_be_bytes([o[2], o[3]]));
        targets.push(to(format!("IPv4-only server {LEGACY} at {v4}:8000"), IpAddr::V4(v4), 8000));
        targets.push(to(format!("{LEGACY} through the NAT64 prefix [{mapped}]:8000"), IpAddr::V6(mapped), 8000));
        let name = format!("{LEGACY}.{LEGACY_ZONE}");
        targets.push(Target { what: format!("{name}:8000 (no AAAA of its own: DNS64)"), json: serde_json::json!({ "family": 6, "name": name, "port": 8000 }) });
    } else {
        drop(peers_tx);
    }
    let json = serde_json::Value::Array(targets.iter().map(|t| t.json.clone()).collect()).to_string();
    let timeout = format!("{:.1}", PROBE_TIMEOUT.as_secs_f64());
    // Bounded far above the probe timeout: the program's threads connect at once.
    let p = client.run(Command::new("python3").args(["-c", PROBE, &timeout, &json]).name("probe"), PROBE_TIMEOUT * 10).await?;
    if !p.exit().is_some_and(|e| e.success()) {
        return Err(Error::Invalid { what: format!("the probe program (python3) failed in host client: {}", p.output().trim()) });
    }
    let mut attempts: Vec<Attempt> = targets.iter().map(|t| Attempt { what: t.what.clone(), outcome: Err("no result from the probe".into()) }).collect();
    for line in p.stdout().lines() {
        let mut f = line.splitn(3, '\t');
        let (Some(i), Some(kind), Some(detail)) = (f.next().and_then(|i| i.parse::<usize>().ok()), f.next(), f.next()) else { continue };
        if let Some(a) = attempts.get_mut(i) {
            a.outcome = if kind == "ok" { Ok(detail.to_string()) } else { Err(detail.to_string()) };
        }
    }
    let ip = client.run(Command::new("ip").args(["-brief", "address"]), Duration::from_secs(5)).await?;
    for t in tasks {
        t.abort();
    }
    let mut legacy_peers = Vec::new();
    while let Ok(p) = peers_rx.try_recv() {
        legacy_peers.push(p);
    }
    Ok(ProfileReport { profile, build: Duration::ZERO, teardown: Duration::ZERO, attempts, client_addresses: ip.stdout(), legacy_peers })
}

/// Renders a report as the demo prints it.
pub fn render(r: &ProfileReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "== {}  (lab built in {:.1} ms, torn down in {:.1} ms)", r.profile, ms(r.build), ms(r.teardown));
    let _ = writeln!(s, "   models: {}", r.profile.models());
    for line in r.client_addresses.lines() {
        let _ = writeln!(s, "   client: {}", line.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    let _ = writeln!(s, "   a program (python3) in the client, under the profile:");
    for a in &r.attempts {
        match &a.outcome {
            Ok(d) if d.is_empty() => {
                let _ = writeln!(s, "   connects   {}", a.what);
            }
            Ok(d) => {
                let _ = writeln!(s, "   connects   {}: {d}", a.what);
            }
            Err(e) => {
                let _ = writeln!(s, "   FAILS      {}: {e}", a.what);
            }
        }
    }
    if r.profile.uses_nat64() {
        let peers: std::collections::BTreeSet<String> = r.legacy_peers.iter().map(|p| p.ip().to_string()).collect();
        let peers: Vec<String> = peers.into_iter().collect();
        let _ = writeln!(
            s,
            "   {LEGACY} (IPv4-only) saw connections from: {} (tayga's IPv4 pool)",
            if peers.is_empty() { "none".into() } else { peers.join(", ") }
        );
    }
    s
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
