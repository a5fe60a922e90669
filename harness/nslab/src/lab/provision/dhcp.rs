//! DHCPv6 on a provisioned segment: kea-dhcp6 in the router with a pool inside the segment's
//! prefix, and ISC dhclient (`-6`) in the hosts that want an address from it. Every file of
//! both (configuration, leases, pid, lock, the client's script and its event log) is in the
//! host's own directory; nothing of the machine's /var/lib/kea, /var/lib/dhcp or /etc is used.

use std::net::Ipv6Addr;

use crate::error::{Error, Result};
use crate::host::handle::Host;
use crate::host::process::{Command, Process};

/// The first address of the DHCPv6 pool of segment `index` (2001:db8:1::d000 on segment 0):
/// outside the addresses the lab gives its hosts.
pub fn pool_start(index: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0x0db8, index + 1, 0, 0, 0, 0, 0xd000)
}

/// The last address of that pool (`::d0ff`).
pub fn pool_end(index: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0x0db8, index + 1, 0, 0, 0, 0, 0xd0ff)
}

/// Whether `a` lies in the DHCPv6 pool of segment `index`.
pub fn in_pool(a: Ipv6Addr, index: u16) -> bool {
    (pool_start(index)..=pool_end(index)).contains(&a)
}

fn write(dir: &std::path::Path, name: &str, text: &str, mode: u32) -> Result<std::path::PathBuf> {
    let d = crate::os::fsafe::artifact_dir(dir).map_err(|e| Error::File { op: "create", path: dir.to_path_buf(), source: e.into() })?;
    d.write_file(name, text.as_bytes(), mode).map_err(|e| Error::File { op: "write", path: dir.join(name), source: e.into() })
}

/// kea-dhcp6's configuration: the pool of segment `index` on `ifname`, leases in `dir`, a
/// server DUID that is not persisted (kea would write it to /var/lib/kea otherwise).
pub(crate) fn kea_conf(ifname: &str, index: u16, dir: &std::path::Path) -> String {
    let prefix = crate::lab::provision::ra::segment_prefix(index);
    serde_json::json!({
        "Dhcp6": {
            "interfaces-config": { "interfaces": [ifname] },
            "server-id": { "type": "LLT", "persist": false },
            "lease-database": { "type": "memfile", "persist": true, "name": dir.join("kea-leases6.csv").display().to_string(), "lfc-interval": 0 },
            "renew-timer": 1000, "rebind-timer": 2000, "preferred-lifetime": 3000, "valid-lifetime": 4000,
            "subnet6": [ { "id": 1, "subnet": format!("{prefix}/64"), "interface": ifname,
                "pools": [ { "pool": format!("{}-{}", pool_start(index), pool_end(index)) } ] } ],
            "loggers": [ { "name": "kea-dhcp6", "output_options": [ { "output": "stderr" } ], "severity": "INFO" } ]
        }
    })
    .to_string()
}

/// Starts kea-dhcp6 in `router` on `ifname`.
pub(crate) async fn start_server(router: &Host, ifname: &str, index: u16) -> Result<Process> {
    let dir = router.dir().join("kea");
    let conf = write(&dir, "kea-dhcp6.conf", &kea_conf(ifname, index, &dir), 0o600)?;
    let d = dir.display().to_string();
    let cmd = Command::new("kea-dhcp6").args(["-c", &conf.display().to_string()]).env("KEA_LOCKFILE_DIR", &d).env("KEA_PIDFILE_DIR", &d).name("kea-dhcp6");
    router.spawn(cmd).await
}

/// dhclient's script: adds (or changes, or removes) the leased address as Debian's does, with
/// `ip`, and logs each event with its reason to `dhclient-events.log` beside it.
fn client_script(log: &std::path::Path) -> String {
    format!(
        r#"#!/bin/sh
# written by nslab: dhclient's script in a lab host
echo "$reason ${{new_ip6_address:-}} ${{new_preferred_life:-}} ${{new_max_life:-}}" >> '{log}'
case "$reason" in
  BOUND6|RENEW6|REBIND6|REBOOT6)
    [ -n "$new_ip6_address" ] && ip -6 addr replace "$new_ip6_address/128" dev "$interface" valid_lft "$new_max_life" preferred_lft "$new_preferred_life" ;;
  DEPREF6)
    ip -6 addr change "$cur_ip6_address/128" dev "$interface" preferred_lft 0 ;;
  EXPIRE6|RELEASE6|STOP6)
    [ -n "$old_ip6_address" ] && ip -6 addr del "$old_ip6_address/128" dev "$interface" ;;
esac
exit 0
"#,
        log = log.display()
    )
}

/// Starts `dhclient -6` in `host` on its lab interface, in the foreground, with its lease file,
/// pid file and script in the host's directory.
pub(crate) async fn start_client(host: &Host) -> Result<Process> {
    let dir = host.dir().join("dhclient");
    let script = write(&dir, "dhclient-script", &client_script(&dir.join("dhclient-events.log")), 0o700)?;
    let (lf, pf) = (dir.join("dhclient6.leases"), dir.join("dhclient6.pid"));
    let cmd = Command::new("dhclient")
        .args(["-6", "-d", "-v", "-lf", &lf.display().to_string(), "-pf", &pf.display().to_string(), "-sf", &script.display().to_string(), host.interface()])
        .name("dhclient");
    host.spawn(cmd).await
}

/// The lines of `host`'s dhclient event log (`REASON ADDRESS PREFERRED VALID`).
pub fn client_events(host: &Host) -> Vec<String> {
    std::fs::read_to_string(host.dir().join("dhclient").join("dhclient-events.log")).map(|t| t.lines().map(str::to_string).collect()).unwrap_or_default()
}

/// The addresses kea has leased (its memfile lease file in `router`'s directory).
pub fn server_leases(router: &Host) -> Vec<Ipv6Addr> {
    let text = std::fs::read_to_string(router.dir().join("kea").join("kea-leases6.csv")).unwrap_or_default();
    text.lines().skip(1).filter_map(|l| l.split(',').next()?.parse().ok()).collect()
}
