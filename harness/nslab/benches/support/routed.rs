//! The routed lab of issue 16 for the `lab_build` bench: three segments in a chain (lan - wan -
//! dc), two routers (r1: lan+wan, r2: wan+dc) and seven other hosts (three on lan, one on wan,
//! three on dc), dual-stack: nine hosts. Built by nslab (`LabBuilder::segment`, `RouterSpec`)
//! and by `ip -batch` scripts of the same topology: namespaces, one bridge per segment, one veth
//! per interface, addresses, every host's routes to the segments it is not on, and forwarding on
//! the routers.

use std::fmt::Write as _;

use anyhow::{bail, Result};
use nslab::lab::segment::{RouterSpec, SegmentSpec};
use nslab::{HostSpec, Lab, LabBuilder, Profile};

/// Segment names, in declaration order (index = prefix: 192.0.2/24, 198.51.100/24, 203.0.113/24).
pub(crate) const SEGMENTS: [&str; 3] = ["lan", "wan", "dc"];

/// The hosts: name, segments (indexes), router.
pub(crate) const HOSTS: [(&str, &[usize], bool); 9] = [
    ("r1", &[0, 1], true),
    ("r2", &[1, 2], true),
    ("a1", &[0], false),
    ("a2", &[0], false),
    ("a3", &[0], false),
    ("b1", &[1], false),
    ("c1", &[2], false),
    ("c2", &[2], false),
    ("c3", &[2], false),
];

/// The nslab lab.
pub(crate) fn builder() -> LabBuilder {
    let mut b = Lab::builder().profile(Profile::DualStack);
    for s in SEGMENTS {
        b = b.segment(SegmentSpec::new(s));
    }
    for (name, segs, router) in HOSTS {
        let mut h = HostSpec::new(name).segments(segs.iter().map(|&k| SEGMENTS[k]));
        if router {
            h = h.router(RouterSpec::new());
        }
        b = b.host(h);
    }
    b
}

/// A host's number (10 + index), spelled alike in every family and segment.
fn x(i: usize) -> usize {
    10 + i
}

fn v4(k: usize, x: usize) -> String {
    let p = ["192.0.2", "198.51.100", "203.0.113"][k];
    format!("{p}.{x}")
}

fn v6(k: usize, x: usize) -> String {
    format!("2001:db8:{}::{x}", k + 1)
}

/// The router a host on segment `s` sends traffic for segment `d` to (the chain lan-wan-dc).
fn next_hop(s: usize, d: usize) -> usize {
    // r1 joins 0-1, r2 joins 1-2: towards a lower segment go through r1 unless on dc.
    match (s, d) {
        (0, _) => 0,
        (2, _) => 1,
        (1, 0) => 0,
        _ => 1,
    }
}

/// `ip` steps as `(namespace, arguments)`; `None`: the machine-level namespace list only.
fn steps(names: &[String], switch: &str) -> Vec<(Option<String>, String)> {
    let sw = Some(switch.to_string());
    let mut v: Vec<(Option<String>, String)> = vec![(None, format!("netns add {switch}"))];
    for n in names {
        v.push((None, format!("netns add {n}")));
    }
    for k in 0..SEGMENTS.len() {
        v.push((sw.clone(), format!("link add br{k} type bridge stp_state 0 mcast_snooping 0")));
        v.push((sw.clone(), format!("link set br{k} up")));
    }
    for (i, (_, segs, _)) in HOSTS.iter().enumerate() {
        for (j, &k) in segs.iter().enumerate() {
            let x = x(i);
            v.push((
                sw.clone(),
                format!("link add p{x}s{k} master br{k} up type veth peer name eth{j} address 02:00:5e:10:{k:02x}:{x:02x} netns {}", names[i]),
            ));
        }
    }
    for (i, (_, segs, router)) in HOSTS.iter().enumerate() {
        let ns = Some(names[i].clone());
        let x = x(i);
        v.push((ns.clone(), "link set lo up".into()));
        for (j, &k) in segs.iter().enumerate() {
            for step in [
                format!("link set eth{j} addrgenmode none"),
                format!("link set eth{j} up"),
                format!("addr add {}/24 dev eth{j}", v4(k, x)),
                format!("addr add {}/64 dev eth{j} nodad", v6(k, x)),
                format!("addr add fe80::{x}/64 dev eth{j} nodad"),
            ] {
                v.push((ns.clone(), step));
            }
        }
        for d in (0..SEGMENTS.len()).filter(|d| !segs.contains(d)) {
            // From the host's segment closest to d, through the first router on the way.
            let s = *segs.iter().min_by_key(|&&s| s.abs_diff(d)).expect("a host has a segment");
            let r = next_hop(s, d);
            if *router && r == i {
                continue;
            }
            let j = segs.iter().position(|&k| k == s).expect("on s");
            v.push((ns.clone(), format!("route add {}/24 via {} dev eth{j}", v4(d, 0), v4(s, self::x(r)))));
            v.push((ns.clone(), format!("route add 2001:db8:{}::/64 via {} dev eth{j}", d + 1, v6(s, self::x(r)))));
        }
    }
    v
}

/// The steps grouped into `ip [-n NS] -batch -` scripts, in order.
pub(crate) fn batch_build(names: &[String], switch: &str) -> Vec<(Option<String>, String)> {
    let mut out: Vec<(Option<String>, String)> = Vec::new();
    for (ns, step) in steps(names, switch) {
        match out.last_mut() {
            Some((last, script)) if *last == ns => writeln!(script, "{step}").unwrap(),
            _ => out.push((ns, format!("{step}\n"))),
        }
    }
    out
}

/// The shell command that turns forwarding on in each router (`ip` has no sysctl command: one
/// `ip netns exec` per router, as a script would do it).
pub(crate) fn forwarding(names: &[String]) -> Vec<String> {
    HOSTS
        .iter()
        .enumerate()
        .filter(|(_, h)| h.2)
        .map(|(i, _)| format!("ip netns exec {} sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding'", names[i]))
        .collect()
}

/// a1 (lan) reaches c1 (dc) across both routers in both families (ping, in the ip-batch lab).
pub(crate) async fn verify_ip(names: &[String]) -> Result<()> {
    let c1 = HOSTS.iter().position(|h| h.0 == "c1").expect("c1");
    let a1 = HOSTS.iter().position(|h| h.0 == "a1").expect("a1");
    for dst in [v4(2, x(c1)), v6(2, x(c1))] {
        let out = tokio::process::Command::new("ip").args(["netns", "exec", &names[a1], "ping", "-c", "1", "-W", "5", &dst]).output().await?;
        if !out.status.success() {
            bail!("ip-batch routed lab: a1 cannot ping {dst}: {}", String::from_utf8_lossy(&out.stdout));
        }
    }
    Ok(())
}

/// a1 (lan) reaches c1 (dc) across both routers in both families (TCP, in the nslab lab).
pub(crate) async fn verify_nslab(lab: &Lab) -> Result<()> {
    let (a1, c1) = (lab.host("a1")?, lab.host("c1")?);
    for addr in c1.addrs() {
        let l = c1.bind_tcp(std::net::SocketAddr::new(addr, 9000)).await?;
        a1.connect_tcp(std::net::SocketAddr::new(addr, 9000)).await?;
        drop(l);
    }
    Ok(())
}
