//! Kernel tests of the packet capture of every lab link (nslab::lab::capture): the lab's DNS
//! queries and TCP connection attempts in `capture.pcapng`, read by tshark, on the interfaces
//! named after their hosts; the ring keeps the last N bytes of a flood; a routed lab has one
//! interface block per host interface (`host@segment`); `Lab::capture` streams pcapng into a
//! pipe that tshark reads; a failing scenario's artifacts hold the capture, with the CNAME swap's
//! answers and the client's connection attempts, and its JSON report links it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use libtest_mimic::Arguments;
use nslab::dns::{RecordValue as V, Soa, Zone};
use nslab::lab::capture::DEFAULT_RING_BYTES;
use nslab::lab::segment::{RouterSpec, SegmentSpec};
use nslab::{Command, Host, HostSpec, Lab, LabDns};
use nslab_tests::{ensure, err, output_bounded, trial_requiring};

const T: Duration = Duration::from_secs(20);
/// A guard against a hung tshark, not a speed goal.
const GUARD: Duration = Duration::from_secs(120);

fn main() -> std::process::ExitCode {
    nslab_tests::enter_rootless();
    let args = Arguments::from_args();
    let trials = vec![
        trial_requiring("capture/dns-queries-and-syns-on-the-links-named-after-their-hosts", &["tshark", "dig", "python3"], dns_and_syn),
        trial_requiring("capture/the-ring-keeps-the-last-bytes-of-a-flood", &["tshark", "python3"], ring),
        trial_requiring("capture/a-routed-lab-has-one-block-per-host-interface", &["tshark", "ping"], routed),
        trial_requiring("capture/lab-capture-streams-pcapng-into-a-pipe-tshark-reads", &["tshark", "dig"], stream),
        trial_requiring("capture/nslab-capture-streams-a-live-lab-into-a-pipe-tshark-reads", &["tshark", "ping"], cli_stream),
        trial_requiring("capture/a-failing-scenario-keeps-the-swap-and-the-connections-linked-from-the-report", &["tshark", "python3"], failing_scenario),
        trial_requiring("capture/settle-sees-the-frame-sent-just-before", &["python3"], settle_sees_last_frame),
        trial_requiring("capture/each-frame-once-across-the-switch-to-the-ring", &["tshark", "ping"], switch_to_ring),
        trial_requiring("capture/gso-frames-of-a-tcp-stream-are-kept-whole-with-their-wire-length", &["tshark", "python3"], big_frames),
    ];
    nslab_tests::run_checking_host(&args, trials)
}

fn zone() -> Zone {
    Zone::new("example.test", Soa::new("dns.example.test.", "hostmaster.example.test.")).record("blue", 60, V::Host("blue".into()))
}

/// `tshark -r FILE -Y FILTER -T fields -e ...`: one line per frame, fields tab-separated.
fn tshark(file: &Path, filter: &str, fields: &[&str]) -> Result<Vec<Vec<String>>, String> {
    let mut cmd = std::process::Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(file).args(["-Y", filter, "-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| format!("tshark: {e}"))?;
    let out = output_bounded(child, "tshark", GUARD)?;
    ensure!(out.status.success(), "tshark -r {} -Y {filter:?}: {:?}\n{}", file.display(), out.status, String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('\t').map(str::to_string).collect()).collect())
}

fn show(rows: &[Vec<String>]) -> String {
    rows.iter().take(40).map(|r| format!("\n  | {}", r.join(" "))).collect()
}

async fn dig(h: &Host, args: &[&str]) -> Result<String, String> {
    let p = h.run(Command::new("dig").args(["+short", "+tries=1", "+time=5"]).args(args), T).await.map_err(err)?;
    ensure!(p.exit().is_some_and(|e| e.success()), "dig {args:?} in {}: {:?}\n{}{}", h.name(), p.exit(), p.stdout(), p.stderr());
    Ok(p.stdout())
}

/// One TCP connection attempt from the host to `ip:port` (refused: nothing listens).
async fn connect(h: &Host, ip: &str, port: u16) -> Result<(), String> {
    let code = format!("import socket\ns=socket.socket(socket.AF_INET)\ns.settimeout(5)\nprint(s.connect_ex(({ip:?}, {port})))");
    let p = h.run(Command::new("python3").args(["-c", &code]), T).await.map_err(err)?;
    ensure!(p.exit().is_some_and(|e| e.success()), "connect from {}: {}", h.name(), p.output());
    Ok(())
}

fn cleanup(dir: &Path) -> Result<(), String> {
    if std::env::var_os("NSLAB_KEEP_ARTIFACTS").is_none_or(|v| v != "1") {
        std::fs::remove_dir_all(dir).map_err(|e| format!("remove {}: {e}", dir.display()))?;
    }
    Ok(())
}

async fn dns_and_syn() -> Result<(), String> {
    let lab = Lab::builder()
        .hosts(["client", "blue"])
        .hosts_file_entries(false)
        .dns(LabDns::new().zone(zone()))
        .capture_ring(Some(DEFAULT_RING_BYTES))
        .keep_artifacts(true)
        .build()
        .await
        .map_err(err)?;
    let client = lab.host("client").map_err(err)?.clone();
    let blue = lab.host("blue").map_err(err)?.ipv4().ok_or("blue without IPv4")?.to_string();
    let out = dig(&client, &["blue.example.test", "A"]).await?;
    ensure!(out.trim() == blue, "dig: {out}");
    connect(&client, &blue, 8080).await?;
    // No settle: the teardown reads the last frames.
    let dir = lab.teardown().await.map_err(err)?.ok_or("keep_artifacts(true): kept")?;
    let file = dir.join("capture.pcapng");
    ensure!(file.exists(), "no {}", file.display());
    let dns = tshark(&file, "dns", &["frame.interface_name", "dns.flags.response", "dns.qry.name", "dns.a"])?;
    let has = |iface: &str, response: &str| dns.iter().any(|r| r[0] == iface && r[1] == response && r[2] == "blue.example.test");
    // The query on the client's link (it sent it) and on the DNS host's (it received it); the answer on both.
    for iface in ["client", "dns"] {
        ensure!(has(iface, "0") && has(iface, "1"), "{}: the query and answer for blue.example.test on link {iface}:{}", file.display(), show(&dns));
    }
    ensure!(dns.iter().any(|r| r[1] == "1" && r[3] == blue), "the answer carries blue's address {blue}:{}", show(&dns));
    let syn = tshark(&file, "tcp.flags.syn==1 && tcp.flags.ack==0", &["frame.interface_name", "ip.dst", "tcp.dstport"])?;
    for iface in ["client", "blue"] {
        ensure!(
            syn.iter().any(|r| r[0] == iface && r[1] == blue && r[2] == "8080"),
            "{}: the client's SYN to {blue}:8080 on link {iface}:{}",
            file.display(),
            show(&syn)
        );
    }
    ensure!(!syn.iter().any(|r| r[0] != "client" && r[0] != "blue"), "the SYN on no other link:{}", show(&syn));
    cleanup(&dir)
}

const FLOOD_N: u32 = 4000;

/// The flood's datagrams are sent in chunks of this many, the capture settled after each: a
/// chunk crosses two links (~1 MB of frames), well inside the kernel's 4 MiB ring, so a reader
/// kept off the CPU by a loaded machine is not outrun (the kernel would drop what does not fit,
/// counted, and the last datagrams would not be the capture's to keep).
const FLOOD_CHUNK: u32 = 500;

/// UDP datagrams of 1000 bytes, `argv[3]` of them from sequence number `argv[2]`, each starting
/// with its sequence number, from the client to blue's port 9 (nothing listens: ICMP errors come
/// back, rate limited).
const FLOOD: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
start = int(sys.argv[2])
for i in range(start, start + int(sys.argv[3])):
    s.sendto(struct.pack("!I", i) + bytes(996), (sys.argv[1], 9))
"#;

async fn ring() -> Result<(), String> {
    const RING: usize = 1 << 20;
    let lab = Lab::builder().hosts(["client", "blue"]).capture_ring(Some(RING)).keep_artifacts(true).build().await.map_err(err)?;
    let client = lab.host("client").map_err(err)?.clone();
    let blue = lab.host("blue").map_err(err)?.ipv4().ok_or("blue without IPv4")?.to_string();
    let capture = lab.link_capture().ok_or("capture asked for")?;
    for start in (0..FLOOD_N).step_by(FLOOD_CHUNK as usize) {
        // On one CPU: a sender moved between CPUs mid-flood (a loaded machine does it) queues its
        // frames on two CPUs' backlogs, and the veth delivers them out of order, on the wire too.
        let args = ["-c", "0", "python3", "-c", FLOOD, &blue, &start.to_string(), &FLOOD_CHUNK.to_string()];
        let p = client.run(Command::new("taskset").args(args), T).await.map_err(err)?;
        ensure!(p.exit().is_some_and(|e| e.success()), "the flood: {}", p.output());
        capture.settle().await;
    }
    let (dropped, evicted) = capture.losses();
    ensure!(dropped == 0, "the kernel dropped {dropped} frames of a chunk that fits its ring");
    let dir = lab.teardown().await.map_err(err)?.ok_or("kept")?;
    let file = dir.join("capture.pcapng");
    // Every frame's size on the client's link.
    let rows = tshark(&file, "frame.interface_name == \"client\"", &["frame.cap_len"])?;
    let bytes: usize = rows.iter().map(|r| r[0].parse::<usize>().unwrap_or(0)).sum();
    // The datagrams themselves, not blue's ICMP errors quoting them (those carry the same number).
    let sent = tshark(&file, "frame.interface_name == \"client\" && udp.dstport == 9 && !icmp", &["data.data"])?;
    let seqs: Vec<u32> = sent.iter().filter(|r| r[0].len() >= 8).filter_map(|r| u32::from_str_radix(&r[0][..8], 16).ok()).collect();
    let flood_bytes = FLOOD_N as usize * 1042;
    ensure!(flood_bytes > 3 * RING, "the flood ({flood_bytes} B) is bigger than the ring");
    ensure!(bytes <= RING, "client link: {bytes} B kept, more than the ring's {RING}");
    ensure!(bytes > RING - 2 * 1042, "client link: {bytes} B kept, the ring ({RING}) should be full");
    ensure!(evicted > 0, "frames pushed out of the ring counted (dropped by the kernel: {dropped})");
    ensure!(seqs.last() == Some(&(FLOOD_N - 1)), "the last datagram ({}) is kept; last seen {:?}", FLOOD_N - 1, seqs.last());
    ensure!(!seqs.contains(&0), "the first datagram was pushed out (kept: {} from {:?})", seqs.len(), seqs.first());
    ensure!(seqs.windows(2).all(|w| w[0] < w[1]), "kept in order");
    cleanup(&dir)
}

async fn routed() -> Result<(), String> {
    let lab = Lab::builder()
        .segment(SegmentSpec::new("lan"))
        .segment(SegmentSpec::new("dc"))
        .host(HostSpec::new("client").segments(["lan"]))
        .host(HostSpec::new("r1").segments(["lan", "dc"]).router(RouterSpec::new()))
        .host(HostSpec::new("server").segments(["dc"]))
        .capture_ring(Some(DEFAULT_RING_BYTES))
        .keep_artifacts(true)
        .build()
        .await
        .map_err(err)?;
    let links = lab.link_capture().ok_or("capture asked for")?.links();
    ensure!(links == ["client@lan", "r1@lan", "r1@dc", "server@dc"], "links: {links:?}");
    let client = lab.host("client").map_err(err)?.clone();
    let server = lab.host("server").map_err(err)?.ipv4().ok_or("server without IPv4")?.to_string();
    let p = client.run(Command::new("ping").args(["-c", "1", "-W", "5", &server]), T).await.map_err(err)?;
    ensure!(p.exit().is_some_and(|e| e.success()), "ping: {}", p.output());
    let dir = lab.teardown().await.map_err(err)?.ok_or("kept")?;
    let file = dir.join("capture.pcapng");
    let echo = tshark(&file, &format!("icmp.type == 8 && ip.dst == {server}"), &["frame.interface_name"])?;
    let mut seen: Vec<&str> = echo.iter().map(|r| r[0].as_str()).collect();
    seen.sort_unstable();
    // The request crosses client@lan and r1@lan on the first segment, r1@dc and server@dc on the second.
    ensure!(seen == ["client@lan", "r1@dc", "r1@lan", "server@dc"], "the echo request on each link once: {seen:?}");
    cleanup(&dir)
}

async fn stream() -> Result<(), String> {
    // Off unless asked: Lab::capture says so.
    let plain = Lab::builder().hosts(["a"]).build().await.map_err(err)?;
    let refused = plain.capture(&[], std::io::sink()).map(|_| ()).map_err(|e| e.to_string());
    ensure!(plain.link_capture().is_none() || std::env::var_os("NSLAB_CAPTURE_MB").is_some(), "the library's default is no capture");
    if plain.link_capture().is_none() {
        ensure!(refused.as_ref().is_err_and(|e| e.contains("without packet capture")), "Lab::capture without a capture: {refused:?}");
    }
    plain.teardown().await.map_err(err)?;
    let lab = Lab::builder()
        .hosts(["client", "blue"])
        .hosts_file_entries(false)
        .dns(LabDns::new().zone(zone()))
        .capture_ring(Some(DEFAULT_RING_BYTES))
        .build()
        .await
        .map_err(err)?;
    let client = lab.host("client").map_err(err)?.clone();
    let mut reader = std::process::Command::new("tshark")
        .args(["-n", "-r", "-", "-Y", "dns", "-T", "fields", "-e", "frame.interface_name", "-e", "dns.qry.name"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("tshark: {e}"))?;
    let pipe = reader.stdin.take().ok_or("tshark's stdin")?;
    let s = lab.capture(&["client"], pipe).map_err(err)?;
    dig(&client, &["blue.example.test", "A"]).await?;
    lab.link_capture().ok_or("capture")?.settle().await;
    // Ending the stream closes the pipe: tshark reads to its end.
    let n = s.stop().map_err(|e| format!("the stream: {e}"))?;
    let out = output_bounded(reader, "tshark", GUARD)?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "tshark -r -: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    ensure!(n >= 2, "the stream wrote {n} frames");
    ensure!(text.lines().filter(|l| *l == "client\tblue.example.test").count() >= 2, "the query and its answer on the client's link in the stream:\n{text}");
    ensure!(!text.lines().any(|l| !l.starts_with("client\t")), "only the client's link streamed:\n{text}");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// Ten datagrams, each followed by a line saying it was sent (the frame is in the capture's
/// kernel ring when the line is printed: the send crosses the veth and the bridge in the call).
const TEN: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(10):
    s.sendto(b"nslab-settle-%04d" % i, (sys.argv[1], 9))
    print("sent %d" % i, flush=True)
    time.sleep(0.2)
"#;

/// `settle` right after a frame was sent (its block not yet handed over by the kernel: that
/// takes up to the retire timeout) returns with the frame in the rings.
async fn settle_sees_last_frame() -> Result<(), String> {
    let lab = Lab::builder().hosts(["client", "blue"]).capture_ring(Some(DEFAULT_RING_BYTES)).build().await.map_err(err)?;
    let client = lab.host("client").map_err(err)?.clone();
    let blue = lab.host("blue").map_err(err)?.ipv4().ok_or("blue without IPv4")?.to_string();
    let capture = lab.link_capture().ok_or("capture asked for")?;
    // A listener on blue's port 9: no ICMP error quoting the datagram comes back.
    let sink = "import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', 9))\nprint('ready', flush=True)\nwhile s.recv(100): pass";
    let sink = lab.host("blue").map_err(err)?.spawn(Command::new("python3").args(["-c", sink])).await.map_err(err)?;
    sink.wait_for_line("^ready$", T).await.map_err(err)?;
    let p = client.spawn(Command::new("python3").args(["-c", TEN, &blue])).await.map_err(err)?;
    for i in 0..10 {
        p.wait_for_line(&format!("^sent {i}$"), T).await.map_err(err)?;
        capture.settle().await;
        let mut pcap = Vec::new();
        capture.write_pcapng(&mut pcap).map_err(|e| e.to_string())?;
        let marker = format!("nslab-settle-{i:04}");
        // On the client's link and on blue's: two copies.
        let copies = pcap.windows(marker.len()).filter(|w| *w == marker.as_bytes()).count();
        ensure!(copies == 2, "datagram {i} sent before settle: {copies} copies in the capture after it, expected 2");
    }
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// The capture reads a plain packet socket from the switch namespace's creation until its ring,
/// set up beside it off the build's path (an RCU grace period, ~10 ms), is bound, then the ring
/// (frames split at a cut in time): echo requests every 2 ms from right after the build, for
/// 0.6 s, span the switch, and each is on each link exactly once, none missing.
async fn switch_to_ring() -> Result<(), String> {
    let lab = Lab::builder().hosts(["client", "blue"]).capture_ring(Some(DEFAULT_RING_BYTES)).keep_artifacts(true).build().await.map_err(err)?;
    let client = lab.host("client").map_err(err)?.clone();
    let blue = lab.host("blue").map_err(err)?.ipv4().ok_or("blue without IPv4")?.to_string();
    let p = client.run(Command::new("ping").args(["-q", "-c", "300", "-i", "0.002", "-W", "5", &blue]), T).await.map_err(err)?;
    ensure!(p.exit().is_some_and(|e| e.success()), "ping: {}", p.output());
    let dir = lab.teardown().await.map_err(err)?.ok_or("kept")?;
    let rows = tshark(&dir.join("capture.pcapng"), "icmp.type == 8", &["frame.interface_name", "icmp.seq"])?;
    for link in ["client", "blue"] {
        let mut seqs: Vec<u32> = rows.iter().filter(|r| r[0] == link).filter_map(|r| r[1].parse().ok()).collect();
        seqs.sort_unstable();
        let expected: Vec<u32> = (1..=300).collect();
        ensure!(
            seqs == expected,
            "{link}'s link: echo requests {} kept, expected 1..=300 once each (first {:?}, last {:?})",
            seqs.len(),
            seqs.first(),
            seqs.last()
        );
    }
    cleanup(&dir)
}

/// A veth hands the bridge a TCP stream's segments as GSO frames of up to 64 KiB: each is kept
/// whole, with its length on the wire (a ring block smaller than a frame would cut it).
async fn big_frames() -> Result<(), String> {
    let lab = Lab::builder().hosts(["client", "blue"]).capture_ring(Some(DEFAULT_RING_BYTES)).keep_artifacts(true).build().await.map_err(err)?;
    let client = lab.host("client").map_err(err)?.clone();
    let blue_host = lab.host("blue").map_err(err)?.clone();
    let blue = blue_host.ipv4().ok_or("blue without IPv4")?.to_string();
    let sink = blue_host
        .spawn(Command::new("python3").args([
            "-c",
            "import socket\ns=socket.socket()\ns.bind(('0.0.0.0',7000))\ns.listen()\nprint('ready',flush=True)\nc,_=s.accept()\nwhile c.recv(1<<20): pass",
        ]))
        .await
        .map_err(err)?;
    sink.wait_for_line("^ready$", T).await.map_err(err)?;
    let code = format!("import socket\ns=socket.create_connection(({blue:?},7000))\ns.sendall(bytes(4<<20))\ns.close()");
    let p = client.run(Command::new("python3").args(["-c", &code]), T).await.map_err(err)?;
    ensure!(p.exit().is_some_and(|e| e.success()), "the stream: {}", p.output());
    let _ = sink.wait_exit(T).await;
    let dir = lab.teardown().await.map_err(err)?.ok_or("kept")?;
    let file = dir.join("capture.pcapng");
    let rows = tshark(&file, "tcp.dstport == 7000 && tcp.len > 0", &["frame.interface_name", "frame.len", "frame.cap_len"])?;
    let big: Vec<&Vec<String>> = rows.iter().filter(|r| r[1].parse::<u32>().unwrap_or(0) > 1514).collect();
    ensure!(!big.is_empty(), "no frame larger than 1514 bytes: GSO off on the lab's veths?{}", show(&rows));
    ensure!(rows.iter().all(|r| r[1] == r[2]), "every frame kept whole (frame.len == frame.cap_len):{}", show(&rows));
    cleanup(&dir)
}

/// A scenario that fails on purpose (it expects the client to stay on blue after the swap; a new
/// requests Session per request follows it): its evidence has to show why.
const FAILING: &str = r#"
description = "fails on purpose: expects a client that follows CNAME swaps not to"
profiles = ["ipv4-only"]
timeout = "40s"

[hosts.blue]
[hosts.green]
[hosts.client]

[dns]
[[dns.zones]]
origin = "example.test"
records = [
  { name = "app", type = "CNAME", value = "blue", ttl = 1 },
  { name = "blue", host = "blue", ttl = 1 },
  { name = "green", host = "green", ttl = 1 },
]

[services.blue-web]
host = "blue"
command = ["/usr/bin/python3", "FILES/target.py", "blue", "8080"]
ready = { listening = "tcp:[::]:8080" }

[services.green-web]
host = "green"
command = ["/usr/bin/python3", "FILES/target.py", "green", "8080"]
ready = { listening = "tcp:[::]:8080" }

[services.fresh]
host = "client"
command = ["/usr/bin/python3", "FILES/client.py", "fresh", "http://app.example.test:8080/id", "40", "200"]
ready = { line = "^blue$" }

[[timeline]]
name = "swap"
at = "1s"
action = "swap-cname"
record = "app"
to = "green"

[[expect]]
name = "the client stays on blue (it does not: this scenario fails)"
kind = "no-line"
service = "fresh"
matches = "^green$"
after = "swap"
for = "3s"
"#;

async fn failing_scenario() -> Result<(), String> {
    let files = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/stale-dns/files"));
    let files = files.canonicalize().map_err(|e| format!("{}: {e}", files.display()))?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let scen = tmp.path().join("swap-fails.toml");
    std::fs::write(&scen, FAILING.replace("FILES", &files.display().to_string())).map_err(|e| e.to_string())?;
    let json = tmp.path().join("report.json");
    let art = tmp.path().join("artifacts");
    let child = std::process::Command::new(nslab_tests::nslab_bin()?)
        .arg("run")
        .arg(&scen)
        .arg("--json")
        .arg(&json)
        .env("NSLAB_ARTIFACTS_DIR", &art)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nslab run: {e}"))?;
    let out = output_bounded(child, "nslab run", GUARD)?;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    ensure!(!out.status.success(), "the scenario should fail:\n{said}");
    let text = std::fs::read_to_string(&json).map_err(|e| format!("{}: {e}\n{said}", json.display()))?;
    let report: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json.display()))?;
    let trial = &report["results"][0];
    ensure!(trial["outcome"] == "failed", "outcome: {}", trial["outcome"]);
    let file = PathBuf::from(trial["capture"].as_str().ok_or_else(|| format!("the report links no capture:\n{text}"))?);
    ensure!(file.starts_with(&art) && file.ends_with("capture.pcapng") && file.exists(), "linked capture {}", file.display());
    // The swap's answers: app.example.test as a CNAME of blue, then of green, sent to the client,
    // with each target's address.
    let dns = tshark(&file, "dns.flags.response == 1 && dns.qry.name == \"app.example.test\" && dns.a", &["frame.interface_name", "dns.cname", "dns.a"])?;
    let syn = tshark(&file, "tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.dstport == 8080", &["frame.interface_name", "ip.dst"])?;
    for target in ["blue.example.test", "green.example.test"] {
        let answer = dns.iter().find(|r| r[0] == "client" && r[1].split(',').any(|c| c == target));
        let answer = answer.ok_or_else(|| format!("{}: no answer app -> {target} on the client's link:{}", file.display(), show(&dns)))?;
        let ip = answer[2].split(',').next().unwrap_or_default();
        // The client's connection attempts to that address: SYNs on its link.
        ensure!(syn.iter().any(|r| r[0] == "client" && r[1] == ip), "{}: a SYN from the client to {target} ({ip}):{}", file.display(), show(&syn));
    }
    Ok(())
}

/// `nslab` with a private state and artifact directory.
fn nslab_cmd(dir: &Path, args: &[&str]) -> Result<std::process::Command, String> {
    let mut c = std::process::Command::new(nslab_tests::nslab_bin()?);
    c.args(args).env("NSLAB_STATE_DIR", dir.join("state")).env("NSLAB_ARTIFACTS_DIR", dir.join("artifacts")).env("NO_COLOR", "1").stdin(Stdio::null());
    Ok(c)
}

fn nslab_ok(dir: &Path, args: &[&str]) -> Result<String, String> {
    let child = nslab_cmd(dir, args)?.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
    let out = output_bounded(child, "nslab", GUARD)?;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    ensure!(out.status.success(), "nslab {}: {}\n{said}", args.join(" "), out.status);
    Ok(said)
}

/// Brings the lab down however the trial ends.
struct Down<'a>(&'a Path, String);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if self.0.join("state").join(&self.1).exists() {
            let _ = nslab_ok(self.0, &["down", "--force", &self.1]);
        }
    }
}

async fn cli_stream() -> Result<(), String> {
    let tmp = tempfile::Builder::new().prefix("nslab-capture-").tempdir().map_err(|e| e.to_string())?;
    let dir = tmp.path();
    let lab = format!("cap{}", std::process::id());
    let down = Down(dir, lab.clone());
    nslab_ok(dir, &["up", "--profile", "ipv4-only", "--hosts", "web,cli", "--name", &lab])?;
    // A file that exists is refused, not overwritten.
    let existing = dir.join("existing.pcapng");
    std::fs::write(&existing, b"keep me").map_err(|e| e.to_string())?;
    let refused = nslab_cmd(dir, &["capture", &lab, "-o", existing.to_str().ok_or("path")?])?.output().map_err(|e| e.to_string())?;
    ensure!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("must not exist"), "-o over an existing file: {refused:?}");
    ensure!(std::fs::read(&existing).map_err(|e| e.to_string())? == b"keep me", "the existing file was changed");
    // nslab capture LAB cli | tshark -r -
    let mut cap = nslab_cmd(dir, &["capture", &lab, "cli"])?.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
    let pipe = cap.stdout.take().ok_or("capture's stdout")?;
    let reader = std::process::Command::new("tshark")
        .args(["-n", "-r", "-", "-Y", "icmp.type == 8", "-T", "fields", "-e", "frame.interface_name", "-e", "ip.dst"])
        .stdin(Stdio::from(pipe))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("tshark: {e}"))?;
    // The capture says which links once its stream is live.
    let mut err = std::io::BufReader::new(cap.stderr.take().ok_or("capture's stderr")?);
    let first = tokio::task::spawn_blocking(move || {
        let mut l = String::new();
        let _ = std::io::BufRead::read_line(&mut err, &mut l);
        l
    })
    .await
    .map_err(|e| e.to_string())?;
    ensure!(first.contains("capturing cli"), "nslab capture's first line: {first:?}");
    nslab_ok(dir, &["exec", &lab, "cli", "--", "ping", "-c", "2", "-W", "5", "web"])?;
    nslab_ok(dir, &["down", &lab])?;
    drop(down);
    let status = nslab_tests::wait_child_bounded(cap, "nslab capture", GUARD).await?;
    ensure!(status.success(), "nslab capture ended with {status} when the lab went down");
    let out = output_bounded(reader, "tshark", GUARD)?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "tshark -r -: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
    let echoes = text.lines().filter(|l| l.starts_with("cli\t")).count();
    ensure!(echoes == 2, "two echo requests on link cli in the stream:\n{text}");
    Ok(())
}
