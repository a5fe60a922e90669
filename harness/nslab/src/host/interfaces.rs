//! A host's lab interfaces (one per segment it joins, see [`crate::lab::segment`]) and, for a
//! router host, what it does with the packets it forwards.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::addr::profile::Profile;
use crate::host::listeners::Family;

/// What a router does with packets of one family it would forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum RouteState {
    /// It has the routes and forwards (the default).
    #[default]
    Present,
    /// It has no route: it answers ICMP destination unreachable (a connect through it fails
    /// at once with `ENETUNREACH`, errno 101).
    Unreachable,
    /// Its route leads to a black hole: packets vanish silently (a connect through it hangs).
    Blackhole,
}

impl RouteState {
    /// Every state, as scenarios spell them.
    pub const ALL: [RouteState; 3] = [RouteState::Present, RouteState::Unreachable, RouteState::Blackhole];

    /// The name scenarios use: `present`, `unreachable`, `blackhole`.
    pub fn name(self) -> &'static str {
        match self {
            RouteState::Present => "present",
            RouteState::Unreachable => "unreachable",
            RouteState::Blackhole => "blackhole",
        }
    }
}

impl std::fmt::Display for RouteState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for RouteState {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        RouteState::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("unknown route state {s:?}; expected \"present\", \"unreachable\" or \"blackhole\""))
    }
}

/// A router host: forwarding on, with the routes to far segments computed at build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouterSpec {
    pub(crate) ipv4: RouteState,
    pub(crate) ipv6: RouteState,
    pub(crate) drop_ptb: bool,
}

impl RouterSpec {
    /// A router that forwards both families.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes its route for `family` missing from the start: `Unreachable` (it answers ICMP
    /// unreachable) or `Blackhole` (silent drop). [`Host::set_route`] changes it later.
    pub fn missing_route(mut self, family: Family, state: RouteState) -> Self {
        match family {
            Family::V4 => self.ipv4 = state,
            Family::V6 => self.ipv6 = state,
        }
        self
    }

    /// The PMTUD black hole preset: the ICMPv6 Packet Too Big and ICMP fragmentation-needed
    /// messages this router sends are dropped (nftables in its namespace, counted: see
    /// [`Host::dropped_packet_too_big`]), so a sender never learns the path MTU.
    pub fn drop_packet_too_big(mut self) -> Self {
        self.drop_ptb = true;
        self
    }

    /// The state of its route for `family`.
    pub fn route(&self, family: Family) -> RouteState {
        match family {
            Family::V4 => self.ipv4,
            Family::V6 => self.ipv6,
        }
    }

    /// Whether the PMTUD black hole preset is on.
    pub fn drops_packet_too_big(&self) -> bool {
        self.drop_ptb
    }
}

/// One interface of a built host: its segment and the addresses it has there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name in the host (`eth0` for the primary unless set otherwise, then `eth1`, ...).
    pub name: String,
    /// Its segment's name (`lan` in a lab that declares none).
    pub segment: String,
    /// Its segment's declaration index (0-2): which prefixes it has.
    pub segment_index: usize,
    /// The families the host has on it.
    pub profile: Profile,
    /// Its IPv4 address, if its profile there has one.
    pub ipv4: Option<Ipv4Addr>,
    /// Its global IPv6 address, if its profile there has one.
    pub ipv6: Option<Ipv6Addr>,
    /// Its link-local address, if its profile there has one.
    pub link_local: Option<Ipv6Addr>,
    /// Its segment's MTU when set (else the kernel's 1500).
    pub mtu: Option<u32>,
    /// Its index in the host's namespace.
    pub ifindex: u32,
}

impl Interface {
    /// Its routable addresses: IPv4 then global IPv6.
    pub fn addrs(&self) -> Vec<IpAddr> {
        self.ipv4.map(IpAddr::V4).into_iter().chain(self.ipv6.map(IpAddr::V6)).collect()
    }

    /// Its address in `family`, if it has one.
    pub fn addr(&self, family: Family) -> Option<IpAddr> {
        match family {
            Family::V4 => self.ipv4.map(IpAddr::V4),
            Family::V6 => self.ipv6.map(IpAddr::V6),
        }
    }
}
