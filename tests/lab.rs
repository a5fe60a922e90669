//! Kernel tests of the lab core: profiles, DAD, per-host /etc files, processes, leaks, parallel
//! labs, privileges, and a host that is identical before and after the whole suite.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use libtest_mimic::Arguments;
use nslab::{Command, Family, HostSpec, Lab, Listen, Profile};
use nslab_tests::{ensure, err, kernel_trial};

const PY: &str = "/usr/bin/python3";
/// How long a wait for something that must happen (a listener, a line, a process gone) lasts
/// before the test calls it missing. A hang guard, not a claim about speed: a loaded machine
/// starts programs late, and that must not turn into a failure.
const T: Duration = Duration::from_secs(30);
/// How long a leak test waits for its child to build its lab, and then to end: a guard against a
/// hang (both take well under a second), after which the test fails saying what it waited for.
const LEAK_BOUND: Duration = Duration::from_secs(60);

const EADDRNOTAVAIL: i32 = libc::EADDRNOTAVAIL;
const ECONNREFUSED: i32 = libc::ECONNREFUSED;
const ENETUNREACH: i32 = libc::ENETUNREACH;
const EINVAL: i32 = libc::EINVAL;

fn main() -> std::process::ExitCode {
    if let Ok(mode) = std::env::var("NSLAB_TEST_CHILD") {
        return child::main(&mode);
    }
    nslab_tests::enter_rootless();
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for p in Profile::BASIC {
        trials.push(kernel_trial(format!("profile/{p}/connectivity"), move || connectivity(p)));
        trials.push(kernel_trial(format!("profile/{p}/kernel-addresses-loopback-and-first-ipv6-packet"), move || addresses(p)));
    }
    trials.push(kernel_trial("profile/no-ipv6/ipv6-sockets-fail-with-eafnosupport", no_ipv6));
    trials.push(nslab_tests::trial_requiring("profile/broken-ipv6/ipv6-connects-hang-and-happy-eyeballs-falls-back", &["curl"], broken_ipv6));
    trials.push(kernel_trial("profile/link-local-only/scoped-addresses-from-the-host-api-connect", link_local_api));
    trials.push(kernel_trial("dad/bind-to-tentative-address-fails-until-dad-completes", dad));
    trials.push(kernel_trial("etc/programs-see-the-lab-files-and-the-host-files-stay-untouched", etc_files));
    trials.push(kernel_trial("hostfs/run-and-tmp-writes-stay-in-the-host-and-its-programs-share-them", hostfs_run_tmp));
    trials.push(kernel_trial("hostfs/two-labs-daemons-do-not-clash-on-one-pid-file", hostfs_pid_files));
    trials.push(kernel_trial("hostfs/private-paths-are-per-host-and-bad-ones-are-refused", hostfs_private));
    trials.push(kernel_trial("hostfs/working-directories-are-the-hosts-own-never-the-machines", hostfs_cwd));
    trials.push(kernel_trial("sysctl/per-host-settings-stay-in-the-host", sysctls));
    trials.push(kernel_trial("process/wait-errors-show-what-was-awaited-and-the-output", wait_errors));
    trials.push(kernel_trial("process/stop-sends-term-then-kills-the-whole-tree", stop_tree));
    trials.push(kernel_trial("process/exec-failure-is-reported", exec_failure));
    trials.push(kernel_trial("process/a-connection-is-traced-to-the-process-that-holds-its-client-end", connection_owner));
    trials.push(kernel_trial("process/programs-start-with-default-signal-actions-whatever-the-harness-ignores", program_signals));
    for mode in ["kill-9", "sigint", "panic", "normal"] {
        trials.push(kernel_trial(format!("leak/{mode}-leaves-nothing"), move || leak(mode)));
    }
    trials.push(kernel_trial("teardown/a-failing-step-is-reported-and-every-other-step-still-runs", teardown_failure));
    trials.push(kernel_trial("teardown/drop-without-teardown-ends-everything-and-keeps-the-evidence", drop_backstop));
    trials.push(kernel_trial("parallel/fifty-labs-in-one-process", || many_labs(50)));
    trials.push(kernel_trial("parallel/labs-in-several-processes", labs_across_processes));
    trials.push(kernel_trial("privileges/clear-error-without-capabilities", privileges));

    nslab_tests::run_checking_host(&args, trials)
}

/// curl from `client` to `url`: Ok(http status) or Err(curl exit code and stderr).
async fn curl(client: &nslab::Host, url: &str) -> Result<Result<String, String>, String> {
    let p = client.run(Command::new("curl").args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", url]), T).await.map_err(err)?;
    let exit = p.exit().expect("run waits for exit");
    if exit.success() {
        Ok(Ok(p.stdout()))
    } else {
        Ok(Err(format!("curl exit {:?}: {}", exit.code(), p.stderr().trim())))
    }
}

/// A TCP connect from `client` to `addr`: `None` when it connects, else the errno (-2 when it
/// did not complete within [`T`], a hang guard).
async fn connect_errno(client: &nslab::Host, addr: SocketAddr) -> Option<i32> {
    connect_within(client, addr, T).await
}

/// A TCP connect given `wait`: `None` when it connects, else the errno (-2 for no answer).
async fn connect_within(client: &nslab::Host, addr: SocketAddr, wait: Duration) -> Option<i32> {
    match tokio::time::timeout(wait, client.connect_tcp(addr)).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.os_error().unwrap_or(-1)),
        Err(_) => Some(-2),
    }
}

async fn connectivity(profile: Profile) -> Result<(), String> {
    let lab = Lab::builder().profile(profile).hosts(["server", "client"]).build().await.map_err(err)?;
    let server = lab.host("server").map_err(err)?.clone();
    let client = lab.host("client").map_err(err)?.clone();
    let slot = server.slot();

    // A real server on [::]:8000 (both families where the kernel allows) and one on 0.0.0.0:8001.
    let dual = server.spawn(Command::new(PY).args(["-m", "http.server", "8000", "--bind", "::"]).current_dir(server.dir())).await.map_err(err)?;
    let v4only = server.spawn(Command::new(PY).args(["-m", "http.server", "8001", "--bind", "0.0.0.0"]).current_dir(server.dir())).await.map_err(err)?;
    let l = server.wait_listening(&Listen::tcp(8000).family(Family::V6), T, Some(&dual)).await.map_err(err)?;
    ensure!(l.accepts_ipv4(), "[::]:8000 should also take IPv4 (bindv6only=0), got {l}");
    server.wait_listening(&Listen::tcp(8001).family(Family::V4), T, Some(&v4only)).await.map_err(err)?;

    let ifname = client.interface();
    let cases = [
        ("IPv4", format!("http://{}:8000/", slot.v4), profile.has_ipv4()),
        ("IPv6", format!("http://[{}]:8000/", slot.v6), profile.has_global_ipv6()),
        ("link-local with scope", format!("http://[{}%25{ifname}]:8000/", slot.link_local), profile.has_link_local()),
    ];
    for (what, url, should) in cases {
        let got = curl(&client, &url).await?;
        match (should, got) {
            (true, Ok(code)) => ensure!(code == "200", "{profile}: {what} {url} answered HTTP {code}, expected 200"),
            (true, Err(e)) => return Err(format!("{profile}: {what} {url} should connect: {e}")),
            (false, Ok(code)) => return Err(format!("{profile}: {what} {url} should fail but answered HTTP {code}")),
            (false, Err(e)) => ensure!(e.starts_with("curl exit Some(7)"), "{profile}: {what} {url} should fail to connect (curl exit 7), got {e}"),
        }
    }

    // The errno a client sees for each family the profile does not allow.
    let ll_noscope = SocketAddr::V6(SocketAddrV6::new(slot.link_local, 8000, 0, 0));
    ensure!(connect_errno(&client, ll_noscope).await == Some(EINVAL), "{profile}: link-local without scope id must fail with EINVAL");
    let v6_to_v4only = SocketAddr::new(IpAddr::V6(slot.v6), 8001);
    let v4 = SocketAddr::new(IpAddr::V4(slot.v4), 8000);
    let v6 = SocketAddr::new(IpAddr::V6(slot.v6), 8000);
    match profile {
        Profile::Ipv4Only => {
            ensure!(connect_errno(&client, v4).await.is_none(), "ipv4-only: IPv4 connect must work");
            let e = connect_errno(&client, v6).await;
            ensure!(e == Some(EADDRNOTAVAIL), "ipv4-only: IPv6 connect must fail with EADDRNOTAVAIL (IPv6 disabled), got {e:?}");
        }
        Profile::DualStack => {
            ensure!(connect_errno(&client, v4).await.is_none() && connect_errno(&client, v6).await.is_none(), "dual-stack: both families must connect");
            let e = connect_errno(&client, v6_to_v4only).await;
            ensure!(e == Some(ECONNREFUSED), "dual-stack: IPv6 to a 0.0.0.0-only server must be refused, got {e:?}");
        }
        Profile::Ipv6Only => {
            let e = connect_errno(&client, v4).await;
            ensure!(e == Some(ENETUNREACH), "ipv6-only: IPv4 connect must fail with ENETUNREACH, got {e:?}");
            let e = connect_errno(&client, v6_to_v4only).await;
            ensure!(e == Some(ECONNREFUSED), "ipv6-only: a server bound to 0.0.0.0 must be unreachable from peers (ECONNREFUSED), got {e:?}");
            ensure!(connect_errno(&client, v6).await.is_none(), "ipv6-only: IPv6 connect must work");
        }
        Profile::LinkLocalOnly => {
            for a in [v4, v6] {
                let e = connect_errno(&client, a).await;
                ensure!(e == Some(ENETUNREACH), "link-local-only: {a} must fail with ENETUNREACH, got {e:?}");
            }
        }
        _ => {}
    }
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// `Host::ifindex`, `link_local_addr` and `link_local_of` give what a link-local test needs
/// without reading the kernel itself: the index is the one the kernel has in the host, a server
/// binds its own scoped address, and a client connects with its own interface as scope; the
/// accepted peer is the client's link-local address.
async fn link_local_api() -> Result<(), String> {
    let lab = Lab::builder().profile(Profile::LinkLocalOnly).host("server").host(HostSpec::new("client").interface("lab0")).build().await.map_err(err)?;
    let server = lab.host("server").map_err(err)?.clone();
    let client = lab.host("client").map_err(err)?.clone();
    for h in [&server, &client] {
        let ifname = h.interface().to_string();
        let kernel = h.in_netns(move || nix::net::if_::if_nametoindex(ifname.as_str())).await.map_err(err)?.map_err(|e| e.to_string())?;
        ensure!(h.ifindex() == kernel, "host {}: ifindex() is {}, the kernel says {} is {kernel}", h.name(), h.ifindex(), h.interface());
    }
    let bind = server.link_local_addr(7100).ok_or("a link-local-only host has a link-local address")?;
    ensure!(bind.scope_id() == server.ifindex() && Some(*bind.ip()) == server.link_local(), "server's own scoped address: {bind}");
    let listener = server.bind_tcp(bind.into()).await.map_err(err)?;
    let to = client.link_local_of(&server, 7100).ok_or("both hosts have link-local addresses")?;
    ensure!(to.scope_id() == client.ifindex() && Some(*to.ip()) == server.link_local(), "client's address of the server: {to}");
    let (conn, accepted) = tokio::join!(client.connect_tcp(to.into()), listener.accept());
    let conn = conn.map_err(err)?;
    let (_, peer) = accepted.map_err(|e| e.to_string())?;
    ensure!(peer.ip() == IpAddr::V6(client.link_local().unwrap()), "the server saw {peer}, expected the client's link-local address");
    ensure!(conn.peer_addr().map_err(|e| e.to_string())? == SocketAddr::V6(to), "client connected to {:?}", conn.peer_addr());
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// Addresses per interface as the kernel has them, read from inside the host.
async fn kernel_addrs(host: &nslab::Host) -> Result<BTreeSet<(String, IpAddr)>, String> {
    host.in_netns(|| -> Result<BTreeSet<(String, IpAddr)>, String> {
        let mut out = BTreeSet::new();
        for a in nix::ifaddrs::getifaddrs().map_err(|e| format!("getifaddrs: {e}"))? {
            let Some(addr) = a.address else { continue };
            let ip = if let Some(v4) = addr.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else if let Some(v6) = addr.as_sockaddr_in6() {
                IpAddr::V6(v6.ip())
            } else {
                continue;
            };
            out.insert((a.interface_name.clone(), ip));
        }
        Ok(out)
    })
    .await
    .map_err(err)?
}

/// A counter of /proc/net/snmp6 in the host's network namespace.
async fn icmp6_counter(host: &nslab::Host, name: &'static str) -> Result<u64, String> {
    // /proc/thread-self: the namespace of the thread that reads, not of the process.
    let text = host.in_netns(|| std::fs::read_to_string("/proc/thread-self/net/snmp6")).await.map_err(err)?.map_err(|e| e.to_string())?;
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).ok_or_else(|| format!("no {name} in {}'s /proc/net/snmp6", host.name()))
}

/// Retransmitted segments of a TCP connection (SYN and SYN-ACK included), from TCP_INFO.
fn total_retransmits(s: &tokio::net::TcpStream) -> Result<u32, String> {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain old data; getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let r = unsafe { libc::getsockopt(s.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_INFO, (&raw mut info).cast(), &mut len) };
    ensure!(r == 0, "getsockopt(TCP_INFO): {}", std::io::Error::last_os_error());
    Ok(info.tcpi_total_retrans)
}

/// What each profile leaves on the interfaces, read from the kernel (not from the plan):
/// loopback as the profile says (IPv6 disabled on `lo` too for ipv4-only; 127.0.0.1 kept on
/// IPv6-only hosts, as on real ones), and the first IPv6 connection after the build goes
/// through at once: one neighbour solicitation answered, no TCP retransmission (a tentative
/// address or a link brought up after its addresses costs a second or more of unanswered
/// solicitations or a retransmitted SYN).
async fn addresses(profile: Profile) -> Result<(), String> {
    let lab = Lab::builder().profile(profile).hosts(["server", "client"]).build().await.map_err(err)?;
    let server = lab.host("server").map_err(err)?.clone();
    let client = lab.host("client").map_err(err)?.clone();

    // First: the first IPv6 packet between the hosts, before anything else talks.
    if profile.has_global_ipv6() || profile.has_link_local() {
        let listener = server.bind_tcp("[::]:7000".parse().unwrap()).await.map_err(err)?;
        let target = if profile.has_global_ipv6() {
            SocketAddr::new(IpAddr::V6(server.slot().v6), 7000)
        } else {
            let ifname = client.interface().to_string();
            let scope = client.in_netns(move || nix::net::if_::if_nametoindex(ifname.as_str())).await.map_err(err)?.map_err(|e| e.to_string())?;
            SocketAddr::V6(SocketAddrV6::new(server.slot().link_local, 7000, 0, scope))
        };
        let solicits = icmp6_counter(&client, "Icmp6OutNeighborSolicits").await?;
        let started = Instant::now();
        let (conn, accepted) = tokio::join!(client.connect_tcp(target), listener.accept());
        let took = started.elapsed();
        let conn = conn.map_err(err)?;
        let (accepted, _) = accepted.map_err(|e| e.to_string())?;
        let (c, s) = (total_retransmits(&conn)?, total_retransmits(&accepted)?);
        let ns = icmp6_counter(&client, "Icmp6OutNeighborSolicits").await? - solicits;
        ensure!(
            c == 0 && s == 0 && ns <= 1,
            "{profile}: the first IPv6 connection to {target} took {took:?}, {ns} neighbour solicitations, {c} client and {s} server TCP retransmissions: the lab was not usable when build() returned"
        );
    }

    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    for host in [&server, &client] {
        let eth = host.interface().to_string();
        let slot = host.slot();
        let mut want: BTreeSet<(String, IpAddr)> = BTreeSet::from([("lo".to_string(), ip("127.0.0.1"))]);
        if profile != Profile::Ipv4Only {
            want.insert(("lo".into(), ip("::1")));
        }
        if profile.has_ipv4() {
            want.insert((eth.clone(), IpAddr::V4(slot.v4)));
        }
        if profile.has_global_ipv6() {
            want.insert((eth.clone(), IpAddr::V6(slot.v6)));
        }
        if profile.has_link_local() {
            want.insert((eth.clone(), IpAddr::V6(slot.link_local)));
        }
        let got = kernel_addrs(host).await?;
        ensure!(got == want, "{profile}: host {} has addresses {got:?}, expected exactly {want:?}", host.name());

        let disabled = if profile == Profile::Ipv4Only { "1" } else { "0" };
        for ifname in ["lo", eth.as_str()] {
            let v = host.sysctl(&format!("net.ipv6.conf.{ifname}.disable_ipv6")).await.map_err(err)?;
            ensure!(v.trim() == disabled, "{profile}: net.ipv6.conf.{ifname}.disable_ipv6 is {v:?} on {}, expected {disabled}", host.name());
        }

        // Loopback works in every family the profile keeps there, and IPv6 loopback is refused
        // where IPv6 is disabled.
        let l4 = host.bind_tcp("127.0.0.1:0".parse().unwrap()).await.map_err(err)?;
        host.connect_tcp(l4.local_addr().map_err(|e| e.to_string())?).await.map_err(err)?;
        match host.bind_tcp("[::1]:0".parse().unwrap()).await {
            Ok(l6) if profile != Profile::Ipv4Only => {
                host.connect_tcp(l6.local_addr().map_err(|e| e.to_string())?).await.map_err(err)?;
            }
            Ok(_) => return Err(format!("ipv4-only: binding [::1] on {} should fail (IPv6 disabled on lo)", host.name())),
            Err(e) => ensure!(profile == Profile::Ipv4Only && e.os_error() == Some(EADDRNOTAVAIL), "{profile}: binding [::1] on {}: {}", host.name(), err(e)),
        }
    }
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// A lab with a DNS server, a running program and an artifact directory where the query log
/// cannot be written.
async fn lab_with_blocked_query_log(root: &std::path::Path) -> Result<Lab, String> {
    let zone = nslab::dns::Zone::new("example.test", nslab::dns::Soa::new("dns", "hostmaster"));
    let lab = Lab::builder().artifacts_in(root).hosts(["h"]).dns(nslab::LabDns::new().zone(zone)).build().await.map_err(err)?;
    lab.host("h").map_err(err)?.spawn(Command::new("sleep").arg("100")).await.map_err(err)?;
    // A directory where the log file should go: writing the log fails.
    std::fs::create_dir_all(lab.artifacts().join("dns").join("queries.jsonl")).map_err(|e| e.to_string())?;
    Ok(lab)
}

/// After the lab ends: its processes are gone and nothing holds its namespaces.
async fn all_gone(what: &str, pids: &[u32], inodes: &BTreeSet<u64>) -> Result<(), String> {
    ensure!(!pids.is_empty() && !inodes.is_empty(), "{what}: the lab reported no processes or namespaces");
    let deadline = Instant::now() + T;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        let held = holders_of(inodes);
        if left.is_empty() && held.is_empty() {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "{what}: processes left {left:?}, namespaces held: {held:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn teardown_failure() -> Result<(), String> {
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let lab = lab_with_blocked_query_log(root.path()).await?;
    let (pids, inodes, artifacts) = (lab.process_ids(), lab.netns_inodes().into_iter().collect(), lab.artifacts().to_path_buf());
    ensure!(pids.iter().all(|&p| alive(p)), "the program should run before the teardown");
    let e = match lab.teardown().await {
        Ok(_) => return Err("teardown should report the query log it could not write".into()),
        Err(e) => e,
    };
    ensure!(e.failures.len() == 1, "one step failed, the error lists {}: {e}", e.failures.len());
    let msg = e.to_string();
    ensure!(msg.contains("write the DNS query log to") && msg.contains("queries.jsonl"), "the error should name the step and the file: {msg}");
    // The failure did not stop the other steps: processes ended, namespaces released, and the
    // artifacts kept as evidence.
    all_gone("after a failed teardown", &pids, &inodes).await?;
    ensure!(artifacts.join("h").is_dir(), "a failed teardown keeps the artifacts, {} is gone", artifacts.display());
    Ok(())
}

async fn drop_backstop() -> Result<(), String> {
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let lab = lab_with_blocked_query_log(root.path()).await?;
    let (pids, inodes, artifacts) = (lab.process_ids(), lab.netns_inodes().into_iter().collect(), lab.artifacts().to_path_buf());
    ensure!(pids.iter().all(|&p| alive(p)), "the program should run before the drop");
    drop(lab); // no teardown: an early return in a user's test
    all_gone("after drop", &pids, &inodes).await?;
    ensure!(artifacts.join("h").is_dir(), "a dropped lab keeps its artifacts as evidence, {} is gone", artifacts.display());
    Ok(())
}

async fn no_ipv6() -> Result<(), String> {
    let lab = Lab::builder().profile(Profile::NoIpv6).hosts(["server", "client"]).build().await.map_err(err)?;
    let server = lab.host("server").map_err(err)?.clone();
    let probe = "import socket\ntry:\n    socket.socket(socket.AF_INET6); print('created')\nexcept OSError as e:\n    print('errno', e.errno)\ns=socket.socket(); print('ipv4 ok')\n";
    let p = server.run(Command::new(PY).args(["-c", probe]), T).await.map_err(err)?;
    ensure!(
        p.stdout() == format!("errno {}\nipv4 ok\n", libc::EAFNOSUPPORT),
        "no-ipv6: AF_INET6 must fail with EAFNOSUPPORT, AF_INET must work: {:?}",
        p.output()
    );
    // A server that binds [::] (works on ipv4-only, where IPv6 is merely disabled) cannot start.
    let web = server.run(Command::new(PY).args(["-m", "http.server", "8000", "--bind", "::"]), T).await.map_err(err)?;
    ensure!(
        !web.exit().unwrap().success() && web.output().contains("Address family not supported by protocol"),
        "no-ipv6: [::] bind must fail: {}",
        web.output()
    );
    ensure!(server.ipv6().is_none() && server.ipv4().is_some(), "no-ipv6 hosts have IPv4 only");
    let l = server.spawn(Command::new(PY).args(["-m", "http.server", "8001", "--bind", "0.0.0.0"])).await.map_err(err)?;
    server.wait_listening(&Listen::tcp(8001), T, Some(&l)).await.map_err(err)?;
    ensure!(connect_errno(lab.host("client").map_err(err)?, SocketAddr::new(IpAddr::V4(server.ipv4().unwrap()), 8001)).await.is_none(), "IPv4 must work");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

async fn broken_ipv6() -> Result<(), String> {
    let lab = Lab::builder().profile(Profile::BrokenIpv6).hosts(["server", "client"]).build().await.map_err(err)?;
    let server = lab.host("server").map_err(err)?.clone();
    let client = lab.host("client").map_err(err)?.clone();
    let web = server.spawn(Command::new(PY).args(["-m", "http.server", "8000", "--bind", "::"]).current_dir(server.dir())).await.map_err(err)?;
    server.wait_listening(&Listen::tcp(8000), T, Some(&web)).await.map_err(err)?;
    let v6 = SocketAddr::new(IpAddr::V6(server.ipv6().unwrap()), 8000);
    let t = Instant::now();
    ensure!(
        connect_within(&client, v6, Duration::from_secs(3)).await == Some(-2),
        "broken-ipv6: an IPv6 connect must hang (no answer within 3 s), not fail fast"
    );
    ensure!(t.elapsed() >= Duration::from_millis(2900), "the IPv6 connect returned early");
    ensure!(connect_errno(&client, SocketAddr::new(IpAddr::V4(server.ipv4().unwrap()), 8000)).await.is_none(), "IPv4 must work");
    // curl tries IPv6 first (AAAA sorts first) and falls back to IPv4 after its Happy Eyeballs
    // head start (200 ms), so it answers quickly, over IPv4.
    let c = client
        .run(Command::new("curl").args(["-sS", "-o", "/dev/null", "-w", "%{remote_ip} %{time_connect}", "--max-time", "10", "http://server:8000/"]), T)
        .await
        .map_err(err)?;
    let out = c.stdout();
    let mut it = out.split_whitespace();
    let (ip, secs) = (it.next().unwrap_or(""), it.next().and_then(|s| s.parse::<f64>().ok()).unwrap_or(99.0));
    // Over IPv4 at all proves the fallback (the IPv6 connect never completes); after its head
    // start proves IPv6 was tried first. How soon after is the machine's speed, not curl's.
    ensure!(ip == server.ipv4().unwrap().to_string() && secs >= 0.1, "curl should connect over IPv4 after its ~0.2 s head start, got {out:?} {}", c.stderr());
    eprintln!("    broken-ipv6: curl connected over IPv4 after {secs:.3} s");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// DAD probes the server's addresses send: with the kernel's 1 s between probes, its addresses
/// stay tentative for 5-6 s. A state held for the test, not raced: the program started to bind
/// during DAD must act before DAD ends, however slowly the machine starts it, and the address
/// is checked to be still tentative after it acted.
const DAD_PROBES: u32 = 5;

async fn dad() -> Result<(), String> {
    let started = Instant::now();
    let server_spec = HostSpec::new("server")
        .dad(true)
        .sysctl("net.ipv6.conf.eth0.dad_transmits", DAD_PROBES.to_string())
        .sysctl("net.ipv6.neigh.eth0.retrans_time_ms", "1000");
    let lab = Lab::builder().hosts([server_spec, HostSpec::new("client")]).build().await.map_err(err)?;
    let server = lab.host("server").map_err(err)?.clone();
    let addr = IpAddr::V6(server.ipv6().expect("dual-stack"));
    ensure!(server.is_tentative(addr).await.map_err(err)? == Some(true), "{addr} should be tentative right after the build");
    // A real program binding the tentative address gets EADDRNOTAVAIL ...
    let script = format!("import socket\ns=socket.socket(socket.AF_INET6)\ntry:\n    s.bind(('{addr}', 9000)); print('bound')\nexcept OSError as e:\n    print('errno', e.errno)\n");
    let p = server.run(Command::new(PY).args(["-c", &script]), T).await.map_err(err)?;
    ensure!(p.stdout().trim() == format!("errno {EADDRNOTAVAIL}"), "bind during DAD: expected errno {EADDRNOTAVAIL}, got {:?}", p.output());
    // ... and so does the harness's own socket.
    let e = server.bind_tcp(SocketAddr::new(addr, 9001)).await.err().and_then(|e| e.os_error());
    ensure!(e == Some(EADDRNOTAVAIL), "harness bind during DAD: expected EADDRNOTAVAIL, got {e:?}");
    // Both failed while the kernel still held the address tentative (DAD only ever ends).
    ensure!(server.is_tentative(addr).await.map_err(err)? == Some(true), "{addr} was no longer tentative after the binds: DAD ended before they ran");
    server.wait_dad(addr, T).await.map_err(err)?;
    let dad_time = started.elapsed();
    let p = server.run(Command::new(PY).args(["-c", &script]), T).await.map_err(err)?;
    ensure!(p.stdout().trim() == "bound", "bind after DAD should succeed, got {:?}", p.output());
    let l = server.bind_tcp(SocketAddr::new(addr, 9001)).await.map_err(err)?;
    let accept = tokio::spawn(async move { l.accept().await.map(|_| ()) });
    lab.host("client").map_err(err)?.connect_tcp(SocketAddr::new(addr, 9001)).await.map_err(err)?;
    accept.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    // Real DAD: the kernel sent its probes one retransmit time apart before it let the address go.
    ensure!(dad_time >= Duration::from_secs(DAD_PROBES.into()), "DAD completed {dad_time:?} after the build began: sooner than {DAD_PROBES} probes 1 s apart");
    // The other host has no DAD: its address is usable at once.
    let c = lab.host("client").map_err(err)?;
    ensure!(c.is_tentative(IpAddr::V6(c.ipv6().unwrap())).await.map_err(err)? == Some(false), "client address must not be tentative");
    eprintln!("    DAD held {addr} tentative for about {dad_time:?} after the build began");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

async fn etc_files() -> Result<(), String> {
    let files = ["/etc/hosts", "/etc/resolv.conf", "/etc/gai.conf"];
    let before: Vec<Option<Vec<u8>>> = files.iter().map(|f| std::fs::read(f).ok()).collect();
    let gai = "# lab gai.conf\nprecedence ::ffff:0:0/96 100\n";
    let lab = Lab::builder().hosts([HostSpec::new("server"), HostSpec::new("client").gai_conf(gai)]).build().await.map_err(err)?;
    let client = lab.host("client").map_err(err)?.clone();
    let server = lab.host("server").map_err(err)?.clone();
    let h = client.run(Command::new("hostname"), T).await.map_err(err)?;
    ensure!(h.stdout() == "client\n", "a program should see its lab host's name, saw {:?}", h.stdout());
    let p = client.run(Command::new("cat").args(["/etc/resolv.conf", "/etc/hosts", "/etc/gai.conf"]), T).await.map_err(err)?;
    let dir = client.dir().join("etc");
    let want: String = ["resolv.conf", "hosts", "gai.conf"].iter().map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default()).collect();
    ensure!(p.stdout() == want, "program saw:\n{}\nexpected the lab's files:\n{want}", p.stdout());
    ensure!(want.contains("search lab.test") && want.contains(gai), "lab files incomplete:\n{want}");
    let g = client.run(Command::new("getent").args(["ahosts", "server"]), T).await.map_err(err)?;
    let out = g.stdout();
    ensure!(
        out.contains(&server.ipv4().unwrap().to_string()) && out.contains(&server.ipv6().unwrap().to_string()),
        "getent ahosts server should list both lab addresses, got:\n{out}"
    );
    // The server has no gai.conf of its own: it sees the host's file, unchanged.
    let s = server.run(Command::new("cat").arg("/etc/gai.conf"), T).await.map_err(err)?;
    ensure!(
        Some(s.stdout().into_bytes()) == before[2].clone().map(|b| String::from_utf8_lossy(&b).into_owned().into_bytes()) || before[2].is_none(),
        "server should see the host's own /etc/gai.conf"
    );
    lab.teardown().await.map_err(err)?;
    let after: Vec<Option<Vec<u8>>> = files.iter().map(|f| std::fs::read(f).ok()).collect();
    ensure!(before == after, "a host /etc file changed");
    Ok(())
}

/// A file name no other test or lab uses.
fn unique(what: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("nslab-test-{what}-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// A program's working directory is a path in its host's view: one under /tmp asked for is the
/// host's own /tmp's, and the harness's own under the machine's /tmp (a test crate in a temp
/// directory) is not inherited (through it, the program wrote into the machine's directory: seen
/// before this was fixed); it starts in / there. The second case runs in a child process started
/// in a fresh directory under the machine's /tmp (the working directory is the whole process's).
async fn hostfs_cwd() -> Result<(), String> {
    let lab = Lab::builder().hosts(["h"]).build().await.map_err(err)?;
    let h = lab.host("h").map_err(err)?;
    let dir = format!("/tmp/{}", unique("cwd"));
    ensure!(!Path::new(&dir).exists(), "{dir} exists on the machine before the test");
    let mk = h.run(Command::new("mkdir").arg(&dir), T).await.map_err(err)?;
    ensure!(mk.exit().is_some_and(|e| e.success()), "mkdir {dir} in the host: {}", mk.output());
    let p = h.run(Command::shell("pwd; echo from-the-host > here").current_dir(&dir), T).await.map_err(err)?;
    ensure!(p.exit().is_some_and(|e| e.success()) && p.stdout() == format!("{dir}\n"), "in {dir}: {:?} {}", p.exit(), p.output());
    let copy = h.private_copy("/tmp").ok_or("the host has its own /tmp")?.join(dir.trim_start_matches("/tmp/")).join("here");
    ensure!(std::fs::read_to_string(&copy).ok().as_deref() == Some("from-the-host\n"), "the file should be in the host's /tmp ({})", copy.display());
    ensure!(!Path::new(&dir).exists(), "the program's directory appeared on the machine: {dir}");
    // A directory the host does not have is an error, not the machine's directory.
    let e = h.spawn(Command::new("true").current_dir("/tmp/nslab-no-such-dir")).await.err().and_then(|e| e.os_error());
    ensure!(e == Some(libc::ENOENT), "a missing working directory should fail the spawn with ENOENT, got {e:?}");
    lab.teardown().await.map_err(err)?;

    let machine_dir = tempfile::Builder::new().prefix("nslab-test-cwd").tempdir_in("/tmp").map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = tokio::process::Command::new(exe).env("NSLAB_TEST_CHILD", "cwd").current_dir(machine_dir.path()).output().await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && text == "/\n",
        "a program of a harness working in {}: {:?} {text:?} {}",
        machine_dir.path().display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// `sh -c SCRIPT` in `host`, to completion: its stdout, or its exit and stderr.
async fn sh(host: &nslab::Host, script: &str) -> Result<Result<String, String>, String> {
    let p = host.run(Command::new("sh").args(["-c", script]), T).await.map_err(err)?;
    let exit = p.exit().expect("run waits for exit");
    Ok(if exit.success() { Ok(p.stdout()) } else { Err(format!("exit {:?}: {}", exit.code(), p.stderr().trim())) })
}

fn on_machine(path: &str) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Issue 12 (6): a probe's write to /run/x appeared on the machine. Each host has its own /run,
/// /tmp, /var/tmp (and /var/run through /run): its programs share them, the machine and the
/// other hosts never see them.
async fn hostfs_run_tmp() -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let n = unique("run");
    let paths = [format!("/run/{n}"), format!("/tmp/{n}"), format!("/var/tmp/{n}"), format!("/var/run/{n}.v")];
    let lab = Lab::builder().hosts(["a", "b"]).build().await.map_err(err)?;
    let a = lab.host("a").map_err(err)?.clone();
    let b = lab.host("b").map_err(err)?.clone();
    let write: String = paths.iter().map(|p| format!("echo from-a > {p} && ")).collect::<String>() + "true";
    sh(&a, &write).await?.map_err(|e| format!("host a could not write its own /run, /tmp and /var/tmp: {e}"))?;
    for p in &paths {
        ensure!(!on_machine(p), "{p} written in host a appeared on the machine");
    }
    // Another program of the same host sees the files, as on one machine.
    let got = sh(&a, &format!("cat {}", paths.join(" "))).await?.map_err(|e| format!("a second program of host a should read the files: {e}"))?;
    ensure!(got == "from-a\n".repeat(4), "a second program of host a read {got:?}");
    // /var/run is the host's /run (a link on this machine, or a directory of the host's own).
    let run_copy = a.private_copy("/run").ok_or("host a has no copy of /run")?;
    ensure!(std::fs::read_to_string(run_copy.join(&n)).ok().as_deref() == Some("from-a\n"), "the lab keeps host a's /run/{n} in {}", run_copy.display());
    // The other host has its own, empty of them.
    for p in &paths {
        let e = sh(&b, &format!("cat {p}")).await?.err().ok_or_else(|| format!("host b read host a's {p}"))?;
        ensure!(e == format!("exit Some(1): cat: {p}: No such file or directory"), "host b reading {p}: {e}");
    }
    // The copies have the machine's modes: /tmp is 1777 so programs of other users can use it.
    let modes = sh(&a, "stat -c %a /run /tmp /var/tmp").await?.map_err(|e| format!("stat in host a: {e}"))?;
    let machine = ["/run", "/tmp", "/var/tmp"]
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| format!("{:o}\n", m.permissions().mode() & 0o7777)).unwrap_or_default())
        .collect::<String>();
    ensure!(modes == machine, "host a's /run, /tmp, /var/tmp have modes {modes:?}, the machine's {machine:?}");
    if !nslab::os::rootless::is_rootless() {
        let as_nobody = format!("setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'echo x > /tmp/{n}.nobody && echo x > /var/tmp/{n}.nobody'");
        sh(&a, &as_nobody).await?.map_err(|e| format!("a program running as uid 65534 should write to the host's /tmp and /var/tmp: {e}"))?;
        let owner = std::fs::metadata(a.private_copy("/tmp").ok_or("no /tmp copy")?.join(format!("{n}.nobody"))).map_err(|e| e.to_string())?.uid();
        ensure!(owner == 65534, "the file of uid 65534 is owned by {owner}");
        // The copies are reachable by other users of the machine only through the host.
        let fs = a.dir().join("fs");
        let mode = std::fs::metadata(&fs).map_err(|e| e.to_string())?.permissions().mode() & 0o7777;
        ensure!(mode == 0o700, "{} has mode {mode:o}, expected 700", fs.display());
    }
    lab.teardown().await.map_err(err)?;
    for p in &paths {
        ensure!(!on_machine(p), "{p} is on the machine after teardown");
    }
    Ok(())
}

/// Issue 12 (6): two labs' daemons clashed on the same pid file. A daemon that refuses to start
/// when its pid file exists (created with O_EXCL, as many do) starts in two labs at once.
async fn hostfs_pid_files() -> Result<(), String> {
    let pid_file = format!("/run/{}.pid", unique("daemon"));
    let daemon = format!("set -C; echo $$ > {pid_file} || exit 17; echo started; exec sleep 60");
    let lab1 = Lab::builder().hosts(["srv"]).build().await.map_err(err)?;
    let lab2 = Lab::builder().hosts(["srv"]).build().await.map_err(err)?;
    let mut procs = Vec::new();
    for lab in [&lab1, &lab2] {
        let p = lab.host("srv").map_err(err)?.spawn(Command::new("sh").args(["-c", &daemon])).await.map_err(err)?;
        p.wait_for_line("^started$", T).await.map_err(|e| format!("the daemon of lab {} should start: {}", lab.name(), err(e)))?;
        procs.push(p);
    }
    for (lab, p) in [&lab1, &lab2].iter().zip(&procs) {
        ensure!(p.exit().is_none(), "the daemon of lab {} exited: {:?} {}", lab.name(), p.exit(), p.stderr());
    }
    ensure!(!on_machine(&pid_file), "{pid_file} appeared on the machine");
    lab1.teardown().await.map_err(err)?;
    lab2.teardown().await.map_err(err)?;
    Ok(())
}

/// `private = [...]`: a host gets its own empty copy of a machine directory; the machine's and
/// the other hosts' stay as they are. Bad paths are refused with what was wrong.
async fn hostfs_private() -> Result<(), String> {
    // A directory of the machine's own (outside /tmp, which is private anyway).
    let base = std::fs::canonicalize(env!("CARGO_TARGET_TMPDIR")).map_err(|e| e.to_string())?;
    let dir = tempfile::Builder::new().prefix("nslab-private-").tempdir_in(&base).map_err(|e| e.to_string())?;
    let d = dir.path().to_str().ok_or("utf-8")?.to_string();
    std::fs::write(dir.path().join("machine-file"), "machine\n").map_err(|e| e.to_string())?;
    let lab =
        Lab::builder().hosts([HostSpec::new("a").private(&d), HostSpec::new("b"), HostSpec::new("c").private(format!("{d}/"))]).build().await.map_err(err)?;
    let (a, b, c) = (lab.host("a").map_err(err)?.clone(), lab.host("b").map_err(err)?.clone(), lab.host("c").map_err(err)?.clone());
    let got = sh(&a, &format!("ls -A {d}; echo from-a > {d}/x; cat {d}/x")).await?.map_err(|e| format!("host a: {e}"))?;
    ensure!(got == "from-a\n", "host a should start with an empty {d} and write to it, got {got:?}");
    ensure!(!dir.path().join("x").exists(), "host a's write reached the machine's {d}");
    let got = sh(&b, &format!("ls -A {d}")).await?.map_err(|e| format!("host b: {e}"))?;
    ensure!(got == "machine-file\n", "host b (no private path) should see the machine's {d}, got {got:?}");
    let got = sh(&c, &format!("ls -A {d}")).await?.map_err(|e| format!("host c: {e}"))?;
    ensure!(got.is_empty(), "host c should have its own empty {d}, not host a's: got {got:?}");
    ensure!(a.private_copy(&d).is_some_and(|p| std::fs::read_to_string(p.join("x")).ok().as_deref() == Some("from-a\n")), "the lab keeps host a's copy of {d}");
    lab.teardown().await.map_err(err)?;

    let refused = |spec: HostSpec| async move {
        match Lab::builder().host(spec).build().await {
            Ok(lab) => {
                let _ = lab.teardown().await;
                "<built>".to_string()
            }
            Err(e) => e.to_string(),
        }
    };
    let got = refused(HostSpec::new("a").private("var/lib/x")).await;
    let want =
        "invalid lab definition: host a: private path \"var/lib/x\" is not absolute; expected the absolute path of a directory, such as \"/var/lib/app\"";
    ensure!(got == want, "a relative path: got {got:?}, expected {want:?}");
    let got = refused(HostSpec::new("a").private(format!("{d}/nope"))).await;
    let want = format!(
        "invalid lab definition: host a: private path \"{d}/nope\" does not exist on this machine; expected an existing directory (the host's own copy starts empty and covers it)"
    );
    ensure!(got == want, "a missing path: got {got:?}, expected {want:?}");
    Ok(())
}

async fn sysctls() -> Result<(), String> {
    let host_val = std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").map_err(|e| e.to_string())?;
    let lab = Lab::builder()
        .hosts([HostSpec::new("a").bindv6only(true).sysctl("net.ipv6.conf.eth0.hop_limit", "7"), HostSpec::new("b")])
        .build()
        .await
        .map_err(err)?;
    let a = lab.host("a").map_err(err)?;
    let p = a.run(Command::new("cat").args(["/proc/sys/net/ipv6/bindv6only", "/proc/sys/net/ipv6/conf/eth0/hop_limit"]), T).await.map_err(err)?;
    ensure!(p.stdout() == "1\n7\n", "host a should see bindv6only=1 and hop_limit=7, saw {:?}", p.stdout());
    let b = lab.host("b").map_err(err)?;
    ensure!(b.sysctl("net.ipv6.bindv6only").await.map_err(err)? == "0", "host b must keep bindv6only=0");
    // With bindv6only=1, [::] and 0.0.0.0 bind the same port side by side.
    let s = "import socket\na=socket.socket(socket.AF_INET6); a.bind(('::', 7000))\nb=socket.socket(); b.bind(('0.0.0.0', 7000)); print('both')\n";
    let p = a.run(Command::new(PY).args(["-c", s]), T).await.map_err(err)?;
    ensure!(p.stdout().trim() == "both", "bindv6only=1 should allow both binds: {}", p.output());
    let p = b.run(Command::new(PY).args(["-c", s]), T).await.map_err(err)?;
    ensure!(p.output().contains("Errno 98"), "bindv6only=0 should give EADDRINUSE: {}", p.output());
    let bad = Lab::builder().host(HostSpec::new("x").sysctl("kernel.pid_max", "1")).build().await.err().map(|e| e.to_string());
    ensure!(
        bad.as_deref() == Some("invalid lab definition: host x: sysctl \"kernel.pid_max\" is not a network sysctl; expected a name under net. (only those are private to a lab host)"),
        "host-wide sysctl must be refused, got {bad:?}"
    );
    lab.teardown().await.map_err(err)?;
    ensure!(std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").map_err(|e| e.to_string())? == host_val, "host bindv6only changed");
    Ok(())
}

async fn wait_errors() -> Result<(), String> {
    let lab = Lab::builder().host("h").build().await.map_err(err)?;
    let h = lab.host("h").map_err(err)?;
    let p = h.spawn(Command::shell("echo starting up; echo 'port in use' >&2; sleep 30").name("srv")).await.map_err(err)?;
    // Its output is there before the short waits below run out (whatever the machine's speed),
    // and nothing will ever listen or print "ready": their timeouts are certain.
    p.wait_for_line("^port in use$", T).await.map_err(err)?;
    p.wait_for_line("^starting up$", T).await.map_err(err)?;
    let e = h.wait_listening(&Listen::tcp(8080), Duration::from_millis(300), Some(&p)).await.unwrap_err().to_string();
    ensure!(
        e.starts_with("timed out after 300ms waiting for a tcp listener on port 8080 in host h (listening: nothing)")
            && e.contains("| starting up")
            && e.contains("| port in use"),
        "timeout message should name the wait and show the output, got:\n{e}"
    );
    let e = p.wait_for_line("ready", Duration::from_millis(200)).await.unwrap_err().to_string();
    ensure!(e.starts_with("timed out after 200ms waiting for h/srv to print a line matching /ready/"), "got:\n{e}");
    // A bad pattern is the caller's error, named, before any wait.
    let e = p.wait_for_line("ready (", T).await.unwrap_err();
    ensure!(matches!(e, nslab::Error::Pattern { .. }), "a bad pattern should be Error::Pattern, got {e:?}");
    ensure!(e.to_string().starts_with("invalid pattern /ready (/"), "got:\n{e}");
    let q = h.spawn(Command::shell("echo fatal: cannot bind; exit 3").name("bad")).await.map_err(err)?;
    let e = h.wait_listening(&Listen::tcp(8081), T, Some(&q)).await.unwrap_err().to_string();
    ensure!(
        e.starts_with("h/bad exited (exit status: 3) while waiting for a tcp listener on port 8081 in host h") && e.contains("| fatal: cannot bind"),
        "got:\n{e}"
    );
    let line = q.wait_for_line("fatal", T).await.map_err(err)?;
    ensure!(line.text == "fatal: cannot bind", "line {:?}", line.text);
    ensure!(std::fs::read_to_string(q.stdout_path()).map_err(|e| e.to_string())? == "fatal: cannot bind\n", "stdout log file should hold the output");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

use nslab::host::process::descendants;

async fn stop_tree() -> Result<(), String> {
    let lab = Lab::builder().host("h").build().await.map_err(err)?;
    let h = lab.host("h").map_err(err)?;
    // Ignores SIGTERM and leaves a double-forked daemon behind: both must go.
    let p = h.spawn(Command::shell("trap '' TERM; (sleep 600 &); echo ready; sleep 600").name("stubborn")).await.map_err(err)?;
    p.wait_for_line("^ready$", T).await.map_err(err)?;
    // The backgrounded sleep may still be starting when "ready" is printed.
    let deadline = Instant::now() + T;
    let mut tree = descendants(p.pid());
    while tree.len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        tree = descendants(p.pid());
    }
    ensure!(tree.len() >= 3, "expected sh, sleep and the daemon sleep under the init, got {tree:?}");
    let t = Instant::now();
    let exit = p.stop(Duration::from_millis(300)).await;
    ensure!(t.elapsed() >= Duration::from_millis(300), "stop returned before the grace period: {:?}", t.elapsed());
    ensure!(exit.status.is_none(), "a process ignoring SIGTERM ends killed with its namespace, got {exit}");
    ensure!(tree.iter().all(|&pid| !alive(pid)), "processes of the tree survived: {:?}", tree.iter().filter(|&&p| alive(p)).collect::<Vec<_>>());
    // A well-behaved program ends on SIGTERM, and its status says so.
    let q = h.spawn(Command::new("sleep").arg("600")).await.map_err(err)?;
    // Stopped once it runs (its exec done), not after a while.
    let deadline = Instant::now() + T;
    while !descendants(q.pid()).iter().any(|&pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")) {
        ensure!(Instant::now() < deadline, "sleep did not start within {T:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let exit = q.stop(T).await;
    ensure!(exit.to_string() == "signal: 15 (SIGTERM)", "sleep should die of SIGTERM, got {exit}");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// A server in one host accepts connections from a program in another: the client host's kernel
/// gives the inode of each connection's client end (an IPv4 socket, and an IPv6 one with an
/// IPv4-mapped address), the program's process holds it, an idle daemon beside it does not,
/// and once the program has exited the connection has no owner.
async fn connection_owner() -> Result<(), String> {
    let lab = Lab::builder().profile(Profile::DualStack).host("server").host("client").build().await.map_err(err)?;
    let (server, client) = (lab.host("server").map_err(err)?, lab.host("client").map_err(err)?);
    let v4 = server.ipv4().ok_or("server has no IPv4")?;
    let listener = server.bind_tcp("[::]:7000".parse().unwrap()).await.map_err(err)?;
    let daemon = client.spawn(Command::new("sleep").arg("600").name("daemon")).await.map_err(err)?;
    let script = format!(
        "import socket, time\na = socket.create_connection(('{v4}', 7000))\nb = socket.socket(socket.AF_INET6)\nb.connect(('::ffff:{v4}', 7000))\nprint('connected', flush=True)\ntime.sleep(600)"
    );
    let prog = client.spawn(Command::new(PY).args(["-c", &script]).name("two-conns")).await.map_err(err)?;
    let mut accepted = Vec::new();
    for _ in 0..2 {
        let (stream, peer) = tokio::time::timeout(T, listener.accept()).await.map_err(|_| "no connection accepted")?.map_err(err)?;
        accepted.push((stream.local_addr().map_err(err)?, peer, stream));
    }
    prog.wait_for_line("^connected$", T).await.map_err(err)?;
    for (local, peer, _) in &accepted {
        let inode = client.connection_inode(*peer, *local).await.map_err(err)?.ok_or(format!("no socket in the client for {peer} -> {local}"))?;
        let holder = prog.socket_holder(inode).ok_or(format!("the program holds no socket:[{inode}] ({peer} -> {local})"))?;
        let comm = std::fs::read_to_string(format!("/proc/{holder}/comm")).unwrap_or_default();
        ensure!(comm.trim() == "python3", "the holder of {peer} -> {local} is python3, got pid {holder} ({comm:?})");
        ensure!(daemon.socket_holder(inode).is_none(), "the idle daemon holds no socket of the connection {peer} -> {local}");
        // The server's end is in the server host, not the client: not mistaken for it.
        ensure!(server.connection_inode(*peer, *local).await.map_err(err)?.is_none(), "the server host has no socket whose local end is the client's {peer}");
    }
    prog.stop(T).await;
    for (local, peer, _) in &accepted {
        let after = client.connection_inode(*peer, *local).await.map_err(err)?;
        ensure!(after.is_none(), "after the program exited, {peer} -> {local} has no owner in the client (got inode {after:?})");
    }
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// A harness started as a background job of a script has SIGINT and SIGQUIT ignored; the
/// programs it starts in a lab get them at their default action, as a service on a machine does.
async fn program_signals() -> Result<(), String> {
    // This binary ignores SIGINT and SIGQUIT while the program starts, as such a harness would
    // (the other trials' children that rely on SIGINT set it themselves).
    // SAFETY: signal(2) with SIG_IGN changes only this process's dispositions.
    let prev = unsafe { [libc::signal(libc::SIGINT, libc::SIG_IGN), libc::signal(libc::SIGQUIT, libc::SIG_IGN)] };
    let lab = Lab::builder().host("h").build().await.map_err(err);
    let p = match &lab {
        Ok(lab) => lab.host("h").map_err(err)?.run(Command::new("grep").args(["^SigIgn:", "/proc/self/status"]), T).await.map_err(err),
        Err(e) => Err(e.clone()),
    };
    // SAFETY: restores the dispositions saved above.
    unsafe {
        libc::signal(libc::SIGINT, prev[0]);
        libc::signal(libc::SIGQUIT, prev[1]);
    }
    let (lab, p) = (lab?, p?);
    let line = p.stdout();
    let ign = u64::from_str_radix(line.trim().trim_start_matches("SigIgn:").trim(), 16).map_err(|e| format!("{line:?}: {e}"))?;
    ensure!(ign & 0b110 == 0, "the program inherited ignored SIGINT/SIGQUIT from the harness: {}", line.trim());
    lab.teardown().await.map_err(err)?;
    Ok(())
}

async fn exec_failure() -> Result<(), String> {
    let lab = Lab::builder().host("h").build().await.map_err(err)?;
    let e = lab.host("h").map_err(err)?.spawn(Command::new("/nonexistent/program")).await.unwrap_err();
    ensure!(e.os_error() == Some(libc::ENOENT), "expected ENOENT, got {e:?}");
    ensure!(err(e).starts_with("failed to spawn \"/nonexistent/program\" in host h: No such file or directory"), "message");
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// Processes (any, on the machine) whose network namespace or open descriptors refer to one of
/// `inodes`.
fn holders_of(inodes: &BTreeSet<u64>) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return out };
    for p in procs.flatten() {
        let name = p.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let ns = std::fs::read_link(p.path().join("ns/net")).map(|l| l.to_string_lossy().into_owned()).unwrap_or_default();
        let mut links = vec![ns];
        if let Ok(fds) = std::fs::read_dir(p.path().join("fd")) {
            links.extend(fds.flatten().filter_map(|f| std::fs::read_link(f.path()).ok()).map(|l| l.to_string_lossy().into_owned()));
        }
        for l in links {
            if let Some(ino) = l.strip_prefix("net:[").and_then(|r| r.strip_suffix(']')).and_then(|i| i.parse::<u64>().ok()) {
                if inodes.contains(&ino) {
                    out.push(format!("pid {} holds {l}", name.to_string_lossy()));
                }
            }
        }
    }
    out
}

async fn leak(mode: &'static str) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let child_mode = if mode == "normal" || mode == "panic" { mode } else { "hold" };
    // A killed harness cannot remove its artifacts: give the child a directory we remove.
    let artifacts = tempfile::tempdir().map_err(|e| e.to_string())?;
    // The sigint case relies on SIGINT's default action in the child: it must not inherit an
    // ignore from whoever started this suite (a background job of a script has SIGINT ignored).
    let mut cmd = std::process::Command::new(exe);
    nslab_tests::default_signals(&mut cmd);
    let mut child = cmd
        .env("NSLAB_TEST_CHILD", child_mode)
        .env("NSLAB_ARTIFACTS_DIR", artifacts.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || std::io::BufReader::new(stdout).lines().next().and_then(|l| l.ok()).unwrap_or_default());
    let ready = match tokio::time::timeout(LEAK_BOUND, first).await {
        Ok(r) => r.map_err(|e| e.to_string())?,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the child did not report READY (its lab built) within {} s; killed it", LEAK_BOUND.as_secs()));
        }
    };
    let rest = ready.strip_prefix("READY ").ok_or_else(|| format!("child did not report READY: {ready:?}"))?;
    let mut parts = rest.split(';');
    let inodes: BTreeSet<u64> = parts.next().unwrap_or("").split(',').filter_map(|s| s.parse().ok()).collect();
    let pids: Vec<u32> = parts.next().unwrap_or("").split(',').filter_map(|s| s.parse().ok()).collect();
    ensure!(inodes.len() == 3 && pids.len() >= 6, "child reported too little: {rest}");
    ensure!(pids.iter().all(|&p| alive(p)), "lab processes should be running before the {mode}");
    ensure!(!holders_of(&inodes).is_empty(), "the lab namespaces should be held while it runs");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    match mode {
        "kill-9" => nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).map_err(|e| e.to_string())?,
        "sigint" => nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).map_err(|e| e.to_string())?,
        _ => {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"go\n").map_err(|e| e.to_string())?;
        }
    }
    let status = nslab_tests::wait_child_bounded(child, &format!("the child's end after {mode}"), LEAK_BOUND).await?;
    if mode == "sigint" {
        use std::os::unix::process::ExitStatusExt;
        ensure!(status.signal() == Some(libc::SIGINT), "the child should die of SIGINT, got {status}");
    }
    if mode == "normal" {
        ensure!(status.success(), "child should end normally: {status}");
    }
    if mode == "panic" {
        ensure!(status.code() == Some(101), "child should end by panic (101): {status}");
    }
    // Processes die at once; give the kernel a moment to finish the reaping.
    all_gone(&format!("after {mode}"), &pids, &inodes).await
}

async fn many_labs(n: usize) -> Result<(), String> {
    let labs = futures_lite_join(n).await?;
    for lab in labs {
        lab.teardown().await.map_err(err)?;
    }
    Ok(())
}

/// Builds `n` labs at once and checks each one's hosts reach each other over both families.
async fn futures_lite_join(n: usize) -> Result<Vec<Lab>, String> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        set.spawn(async move {
            let lab = Lab::builder().hosts(["a", "b", "c"]).build().await.map_err(err)?;
            let a = lab.host("a").map_err(err)?.clone();
            let b = lab.host("b").map_err(err)?;
            for addr in a.addrs() {
                let l = a.bind_tcp(SocketAddr::new(addr, 5000)).await.map_err(err)?;
                let acc = tokio::spawn(async move { l.accept().await.map(|(_, peer)| peer) });
                b.connect_tcp(SocketAddr::new(addr, 5000)).await.map_err(|e| format!("lab {i}: {}", err(e)))?;
                let peer = acc.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
                ensure!(b.addrs().contains(&peer.ip()), "lab {i}: a saw a connection from {peer}, not from b");
            }
            let p = b.run(Command::new("true"), T).await.map_err(err)?;
            ensure!(p.exit().unwrap().success(), "lab {i}: true failed");
            Ok::<Lab, String>(lab)
        });
    }
    let mut labs = Vec::new();
    while let Some(r) = set.join_next().await {
        labs.push(r.map_err(|e| e.to_string())??);
    }
    let names: BTreeSet<&str> = labs.iter().map(|l| l.name()).collect();
    ensure!(names.len() == n, "lab names collided");
    Ok(labs)
}

async fn labs_across_processes() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let children: Vec<_> = (0..4)
        .map(|_| std::process::Command::new(&exe).env("NSLAB_TEST_CHILD", "many").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn())
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    for c in children {
        let pid = c.id();
        let out = match tokio::time::timeout(LEAK_BOUND, tokio::task::spawn_blocking(move || c.wait_with_output())).await {
            Ok(r) => r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?,
            Err(_) => {
                // Our own child, by its id; the blocked wait then returns.
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
                return Err(format!("child {pid} (labs in several processes) had not ended after {} s; killed it", LEAK_BOUND.as_secs()));
            }
        };
        ensure!(out.status.success(), "child failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

async fn privileges() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = tokio::process::Command::new("setpriv")
        .args(["--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--"])
        .arg(exe)
        .env("NSLAB_TEST_CHILD", "privileges")
        .output()
        .await
        .map_err(|e| format!("setpriv: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        text.trim() == "nslab needs CAP_NET_ADMIN and CAP_SYS_ADMIN to build a lab; run as root, or call nslab::testing::enter() first thing in main (the nslab command and nslab's test binaries do), or work in a VM made with the repository's Vagrantfile",
        "unexpected message without capabilities: {text:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

mod child {
    //! The child side of the crash and multi-process tests.
    use super::*;

    pub(super) fn main(mode: &str) -> std::process::ExitCode {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let code = rt.block_on(async {
            match mode {
                "many" => many_labs(12).await.map(|_| 0),
                "cwd" => {
                    let lab = Lab::builder().host("h").build().await.map_err(err)?;
                    // Reads only: where it starts, it must not write (that is the machine's /).
                    let p = lab.host("h").map_err(err)?.run(Command::new("pwd"), T).await.map_err(err)?;
                    print!("{}", p.stdout());
                    eprint!("{}", p.stderr());
                    lab.teardown().await.map_err(err)?;
                    Ok(0)
                }
                "privileges" => {
                    let e = Lab::builder().host("h").build().await.err().map(|e| e.to_string()).unwrap_or_else(|| "built".into());
                    println!("{e}");
                    Ok(0)
                }
                _ => hold(mode).await,
            }
        });
        match code {
            Ok(c) => std::process::ExitCode::from(c),
            Err(e) => {
                eprintln!("{e}");
                std::process::ExitCode::FAILURE
            }
        }
    }

    async fn hold(mode: &str) -> Result<u8, String> {
        let lab = Lab::builder().hosts(["a", "b"]).build().await.map_err(err)?;
        for h in lab.hosts() {
            let p = h.spawn(Command::shell("(sleep 600 &); sleep 600 & echo up; wait")).await.map_err(err)?;
            p.wait_for_line("up", T).await.map_err(err)?;
        }
        let _sock = lab.host("a").map_err(err)?.bind_tcp("192.0.2.1:1".parse().unwrap()).await.ok();
        let mut pids: Vec<u32> = lab.process_ids();
        for p in lab.process_ids() {
            pids.extend(descendants(p));
        }
        let inodes: Vec<String> = lab.netns_inodes().iter().map(|i| i.to_string()).collect();
        let pids: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
        println!("READY {};{}", inodes.join(","), pids.join(","));
        // Act only once the parent has checked the running lab.
        let mut go = String::new();
        let _ = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut go)).await;
        match mode {
            "normal" => {
                lab.teardown().await.map_err(err)?;
                Ok(0)
            }
            "panic" => panic!("deliberate panic with a live lab"),
            _ => {
                tokio::time::sleep(Duration::from_secs(600)).await;
                Ok(1)
            }
        }
    }
}
