//! Reliability: crashes at random moments of a lab's life leave nothing behind, the lab's DNS
//! server stays responsive under a flood with a complete query log, and hostile scenario files
//! get a located error and cause nothing.
//!
//! `NSLAB_RELIABILITY_SEED` replays the random crash moments of an earlier run (each run prints
//! its seed); `NSLAB_RELIABILITY_RUNS` sets the crashes per kind (default 8, three kinds);
//! `NSLAB_DNS_FLOOD_SECS` the flood's length (default 3).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use nslab::dns::{RecordValue, Soa, Zone};
use nslab::host::process::descendants;
use nslab::{Command, Lab, LabDns};
use nslab_tests::{ensure, err, kernel_trial};
use tokio::io::{AsyncBufReadExt, BufReader};

/// How long a wait for something that must happen (a child's line, its death, the kernel
/// freeing what it held, an answer) lasts before the test calls it missing. A hang guard, not a
/// claim about speed: these take milliseconds on a quiet machine, and a loaded one must not turn
/// them into failures.
const GUARD: Duration = Duration::from_secs(30);
/// Environment variable every process of a crash run inherits, to find any that survive it.
const MARK: &str = "NSLAB_RELIABILITY_MARK";

fn main() -> std::process::ExitCode {
    if let Ok(mode) = std::env::var("NSLAB_TEST_CHILD") {
        return child::main(&mode);
    }
    let args = Arguments::from_args();
    let seed = std::env::var("NSLAB_RELIABILITY_SEED")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64));
    let runs: usize = std::env::var("NSLAB_RELIABILITY_RUNS").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(8).clamp(1, 100);
    if !args.list {
        eprintln!("reliability: seed {seed} (replay with NSLAB_RELIABILITY_SEED={seed}), {runs} crash runs per kind");
    }
    let mut trials = Vec::new();
    for (k, kind) in [Crash::Kill9, Crash::Sigint, Crash::Panic].into_iter().enumerate() {
        let s = seed.wrapping_add(k as u64);
        trials.push(kernel_trial(format!("crash/{}-at-random-moments-leaves-nothing", kind.name()), move || crashes(kind, s, runs)));
    }
    trials.push(kernel_trial("dns/flood-from-four-clients-server-responsive-and-log-complete", dns_flood));
    for case in hostile_cases() {
        trials.push(Trial::test(format!("hostile-scenario/{}", case.name), move || hostile(&case).map_err(Failed::from)));
    }
    nslab_tests::run_checking_host(&args, trials)
}

// ---------------------------------------------------------------------------------------------
// Crash safety
// ---------------------------------------------------------------------------------------------

/// How the harness process dies.
#[derive(Clone, Copy, Debug)]
enum Crash {
    Kill9,
    Sigint,
    /// A panic of the task that owns the lab, unwinding through it (`Drop` is the backstop).
    Panic,
}

impl Crash {
    fn name(self) -> &'static str {
        match self {
            Crash::Kill9 => "kill-9",
            Crash::Sigint => "sigint",
            Crash::Panic => "panic",
        }
    }
}

/// The phases the child announces, in order, for each lab it builds.
const PHASES: [&str; 4] = ["build", "services", "running", "teardown"];

/// splitmix64: small, seedable, enough to pick moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What one crash run saw of the lab just before the crash.
struct Seen {
    namespaces: usize,
    processes: usize,
}

async fn crashes(kind: Crash, seed: u64, runs: usize) -> Result<(), String> {
    let mut rng = Rng(seed);
    let mut by_phase: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for run in 0..runs {
        // Every phase is hit at least once per kind, then at random.
        let phase = match PHASES.get(run) {
            Some(p) => *p,
            None => PHASES[rng.below(PHASES.len() as u64) as usize],
        };
        let cycle = rng.below(2) as usize;
        let delay = Duration::from_micros(rng.below(3000));
        let what = format!("{} run {run} (seed {seed}): {} during {phase} of lab {cycle}, {delay:?} into it", kind.name(), kind.name());
        let seen = crash_once(kind, phase, cycle, delay, &format!("{seed}-{run}")).await.map_err(|e| format!("{what}: {e}"))?;
        let e = by_phase.entry(phase).or_default();
        e.0 += 1;
        e.1 += seen.namespaces;
        e.2 += seen.processes;
    }
    let summary: Vec<String> = by_phase.iter().map(|(p, (n, ns, pr))| format!("{p}: {n} runs, {ns} namespaces and {pr} processes seen")).collect();
    eprintln!("    crash {} (seed {seed}): {}", kind.name(), summary.join("; "));
    // Not vacuous: the runs caught live labs (namespaces held, programs running) when they crashed.
    let (ns, pr): (usize, usize) = by_phase.values().fold((0, 0), |a, v| (a.0 + v.1, a.1 + v.2));
    ensure!(ns > 0 && pr > 0, "the crashes never caught a live lab ({ns} namespaces, {pr} processes seen)");
    Ok(())
}

/// The namespaces (`net:[N]`, `mnt:[N]`, `pid:[N]`, `uts:[N]`) of this test process, which the
/// child shares and which must not count as the lab's.
fn own_namespaces() -> BTreeSet<String> {
    ["net", "mnt", "pid", "uts"]
        .iter()
        .filter_map(|k| std::fs::read_link(format!("/proc/self/ns/{k}")).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .collect()
}

/// Namespace links a process refers to: its own namespaces, its threads' network namespaces
/// (where nslab's short-lived namespace threads are), and open namespace descriptors.
fn namespace_links(pid: u32) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let is_ns = |l: &str| ["net:[", "mnt:[", "pid:[", "uts:["].iter().any(|p| l.starts_with(p));
    for k in ["net", "mnt", "pid", "uts", "pid_for_children"] {
        if let Ok(l) = std::fs::read_link(format!("/proc/{pid}/ns/{k}")) {
            out.insert(l.to_string_lossy().into_owned());
        }
    }
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(l) = std::fs::read_link(t.path().join("ns/net")) {
                out.insert(l.to_string_lossy().into_owned());
            }
        }
    }
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for f in fds.flatten() {
            if let Ok(l) = std::fs::read_link(f.path()) {
                let l = l.to_string_lossy().into_owned();
                if is_ns(&l) {
                    out.insert(l);
                }
            }
        }
    }
    out
}

/// Every process on the machine, as pid.
fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc").map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()).unwrap_or_default()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

/// What is left of a crashed run: processes carrying its mark or among `pids`, holders of its
/// namespaces, bind mounts of them, and interfaces added to the host namespace.
fn leftovers(mark: &str, pids: &BTreeSet<u32>, namespaces: &BTreeSet<String>, host_links: &BTreeSet<String>) -> Vec<String> {
    let mut left = Vec::new();
    let needle = format!("{MARK}={mark}\0");
    for pid in all_pids() {
        if !alive(pid) {
            continue;
        }
        if pids.contains(&pid) {
            left.push(format!("process {pid} of the lab is still running"));
        }
        if std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|e| e.windows(needle.len()).any(|w| w == needle.as_bytes())) {
            left.push(format!("process {pid} started by the crashed harness is still running"));
        }
        for l in namespace_links(pid).intersection(namespaces) {
            left.push(format!("process {pid} holds the lab's {l}"));
        }
    }
    // nslab never bind-mounts a namespace; a leak through /run/netns would show here.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mounts.lines() {
        if let Some(root) = line.split_whitespace().nth(3) {
            if namespaces.contains(root) {
                left.push(format!("the lab's {root} is mounted: {line}"));
            }
        }
    }
    let now = host_links_now();
    for l in now.difference(host_links) {
        left.push(format!("interface {l} appeared in the host's namespace"));
    }
    left
}

/// Interface names in the host's network namespace.
fn host_links_now() -> BTreeSet<String> {
    let out =
        std::process::Command::new("ip").args(["-o", "link", "show"]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    out.lines().filter_map(|l| l.split(':').nth(1)).map(|n| n.trim().split('@').next().unwrap_or("").to_string()).collect()
}

async fn crash_once(kind: Crash, phase: &str, cycle: usize, delay: Duration, mark: &str) -> Result<Seen, String> {
    let host_links = host_links_now();
    let own = own_namespaces();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // A killed harness cannot remove its artifacts: give the child a directory we remove.
    let artifacts = tempfile::tempdir().map_err(|e| e.to_string())?;
    // The sigint crash relies on SIGINT's default action in the child: it must not inherit an
    // ignore from whoever started this suite (a background job of a script has SIGINT ignored).
    let mut std_cmd = std::process::Command::new(exe);
    nslab_tests::default_signals(&mut std_cmd);
    let mut child = tokio::process::Command::from(std_cmd)
        .env("NSLAB_TEST_CHILD", "life")
        .env("NSLAB_ARTIFACTS_DIR", artifacts.path())
        .env(MARK, mark)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| e.to_string())?;
    let cpid = child.id().ok_or("child has no pid")?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let want = format!("PHASE {phase} {cycle}");
    let deadline = Instant::now() + GUARD;
    loop {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line()).await;
        match line {
            Ok(Ok(Some(l))) if l == want => break,
            Ok(Ok(Some(_))) => continue,
            Ok(_) => {
                let mut e = String::new();
                if let Some(mut s) = child.stderr.take() {
                    let _ = tokio::io::AsyncReadExt::read_to_string(&mut s, &mut e).await;
                }
                return Err(format!("the child ended before {want:?}: {}", e.trim()));
            }
            Err(_) => return Err(format!("the child did not reach {want:?} within {GUARD:?}")),
        }
    }
    std::thread::sleep(delay);
    // What the lab holds right now: the child's and its descendants' namespaces and processes.
    let mut pids: BTreeSet<u32> = descendants(cpid).into_iter().collect();
    let mut namespaces = namespace_links(cpid);
    for &p in &pids {
        namespaces.extend(namespace_links(p));
    }
    namespaces.retain(|l| !own.contains(l));
    let signal = match kind {
        Crash::Kill9 => nix::sys::signal::Signal::SIGKILL,
        Crash::Sigint => nix::sys::signal::Signal::SIGINT,
        Crash::Panic => nix::sys::signal::Signal::SIGUSR1,
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(cpid as i32), signal).map_err(|e| format!("signal the child: {e}"))?;
    // Descendants started between the snapshot and the signal are found by their mark.
    pids.extend(descendants(cpid));
    let status = tokio::time::timeout(GUARD, child.wait()).await.map_err(|_| format!("the child did not die within {GUARD:?}"))?.map_err(|e| e.to_string())?;
    let mut stderr = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = tokio::time::timeout(GUARD, tokio::io::AsyncReadExt::read_to_string(&mut s, &mut stderr)).await;
    }
    use std::os::unix::process::ExitStatusExt;
    match kind {
        Crash::Kill9 => ensure!(status.signal() == Some(libc::SIGKILL), "the child should die of SIGKILL, got {status}: {}", stderr.trim()),
        Crash::Sigint => ensure!(status.signal() == Some(libc::SIGINT), "the child should die of SIGINT, got {status}: {}", stderr.trim()),
        Crash::Panic => ensure!(
            status.code() == Some(101) && stderr.contains("deliberate panic"),
            "the child should end by its panic (101), got {status}: {}",
            stderr.trim()
        ),
    }
    let seen = Seen { namespaces: namespaces.iter().filter(|l| l.starts_with("net:[")).count(), processes: pids.len() };
    // The kernel reaps and frees in the background: wait for it (GUARD is a hang guard).
    let deadline = Instant::now() + GUARD;
    loop {
        let left = leftovers(mark, &pids, &namespaces, &host_links);
        if left.is_empty() {
            break;
        }
        ensure!(Instant::now() < deadline, "left behind {GUARD:?} after the crash:\n  {}", left.join("\n  "));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(seen)
}

// ---------------------------------------------------------------------------------------------
// DNS flood
// ---------------------------------------------------------------------------------------------

/// A DNS query for `name` (type A, class IN, recursion not desired) with `id`.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(12 + name.len() + 6);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0x00, 0x00, 0x01, 0x00, 0x01]);
    q
}

/// (id, rcode, answer count) of a response.
fn header(r: &[u8]) -> Option<(u16, u8, u16)> {
    (r.len() >= 12 && r[2] & 0x80 != 0).then(|| (u16::from_be_bytes([r[0], r[1]]), r[3] & 0x0f, u16::from_be_bytes([r[6], r[7]])))
}

/// What one flooding client did.
struct Flood {
    local: SocketAddr,
    sent: HashSet<String>,
    answered: usize,
    wrong: Vec<String>,
}

/// Queries each flooding client sends: a count, not a time, so a debug and a release build
/// check the same thing (in 3 s a release build sent more than the log holds). Four clients
/// send 20,000, a fifth of the log's default capacity.
const FLOOD_QUERIES: u32 = 5000;

/// Sends `count` queries for unique names from `host`, at most `window` unanswered at once;
/// each must be answered NXDOMAIN.
async fn flood(host: nslab::Host, server: SocketAddr, tag: String, count: u32, window: usize) -> Result<Flood, String> {
    let sock = host.bind_udp(SocketAddr::new(IpAddr::V4(host.ipv4().unwrap()), 0)).await.map_err(err)?;
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    let mut f = Flood { local, sent: HashSet::new(), answered: 0, wrong: Vec::new() };
    let mut outstanding: HashSet<u16> = HashSet::new();
    let mut seq: u32 = 0;
    let mut buf = vec![0u8; 1500];
    loop {
        while outstanding.len() < window && seq < count {
            let id = (seq & 0xffff) as u16;
            let name = format!("{tag}-{seq}.example.test");
            sock.send_to(&query(id, &name), server).await.map_err(|e| format!("{tag}: send: {e}"))?;
            f.sent.insert(format!("{name}."));
            outstanding.insert(id);
            seq += 1;
        }
        if outstanding.is_empty() {
            return Ok(f);
        }
        match tokio::time::timeout(GUARD, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => match header(&buf[..n]) {
                Some((id, rcode, _)) if outstanding.remove(&id) => {
                    f.answered += 1;
                    if rcode != 3 && f.wrong.len() < 5 {
                        f.wrong.push(format!("id {id}: rcode {rcode}, expected NXDOMAIN (3)"));
                    }
                }
                other => f.wrong.push(format!("unexpected response {other:?}")),
            },
            Ok(Err(e)) => return Err(format!("{tag}: receive: {e}")),
            Err(_) => {
                return Err(format!("{tag}: {} queries unanswered for {GUARD:?} ({} sent, {} answered): lost", outstanding.len(), f.sent.len(), f.answered))
            }
        }
    }
}

/// Four clients flood the server while a probe asks, one query at a time, until they are done.
/// Responsive: the probe is answered correctly while the flood goes on, which the server's own
/// log shows (probe entries with flood entries before and after them), whatever the machine's
/// speed; the latencies are printed as figures.
async fn dns_flood() -> Result<(), String> {
    let clients = ["c1", "c2", "c3", "c4"];
    let zone = Zone::new("example.test", Soa::new("dns", "hostmaster")).record("app", 30, RecordValue::Host("probe".into()));
    let lab = Lab::builder().hosts(clients.iter().copied().chain(["probe"])).dns(LabDns::new().zone(zone)).build().await.map_err(err)?;
    let dns = lab.dns().ok_or("the lab has no DNS server")?;
    let server = SocketAddr::new(IpAddr::V4(lab.host("dns").map_err(err)?.ipv4().unwrap()), 53);
    let probe_host = lab.host("probe").map_err(err)?.clone();
    let probe_ip = probe_host.ipv4().unwrap();
    let start = Instant::now();
    let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(clients.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for c in clients {
        let h = lab.host(c).map_err(err)?.clone();
        let running = running.clone();
        tasks.spawn(async move {
            let r = flood(h, server, c.to_string(), FLOOD_QUERIES, 16).await;
            running.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            r
        });
    }
    // The probe: one query after another while the flood runs, each answered with the probe
    // host's address.
    let psock = probe_host.bind_udp(SocketAddr::new(IpAddr::V4(probe_ip), 0)).await.map_err(err)?;
    let mut latencies = Vec::new();
    let mut buf = vec![0u8; 1500];
    let mut id: u16 = 1;
    while running.load(std::sync::atomic::Ordering::Relaxed) > 0 {
        let t = Instant::now();
        psock.send_to(&query(id, "app.example.test"), server).await.map_err(|e| e.to_string())?;
        let answer = loop {
            let n = tokio::time::timeout(GUARD, psock.recv(&mut buf))
                .await
                .map_err(|_| format!("probe {id} unanswered for {GUARD:?} during the flood ({:?} into it): lost", t - start))?
                .map_err(|e| e.to_string())?;
            if header(&buf[..n]).is_some_and(|h| h.0 == id) {
                break buf[..n].to_vec();
            }
        };
        latencies.push(t.elapsed());
        let (_, rcode, ancount) = header(&answer).unwrap();
        ensure!(
            rcode == 0 && ancount == 1 && answer.ends_with(&probe_ip.octets()),
            "probe {id}: expected NOERROR with {probe_ip}, got rcode {rcode}, {ancount} answers"
        );
        id = id.wrapping_add(1);
    }
    let mut floods = Vec::new();
    while let Some(r) = tasks.join_next().await {
        floods.push(r.map_err(|e| e.to_string())??);
    }
    let elapsed = start.elapsed();
    // Every query the server answered is in its log, once, from the client that sent it.
    let entries = dns.log().entries();
    let mut logged: BTreeMap<SocketAddr, HashSet<String>> = BTreeMap::new();
    let mut logged_count: BTreeMap<SocketAddr, usize> = BTreeMap::new();
    for e in &entries {
        logged.entry(e.client).or_default().insert(e.name.clone());
        *logged_count.entry(e.client).or_default() += 1;
    }
    ensure!(dns.log().dropped() == 0, "the query log dropped {} entries at its default capacity", dns.log().dropped());
    let mut total = 0;
    for f in &floods {
        ensure!(f.wrong.is_empty(), "client {}: wrong answers: {:?}", f.local, f.wrong);
        ensure!(f.sent.len() == FLOOD_QUERIES as usize, "client {}: sent {} of {FLOOD_QUERIES} queries", f.local, f.sent.len());
        ensure!(f.answered == f.sent.len(), "client {}: {} of {} queries answered", f.local, f.answered, f.sent.len());
        let got = logged.get(&f.local).cloned().unwrap_or_default();
        let n = logged_count.get(&f.local).copied().unwrap_or(0);
        ensure!(
            n == f.sent.len() && got == f.sent,
            "client {}: sent {} queries, the log has {n} ({} distinct names, {} sent names missing)",
            f.local,
            f.sent.len(),
            got.len(),
            f.sent.difference(&got).count()
        );
        total += f.sent.len();
    }
    let probe_addr = psock.local_addr().map_err(|e| e.to_string())?;
    let probes = logged_count.get(&probe_addr).copied().unwrap_or(0);
    ensure!(probes == latencies.len(), "{} probes answered, the log has {probes}", latencies.len());
    // Served during the flood, not after it: probes the server answered between flood queries.
    let is_flood = |e: &nslab::dns::QueryLogEntry| floods.iter().any(|f| f.local == e.client);
    let (first, last) = (entries.iter().position(is_flood), entries.iter().rposition(is_flood));
    let amid = first.zip(last).map_or(0, |(a, b)| entries[a..b].iter().filter(|e| e.client == probe_addr).count());
    ensure!(amid >= 10, "only {amid} of {probes} probes were answered between the flood's first and last query: the flood starved the other client");
    latencies.sort();
    eprintln!(
        "    flood: {total} queries from {} clients in {:.2} s ({:.0}/s), log complete ({} entries, 0 dropped); {} probes ({amid} amid the flood), median {:?}, max {:?}",
        floods.len(),
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        entries.len(),
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies.last().unwrap()
    );
    lab.teardown().await.map_err(err)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Hostile scenario files
// ---------------------------------------------------------------------------------------------

/// A hostile scenario: its file content, and what its error must say.
struct Hostile {
    name: &'static str,
    text: String,
    /// The error is `FILE:LINE:COL: ` followed by a message containing this.
    says: &'static str,
    /// Whether a symbolic link `files/outside` to the secret beside the folder is made.
    symlink: bool,
}

fn hostile_cases() -> Vec<Hostile> {
    let d = "description = \"hostile\"\n";
    let svc = |files: &str| format!("{d}[hosts.web]\n[services.web]\nhost = \"web\"\ncommand = [\"cat\", \"x\"]\nfiles = [{files}]\n");
    let mut huge = format!("{d}[hosts.web]\n");
    while huge.len() < 2 << 20 {
        huge.push_str("# this file is two megabytes of comments, to see it refused before it is parsed\n");
    }
    let case = |name, text: String, says| Hostile { name, text, says, symlink: false };
    vec![
        case("huge-file", huge, "the file is larger than 1024 KiB; expected a scenario of at most 1 MiB"),
        case("deeply-nested-arrays", format!("{d}x = {}{}\n", "[".repeat(500), "]".repeat(500)), "nested too deeply; expected at most 80 levels"),
        case("deeply-nested-inline-tables", format!("{d}[hosts.web]\nx = {}1{}\n", "{a=".repeat(300), "}".repeat(300)), "nested too deeply; expected at most 80 levels"),
        case("deeply-nested-dotted-keys", format!("{d}[hosts.web]\n[{}]\n", vec!["t"; 400].join(".")), "nested too deeply; expected at most 80 levels"),
        case("unknown-key", format!("{d}[hosts.web]\nprivileged = true\n"), "unknown key \"privileged\" in host \"web\""),
        case("bad-address", format!("{d}[hosts.web]\n[[timeline]]\naction = \"add-address\"\nhost = \"web\"\naddress = \"192.0.2.999/24\"\n"), "\"192.0.2.999\" is not an IP address"),
        case("public-ipv4-address", format!("{d}[hosts.web]\n[[timeline]]\naction = \"add-address\"\nhost = \"web\"\naddress = \"10.0.0.1/8\"\n"), "\"10.0.0.1\" is outside the lab's address space"),
        case("public-ipv6-address", format!("{d}[hosts.web]\n[[timeline]]\naction = \"add-address\"\nhost = \"web\"\naddress = \"2a00:1450::1/64\"\n"), "\"2a00:1450::1\" is outside the lab's address space"),
        case("record-to-public-address", format!("{d}[hosts.web]\n[dns]\n[[dns.zones]]\norigin = \"example.test\"\nrecords = [{{ name = \"app\", type = \"AAAA\", value = \"2606:4700::1111\" }}]\n"), "\"2606:4700::1111\" is outside the lab's address space"),
        case("source-traversal", svc("{ path = \"x\", source = \"../secret.txt\" }"), "\"../secret.txt\" leaves its folder with '..'"),
        case("source-deep-traversal", svc("{ path = \"x\", source = \"files/../../../../../../etc/shadow\" }"), "leaves its folder with '..'"),
        case("source-absolute", svc("{ path = \"x\", source = \"/etc/shadow\" }"), "\"/etc/shadow\" is absolute"),
        Hostile { name: "source-symlink-out", text: svc("{ path = \"x\", source = \"files/outside\" }"), says: "leads outside the scenario's folder through a symbolic link", symlink: true },
        case("file-path-traversal", svc("{ path = \"../../../../root/.ssh/authorized_keys\", content = \"x\" }"), "leaves its folder with '..'"),
        case("file-path-absolute", svc("{ path = \"/etc/cron.d/x\", content = \"x\" }"), "\"/etc/cron.d/x\" is absolute"),
        case("nul-in-argument", format!("{d}[hosts.web]\n[services.web]\nhost = \"web\"\ncommand = [\"sh\", \"-c\", \"true\\u0000rm -rf /\"]\n"), "contains a NUL byte"),
        case("too-many-hosts", format!("{d}{}", (0..1000).map(|i| format!("[hosts.h{i}]\n")).collect::<String>()), "declares 1000 hosts; expected at most 240"),
    ]
}

/// Every file under `dir` with its size and modification time.
fn listing(dir: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p);
            if m.as_ref().is_ok_and(|m| m.is_dir()) {
                stack.push(p.clone());
            }
            out.push((p, m.as_ref().map_or(0, |m| m.len()), m.ok().and_then(|m| m.modified().ok())));
        }
    }
    out.sort();
    out
}

/// Loads the case through the runner (what `nslab run` does first): no trial, one located
/// error saying what it must, no secret in it, and no file created or changed.
fn hostile(case: &Hostile) -> Result<(), String> {
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let secret = "the content of a file outside the scenario folder";
    std::fs::write(root.path().join("secret.txt"), secret).map_err(|e| e.to_string())?;
    let dir = root.path().join("scenario");
    std::fs::create_dir_all(dir.join("files")).map_err(|e| e.to_string())?;
    if case.symlink {
        std::os::unix::fs::symlink("../../secret.txt", dir.join("files/outside")).map_err(|e| e.to_string())?;
    }
    let file = dir.join(format!("{}.toml", case.name));
    std::fs::write(&file, &case.text).map_err(|e| e.to_string())?;
    let before = listing(root.path());
    let (trials, errors) = nslab_scenario::runner::collect(std::slice::from_ref(&file), &[]);
    ensure!(listing(root.path()) == before, "loading changed files under {}", root.path().display());
    ensure!(trials.is_empty(), "the hostile file gave {} trial(s) to run", trials.len());
    ensure!(errors.len() == 1, "expected one error, got {errors:?}");
    let e = &errors[0];
    let rest = e.strip_prefix(&format!("{}:", file.display())).ok_or_else(|| format!("the error does not name the file: {e}"))?;
    let mut parts = rest.splitn(3, ':');
    let (line, col, msg) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    ensure!(line.parse::<usize>().is_ok_and(|n| n >= 1) && col.parse::<usize>().is_ok_and(|n| n >= 1), "the error has no LINE:COL: {e}");
    ensure!(msg.contains(case.says), "the error should say {:?}: {e}", case.says);
    ensure!(!e.contains(secret), "the error leaks the content of a file outside the folder: {e}");
    ensure!(e.len() < 2000, "the error is {} bytes long", e.len());
    Ok(())
}

mod child {
    //! The child side of the crash runs: a lab's whole life, over and over, announcing each
    //! phase on stdout, until the parent's signal ends it.
    use super::*;
    use std::io::Write;

    pub(super) fn main(mode: &str) -> std::process::ExitCode {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let r = match mode {
            "life" => rt.block_on(life()),
            other => Err(format!("unknown child mode {other:?}")),
        };
        match r {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                std::process::ExitCode::FAILURE
            }
        }
    }

    fn say(phase: &str, cycle: usize) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "PHASE {phase} {cycle}");
        let _ = out.flush();
    }

    async fn cycles() -> Result<(), String> {
        // Bounded: the parent strikes within the first few labs.
        for cycle in 0..20 {
            say("build", cycle);
            let lab = Lab::builder().hosts(["a", "b", "c"]).dns(LabDns::new()).build().await.map_err(err)?;
            say("services", cycle);
            let mut procs = Vec::new();
            for h in ["a", "b", "c"] {
                procs.push(lab.host(h).map_err(err)?.spawn(Command::shell("(sleep 600 &); sleep 600 & echo up; wait")).await.map_err(err)?);
            }
            for p in &procs {
                p.wait_for_line("^up$", GUARD).await.map_err(err)?;
            }
            say("running", cycle);
            let q = lab.host("a").map_err(err)?.run(Command::new("getent").args(["hosts", "b.lab.test"]), GUARD).await.map_err(err)?;
            if !q.exit().is_some_and(|e| e.success()) {
                return Err(format!("getent in the lab failed: {}", q.output()));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            say("teardown", cycle);
            lab.teardown().await.map_err(err)?;
        }
        Err("no signal came within 20 labs".into())
    }

    async fn life() -> Result<(), String> {
        let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).map_err(|e| e.to_string())?;
        tokio::select! {
            r = cycles() => r,
            _ = usr1.recv() => panic!("deliberate panic at a random moment of a lab's life"),
        }
    }
}
