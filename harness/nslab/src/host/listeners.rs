//! What sockets a host holds, read from the kernel with sock_diag netlink: what listens, and
//! which socket is one end of a given TCP connection.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
use netlink_packet_sock_diag::inet::nlas::Nla;
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr as NlAddr};

/// Transport protocol of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (listening sockets).
    Tcp,
    /// UDP (bound, unconnected sockets).
    Udp,
}

/// Address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// A socket waiting for peers, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Listener {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Local address and port (scope id included for link-local).
    pub local: SocketAddr,
    /// IPV6_V6ONLY of an IPv6 socket (`false` means it also takes IPv4); `false` for IPv4.
    pub v6only: bool,
    /// Inode of the socket (matches `/proc/PID/fd` links `socket:[INODE]`).
    pub inode: u32,
}

impl Listener {
    /// The socket's family.
    pub fn family(&self) -> Family {
        Family::of(&self.local.ip())
    }

    /// Whether IPv4 peers can reach it: an IPv4 socket, or an IPv6 wildcard without V6ONLY.
    pub fn accepts_ipv4(&self) -> bool {
        match self.local.ip() {
            IpAddr::V4(_) => true,
            IpAddr::V6(a) => a.is_unspecified() && !self.v6only,
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        write!(f, "{p} {}", self.local)?;
        if self.local.is_ipv6() {
            write!(f, " v6only={}", u8::from(self.v6only))?;
        }
        Ok(())
    }
}

/// What a wait for a listener looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Protocol.
    pub protocol: Protocol,
    /// Port.
    pub port: u16,
    /// Family, if it matters.
    pub family: Option<Family>,
    /// Exact local address, if it matters.
    pub addr: Option<IpAddr>,
}

impl Listen {
    /// Any TCP listener on `port`.
    pub fn tcp(port: u16) -> Self {
        Self { protocol: Protocol::Tcp, port, family: None, addr: None }
    }

    /// Any bound UDP socket on `port`.
    pub fn udp(port: u16) -> Self {
        Self { protocol: Protocol::Udp, port, family: None, addr: None }
    }

    /// Only sockets of this family.
    pub fn family(mut self, f: Family) -> Self {
        self.family = Some(f);
        self
    }

    /// Only sockets bound to exactly this address.
    pub fn addr(mut self, a: IpAddr) -> Self {
        self.family = Some(Family::of(&a));
        self.addr = Some(a);
        self
    }

    /// Whether `l` is what this looks for.
    pub fn matches(&self, l: &Listener) -> bool {
        l.protocol == self.protocol && l.local.port() == self.port && self.family.is_none_or(|f| l.family() == f) && self.addr.is_none_or(|a| l.local.ip() == a)
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        match (self.addr, self.family) {
            (Some(a), _) => write!(f, "a {p} listener on {}", SocketAddr::new(a, self.port)),
            (None, Some(Family::V4)) => write!(f, "an IPv4 {p} listener on port {}", self.port),
            (None, Some(Family::V6)) => write!(f, "an IPv6 {p} listener on port {}", self.port),
            (None, None) => write!(f, "a {p} listener on port {}", self.port),
        }
    }
}

/// Opens a sock_diag socket in the calling thread's namespace.
pub(crate) fn open_here() -> io::Result<Socket> {
    let mut s = Socket::new(NETLINK_SOCK_DIAG)?;
    s.bind_auto()?;
    s.connect(&NlAddr::new(0, 0))?;
    Ok(s)
}

/// Every TCP listener and bound UDP socket of the namespace `sock` was opened in.
pub(crate) fn dump(sock: &Socket) -> io::Result<Vec<Listener>> {
    let mut out = Vec::new();
    for (family, protocol) in [(AF_INET, Protocol::Tcp), (AF_INET6, Protocol::Tcp), (AF_INET, Protocol::Udp), (AF_INET6, Protocol::Udp)] {
        dump_one(sock, family, protocol, &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn dump_one(sock: &Socket, family: u8, protocol: Protocol, out: &mut Vec<Listener>) -> io::Result<()> {
    let (proto, states) = match protocol {
        Protocol::Tcp => (IPPROTO_TCP, StateFlags::LISTEN),
        // Unconnected UDP sockets sit in TCP_CLOSE; connected ones are clients, not listeners.
        Protocol::Udp => (IPPROTO_UDP, StateFlags::CLOSE),
    };
    for_each(sock, family, proto, states, ExtensionFlags::empty(), |r| {
        let id = &r.header.socket_id;
        let v6only = r.nlas.iter().any(|n| matches!(n, Nla::SkV6Only(true)));
        let mut local = SocketAddr::new(id.source_address, id.source_port);
        if let (SocketAddr::V6(a), Some(scope)) = (&mut local, id.interface_id.checked_sub(0)) {
            if a.ip().is_unicast_link_local() {
                a.set_scope_id(scope);
            }
        }
        // Connected UDP sockets have a peer: they are not listeners.
        if protocol == Protocol::Tcp || id.destination_port == 0 {
            out.push(Listener { protocol, local, v6only, inode: r.header.inode });
        }
    })
}

/// The inode of the TCP socket in the namespace `sock` was opened in whose local end is `local`
/// and whose peer is `remote`, in whichever form the program opened it (an IPv4 socket, or an
/// IPv6 one with IPv4-mapped addresses); `None` when there is none (it was closed).
pub(crate) fn connection_inode(sock: &Socket, local: SocketAddr, remote: SocketAddr) -> io::Result<Option<u32>> {
    let canon = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (local, remote) = (canon(local), canon(remote));
    // Every state a socket a program still holds can be in (TIME_WAIT has no owner any more).
    let states = StateFlags::ESTABLISHED
        | StateFlags::SYN_SENT
        | StateFlags::FIN_WAIT1
        | StateFlags::FIN_WAIT2
        | StateFlags::CLOSE_WAIT
        | StateFlags::LAST_ACK
        | StateFlags::CLOSING;
    let mut found = None;
    for family in [AF_INET, AF_INET6] {
        for_each(sock, family, IPPROTO_TCP, states.clone(), ExtensionFlags::empty(), |r| {
            let id = &r.header.socket_id;
            let (l, p) = (SocketAddr::new(id.source_address, id.source_port), SocketAddr::new(id.destination_address, id.destination_port));
            if found.is_none() && r.header.inode != 0 && canon(l) == local && canon(p) == remote {
                found = Some(r.header.inode);
            }
        })?;
        if found.is_some() {
            break;
        }
    }
    Ok(found)
}

/// Sends one sock_diag dump request and calls `f` with each socket the kernel reports.
fn for_each(
    sock: &Socket,
    family: u8,
    protocol: u8,
    states: StateFlags,
    extensions: ExtensionFlags,
    mut f: impl FnMut(&netlink_packet_sock_diag::inet::InetResponse),
) -> io::Result<()> {
    let mut hdr = NetlinkHeader::default();
    hdr.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let socket_id = if family == AF_INET { SocketId::new_v4() } else { SocketId::new_v6() };
    let mut msg = NetlinkMessage::new(hdr, SockDiagMessage::InetRequest(InetRequest { family, protocol, extensions, states, socket_id }).into());
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    sock.send(&buf, 0)?;
    let mut rbuf = vec![0u8; 64 * 1024];
    loop {
        let n = sock.recv(&mut &mut rbuf[..], 0)?;
        let mut off = 0;
        while off < n {
            let m = NetlinkMessage::<SockDiagMessage>::deserialize(&rbuf[off..n]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = m.header.length as usize;
            match m.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => f(&r),
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(e) => return Err(io::Error::other(format!("sock_diag: {e:?}"))),
                _ => {}
            }
            if len == 0 {
                break;
            }
            off += len;
        }
    }
}
