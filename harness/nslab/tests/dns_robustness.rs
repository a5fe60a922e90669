//! Hostile input: exact answers to known-bad packets, and a bounded property test that floods the
//! server with random and mutated packets over UDP and TCP (plus idle and slow TCP connections)
//! while checking that well-formed queries keep getting correct answers.
//!
//! `NSLAB_DNS_FUZZ_CASES` sets how many hostile inputs the property test sends (default 2048).
//! The count, not a time, bounds it, so a debug and a release build check the same thing; the
//! canary latencies it prints are figures, not assertions (a loaded machine is slow, not wrong).

#[path = "dns_common/mod.rs"]
mod common;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use common::{answers, query_bytes};
use hickory_proto::{
    op::{Message, ResponseCode},
    rr::RecordType,
};
use nslab::dns::Transport;
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};

/// Names of the threads that panicked (a panic inside a server task would otherwise be
/// swallowed by tokio). Each test runs its server on a runtime whose threads carry its own
/// prefix, so one test's failure is not blamed on another.
static PANICKED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn count_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            PANICKED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(name);
            previous(info);
        }));
    });
}

fn panics_on(prefix: &str) -> Vec<String> {
    PANICKED.lock().unwrap().iter().filter(|n| n.starts_with(prefix)).cloned().collect()
}

fn runtime(prefix: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name(prefix).enable_all().build().unwrap()
}

/// Sends raw bytes over UDP and returns the decoded answer.
async fn raw_udp(server: SocketAddr, bytes: &[u8]) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(common::GUARD, socket.recv_from(&mut buf)).await.expect("an answer").unwrap();
    Message::from_vec(&buf[..n]).expect("server replies are well-formed")
}

/// Sends raw bytes over UDP and checks that nothing came back before the answer to a
/// well-formed query sent after them from the same socket (which the server logs).
async fn raw_udp_unanswered(server: SocketAddr, bytes: &[u8]) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, server).await.unwrap();
    let before = common::replies_before_next_answer(&socket, server).await;
    assert!(before.is_empty(), "answered {} message(s) that must get no answer: ids {before:?}", before.len());
}

/// A correct answer to the canary query, or a test failure.
async fn canary(server: SocketAddr) -> Duration {
    let t = Instant::now();
    let msg = common::udp(server, "blue.example.test.", RecordType::A).await;
    assert_eq!(answers(&msg), vec!["blue.example.test. 60 IN A 192.0.2.10"]);
    t.elapsed()
}

#[test]
fn known_bad_packets_get_exact_answers_or_none() {
    count_panics();
    let rt = runtime("dns-bad-packets");
    rt.block_on(known_bad_packets());
    assert_eq!(panics_on("dns-bad-packets"), Vec::<String>::new());
}

async fn known_bad_packets() {
    let f = common::start().await;
    let (_, good) = query_bytes("blue.example.test.", RecordType::A, false);

    // Shorter than a header: silently ignored.
    raw_udp_unanswered(f.addr, &good[..5]).await;

    // Two questions: FORMERR.
    let mut two = good.clone();
    two[5] = 2;
    let q = good[12..].to_vec();
    two.extend_from_slice(&q);
    let msg = raw_udp(f.addr, &two).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);

    // A question cut in the middle: FORMERR, id echoed.
    let msg = raw_udp(f.addr, &good[..20]).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(msg.metadata.id, u16::from_be_bytes([good[0], good[1]]));

    // A compression pointer to itself in the question name: FORMERR, no hang.
    let mut looped = good[..12].to_vec();
    looped.extend_from_slice(&[0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01]);
    let msg = raw_udp(f.addr, &looped).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::FormErr);

    // A response (QR=1) is never answered: no reflection.
    let mut response = good.clone();
    response[2] |= 0x80;
    raw_udp_unanswered(f.addr, &response).await;

    // NOTIFY opcode (4): NOTIMP.
    let mut notify = good.clone();
    notify[2] = (notify[2] & 0x87) | (4 << 3);
    let msg = raw_udp(f.addr, &notify).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NotImp);

    // EDNS version 1: BADVERS (16; hickory decodes 16 as BADSIG, the same number).
    let (_, mut edns) = query_bytes("blue.example.test.", RecordType::A, true);
    let opt = edns.len() - 11; // OPT RR: root(1) type(2) class(2) ttl(4: rcode, version, flags) rdlen(2)
    assert_eq!(edns[opt + 1..opt + 3], [0, 41]);
    edns[opt + 6] = 1;
    let msg = raw_udp(f.addr, &edns).await;
    assert_eq!(u16::from(msg.metadata.response_code), 16);

    // AXFR: REFUSED (zone transfers are not offered).
    let (_, axfr) = query_bytes("example.test.", RecordType::AXFR, false);
    let msg = raw_udp(f.addr, &axfr).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::Refused);

    // Every query answered is in the log, those that do not parse too (FORMERR, no question);
    // the packet shorter than a header and the response are not queries and are not logged
    // (the well-formed query after each, which showed they got no answer, is).
    let logged: Vec<(Transport, String, Option<RecordType>, Option<ResponseCode>)> =
        f.server.log().entries().into_iter().map(|e| (e.transport, e.name, e.qtype, e.rcode)).collect();
    let row = |name: &str, qtype: Option<RecordType>, rcode: ResponseCode| (Transport::Udp, name.to_owned(), qtype, Some(rcode));
    let a = Some(RecordType::A);
    assert_eq!(
        logged,
        vec![
            row("ns.example.test.", a, ResponseCode::NoError),
            row("blue.example.test.", a, ResponseCode::FormErr),
            row("", None, ResponseCode::FormErr),
            row("", None, ResponseCode::FormErr),
            row("ns.example.test.", a, ResponseCode::NoError),
            row("blue.example.test.", a, ResponseCode::NotImp),
            row("blue.example.test.", a, ResponseCode::BADVERS),
            row("example.test.", Some(RecordType::AXFR), ResponseCode::Refused),
        ]
    );

    // Over TCP too: a framed question cut in the middle gets FORMERR with its id, and is logged.
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    let cut = &good[..20];
    s.write_all(&u16::try_from(cut.len()).unwrap().to_be_bytes()).await.unwrap();
    s.write_all(cut).await.unwrap();
    let reply = tokio::time::timeout(common::GUARD, async {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.unwrap();
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).await.unwrap();
        Message::from_vec(&buf).unwrap()
    })
    .await
    .expect("a FORMERR answer over TCP");
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(reply.metadata.id, u16::from_be_bytes([good[0], good[1]]));
    let last = f.server.log().entries().pop().unwrap();
    assert_eq!((last.transport, last.name.as_str(), last.qtype, last.rcode), (Transport::Tcp, "", None, Some(ResponseCode::FormErr)));
    drop(s);

    // A TCP frame announcing 65535 bytes and sending 10, then closing: the server moves on.
    let mut s = TcpStream::connect(f.addr).await.unwrap();
    s.write_all(&[0xff, 0xff]).await.unwrap();
    s.write_all(&good[..10]).await.unwrap();
    drop(s);

    canary(f.addr).await;
}

/// One hostile input.
#[derive(Debug, Clone)]
enum Input {
    /// Random bytes over UDP.
    UdpRandom(Vec<u8>),
    /// A valid query with bytes overwritten and maybe cut short, over UDP.
    UdpMutated { base: usize, edits: Vec<(usize, u8)>, cut: Option<usize> },
    /// A TCP frame whose length prefix may lie about the payload; the connection may stay open.
    Tcp { prefix: Option<u16>, base: usize, edits: Vec<(usize, u8)>, cut: Option<usize>, linger: bool },
}

fn bases() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for (name, t) in [
        ("blue.example.test.", RecordType::A),
        ("app.example.test.", RecordType::AAAA),
        ("nope.example.test.", RecordType::TXT),
        ("example.test.", RecordType::ANY),
        ("x.example.org.", RecordType::SRV),
    ] {
        v.push(query_bytes(name, t, false).1);
        v.push(query_bytes(name, t, true).1);
    }
    v
}

fn mutate(base: &[u8], edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let mut out = base.to_vec();
    for (i, b) in edits {
        if !out.is_empty() {
            let at = i % out.len();
            out[at] = *b;
        }
    }
    if let Some(c) = cut {
        out.truncate(c % (out.len() + 1));
    }
    out
}

fn input() -> impl Strategy<Value = Input> {
    let edits = prop::collection::vec((0usize..128, any::<u8>()), 0..6);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600).prop_map(Input::UdpRandom),
        (0usize..10, edits.clone(), prop::option::of(0usize..128)).prop_map(|(base, edits, cut)| Input::UdpMutated { base, edits, cut }),
        (prop::option::of(any::<u16>()), 0usize..10, edits, prop::option::of(0usize..128), any::<bool>())
            .prop_map(|(prefix, base, edits, cut, linger)| Input::Tcp { prefix, base, edits, cut, linger }),
    ]
}

async fn send(server: SocketAddr, input: &Input, bases: &[Vec<u8>], lingering: &Mutex<Vec<TcpStream>>) {
    match input {
        Input::UdpRandom(bytes) => {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            s.send_to(bytes, server).await.unwrap();
        }
        Input::UdpMutated { base, edits, cut } => {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            s.send_to(&mutate(&bases[*base], edits, *cut), server).await.unwrap();
        }
        Input::Tcp { prefix, base, edits, cut, linger } => {
            let payload = mutate(&bases[*base], edits, *cut);
            let Ok(mut s) = TcpStream::connect(server).await else {
                panic!("server stopped accepting TCP connections");
            };
            let len = prefix.unwrap_or(u16::try_from(payload.len()).unwrap());
            // Write errors are fine: the server may close a connection it does not like.
            let _ = s.write_all(&len.to_be_bytes()).await;
            let _ = s.write_all(&payload).await;
            if *linger {
                let mut held = lingering.lock().unwrap();
                if held.len() < 200 {
                    held.push(s);
                }
            }
        }
    }
}

#[test]
fn random_and_mutated_packets_never_stop_correct_answers() {
    count_panics();
    let cases: usize = std::env::var("NSLAB_DNS_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2048);
    let rt = runtime("dns-fuzz");
    let f = rt.block_on(common::start_with("127.0.0.1".parse().unwrap(), |o| {
        o.log_capacity = 10_000;
        o.tcp_idle_timeout = Duration::from_secs(2);
    }));
    let addr = f.addr;

    // Background pressure for the whole run: idle connections and slow writers.
    let stop = Arc::new(AtomicBool::new(false));
    let mut background = Vec::new();
    for i in 0..40 {
        let stop = stop.clone();
        background.push(rt.spawn(async move {
            let Ok(mut s) = TcpStream::connect(addr).await else { return };
            if i % 2 == 0 {
                // Idle: hold the connection, send nothing.
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            } else {
                // Slow: a frame trickled one byte every 100 ms.
                let (_, q) = query_bytes("blue.example.test.", RecordType::A, false);
                let mut frame = u16::try_from(q.len()).unwrap().to_be_bytes().to_vec();
                frame.extend_from_slice(&q);
                for b in frame.iter().cycle() {
                    if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }
    // A well-formed client asking all the time, recording its worst latency (a figure).
    let worst = Arc::new(Mutex::new(Duration::ZERO));
    let during = {
        let (stop, worst) = (stop.clone(), worst.clone());
        rt.spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let took = canary(addr).await;
                {
                    let mut w = worst.lock().unwrap();
                    *w = (*w).max(took);
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            n
        })
    };

    // Exactly `cases` inputs, and a canary after every 50th: each answered, and correctly.
    let bases = bases();
    let lingering = Mutex::new(Vec::new());
    let batch = 256;
    let sent = AtomicUsize::new(0);
    let inline = AtomicUsize::new(0);
    let mut result = Ok(());
    while result.is_ok() && sent.load(Ordering::Relaxed) < cases {
        // A fresh runner per batch: a runner stops after `cases` successes.
        let config = Config { cases: u32::try_from(batch.min(cases - sent.load(Ordering::Relaxed))).unwrap(), failure_persistence: None, ..Config::default() };
        let mut runner = TestRunner::new(config);
        result = runner.run(&input(), |input| {
            rt.block_on(async {
                send(addr, &input, &bases, &lingering).await;
                let n = sent.fetch_add(1, Ordering::Relaxed) + 1;
                if n % 50 == 0 {
                    canary(addr).await;
                    inline.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), TestCaseError>(())
            })
        });
    }
    stop.store(true, Ordering::Relaxed);
    let canaries = rt.block_on(during).unwrap();
    for b in background {
        rt.block_on(b).unwrap();
    }
    result.unwrap();

    // Afterwards: still correct, over both transports.
    let after = rt.block_on(canary(addr));
    let tcp = rt.block_on(common::tcp(addr, "blue.example.test.", RecordType::A));
    assert_eq!(answers(&tcp), vec!["blue.example.test. 60 IN A 192.0.2.10"]);
    let worst = *worst.lock().unwrap();
    let sent = sent.load(Ordering::Relaxed);
    let inline = inline.load(Ordering::Relaxed);
    eprintln!(
        "fuzz: {sent} hostile inputs, {inline} canary queries between them and {canaries} beside them, worst canary latency {worst:?}, after {after:?}, log kept {} dropped {}",
        f.server.log().len(),
        f.server.log().dropped()
    );
    // A shrinking failure can make proptest run a case more than once, never fewer.
    assert!(sent >= cases, "only {sent} of {cases} inputs were sent");
    assert_eq!(inline, sent / 50, "a canary after every 50th input");
    assert_eq!(panics_on("dns-fuzz"), Vec::<String>::new());
    rt.block_on(f.server.shutdown()).unwrap();
}
