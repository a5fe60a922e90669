//! What a lab is made of, before it is built: host specifications and their validation.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::addr::profile::Profile;
use crate::host::etc::ResolvOptions;
use crate::os::sysctl::{self, Sysctl};

/// Longest host name (it becomes a DNS label and a file name).
pub const MAX_HOST_NAME: usize = 32;

/// How one host should be built; created with [`HostSpec::new`] or from a `&str` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    pub(crate) name: String,
    pub(crate) profile: Option<Profile>,
    pub(crate) dad: bool,
    pub(crate) bindv6only: Option<bool>,
    pub(crate) sysctls: Vec<Sysctl>,
    pub(crate) gai_conf: Option<String>,
    pub(crate) interface: String,
    pub(crate) private: Vec<PathBuf>,
    pub(crate) resolver: Resolver,
    pub(crate) resolv: ResolvOptions,
    pub(crate) link: Option<crate::lab::link::LinkCondition>,
    pub(crate) segments: Vec<String>,
    pub(crate) router: Option<crate::host::interfaces::RouterSpec>,
}

/// Where a host's `/etc/resolv.conf` sends its look-ups ([`HostSpec::resolver`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Resolver {
    /// The lab's DNS server, at its addresses in the families the host has (the default); with no
    /// lab DNS, the host's own loopback, where nothing answers.
    #[default]
    LabDns,
    /// A lab host that runs a resolver (a caching server the user starts there): its addresses in
    /// the families both hosts have, IPv4 first; the host itself: its loopback, `127.0.0.1`.
    Host(String),
    /// One address: a lab address, or a loopback address for a server on the host itself
    /// (`127.0.0.1`, `::1`, systemd-resolved's `127.0.0.53`).
    Address(IpAddr),
}

impl HostSpec {
    /// A host with the lab's profile and default settings.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            profile: None,
            dad: false,
            bindv6only: None,
            sysctls: Vec::new(),
            gai_conf: None,
            interface: "eth0".into(),
            private: Vec::new(),
            resolver: Resolver::LabDns,
            resolv: ResolvOptions::new(),
            link: None,
            segments: Vec::new(),
            router: None,
        }
    }

    /// Conditions the packets it sends on its lab interface from the start (loss, delay, rate;
    /// see [`crate::lab::link`]).
    pub fn link(mut self, cond: crate::lab::link::LinkCondition) -> Self {
        self.link = Some(cond);
        self
    }

    /// The segments it joins, in order: the first is its primary interface (`eth0`, or the
    /// name [`HostSpec::interface`] gives), the next `eth1`, then `eth2` (default: the lab's
    /// first segment). See [`crate::lab::segment`].
    pub fn segments<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.segments = names.into_iter().map(Into::into).collect();
        self
    }

    /// Makes it a router between its segments: forwarding on, routes to far segments computed
    /// when the lab is built (see [`crate::host::interfaces::RouterSpec`]).
    pub fn router(mut self, r: crate::host::interfaces::RouterSpec) -> Self {
        self.router = Some(r);
        self
    }

    /// Where its `/etc/resolv.conf` sends look-ups: the lab DNS (default), another lab host (a
    /// caching resolver run there), or an address such as `127.0.0.1` for a resolver on the host
    /// itself. Checked when the lab is built: the host must exist and share a family with this
    /// one; an address must be loopback or a lab address in a family this host has.
    ///
    /// ```
    /// use nslab::lab::spec::{HostSpec, Resolver};
    /// let client = HostSpec::new("client").resolver(Resolver::Host("cache".into()));
    /// let local = HostSpec::new("app").resolver(Resolver::Address("127.0.0.1".parse().unwrap()));
    /// # let _ = (client, local);
    /// ```
    pub fn resolver(mut self, r: Resolver) -> Self {
        self.resolver = r;
        self
    }

    /// The `options` and `search` lines of its `/etc/resolv.conf` (see [`ResolvOptions`]).
    pub fn resolv_options(mut self, o: ResolvOptions) -> Self {
        self.resolv = o;
        self
    }

    /// Overrides the lab's profile for this host.
    pub fn profile(mut self, p: Profile) -> Self {
        self.profile = Some(p);
        self
    }

    /// Runs duplicate address detection on its IPv6 addresses: they stay tentative (binds fail
    /// with EADDRNOTAVAIL) for about 1-2 s after the lab is built, as on a real interface.
    pub fn dad(mut self, on: bool) -> Self {
        self.dad = on;
        self
    }

    /// Sets `net.ipv6.bindv6only` (whether `[::]` sockets refuse IPv4 by default).
    pub fn bindv6only(mut self, on: bool) -> Self {
        self.bindv6only = Some(on);
        self
    }

    /// Sets any network sysctl of this host by name, e.g. `net.ipv6.conf.eth0.accept_ra`.
    pub fn sysctl(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.sysctls.push(Sysctl { name: name.into(), value: value.into() });
        self
    }

    /// Gives the host an `/etc/gai.conf` with this content (address selection of getaddrinfo).
    pub fn gai_conf(mut self, content: impl Into<String>) -> Self {
        self.gai_conf = Some(content.into());
        self
    }

    /// Names its lab interface (default `eth0`; at most 15 bytes).
    pub fn interface(mut self, name: impl Into<String>) -> Self {
        self.interface = name.into();
        self
    }

    /// Gives the host its own, initially empty, copy of the machine directory `path` (such as
    /// `/var/lib/app`), mounted over it for every program of the host. `/run`, `/var/run`, `/tmp`
    /// and `/var/tmp` are private to every host already (see [`crate::host::hostfs`]).
    ///
    /// The path is checked when the lab is built: absolute, without `.` or `..`, an existing
    /// directory reached without symbolic links, outside /proc, /sys and /dev, not containing
    /// the per-host /etc files or the always-private directories, listed once and not inside
    /// another private path of the host.
    pub fn private(mut self, path: impl Into<PathBuf>) -> Self {
        self.private.push(path.into());
        self
    }

    /// The host's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl From<&str> for HostSpec {
    fn from(name: &str) -> Self {
        HostSpec::new(name)
    }
}

impl From<String> for HostSpec {
    fn from(name: String) -> Self {
        HostSpec::new(name)
    }
}

/// Checks a host or lab name: a DNS label of lowercase letters, digits and '-'.
pub fn check_name(kind: &str, name: &str) -> Result<(), String> {
    let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if name.is_empty() || name.len() > MAX_HOST_NAME || !ok_chars || !name.starts_with(|c: char| c.is_ascii_lowercase()) || name.ends_with('-') {
        return Err(format!(
            "{kind} name {name:?} is not valid; expected 1 to {MAX_HOST_NAME} lowercase letters, digits or '-', starting with a letter and not ending with '-'"
        ));
    }
    Ok(())
}

/// Checks an interface name: the kernel's 15-byte limit, no separators, and nothing a URL
/// parser would read as a percent-escape after `%` (`c0`, `a1` ...).
pub fn check_interface(host: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!("interface name {name:?} of host {host} has {} bytes; expected 1 to 15 (the kernel's IFNAMSIZ limit)", name.len()));
    }
    if name == "lo" || name.chars().any(|c| c == '/' || c == ':' || c == '%' || c.is_whitespace() || c.is_control()) || name == "." || name == ".." {
        return Err(format!("interface name {name:?} of host {host} is not valid; expected a name such as eth0 without '/', ':', '%' or spaces"));
    }
    if name.len() >= 2 && name[..2].chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "interface name {name:?} of host {host} starts with two hex digits; in a scoped URL (fe80::1%{name}) they read as a percent-escape; expected a name such as eth0"
        ));
    }
    Ok(())
}

/// Validates one host spec, returning its sysctls with their /proc paths.
pub(crate) fn check_host(h: &HostSpec) -> Result<Vec<(PathBuf, Sysctl)>, String> {
    check_name("host", &h.name)?;
    check_interface(&h.name, &h.interface)?;
    h.resolv.check().map_err(|e| format!("host {}: {e}", h.name))?;
    if let Resolver::Address(ip) = &h.resolver {
        if !(ip.is_loopback() || crate::addr::is_lab_address(ip)) {
            return Err(format!(
                "host {}: resolver address {ip} is outside the lab; expected a loopback address or one in {}",
                h.name,
                crate::addr::LAB_PREFIXES
            ));
        }
    }
    if let Resolver::Host(r) = &h.resolver {
        check_name("resolver host", r).map_err(|e| format!("host {}: {e}", h.name))?;
    }
    h.sysctls.iter().map(|s| sysctl::sysctl_path(&s.name).map(|p| (p, s.clone())).map_err(|e| format!("host {}: {e}", h.name))).collect()
}

/// Refuses a declared host that has the name of a host the lab adds itself: the DNS host
/// ([`crate::DNS_HOST`]) when `adds_dns_host` (DNS without [`crate::LabDns::on_host`]), the NAT64
/// router when `adds_router` (a host uses NAT64). Such a host would silently become that server.
pub(crate) fn check_reserved(lab: &str, hosts: &[HostSpec], adds_dns_host: bool, adds_router: bool) -> Result<(), String> {
    use crate::addr::plan::DNS_HOST;
    use crate::addr::plan::NAT64_HOST;
    if adds_dns_host && hosts.iter().any(|h| h.name == DNS_HOST) {
        return Err(format!(
            "lab {lab} declares a host named {DNS_HOST:?}, the name of the host LabBuilder::dns adds to serve the lab's DNS, so your host would silently become the DNS server; \
             rename your host, or serve the DNS from it on purpose with LabDns::new().on_host({DNS_HOST:?})"
        ));
    }
    if adds_router && hosts.iter().any(|h| h.name == NAT64_HOST) {
        return Err(format!(
            "lab {lab} declares a host named {NAT64_HOST:?}, the name of the NAT64 router an {} host makes the lab add, so your host would silently become that router; rename your host",
            Profile::Ipv6OnlyNat64
        ));
    }
    Ok(())
}

/// The nameserver line for a resolver at `ip`, checked against the families `profile` gives
/// the host: a link-local address gets the lab interface as its scope.
///
/// # Errors
/// A message naming the host, its profile and the family it lacks.
pub fn resolver_address(host: &str, profile: Profile, ifname: &str, ip: std::net::IpAddr) -> std::result::Result<String, String> {
    use std::net::IpAddr;
    let (usable, family) = match ip {
        IpAddr::V4(a) if a.is_loopback() => (true, "IPv4 loopback"),
        IpAddr::V4(_) => (profile.has_ipv4(), "IPv4"),
        IpAddr::V6(a) if a.is_loopback() => (profile.ipv6_enabled(), "IPv6 (loopback ::1)"),
        IpAddr::V6(a) if (a.segments()[0] & 0xffc0) == 0xfe80 => (profile.has_link_local(), "IPv6 link-local"),
        IpAddr::V6(_) => (profile.has_global_ipv6(), "global IPv6"),
    };
    if !usable {
        return Err(format!(
            "host {host:?} (profile {profile}) has no {family}, so it could not reach its resolver {ip}; expected an address in a family the host has"
        ));
    }
    Ok(match ip {
        IpAddr::V6(a) if (a.segments()[0] & 0xffc0) == 0xfe80 => format!("{a}%{ifname}"),
        _ => ip.to_string(),
    })
}

/// Whether a host with `profile` can reach a host with `other` over some family: IPv4, global
/// IPv6, or else link-local IPv6 (the families both have).
pub fn shares_family(profile: Profile, other: Profile) -> bool {
    (profile.has_ipv4() && other.has_ipv4()) || (profile.has_global_ipv6() && other.has_global_ipv6()) || (profile.has_link_local() && other.has_link_local())
}

/// Where artifacts go by default (see [`crate::os::artifacts::default_root`]).
pub fn default_artifacts_root() -> PathBuf {
    crate::os::artifacts::default_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("host", "server-1").is_ok());
        assert_eq!(
            check_name("host", "Server").unwrap_err(),
            "host name \"Server\" is not valid; expected 1 to 32 lowercase letters, digits or '-', starting with a letter and not ending with '-'"
        );
        assert!(check_name("host", "1abc").is_err());
        assert!(check_name("host", &"a".repeat(33)).is_err());
    }

    #[test]
    fn a_host_named_like_one_the_lab_adds_is_refused() {
        let hosts = |names: &[&str]| names.iter().map(|n| HostSpec::new(*n)).collect::<Vec<_>>();
        assert_eq!(
            check_reserved("l1", &hosts(&["client", "dns"]), true, false).unwrap_err(),
            "lab l1 declares a host named \"dns\", the name of the host LabBuilder::dns adds to serve the lab's DNS, so your host would silently become the DNS server; \
             rename your host, or serve the DNS from it on purpose with LabDns::new().on_host(\"dns\")"
        );
        // Without lab DNS, or with the server placed on it explicitly, "dns" is a host like any.
        assert!(check_reserved("l1", &hosts(&["client", "dns"]), false, false).is_ok());
        assert_eq!(
            check_reserved("l1", &hosts(&["client", "nat64"]), false, true).unwrap_err(),
            "lab l1 declares a host named \"nat64\", the name of the NAT64 router an ipv6-only-nat64 host makes the lab add, so your host would silently become that router; rename your host"
        );
        assert!(check_reserved("l1", &hosts(&["client", "nat64"]), false, false).is_ok());
    }

    #[test]
    fn interface_names() {
        assert!(check_interface("h", "eth0").is_ok());
        assert!(check_interface("h", "lan-uplink0").is_ok());
        assert_eq!(
            check_interface("h", "a-very-long-name0").unwrap_err(),
            "interface name \"a-very-long-name0\" of host h has 17 bytes; expected 1 to 15 (the kernel's IFNAMSIZ limit)"
        );
        assert!(check_interface("h", "c0").unwrap_err().contains("percent-escape"));
        assert!(check_interface("h", "lo").is_err());
        assert!(check_interface("h", "et/h").is_err());
    }
}
