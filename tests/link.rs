//! Kernel tests of link flaps: after a host's lab interface goes down and comes back up, the
//! host has its addresses again and peers reach it over every family its profile has.

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
    libtest_mimic::run(&args, trials).exit_code()
}

/// A TCP connect from `client` to `addr`: Ok, or the errno (-2 for a timeout).
async fn connect(client: &nslab::Host, addr: SocketAddr) -> Result<(), i32> {
    match tokio::time::timeout(Duration::from_secs(3), client.connect_tcp(addr)).await {
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
            server.wait_dad(a, Duration::from_secs(10)).await.map_err(err)?;
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
        ensure!(connect(&client, *sa).await.is_ok(), "{profile}: {what} {sa} must connect before the flap");
    }

    server.set_link(false).await.map_err(err)?;
    for (what, _, sa) in &targets {
        ensure!(connect(&client, *sa).await.is_err(), "{profile}: {what} {sa} must not connect while the server's link is down");
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
        let r = connect(&client, *sa).await;
        ensure!(r.is_ok(), "{profile}: {what} {sa} must connect again after the flap, got errno {r:?}");
    }
    accept.abort();
    lab.teardown().await.map_err(err)?;
    Ok(())
}
