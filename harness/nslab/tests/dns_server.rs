//! Authoritative answers, runtime control, DNS64, the query log and dig, against a real server on loopback.

#[path = "dns_common/mod.rs"]
mod common;

use std::time::Duration;

use common::{answers, authority, start, start_with, tcp, udp};
use hickory_proto::{op::ResponseCode, rr::RecordType};
use nslab::dns::{AnswerRecord, ControlError, Dns64, LogFilter, RecordKind, RecordSpec, RecordValue as V, Transport, ZoneError};

const SOA_NEG: &str = "example.test. 30 IN SOA ns.example.test. hostmaster.example.test. 100 3600 600 86400 30";

#[tokio::test]
async fn a_query_gets_exact_record_ttl_and_aa() {
    let f = start().await;
    let msg = udp(f.addr, "ns.example.test.", RecordType::A).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    assert!(msg.metadata.authoritative);
    assert!(!msg.metadata.truncation);
    assert_eq!(answers(&msg), vec!["ns.example.test. 3600 IN A 192.0.2.53"]);
    assert!(msg.authorities.is_empty());
}

#[tokio::test]
async fn host_reference_expands_to_the_hosts_addresses_per_family() {
    let f = start().await;
    let a = udp(f.addr, "web.example.test.", RecordType::A).await;
    assert_eq!(answers(&a), vec!["web.example.test. 60 IN A 192.0.2.2"]);
    let aaaa = tcp(f.addr, "web.example.test.", RecordType::AAAA).await;
    assert_eq!(answers(&aaaa), vec!["web.example.test. 60 IN AAAA 2001:db8::2"]);
}

#[tokio::test]
async fn cname_chain_is_followed_and_returned_whole_with_each_ttl() {
    let f = start().await;
    let msg = udp(f.addr, "CHAIN1.example.test.", RecordType::A).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    assert!(msg.metadata.authoritative);
    assert_eq!(
        answers(&msg),
        vec![
            "chain1.example.test. 40 IN CNAME chain2.example.test.",
            "chain2.example.test. 50 IN CNAME app.example.test.",
            "app.example.test. 30 IN CNAME blue.example.test.",
            "blue.example.test. 60 IN A 192.0.2.10",
        ]
    );
}

#[tokio::test]
async fn nxdomain_carries_soa_with_negative_ttl_min_of_ttl_and_minimum() {
    let f = start().await;
    let msg = udp(f.addr, "nope.example.test.", RecordType::A).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain);
    assert!(msg.metadata.authoritative);
    assert!(msg.answers.is_empty());
    assert_eq!(authority(&msg), vec![SOA_NEG]);
}

#[tokio::test]
async fn nodata_is_noerror_with_soa_and_empty_non_terminal_is_nodata() {
    let f = start().await;
    let msg = udp(f.addr, "txt.example.test.", RecordType::AAAA).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    assert!(msg.answers.is_empty());
    assert_eq!(authority(&msg), vec![SOA_NEG]);
    let ent = udp(f.addr, "sub.example.test.", RecordType::A).await;
    assert_eq!(ent.metadata.response_code, ResponseCode::NoError);
    assert!(ent.answers.is_empty());
    assert_eq!(authority(&ent), vec![SOA_NEG]);
}

#[tokio::test]
async fn cname_to_missing_in_zone_name_is_nxdomain_with_the_cname() {
    let f = start().await;
    let msg = udp(f.addr, "dangling.example.test.", RecordType::A).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(answers(&msg), vec!["dangling.example.test. 30 IN CNAME missing.example.test."]);
    assert_eq!(authority(&msg), vec![SOA_NEG]);
}

#[tokio::test]
async fn cname_leaving_the_zone_and_cname_loops_stop_with_noerror() {
    let f = start().await;
    let out = udp(f.addr, "outside.example.test.", RecordType::A).await;
    assert_eq!(out.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&out), vec!["outside.example.test. 30 IN CNAME www.example.org."]);
    assert!(out.authorities.is_empty());
    let lp = udp(f.addr, "loop1.example.test.", RecordType::A).await;
    assert_eq!(lp.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&lp), vec!["loop1.example.test. 30 IN CNAME loop2.example.test.", "loop2.example.test. 30 IN CNAME loop1.example.test.",]);
}

#[tokio::test]
async fn names_outside_every_zone_are_refused_without_aa() {
    let f = start().await;
    let msg = udp(f.addr, "www.example.org.", RecordType::A).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::Refused);
    assert!(!msg.metadata.authoritative);
    assert!(msg.answers.is_empty());
}

#[tokio::test]
async fn txt_srv_ns_ptr_and_cname_queries_answer_their_data() {
    let f = start().await;
    let txt = udp(f.addr, "txt.example.test.", RecordType::TXT).await;
    // hickory renders TXT unquoted; check that it is one character-string on the wire.
    assert_eq!(answers(&txt), vec!["txt.example.test. 120 IN TXT hello world"]);
    let hickory_proto::rr::RData::TXT(data) = &txt.answers[0].data else {
        panic!("not TXT: {:?}", txt.answers[0]);
    };
    assert_eq!(data.txt_data.len(), 1);
    assert_eq!(&*data.txt_data[0], b"hello world");
    let srv = udp(f.addr, "_http._tcp.example.test.", RecordType::SRV).await;
    assert_eq!(answers(&srv), vec!["_http._tcp.example.test. 90 IN SRV 10 5 8080 web.example.test."]);
    let ns = udp(f.addr, "example.test.", RecordType::NS).await;
    assert_eq!(answers(&ns), vec!["example.test. 3600 IN NS ns.example.test."]);
    let ptr = udp(f.addr, "2.0.0.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(answers(&ptr), vec!["2.0.0.10.in-addr.arpa. 60 IN PTR web.example.test."]);
    let cname = udp(f.addr, "app.example.test.", RecordType::CNAME).await;
    assert_eq!(answers(&cname), vec!["app.example.test. 30 IN CNAME blue.example.test."]);
}

#[tokio::test]
async fn mx_queries_answer_every_exchange_with_its_preference_and_are_logged_typed() {
    let f = start().await;
    let mark = f.server.log().now();
    let mx = tcp(f.addr, "post.example.test.", RecordType::MX).await;
    assert_eq!(mx.metadata.response_code, ResponseCode::NoError);
    assert!(mx.metadata.authoritative);
    assert_eq!(answers(&mx), vec!["post.example.test. 300 IN MX 10 web.example.test.", "post.example.test. 300 IN MX 20 mx.example.org."]);
    // The owner has MX only: an A query there is NODATA, not NXDOMAIN.
    let a = udp(f.addr, "post.example.test.", RecordType::A).await;
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(a.answers.is_empty());
    let logged = f.server.log().query(&LogFilter::new().name("post.example.test").qtype(RecordType::MX).since(mark));
    assert_eq!(logged.len(), 1);
    assert_eq!(
        logged[0].answers,
        vec![
            AnswerRecord::new("post.example.test.", 300, V::Mx { preference: 10, exchange: "web.example.test.".into() }),
            AnswerRecord::new("post.example.test.", 300, V::Mx { preference: 20, exchange: "mx.example.org.".into() }),
        ]
    );
    // MX sets are managed at run time like any other type.
    let zone = f.server.zone("example.test").unwrap();
    zone.replace_set("post", RecordKind::Mx, 60, vec![V::Mx { preference: 5, exchange: "green".into() }]).await.unwrap();
    assert_eq!(answers(&udp(f.addr, "post.example.test.", RecordType::MX).await), vec!["post.example.test. 60 IN MX 5 green.example.test."]);
    let wrong = zone.replace_set("post", RecordKind::Mx, 60, vec![V::A("192.0.2.9".parse().unwrap())]).await.unwrap_err();
    assert!(matches!(&wrong, ControlError::Zone { source: ZoneError::KindMismatch { .. }, .. }), "{wrong:?}");
}

#[tokio::test]
async fn serves_over_ipv6_loopback() {
    let f = start_with("::1".parse().unwrap(), |_| {}).await;
    let msg = udp(f.addr, "blue.example.test.", RecordType::A).await;
    assert_eq!(answers(&msg), vec!["blue.example.test. 60 IN A 192.0.2.10"]);
    let msg = tcp(f.addr, "blue.example.test.", RecordType::A).await;
    assert_eq!(answers(&msg), vec!["blue.example.test. 60 IN A 192.0.2.10"]);
    let entry = f.server.log().entries().pop().unwrap();
    assert_eq!(entry.client.ip(), "::1".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(entry.transport, Transport::Tcp);
}

#[tokio::test]
async fn large_answer_is_truncated_over_udp_without_edns_and_whole_over_tcp() {
    let f = start().await;
    let zone = f.server.zone("example.test").unwrap();
    let values = (1..=60).map(|i| V::A(std::net::Ipv4Addr::new(10, 1, 0, i))).collect();
    zone.replace_set("many", RecordKind::A, 60, values).await.unwrap();
    // No EDNS: the 512-byte limit applies.
    let socket = common::client_socket(f.addr).await;
    let msg = Message0::no_edns(&socket, f.addr, "many.example.test.").await;
    assert!(msg.metadata.truncation);
    assert!(msg.answers.len() < 60);
    let full = tcp(f.addr, "many.example.test.", RecordType::A).await;
    assert!(!full.metadata.truncation);
    assert_eq!(full.answers.len(), 60);
}

/// A query without EDNS, built by hand.
struct Message0;
impl Message0 {
    async fn no_edns(socket: &tokio::net::UdpSocket, server: std::net::SocketAddr, name: &str) -> hickory_proto::op::Message {
        let (id, bytes) = common::query_bytes(name, RecordType::A, false);
        socket.send_to(&bytes, server).await.unwrap();
        let mut buf = vec![0u8; 65535];
        let (n, _) = tokio::time::timeout(common::GUARD, socket.recv_from(&mut buf)).await.unwrap().unwrap();
        assert!(n <= 512, "UDP answer without EDNS was {n} bytes");
        let msg = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(msg.metadata.id, id);
        msg
    }
}

#[tokio::test]
async fn cname_swap_is_seen_by_the_very_next_query_and_bumps_the_serial() {
    let f = start().await;
    let zone = f.server.zone("example.test.").unwrap();
    let before = udp(f.addr, "app.example.test.", RecordType::A).await;
    assert_eq!(answers(&before)[1], "blue.example.test. 60 IN A 192.0.2.10");
    let serial = zone.swap_cname("app", "green").await.unwrap();
    assert_eq!(serial, 101);
    let after = udp(f.addr, "app.example.test.", RecordType::A).await;
    assert_eq!(answers(&after), vec!["app.example.test. 30 IN CNAME green.example.test.", "green.example.test. 60 IN A 192.0.2.20",]);
    let soa = udp(f.addr, "example.test.", RecordType::SOA).await;
    assert_eq!(answers(&soa), vec!["example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 101 3600 600 86400 30"]);
    // Many swaps, each checked by the next query.
    for i in 0..50 {
        let target = if i % 2 == 0 { "blue" } else { "green" };
        zone.swap_cname("app", target).await.unwrap();
        let msg = udp(f.addr, "app.example.test.", RecordType::A).await;
        assert_eq!(answers(&msg)[0], format!("app.example.test. 30 IN CNAME {target}.example.test."));
    }
    assert_eq!(zone.serial().await, 151);
}

#[tokio::test]
async fn swap_of_a_name_without_cname_is_an_error() {
    let f = start().await;
    let zone = f.server.zone("example.test").unwrap();
    let err = zone.swap_cname("blue", "green").await.unwrap_err();
    assert_eq!(err.to_string(), "change CNAME set at blue.example.test.: no such record set");
    assert_eq!(zone.serial().await, 100);
    let err = f.server.zone("nothere.test").unwrap_err();
    assert!(matches!(err, ControlError::NoSuchZone { .. }));
}

#[tokio::test]
async fn add_replace_ttl_and_delete_change_answers_at_once() {
    let f = start().await;
    let zone = f.server.zone("example.test").unwrap();

    zone.add_record(RecordSpec::new("blue", 60, V::A("192.0.2.11".parse().unwrap()))).await.unwrap();
    let two = udp(f.addr, "blue.example.test.", RecordType::A).await;
    let mut got = answers(&two);
    got.sort();
    assert_eq!(got, vec!["blue.example.test. 60 IN A 192.0.2.10", "blue.example.test. 60 IN A 192.0.2.11"]);

    // A record with another TTL moves the whole set to it: never mixed TTLs.
    zone.add_record(RecordSpec::new("blue", 5, V::A("192.0.2.12".parse().unwrap()))).await.unwrap();
    let three = udp(f.addr, "blue.example.test.", RecordType::A).await;
    assert_eq!(three.answers.len(), 3);
    assert!(three.answers.iter().all(|r| r.ttl == 5));

    zone.set_ttl("blue", RecordKind::A, 7).await.unwrap();
    let ttl7 = udp(f.addr, "blue.example.test.", RecordType::A).await;
    assert!(ttl7.answers.iter().all(|r| r.ttl == 7));

    zone.replace_set("blue", RecordKind::A, 15, vec![V::Host("web".into())]).await.unwrap();
    let replaced = udp(f.addr, "blue.example.test.", RecordType::A).await;
    assert_eq!(answers(&replaced), vec!["blue.example.test. 15 IN A 192.0.2.2"]);

    // Replacing a CNAME name with an address is one atomic step.
    zone.replace_set("app", RecordKind::A, 10, vec![V::A("192.0.2.77".parse().unwrap())]).await.unwrap();
    let app = udp(f.addr, "app.example.test.", RecordType::A).await;
    assert_eq!(answers(&app), vec!["app.example.test. 10 IN A 192.0.2.77"]);

    zone.delete_set("blue", RecordKind::A).await.unwrap();
    let gone = udp(f.addr, "blue.example.test.", RecordType::A).await;
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);

    zone.delete_name("web").await.unwrap();
    let web = udp(f.addr, "web.example.test.", RecordType::AAAA).await;
    assert_eq!(web.metadata.response_code, ResponseCode::NXDomain);
    // 7 changes, each bumped the serial once.
    assert_eq!(zone.serial().await, 107);
    let err = zone.delete_name("web").await.unwrap_err();
    assert_eq!(err.to_string(), "delete web.example.test.: no such name");
}

#[tokio::test]
async fn adding_data_next_to_a_cname_is_rejected_and_changes_nothing() {
    let f = start().await;
    let zone = f.server.zone("example.test").unwrap();
    let err = zone.add_record(RecordSpec::new("app", 60, V::A("192.0.2.1".parse().unwrap()))).await.unwrap_err();
    assert_eq!(err.to_string(), "apply change to zone example.test.");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(source, "add A at app.example.test.: a CNAME must be the only record set at its name");
    assert_eq!(zone.serial().await, 100);
    let err = zone.replace_set("blue", RecordKind::A, 60, vec![V::Txt(vec!["x".into()])]).await.unwrap_err();
    assert_eq!(std::error::Error::source(&err).unwrap().to_string(), "use a TXT value in a A record set at blue.example.test.");
}

#[tokio::test]
async fn dns64_synthesizes_aaaa_from_a_following_cnames() {
    let f = start_with("127.0.0.1".parse().unwrap(), |o| o.dns64 = Some(Dns64::well_known())).await;
    let msg = udp(f.addr, "v4only.example.test.", RecordType::AAAA).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    // TTL min(A TTL 300, SOA MINIMUM 30).
    assert_eq!(answers(&msg), vec!["v4only.example.test. 30 IN AAAA 64:ff9b::c000:221"]);
    let alias = udp(f.addr, "alias4.example.test.", RecordType::AAAA).await;
    assert_eq!(answers(&alias), vec!["alias4.example.test. 20 IN CNAME v4only.example.test.", "v4only.example.test. 30 IN AAAA 64:ff9b::c000:221",]);
    // A name with a real AAAA keeps it; a missing name stays NXDOMAIN; A queries are untouched.
    let web = udp(f.addr, "web.example.test.", RecordType::AAAA).await;
    assert_eq!(answers(&web), vec!["web.example.test. 60 IN AAAA 2001:db8::2"]);
    let nx = udp(f.addr, "nope.example.test.", RecordType::AAAA).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    let a = udp(f.addr, "v4only.example.test.", RecordType::A).await;
    assert_eq!(answers(&a), vec!["v4only.example.test. 300 IN A 192.0.2.33"]);
    // Without DNS64 the same query is NODATA.
    let plain = start().await;
    let nodata = udp(plain.addr, "v4only.example.test.", RecordType::AAAA).await;
    assert!(nodata.answers.is_empty());
    assert_eq!(authority(&nodata), vec![SOA_NEG]);
}

#[tokio::test]
async fn query_log_records_client_transport_rcode_answers_and_writes_jsonl() {
    let f = start().await;
    let socket = common::client_socket(f.addr).await;
    let client = socket.local_addr().unwrap();
    let mark = f.server.log().now();
    common::udp_query_on(&socket, f.addr, "app.example.test.", RecordType::A, common::GUARD).await.unwrap();
    tcp(f.addr, "nope.example.test.", RecordType::AAAA).await;

    let app = f.server.log().query(&LogFilter::new().name("app.example.test").since(mark));
    assert_eq!(app.len(), 1);
    let e = &app[0];
    assert_eq!(e.client, client);
    assert_eq!(e.transport, Transport::Udp);
    assert_eq!(e.qtype, Some(RecordType::A));
    assert_eq!(e.rcode, Some(ResponseCode::NoError));
    assert_eq!(
        e.answers,
        vec![
            AnswerRecord::new("app.example.test.", 30, V::Cname("blue.example.test.".into())),
            AnswerRecord::new("blue.example.test.", 60, V::A("192.0.2.10".parse().unwrap()))
        ]
    );
    assert_eq!(e.fault, None);
    assert!(e.at >= mark);

    let nx = f.server.log().query(&LogFilter::new().transport(Transport::Tcp));
    assert_eq!(nx.len(), 1);
    assert_eq!(nx[0].name, "nope.example.test.");
    assert_eq!(nx[0].qtype, Some(RecordType::AAAA));
    assert_eq!(nx[0].rcode, Some(ResponseCode::NXDomain));
    assert_eq!(nx[0].client.ip(), client.ip());

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("queries.jsonl");
    assert_eq!(f.server.log().write_jsonl(&path).unwrap(), 2);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["client"], client.to_string());
    assert_eq!(lines[0]["transport"], "udp");
    assert_eq!(lines[0]["qtype"], "A");
    assert_eq!(lines[0]["rcode"], "NOERROR");
    assert_eq!(lines[0]["answers"], serde_json::json!(["app.example.test. 30 IN CNAME blue.example.test.", "blue.example.test. 60 IN A 192.0.2.10"]));
    assert_eq!(lines[1]["qtype"], "AAAA");
    assert_eq!(lines[1]["rcode"], "NXDOMAIN");
}

#[tokio::test]
async fn log_capacity_bounds_memory_and_counts_discarded_entries() {
    let f = start_with("127.0.0.1".parse().unwrap(), |o| o.log_capacity = 5).await;
    for _ in 0..8 {
        udp(f.addr, "blue.example.test.", RecordType::A).await;
    }
    assert_eq!(f.server.log().len(), 5);
    assert_eq!(f.server.log().dropped(), 3);
}

/// Shutdown does not wait for its clients: an idle TCP connection (which the server would keep
/// for an hour) and a query held by a delay fault (an hour too) do not hold it up, and once it
/// returns both ports are free. What would hold it up would hold it for the hour, so the
/// test's hang guard tells the two apart on any machine.
#[tokio::test]
async fn shutdown_stops_answering_promptly() {
    let hour = Duration::from_secs(3600);
    let f = start_with("127.0.0.1".parse().unwrap(), |o| o.tcp_idle_timeout = hour).await;
    udp(f.addr, "blue.example.test.", RecordType::A).await;
    let mut idle = tokio::net::TcpStream::connect(f.addr).await.unwrap();
    common::tcp_on(&mut idle, "blue.example.test.", RecordType::A).await;
    f.server.faults().set(&nslab::dns::FaultTarget::Name("green.example.test".into()), nslab::dns::Fault::Delay(hour)).unwrap();
    let held = common::client_socket(f.addr).await;
    let (_, q) = common::query_bytes("green.example.test.", RecordType::A, true);
    held.send_to(&q, f.addr).await.unwrap();
    // The held query has reached the server once a query sent after it has been answered.
    assert!(common::replies_before_next_answer(&held, f.addr).await.is_empty());
    tokio::time::timeout(common::GUARD, f.server.shutdown()).await.expect("shutdown waited for an idle connection or a held query").unwrap();
    // The idle connection is closed by the server: end of stream, not a hang.
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(common::GUARD, tokio::io::AsyncReadExt::read(&mut idle, &mut byte)).await.expect("the idle connection is closed");
    assert!(matches!(read, Ok(0) | Err(_)), "the idle connection still delivers data: {read:?}");
    // Both sockets are closed: the port can be bound again, and TCP connects are refused.
    assert!(tokio::net::TcpStream::connect(f.addr).await.is_err());
    tokio::net::UdpSocket::bind(f.addr).await.expect("the server's UDP port is free after shutdown");
    // A second shutdown from a clone is a no-op.
    f.server.clone().shutdown().await.unwrap();
}

#[tokio::test]
async fn dig_sees_exact_records_ttls_and_flags() {
    let Ok(out) = tokio::process::Command::new("dig").arg("-v").output().await else {
        // CI sets NSLAB_REQUIRE_ALL=1: there, a missing dig is a failure, not a skip.
        assert!(
            std::env::var_os("NSLAB_REQUIRE_ALL").is_none_or(|v| v != "1"),
            "dig_sees_exact_records_ttls_and_flags: dig is not installed (apt-get install bind9-dnsutils) and NSLAB_REQUIRE_ALL=1"
        );
        eprintln!("SKIPPED dig_sees_exact_records_ttls_and_flags: dig is not installed (apt-get install bind9-dnsutils)");
        return;
    };
    assert!(out.status.success());
    let f = start().await;
    let dig = |args: Vec<String>| async move {
        let out = tokio::process::Command::new("dig").args(&args).output().await.unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let port = f.addr.port().to_string();
    let base = |name: &str, t: &str, extra: &[&str]| {
        let mut v: Vec<String> = ["@127.0.0.1", "-p", &port, "+norecurse", "+time=2", "+tries=1", name, t].iter().map(ToString::to_string).collect();
        v.extend(extra.iter().map(ToString::to_string));
        v
    };
    let mx = dig(base("post.example.test", "MX", &["+noall", "+answer"])).await;
    let lines: Vec<Vec<&str>> = mx.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        lines,
        vec![vec!["post.example.test.", "300", "IN", "MX", "10", "web.example.test."], vec!["post.example.test.", "300", "IN", "MX", "20", "mx.example.org."]]
    );
    let short = dig(base("app.example.test", "A", &["+noall", "+answer"])).await;
    let lines: Vec<Vec<&str>> = short.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines, vec![vec!["app.example.test.", "30", "IN", "CNAME", "blue.example.test."], vec!["blue.example.test.", "60", "IN", "A", "192.0.2.10"],]);
    let full = dig(base("nope.example.test", "A", &[])).await;
    assert!(full.contains("status: NXDOMAIN"), "{full}");
    assert!(full.contains("flags: qr aa;"), "{full}");
    let soa_line: Vec<&str> = full.lines().find(|l| l.contains("SOA") && !l.starts_with(';')).unwrap().split_whitespace().collect();
    assert_eq!(soa_line[..4], ["example.test.", "30", "IN", "SOA"]);
    let tcp_out = dig(base("web.example.test", "AAAA", &["+tcp", "+noall", "+answer"])).await;
    let fields: Vec<&str> = tcp_out.split_whitespace().collect();
    assert_eq!(fields, ["web.example.test.", "60", "IN", "AAAA", "2001:db8::2"]);
    let refused = dig(base("www.example.org", "A", &[])).await;
    assert!(refused.contains("status: REFUSED"), "{refused}");
    let tcp_entries = f.server.log().query(&LogFilter::new().transport(Transport::Tcp));
    assert_eq!(tcp_entries.len(), 1);
    assert_eq!(tcp_entries[0].name, "web.example.test.");
}
