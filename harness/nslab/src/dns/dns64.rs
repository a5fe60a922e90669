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

impl Default for Dns64 {
    fn default() -> Self {
        Self::well_known()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
