//! Evaluates `connect`: a TCP connect from a lab host, and how it ended.

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use super::observed::Observed;
use crate::scenario::{ConnectCheck, ConnectFamily, ConnectResult, ConnectTarget, Errno};
use nslab::host::handle::Host;
use nslab::lab::build::Lab;

pub(super) async fn check(c: &ConnectCheck, o: &Observed<'_>) -> Result<String, String> {
    connect(o.lab, &c.from, &c.to, c.family, c.result, c.timeout).await
}

async fn ifindex(host: &Host, name: &str) -> Result<u32, String> {
    let n = name.to_string();
    host.in_netns(move || nix::net::if_::if_nametoindex(n.as_str()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("no interface {name} in host {}: {e}", host.name()))
}

async fn connect(lab: &Lab, from: &str, to: &ConnectTarget, family: Option<ConnectFamily>, want: ConnectResult, timeout: Duration) -> Result<String, String> {
    let src = lab.host(from).map_err(|e| e.to_string())?;
    let addr: SocketAddr = match to {
        ConnectTarget::Host { host, port } => {
            let dst = lab.host(host).map_err(|e| e.to_string())?;
            let profile = dst.profile();
            let none = |what: &str| format!("host {host} has no {what} address in profile {profile}");
            match family {
                Some(ConnectFamily::Ipv4) => SocketAddr::new(dst.ipv4().ok_or_else(|| none("IPv4"))?.into(), *port),
                Some(ConnectFamily::Ipv6) => SocketAddr::new(dst.ipv6().ok_or_else(|| none("IPv6"))?.into(), *port),
                Some(ConnectFamily::LinkLocal) => {
                    let ll = dst.link_local().ok_or_else(|| none("link-local"))?;
                    SocketAddr::V6(SocketAddrV6::new(ll, *port, 0, ifindex(src, src.interface()).await?))
                }
                None => match dst.addrs().first() {
                    Some(a) => SocketAddr::new(*a, *port),
                    None => {
                        let ll = dst.link_local().ok_or_else(|| none("usable"))?;
                        SocketAddr::V6(SocketAddrV6::new(ll, *port, 0, ifindex(src, src.interface()).await?))
                    }
                },
            }
        }
        ConnectTarget::Addr { ip, scope, port } => match (ip, scope) {
            (IpAddr::V6(v6), Some(ifname)) => SocketAddr::V6(SocketAddrV6::new(*v6, *port, 0, ifindex(src, ifname).await?)),
            _ => SocketAddr::new(*ip, *port),
        },
    };
    let got = match tokio::time::timeout(timeout, src.connect_tcp(addr)).await {
        Ok(Ok(_)) => ConnectResult::Ok,
        Ok(Err(e)) => match e.os_error().and_then(|n| Errno::from_number(i64::from(n)).ok()) {
            Some(errno) => ConnectResult::Errno(errno),
            None => return Err(format!("connect to {addr} failed: {}", nslab::error::chain(&e))),
        },
        Err(_) => ConnectResult::Timeout,
    };
    let observed = match got {
        ConnectResult::Ok => format!("connected to {addr}"),
        ConnectResult::Timeout => format!("no answer from {addr} within {timeout:?}"),
        ConnectResult::Errno(e) => format!("connect to {addr} failed with {} ({})", e.name, e.number),
    };
    if got == want {
        Ok(observed)
    } else {
        Err(observed)
    }
}
