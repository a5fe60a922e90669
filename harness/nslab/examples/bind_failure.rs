//! Two ways a server fails to serve over IPv6, each with the errno the kernel really gives:
//!
//! - it binds its host's IPv6 address while duplicate address detection still runs: EADDRNOTAVAIL
//!   (the address is configured and right, but tentative); the same program binds once DAD is
//!   over. The lab holds the address tentative until the program has tried, so a slow start on a
//!   busy machine cannot miss the window;
//! - it listens on 0.0.0.0 on an IPv6-only host: it starts and listens (IPv4 is only on `lo`
//!   there), yet every peer's connect is refused (ECONNREFUSED); on `::` it serves.
//!
//! A complete test program (`harness = false`): `cargo run -p nslab --example bind_failure` runs it
//! (as root, or without root in rootless mode; its tests are reported ignored where neither
//! works or python3 / curl is missing).

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use nslab::testing;
use nslab::{Command, Family, HostSpec, Lab, Listen, Profile};

/// A guard against a hang, never a claim about speed: a loaded machine starts programs late.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Outside the addresses the lab gives its hosts (2001:db8:1::10 to ::249), inside its prefix.
const EXTRA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x99);

/// Binds [address]:8000 once and says what happened, with the errno's name.
const BIND_ONCE: &str = r#"
import errno, socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
try:
    s.bind((sys.argv[1], 8000))
except OSError as e:
    print("bind failed:", errno.errorcode[e.errno], flush=True)
    sys.exit(1)
print("bound", flush=True)
"#;

fn main() -> std::process::ExitCode {
    testing::main(vec![
        testing::test_requiring("bind-failure/a-tentative-address-gives-eaddrnotavail-until-dad-completes", &["python3"], tentative),
        testing::test_requiring("bind-failure/a-server-on-0-0-0-0-in-an-ipv6-only-host-is-refused-to-every-peer", &["python3", "curl"], ipv4_wildcard),
    ])
}

async fn tentative() -> nslab::Result<()> {
    let lab = Lab::builder().profile(Profile::Ipv6Only).host(HostSpec::new("server").dad(true)).host("client").build().await?;
    let server = lab.host("server")?;
    let addr = IpAddr::V6(EXTRA);
    // Tentative until complete_dad, however long the program takes to start.
    server.add_address_held(addr, 64).await?;

    let early = server.run(Command::new("python3").args(["-c", BIND_ONCE, &EXTRA.to_string()]).name("early"), HANG_GUARD).await?;
    assert_eq!(early.stdout(), "bind failed: EADDRNOTAVAIL\n", "{}", early.output());
    assert_eq!(early.exit().and_then(|e| e.code()), Some(1));
    // The test's own socket gets the same errno.
    let e = server.bind_tcp(SocketAddr::new(addr, 8001)).await.expect_err("a tentative address cannot be bound");
    let errno = e.os_error().expect("a bind error carries its errno");
    assert_eq!(std::io::Error::from_raw_os_error(errno).kind(), ErrorKind::AddrNotAvailable, "{e}");
    // Both failed while the kernel still called it tentative.
    assert_eq!(server.is_tentative(addr).await?, Some(true));

    // DAD runs to its end; the same command then binds.
    server.complete_dad(addr, 64).await?;
    let later = server.run(Command::new("python3").args(["-c", BIND_ONCE, &EXTRA.to_string()]).name("later"), HANG_GUARD).await?;
    assert_eq!(later.stdout(), "bound\n", "{}", later.output());
    assert!(later.exit().is_some_and(|e| e.success()));
    lab.teardown().await?;
    Ok(())
}

async fn ipv4_wildcard() -> nslab::Result<()> {
    let lab = Lab::builder().profile(Profile::Ipv6Only).hosts(["server", "client"]).build().await?;
    let (server, client) = (lab.host("server")?, lab.host("client")?);
    let server_v6 = server.ipv6().expect("an IPv6-only host has a global IPv6 address");
    let url = "http://server.lab.test:8000/";

    // It starts, and the kernel shows it listening, on IPv4 only.
    let v4 = server.spawn(Command::new("python3").args(["-m", "http.server", "8000", "--bind", "0.0.0.0"]).name("on-0.0.0.0")).await?;
    let l = server.wait_listening(&Listen::tcp(8000), HANG_GUARD, Some(&v4)).await?;
    assert_eq!((l.family(), l.local.ip()), (Family::V4, IpAddr::from([0, 0, 0, 0])), "listening on {l}");
    // curl from the peer is refused (exit 7: failed to connect) ...
    let curl = client.run(Command::new("curl").args(["-sS", "--max-time", "30", url]), HANG_GUARD).await?;
    assert_eq!(curl.exit().and_then(|e| e.code()), Some(7), "{}", curl.output());
    // ... and so is the test's own connect, with the errno.
    let e = client.connect_tcp(SocketAddr::new(server_v6.into(), 8000)).await.expect_err("nothing listens on IPv6");
    assert_eq!(e.os_error().map(|n| std::io::Error::from_raw_os_error(n).kind()), Some(ErrorKind::ConnectionRefused), "{e}");
    v4.stop(HANG_GUARD).await;

    // On :: the same server answers.
    let v6 = server.spawn(Command::new("python3").args(["-m", "http.server", "8000", "--bind", "::"]).name("on-any6")).await?;
    server.wait_listening(&Listen::tcp(8000).family(Family::V6), HANG_GUARD, Some(&v6)).await?;
    let curl = client.run(Command::new("curl").args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", url]), HANG_GUARD).await?;
    assert_eq!(curl.stdout(), "200", "{}", curl.output());
    lab.teardown().await?;
    Ok(())
}
