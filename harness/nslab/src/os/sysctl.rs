//! Per-namespace sysctls: validated by name, written through /proc/sys from inside the namespace.

use std::io;
use std::path::PathBuf;

/// A sysctl setting for one host, as `net.ipv6.bindv6only` or `net/ipv6/conf/eth0.10/accept_dad`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// The name as given.
    pub name: String,
    /// The value to write.
    pub value: String,
}

/// Checks that `name` is a network sysctl (the only ones private to a namespace) and returns
/// its path under /proc/sys.
///
/// Dotted names use dots as separators; a name with `/` is taken as a path, which is the way
/// to name an interface that has a dot in it.
///
/// # Errors
/// A message naming what was found and what was expected.
pub fn sysctl_path(name: &str) -> Result<PathBuf, String> {
    let rel = if name.contains('/') { name.to_string() } else { name.replace('.', "/") };
    let parts: Vec<&str> = rel.split('/').collect();
    if parts.first() != Some(&"net") || parts.len() < 2 {
        return Err(format!("sysctl {name:?} is not a network sysctl; expected a name under net. (only those are private to a lab host)"));
    }
    for p in &parts {
        if p.is_empty() || *p == "." || *p == ".." || !p.chars().all(|c| c.is_ascii_alphanumeric() || "_-.@".contains(c)) {
            return Err(format!("sysctl {name:?} has an invalid component {p:?}; expected letters, digits, '_', '-', '.'"));
        }
    }
    Ok(PathBuf::from("/proc/sys").join(rel))
}

/// Writes one sysctl. Must run on a thread inside the target namespace.
pub(crate) fn write(path: &std::path::Path, value: &str) -> io::Result<()> {
    std::fs::write(path, value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_and_slashed_names() {
        assert_eq!(sysctl_path("net.ipv6.bindv6only").unwrap(), PathBuf::from("/proc/sys/net/ipv6/bindv6only"));
        assert_eq!(sysctl_path("net/ipv6/conf/eth0.10/accept_dad").unwrap(), PathBuf::from("/proc/sys/net/ipv6/conf/eth0.10/accept_dad"));
    }

    #[test]
    fn host_wide_and_traversal_are_refused() {
        assert_eq!(
            sysctl_path("kernel.pid_max").unwrap_err(),
            "sysctl \"kernel.pid_max\" is not a network sysctl; expected a name under net. (only those are private to a lab host)"
        );
        assert!(sysctl_path("net/../kernel/pid_max").is_err());
        assert!(sysctl_path("net/ipv4/ip_forward/").is_err());
    }
}
