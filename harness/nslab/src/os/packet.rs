//! The lab's packet sockets: the DNS packet tap's, one AF_PACKET socket per host namespace that
//! receives a copy of every DNS packet the host sends, with the kernel's time stamp; and the
//! link capture's, one per lab in the switch namespace, read through a TPACKET_V3 ring.
//!
//! Cooked (`SOCK_DGRAM`) packet sockets hand over each packet from its network header, whatever
//! the link (the veth's Ethernet header, loopback's zero header, a tun device's none), so one
//! classic BPF program fits every interface of the host, `lo` included. Everything here is safe
//! code over nix and socket2; the ring's mapping is `sys::PacketRing`.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::sys::PacketRing;
use nix::sys::socket::{self, sockopt, AddressFamily, ControlMessageOwned, LinkAddr, MsgFlags, SockFlag, SockProtocol, SockType};

/// `sll_pkttype` of a packet this host sent (linux/if_packet.h).
pub(crate) const PACKET_OUTGOING: u8 = 4;

/// The filter the kernel runs on every packet of the namespace: accept outgoing UDP and TCP
/// packets from or to port 53, over IPv4 (first fragment only) and IPv6 (no extension
/// headers), everything else dropped before it is copied to the socket.
///
/// Produced by tcpdump 4.99.3 / libpcap 1.10.3 on a tun device (link type RAW: packets start at
/// the IP header, as on a cooked packet socket) in a throw-away network namespace:
///
/// ```text
/// unshare -n sh -c 'ip tuntap add dev t0 mode tun && ip link set t0 up &&
///   tcpdump -i t0 -dd "outbound and (udp port 53 or tcp port 53)"'
/// ```
///
/// (`tcpdump -d` prints it readably: `ldh [type]` / `jeq #4` is the ancillary load of the
/// packet type, PACKET_OUTGOING; then the IPv6 and IPv4 branches; `ret #262144` keeps up to
/// 256 KiB of the packet.) Regenerate it the same way; never edit it by hand.
const FILTER: [(u16, u8, u8, u32); 27] = [
    (0x28, 0, 0, 0xfffff004),
    (0x15, 0, 24, 0x00000004),
    (0x30, 0, 0, 0x00000000),
    (0x54, 0, 0, 0x000000f0),
    (0x15, 0, 7, 0x00000060),
    (0x30, 0, 0, 0x00000006),
    (0x15, 1, 0, 0x00000011),
    (0x15, 0, 18, 0x00000006),
    (0x28, 0, 0, 0x00000028),
    (0x15, 15, 0, 0x00000035),
    (0x28, 0, 0, 0x0000002a),
    (0x15, 13, 14, 0x00000035),
    (0x30, 0, 0, 0x00000000),
    (0x54, 0, 0, 0x000000f0),
    (0x15, 0, 11, 0x00000040),
    (0x30, 0, 0, 0x00000009),
    (0x15, 1, 0, 0x00000011),
    (0x15, 0, 8, 0x00000006),
    (0x28, 0, 0, 0x00000006),
    (0x45, 6, 0, 0x00001fff),
    (0xb1, 0, 0, 0x00000000),
    (0x48, 0, 0, 0x00000000),
    (0x15, 2, 0, 0x00000035),
    (0x48, 0, 0, 0x00000002),
    (0x15, 0, 1, 0x00000035),
    (0x6, 0, 0, 0x00040000),
    (0x6, 0, 0, 0x00000000),
];

/// How much the kernel may queue for the tap before it drops packets (counted, see
/// [`Packet::dropped`]): a burst of a few thousand DNS packets.
const RCVBUF: usize = 4 << 20;

/// One packet read from the tap.
#[derive(Debug)]
pub(crate) struct Packet {
    /// From the IP header on.
    pub(crate) data: Box<[u8]>,
    /// The kernel's receive time stamp (CLOCK_REALTIME), when it gave one.
    pub(crate) stamp: Option<SystemTime>,
    /// Packets the kernel dropped on this socket so far (its queue was full), when it says.
    pub(crate) dropped: Option<u32>,
}

/// Opens the tap socket in the calling thread's network namespace (call it from a thread that
/// has entered the host's namespace: the socket stays there). Non-blocking.
///
/// # Errors
/// The call that failed (socket, setsockopt, the filter) with the kernel's error.
pub(crate) fn open_dns_tap() -> io::Result<OwnedFd> {
    let ctx = |what: &'static str| move |e: nix::errno::Errno| io::Error::new(io::Error::from(e).kind(), format!("{what}: {e}"));
    let fd = socket::socket(AddressFamily::Packet, SockType::Datagram, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, SockProtocol::EthAll)
        .map_err(ctx("socket(AF_PACKET, SOCK_DGRAM, ETH_P_ALL)"))?;
    let filter: Vec<socket2::SockFilter> = FILTER.iter().map(|&(code, jt, jf, k)| socket2::SockFilter::new(code, jt, jf, k)).collect();
    socket2::SockRef::from(&fd).attach_filter(&filter).map_err(|e| io::Error::new(e.kind(), format!("attach the port-53 filter (SO_ATTACH_FILTER): {e}")))?;
    // Packets that arrived between socket() and the filter went in unfiltered: the reader checks
    // every packet again (outgoing, port 53), so they are harmless.
    if socket::setsockopt(&fd, sockopt::RcvBufForce, &RCVBUF).is_err() {
        socket::setsockopt(&fd, sockopt::RcvBuf, &RCVBUF).map_err(ctx("setsockopt(SO_RCVBUF)"))?;
    }
    socket::setsockopt(&fd, sockopt::ReceiveTimestampns, &true).map_err(ctx("setsockopt(SO_TIMESTAMPNS)"))?;
    socket::setsockopt(&fd, sockopt::RxqOvfl, &1).map_err(ctx("setsockopt(SO_RXQ_OVFL)"))?;
    Ok(fd)
}

/// Reads the next queued outgoing packet; `Ok(None)` when the queue is empty. Packets that are
/// not outgoing (queued before the filter was attached) are skipped.
///
/// # Errors
/// The kernel's error other than EAGAIN/EINTR.
pub(crate) fn read_packet(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<Packet>> {
    loop {
        let Some(f) = read_frame(fd, buf, "the DNS tap")? else { return Ok(None) };
        if f.pkttype != PACKET_OUTGOING {
            continue;
        }
        return Ok(Some(Packet { data: buf[..f.len].into(), stamp: f.stamp, dropped: f.dropped }));
    }
}

/// What [`read_frame`] received: the frame is `buf[..len]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    /// Bytes in the buffer.
    pub(crate) len: usize,
    /// The kernel's receive time stamp (CLOCK_REALTIME), when it gave one.
    pub(crate) stamp: Option<SystemTime>,
    /// Frames the kernel dropped on this socket so far, when it says.
    pub(crate) dropped: Option<u32>,
    /// `sll_pkttype`: PACKET_OUTGOING for a frame the interface sent.
    pub(crate) pkttype: u8,
    /// The frame's length on the wire (more than `len` when the buffer was too small).
    pub(crate) wire_len: usize,
    /// The interface the frame was seen on.
    pub(crate) ifindex: i32,
}

/// Reads the next queued frame of a packet socket into `buf`; `Ok(None)` when the queue is empty.
///
/// # Errors
/// The kernel's error other than EAGAIN/EINTR, naming `what`.
pub(crate) fn read_frame(fd: &OwnedFd, buf: &mut [u8], what: &str) -> io::Result<Option<Frame>> {
    let cap = buf.len();
    loop {
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec, u32);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = match socket::recvmsg::<LinkAddr>(fd.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC) {
            Ok(m) => m,
            Err(nix::errno::Errno::EAGAIN) => return Ok(None),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::new(io::Error::from(e).kind(), format!("recvmsg on {what}: {e}"))),
        };
        let (mut stamp, mut dropped) = (None, None);
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::ScmTimestampns(ts) => {
                        stamp = Some(UNIX_EPOCH + Duration::new(ts.tv_sec().max(0) as u64, ts.tv_nsec().clamp(0, 999_999_999) as u32));
                    }
                    ControlMessageOwned::RxqOvfl(n) => dropped = Some(n),
                    _ => {}
                }
            }
        }
        let Some(addr) = msg.address else { continue };
        let len = msg.bytes.min(cap);
        return Ok(Some(Frame { len, stamp, dropped, pkttype: addr.pkttype(), wire_len: msg.bytes, ifindex: addr.ifindex() as i32 }));
    }
}

/// The link capture's ring: 32 blocks of 128 KiB (4 MiB). A block holds the largest frame a
/// veth hands over whole (a 64 KiB GSO segment of a TCP stream). The kernel hands a block
/// over when it is full or [`CAPTURE_RETIRE_MS`] after it got its first frame, so at a low
/// rate each block holds a few ms of frames and the ring ~130 ms: how long the reader may be
/// off the CPU before the kernel drops frames (counted); at the 120k frames/s of a DNS flood
/// through two captured links (~22 MB/s in the ring) blocks fill to ~90 KB, ~200 ms in all.
/// More blocks of the same size would be more kernel memory per lab (allocated and zeroed
/// when the lab is built, by a thread of its own).
const CAPTURE_BLOCK: usize = 128 << 10;
const CAPTURE_BLOCKS: usize = 32;

/// How long the kernel keeps a block that is not full before handing it over: how late a live
/// stream shows a frame, and how long [`crate::lab::capture::LinkCapture::settle`] waits at
/// most for the last frames.
pub(crate) const CAPTURE_RETIRE_MS: u32 = 4;

/// How much the kernel may queue for the link capture's first socket (read by one recvmsg per
/// frame until the ring is bound) before it drops frames (counted).
const CAPTURE_RCVBUF: usize = 8 << 20;

/// Opens the link capture's first socket in the calling thread's network namespace (a thread
/// that has entered the lab's switch namespace): every frame of every interface there, both
/// directions, from its link-layer header, with the kernel's time stamp, queued until read
/// with [`read_frame`]. Receiving from the start, without the ring's RCU grace period: it
/// covers the lab's first milliseconds while the ring ([`open_link_capture`]) is set up beside
/// it. Non-blocking.
///
/// # Errors
/// The call that failed (socket, setsockopt) with the kernel's error.
pub(crate) fn open_link_capture_queue() -> io::Result<OwnedFd> {
    let ctx = |what: &'static str| move |e: nix::errno::Errno| io::Error::new(io::Error::from(e).kind(), format!("{what}: {e}"));
    let fd = socket::socket(AddressFamily::Packet, SockType::Raw, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, SockProtocol::EthAll)
        .map_err(ctx("socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)"))?;
    if socket::setsockopt(&fd, sockopt::RcvBufForce, &CAPTURE_RCVBUF).is_err() {
        socket::setsockopt(&fd, sockopt::RcvBuf, &CAPTURE_RCVBUF).map_err(ctx("setsockopt(SO_RCVBUF)"))?;
    }
    socket::setsockopt(&fd, sockopt::ReceiveTimestampns, &true).map_err(ctx("setsockopt(SO_TIMESTAMPNS)"))?;
    socket::setsockopt(&fd, sockopt::RxqOvfl, &1).map_err(ctx("setsockopt(SO_RXQ_OVFL)"))?;
    Ok(fd)
}

/// Opens the link capture's socket in the calling thread's network namespace (a thread that
/// has entered the lab's switch namespace). It receives nothing until [`arm_link_capture`].
///
/// # Errors
/// socket(2)'s error.
pub(crate) fn open_link_capture() -> io::Result<OwnedFd> {
    // Protocol 0: nothing is received until the ring is set up and the socket bound.
    socket::socket(AddressFamily::Packet, SockType::Raw, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("socket(AF_PACKET, SOCK_RAW, 0): {e}")))
}

/// Gives the link capture's socket its TPACKET_V3 ring and binds it: from then on it receives
/// every frame of every interface of its namespace, both directions, from its link-layer
/// header, with the kernel's time stamp (one wake-up per block of frames instead of one system
/// call per frame). Any thread: the socket stays in its namespace. Takes an RCU grace period
/// (the kernel's setsockopt(PACKET_RX_RING) waits for one, ~10 ms): call it off timed paths.
///
/// # Errors
/// The call that failed (setsockopt, mmap, bind) with the kernel's error.
pub(crate) fn arm_link_capture(fd: OwnedFd) -> io::Result<PacketRing> {
    PacketRing::new(fd, CAPTURE_BLOCK, CAPTURE_BLOCKS, CAPTURE_RETIRE_MS)
}
