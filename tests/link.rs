//! Kernel tests of link flaps: after a host's lab interface goes down and comes back up, the
//! host has its addresses again (link-local too, DAD again where it has DAD) and its routes
//! through a gateway, and peers reach it over every family its profile has.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use libtest_mimic::Arguments;
use nslab::{HostSpec, Lab, Profile};
use nslab_tests::{ensure, err, kernel_trial};

fn main() -> std::process::ExitCode {
    nslab_tests::enter_rootless();
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for p in [Profile::DualStack, Profile::Ipv6Only] {
        for dad in [false, true] {
            let name = format!("flap/{p}/{}/addresses-and-connectivity-come-back", if dad { "dad" } else { "no-dad" });
            trials.push(kernel_trial(name, move || flap(p, dad)));
        }
    }
    trials.push(nslab_tests::trial_requiring("flap/ipv6-only-nat64/the-route-to-nat64-comes-back", &["tayga"], nat64_flap));
    nslab_tests::run_checking_host(&args, trials)
}

/// How long a connect that must succeed may take before the test calls it failed: a hang guard,
/// not a claim about speed.
const GUARD: Duration = Duration::from_secs(30);

/// How long a connect that must not succeed is given: a connect into a downed link hangs, and
/// this long is enough to see that it does not complete.
const HANG: Duration = Duration::from_secs(3);

/// A TCP connect from `client` to `addr` given `wait`: Ok, or the errno (-2 for a timeout).
async fn connect(client: &nslab::Host, addr: SocketAddr, wait: Duration) -> Result<(), i32> {
    match tokio::time::timeout(wait, client.connect_tcp(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.os_error().unwrap_or(-1)),
        Err(_) => Err(-2),
    }
}

async fn flap(profile: Profile, dad: bool) -> Result<(), String> {
    let lab = Lab::builder().profile(profile).hosts([HostSpec::new("server").dad(dad), HostSpec::new("client")]).build().await.map_err(err)?;
    let server = lab.host("server").map_err(err)?.clone();
    let client = lab.host("client").map_err(err)?.clone();
    let ifname = client.interface().to_string();
    let scope = client.in_netns(move || nix::net::if_::if_nametoindex(ifname.as_str())).await.map_err(err)?.map_err(|e| e.to_string())?;

    // Every address of the server's plan, as a socket address the client can dial.
    let mut targets: Vec<(&str, IpAddr, SocketAddr)> = Vec::new();
    if let Some(a) = server.ipv4() {
        targets.push(("IPv4", a.into(), SocketAddr::new(a.into(), 8000)));
    }
    if let Some(a) = server.ipv6() {
        targets.push(("IPv6", a.into(), SocketAddr::new(a.into(), 8000)));
    }
    if let Some(a) = server.link_local() {
        targets.push(("link-local", a.into(), SocketAddr::V6(SocketAddrV6::new(a, 8000, 0, scope))));
    }
    let want = match profile {
        Profile::DualStack => 3,
        _ => 2,
    };
    ensure!(targets.len() == want, "{profile}: the server should have {want} addresses, has {targets:?}");

    let wait_dad = |server: nslab::Host, targets: Vec<IpAddr>| async move {
        for a in targets.into_iter().filter(IpAddr::is_ipv6) {
            server.wait_dad(a, GUARD).await.map_err(err)?;
        }
        Ok::<(), String>(())
    };
    wait_dad(server.clone(), targets.iter().map(|t| t.1).collect()).await?;
    // One listener on [::]:8000 taking both families, accepting for the whole test.
    let l = server.bind_tcp("[::]:8000".parse().expect("literal")).await.map_err(err)?;
    let accept = tokio::spawn(async move {
        loop {
            if l.accept().await.is_err() {
                break;
            }
        }
    });
    for (what, _, sa) in &targets {
        ensure!(connect(&client, *sa, GUARD).await.is_ok(), "{profile}: {what} {sa} must connect before the flap");
    }

    server.set_link(false).await.map_err(err)?;
    for (what, _, sa) in &targets {
        ensure!(connect(&client, *sa, HANG).await.is_err(), "{profile}: {what} {sa} must not connect while the server's link is down");
    }
    if dad {
        // DAD after the link comes back lasts 5 probes 1 s apart: long enough to be seen
        // tentative right after, however late the test looks.
        server.set_sysctl(&format!("net.ipv6.conf.{}.dad_transmits", server.interface()), "5").await.map_err(err)?;
    }
    server.set_link(true).await.map_err(err)?;

    // The addresses are back: present, and with DAD tentative until it completes again.
    for (what, a, _) in &targets {
        let t = server.is_tentative(*a).await.map_err(err)?;
        ensure!(t.is_some(), "{profile}: the server's {what} address {a} is gone after the link came back up");
        if a.is_ipv6() {
            let expect = if dad { "tentative (DAD runs again)" } else { "usable at once (no DAD)" };
            ensure!(t == Some(dad), "{profile}: {what} {a} right after up should be {expect}, tentative={t:?}");
        }
    }
    wait_dad(server.clone(), targets.iter().map(|t| t.1).collect()).await?;
    for (what, _, sa) in &targets {
        let r = connect(&client, *sa, GUARD).await;
        ensure!(r.is_ok(), "{profile}: {what} {sa} must connect again after the flap, got errno {r:?}");
    }
    accept.abort();
    lab.teardown().await.map_err(err)?;
    Ok(())
}

/// An IPv6-only client reaches an IPv4-only server through NAT64 by a static route; a flap of
/// the client's link must not take that route away for good.
async fn nat64_flap() -> Result<(), String> {
    let lab = Lab::builder()
        .profile(Profile::Ipv6OnlyNat64)
        .hosts([HostSpec::new("server").profile(Profile::Ipv4Only), HostSpec::new("client")])
        .build()
        .await
        .map_err(err)?;
    let server = lab.host("server").map_err(err)?.clone();
    let client = lab.host("client").map_err(err)?.clone();
    let v4 = server.ipv4().ok_or("the ipv4-only server has no IPv4 address")?;
    let [a, b, c, d] = v4.octets();
    let p = nslab::lab::nat64::PREFIX.segments();
    let mapped = std::net::Ipv6Addr::new(p[0], p[1], p[2], p[3], p[4], p[5], u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
    let l = server.bind_tcp(SocketAddr::new(IpAddr::V4(v4), 8000)).await.map_err(err)?;
    let accept = tokio::spawn(async move { while l.accept().await.is_ok() {} });
    let to = SocketAddr::new(IpAddr::V6(mapped), 8000);
    ensure!(connect(&client, to, GUARD).await.is_ok(), "{to} (the server through NAT64) must connect before the flap");
    client.set_link(false).await.map_err(err)?;
    client.set_link(true).await.map_err(err)?;
    let r = connect(&client, to, GUARD).await;
    ensure!(r.is_ok(), "{to} (the server through NAT64) must connect again after the client's link flapped, got errno {r:?}");
    accept.abort();
    lab.teardown().await.map_err(err)?;
    Ok(())
}
