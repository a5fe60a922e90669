//! Addressing, below everything that has an address: the profiles (which families a host has)
//! and the plan (which documentation-prefix addresses a host name gets).

pub mod plan;
pub mod profile;

use std::net::IpAddr;

/// The documentation prefixes lab addresses come from (and link-local, and the DNS64 prefix).
pub const LAB_PREFIXES: &str = "192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, fe80::/10, 64:ff9b::/96";

/// Whether `ip` is in a documentation prefix (or link-local, or the DNS64 well-known prefix):
/// the only addresses a lab may give its hosts or publish in DNS.
pub fn is_lab_address(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            matches!((o[0], o[1], o[2]), (192, 0, 2) | (198, 51, 100) | (203, 0, 113))
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            (s[0] == 0x2001 && s[1] == 0xdb8) || (s[0] & 0xffc0) == 0xfe80 || (s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0])
        }
    }
}
