//! Each fault kind, observed the way a client sees it, against a real server on loopback.

#[path = "dns_common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{answers, authority, client_socket, start, tcp, udp, udp_query_on};
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
    assert_eq!(logged[0].rcode, "SERVFAIL");
    assert_eq!(logged[0].fault.as_deref(), Some("servfail"));

    assert!(faults.clear(&name("blue.example.test")).unwrap());
    let back = udp(f.addr, "blue.example.test.", RecordType::A).await;
    assert_eq!(answers(&back), vec!["blue.example.test. 60 IN A 192.0.2.10"]);
}

#[tokio::test]
async fn drop_sends_nothing_so_the_client_times_out_and_is_logged() {
    let f = start().await;
    f.server.faults().set(&name("app.example.test"), Fault::Drop).unwrap();
    let socket = client_socket(f.addr).await;
    let got = udp_query_on(&socket, f.addr, "app.example.test.", RecordType::A, Duration::from_millis(500)).await;
    assert!(got.is_none());
    let entry = f.server.log().query(&LogFilter::new().name("app.example.test")).pop().unwrap();
    assert_eq!(entry.rcode, "-");
    assert_eq!(entry.fault.as_deref(), Some("drop"));
    f.server.faults().clear_all();
    let msg = udp(f.addr, "app.example.test.", RecordType::A).await;
    assert_eq!(msg.answers.len(), 2);
}

#[tokio::test]
async fn delay_answers_after_the_delay_without_holding_up_other_clients() {
    let f = start().await;
    let delay = Duration::from_millis(700);
    f.server.faults().set(&name("blue.example.test"), Fault::Delay(delay)).unwrap();
    let addr = f.addr;
    let slow = tokio::spawn(async move {
        let t = Instant::now();
        let socket = client_socket(addr).await;
        let msg = udp_query_on(&socket, addr, "blue.example.test.", RecordType::A, Duration::from_secs(3)).await;
        (msg, t.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Instant::now();
    let fast = udp(f.addr, "green.example.test.", RecordType::A).await;
    let fast_took = t.elapsed();
    assert_eq!(answers(&fast), vec!["green.example.test. 60 IN A 192.0.2.20"]);
    let (msg, took) = slow.await.unwrap();
    let msg = msg.expect("delayed answer arrives");
    assert_eq!(answers(&msg), vec!["blue.example.test. 60 IN A 192.0.2.10"]);
    assert!(took >= delay, "answered after {took:?}, delay {delay:?}");
    assert!(fast_took < delay, "other client waited {fast_took:?}");
    let entry = f.server.log().query(&LogFilter::new().name("blue.example.test")).pop().unwrap();
    assert_eq!(entry.fault.as_deref(), Some("delay 700ms"));
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
    for n in ["blue.example.test.", "nope.example.test.", "www.example.org."] {
        let got = udp_query_on(&socket, f.addr, n, RecordType::A, Duration::from_millis(300)).await;
        assert!(got.is_none(), "{n}: a UDP query must get no answer at all (not even TC): {got:?}");
    }
    let ok = tcp(f.addr, "blue.example.test.", RecordType::A).await;
    assert!(!ok.metadata.truncation);
    assert_eq!(answers(&ok), vec!["blue.example.test. 60 IN A 192.0.2.10"]);
    let log = f.server.log().query(&LogFilter::new().name("blue.example.test"));
    let seen: Vec<(Transport, &str, bool, Option<&str>)> = log.iter().map(|e| (e.transport, e.rcode.as_str(), e.truncated, e.fault.as_deref())).collect();
    assert_eq!(seen, vec![(Transport::Udp, "-", false, Some("tcp-only")), (Transport::Tcp, "NOERROR", false, Some("tcp-only"))]);
    assert!(f.server.faults().clear(&FaultTarget::Server).unwrap());
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
