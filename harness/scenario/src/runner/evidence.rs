//! The evidence of a failed call: what a traced program's calls say went wrong, and the
//! kernel's word on the addresses involved.

use std::net::IpAddr;
use std::time::Duration;

use crate::runner::diagnose;
use nslab::host::process::Process;
use nslab::lab::build::Lab;

/// The findings of a traced service's calls (waits for it to exit first, at most 10 s).
pub async fn findings(lab: &Lab, host: &str, p: &Process) -> Result<Vec<crate::runner::diagnose::Finding>, String> {
    let _ = p.wait_exit(Duration::from_secs(10)).await;
    let h = lab.host(host).map_err(|e| e.to_string())?;
    let path = lab.artifacts().join("services").join(p.name()).join("strace.log");
    let log = std::fs::read_to_string(&path).map_err(|e| format!("no call log at {}: {e}", path.display()))?;
    let (addrs, tentative) = addresses_for_log(h, &log).await;
    let mut found = crate::runner::diagnose::diagnose_with(&log, &addrs, &tentative);
    try_other_family(lab, h, &mut found).await;
    Ok(found)
}

/// For a traced program's call log: the host's addresses (its own and any other address a
/// failed bind named that the kernel has now, such as one a timeline step added) and those of
/// them the kernel reports tentative now.
pub async fn addresses_for_log(h: &nslab::host::handle::Host, log: &str) -> (Vec<IpAddr>, Vec<IpAddr>) {
    let mut candidates: Vec<IpAddr> = h.addrs().into_iter().chain(h.link_local().map(IpAddr::V6)).collect();
    candidates.extend(log.lines().filter(|l| l.contains("EADDRNOTAVAIL")).filter_map(diagnose::destination).map(|a| a.ip()));
    candidates.sort_unstable();
    candidates.dedup();
    let seen = kernel_addresses(h, &candidates).await;
    let mut addrs: Vec<IpAddr> = h.addrs().into_iter().chain(h.link_local().map(IpAddr::V6)).collect();
    addrs.extend(seen.iter().map(|(a, _)| *a).filter(|a| !addrs.contains(a)).collect::<Vec<_>>());
    (addrs, seen.into_iter().filter(|(_, t)| *t).map(|(a, _)| a).collect())
}

/// What the kernel says now about each of `candidates` on the host's lab interface: the ones
/// it has, each with whether it is tentative (IFA_F_TENTATIVE: duplicate address detection
/// running). Read when a service fails, so "tentative" is the kernel's word at that moment.
pub async fn kernel_addresses(h: &nslab::host::handle::Host, candidates: &[IpAddr]) -> Vec<(IpAddr, bool)> {
    let mut out = Vec::new();
    for a in candidates {
        if let Ok(Some(t)) = h.is_tentative(*a).await {
            out.push((*a, t));
        }
    }
    out
}

/// For each broken-path finding (an IPv6 connect that never completed), whether the other
/// family works when the lab can tell: the destination is a lab host with an IPv4 address, and
/// a connect from the same host to that address and port is tried (1 s at most). The answer is
/// added to the finding's evidence.
pub async fn try_other_family(lab: &Lab, from: &nslab::host::handle::Host, found: &mut [diagnose::Finding]) {
    for f in found.iter_mut().filter(|f| f.cause == crate::scenario::Cause::BrokenPath) {
        let Some(dst) = diagnose::destination(&f.call) else { continue };
        let Some(peer) = lab.hosts().iter().find(|h| h.ipv6().map(IpAddr::V6) == Some(dst.ip()) || h.link_local().map(IpAddr::V6) == Some(dst.ip())) else {
            continue;
        };
        let note = match peer.ipv4() {
            None => format!("; the other family cannot help: {} has no IPv4 address", peer.name()),
            Some(v4) => {
                let to = std::net::SocketAddr::new(IpAddr::V4(v4), dst.port());
                match tokio::time::timeout(Duration::from_secs(1), from.connect_tcp(to)).await {
                    Ok(Ok(_)) => format!("; the other family works: {to} connects at once"),
                    Ok(Err(e)) => format!("; the other family fails too: {to}: {}", nslab::error::chain(&e)),
                    Err(_) => format!("; the other family fails too: no answer from {to} within 1 s"),
                }
            }
        };
        f.call.push_str(&note);
    }
}
