//! Test support: a fixture zone, a server on loopback with ephemeral ports, and a tiny DNS client.
#![allow(dead_code)]

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query},
    rr::{Name, RecordType},
};
use nslab::dns::{DnsOptions, DnsServer, DnsSockets, HostAddrs, LogFilter, QueryLogEntry, RecordValue as V, Soa, Zone};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UdpSocket},
};

/// How long a test waits for something that must happen (an answer, a log entry) before it calls
/// it missing. A hang guard, not a claim about speed: on a quiet machine the event comes within
/// milliseconds, and a loaded one must not turn a slow answer into a failure.
pub(crate) const GUARD: Duration = Duration::from_secs(20);

/// The fixture zone used by most tests.
pub(crate) fn example_zone() -> Zone {
    let mut soa = Soa::new("ns", "hostmaster");
    soa.serial = 100;
    soa.ttl = 3600;
    soa.minimum = 30;
    Zone::new("example.test", soa)
        .record("@", 3600, V::Ns("ns".into()))
        .record("ns", 3600, V::A("192.0.2.53".parse().unwrap()))
        .record("web", 60, V::Host("web".into()))
        .record("blue", 60, V::A("192.0.2.10".parse().unwrap()))
        .record("green", 60, V::A("192.0.2.20".parse().unwrap()))
        .record("app", 30, V::Cname("blue".into()))
        .record("chain1", 40, V::Cname("chain2".into()))
        .record("chain2", 50, V::Cname("app".into()))
        .record("dangling", 30, V::Cname("missing".into()))
        .record("outside", 30, V::Cname("www.example.org.".into()))
        .record("loop1", 30, V::Cname("loop2".into()))
        .record("loop2", 30, V::Cname("loop1".into()))
        .record("v4only", 300, V::A("192.0.2.33".parse().unwrap()))
        .record("alias4", 20, V::Cname("v4only".into()))
        .record("txt", 120, V::Txt(vec!["hello world".into()]))
        .record("_http._tcp", 90, V::Srv { priority: 10, weight: 5, port: 8080, target: "web".into() })
        .record("post", 300, V::Mx { preference: 10, exchange: "web".into() })
        .record("post", 300, V::Mx { preference: 20, exchange: "mx.example.org.".into() })
        .record("x.sub", 60, V::A("192.0.2.99".parse().unwrap()))
}

/// A reverse zone with one PTR to the web host.
pub(crate) fn reverse_zone() -> Zone {
    Zone::new("0.0.10.in-addr.arpa", Soa::new("ns.example.test.", "hostmaster.example.test.")).record("2", 60, V::Ptr("web.example.test.".into()))
}

/// Host-address map of the fixture lab.
pub(crate) fn hosts() -> HostAddrs {
    [("web".to_owned(), vec!["192.0.2.2".parse().unwrap(), "2001:db8::2".parse().unwrap()])].into()
}

/// A started server and the address it serves on (UDP and TCP share the port).
pub(crate) struct Fixture {
    pub server: DnsServer,
    pub addr: SocketAddr,
}

/// Binds UDP and TCP on the same ephemeral port of `ip`.
pub(crate) async fn bind_pair(ip: IpAddr) -> (UdpSocket, TcpListener) {
    for _ in 0..20 {
        let udp = UdpSocket::bind(SocketAddr::new(ip, 0)).await.expect("bind udp");
        let port = udp.local_addr().unwrap().port();
        if let Ok(tcp) = TcpListener::bind(SocketAddr::new(ip, port)).await {
            return (udp, tcp);
        }
    }
    panic!("no free port pair on {ip}");
}

/// Starts a server on `ip` with the fixture zones and `tune` applied to the default options.
pub(crate) async fn start_with(ip: IpAddr, tune: impl FnOnce(&mut DnsOptions)) -> Fixture {
    let (udp, tcp) = bind_pair(ip).await;
    let addr = udp.local_addr().unwrap();
    let mut options = DnsOptions::new(Instant::now());
    options.hosts = hosts();
    tune(&mut options);
    let server = DnsServer::start(DnsSockets { udp: vec![udp], tcp: vec![tcp] }, vec![example_zone(), reverse_zone()], options).expect("start server");
    Fixture { server, addr }
}

/// Starts the fixture server on 127.0.0.1.
pub(crate) async fn start() -> Fixture {
    start_with("127.0.0.1".parse().unwrap(), |_| {}).await
}

/// Encodes a query with a random id; EDNS with a 1232-byte payload when `edns`.
pub(crate) fn query_bytes(name: &str, qtype: RecordType, edns: bool) -> (u16, Vec<u8>) {
    let id: u16 = rand_id();
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        msg.set_edns(e);
    }
    (id, msg.to_vec().unwrap())
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0x1234);
    NEXT.fetch_add(7919, Ordering::Relaxed)
}

/// Sends a UDP query from `socket`; `None` when no answer came within `wait`.
pub(crate) async fn udp_query_on(socket: &UdpSocket, server: SocketAddr, name: &str, qtype: RecordType, wait: Duration) -> Option<Message> {
    let (id, bytes) = query_bytes(name, qtype, true);
    socket.send_to(&bytes, server).await.expect("send");
    let mut buf = vec![0u8; 65535];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let got = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await;
        let Ok(Ok((n, _))) = got else { return None };
        let msg = Message::from_vec(&buf[..n]).expect("server sent a valid message");
        if msg.metadata.id == id {
            return Some(msg);
        }
    }
}

/// Sends a UDP query from a fresh socket and expects an answer (within [`GUARD`]).
pub(crate) async fn udp(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let socket = client_socket(server).await;
    udp_query_on(&socket, server, name, qtype, GUARD).await.unwrap_or_else(|| panic!("no UDP answer for {name} {qtype} within {GUARD:?}"))
}

/// Waits until the server's log has an entry for `name` (the server logs a query once it has
/// answered it, or decided not to) and returns the last such entry.
pub(crate) async fn logged(server: &DnsServer, name: &str) -> QueryLogEntry {
    let deadline = Instant::now() + GUARD;
    loop {
        if let Some(e) = server.log().query(&LogFilter::new().name(name)).pop() {
            return e;
        }
        assert!(Instant::now() < deadline, "the server logged no query for {name} within {GUARD:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Whether the server sent anything to `socket` for what it sent before: sends a well-formed
/// query from the same socket and returns the ids of the messages that arrived before its
/// answer. The server takes one client's datagrams in order and sends its replies in order, so
/// a reply to an earlier datagram comes before this answer: the answer is the event that ends
/// the wait, not a timeout.
pub(crate) async fn replies_before_next_answer(socket: &UdpSocket, server: SocketAddr) -> Vec<u16> {
    let (id, bytes) = query_bytes("ns.example.test.", RecordType::A, false);
    socket.send_to(&bytes, server).await.expect("send");
    let mut buf = vec![0u8; 65535];
    let mut before = Vec::new();
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let got = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await;
        let Ok(Ok((n, _))) = got else { panic!("no answer to the follow-up query within {GUARD:?}") };
        let got_id = u16::from_be_bytes([buf[0], buf[1]]);
        if n >= 12 && got_id == id {
            return before;
        }
        before.push(got_id);
    }
}

/// A UDP client socket of the server's family.
pub(crate) async fn client_socket(server: SocketAddr) -> UdpSocket {
    let any: SocketAddr = if server.is_ipv4() { "127.0.0.1:0".parse().unwrap() } else { "[::1]:0".parse().unwrap() };
    UdpSocket::bind(any).await.unwrap()
}

/// Sends one query over a new TCP connection.
pub(crate) async fn tcp(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let mut stream = TcpStream::connect(server).await.expect("connect tcp");
    tcp_on(&mut stream, name, qtype).await
}

/// Sends one query over an existing TCP connection.
pub(crate) async fn tcp_on(stream: &mut TcpStream, name: &str, qtype: RecordType) -> Message {
    let (id, bytes) = query_bytes(name, qtype, false);
    let len = u16::try_from(bytes.len()).unwrap().to_be_bytes();
    stream.write_all(&len).await.unwrap();
    stream.write_all(&bytes).await.unwrap();
    let fut = async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.unwrap();
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf).await.unwrap();
        buf
    };
    let buf = tokio::time::timeout(GUARD, fut).await.unwrap_or_else(|_| panic!("no TCP answer for {name} {qtype} within {GUARD:?}"));
    let msg = Message::from_vec(&buf).unwrap();
    assert_eq!(msg.metadata.id, id);
    msg
}

/// Answer records in presentation format.
pub(crate) fn answers(msg: &Message) -> Vec<String> {
    msg.answers.iter().map(ToString::to_string).collect()
}

/// Authority records in presentation format.
pub(crate) fn authority(msg: &Message) -> Vec<String> {
    msg.authorities.iter().map(ToString::to_string).collect()
}
