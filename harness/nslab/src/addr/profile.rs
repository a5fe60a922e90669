//! Address-family profiles: which families a host has, and the kernel settings that make it so.

use std::fmt;
use std::str::FromStr;

/// A named address-family profile, applied to a whole lab and overridable per host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Profile {
    /// IPv4 addresses only; IPv6 disabled by sysctl on every interface, `lo` included.
    Ipv4Only,
    /// IPv4 and global IPv6 (plus link-local) addresses.
    DualStack,
    /// Global IPv6 (plus link-local) addresses only on the lab interface; 127.0.0.1 stays on lo.
    Ipv6Only,
    /// Only `fe80::` addresses on the lab interface.
    LinkLocalOnly,
    /// IPv6 absent, not just disabled: IPv4 addresses only, and `socket(AF_INET6, ...)` fails with
    /// EAFNOSUPPORT (97) in the host's programs (a seccomp filter), as on a kernel without IPv6.
    NoIpv6,
    /// Dual-stack addresses, AAAA records published, but IPv6 packets to other lab hosts silently
    /// dropped (a permanent neighbour entry to a MAC nobody has): IPv6 connects hang, as on a
    /// broken path, while IPv4 works.
    BrokenIpv6,
    /// IPv6-only hosts that reach IPv4-only hosts through NAT64: a `nat64` router host runs
    /// tayga (2001:db8:6464::/96 <-> 198.51.100.0/24: a documentation prefix, since RFC 6052
    /// keeps 64:ff9b::/96 for global IPv4), and the lab's DNS synthesizes AAAA (DNS64) in it.
    Ipv6OnlyNat64,
}

impl Profile {
    /// Every profile, in the order reports list them.
    pub const ALL: [Profile; 7] =
        [Profile::Ipv4Only, Profile::DualStack, Profile::Ipv6Only, Profile::LinkLocalOnly, Profile::NoIpv6, Profile::BrokenIpv6, Profile::Ipv6OnlyNat64];

    /// The four addressing profiles (without the failure profiles `no-ipv6` and `broken-ipv6`).
    pub const BASIC: [Profile; 4] = [Profile::Ipv4Only, Profile::DualStack, Profile::Ipv6Only, Profile::LinkLocalOnly];

    /// What a profile models, in one line.
    pub fn models(self) -> &'static str {
        match self {
            Profile::Ipv4Only => "IPv4 only: IPv6 turned off by sysctl (sockets can still be made, addresses cannot)",
            Profile::DualStack => "IPv4 and IPv6 side by side, as most networks today",
            Profile::Ipv6Only => "an IPv6-only network: no IPv4 address besides 127.0.0.1, no way to IPv4 servers",
            Profile::LinkLocalOnly => "no router, no DHCP: only fe80:: addresses, usable with a scope id",
            Profile::NoIpv6 => "a kernel without IPv6: socket(AF_INET6) fails with EAFNOSUPPORT (97) in every program",
            Profile::BrokenIpv6 => "IPv6 addresses and AAAA records, but IPv6 packets vanish on the path: connects hang",
            Profile::Ipv6OnlyNat64 => "IPv6-only hosts reaching IPv4-only servers through NAT64 (tayga) and DNS64",
        }
    }

    /// The profile's name as written in scenarios and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Ipv4Only => "ipv4-only",
            Profile::DualStack => "dual-stack",
            Profile::Ipv6Only => "ipv6-only",
            Profile::LinkLocalOnly => "link-local-only",
            Profile::NoIpv6 => "no-ipv6",
            Profile::BrokenIpv6 => "broken-ipv6",
            Profile::Ipv6OnlyNat64 => "ipv6-only-nat64",
        }
    }

    /// Whether the lab interface gets an IPv4 address.
    pub fn has_ipv4(self) -> bool {
        matches!(self, Profile::Ipv4Only | Profile::DualStack | Profile::NoIpv6 | Profile::BrokenIpv6)
    }

    /// Whether IPv6 is enabled at all in the host.
    pub fn ipv6_enabled(self) -> bool {
        !matches!(self, Profile::Ipv4Only | Profile::NoIpv6)
    }

    /// Whether the lab interface gets a global (documentation-prefix) IPv6 address.
    pub fn has_global_ipv6(self) -> bool {
        matches!(self, Profile::DualStack | Profile::Ipv6Only | Profile::BrokenIpv6 | Profile::Ipv6OnlyNat64)
    }

    /// Whether the host reaches IPv4 through the lab's NAT64 router.
    pub fn uses_nat64(self) -> bool {
        matches!(self, Profile::Ipv6OnlyNat64)
    }

    /// Whether programs in the host cannot create IPv6 sockets at all (EAFNOSUPPORT).
    pub fn ipv6_absent(self) -> bool {
        matches!(self, Profile::NoIpv6)
    }

    /// Whether IPv6 packets from the host to other lab hosts are silently dropped.
    pub fn ipv6_broken(self) -> bool {
        matches!(self, Profile::BrokenIpv6)
    }

    /// Whether the lab interface gets a link-local address.
    pub fn has_link_local(self) -> bool {
        self.ipv6_enabled()
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A profile name that is not one of [`Profile::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile {found:?}; expected one of {}", Profile::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "))]
pub struct UnknownProfile {
    /// What was given.
    pub found: String,
}

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| UnknownProfile { found: s.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>().unwrap(), p);
        }
    }

    #[test]
    fn unknown_name_lists_expected() {
        let e = "ipv6".parse::<Profile>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown profile \"ipv6\"; expected one of ipv4-only, dual-stack, ipv6-only, link-local-only, no-ipv6, broken-ipv6, ipv6-only-nat64"
        );
    }
}
