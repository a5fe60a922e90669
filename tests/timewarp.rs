//! Kernel tests of time warp (nslab::TimeWarp and the nslab-timewarp preload): real programs in
//! a lab host, warped 10x, report their own clocks around timed waits and around the expiry of
//! a JVM's address cache; every check is in program time, from the program's own readings,
//! against the harness's scaled clock (never a wall-clock upper bound).
//!
//! The harness's clock pins the program's from both sides, causally, with no tolerance but the
//! origin's: a line cannot reach the harness before it was written, so a reading (program time
//! since the warp's origin) is at most the harness's program time at the line's arrival; and a
//! program that reads its clock before and after a DNS lookup brackets the instant the lab's
//! DNS server (in the harness) logged its query, converted to program time. A program at the
//! start and end of its run is pinned so: without the preload it reads real time, a tenth of
//! the harness's program time, and fails. A wait that stays real while the clocks are warped
//! (libfaketime's failure on `sem_clockwait`, measured in ARCHITECTURE.md) lasts 10x too long
//! in program time.

use std::time::Duration;

use libtest_mimic::Arguments;
use nslab::dns::{RecordKind, RecordValue as V, Soa, Zone};
use nslab::{Command, Lab, LabDns, Process, Profile, TimeWarp};
use nslab_tests::{ensure, err, kernel_trial, trial_requiring};

fn main() -> std::process::ExitCode {
    nslab_tests::enter_rootless();
    let args = Arguments::from_args();
    let trials = vec![
        trial_requiring("timewarp/10x/jvm-address-cache-ttl-30-expires-after-30s-of-program-time", &["java"], || jvm_cache(10.0)),
        trial_requiring("timewarp/10x/jvm-sleep-wait-park-schedule-of-2s-last-2s-of-program-time", &["java"], || jvm_waits(10.0)),
        trial_requiring("timewarp/10x/python-sleep-event-lock-selector-asyncio-socket-of-2s-last-2s-of-program-time", &["python3"], || python_waits(10.0)),
        trial_requiring("timewarp/10x/children-of-a-warped-shell-share-its-clock-also-as-nobody", &["python3", "setpriv"], || child_shares_clock(10.0)),
        trial_requiring("timewarp/10x/dig-whose-allocator-reads-the-clock-while-the-warp-is-read-starts-and-resolves", &["dig"], || dig_starts(10.0)),
        trial_requiring("timewarp/10x/kernel-receive-stamps-so-timestampns-are-program-time", &["python3"], || receive_stamps(10.0)),
        trial_requiring("timewarp/10x/pdns-recursor-answers-though-it-drops-queries-that-look-old", &["pdns_recursor", "dig"], || pdns_answers(10.0)),
        kernel_trial("timewarp/a-statically-linked-program-is-refused-naming-why", static_refused),
    ];
    nslab_tests::run_checking_host(&args, trials)
}

/// A guard against a hang (real time, generous for a loaded machine), not a claim about speed.
const GUARD: Duration = Duration::from_secs(120);

/// Slack of a program reading against the harness's bounds: the harness's origin (an Instant)
/// and the one the program gets (CLOCK_MONOTONIC) are read within a microsecond of each other,
/// 10 us of program time at 10x; a millisecond is a hundred times that, and also covers
/// currentTimeMillis's truncation to the millisecond.
const SLACK: Duration = Duration::from_millis(2);

async fn lab_with_app() -> Result<Lab, String> {
    let mut zone = Zone::new("example.test", Soa::new("dns.example.test.", "hostmaster.example.test.")).record("app", 5, V::A("192.0.2.10".parse().unwrap()));
    for name in ["start", "end", "first", "second"] {
        zone = zone.record(name, 5, V::A("192.0.2.20".parse().unwrap()));
    }
    Lab::builder().profile(Profile::Ipv4Only).host("client").hosts_file_entries(false).dns(LabDns::new().zone(zone)).build().await.map_err(err)
}

/// One line a warped program reported: its event, its readings (program time since the warp's
/// origin) and the harness's program time at the line's arrival.
#[derive(Debug)]
struct Report {
    event: String,
    mono: Duration,
    wall: Duration,
    arrived: Duration,
}

/// The lines of `p` of the form `EVENT mono=NS wall=NS` (or Java's `nano=NS milli=MS`).
fn reports(lab: &Lab, warp: &TimeWarp, p: &Process) -> Result<Vec<Report>, String> {
    let mut out = Vec::new();
    for line in p.lines() {
        let mut w = line.text.split_whitespace();
        let Some(event) = w.next() else { continue };
        let mut mono = None;
        let mut wall = None;
        for kv in w {
            match kv.split_once('=') {
                Some(("mono" | "nano", v)) => mono = v.parse().ok().map(Duration::from_nanos),
                Some(("wall", v)) => wall = v.parse().ok().map(Duration::from_nanos),
                Some(("milli", v)) => wall = v.parse().ok().map(Duration::from_millis),
                _ => {}
            }
        }
        let (Some(mono), Some(wall)) = (mono, wall) else { continue };
        let mono = warp.program_monotonic(mono).ok_or_else(|| format!("{event}: CLOCK_MONOTONIC reading {mono:?} is before the warp's origin"))?;
        let wall = warp.program_realtime(wall).ok_or_else(|| format!("{event}: CLOCK_REALTIME reading {wall:?} is before the warp's origin"))?;
        out.push(Report { event: event.to_string(), mono, wall, arrived: warp.program_at_lab(lab.epoch(), line.at) });
    }
    Ok(out)
}

/// Every reading lies between the harness's program time when it began to start the program
/// and when the line arrived, on both clocks.
fn bracketed(lab: &Lab, warp: &TimeWarp, p: &Process, reports: &[Report]) -> Result<(), String> {
    let begun = warp.program_at_lab(lab.epoch(), p.begun_at());
    for r in reports {
        for (clock, v) in [("CLOCK_MONOTONIC", r.mono), ("CLOCK_REALTIME", r.wall)] {
            ensure!(
                v + SLACK >= begun && v <= r.arrived + SLACK,
                "{}: the program's {clock} read {v:?} of program time, outside the harness's scaled clock: the program was begun at {begun:?} and the line arrived at {:?} (scale {})",
                r.event,
                r.arrived,
                warp.scale()
            );
        }
    }
    Ok(())
}

/// The program's readings before and after its lookup of `NAME.example.test` bracket the
/// harness's program time of the lab server's first query for that name.
fn pinned(lab: &Lab, warp: &TimeWarp, reports: &[Report], name: &str) -> Result<(), String> {
    let (b, a) = (find(reports, &format!("{name}-lookup-before"))?, find(reports, &format!("{name}-lookup-after"))?);
    let fqdn = format!("{name}.example.test.");
    let log = lab.dns().expect("lab has DNS").log().query(&nslab::dns::LogFilter::new().name(&fqdn));
    let q = log.first().ok_or_else(|| format!("the lab server logged no query for {fqdn}"))?;
    let at = warp.program_at_lab(lab.epoch(), q.at);
    ensure!(
        b.mono <= at + SLACK && at <= a.mono + SLACK,
        "the program read {:?} and {:?} of program time around its lookup of {fqdn}, whose query the lab server logged at {at:?} of program time (scale {}): its clock is not the harness's scaled one",
        b.mono,
        a.mono,
        warp.scale()
    );
    Ok(())
}

fn find<'a>(reports: &'a [Report], event: &str) -> Result<&'a Report, String> {
    reports.iter().find(|r| r.event == event).ok_or_else(|| format!("no {event} line in {reports:#?}"))
}

/// A wait of `asked` lasted at least `asked` of program time, and less than halfway to what it
/// would have lasted had it stayed real (`asked * k`): at 10x, a real wake-up delay of up to
/// 0.9 s on a loaded machine still passes, a wait that was not scaled fails.
fn waited(reports: &[Report], what: &str, asked: Duration, k: f64) -> Result<Duration, String> {
    let (b, a) = (find(reports, &format!("{what}-before"))?, find(reports, &format!("{what}-after"))?);
    let took = a.mono.saturating_sub(b.mono);
    let halfway = asked.mul_f64(1.0 + (k - 1.0) / 2.0);
    ensure!(took >= asked, "{what} of {asked:?} ended after {took:?} of program time, before it was due");
    ensure!(took < halfway, "{what} of {asked:?} lasted {took:?} of program time at scale {k}: not scaled (it would take {:?} unscaled)", asked.mul_f64(k));
    Ok(took)
}

async fn jvm_waits(k: f64) -> Result<(), String> {
    let lab = lab_with_app().await?;
    let client = lab.host("client").map_err(err)?;
    let warp = TimeWarp::new(k).map_err(err)?;
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/java/WarpWaits.java");
    let cmd = Command::new("java").args(["-Xshare:auto", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", src, "waits"]).time_warp(&warp);
    let p = client.run(cmd, GUARD).await.map_err(err)?;
    ensure!(p.exit().is_some_and(|e| e.success()), "java failed: {}", p.output());
    let reports = reports(&lab, &warp, &p)?;
    bracketed(&lab, &warp, &p, &reports)?;
    pinned(&lab, &warp, &reports, "start")?;
    pinned(&lab, &warp, &reports, "end")?;
    let mut figures = Vec::new();
    for what in ["sleep", "wait", "park", "schedule"] {
        figures.push(format!("{what} {:?}", waited(&reports, what, Duration::from_secs(2), k)?));
    }
    // The harness saw the last wait end no earlier than a tenth of its program time after the
    // program started it: a lower bound only.
    let (b, a) = (find(&reports, "schedule-before")?, find(&reports, "schedule-after")?);
    let real = warp.to_real(a.arrived.saturating_sub(b.mono));
    ensure!(real >= Duration::from_millis(200), "the scheduled task's 2 s reached the harness {real:?} after it began: less than 2 s / {k}");
    println!("jvm at {k}x, program time of each 2 s wait: {}", figures.join(", "));
    lab.teardown().await.map_err(err)?;
    Ok(())
}

const PYTHON_WAITS: &str = r#"
import asyncio, selectors, socket, threading, time
def report(event):
    print(f"{event} mono={time.monotonic_ns()} wall={time.time_ns()}", flush=True)
def around(what, f):
    report(what + "-before"); f(); report(what + "-after")
def sock_timeout():
    a, b = socket.socketpair(); a.settimeout(2)
    try: a.recv(1)
    except TimeoutError: pass
def selector():
    s = selectors.DefaultSelector(); a, b = socket.socketpair(); s.register(a, selectors.EVENT_READ); s.select(2)
def lock():
    l = threading.Lock(); l.acquire(); l.acquire(timeout=2)
def lookup(name):
    around(name + "-lookup", lambda: socket.getaddrinfo(name + ".example.test", None, socket.AF_INET))
lookup("start")
around("sleep", lambda: time.sleep(2))
around("event", lambda: threading.Event().wait(2))
around("lock", lock)
around("selector", selector)
around("asyncio", lambda: asyncio.run(asyncio.sleep(2)))
around("socket", sock_timeout)
lookup("end")
"#;

async fn python_waits(k: f64) -> Result<(), String> {
    let lab = lab_with_app().await?;
    let client = lab.host("client").map_err(err)?;
    let warp = TimeWarp::new(k).map_err(err)?;
    let p = client.run(Command::new("python3").args(["-c", PYTHON_WAITS]).time_warp(&warp), GUARD).await.map_err(err)?;
    ensure!(p.exit().is_some_and(|e| e.success()), "python3 failed: {}", p.output());
    let reports = reports(&lab, &warp, &p)?;
    bracketed(&lab, &warp, &p, &reports)?;
    pinned(&lab, &warp, &reports, "start")?;
    pinned(&lab, &warp, &reports, "end")?;
    let mut figures = Vec::new();
    for what in ["sleep", "event", "lock", "selector", "asyncio", "socket"] {
        // asyncio ends a sleep when its clock is within its resolution of the deadline (1 ns).
        let asked = if what == "asyncio" { Duration::from_secs(2) - Duration::from_nanos(1) } else { Duration::from_secs(2) };
        figures.push(format!("{what} {:?}", waited(&reports, what, asked, k)?));
    }
    println!("python at {k}x, program time of each 2 s wait: {}", figures.join(", "));
    lab.teardown().await.map_err(err)?;
    Ok(())
}

async fn child_shares_clock(k: f64) -> Result<(), String> {
    let lab = lab_with_app().await?;
    let client = lab.host("client").map_err(err)?;
    let warp = TimeWarp::new(k).map_err(err)?;
    let py = "import socket, sys, time\n\
              def report(e): print(e, f\"mono={time.monotonic_ns()} wall={time.time_ns()}\", flush=True)\n\
              report(sys.argv[1] + \"-lookup-before\"); socket.getaddrinfo(sys.argv[1] + \".example.test\", None, socket.AF_INET); report(sys.argv[1] + \"-lookup-after\")";
    // The second child runs as nobody: the preload, placed in the host's /run, is readable by a
    // program that dropped its privileges (or the loader would skip it, and the pin fail). The
    // system's python3: nobody may not reach a python3 under root's home (pyenv).
    let script =
        format!("python3 -c '{py}' first; sleep 1; setpriv --reuid=65534 --regid=65534 --clear-groups env PATH=/usr/bin:/bin python3 -c '{py}' second");
    let p = client.run(Command::shell(script).time_warp(&warp), GUARD).await.map_err(err)?;
    ensure!(p.exit().is_some_and(|e| e.success()), "sh failed: {}", p.output());
    let reports = reports(&lab, &warp, &p)?;
    bracketed(&lab, &warp, &p, &reports)?;
    pinned(&lab, &warp, &reports, "first")?;
    pinned(&lab, &warp, &reports, "second")?;
    let (a, b) = (find(&reports, "first-lookup-after")?, find(&reports, "second-lookup-before")?);
    // Both children are pinned to the harness's scaled clock; between them, a `sleep 1`
    // (coreutils, itself warped) lasted at least its program second.
    let between = b.mono.saturating_sub(a.mono);
    ensure!(between >= Duration::from_secs(1), "the second child read its clock {between:?} after the first, across a sleep 1");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

async fn jvm_cache(k: f64) -> Result<(), String> {
    let lab = lab_with_app().await?;
    let client = lab.host("client").map_err(err)?;
    let warp = TimeWarp::new(k).map_err(err)?;
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/java/WarpWaits.java");
    let cmd = Command::new("java")
        .args(["-Xshare:auto", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", src, "cache", "app.example.test", "192.0.2.10"])
        .time_warp(&warp);
    let p = client.spawn(cmd).await.map_err(err)?;
    let first = p.wait_for_line("^first ", GUARD).await.map_err(err)?;
    let zone = lab.dns().expect("lab has DNS").zone("example.test").map_err(err)?;
    let swapping = warp.program_now();
    zone.replace_set("app", RecordKind::A, 5, vec![V::A("192.0.2.11".parse().unwrap())]).await.map_err(err)?;
    let swapped = warp.program_now();
    let changed = p.wait_for_line("^changed ", GUARD).await.map_err(err)?;
    p.wait_exit(GUARD).await.map_err(err)?;
    let field = |text: &str, key: &str| -> Result<Duration, String> {
        let v =
            text.split_whitespace().find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('='))).ok_or_else(|| format!("no {key}= in {text:?}"))?;
        let ns = v.parse().map_err(|e| format!("{key}={v} in {text:?}: {e}"))?;
        warp.program_monotonic(Duration::from_nanos(ns)).ok_or_else(|| format!("{key}={v} is before the warp's origin: the JVM's clock is not warped"))
    };
    ensure!(first.text.starts_with("first 192.0.2.10 "), "the JVM's first answer: {:?}", first.text);
    ensure!(changed.text.starts_with("changed 192.0.2.11 "), "the JVM's fresh answer: {:?}", changed.text);
    let (first_before, first_after) = (field(&first.text, "before")?, field(&first.text, "after")?);
    let (fresh_before, fresh_after) = (field(&changed.text, "before")?, field(&changed.text, "after")?);
    let last_stale_before = field(&changed.text, "last-old-before")?;
    let ttl = Duration::from_secs(30);
    let begun = warp.program_at_lab(lab.epoch(), p.begun_at());
    let (first_arrived, changed_arrived) = (warp.program_at_lab(lab.epoch(), first.at), warp.program_at_lab(lab.epoch(), changed.at));
    // The program's clock against the harness's scaled one (see the module docs).
    ensure!(
        first_before + SLACK >= begun && first_after <= first_arrived + SLACK,
        "first lookup at {first_before:?}..{first_after:?} of program time; the harness began the JVM at {begun:?} and read its line at {first_arrived:?}"
    );
    ensure!(fresh_after <= changed_arrived + SLACK, "fresh lookup ended at {fresh_after:?}, after its line reached the harness at {changed_arrived:?}");
    ensure!(fresh_after + SLACK >= swapping, "the fresh answer's lookup ended at {fresh_after:?}, before the harness began to swap the record at {swapping:?}");
    ensure!(swapped < first_after + ttl, "the record was swapped at {swapped:?}, after the cache's 30 s had passed: nothing measured");
    // Both lookups bracket their queries in the lab server's log (see `pinned`).
    let log = lab.dns().expect("lab has DNS").log().query(&nslab::dns::LogFilter::new().name("app.example.test."));
    let stamps: Vec<Duration> = log.iter().map(|q| warp.program_at_lab(lab.epoch(), q.at)).collect();
    ensure!(
        stamps.iter().any(|s| first_before <= *s + SLACK && *s <= first_after + SLACK),
        "no query of the first lookup ({first_before:?}..{first_after:?} of program time) among the server's, at {stamps:?}: the JVM's clock is not the harness's scaled one"
    );
    ensure!(
        stamps.iter().any(|s| fresh_before <= *s + SLACK && *s <= fresh_after + SLACK),
        "no query of the fresh lookup ({fresh_before:?}..{fresh_after:?} of program time) among the server's, at {stamps:?}: the JVM's clock is not the harness's scaled one"
    );
    // The cache entry was made during the first lookup, so it lived 30 s of the JVM's time: the
    // stale answer was never served once that time had passed, the fresh one never before.
    ensure!(
        last_stale_before < first_after + ttl,
        "a lookup begun at {last_stale_before:?} still got the stale answer, cached during {first_before:?}..{first_after:?} with ttl 30 s"
    );
    ensure!(fresh_after >= first_before + ttl, "the fresh answer came at {fresh_after:?}, before the entry cached at {first_before:?} was 30 s old");
    // For the record (not a check: the lines' delivery delays enter the real window; the
    // clock's rate is checked by the two lookups pinned to the server's log, 30 s apart).
    let program_window = fresh_after.saturating_sub(first_after);
    let real_window = warp.to_real(changed_arrived.saturating_sub(first_arrived));
    let measured = program_window.as_secs_f64() / real_window.as_secs_f64();
    println!(
        "jvm cache ttl 30 at {k}x: stale until {:?}, fresh from {:?} of program time after caching; real window {real_window:?} (clock rate {measured:.2}x)",
        last_stale_before.saturating_sub(first_after),
        fresh_after.saturating_sub(first_before)
    );
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// dig (BIND 9.18) allocates with jemalloc, which reads the clock inside `malloc`: the preload,
/// reading the warp at load time, called into the C library, which allocated, which read the
/// clock, which read the warp again, until the stack overflowed (SIGSEGV before dig's first
/// line, every time the origin was fresh).
async fn dig_starts(k: f64) -> Result<(), String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dig = std::env::split_paths(&path).map(|d| d.join("dig")).find(|p| p.is_file()).ok_or("dig is not on PATH")?;
    let ldd = std::process::Command::new("ldd").arg(&dig).output().map_err(err)?;
    ensure!(String::from_utf8_lossy(&ldd.stdout).contains("libjemalloc"), "dig does not use jemalloc here: this test's premise is gone");
    let lab = lab_with_app().await?;
    let client = lab.host("client").map_err(err)?;
    let warp = TimeWarp::new(k).map_err(err)?;
    let p = client.run(Command::new("dig").args(["+short", "+tries=1", "app.example.test", "A"]).time_warp(&warp), GUARD).await.map_err(err)?;
    ensure!(p.exit().is_some_and(|e| e.success()), "dig under a {k}x warp: exit {:?}, output:\n{}", p.exit(), p.output());
    ensure!(p.stdout().lines().any(|l| l == "192.0.2.10"), "dig's answer: {}", p.output());
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// A datagram's kernel receive stamp (SO_TIMESTAMPNS, real CLOCK_REALTIME from the kernel) is
/// read in program time: it lies between the program's own clock readings before the send and
/// after the receive. Unconverted it lies before both, by (k - 1) x the time since the warp's
/// origin (here after a program second's sleep: at least 0.9 s at 10x). PowerDNS Recursor drops
/// a query whose stamp looks older than its network timeout, so it answered nothing warped.
async fn receive_stamps(k: f64) -> Result<(), String> {
    // SO_TIMESTAMPNS is 35 on x86_64 and aarch64 (Python's socket module does not name it).
    const PY: &str = "import socket, struct, time\n\
        SO_TIMESTAMPNS = 35\n\
        time.sleep(1)\n\
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)\n\
        s.bind(('127.0.0.1', 0))\n\
        before = time.time_ns()\n\
        s.sendto(b'x', s.getsockname())\n\
        _, anc, _, _ = s.recvmsg(16, 64)\n\
        after = time.time_ns()\n\
        sec, nsec = struct.unpack('qq', [d for (l, t, d) in anc if t == SO_TIMESTAMPNS][0])\n\
        print(f'before={before} stamp={sec * 1000000000 + nsec} after={after}', flush=True)";
    let lab = lab_with_app().await?;
    let client = lab.host("client").map_err(err)?;
    let warp = TimeWarp::new(k).map_err(err)?;
    let p = client.run(Command::new("python3").args(["-c", PY]).time_warp(&warp), GUARD).await.map_err(err)?;
    ensure!(p.exit().is_some_and(|e| e.success()), "python3 failed: {}", p.output());
    let out = p.stdout();
    let field = |key: &str| -> Result<i128, String> {
        out.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .ok_or_else(|| format!("no {key}= in {out:?}"))?
            .parse()
            .map_err(err)
    };
    let (before, stamp, after) = (field("before")?, field("stamp")?, field("after")?);
    ensure!(
        before <= stamp && stamp <= after,
        "the receive stamp {stamp} is not between the program's clock before the send ({before}) and after the receive ({after}): {:.3} s before the send",
        (before - stamp) as f64 / 1e9
    );
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// PowerDNS Recursor, warped, answers a query from its own zone: it stamps each query with the
/// kernel's receive stamp and drops one older than its network timeout, so without the stamps
/// in program time it answered nothing (every dig timed out).
async fn pdns_answers(k: f64) -> Result<(), String> {
    // In the host's private /tmp; a bounded wait for its first answer (20 tries).
    let script = r#"set -u
d=$(mktemp -d /tmp/pdns.XXXXXX)
printf 'example.test. 60 IN SOA a.example.test. b.example.test. 1 60 60 60 60\napp.example.test. 60 IN A 192.0.2.5\n' > "$d/zone"
pdns_recursor --local-address=127.0.0.1 --socket-dir="$d" --daemon=no --auth-zones="example.test=$d/zone" --setuid=root --setgid=root --disable-syslog --quiet=no > "$d/log" 2>&1 &
p=$!
i=0
until dig +short +tries=1 +time=2 @127.0.0.1 app.example.test A | grep -qx 192.0.2.5; do
  i=$((i + 1)); [ $i -ge 20 ] && break; sleep 0.5
done
dig +tries=1 +time=2 @127.0.0.1 app.example.test A
kill $p; wait $p
tail -n 5 "$d/log""#;
    let lab = lab_with_app().await?;
    let client = lab.host("client").map_err(err)?;
    let warp = TimeWarp::new(k).map_err(err)?;
    let p = client.run(Command::shell(script).time_warp(&warp), GUARD).await.map_err(err)?;
    let out = p.stdout();
    ensure!(
        out.lines().any(|l| l.starts_with("app.example.test.") && l.ends_with("192.0.2.5")),
        "pdns_recursor under a {k}x warp gave no answer:\n{}",
        p.output()
    );
    lab.teardown().await.map_err(err)?;
    Ok(())
}

async fn static_refused() -> Result<(), String> {
    // ldconfig is statically linked on Debian (static-pie): it ignores LD_PRELOAD.
    let ldconfig = "/sbin/ldconfig";
    ensure!(TimeWarp::check_program(ldconfig).is_err(), "{ldconfig} is not statically linked here: pick another static program");
    let lab = Lab::builder().profile(Profile::Ipv4Only).host("client").build().await.map_err(err)?;
    let client = lab.host("client").map_err(err)?;
    let warp = TimeWarp::new(10.0).map_err(err)?;
    let e = client.spawn(Command::new(ldconfig).arg("-p").time_warp(&warp)).await.expect_err("a static program must be refused a warp");
    let want = "cannot run \"/sbin/ldconfig\" in warped time: /sbin/ldconfig is statically linked: it ignores LD_PRELOAD, so its clocks and timed waits stay in real time (run it at scale 1)";
    ensure!(e.to_string() == want, "refusal message:\n  got:  {e}\n  want: {want}");
    // The same program at scale 1 (no warp) runs.
    let p = client.run(Command::new(ldconfig).arg("-p"), GUARD).await.map_err(err)?;
    ensure!(p.exit().is_some_and(|e| e.success()), "ldconfig -p without a warp: {}", p.output());
    lab.teardown().await.map_err(err)?;
    Ok(())
}
