//! Each fault kind, observed the way a client sees it, against a real server on loopback.

#[path = "dns_common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use hickory_proto::op::Message;

use common::{answers, authority, client_socket, logged, query_bytes, replies_before_next_answer, start, tcp, udp, GUARD};
use hickory_proto::{op::ResponseCode, rr::RecordType};
use nslab::dns::{Fault, FaultTarget, LogFilter, Transport};

fn name(n: &str) -> FaultTarget {
    FaultTarget::Name(n.to_owned())
}

#[tokio::test]
async fn rcode_faults_answer_their_code_for_that_name_only() {
    let f = start().await;
    let faults = f.server.faults();
    faults.set(&name("blue.example.test"), Fault::ServFail).unwrap();
    faults.set(&name("green.example.test"), Fault::Refused).unwrap();
    faults.set(&name("web.example.test"), Fault::NxDomain).unwrap();

    let sf = udp(f.addr, "blue.example.test.", RecordType::A).await;
    assert_eq!(sf.metadata.response_code, ResponseCode::ServFail);
    assert!(sf.answers.is_empty());
    assert!(!sf.metadata.authoritative);
    let rf = udp(f.addr, "green.example.test.", RecordType::A).await;
    assert_eq!(rf.metadata.response_code, ResponseCode::Refused);
    let nx = tcp(f.addr, "web.example.test.", RecordType::A).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert!(nx.metadata.authoritative);
    assert_eq!(authority(&nx), vec!["example.test. 30 IN SOA ns.example.test. hostmaster.example.test. 100 3600 600 86400 30"]);
    // Other names are untouched.
    let ok = udp(f.addr, "ns.example.test.", RecordType::A).await;
    assert_eq!(answers(&ok), vec!["ns.example.test. 3600 IN A 192.0.2.53"]);

    let logged = f.server.log().query(&LogFilter::new().name("blue.example.test"));
    assert_eq!(logged[0].rcode, Some(ResponseCode::ServFail));
    assert_eq!(logged[0].fault, Some(Fault::ServFail));

    assert!(faults.clear(&name("blue.example.test")).unwrap());
    let back = udp(f.addr, "blue.example.test.", RecordType::A).await;
    assert_eq!(answers(&back), vec!["blue.example.test. 60 IN A 192.0.2.10"]);
}

#[tokio::test]
async fn drop_sends_nothing_so_the_client_times_out_and_is_logged() {
    let f = start().await;
    f.server.faults().set(&name("app.example.test"), Fault::Drop).unwrap();
    let socket = client_socket(f.addr).await;
    let (id, bytes) = query_bytes("app.example.test.", RecordType::A, true);
    socket.send_to(&bytes, f.addr).await.unwrap();
    // The server has acted on the query once it is logged; nothing it sent may come before the
    // answer to the next query from the same socket.
    let entry = logged(&f.server, "app.example.test").await;
    assert_eq!(entry.rcode, None);
    assert_eq!(entry.fault, Some(Fault::Drop));
    let before = replies_before_next_answer(&socket, f.addr).await;
    assert!(!before.contains(&id), "the dropped query was answered: ids seen {before:?}");
    f.server.faults().clear_all();
    let msg = udp(f.addr, "app.example.test.", RecordType::A).await;
    assert_eq!(msg.answers.len(), 2);
}

/// A delayed answer comes no sooner than the delay, and other clients' queries that reach the
/// server while it is held are answered before it: the order is read from the server's log
/// (arrival times, and entries in the order the queries were finished), not from how fast the
/// machine turned the queries round.
#[tokio::test]
async fn delay_answers_after_the_delay_without_holding_up_other_clients() {
    let f = start().await;
    let delay = Duration::from_millis(700);
    f.server.faults().set(&name("blue.example.test"), Fault::Delay(delay)).unwrap();
    let slow_socket = client_socket(f.addr).await;
    let (slow_id, bytes) = query_bytes("blue.example.test.", RecordType::A, true);
    let sent = Instant::now();
    slow_socket.send_to(&bytes, f.addr).await.unwrap();
    let slow = async {
        let mut buf = vec![0u8; 65535];
        loop {
            let (n, _) = tokio::time::timeout(GUARD, slow_socket.recv_from(&mut buf)).await.expect("the delayed answer arrives").unwrap();
            let msg = Message::from_vec(&buf[..n]).unwrap();
            if msg.metadata.id == slow_id {
                return (msg, sent.elapsed());
            }
        }
    };
    tokio::pin!(slow);
    // Other clients ask, one after another, until the delayed answer is in.
    let mut fast = 0u32;
    let (msg, took) = loop {
        tokio::select! {
            biased;
            done = &mut slow => break done,
            other = udp(f.addr, "green.example.test.", RecordType::A) => {
                assert_eq!(answers(&other), vec!["green.example.test. 60 IN A 192.0.2.20"]);
                fast += 1;
            }
        }
    };
    assert_eq!(answers(&msg), vec!["blue.example.test. 60 IN A 192.0.2.10"]);
    assert!(took >= delay, "answered after {took:?}, delay {delay:?}");
    let log = f.server.log().entries();
    let held = log.iter().position(|e| e.name == "blue.example.test.").expect("the delayed query is logged");
    assert_eq!(log[held].fault, Some(Fault::Delay(Duration::from_millis(700))));
    let during = log[..held].iter().filter(|e| e.name == "green.example.test." && e.at >= log[held].at).count();
    assert!(
        during >= 1,
        "no other query that reached the server after the delayed one was answered before it ({fast} answered while it was held, log: {:?})",
        log.iter().map(|e| (e.name.as_str(), e.at)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn truncate_sets_tc_over_udp_and_tcp_retry_gets_the_answer() {
    let f = start().await;
    f.server.faults().set(&name("app.example.test"), Fault::Truncate).unwrap();
    let msg = udp(f.addr, "app.example.test.", RecordType::A).await;
    assert!(msg.metadata.truncation);
    assert!(msg.answers.is_empty());
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    let retry = tcp(f.addr, "app.example.test.", RecordType::A).await;
    assert!(!retry.metadata.truncation);
    assert_eq!(answers(&retry), vec!["app.example.test. 30 IN CNAME blue.example.test.", "blue.example.test. 60 IN A 192.0.2.10"]);
    let log = f.server.log().query(&LogFilter::new().name("app.example.test"));
    let seen: Vec<(Transport, bool)> = log.iter().map(|e| (e.transport, e.truncated)).collect();
    assert_eq!(seen, vec![(Transport::Udp, true), (Transport::Tcp, false)]);
}

#[tokio::test]
async fn tcp_only_drops_every_udp_query_and_answers_tcp() {
    let f = start().await;
    f.server.faults().set(&FaultTarget::Server, Fault::TcpOnly).unwrap();
    let socket = client_socket(f.addr).await;
    let mut ids = Vec::new();
    for n in ["blue.example.test.", "nope.example.test.", "www.example.org."] {
        let (id, bytes) = query_bytes(n, RecordType::A, true);
        socket.send_to(&bytes, f.addr).await.unwrap();
        let entry = logged(&f.server, n.trim_end_matches('.')).await;
        assert_eq!((entry.rcode, entry.fault), (None, Some(Fault::TcpOnly)), "{n}: dropped, not answered");
        ids.push(id);
    }
    let ok = tcp(f.addr, "blue.example.test.", RecordType::A).await;
    assert!(!ok.metadata.truncation);
    assert_eq!(answers(&ok), vec!["blue.example.test. 60 IN A 192.0.2.10"]);
    let log = f.server.log().query(&LogFilter::new().name("blue.example.test"));
    let seen: Vec<(Transport, Option<ResponseCode>, bool, Option<Fault>)> = log.iter().map(|e| (e.transport, e.rcode, e.truncated, e.fault)).collect();
    assert_eq!(seen, vec![(Transport::Udp, None, false, Some(Fault::TcpOnly)), (Transport::Tcp, Some(ResponseCode::NoError), false, Some(Fault::TcpOnly))]);
    assert!(f.server.faults().clear(&FaultTarget::Server).unwrap());
    // Not even a TC answer was sent: nothing reached the socket before the next answer to it.
    let before = replies_before_next_answer(&socket, f.addr).await;
    assert!(ids.iter().all(|id| !before.contains(id)), "a UDP query got an answer under tcp-only: ids {ids:?}, seen {before:?}");
    let udp_ok = udp(f.addr, "blue.example.test.", RecordType::A).await;
    assert!(!udp_ok.metadata.truncation);
    assert_eq!(answers(&udp_ok), vec!["blue.example.test. 60 IN A 192.0.2.10"]);
}

#[tokio::test]
async fn suffix_fault_covers_names_below_and_exact_name_overrides_it() {
    let f = start().await;
    let faults = f.server.faults();
    faults.set(&FaultTarget::Suffix("sub.example.test".into()), Fault::ServFail).unwrap();
    faults.set(&name("y.sub.example.test"), Fault::Refused).unwrap();
    let x = udp(f.addr, "x.sub.example.test.", RecordType::A).await;
    assert_eq!(x.metadata.response_code, ResponseCode::ServFail);
    let sub = udp(f.addr, "sub.example.test.", RecordType::A).await;
    assert_eq!(sub.metadata.response_code, ResponseCode::ServFail);
    let y = udp(f.addr, "y.sub.example.test.", RecordType::A).await;
    assert_eq!(y.metadata.response_code, ResponseCode::Refused);
    let other = udp(f.addr, "blue.example.test.", RecordType::A).await;
    assert_eq!(other.metadata.response_code, ResponseCode::NoError);
    let err = faults.set(&name("bad..name"), Fault::Drop).unwrap_err();
    assert_eq!(err.to_string(), "parse fault target name \"bad..name\"");
}
