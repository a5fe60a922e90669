//! The lab's DNS traffic log: every DNS packet any lab host sent (client -> local cache,
//! cache -> resolver, resolver -> authoritative server, and the answers back), decoded, with
//! who sent it to whom, in lab time. The packets come from the tap (`lab/tap.rs`); this module
//! only decodes and keeps them.

use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use hickory_proto::{
    op::{Message, MessageType, ResponseCode},
    rr::{Record, RecordType},
};
use serde::{Serialize, Serializer};

use super::{
    error::LogError,
    log::{rcode_name, Transport},
};

fn micros<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn opt_micros<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => micros(d, s),
        None => s.serialize_none(),
    }
}

fn opt_text<T: fmt::Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

fn rcode_text<S: Serializer>(rcode: &Option<ResponseCode>, s: S) -> Result<S::Ok, S::Error> {
    match rcode {
        Some(r) => s.serialize_str(&rcode_name(*r)),
        None => s.serialize_none(),
    }
}

/// One answer-section record of a response, as it went over the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WireAnswer {
    /// Owner name, absolute (trailing dot).
    pub name: String,
    /// Record type (`A`, `CNAME`, ...).
    #[serde(rename = "type")]
    pub rtype: String,
    /// Time to live it carried, seconds.
    pub ttl: u32,
    /// The data in presentation format.
    pub data: String,
}

impl WireAnswer {
    fn from_record(r: &Record) -> Self {
        WireAnswer { name: r.name.to_string(), rtype: r.record_type().to_string(), ttl: r.ttl, data: r.data.to_string() }
    }
}

/// `name ttl IN type data`, as dig prints a record.
impl fmt::Display for WireAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} IN {} {}", self.name, self.ttl, self.rtype, self.data)
    }
}

/// One DNS message a lab host sent, as the tap saw it leave.
///
/// JSON (one line each in `dns-traffic.jsonl`): `at_us` and `query_at_us` in microseconds of lab
/// time, `qtype` and `rcode` as text, `answers` as objects `{name, type, ttl, data}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrafficEntry {
    /// When it left the host (the kernel's time stamp), since the lab's epoch (JSON `at_us`).
    #[serde(rename = "at_us", serialize_with = "micros")]
    pub at: Duration,
    /// The lab host that sent it.
    pub host: String,
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// The lab host the destination address belongs to (`None` for an address no lab host has).
    /// A loopback destination is the sending host itself.
    pub to_host: Option<String>,
    /// UDP or TCP.
    pub transport: Transport,
    /// Whether the sender forwarded it rather than made it (its source address is not one of the
    /// sender's: a router, the NAT64 host).
    pub forwarded: bool,
    /// DNS message id.
    pub id: u16,
    /// Whether it is a response (QR bit set).
    pub response: bool,
    /// Question name, absolute, lower case; empty without a question.
    pub name: String,
    /// Question type.
    #[serde(serialize_with = "opt_text")]
    pub qtype: Option<RecordType>,
    /// Response code (responses only).
    #[serde(serialize_with = "rcode_text")]
    pub rcode: Option<ResponseCode>,
    /// Whether the TC bit was set.
    pub truncated: bool,
    /// Answer-section records (responses only).
    pub answers: Vec<WireAnswer>,
    /// For a response: when the query it answers left its sender (same endpoints reversed,
    /// same transport and id, the latest such query before it). JSON `query_at_us`.
    #[serde(rename = "query_at_us", serialize_with = "opt_micros")]
    pub query_at: Option<Duration>,
}

impl TrafficEntry {
    /// The response code's mnemonic (`NOERROR`, ...), `-` for a query.
    pub fn rcode_name(&self) -> String {
        self.rcode.map_or_else(|| "-".to_string(), |r| rcode_name(r).into_owned())
    }

    /// The smallest TTL among the answers, if any.
    pub fn min_ttl(&self) -> Option<u32> {
        self.answers.iter().map(|a| a.ttl).min()
    }
}

/// One line: `1.234567s client 192.0.2.3:4000 -> 192.0.2.53:53 (dns) udp query app.example.test. A`,
/// responses with their rcode and answers.
impl fmt::Display for TrafficEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let to = self.to_host.as_deref().map(|h| format!(" ({h})")).unwrap_or_default();
        let qtype = self.qtype.map(|t| t.to_string()).unwrap_or_default();
        write!(f, "{:.6}s {} {} -> {}{to} {} ", self.at.as_secs_f64(), self.host, self.src, self.dst, self.transport)?;
        if self.response {
            write!(f, "response {} {qtype} {}", self.name, self.rcode_name())?;
            if !self.answers.is_empty() {
                let a: Vec<String> = self.answers.iter().map(ToString::to_string).collect();
                write!(f, " [{}]", a.join(", "))?;
            }
            Ok(())
        } else {
            write!(f, "query {} {qtype}", self.name)
        }
    }
}

/// What the tap knows about the lab: which host has which address.
#[derive(Debug, Clone, Default)]
pub struct AddressBook {
    by_addr: HashMap<IpAddr, String>,
}

impl AddressBook {
    /// A book from (host, its addresses) pairs.
    pub fn new<'a>(hosts: impl IntoIterator<Item = (&'a str, Vec<IpAddr>)>) -> Self {
        let mut by_addr = HashMap::new();
        for (h, addrs) in hosts {
            for a in addrs {
                by_addr.insert(a, h.to_string());
            }
        }
        AddressBook { by_addr }
    }

    /// The host that has `ip`; a loopback address is `sender`'s own.
    pub fn host_of(&self, ip: IpAddr, sender: &str) -> Option<String> {
        if ip.is_loopback() || ip.to_canonical().is_loopback() {
            return Some(sender.to_string());
        }
        self.by_addr.get(&ip).cloned()
    }
}

/// The addresses, transport and DNS payloads of one IP packet; `None` when it is not a UDP or
/// TCP packet from or to port 53 with at least one whole DNS message (a TCP segment without
/// data, a fragment, a message cut across segments).
pub fn decode_packet(data: &[u8]) -> Option<(SocketAddr, SocketAddr, Transport, Vec<Message>)> {
    let version = data.first()? >> 4;
    let (src_ip, dst_ip, proto, l4): (IpAddr, IpAddr, u8, &[u8]) = match version {
        4 => {
            let ihl = usize::from(data[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*data.get(2)?, *data.get(3)?]));
            let frag = u16::from_be_bytes([*data.get(6)?, *data.get(7)?]);
            // More fragments, or not the first: not a whole message.
            if frag & 0x3fff != 0 || ihl < 20 {
                return None;
            }
            let src = Ipv4Addr::new(data[12], data[13], data[14], data[15]);
            let dst = Ipv4Addr::new(*data.get(16)?, data[17], data[18], data[19]);
            (src.into(), dst.into(), data[9], data.get(ihl..total.min(data.len()))?)
        }
        6 => {
            let plen = usize::from(u16::from_be_bytes([*data.get(4)?, *data.get(5)?]));
            let src: [u8; 16] = data.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = data.get(24..40)?.try_into().ok()?;
            (Ipv6Addr::from(src).into(), Ipv6Addr::from(dst).into(), data[6], data.get(40..(40 + plen).min(data.len()))?)
        }
        _ => return None,
    };
    let port = |at: usize| Some(u16::from_be_bytes([*l4.get(at)?, *l4.get(at + 1)?]));
    let (sp, dp) = (port(0)?, port(2)?);
    if sp != 53 && dp != 53 {
        return None;
    }
    let (transport, messages) = match proto {
        17 => (Transport::Udp, vec![Message::from_vec(l4.get(8..)?).ok()?]),
        6 => {
            let off = usize::from(l4.get(12)? >> 4) * 4;
            let mut payload = l4.get(off..)?;
            let mut msgs = Vec::new();
            // DNS over TCP: each message behind its two-byte length.
            while payload.len() >= 2 {
                let len = usize::from(u16::from_be_bytes([payload[0], payload[1]]));
                let Some(m) = payload.get(2..2 + len) else { break };
                msgs.push(Message::from_vec(m).ok()?);
                payload = &payload[2 + len..];
            }
            if msgs.is_empty() {
                return None;
            }
            (Transport::Tcp, msgs)
        }
        _ => return None,
    };
    Some((SocketAddr::new(src_ip, sp), SocketAddr::new(dst_ip, dp), transport, messages))
}

/// The entries of the DNS messages in one packet `host` sent at `at`.
pub fn entries_of(at: Duration, host: &str, own: &[IpAddr], book: &AddressBook, data: &[u8]) -> Vec<TrafficEntry> {
    let Some((src, dst, transport, msgs)) = decode_packet(data) else { return Vec::new() };
    let forwarded = !(src.ip().is_loopback() || src.ip().to_canonical().is_loopback() || own.contains(&src.ip()));
    msgs.into_iter()
        .map(|m| {
            let q = m.queries.first();
            let response = m.metadata.message_type == MessageType::Response;
            TrafficEntry {
                at,
                host: host.to_string(),
                src,
                dst,
                to_host: book.host_of(dst.ip(), host),
                transport,
                forwarded,
                id: m.metadata.id,
                response,
                name: q.map(|q| q.name().to_lowercase().to_string()).unwrap_or_default(),
                qtype: q.map(|q| q.query_type()),
                rcode: response.then_some(m.metadata.response_code),
                truncated: m.metadata.truncation,
                answers: m.answers.iter().map(WireAnswer::from_record).collect(),
                query_at: None,
            }
        })
        .collect()
}

/// A TCP segment without data (handshake, ACK, FIN): expected, not a decoding failure.
fn is_bare_tcp(data: &[u8]) -> bool {
    let (proto, l4) = match data.first().map(|b| b >> 4) {
        Some(4) => (data.get(9).copied(), data.get(usize::from(data[0] & 0x0f) * 4..)),
        Some(6) => (data.get(6).copied(), data.get(40..)),
        _ => return false,
    };
    match (proto, l4) {
        (Some(6), Some(l4)) => l4.get(12).is_some_and(|off| usize::from(off >> 4) * 4 >= l4.len()),
        _ => false,
    }
}

/// Orders entries by time and sets each response's `query_at` from the query it answers.
fn pair(entries: &mut [TrafficEntry]) {
    entries.sort_by_key(|e| e.at);
    let mut pending: HashMap<(SocketAddr, SocketAddr, Transport, u16), Duration> = HashMap::new();
    for e in entries.iter_mut() {
        if e.response {
            e.query_at = pending.remove(&(e.dst, e.src, e.transport, e.id));
        } else {
            pending.insert((e.src, e.dst, e.transport, e.id), e.at);
        }
    }
}

/// One packet as the tap read it: decoded only when the log is read, so the tap's per-packet
/// cost is a copy and a lock.
struct RawPacket {
    at: Duration,
    /// Index into `Inner::senders`.
    sender: usize,
    data: Box<[u8]>,
}

/// A sending host: its name and own addresses.
struct Sender {
    host: String,
    own: Vec<IpAddr>,
}

struct Inner {
    senders: Vec<Sender>,
    book: AddressBook,
    raw: std::collections::VecDeque<RawPacket>,
    capacity: usize,
    /// Decoded entries of every packet read so far (oldest evicted with their packets).
    decoded: Vec<(u64, Vec<TrafficEntry>)>,
    /// Sequence number of the oldest packet in `raw`, and of the next one.
    first_seq: u64,
    next_seq: u64,
    dropped: u64,
    evicted: u64,
    undecoded: u64,
}

/// How many packets the log keeps by default (the oldest go first, counted by
/// [`TrafficLog::evicted`]): about 30 MB of DNS packets.
pub const DEFAULT_CAPACITY: usize = 200_000;

/// The lab-wide DNS traffic log; cheap to clone. Filled by the lab's tap.
#[derive(Clone)]
pub struct TrafficLog {
    inner: Arc<Mutex<Inner>>,
}

impl fmt::Debug for TrafficLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.lock();
        f.debug_struct("TrafficLog").field("packets", &i.raw.len()).field("dropped", &i.dropped).finish()
    }
}

impl TrafficLog {
    /// An empty log for these hosts (name, own addresses), keeping at most `capacity` packets.
    pub fn new<'a>(hosts: impl IntoIterator<Item = (&'a str, Vec<IpAddr>)> + Clone, capacity: usize) -> Self {
        let book = AddressBook::new(hosts.clone());
        let senders = hosts.into_iter().map(|(h, own)| Sender { host: h.to_string(), own }).collect();
        let inner = Inner {
            senders,
            book,
            raw: std::collections::VecDeque::new(),
            capacity,
            decoded: Vec::new(),
            first_seq: 0,
            next_seq: 0,
            dropped: 0,
            evicted: 0,
            undecoded: 0,
        };
        TrafficLog { inner: Arc::new(Mutex::new(inner)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a packet the host with index `sender` (in the order given to [`TrafficLog::new`])
    /// sent at `at`, from its IP header on.
    pub fn push(&self, at: Duration, sender: usize, data: &[u8]) {
        self.push_all([(at, sender, data.into())]);
    }

    /// Adds several packets under one lock: (time, sender index, the packet from its IP header).
    pub fn push_all(&self, packets: impl IntoIterator<Item = (Duration, usize, Box<[u8]>)>) {
        let mut i = self.lock();
        for (at, sender, data) in packets {
            if i.capacity == 0 {
                i.evicted += 1;
                continue;
            }
            if i.raw.len() >= i.capacity {
                i.raw.pop_front();
                i.first_seq += 1;
                i.evicted += 1;
            }
            i.raw.push_back(RawPacket { at, sender, data });
            i.next_seq += 1;
        }
    }

    /// Records the kernel's count of packets it dropped because a tap's queue was full.
    pub fn set_dropped(&self, n: u64) {
        let mut i = self.lock();
        i.dropped = i.dropped.max(n);
    }

    /// Every entry of the packets kept, by time, responses paired with their queries.
    pub fn entries(&self) -> Vec<TrafficEntry> {
        let mut guard = self.lock();
        let i = &mut *guard;
        // Decode what arrived since the last read; forget what was evicted.
        let first = i.first_seq;
        i.decoded.retain(|(seq, _)| *seq >= first);
        let done = i.decoded.last().map_or(first, |(seq, _)| seq + 1);
        let skip = usize::try_from(done - first).unwrap_or(usize::MAX);
        let mut undecoded = 0;
        for (k, p) in i.raw.iter().enumerate().skip(skip) {
            let Sender { host, own } = &i.senders[p.sender];
            let e = entries_of(p.at, host, own, &i.book, &p.data);
            if e.is_empty() && !is_bare_tcp(&p.data) {
                undecoded += 1;
            }
            i.decoded.push((first + k as u64, e));
        }
        i.undecoded += undecoded;
        let mut v: Vec<TrafficEntry> = i.decoded.iter().flat_map(|(_, e)| e.iter().cloned()).collect();
        drop(guard);
        pair(&mut v);
        v
    }

    /// Packets the kernel dropped before the tap read them (0 unless a burst overran its queue).
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Packets read but no longer kept: the log was full and they were the oldest.
    pub fn evicted(&self) -> u64 {
        self.lock().evicted
    }

    /// Packets to or from port 53 that held no whole DNS message (TCP handshakes excluded), among
    /// those decoded so far.
    pub fn undecoded(&self) -> u64 {
        self.lock().undecoded
    }

    /// Writes every entry to `path` as JSON lines (owner-only, never through a link); returns
    /// how many.
    ///
    /// # Errors
    /// [`LogError::Write`] or [`LogError::Serialize`].
    pub fn write_jsonl(&self, path: &Path) -> Result<usize, LogError> {
        crate::dns::log::write_jsonl(path, &self.entries())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{rdata::A, Name, RData, Record};

    fn msg(id: u16, response: bool) -> Vec<u8> {
        let mut m = Message::new(id, if response { MessageType::Response } else { MessageType::Query }, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii("App.Example.test.").unwrap(), RecordType::A));
        if response {
            m.add_answer(Record::from_rdata(Name::from_ascii("app.example.test.").unwrap(), 30, RData::A(A("192.0.2.10".parse().unwrap()))));
        }
        m.to_vec().unwrap()
    }

    fn udp4(src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16, payload: &[u8]) -> Vec<u8> {
        let total = 20 + 8 + payload.len();
        let mut p = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 17, 0, 0];
        p.extend(src);
        p.extend(dst);
        p.extend(sp.to_be_bytes());
        p.extend(dp.to_be_bytes());
        p.extend(((8 + payload.len()) as u16).to_be_bytes());
        p.extend([0, 0]);
        p.extend(payload);
        p
    }

    fn tcp6(src: Ipv6Addr, sp: u16, dst: Ipv6Addr, dp: u16, payload: &[u8]) -> Vec<u8> {
        let plen = 20 + payload.len();
        let mut p = vec![0x60, 0, 0, 0, (plen >> 8) as u8, plen as u8, 6, 64];
        p.extend(src.octets());
        p.extend(dst.octets());
        p.extend(sp.to_be_bytes());
        p.extend(dp.to_be_bytes());
        p.extend([0; 8]);
        p.extend([0x50, 0x18, 0, 0, 0, 0, 0, 0]);
        p.extend(payload);
        p
    }

    fn book() -> AddressBook {
        AddressBook::new([("client", vec!["192.0.2.3".parse().unwrap()]), ("dns", vec!["192.0.2.53".parse().unwrap(), "2001:db8::53".parse().unwrap()])])
    }

    #[test]
    fn a_udp_query_and_its_response_are_decoded_and_paired() {
        let own_c: Vec<IpAddr> = vec!["192.0.2.3".parse().unwrap()];
        let own_d: Vec<IpAddr> = vec!["192.0.2.53".parse().unwrap()];
        let q = udp4([192, 0, 2, 3], 40000, [192, 0, 2, 53], 53, &msg(7, false));
        let r = udp4([192, 0, 2, 53], 53, [192, 0, 2, 3], 40000, &msg(7, true));
        let log = TrafficLog::new([("client", own_c), ("dns", own_d)], 10);
        // Read in the wrong order (the tap reads hosts one after another): sorted and paired anyway.
        log.push(Duration::from_millis(12), 1, &r);
        log.push(Duration::from_millis(10), 0, &q);
        let e = log.entries();
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].host.as_str(), e[0].to_host.as_deref(), e[0].response, e[0].name.as_str()), ("client", Some("dns"), false, "app.example.test."));
        assert_eq!((e[1].host.as_str(), e[1].to_host.as_deref(), e[1].query_at), ("dns", Some("client"), Some(Duration::from_millis(10))));
        assert_eq!(e[1].answers[0].to_string(), "app.example.test. 30 IN A 192.0.2.10");
        assert!(!e[0].forwarded && !e[1].forwarded);
        let line = serde_json::to_string(&e[1]).unwrap();
        assert_eq!(
            line,
            r#"{"at_us":12000,"host":"dns","src":"192.0.2.53:53","dst":"192.0.2.3:40000","to_host":"client","transport":"udp","forwarded":false,"id":7,"response":true,"name":"app.example.test.","qtype":"A","rcode":"NOERROR","truncated":false,"answers":[{"name":"app.example.test.","type":"A","ttl":30,"data":"192.0.2.10"}],"query_at_us":10000}"#
        );
    }

    #[test]
    fn a_full_log_keeps_the_newest_packets_and_counts_the_rest() {
        let log = TrafficLog::new([("client", vec!["192.0.2.3".parse().unwrap()])], 2);
        for id in 0..3u16 {
            log.push(Duration::from_millis(u64::from(id)), 0, &udp4([192, 0, 2, 3], 40000, [192, 0, 2, 53], 53, &msg(id, false)));
            // Read between pushes: what was decoded before is evicted with its packet.
            let _ = log.entries();
        }
        log.push(Duration::from_millis(9), 0, b"junk");
        assert_eq!(log.entries().iter().map(|e| e.id).collect::<Vec<_>>(), vec![2]);
        assert_eq!((log.evicted(), log.undecoded()), (2, 1));
    }

    #[test]
    fn loopback_goes_to_the_sender_and_a_foreign_source_is_forwarded() {
        let q = udp4([127, 0, 0, 1], 40000, [127, 0, 0, 53], 53, &msg(1, false));
        let e = entries_of(Duration::ZERO, "client", &[], &book(), &q);
        assert_eq!((e[0].to_host.as_deref(), e[0].forwarded), (Some("client"), false));
        let f = udp4([192, 0, 2, 3], 40000, [198, 51, 100, 1], 53, &msg(1, false));
        let e = entries_of(Duration::ZERO, "router", &["192.0.2.1".parse().unwrap()], &book(), &f);
        assert_eq!((e[0].to_host.as_deref(), e[0].forwarded), (None, true));
    }

    #[test]
    fn tcp_segments_carry_length_prefixed_messages_and_empty_ones_are_skipped() {
        let (a, b): (Ipv6Addr, Ipv6Addr) = ("2001:db8::3".parse().unwrap(), "2001:db8::53".parse().unwrap());
        let mut payload = Vec::new();
        for id in [1u16, 2] {
            let m = msg(id, false);
            payload.extend((m.len() as u16).to_be_bytes());
            payload.extend(m);
        }
        let e = entries_of(Duration::ZERO, "client", &[a.into()], &book(), &tcp6(a, 40000, b, 53, &payload));
        assert_eq!(e.iter().map(|e| (e.id, e.transport)).collect::<Vec<_>>(), vec![(1, Transport::Tcp), (2, Transport::Tcp)]);
        assert_eq!(e[0].to_host.as_deref(), Some("dns"));
        assert!(decode_packet(&tcp6(a, 40000, b, 53, &[])).is_none());
        // Half a message (cut across segments): nothing, rather than garbage.
        assert!(decode_packet(&tcp6(a, 40000, b, 53, &payload[..10])).is_none());
    }

    #[test]
    fn fragments_and_other_ports_are_not_dns() {
        let mut frag = udp4([192, 0, 2, 3], 40000, [192, 0, 2, 53], 53, &msg(1, false));
        frag[6] = 0x20; // more fragments
        assert!(decode_packet(&frag).is_none());
        assert!(decode_packet(&udp4([192, 0, 2, 3], 40000, [192, 0, 2, 53], 80, &msg(1, false))).is_none());
        assert!(decode_packet(&[0x45]).is_none());
        assert!(decode_packet(&udp4([192, 0, 2, 3], 40000, [192, 0, 2, 53], 53, b"not dns")).is_none());
    }

    #[test]
    fn a_retry_with_the_same_id_pairs_with_the_latest_query() {
        let mk = |at: u64, response: bool| TrafficEntry {
            at: Duration::from_millis(at),
            host: "h".into(),
            src: if response { "192.0.2.53:53" } else { "192.0.2.3:4000" }.parse().unwrap(),
            dst: if response { "192.0.2.3:4000" } else { "192.0.2.53:53" }.parse().unwrap(),
            to_host: None,
            transport: Transport::Udp,
            forwarded: false,
            id: 9,
            response,
            name: "a.test.".into(),
            qtype: Some(RecordType::A),
            rcode: response.then_some(ResponseCode::NoError),
            truncated: false,
            answers: vec![],
            query_at: None,
        };
        let mut v = vec![mk(1, false), mk(5, false), mk(6, true), mk(7, true)];
        pair(&mut v);
        assert_eq!(v[2].query_at, Some(Duration::from_millis(5)));
        assert_eq!(v[3].query_at, None, "an answer to no pending query is not paired");
    }
}
