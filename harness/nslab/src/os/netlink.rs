//! Kernel network configuration over rtnetlink: one connection per namespace, opened inside it.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::{InfoData, InfoVeth, LinkAttribute, State};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth};

/// An rtnetlink connection bound to the namespace it was opened in.
pub(crate) struct Netlink {
    handle: rtnetlink::Handle,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Result alias: netlink failures carry the kernel's answer.
pub(crate) type NlResult<T> = Result<T, rtnetlink::Error>;

impl Netlink {
    /// Opens a connection in the calling thread's network namespace. The calling thread must
    /// have entered `rt` (the socket is registered with its reactor).
    pub(crate) fn open_here(rt: &tokio::runtime::Handle) -> io::Result<Self> {
        let _g = rt.enter();
        let (conn, handle, _) = rtnetlink::new_connection()?;
        let task = rt.spawn(conn);
        Ok(Self { handle, task })
    }

    /// Index of the interface called `name`.
    pub(crate) async fn index_of(&self, name: &str) -> NlResult<u32> {
        let mut links = self.handle.link().get().match_name(name.to_string()).execute();
        match links.try_next().await? {
            Some(msg) => Ok(msg.header.index),
            None => Err(rtnetlink::Error::RequestFailed),
        }
    }

    /// Whether the interface is operationally up: the kernel's link watch has seen its carrier
    /// (on a veth: both ends up), attached its queueing discipline and, on a bridge port, set
    /// the port forwarding. Until then the interface drops what it is given to send.
    pub(crate) async fn oper_up(&self, index: u32) -> NlResult<bool> {
        let mut links = self.handle.link().get().match_index(index).execute();
        match links.try_next().await? {
            Some(msg) => Ok(msg.attributes.iter().any(|a| matches!(a, LinkAttribute::OperState(State::Up)))),
            None => Err(rtnetlink::Error::RequestFailed),
        }
    }

    /// Creates an up bridge without STP or multicast snooping (ports forward at once and
    /// neighbour discovery is flooded like on a plain switch) and returns its index.
    pub(crate) async fn create_bridge(&self, name: &str) -> NlResult<u32> {
        let msg = LinkBridge::new(name).mcast_snooping(false).up().build();
        self.handle.link().add(msg).execute().await?;
        self.index_of(name).await
    }

    /// Creates a veth pair: `port` here, enslaved to `bridge` and up, and `peer` directly in the
    /// namespace `peer_ns` (never moved: a move costs ~20 ms), with `mac`.
    pub(crate) async fn create_veth(&self, port: &str, bridge: u32, alias: &str, peer: &str, peer_ns: &OwnedFd, mac: [u8; 6]) -> NlResult<()> {
        self.create_veth_mtu(port, bridge, alias, peer, peer_ns, mac, None).await
    }

    /// [`Netlink::create_veth`] with both ends given `mtu` (a segment's MTU) when set.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn create_veth_mtu(
        &self,
        port: &str,
        bridge: u32,
        alias: &str,
        peer: &str,
        peer_ns: &OwnedFd,
        mac: [u8; 6],
        mtu: Option<u32>,
    ) -> NlResult<()> {
        // The peer is created down: asking for it up here fails with ENOTCONN on kernel 6.18
        // (its namespace brings it up right after, before any address is added).
        let mut peer_b = LinkMessageBuilder::<LinkUnspec>::new().name(peer.to_string()).address(mac.to_vec()).setns_by_fd(peer_ns.as_raw_fd());
        if let Some(m) = mtu {
            peer_b = peer_b.mtu(m);
        }
        let mut b = LinkVeth::new(port, peer)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_b.build())))
            .controller(bridge)
            .append_extra_attribute(LinkAttribute::IfAlias(alias.to_string()));
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        self.handle.link().add(b.up().build()).execute().await
    }

    /// Creates an up bridge like [`Netlink::create_bridge`], with `mtu` when set.
    pub(crate) async fn create_bridge_mtu(&self, name: &str, mtu: Option<u32>) -> NlResult<u32> {
        let mut b = LinkBridge::new(name).mcast_snooping(false);
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        self.handle.link().add(b.up().build()).execute().await?;
        self.index_of(name).await
    }

    /// Adds (`add`) or removes a policy rule at `priority`: packets of the family (`v6`) that
    /// arrive on `iif` get `action` (unreachable, blackhole) instead of a route lookup.
    pub(crate) async fn set_rule(&self, add: bool, v6: bool, iif: &str, priority: u32, action: netlink_packet_route::rule::RuleAction) -> NlResult<()> {
        let req = self.handle.rule().add().input_interface(iif).priority(priority).action(action);
        if add {
            if v6 {
                req.v6().execute().await
            } else {
                req.v4().execute().await
            }
        } else {
            let msg = if v6 { req.v6().message_mut().clone() } else { req.v4().message_mut().clone() };
            self.handle.rule().del(msg).execute().await
        }
    }

    /// Sets an interface up or down.
    pub(crate) async fn set_up(&self, index: u32, up: bool) -> NlResult<()> {
        let b = LinkUnspec::new_with_index(index);
        let msg = if up { b.up() } else { b.down() }.build();
        self.handle.link().set(msg).execute().await
    }

    /// Adds an address; `nodad` skips duplicate address detection (IPv6).
    pub(crate) async fn add_address(&self, index: u32, addr: IpAddr, prefix: u8, nodad: bool) -> NlResult<()> {
        let mut req = self.handle.address().add(index, addr, prefix);
        if nodad && addr.is_ipv6() {
            req.message_mut().attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        req.execute().await
    }

    /// Removes an address.
    pub(crate) async fn del_address(&self, index: u32, addr: IpAddr, prefix: u8) -> NlResult<()> {
        let mut list = self.handle.address().get().set_link_index_filter(index).set_address_filter(addr).set_prefix_length_filter(prefix).execute();
        while let Some(msg) = list.try_next().await? {
            self.handle.address().del(msg).execute().await?;
        }
        Ok(())
    }

    /// Adds a route to `dest/prefix` through `via` (same family) or, without one, out of `index`.
    pub(crate) async fn add_route(&self, dest: IpAddr, prefix: u8, via: Option<IpAddr>, index: u32) -> NlResult<()> {
        use rtnetlink::RouteMessageBuilder;
        let msg = match (dest, via) {
            (IpAddr::V4(d), v) => {
                let mut b = RouteMessageBuilder::<std::net::Ipv4Addr>::new().destination_prefix(d, prefix).output_interface(index);
                if let Some(IpAddr::V4(g)) = v {
                    b = b.gateway(g);
                }
                b.build()
            }
            (IpAddr::V6(d), v) => {
                let mut b = RouteMessageBuilder::<std::net::Ipv6Addr>::new().destination_prefix(d, prefix).output_interface(index);
                if let Some(IpAddr::V6(g)) = v {
                    b = b.gateway(g);
                }
                b.build()
            }
        };
        self.handle.route().add(msg).execute().await
    }

    /// The main table's routes out of `index` through a gateway, as (destination, prefix,
    /// gateway): the static routes a link going down takes with it.
    pub(crate) async fn gateway_routes(&self, index: u32) -> NlResult<Vec<(IpAddr, u8, IpAddr)>> {
        use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader};
        use rtnetlink::RouteMessageBuilder;
        let addr = |a: &RouteAddress| match a {
            RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
            RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
            _ => None,
        };
        let mut out = Vec::new();
        for v6 in [false, true] {
            let msg = if v6 { RouteMessageBuilder::<std::net::Ipv6Addr>::new().build() } else { RouteMessageBuilder::<std::net::Ipv4Addr>::new().build() };
            let mut list = self.handle.route().get(msg).execute();
            while let Some(m) = list.try_next().await? {
                if m.header.table != RouteHeader::RT_TABLE_MAIN {
                    continue;
                }
                let (mut oif, mut gw, mut dst) = (None, None, None);
                for a in &m.attributes {
                    match a {
                        RouteAttribute::Oif(i) => oif = Some(*i),
                        RouteAttribute::Gateway(g) => gw = addr(g),
                        RouteAttribute::Destination(d) => dst = addr(d),
                        _ => {}
                    }
                }
                if let (Some(i), Some(g)) = (oif, gw) {
                    if i == index {
                        let any = if v6 { IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED) };
                        out.push((dst.unwrap_or(any), m.header.destination_prefix_length, g));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Adds (or replaces) a permanent neighbour entry: `ip` is reached at `mac` on `index`.
    pub(crate) async fn add_neighbour(&self, index: u32, ip: IpAddr, mac: [u8; 6]) -> NlResult<()> {
        self.handle
            .neighbours()
            .add(index, ip)
            .link_layer_address(&mac)
            .state(netlink_packet_route::neighbour::NeighbourState::Permanent)
            .replace()
            .execute()
            .await
    }

    /// Whether `addr` on `index` is still tentative (duplicate address detection running).
    pub(crate) async fn is_tentative(&self, index: u32, addr: IpAddr) -> NlResult<Option<bool>> {
        let mut list = self.handle.address().get().set_link_index_filter(index).set_address_filter(addr).execute();
        // Read the dump to its end: a stream dropped early leaves the rest of the kernel's answer
        // undeliverable (netlink-proto then warns "failed to forward response back to the handle").
        let mut first = None;
        while let Some(msg) = list.try_next().await? {
            first.get_or_insert(msg);
        }
        let Some(msg) = first else { return Ok(None) };
        let flags = msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Flags(f) => Some(*f),
            _ => None,
        });
        Ok(Some(flags.is_some_and(|f| f.contains(AddressFlags::Tentative))))
    }
}

/// How long a link may take to come operationally up.
pub(crate) const OPER_UP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits until interface `index` is operationally up. A veth's carrier reaches the kernel's link
/// watch asynchronously (batched, up to a second later when the machine is busy); until it has,
/// the link drops what it sends, and the first neighbour solicitation is lost: a one-second
/// delay on the first IPv6 packet.
///
/// # Errors
/// [`crate::Error::Netlink`] when the state cannot be read, [`crate::Error::Timeout`] after
/// [`OPER_UP_TIMEOUT`].
pub(crate) async fn wait_oper_up(nl: &Netlink, index: u32, what: String) -> crate::error::Result<()> {
    let deadline = tokio::time::Instant::now() + OPER_UP_TIMEOUT;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match nl.oper_up(index).await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(source) => return Err(crate::error::Error::Netlink { op: "read the link state".into(), what, source }),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(crate::error::Error::Timeout { what, timeout: OPER_UP_TIMEOUT, tail: String::new() });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(10));
    }
}
