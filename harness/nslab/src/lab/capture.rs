//! Packet capture of every lab link, seen from the switch: AF_PACKET sockets in the switch
//! namespace (opened when the namespace is made, receiving from then on: a plain socket first,
//! then, once its ring is set up off the build's path, a memory-mapped one: see
//! `CaptureSocket`) receive every frame of
//! every bridge port, both directions, with the kernel's time stamp, into a memory-mapped
//! TPACKET_V3 ring (the kernel copies each frame once and wakes the reader once per block of
//! frames: a full block, or within a few ms of its first frame); one thread copies them into
//! a byte ring per link (the last [`LabBuilder::capture_ring`](crate::lab::build::LabBuilder::capture_ring)
//! bytes of frames, back to back: no allocation per frame) and hands each frame to the live
//! streams ([`Lab::capture`](crate::lab::build::Lab::capture)).
//!
//! Both directions of each port are needed: a frame between two hosts is seen as it enters
//! the bridge from one host's link and as it leaves on the other's, and each link's interface
//! block shows what its host sent and received. Which ports a frame leaves on is the bridge's
//! decision (its forwarding table, floods): the reader cannot derive the second copy from the
//! first.
//! At teardown of a lab whose artifacts stay, the rings become `capture.pcapng` in the
//! artifacts: one interface block per link, named after the host (`host@segment` in a routed
//! lab), nanosecond time stamps. The bridges' own frames are not kept: every frame of a link is
//! on its port.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::poll::PollTimeout;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;

use crate::os::packet;
use crate::sys::{PacketRing, RingFrame};

/// The artifact's file name.
pub const CAPTURE_FILE: &str = "capture.pcapng";

/// The ring of each link when nothing else is asked: 8 MiB, everything of a typical trial.
pub const DEFAULT_RING_BYTES: usize = 8 << 20;

/// The environment variable that sets the ring of each link in MiB (`0`: no capture).
pub const RING_ENV: &str = "NSLAB_CAPTURE_MB";

/// The ring size the environment asks for: `Some(0)` for off, `None` when unset or unreadable.
pub fn ring_from_env() -> Option<usize> {
    let v = std::env::var(RING_ENV).ok()?;
    match v.trim().parse::<usize>() {
        Ok(mb) => Some(mb << 20),
        Err(_) => {
            tracing::warn!(value = %v, "{RING_ENV}: expected a whole number of MiB; ignored");
            None
        }
    }
}

/// One captured frame.
#[derive(Debug, Clone)]
pub struct CapturedFrame {
    /// The kernel's time stamp (CLOCK_REALTIME).
    pub stamp: SystemTime,
    /// Its length on the wire.
    pub wire_len: u32,
    /// From the Ethernet header on.
    pub data: Arc<[u8]>,
}

impl CapturedFrame {
    fn new(stamp_ns: u64, wire_len: u32, data: &[u8]) -> CapturedFrame {
        CapturedFrame { stamp: UNIX_EPOCH + Duration::from_nanos(stamp_ns), wire_len, data: data.into() }
    }
}

/// One link's ring: the last frames whose bytes fit its bound.
struct Ring {
    name: String,
    ifindex: i32,
    /// The kept frames' bytes, oldest first, back to back.
    data: VecDeque<u8>,
    /// The kept frames, oldest first (each one's bytes follow the previous one's in `data`).
    frames: VecDeque<Meta>,
    /// Frames pushed out of the ring by newer ones.
    evicted: u64,
    /// The first TCP SYN (without ACK) and the first DNS query the host sent on this link.
    first_syn: Option<SystemTime>,
    first_dns: Option<SystemTime>,
}

/// A kept frame: its kernel time stamp (ns since the epoch), its length on the wire, and how
/// many of its bytes are kept.
#[derive(Debug, Clone, Copy)]
struct Meta {
    stamp_ns: u64,
    wire_len: u32,
    len: u32,
}

impl Ring {
    fn new(name: String, ifindex: i32) -> Ring {
        Ring { name, ifindex, data: VecDeque::new(), frames: VecDeque::new(), evicted: 0, first_syn: None, first_dns: None }
    }

    /// Keeps a frame, pushing out the oldest ones until the ring's bytes stay within `bound`
    /// (a frame larger than the bound pushes out everything, itself included).
    fn push(&mut self, bound: usize, stamp_ns: u64, wire_len: u32, data: &[u8]) {
        if data.len() > bound {
            self.evicted += self.frames.len() as u64 + 1;
            self.frames.clear();
            self.data.clear();
            return;
        }
        while self.data.len() + data.len() > bound {
            let Some(old) = self.frames.pop_front() else { break };
            self.data.drain(..old.len as usize);
            self.evicted += 1;
        }
        self.data.extend(data);
        self.frames.push_back(Meta { stamp_ns, wire_len, len: data.len() as u32 });
    }

    /// The kept frames with their bytes, oldest first.
    fn iter(&mut self) -> impl Iterator<Item = (Meta, &[u8])> {
        let data: &[u8] = self.data.make_contiguous();
        let mut at = 0;
        self.frames.iter().map(move |m| {
            let bytes = &data[at..at + m.len as usize];
            at += m.len as usize;
            (*m, bytes)
        })
    }
}

/// A live stream's end: the links it wants (indices) and its channel.
struct Subscriber {
    id: u64,
    links: Vec<usize>,
    tx: mpsc::Sender<(usize, CapturedFrame)>,
}

#[derive(Default)]
struct State {
    rings: Vec<Ring>,
    subscribers: Vec<Subscriber>,
    next_id: u64,
    settle: Vec<tokio::sync::oneshot::Sender<()>>,
    /// Asked to stop; `true`: after the frames in flight are read (see [`LinkCapture::stop`]).
    stop: Option<bool>,
    /// The kernel's count of frames the socket's full queue dropped.
    dropped: u64,
}

/// The running capture of a lab's links; see the module docs. Stopped (its last frames read)
/// at the lab's teardown or by its drop.
pub struct LinkCapture {
    state: Arc<Mutex<State>>,
    wake: super::wakeup::Wake,
    thread: Option<std::thread::JoinHandle<()>>,
    ring_bytes: usize,
}

impl std::fmt::Debug for LinkCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkCapture").field("links", &self.links()).field("ring_bytes", &self.ring_bytes).finish()
    }
}

impl LinkCapture {
    /// Opens the capture's sockets in the calling thread's namespace (a thread that has
    /// entered the switch's): a plain packet socket that receives from now on, and the ring's
    /// socket, whose ring a thread of its own sets up (the kernel waits for an RCU grace period,
    /// ~10 ms, see [`packet::arm_link_capture`]). Neither the build nor [`LinkCapture::start`]
    /// waits for the ring: the reader reads the plain socket until the ring is bound, then
    /// switches at a cut in time (see [`CaptureSocket`]).
    ///
    /// # Errors
    /// The call that failed, with the kernel's error.
    pub(crate) fn open_here() -> io::Result<CaptureSocket> {
        let queue = packet::open_link_capture_queue()?;
        let fd = packet::open_link_capture()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new().name("nslab-capture-ring".into()).spawn(move || {
            let armed = packet::arm_link_capture(fd).map(|ring| (ring, realtime_ns() + SWITCH_MARGIN_NS));
            // A ring nobody waits for any more (the build failed) is closed here, off its path.
            let _ = tx.send(armed);
        })?;
        Ok(CaptureSocket { queue, ring: rx })
    }

    /// Starts the reader over `socket` (opened by [`LinkCapture::open_here`]) for the links
    /// `(name, ifindex in the switch namespace)`, each with a ring of `ring_bytes`.
    ///
    /// # Errors
    /// When the wake-up pipe or the thread cannot be made.
    pub(crate) fn start(socket: CaptureSocket, links: Vec<(String, i32)>, ring_bytes: usize) -> io::Result<LinkCapture> {
        let rings = links.into_iter().map(|(name, ifindex)| Ring::new(name, ifindex)).collect();
        let state = Arc::new(Mutex::new(State { rings, ..State::default() }));
        let (wake, wait) = super::wakeup::pair()?;
        let reader = Reader {
            socket: Some(socket),
            state: state.clone(),
            wake: wait,
            ring_bytes,
            cut_ns: 0,
            recent: VecDeque::new(),
            taken: std::collections::HashSet::new(),
        };
        let thread = std::thread::Builder::new().name("nslab-capture".into()).spawn(move || reader.run())?;
        Ok(LinkCapture { state, wake, thread: Some(thread), ring_bytes })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ask(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.wake.wake();
    }

    /// The links' names, in interface-block order.
    pub fn links(&self) -> Vec<String> {
        self.lock().rings.iter().map(|r| r.name.clone()).collect()
    }

    /// Each link's ring bound in bytes of frames.
    pub fn ring_bytes(&self) -> usize {
        self.ring_bytes
    }

    /// Per link, the first TCP connection attempt (SYN without ACK) and the first DNS query
    /// (to port 53, UDP or TCP) its host sent, by the kernel's clock, whether or not the ring
    /// still holds them: `(link, first SYN, first DNS query)`.
    pub fn firsts(&self) -> Vec<(String, Option<SystemTime>, Option<SystemTime>)> {
        self.lock().rings.iter().map(|r| (r.name.clone(), r.first_syn, r.first_dns)).collect()
    }

    /// Frames the kernel dropped (the socket's queue was full) and frames the rings pushed out.
    pub fn losses(&self) -> (u64, u64) {
        let s = self.lock();
        (s.dropped, s.rings.iter().map(|r| r.evicted).sum())
    }

    /// Returns once every frame the links carried before the call is in the rings (and sent
    /// to the live streams): at once when the kernel holds none of them, else when it hands
    /// over the block it is filling, within a few ms (its retire timeout).
    pub async fn settle(&self) {
        if self.thread.is_none() {
            return;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.ask(|s| s.settle.push(tx));
        let _ = rx.await;
    }

    /// The link indices named by `names` (a host's name selects all its links, `host@segment`
    /// one of them); all links when `names` is empty.
    ///
    /// # Errors
    /// The first name that matches no link, with the links there are.
    pub fn select(&self, names: &[&str]) -> Result<Vec<usize>, String> {
        let s = self.lock();
        if names.is_empty() {
            return Ok((0..s.rings.len()).collect());
        }
        let mut out = Vec::new();
        for n in names {
            let hit: Vec<usize> = s.rings.iter().enumerate().filter(|(_, r)| r.name == *n || r.name.split('@').next() == Some(n)).map(|(i, _)| i).collect();
            if hit.is_empty() {
                let known: Vec<&str> = s.rings.iter().map(|r| r.name.as_str()).collect();
                return Err(format!("no lab link named {n:?}; the links are {}", known.join(", ")));
            }
            out.extend(hit.into_iter().filter(|i| !out.contains(i)).collect::<Vec<_>>());
        }
        Ok(out)
    }

    /// Writes the rings as pcapng to `w`: one interface block per link, then every frame in
    /// time order. Returns the number of frames written.
    ///
    /// # Errors
    /// The writer's error.
    pub fn write_pcapng<W: Write>(&self, w: W) -> io::Result<u64> {
        let mut s = self.lock();
        let names: Vec<String> = s.rings.iter().map(|r| r.name.clone()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut out = PcapWriter::new(w, &names)?;
        let mut all: Vec<(u32, Meta, &[u8])> = s.rings.iter_mut().enumerate().flat_map(|(i, r)| r.iter().map(move |(m, d)| (i as u32, m, d))).collect();
        // Stable: a link's frames with the same stamp keep their order.
        all.sort_by_key(|(_, m, _)| m.stamp_ns);
        for (i, m, d) in &all {
            out.frame(*i, Duration::from_nanos(m.stamp_ns), m.wire_len, d)?;
        }
        out.finish()?;
        Ok(all.len() as u64)
    }

    /// Streams the frames of the links `links` (indices from [`LinkCapture::select`]) from now
    /// on as pcapng to `w`, flushed after each frame, from a thread of its own; the stream ends
    /// when the capture stops, the writer fails (a closed pipe) or [`CaptureStream::stop`].
    ///
    /// # Errors
    /// When the first blocks cannot be written or the thread cannot be made.
    pub fn stream<W: Write + Send + 'static>(&self, links: Vec<usize>, w: W) -> io::Result<CaptureStream> {
        let (tx, rx) = mpsc::channel();
        let names: Vec<String> = {
            let s = self.lock();
            links.iter().filter_map(|&i| s.rings.get(i).map(|r| r.name.clone())).collect()
        };
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut out = PcapWriter::new(w, &name_refs)?;
        out.flush()?;
        let block_of: Vec<(usize, u32)> = links.iter().enumerate().map(|(b, &l)| (l, b as u32)).collect();
        let id = {
            let mut s = self.lock();
            s.next_id += 1;
            let id = s.next_id;
            s.subscribers.push(Subscriber { id, links, tx });
            id
        };
        let thread = std::thread::Builder::new().name("nslab-capture-stream".into()).spawn(move || -> io::Result<u64> {
            let mut n = 0;
            while let Ok((link, f)) = rx.recv() {
                let Some(&(_, block)) = block_of.iter().find(|(l, _)| *l == link) else { continue };
                out.frame(block, f.stamp.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO), f.wire_len, &f.data)?;
                out.flush()?;
                n += 1;
            }
            out.finish()?;
            Ok(n)
        })?;
        Ok(CaptureStream { id, state: Arc::downgrade(&self.state), thread: Some(thread) })
    }

    /// Reads the blocks the kernel handed over and ends the thread (the socket is closed off
    /// the caller's path: its close waits for an RCU grace period). With `in_flight`, or when
    /// a live stream is attached, first waits for the frames still in the block the kernel is
    /// filling (as [`LinkCapture::settle`]; up to its retire timeout): the capture is to be
    /// saved. Without, those last few ms of frames are not read: nothing would look at them.
    /// Without, the thread is not waited for either: it ends on its own, soon.
    pub(crate) async fn stop(&mut self, in_flight: bool) {
        if let Some(t) = self.thread.take() {
            let mut flush = in_flight;
            self.ask(|s| {
                flush |= !s.subscribers.is_empty();
                s.stop = Some(flush);
            });
            if flush {
                let _ = tokio::task::spawn_blocking(move || t.join()).await;
            }
        }
    }

    /// As [`LinkCapture::stop`] with the frames in flight, blocking (the drop path).
    pub(crate) fn stop_now(&mut self) {
        if let Some(t) = self.thread.take() {
            self.ask(|s| s.stop = Some(true));
            let _ = t.join();
        }
    }

    /// Writes `capture.pcapng` into `dir` (a new file in the checked artifact directory).
    ///
    /// # Errors
    /// As [`crate::os::fsafe::create_artifact`] and the write.
    pub(crate) fn save(&self, dir: &std::path::Path) -> io::Result<()> {
        let path = dir.join(CAPTURE_FILE);
        let file = crate::os::fsafe::create_artifact(&path).map_err(io::Error::other)?;
        let mut w = io::BufWriter::new(file);
        self.write_pcapng(&mut w)?;
        w.flush()
    }
}

impl Drop for LinkCapture {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// A live pcapng stream of some links ([`LinkCapture::stream`]).
#[derive(Debug)]
pub struct CaptureStream {
    id: u64,
    state: std::sync::Weak<Mutex<State>>,
    thread: Option<std::thread::JoinHandle<io::Result<u64>>>,
}

impl CaptureStream {
    /// Whether the stream's thread has ended (the capture stopped or the writer failed).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Ends the stream and returns the number of frames it wrote.
    ///
    /// # Errors
    /// The writer's error that ended it.
    pub fn stop(mut self) -> io::Result<u64> {
        self.detach();
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the capture stream's thread panicked")),
            None => Ok(0),
        }
    }

    /// Removes this stream's subscription: dropping its sender ends the thread's loop.
    fn detach(&mut self) {
        if let Some(state) = self.state.upgrade() {
            state.lock().unwrap_or_else(PoisonError::into_inner).subscribers.retain(|s| s.id != self.id);
        }
    }
}

impl Drop for CaptureStream {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.detach();
        }
    }
}

/// pcapng output: a section, one interface block per link (Ethernet, nanosecond stamps).
struct PcapWriter<W: Write> {
    w: PcapNgWriter<W>,
}

impl<W: Write> PcapWriter<W> {
    fn new(w: W, links: &[&str]) -> io::Result<Self> {
        let mut w = PcapNgWriter::new(w).map_err(pcap_err)?;
        for name in links {
            let idb = InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen: 0,
                options: vec![
                    InterfaceDescriptionOption::IfName((*name).to_string().into()),
                    InterfaceDescriptionOption::IfDescription(format!("nslab lab link of {name}, seen from the switch").into()),
                    InterfaceDescriptionOption::IfTsResol(9),
                ],
            };
            w.write_pcapng_block(idb).map_err(pcap_err)?;
        }
        Ok(PcapWriter { w })
    }

    /// One frame: `timestamp` since the epoch, `original_len` on the wire, `data` what is kept.
    fn frame(&mut self, interface_id: u32, timestamp: Duration, original_len: u32, data: &[u8]) -> io::Result<()> {
        let epb = EnhancedPacketBlock { interface_id, timestamp, original_len, data: std::borrow::Cow::Borrowed(data), options: vec![] };
        self.w.write_pcapng_block(epb).map_err(pcap_err)?;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.get_mut().flush()
    }

    fn finish(mut self) -> io::Result<()> {
        self.flush()
    }
}

fn pcap_err(e: pcap_file::PcapError) -> io::Error {
    match e {
        pcap_file::PcapError::IoError(e) => e,
        e => io::Error::other(e.to_string()),
    }
}

/// The link capture's sockets, opened in the switch namespace by [`LinkCapture::open_here`].
///
/// `queue` receives every frame from the start, one recvmsg per frame; `ring` is the
/// memory-mapped ring, bound once a thread has set it up, with its cut: a time stamp a little
/// after its bind ([`SWITCH_MARGIN_NS`]). Both sockets see the same frames with the same time
/// stamps (the kernel stamps the frame once, before handing it to every packet socket), so the
/// reader takes the frames stamped before the cut from `queue`, which was open all along, and
/// those stamped at or after it from `ring`, which was bound before any of them was stamped:
/// each frame once, none missed. It then closes `queue` off its path.
pub(crate) struct CaptureSocket {
    queue: OwnedFd,
    ring: tokio::sync::oneshot::Receiver<io::Result<(PacketRing, u64)>>,
}

/// How long after the ring's bind its cut is: every frame stamped after the cut was stamped
/// after the bind returned, and so handed to the ring too.
const SWITCH_MARGIN_NS: u64 = 1_000_000;

/// The reader thread's nice value.
const READER_NICE: i32 = 10;

/// CLOCK_REALTIME in ns since the epoch (the clock of the kernel's time stamps).
fn realtime_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

struct Reader {
    socket: Option<CaptureSocket>,
    state: Arc<Mutex<State>>,
    wake: super::wakeup::WakeWait,
    ring_bytes: usize,
    /// Frames stamped before this came from the queue socket: the ring's are skipped.
    cut_ns: u64,
    /// The frames taken from the queue socket before the ring's cut was known, newest last
    /// (at most [`RECENT_MAX`]): `(ifindex, stamp, wire length, packet type)`.
    recent: VecDeque<FrameKey>,
    /// Those of them stamped at or after the cut: the ring's copies are skipped.
    taken: std::collections::HashSet<FrameKey>,
}

/// A frame's identity across the two sockets (the kernel stamps a frame once for both).
type FrameKey = (i32, u64, u32, u8);

/// How many frames taken from the queue socket are remembered until the ring's cut is known.
const RECENT_MAX: usize = 1 << 16;

/// Takes one frame into its link's ring and the live streams that want it.
fn take_frame(rings: &mut [Ring], subscribers: &mut Vec<Subscriber>, bound: usize, f: RingFrame<'_>) {
    let RingFrame { data, wire_len, stamp_ns, ifindex, pkttype } = f;
    // The bridges' own frames (and any other interface's) are not a link's.
    let Some(i) = rings.iter().position(|r| r.ifindex == ifindex) else { return };
    if subscribers.iter().any(|sub| sub.links.contains(&i)) {
        let shared = CapturedFrame::new(stamp_ns, wire_len, data);
        subscribers.retain(|sub| !sub.links.contains(&i) || sub.tx.send((i, shared.clone())).is_ok());
    }
    let r = &mut rings[i];
    // A frame the port did not send came from its host.
    if pkttype != packet::PACKET_OUTGOING && (r.first_syn.is_none() || r.first_dns.is_none()) {
        let stamp = UNIX_EPOCH + Duration::from_nanos(stamp_ns);
        match classify(data) {
            Some(Sent::Syn) => r.first_syn = r.first_syn.or(Some(stamp)),
            Some(Sent::DnsQuery) => r.first_dns = r.first_dns.or(Some(stamp)),
            None => {}
        }
    }
    r.push(bound, stamp_ns, wire_len, data);
}

impl Reader {
    fn run(mut self) {
        // Behind the lab's programs (and nslab's DNS server) for the CPU: the capture must not
        // slow down what it records. When it falls behind, the kernel's queue and ring hold
        // the frames (and count what they drop).
        if let Err(e) = crate::sys::nice_this_thread(READER_NICE) {
            tracing::debug!(error = %e, "link capture: the reader keeps its priority");
        }
        let socket = self.socket.take().expect("set at start");
        let Some(ring) = self.read_queue(socket) else { return };
        self.read_ring(ring);
    }

    /// Reads the queue socket until the ring is bound and its cut has passed (then closes
    /// it off this path and returns the ring), or until asked to stop before (`None`).
    /// Settle requests are answered from the queue alone until the ring is bound, after that
    /// by the ring's reader.
    fn read_queue(&mut self, socket: CaptureSocket) -> Option<PacketRing> {
        let CaptureSocket { queue, ring: mut pending } = socket;
        let mut buf = vec![0u8; 1 << 18];
        let mut armed: Option<(PacketRing, u64)> = None;
        let mut deferred = Vec::new();
        let mut waiting_ring = true;
        loop {
            {
                // While the ring is being set up, a look every 5 ms; past its cut, every ms.
                let timeout = match (&armed, waiting_ring) {
                    (Some(_), _) => PollTimeout::from(1u8),
                    (None, true) => PollTimeout::from(5u8),
                    (None, false) => PollTimeout::NONE,
                };
                if let Err(e) = self.wake.wait(&[queue.as_fd()], timeout) {
                    tracing::warn!(error = %e, "link capture: poll failed; the capture stops");
                    return None;
                }
            }
            let (settle, stop) = {
                let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                (std::mem::take(&mut s.settle), s.stop)
            };
            // The ring first: frames read from the queue before its cut is known are recorded
            // (see `recent`), so none is taken twice.
            if waiting_ring {
                match pending.try_recv() {
                    Ok(Ok(a)) => {
                        armed = Some(a);
                        waiting_ring = false;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "link capture: no ring; the capture goes on reading one frame per call");
                        waiting_ring = false;
                    }
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
                    Err(tokio::sync::oneshot::error::TryRecvError::Closed) => waiting_ring = false,
                }
            }
            let cut = armed.as_ref().map(|(_, c)| *c);
            self.read_queue_frames(&queue, &mut buf, cut);
            match cut {
                // Every frame of a request is in the queue, read: answered.
                None => {
                    for tx in settle {
                        let _ = tx.send(());
                    }
                }
                // Frames stamped after the cut are the ring's: the ring's reader answers.
                Some(_) => deferred.extend(settle),
            }
            if stop.is_some() && armed.is_none() {
                close_off_path(queue);
                let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                s.subscribers.clear();
                for tx in deferred {
                    let _ = tx.send(());
                }
                return None;
            }
            if let Some(c) = cut {
                if realtime_ns() > c + SWITCH_MARGIN_NS {
                    // Every frame stamped before the cut was handed to the queue by now.
                    self.read_queue_frames(&queue, &mut buf, Some(c));
                    close_off_path(queue);
                    let (ring, c) = armed.take().expect("armed");
                    self.cut_ns = c;
                    // Frames the queue gave before the cut was known, stamped at or after it:
                    // the ring has them too (a reader kept off the CPU between the ring's bind
                    // and its answer reads them late).
                    self.taken = std::mem::take(&mut self.recent).into_iter().filter(|k| k.1 >= c).collect();
                    // The deferred requests (and a stop) go to the ring's reader.
                    self.state.lock().unwrap_or_else(PoisonError::into_inner).settle.extend(deferred);
                    return Some(ring);
                }
            }
        }
    }

    /// Reads the queue socket until it is empty, taking the frames stamped before `cut`.
    fn read_queue_frames(&mut self, queue: &OwnedFd, buf: &mut [u8], cut: Option<u64>) {
        let bound = self.ring_bytes;
        loop {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let State { rings, subscribers, dropped, .. } = &mut *s;
            let mut n = 0;
            let mut empty = false;
            // In batches of 64 frames per lock.
            while n < 64 {
                match packet::read_frame(queue, buf, "the link capture") {
                    Ok(Some(f)) => {
                        n += 1;
                        if let Some(d) = f.dropped {
                            *dropped = (*dropped).max(u64::from(d));
                        }
                        let stamp_ns = f.stamp.unwrap_or_else(SystemTime::now).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
                        if cut.is_some_and(|c| stamp_ns >= c) {
                            continue;
                        }
                        if cut.is_none() {
                            if self.recent.len() == RECENT_MAX {
                                self.recent.pop_front();
                            }
                            self.recent.push_back((f.ifindex, stamp_ns, f.wire_len as u32, f.pkttype));
                        }
                        let frame = RingFrame { data: &buf[..f.len], wire_len: f.wire_len as u32, stamp_ns, ifindex: f.ifindex, pkttype: f.pkttype };
                        take_frame(rings, subscribers, bound, frame);
                    }
                    Ok(None) => {
                        empty = true;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "link capture: read failed");
                        empty = true;
                        break;
                    }
                }
            }
            drop(s);
            if empty {
                return;
            }
        }
    }

    /// Reads the ring until asked to stop.
    fn read_ring(mut self, mut ring: PacketRing) {
        // Settle requests waiting for the block with this sequence number (the one the
        // kernel was filling when they were taken) to be read.
        let mut waiting: Vec<(u64, tokio::sync::oneshot::Sender<()>)> = Vec::new();
        let mut stopping: Option<(bool, u64)> = None;
        // Requests handed over by the queue's reader are taken before the first wait.
        let mut first = true;
        loop {
            if !std::mem::take(&mut first) {
                // A re-check while something waits, in case a wake-up was missed; the block's
                // hand-over itself wakes the poll.
                let timeout = if waiting.is_empty() && stopping.is_none() { PollTimeout::NONE } else { PollTimeout::from(50u8) };
                if let Err(e) = self.wake.wait(&[ring.fd()], timeout) {
                    tracing::warn!(error = %e, "link capture: poll failed; the capture stops");
                    return;
                }
            } else {
                self.wake.drain();
            }
            let (settle, stop) = {
                let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                (std::mem::take(&mut s.settle), s.stop)
            };
            self.read_blocks(&mut ring);
            // Every frame of a request taken above is in a block read already or in the one
            // the kernel is filling now (or, if it was handed over meanwhile, the next to read).
            let now = ring.blocks_read();
            waiting.extend(settle.into_iter().map(|tx| (now, tx)));
            if let (Some(flush), None) = (stop, stopping) {
                stopping = Some((flush, now));
            }
            // Its frames are read once that block is, or when the kernel's block is empty (a
            // count only grows until the block is handed over).
            let pending = ring.frames_pending();
            let done = |target: u64| !pending || ring.blocks_read() > target;
            let ready;
            (ready, waiting) = std::mem::take(&mut waiting).into_iter().partition(|(t, _)| done(*t));
            for (_, tx) in ready {
                let _ = tx.send(());
            }
            if let Some((flush, target)) = stopping {
                if !flush || done(target) {
                    self.take_drops(&ring);
                    // munmap and close(2) of a packet socket (which waits for an RCU grace
                    // period) off the teardown's path.
                    close_off_path(ring);
                    let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                    s.subscribers.clear();
                    // Whoever still waits gets an answer: the capture is over.
                    for (_, tx) in waiting {
                        let _ = tx.send(());
                    }
                    return;
                }
            }
        }
    }

    /// Adds the kernel's count of frames dropped since the last call.
    fn take_drops(&self, ring: &PacketRing) {
        match ring.take_drops() {
            Ok(n) => self.state.lock().unwrap_or_else(PoisonError::into_inner).dropped += u64::from(n),
            Err(e) => tracing::debug!(error = %e, "link capture: no drop count"),
        }
    }

    /// Reads every block the kernel handed over, into the rings and the live streams (the
    /// lock is taken per block).
    fn read_blocks(&mut self, ring: &mut PacketRing) {
        let mut losing = false;
        let cut = self.cut_ns;
        let taken = &mut self.taken;
        loop {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let State { rings, subscribers, .. } = &mut *s;
            let bound = self.ring_bytes;
            let got = ring.next_block(|f| {
                // Frames stamped before the cut were taken from the queue socket.
                if f.stamp_ns < cut || (!taken.is_empty() && taken.remove(&(f.ifindex, f.stamp_ns, f.wire_len, f.pkttype))) {
                    return;
                }
                take_frame(rings, subscribers, bound, f);
            });
            drop(s);
            match got {
                Some(l) => losing |= l,
                None => break,
            }
        }
        if losing {
            self.take_drops(ring);
        }
    }
}

/// Drops `x` (a socket: its close(2) waits for an RCU grace period) on a thread of its own.
fn close_off_path<T: Send + 'static>(x: T) {
    if let Err(e) = std::thread::Builder::new().name("nslab-capture-close".into()).spawn(move || drop(x)) {
        tracing::debug!(error = %e, "link capture: no thread to close the socket");
    }
}

/// What a frame a host sent is, for [`LinkCapture::firsts`].
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    Syn,
    DnsQuery,
}

/// Reads an Ethernet frame far enough to tell a TCP SYN (no ACK) or a DNS query (UDP or TCP to
/// port 53; for TCP, the first segment with data). IPv4 (first fragment) and IPv6 without
/// extension headers.
fn classify(frame: &[u8]) -> Option<Sent> {
    let ethertype = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
    let ip = frame.get(14..)?;
    let (proto, l4) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let frag = u16::from_be_bytes(ip.get(6..8)?.try_into().ok()?) & 0x1fff;
            if frag != 0 {
                return None;
            }
            (*ip.get(9)?, ip.get(ihl..)?)
        }
        0x86dd => (*ip.get(6)?, ip.get(40..)?),
        _ => return None,
    };
    let dport = u16::from_be_bytes(l4.get(2..4)?.try_into().ok()?);
    match proto {
        17 if dport == 53 => Some(Sent::DnsQuery),
        6 => {
            let flags = *l4.get(13)?;
            let data_off = usize::from(l4.get(12)? >> 4) * 4;
            if flags & 0x12 == 0x02 {
                Some(Sent::Syn)
            } else if dport == 53 && l4.len() > data_off {
                Some(Sent::DnsQuery)
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame with an IPv4 header (protocol `proto`) and `l4` after it.
    fn v4(proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend([0x08, 0x00, 0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
        f.extend(l4);
        f
    }

    /// A TCP header to `dport` with `flags`, and `data`.
    fn tcp(dport: u16, flags: u8, data: &[u8]) -> Vec<u8> {
        let mut h = vec![0x9c, 0x40];
        h.extend(dport.to_be_bytes());
        h.extend([0; 8]);
        h.extend([0x50, flags, 0, 0, 0, 0, 0, 0]);
        h.extend(data);
        h
    }

    #[test]
    fn frames_a_host_sent_are_told_apart_syn_and_dns_query() {
        assert_eq!(classify(&v4(6, &tcp(8080, 0x02, &[]))), Some(Sent::Syn));
        assert_eq!(classify(&v4(6, &tcp(8080, 0x12, &[]))), None, "a SYN-ACK is an answer");
        assert_eq!(classify(&v4(6, &tcp(8080, 0x10, &[]))), None);
        assert_eq!(classify(&v4(17, &[0x9c, 0x40, 0, 53, 0, 8, 0, 0])), Some(Sent::DnsQuery));
        assert_eq!(classify(&v4(17, &[0, 53, 0x9c, 0x40, 0, 8, 0, 0])), None, "from port 53: an answer");
        assert_eq!(classify(&v4(6, &tcp(53, 0x18, &[0, 30]))), Some(Sent::DnsQuery), "DNS over TCP: the first segment with data");
        assert_eq!(classify(&v4(6, &tcp(53, 0x10, &[]))), None, "a bare ACK to port 53");
        let mut v6 = vec![0u8; 12];
        v6.extend([0x86, 0xdd, 0x60, 0, 0, 0, 0, 20, 6, 64]);
        v6.extend([0u8; 32]);
        v6.extend(tcp(443, 0x02, &[]));
        assert_eq!(classify(&v6), Some(Sent::Syn));
        assert_eq!(classify(&[0u8; 10]), None, "short frames are nothing");
    }

    #[test]
    fn a_link_ring_keeps_the_last_frames_within_its_bytes_and_their_wire_lengths() {
        let mut r = Ring::new("web".into(), 3);
        for i in 0..10u8 {
            r.push(250, u64::from(i), 1000 + u32::from(i), &[i; 60]);
        }
        // 250 bytes hold four frames of 60: the last four, in order, each with its own bytes.
        let kept: Vec<(u64, u32, Vec<u8>)> = r.iter().map(|(m, d)| (m.stamp_ns, m.wire_len, d.to_vec())).collect();
        assert_eq!(kept, (6..10u8).map(|i| (u64::from(i), 1000 + u32::from(i), vec![i; 60])).collect::<Vec<_>>());
        assert_eq!((r.evicted, r.data.len()), (6, 240));
        r.push(250, 10, 300, &[0xee; 251]);
        assert_eq!((r.evicted, r.frames.len(), r.data.len()), (11, 0, 0), "a frame larger than the ring pushes out everything, itself included");
    }

    #[test]
    fn pcapng_has_one_named_interface_block_per_link_and_nanosecond_stamps() {
        let mut buf = Vec::new();
        let mut w = PcapWriter::new(&mut buf, &["web", "db@lan"]).unwrap();
        // A frame cut short (larger than a ring block) keeps its length on the wire.
        w.frame(1, Duration::new(1_700_000_000, 123_456_789), 9000, &[0xab; 60]).unwrap();
        w.finish().unwrap();
        let mut r = pcap_file::pcapng::PcapNgReader::new(&buf[..]).unwrap();
        let mut packets = Vec::new();
        while let Some(b) = r.next_block() {
            if let pcap_file::pcapng::Block::EnhancedPacket(p) = b.unwrap() {
                packets.push((p.interface_id, p.timestamp, p.data.len(), p.original_len));
            }
        }
        let names: Vec<String> = r
            .interfaces()
            .iter()
            .flat_map(|i| i.options.iter())
            .filter_map(|o| match o {
                InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(r.interfaces().len(), 2);
        assert_eq!(names, ["web", "db@lan"]);
        assert_eq!(packets, [(1, Duration::new(1_700_000_000, 123_456_789), 60, 9000)]);
    }
}
