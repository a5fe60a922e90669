//! The lab's authoritative DNS server: zones from plain data, runtime control, a query log, faults and DNS64, served by hickory-server on sockets the caller binds.
//!
//! ```no_run
//! use std::time::Instant;
//! use nslab::dns::{DnsOptions, DnsServer, DnsSockets, RecordValue, Soa, Zone};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // The caller binds (for instance inside the lab's DNS namespace) and hands the sockets in.
//! let udp = tokio::net::UdpSocket::bind("192.0.2.53:53").await?;
//! let tcp = tokio::net::TcpListener::bind("192.0.2.53:53").await?;
//! let zone = Zone::new("example.test", Soa::new("ns", "hostmaster"))
//!     .record("blue", 60, RecordValue::Host("blue".into()))
//!     .record("green", 60, RecordValue::Host("green".into()))
//!     .record("app", 30, RecordValue::Cname("blue".into()));
//! let mut options = DnsOptions::new(Instant::now());
//! options.hosts.insert("blue".into(), vec!["192.0.2.10".parse()?]);
//! options.hosts.insert("green".into(), vec!["192.0.2.20".parse()?, "2001:db8::20".parse()?]);
//! let server = DnsServer::start(DnsSockets { udp: vec![udp], tcp: vec![tcp] }, vec![zone], options)?;
//!
//! let swapped_at = server.log().now();
//! server.zone("example.test")?.swap_cname("app", "green").await?;
//! // ... run clients, then: who still asked for the name after the swap, and what did they get?
//! let after = server.log().query(&nslab::dns::LogFilter::new().name("app.example.test").since(swapped_at));
//! # let _ = after;
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

mod control;
mod dns64;
mod edit;
mod error;
mod fault;
mod handler;
mod log;
mod lookup;
mod server;
mod store;
mod tcp;
mod traffic;
mod udp;
mod wire;
mod zone;

pub use control::ZoneControl;
pub use dns64::Dns64;
pub use error::{ControlError, LogError, ServerError, ZoneError};
pub use fault::{Fault, FaultTarget, Faults};
/// hickory's query type and response code, as [`QueryLogEntry`] carries them.
pub use hickory_proto::{op::ResponseCode, rr::RecordType};
pub(crate) use log::write_jsonl;
pub use log::{rcode_name, AnswerRecord, LogFilter, QueryLog, QueryLogEntry, Transport};
pub use server::{DnsOptions, DnsServer, DnsSockets};
pub use traffic::{decode_packet, entries_of, AddressBook, TrafficEntry, TrafficLog, WireAnswer, DEFAULT_CAPACITY as TRAFFIC_CAPACITY};
pub use zone::{HostAddrs, ParseKindError, RecordKind, RecordSpec, RecordValue, Soa, Zone};
