//! The facts of a machine that shape how a trial behaves: the kernel, the versions of the
//! programs the scenario requires, the sysctls that decide address and TCP behaviour, and
//! nslab's version; and how two machines' facts differ.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::runner::requirements;
use crate::scenario::Scenario;

/// The sysctls recorded, read in the machine's own network namespace. A lab's namespaces
/// start from the kernel's defaults for most per-namespace settings, except the IPv4/IPv6
/// `conf.default` ones when `net.core.devconf_inherit_init_net` says to copy them, which is
/// why it is recorded too; the global ones (`bindv6only`'s default, memory) apply everywhere.
pub const SYSCTLS: &[&str] = &[
    "net.core.devconf_inherit_init_net",
    "net.ipv6.conf.default.accept_dad",
    "net.ipv6.conf.default.dad_transmits",
    "net.ipv6.conf.default.use_tempaddr",
    "net.ipv6.conf.default.disable_ipv6",
    "net.ipv6.bindv6only",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syn_retries",
    "net.ipv4.tcp_synack_retries",
    "net.ipv4.tcp_retries2",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_fastopen",
    "net.ipv4.tcp_congestion_control",
    "net.core.somaxconn",
    "net.ipv4.ping_group_range",
];

/// A machine's facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// Kernel release (`uname -r`).
    pub kernel: Option<String>,
    /// Hardware name (`uname -m`).
    pub arch: Option<String>,
    /// nslab's version.
    pub nslab: String,
    /// Each program of the scenario's `[requires]`: its version, `missing`, or `present
    /// (version unknown)`.
    pub programs: BTreeMap<String, String>,
    /// Each sysctl of [`SYSCTLS`]: its value, or `unreadable`.
    pub sysctls: BTreeMap<String, String>,
}

/// One fact that differs between the recorded machine and this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// What (`kernel`, `program curl`, `sysctl net.ipv6.bindv6only`).
    pub what: String,
    /// As recorded.
    pub recorded: String,
    /// Here.
    pub here: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: recorded {}, here {}", self.what, self.recorded, self.here)
    }
}

impl Machine {
    /// This machine's facts for `scenario` (its `[requires]` programs asked their versions).
    pub fn here(scenario: &Scenario) -> Self {
        let mut m = Self::without_programs();
        m.programs = requirements::versions(&scenario.requires);
        m
    }

    /// This machine's facts except the programs.
    pub fn without_programs() -> Self {
        let uname = nix::sys::utsname::uname().ok();
        Machine {
            kernel: uname.as_ref().map(|u| u.release().to_string_lossy().into_owned()),
            arch: uname.as_ref().map(|u| u.machine().to_string_lossy().into_owned()),
            nslab: env!("CARGO_PKG_VERSION").to_string(),
            programs: BTreeMap::new(),
            sysctls: SYSCTLS.iter().map(|k| (k.to_string(), sysctl(k))).collect(),
        }
    }

    /// Every fact of `self` (recorded) that `here` has otherwise, in a stable order.
    pub fn differences(&self, here: &Machine) -> Vec<Difference> {
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "unknown".into());
        let mut out = Vec::new();
        let mut push = |what: String, a: String, b: String| {
            if a != b {
                out.push(Difference { what, recorded: a, here: b });
            }
        };
        push("kernel".into(), opt(&self.kernel), opt(&here.kernel));
        push("architecture".into(), opt(&self.arch), opt(&here.arch));
        push("nslab".into(), self.nslab.clone(), here.nslab.clone());
        let absent = || "absent".to_string();
        for (k, v) in &self.programs {
            push(format!("program {k}"), v.clone(), here.programs.get(k).cloned().unwrap_or_else(absent));
        }
        for (k, v) in here.programs.iter().filter(|(k, _)| !self.programs.contains_key(*k)) {
            push(format!("program {k}"), "not recorded".into(), v.clone());
        }
        for (k, v) in &self.sysctls {
            push(format!("sysctl {k}"), v.clone(), here.sysctls.get(k).cloned().unwrap_or_else(absent));
        }
        out
    }
}

/// The value of sysctl `key` (dots for slashes), whitespace collapsed; `unreadable` when it
/// cannot be read (absent on this kernel).
fn sysctl(key: &str) -> String {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    match std::fs::read_to_string(path) {
        Ok(v) => v.split_whitespace().collect::<Vec<_>>().join(" "),
        Err(_) => "unreadable".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_the_kernel_a_program_and_a_sysctl() {
        let mut a = Machine::without_programs();
        a.programs.insert("curl".into(), "8.5.0".into());
        let mut b = a.clone();
        assert!(a.differences(&b).is_empty());
        b.kernel = Some("9.9.9-other".into());
        b.programs.insert("curl".into(), "7.88.1".into());
        b.sysctls.insert("net.ipv6.bindv6only".into(), "1".into());
        a.sysctls.insert("net.ipv6.bindv6only".into(), "0".into());
        let d: Vec<String> = a.differences(&b).iter().map(ToString::to_string).collect();
        assert_eq!(
            d,
            vec![
                format!("kernel: recorded {}, here 9.9.9-other", a.kernel.clone().unwrap_or_else(|| "unknown".into())),
                "program curl: recorded 8.5.0, here 7.88.1".to_string(),
                "sysctl net.ipv6.bindv6only: recorded 0, here 1".to_string(),
            ]
        );
    }

    #[test]
    fn a_sysctl_of_this_machine_is_read() {
        let m = Machine::without_programs();
        // Every Linux kernel with IPv4 has it; its value is two port numbers.
        let range = &m.sysctls["net.ipv4.ip_local_port_range"];
        assert_eq!(range.split(' ').filter(|p| p.parse::<u16>().is_ok()).count(), 2, "{range}");
    }
}
