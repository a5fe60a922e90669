//! Evaluates `listening`: the listening sockets of a service or a host, from the kernel.

use std::collections::BTreeMap;

use super::observed::{proc, Observed};
use crate::scenario::{ListenTarget, ListeningCheck, Scenario};
use nslab::host::process::Process;
use nslab::lab::build::Lab;

pub(super) async fn check(c: &ListeningCheck, o: &Observed<'_>) -> Result<String, String> {
    listening(o.s, o.lab, o.procs, &c.target, &c.on, c.exactly).await
}

async fn listening(
    s: &Scenario,
    lab: &Lab,
    procs: &BTreeMap<String, Process>,
    target: &ListenTarget,
    on: &[crate::scenario::ListenSpec],
    exactly: bool,
) -> Result<String, String> {
    let (host, owned) = match target {
        ListenTarget::Host(h) => (lab.host(h).map_err(|e| e.to_string())?.clone(), None),
        ListenTarget::Service(svc) => {
            let def = s.service(svc).ok_or_else(|| format!("no service {svc}"))?;
            let p = proc(procs, svc)?;
            (lab.host(&def.host).map_err(|e| e.to_string())?.clone(), Some(p.socket_inodes()))
        }
    };
    let all = host.listeners().await.map_err(|e| e.to_string())?;
    let mine: Vec<_> = all.into_iter().filter(|l| owned.as_ref().is_none_or(|o| o.contains(&l.inode))).collect();
    let shown = if mine.is_empty() { "nothing".to_string() } else { mine.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", ") };
    let mut missing = Vec::new();
    let mut used = vec![false; mine.len()];
    for spec in on {
        let want = spec.to_listen();
        let hit = mine.iter().enumerate().find(|(_, l)| want.matches(l) && spec.v6only.is_none_or(|v| l.v6only == v));
        match hit {
            Some((i, _)) => used[i] = true,
            None => missing.push(spec.to_string()),
        }
    }
    let extra: Vec<String> = mine.iter().zip(&used).filter(|(_, u)| !**u).map(|(l, _)| l.to_string()).collect();
    if !missing.is_empty() {
        return Err(format!("listening on {shown}; missing {}", missing.join(", ")));
    }
    if exactly && !extra.is_empty() {
        return Err(format!("listening on {shown}; not expected: {}", extra.join(", ")));
    }
    Ok(format!("listening on {shown}"))
}
