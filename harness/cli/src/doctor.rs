//! `nslab doctor`: what this machine can do for labs, each check with what to do when it fails.

use std::path::Path;

use nslab_scenario::runner::requirements::{probe, Found};

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub what: String,
    /// Whether it is usable.
    pub ok: bool,
    /// What was found.
    pub found: String,
    /// What to do about it (empty when fine).
    pub fix: String,
}

fn check(what: &str, ok: bool, found: impl Into<String>, fix: &str) -> Check {
    Check { what: what.into(), ok, found: found.into(), fix: if ok { String::new() } else { fix.into() } }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Programs the shipped scenarios run, with the Debian package that provides each.
const PROGRAMS: &[(&str, &str)] = &[
    ("python3", "python3"),
    ("curl", "curl"),
    ("dig", "bind9-dnsutils"),
    ("java", "openjdk-17-jdk-headless"),
    ("gunicorn", "gunicorn"),
    ("nginx", "nginx-light"),
    ("redis-server", "redis-server"),
    ("psql", "postgresql-15"),
    ("strace", "strace"),
    ("tayga", "tayga"),
    ("dnsperf", "dnsperf"),
    ("knotd", "knot"),
    ("nsd", "nsd"),
];

/// Runs every check. Reads only: it creates no namespace and changes nothing.
pub fn run() -> Vec<Check> {
    let mut out = Vec::new();
    if nslab::os::chroot::inside() {
        out.push(check("not in a chroot", false, nslab::os::chroot::MESSAGE, "use a container or a VM"));
    }
    if nslab::os::rootless::privileged() {
        out.push(check("privileges", true, "CAP_NET_ADMIN and CAP_SYS_ADMIN (root)", ""));
        let userns = read("/proc/sys/user/max_user_namespaces").unwrap_or_default();
        let apparmor = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
        let userns_ok = userns != "0" && apparmor.as_deref() != Some("1");
        out.push(check(
            "rootless mode (other users)",
            userns_ok,
            format!("user.max_user_namespaces={userns}{}", apparmor.map(|a| format!(", kernel.apparmor_restrict_unprivileged_userns={a}")).unwrap_or_default()),
            "only needed without root: sysctl -w user.max_user_namespaces=15000, or on Ubuntu 24.04 sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
        ));
    } else {
        match nslab::os::rootless::probe() {
            Ok(()) => out.push(check(
                "privileges",
                true,
                "not root: rootless mode works (a user namespace; only your own user exists inside, so programs that switch users, such as postgres or nginx workers, need root)",
                "",
            )),
            Err(b) => out.push(Check { what: "privileges".into(), ok: false, found: format!("not root, and no user namespace: {}", b.source), fix: b.advice.join("; or ") }),
        }
    }
    out.push(check(
        "kernel",
        true,
        nix::sys::utsname::uname().map(|u| format!("{} {}", u.release().to_string_lossy(), u.machine().to_string_lossy())).unwrap_or_default(),
        "",
    ));
    out.push(check("network namespaces", Path::new("/proc/self/ns/net").exists(), "/proc/self/ns/net", "a kernel with CONFIG_NET_NS"));
    out.push(check(
        "IPv6",
        Path::new("/proc/sys/net/ipv6").exists(),
        if Path::new("/proc/sys/net/ipv6").exists() { "present" } else { "absent" },
        "boot a kernel with IPv6 (ipv6.disable=0)",
    ));
    // A feature built into the kernel without parameters leaves no trace in /sys/module; only
    // a missing one found as a loadable module that is not loaded is a sure "no".
    let release = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    let modules = std::fs::read_to_string(format!("/lib/modules/{release}/modules.dep")).unwrap_or_default();
    for (what, module, path, fix) in [
        ("veth", "veth", "/sys/module/veth", "modprobe veth (or a kernel with CONFIG_VETH=y)"),
        ("bridge", "bridge", "/sys/module/bridge", "modprobe bridge (or CONFIG_BRIDGE=y)"),
        ("tun (NAT64)", "tun", "/dev/net/tun", "modprobe tun (needed by ipv6-only-nat64)"),
    ] {
        let loaded = Path::new(path).exists();
        let loadable =
            modules.lines().any(|l| l.split(':').next().is_some_and(|m| m.ends_with(&format!("/{module}.ko")) || m.contains(&format!("/{module}.ko."))));
        let found = if loaded {
            "available"
        } else if loadable {
            "a module, not loaded (modprobe loads it on first use as root)"
        } else {
            "no module: built into the kernel, or missing (a lab build says which)"
        };
        out.push(check(what, true, found, fix));
    }
    let seccomp = read("/proc/self/status").is_some_and(|s| s.lines().any(|l| l.starts_with("Seccomp:")));
    out.push(check("seccomp (no-ipv6)", seccomp, if seccomp { "available" } else { "absent" }, "a kernel with CONFIG_SECCOMP_FILTER (needed by no-ipv6)"));
    for (prog, pkg) in PROGRAMS {
        let (ok, found) = match probe(prog) {
            Found::Missing => (false, "not installed".to_string()),
            Found::Present(Some(v)) => (true, v.to_string()),
            Found::Present(None) => (true, "installed (version unknown)".to_string()),
        };
        out.push(check(prog, ok, found, &format!("apt-get install {pkg} (scripts/setup.sh installs it)")));
    }
    out
}
