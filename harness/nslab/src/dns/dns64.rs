//! DNS64 address synthesis (RFC 6147, RFC 6052): the prefix and the mapping of IPv4 into it.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::ServerError;

/// A DNS64 configuration: the /96 prefix synthesized AAAA records are placed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dns64 {
    prefix: Ipv6Addr,
}

impl Dns64 {
    /// The well-known prefix 64:ff9b::/96 (RFC 6052 section 2.1).
    pub fn well_known() -> Self {
        Self { prefix: Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0) }
    }

    /// A network-specific prefix. Only /96 is supported (the IPv4 address is the last 32 bits).
    ///
    /// # Errors
    ///
    /// [`ServerError::Dns64Prefix`] when `len` is not 96 or the prefix has bits set in its last 32 bits.
    pub fn new(prefix: Ipv6Addr, len: u8) -> Result<Self, ServerError> {
        if len != 96 || prefix.to_bits() & 0xffff_ffff != 0 {
            return Err(ServerError::Dns64Prefix { prefix, len });
        }
        Ok(Self { prefix })
    }

    /// The prefix (its last 32 bits are zero).
    pub fn prefix(&self) -> Ipv6Addr {
        self.prefix
    }

    /// The IPv6 address representing `v4` inside the prefix.
    pub fn synthesize(&self, v4: Ipv4Addr) -> Ipv6Addr {
        Ipv6Addr::from_bits(self.prefix.to_bits() | u128::from(v4.to_bits()))
    }
}

/// DNS64 as switched at run time: off, on for every client, or on only for clients whose
/// address lies in given prefixes (a subnet that has DNS64 turned on while others do not).
#[derive(Debug, Clone, Default)]
pub(crate) struct Dns64Switch(std::sync::Arc<std::sync::RwLock<Option<Dns64For>>>);

/// DNS64 and the client prefixes it applies to (`None`: every client).
type Dns64For = (Dns64, Option<Vec<(std::net::IpAddr, u8)>>);

impl Dns64Switch {
    pub(crate) fn new(initial: Option<Dns64>) -> Self {
        Self(std::sync::Arc::new(std::sync::RwLock::new(initial.map(|d| (d, None)))))
    }

    /// Sets DNS64: `None` turns it off; `clients` `None` means every client.
    pub(crate) fn set(&self, dns64: Option<Dns64>, clients: Option<Vec<(std::net::IpAddr, u8)>>) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = dns64.map(|d| (d, clients));
    }

    /// The DNS64 that applies to a query from `client`, if any.
    pub(crate) fn for_client(&self, client: std::net::IpAddr) -> Option<Dns64> {
        let g = self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (d, clients) = g.as_ref()?;
        match clients {
            None => Some(*d),
            Some(list) => list.iter().any(|(net, len)| in_net(client, *net, *len)).then_some(*d),
        }
    }
}

/// Whether `a` lies in `net`/`len` (an IPv4-mapped client address counts as IPv4).
fn in_net(a: std::net::IpAddr, net: std::net::IpAddr, len: u8) -> bool {
    use std::net::IpAddr;
    let a = match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(a),
        v4 => v4,
    };
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len.min(32))).unwrap_or(0);
            a.to_bits() & mask == n.to_bits() & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len.min(128))).unwrap_or(0);
            a.to_bits() & mask == n.to_bits() & mask
        }
        _ => false,
    }
}

impl Default for Dns64 {
    fn default() -> Self {
        Self::well_known()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switch_limited_to_prefixes_applies_only_to_clients_inside_them() {
        let sw = Dns64Switch::new(None);
        let client: std::net::IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(sw.for_client(client), None);
        sw.set(Some(Dns64::well_known()), Some(vec![("192.0.2.0".parse().unwrap(), 24), ("2001:db8:1::".parse().unwrap(), 64)]));
        assert_eq!(sw.for_client(client), Some(Dns64::well_known()));
        assert_eq!(sw.for_client("::ffff:192.0.2.10".parse().unwrap()), Some(Dns64::well_known()));
        assert_eq!(sw.for_client("2001:db8:1::5".parse().unwrap()), Some(Dns64::well_known()));
        assert_eq!(sw.for_client("198.51.100.10".parse().unwrap()), None);
        assert_eq!(sw.for_client("2001:db8:2::5".parse().unwrap()), None);
        sw.set(Some(Dns64::well_known()), None);
        assert_eq!(sw.for_client("198.51.100.10".parse().unwrap()), Some(Dns64::well_known()));
        sw.set(None, None);
        assert_eq!(sw.for_client(client), None);
    }

    #[test]
    fn well_known_prefix_embeds_the_ipv4_address_in_the_last_32_bits() {
        let addr = Dns64::well_known().synthesize(Ipv4Addr::new(192, 0, 2, 33));
        assert_eq!(addr, "64:ff9b::c000:221".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn only_clean_slash_96_prefixes_are_accepted() {
        let p: Ipv6Addr = "2001:db8:64::".parse().unwrap();
        assert_eq!(Dns64::new(p, 96).unwrap().prefix(), p);
        assert_eq!(Dns64::new(p, 64).unwrap_err().to_string(), "use DNS64 prefix 2001:db8:64::/64: only a /96 prefix is supported");
        assert!(Dns64::new("2001:db8::1".parse().unwrap(), 96).is_err());
    }
}
