//! The address plan: which documentation-prefix addresses each host gets, stable per host name.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Domain of lab host names (`server.lab.test`); `.test` is reserved (RFC 2606).
pub const LAB_DOMAIN: &str = "lab.test";

/// Name of the router host.
pub const NAT64_HOST: &str = "nat64";

/// Name of the host that serves the lab's DNS unless [`crate::LabDns::on_host`] says otherwise.
pub const DNS_HOST: &str = "dns";

/// The lab segment's IPv4 prefix (TEST-NET-1, RFC 5737).
pub const IPV4_NET: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 0);
/// Prefix length of [`IPV4_NET`].
pub const IPV4_PREFIX: u8 = 24;
/// The lab segment's global IPv6 prefix (inside 2001:db8::/32, RFC 3849).
pub const IPV6_NET: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0);
/// Prefix length of [`IPV6_NET`] and of link-local addresses.
pub const IPV6_PREFIX: u8 = 64;

/// Lowest and highest host slot: .1-.9 stay free for routers and the like.
const FIRST_SLOT: u8 = 10;
const LAST_SLOT: u8 = 249;

/// Most hosts one lab segment holds.
pub const MAX_HOSTS: usize = (LAST_SLOT - FIRST_SLOT + 1) as usize;

/// The addresses of one host slot. Slot 23 is 192.0.2.23, 2001:db8:1::23 and fe80::23: the
/// IPv6 addresses spell the slot in decimal digits so the families read alike in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotAddrs {
    /// The slot number (10-249).
    pub slot: u8,
    /// IPv4 address in [`IPV4_NET`].
    pub v4: Ipv4Addr,
    /// Global IPv6 address in [`IPV6_NET`].
    pub v6: Ipv6Addr,
    /// Link-local address.
    pub link_local: Ipv6Addr,
}

impl SlotAddrs {
    /// The addresses of `slot`.
    pub fn of(slot: u8) -> Self {
        Self::on_segment(slot, 0)
    }

    /// The addresses of `slot` on the segment at declaration index `k` (0-2) of a routed lab
    /// (see [`segment_prefixes`]): slot 23 on index 1 is 198.51.100.23 and
    /// 2001:db8:2::23. Index 0 is [`SlotAddrs::of`].
    pub fn on_segment(slot: u8, k: usize) -> Self {
        // Decimal digits read as hex: slot 23 -> ::23.
        let dec = u16::from_str_radix(&slot.to_string(), 16).expect("decimal digits are hex digits");
        let (v4, v6) = segment_prefixes(k);
        let [a, b, c, _] = v4.octets();
        let s6 = v6.segments();
        Self {
            slot,
            v4: Ipv4Addr::new(a, b, c, slot),
            v6: Ipv6Addr::new(s6[0], s6[1], s6[2], 0, 0, 0, 0, dec),
            link_local: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, dec),
        }
    }

    /// A locally administered MAC address for the slot, so neighbour tables read alike too.
    pub fn mac(&self) -> [u8; 6] {
        self.mac_on(0)
    }

    /// The slot's MAC on the segment at index `k`: distinct per segment (a router's
    /// interfaces), [`SlotAddrs::mac`] on the first.
    pub fn mac_on(&self, k: usize) -> [u8; 6] {
        [0x02, 0x00, 0x5e, 0x10, k as u8, self.slot]
    }
}

/// The addresses one host gets in a lab, as [`crate::LabBuilder::address_plan`] computes them
/// before anything is built: the families its profile gives it, the others `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddresses {
    /// The host's name.
    pub name: String,
    /// Its profile (the lab's, or its own).
    pub profile: crate::addr::profile::Profile,
    /// Its lab interface.
    pub interface: String,
    /// Its IPv4 address, if its profile has IPv4.
    pub ipv4: Option<Ipv4Addr>,
    /// Its global IPv6 address, if its profile has one.
    pub ipv6: Option<Ipv6Addr>,
    /// Its link-local address (scope: [`HostAddresses::interface`]), if its profile has one.
    pub link_local: Option<Ipv6Addr>,
    /// The segment of the interface (`lan` in a lab without declared segments).
    pub segment: String,
}

impl HostAddresses {
    /// What a host named `name` with `profile` gets in `slot`.
    pub fn new(name: &str, profile: crate::addr::profile::Profile, interface: &str, slot: SlotAddrs) -> Self {
        Self {
            name: name.to_string(),
            profile,
            interface: interface.to_string(),
            ipv4: profile.has_ipv4().then_some(slot.v4),
            ipv6: profile.has_global_ipv6().then_some(slot.v6),
            link_local: profile.has_link_local().then_some(slot.link_local),
            segment: "lan".to_string(),
        }
    }
}

/// The prefixes of the segment at declaration index `k` (0-2): 192.0.2.0/24 and 2001:db8:1::/64,
/// 198.51.100.0/24 and 2001:db8:2::/64, 203.0.113.0/24 and 2001:db8:3::/64.
pub fn segment_prefixes(k: usize) -> (Ipv4Addr, Ipv6Addr) {
    let v4 = match k {
        0 => Ipv4Addr::new(192, 0, 2, 0),
        1 => Ipv4Addr::new(198, 51, 100, 0),
        _ => Ipv4Addr::new(203, 0, 113, 0),
    };
    (v4, Ipv6Addr::new(0x2001, 0xdb8, k as u16 + 1, 0, 0, 0, 0, 0))
}

fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Assigns a slot to every host name: the name's hash picks a preferred slot, and collisions
/// move to the next free one, resolved in name order. The same set of names always gets the same
/// slots, whatever order the hosts were declared in.
///
/// Returns `None` when there are more than [`MAX_HOSTS`] names.
pub fn assign_slots<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<BTreeMap<String, SlotAddrs>> {
    let mut sorted: Vec<&str> = names.into_iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() > MAX_HOSTS {
        return None;
    }
    let span = u32::from(LAST_SLOT - FIRST_SLOT) + 1;
    let mut used = [false; 256];
    let mut out = BTreeMap::new();
    for name in sorted {
        let mut slot = FIRST_SLOT as u32 + fnv1a(name) % span;
        while used[slot as usize] {
            slot = if slot == LAST_SLOT as u32 { FIRST_SLOT as u32 } else { slot + 1 };
        }
        used[slot as usize] = true;
        out.insert(name.to_string(), SlotAddrs::of(slot as u8));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_addresses_spell_the_slot() {
        let a = SlotAddrs::of(23);
        assert_eq!(a.v4.to_string(), "192.0.2.23");
        assert_eq!(a.v6.to_string(), "2001:db8:1::23");
        assert_eq!(a.link_local.to_string(), "fe80::23");
    }

    #[test]
    fn slots_are_stable_and_order_independent() {
        let a = assign_slots(["client", "server", "dns"]).unwrap();
        let b = assign_slots(["dns", "server", "client"]).unwrap();
        assert_eq!(a, b);
        // Adding a host does not move the others unless it collides with them.
        let c = assign_slots(["client", "server", "dns", "zz-extra"]).unwrap();
        for n in ["client", "server", "dns"] {
            assert_eq!(a[n], c[n], "{n} moved");
        }
    }

    #[test]
    fn full_segment_gets_distinct_slots_and_overflow_is_refused() {
        let names: Vec<String> = (0..MAX_HOSTS).map(|i| format!("h{i}")).collect();
        let m = assign_slots(names.iter().map(String::as_str)).unwrap();
        let mut slots: Vec<u8> = m.values().map(|s| s.slot).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), MAX_HOSTS);
        assert!(slots.iter().all(|s| (10..=249).contains(s)));
        let too_many: Vec<String> = (0..=MAX_HOSTS).map(|i| format!("h{i}")).collect();
        assert!(assign_slots(too_many.iter().map(String::as_str)).is_none());
    }
}
