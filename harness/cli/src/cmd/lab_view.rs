//! How a running lab is shown (`nslab up` once it is up, `nslab status`).

use std::time::Duration;

use nslab_cli::live::LabState;

use crate::paint::{Paint, Tone};

/// Prints the lab: name, profile, age, daemon; each host with its addresses and named
/// namespace; DNS; the services' lines the daemon gave (`services`); the artifacts.
pub(crate) fn print_lab(st: &LabState, services: Option<&str>, paint: &Paint) {
    let age = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0).saturating_sub(st.started);
    println!(
        "{}: {}, up {}, daemon pid {}{}",
        paint.paint(Tone::Strong, &st.name),
        st.profile,
        nslab_scenario::scenario::format_duration(Duration::from_secs(age)),
        st.daemon.pid,
        if st.rootless { ", rootless" } else { "" }
    );
    println!("  scenario  {}", st.scenario.display());
    let w = st.hosts.iter().map(|h| h.name.len()).max().unwrap_or(4).max(4);
    println!("  {:<w$}  {:<40}  netns (ip netns exec)", "host", "addresses");
    for h in &st.hosts {
        let mut addrs = h.addrs.join(" ");
        if let Some(ll) = &h.link_local {
            addrs = if addrs.is_empty() { ll.clone() } else { format!("{addrs} {ll}") };
        }
        println!("  {:<w$}  {:<40}  {}", h.name, addrs, h.netns.as_deref().unwrap_or(if st.rootless { "- (rootless: nslab exec)" } else { "-" }));
    }
    if !st.dns.is_empty() {
        println!("  dns       {} (udp and tcp); zones {}", st.dns.join(", "), st.zones.join(", "));
    }
    if let Some(s) = services {
        for l in s.lines() {
            println!("  {l}");
        }
    }
    println!("  artifacts {}", st.artifacts.display());
}
