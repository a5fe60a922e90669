//! The request handler hickory's `Server` calls for every decoded message: applies faults, answers from the zones, sends, and logs.

use std::{net::SocketAddr, sync::Arc};

use hickory_proto::{
    op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode},
    rr::{DNSClass, Record, RecordType},
};
use hickory_server::{
    net::{runtime::Time, xfer::Protocol, NetError},
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo},
    zone_handler::MessageResponseBuilder,
};
use tracing::{debug, warn};

use super::{
    dns64::Dns64Switch,
    fault::{Fault, Faults},
    log::{QueryLog, RawEntry, Transport},
    lookup::{self, Answer},
    store::ZoneSet,
};

/// Answers queries from the lab's zones; shared state is behind `Arc`s so it is cheap to clone.
#[derive(Clone)]
pub(crate) struct LabHandler {
    pub(crate) zones: Arc<ZoneSet>,
    pub(crate) faults: Faults,
    pub(crate) log: QueryLog,
    pub(crate) dns64: Dns64Switch,
}

/// What to send back for one request.
enum Reply {
    /// Send nothing.
    Nothing,
    /// An error or fault code with empty sections (authority may carry a SOA).
    Code { rcode: ResponseCode, authoritative: bool, authority: Vec<Record> },
    /// Truncated over UDP: TC bit, empty answer.
    Truncated,
    /// A real answer.
    Answer { answer: Answer, authoritative: bool },
}

impl LabHandler {
    /// Logs a query that did not parse (answered FORMERR by the UDP loop, or not at all).
    pub(crate) fn log_unparsed(&self, client: SocketAddr, transport: Transport, sent: Result<ResponseInfo, NetError>) {
        let info = match sent {
            Ok(info) => Some(info),
            Err(error) => {
                warn!(%error, %client, "failed to send DNS response");
                None
            }
        };
        self.log.push(RawEntry {
            at: self.log.now(),
            client,
            transport,
            question: None,
            rcode: info.map(|i| i.response_code),
            truncated: false,
            sets: Vec::new(),
            synthesized: Vec::new(),
            fault: None,
        });
    }

    async fn decide(&self, request: &Request, transport: Transport) -> (Reply, Option<Fault>) {
        if request.metadata.op_code != OpCode::Query {
            return (code(ResponseCode::NotImp), None);
        }
        let queries = request.queries.queries();
        let [query] = queries else {
            return (code(ResponseCode::FormErr), None);
        };
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return (code(ResponseCode::BADVERS), None);
        }
        let qname = query.name();
        let fault = self.faults.find(qname);
        match fault {
            Some(Fault::Drop) => return (Reply::Nothing, fault),
            Some(Fault::ServFail) => return (code(ResponseCode::ServFail), fault),
            Some(Fault::Refused) => return (code(ResponseCode::Refused), fault),
            Some(Fault::NxDomain) => {
                let authority = match self.zones.find(qname) {
                    Some(zone) => {
                        let map = zone.store.records().await;
                        lookup::negative_soa(&map, &zone.origin).into_iter().collect()
                    }
                    None => Vec::new(),
                };
                let authoritative = !authority.is_empty();
                let reply = Reply::Code { rcode: ResponseCode::NXDomain, authoritative, authority };
                return (reply, fault);
            }
            Some(Fault::Truncate) if transport == Transport::Udp => return (Reply::Truncated, fault),
            Some(Fault::TcpOnly) if transport == Transport::Udp => return (Reply::Nothing, fault),
            Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
            Some(Fault::Truncate | Fault::TcpOnly) | None => {}
        }
        let qtype = query.query_type();
        if query.query_class() != DNSClass::IN || matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return (code(ResponseCode::Refused), fault);
        }
        let Some(zone) = self.zones.find(qname) else {
            return (code(ResponseCode::Refused), fault);
        };
        let dns64 = self.dns64.for_client(request.src().ip());
        let answer = {
            let map = zone.store.records().await;
            lookup::resolve(&map, &zone.origin, qname, qtype, dns64.as_ref())
        };
        (Reply::Answer { answer, authoritative: true }, fault)
    }
}

fn code(rcode: ResponseCode) -> Reply {
    Reply::Code { rcode, authoritative: false, authority: Vec::new() }
}

#[async_trait::async_trait]
impl RequestHandler for LabHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut response_handle: R) -> ResponseInfo {
        let at = self.log.now();
        let transport = match request.protocol() {
            Protocol::Udp => Transport::Udp,
            _ => Transport::Tcp,
        };
        let (reply, fault) = self.decide(request, transport).await;

        let response_edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(req.max_payload().max(512));
            edns.set_version(0);
            edns
        });
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let empty: [Record; 0] = [];
        let builder = MessageResponseBuilder::new(&request.queries, response_edns.as_ref());
        let sent = match &reply {
            Reply::Nothing => None,
            Reply::Code { rcode, authoritative, authority } => {
                metadata.response_code = *rcode;
                metadata.authoritative = *authoritative;
                let response = builder.build(metadata, empty.iter(), authority.iter(), empty.iter(), empty.iter());
                Some(response_handle.send_response(response).await)
            }
            Reply::Truncated => {
                metadata.authoritative = true;
                metadata.truncation = true;
                let response = builder.build_no_records(metadata);
                Some(response_handle.send_response(response).await)
            }
            Reply::Answer { answer, authoritative } => {
                metadata.response_code = answer.rcode;
                metadata.authoritative = *authoritative;
                let response = builder.build(metadata, answer.answers(), answer.authority.iter(), empty.iter(), empty.iter());
                Some(response_handle.send_response(response).await)
            }
        };

        let info = match sent {
            Some(Ok(info)) => Some(info),
            Some(Err(error)) => {
                warn!(%error, client = %request.src(), "failed to send DNS response");
                None
            }
            None => None,
        };
        let question = request.queries.queries().first().map(|q| (q.name().clone(), q.query_type()));
        // The answer moves into the log: its record sets are shared, not copied or formatted.
        let (sets, synthesized) = match reply {
            Reply::Answer { answer, .. } => (answer.sets, answer.synthesized),
            _ => (Vec::new(), Vec::new()),
        };
        debug!(client = %request.src(), question = ?question, rcode = ?info.map(|i| i.response_code), "dns query");
        self.log.push(RawEntry {
            at,
            client: request.src(),
            transport,
            question,
            rcode: info.map(|i| i.response_code),
            truncated: info.is_some_and(|i| i.truncation),
            sets,
            synthesized,
            fault,
        });

        info.unwrap_or_else(|| {
            // Nothing was sent: report the code we would have used, with empty counts.
            let mut meta = Metadata::response_from_request(&request.metadata);
            meta.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header { metadata: meta, counts: HeaderCounts::default() })
        })
    }
}
