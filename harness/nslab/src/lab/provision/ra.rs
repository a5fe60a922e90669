//! Router advertisement settings and the radvd configuration written from them.

use std::fmt::Write as _;
use std::net::Ipv6Addr;
use std::time::Duration;

use crate::error::{Error, Result};

/// One prefix advertised for SLAAC (on-link, autonomous).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaPrefix {
    /// The /64 network.
    pub prefix: Ipv6Addr,
    /// Valid lifetime in seconds.
    pub valid: u32,
    /// Preferred lifetime in seconds; 0 advertises the prefix deprecated.
    pub preferred: u32,
}

impl RaPrefix {
    /// A prefix with radvd's default lifetimes (valid 86400 s, preferred 14400 s).
    pub fn new(prefix: Ipv6Addr) -> Self {
        Self { prefix, valid: 86_400, preferred: 14_400 }
    }
}

/// What the router advertises on the segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaConfig {
    /// Prefixes, in the order they are advertised.
    pub prefixes: Vec<RaPrefix>,
    /// Recursive DNS servers (RDNSS option, RFC 8106).
    pub rdnss: Vec<Ipv6Addr>,
    /// DNS search list (DNSSL option).
    pub dnssl: Vec<String>,
    /// The M flag: addresses are available by DHCPv6.
    pub managed: bool,
    /// The O flag: other configuration is available by DHCPv6.
    pub other: bool,
    /// MinRtrAdvInterval.
    pub min_interval: Duration,
    /// MaxRtrAdvInterval.
    pub max_interval: Duration,
    /// Router lifetime advertised (0: not a default router).
    pub router_lifetime: Duration,
}

/// Lifetime of the RDNSS and DNSSL options (seconds): radvd warns below twice its default
/// MaxRtrAdvInterval (600 s), which it checks before it has read the interface's own.
const RDNSS_LIFETIME: u32 = 1800;

/// radvd's documented minimum of MaxRtrAdvInterval without Mobile IPv6 extensions.
pub const MIN_MAX_INTERVAL: Duration = Duration::from_secs(4);
/// radvd's documented minimum of MinRtrAdvInterval without Mobile IPv6 extensions.
pub const MIN_MIN_INTERVAL: Duration = Duration::from_secs(3);

impl Default for RaConfig {
    /// The segment's first prefix 2001:db8:1::/64, no DNS options, no flags, and the shortest
    /// intervals radvd allows (3 to 4 s: a host that misses the first advertisement waits
    /// seconds, not minutes), router lifetime 1800 s.
    fn default() -> Self {
        Self {
            prefixes: vec![RaPrefix::new(segment_prefix(0))],
            rdnss: Vec::new(),
            dnssl: Vec::new(),
            managed: false,
            other: false,
            min_interval: MIN_MIN_INTERVAL,
            max_interval: MIN_MAX_INTERVAL,
            router_lifetime: Duration::from_secs(1800),
        }
    }
}

/// The IPv6 /64 of segment `index` (0: 2001:db8:1::/64).
pub fn segment_prefix(index: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0x0db8, index + 1, 0, 0, 0, 0, 0)
}

/// The `n`th renumbering prefix of segment `index` (`n` >= 1: 2001:db8:1:n::/64 on segment 0).
pub fn renumbering_prefix(index: u16, n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0x0db8, index + 1, n, 0, 0, 0, 0)
}

/// Whether `addr` lies in the /64 `prefix`.
pub fn in_prefix(addr: Ipv6Addr, prefix: Ipv6Addr) -> bool {
    in_net(addr, prefix, 64)
}

/// Whether `addr` lies in `net`/`len`.
pub fn in_net(addr: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len.min(128))).unwrap_or(0);
    addr.to_bits() & mask == net.to_bits() & mask
}

impl RaConfig {
    /// Checks the settings against radvd's documented limits.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the setting and its limit.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Invalid { what });
        if self.max_interval < MIN_MAX_INTERVAL || self.max_interval > Duration::from_secs(1800) {
            return bad(format!("router advertisement max interval {:?}: radvd needs 4 s to 1800 s", self.max_interval));
        }
        if self.min_interval < MIN_MIN_INTERVAL || self.min_interval.as_secs_f64() > 0.75 * self.max_interval.as_secs_f64() {
            return bad(format!(
                "router advertisement min interval {:?}: radvd needs at least 3 s and at most 0.75 x the max interval ({:?})",
                self.min_interval, self.max_interval
            ));
        }
        let rl = self.router_lifetime;
        if !rl.is_zero() && (rl < self.max_interval || rl > Duration::from_secs(9000)) {
            return bad(format!("router lifetime {rl:?}: radvd needs 0 or between the max interval and 9000 s"));
        }
        for p in &self.prefixes {
            if p.preferred > p.valid {
                return bad(format!("prefix {}/64: preferred lifetime {} s is longer than its valid lifetime {} s", p.prefix, p.preferred, p.valid));
            }
            if u128::from(p.prefix) & u128::from(u64::MAX) != 0 {
                return bad(format!("prefix {}: not a /64 network (host bits set)", p.prefix));
            }
        }
        Ok(())
    }

    /// The radvd configuration advertising these settings on `ifname`.
    pub fn radvd_conf(&self, ifname: &str) -> String {
        let on = |b: bool| if b { "on" } else { "off" };
        let mut s = String::from("# written by nslab: router advertisements of a lab segment\n");
        let _ = writeln!(s, "interface {ifname} {{");
        let _ = writeln!(s, "    AdvSendAdvert on;");
        let _ = writeln!(s, "    MinRtrAdvInterval {};", self.min_interval.as_secs());
        let _ = writeln!(s, "    MaxRtrAdvInterval {};", self.max_interval.as_secs());
        let _ = writeln!(s, "    AdvDefaultLifetime {};", self.router_lifetime.as_secs());
        let _ = writeln!(s, "    AdvManagedFlag {};", on(self.managed));
        let _ = writeln!(s, "    AdvOtherConfigFlag {};", on(self.other));
        for p in &self.prefixes {
            let _ = writeln!(s, "    prefix {}/64 {{", p.prefix);
            let _ = writeln!(s, "        AdvOnLink on;");
            let _ = writeln!(s, "        AdvAutonomous on;");
            let _ = writeln!(s, "        AdvValidLifetime {};", p.valid);
            let _ = writeln!(s, "        AdvPreferredLifetime {};", p.preferred);
            let _ = writeln!(s, "    }};");
        }
        if !self.rdnss.is_empty() {
            let list: Vec<String> = self.rdnss.iter().map(ToString::to_string).collect();
            let _ = writeln!(s, "    RDNSS {} {{", list.join(" "));
            let _ = writeln!(s, "        AdvRDNSSLifetime {};", RDNSS_LIFETIME);
            let _ = writeln!(s, "    }};");
        }
        if !self.dnssl.is_empty() {
            let _ = writeln!(s, "    DNSSL {} {{", self.dnssl.join(" "));
            let _ = writeln!(s, "        AdvDNSSLLifetime {};", RDNSS_LIFETIME);
            let _ = writeln!(s, "    }};");
        }
        s.push_str("};\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radvd_conf_lists_prefixes_lifetimes_dns_options_and_flags() {
        let mut c = RaConfig::default();
        c.prefixes.push(RaPrefix { prefix: renumbering_prefix(0, 1), valid: 7200, preferred: 0 });
        c.rdnss.push("2001:db8:1::35".parse().unwrap());
        c.dnssl.push("lab.test".into());
        c.managed = true;
        let conf = c.radvd_conf("eth0");
        assert!(conf.contains("interface eth0 {"), "{conf}");
        assert!(conf.contains("prefix 2001:db8:1::/64 {\n        AdvOnLink on;\n        AdvAutonomous on;\n        AdvValidLifetime 86400;\n        AdvPreferredLifetime 14400;"), "{conf}");
        assert!(conf.contains("prefix 2001:db8:1:1::/64 {"), "{conf}");
        assert!(conf.contains("AdvPreferredLifetime 0;"), "{conf}");
        assert!(conf.contains("RDNSS 2001:db8:1::35 {"), "{conf}");
        assert!(conf.contains("DNSSL lab.test {"), "{conf}");
        assert!(conf.contains("AdvManagedFlag on;") && conf.contains("AdvOtherConfigFlag off;"), "{conf}");
        assert!(conf.contains("MinRtrAdvInterval 3;") && conf.contains("MaxRtrAdvInterval 4;"), "{conf}");
    }

    #[test]
    fn intervals_below_radvds_minimums_are_refused() {
        let c = RaConfig { max_interval: Duration::from_secs(2), ..RaConfig::default() };
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains("radvd needs 4 s to 1800 s"), "{e}");
        let c = RaConfig { min_interval: Duration::from_secs(1), ..RaConfig::default() };
        assert!(c.check().unwrap_err().to_string().contains("at least 3 s"));
        RaConfig::default().check().expect("the defaults are valid");
    }

    #[test]
    fn prefixes_of_segments_and_renumbering_are_documentation_space() {
        assert_eq!(segment_prefix(0), "2001:db8:1::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(renumbering_prefix(0, 2), "2001:db8:1:2::".parse::<Ipv6Addr>().unwrap());
        assert!(in_prefix("2001:db8:1:0:200:5eff:fe00:5301".parse().unwrap(), segment_prefix(0)));
        assert!(!in_prefix("2001:db8:1:1::5".parse().unwrap(), segment_prefix(0)));
    }
}
