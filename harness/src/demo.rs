//! The demonstration the README's first command runs: every profile, what connects and what fails.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::lab::Lab;
use crate::process::Command;
use crate::profile::Profile;

/// One connection attempt of the demonstration and its outcome.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// What was tried, in words.
    pub what: String,
    /// `Ok(())` or the error as the kernel reported it.
    pub outcome: std::result::Result<(), String>,
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
    /// Each attempt.
    pub attempts: Vec<Attempt>,
    /// What `ip -brief address` shows in the server host (a real program run inside it).
    pub server_addresses: String,
}

fn errno_text(e: &crate::Error) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return format!("{} (errno {code})", nix::errno::Errno::from_raw(code).desc());
            }
            return io.to_string();
        }
        cur = c.source();
    }
    e.to_string()
}

/// Builds a two-host lab in `profile`, serves TCP on `0.0.0.0:8000` and `[::]:8001`-style
/// listeners from the harness itself, and tries every address family from the client.
///
/// # Errors
/// Lab build or teardown failures (connection failures are results, not errors).
pub async fn run_profile(profile: Profile) -> Result<ProfileReport> {
    let t = Instant::now();
    let lab = Lab::builder().profile(profile).host("server").host("client").build().await?;
    let build = t.elapsed();
    let server = lab.host("server")?.clone();
    let client = lab.host("client")?.clone();
    let slot = server.slot();
    let mut listeners = Vec::new();
    for addr in [SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8000)), SocketAddr::from((Ipv6Addr::UNSPECIFIED, 8001))] {
        match server.bind_tcp(addr).await {
            Ok(l) => listeners.push(tokio::spawn(async move { while let Ok((_s, _)) = l.accept().await {} })),
            Err(e) => tracing::info!(%addr, error = %e, "listener not available"),
        }
    }
    let mut attempts = Vec::new();
    let targets: Vec<(String, SocketAddr)> = vec![
        (format!("IPv4 {}:8000 (server on 0.0.0.0)", slot.v4), SocketAddr::from((slot.v4, 8000))),
        (format!("IPv6 [{}]:8001 (server on [::])", slot.v6), SocketAddr::from((slot.v6, 8001))),
        (format!("IPv6 [{}]:8000 (server on 0.0.0.0 only)", slot.v6), SocketAddr::from((slot.v6, 8000))),
        (format!("link-local [{}]:8001 without scope id", slot.link_local), SocketAddr::V6(SocketAddrV6::new(slot.link_local, 8001, 0, 0))),
    ];
    for (what, addr) in targets {
        let outcome = match tokio::time::timeout(Duration::from_secs(2), client.connect_tcp(addr)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(errno_text(&e)),
            Err(_) => Err("timed out".into()),
        };
        attempts.push(Attempt { what, outcome });
    }
    // The scoped link-local address needs the client's interface index, which only the
    // client's namespace knows: ask the kernel there.
    let ifname = client.interface().to_string();
    let scope = client.in_netns(move || nix::net::if_::if_nametoindex(ifname.as_str()).unwrap_or(0)).await?;
    let ll = SocketAddr::V6(SocketAddrV6::new(slot.link_local, 8001, 0, scope));
    let outcome = match tokio::time::timeout(Duration::from_secs(2), client.connect_tcp(ll)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(errno_text(&e)),
        Err(_) => Err("timed out".into()),
    };
    attempts.push(Attempt { what: format!("link-local [{}%{}]:8001 with scope id", slot.link_local, client.interface()), outcome });
    let ip = server.run(Command::new("ip").args(["-brief", "address"]), Duration::from_secs(5)).await?;
    let server_addresses = ip.stdout();
    for l in listeners {
        l.abort();
    }
    let t = Instant::now();
    lab.teardown().await.map_err(|e| crate::Error::Invalid { what: e.to_string() })?;
    Ok(ProfileReport { profile, build, teardown: t.elapsed(), attempts, server_addresses })
}

/// Renders a report as the demo prints it.
pub fn render(r: &ProfileReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "== {}  (built in {:.1} ms, torn down in {:.1} ms)", r.profile, ms(r.build), ms(r.teardown));
    for line in r.server_addresses.lines() {
        let _ = writeln!(s, "   server: {line}");
    }
    for a in &r.attempts {
        match &a.outcome {
            Ok(()) => {
                let _ = writeln!(s, "   connects   {}", a.what);
            }
            Err(e) => {
                let _ = writeln!(s, "   FAILS      {}: {e}", a.what);
            }
        }
    }
    s
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
