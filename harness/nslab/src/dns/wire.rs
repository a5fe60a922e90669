//! DNS messages on the wire for the serving loops: what an incoming message is (a query, a malformed query, or nothing to answer), and how a response is encoded.

use std::net::SocketAddr;

use hickory_proto::{
    op::{Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode},
    rr::Record,
    serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder},
};
use hickory_server::{
    net::{xfer::Protocol, NetError},
    server::{Request, ResponseInfo},
    zone_handler::MessageResponse,
};
use tracing::{debug, warn};

/// What an incoming message is.
// Made and matched at once, never stored: boxing the request would cost an allocation per query.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Incoming {
    /// Nothing to answer: shorter than a header, a response (answering would reflect), or from
    /// an address no answer can go to (port 0, unspecified), as hickory's own server decides.
    Ignore,
    /// A query whose header parses but whose body does not: answered FORMERR, with its header.
    Malformed(Metadata),
    /// A query for the request handler.
    Query(Request),
}

/// Classifies one message received from `src`.
pub(crate) fn parse(message: &[u8], src: SocketAddr, protocol: Protocol) -> Incoming {
    if src.port() == 0 || src.ip().is_unspecified() {
        return Incoming::Ignore;
    }
    let Ok(header) = Header::read(&mut BinDecoder::new(message)) else {
        return Incoming::Ignore;
    };
    if header.metadata.message_type == MessageType::Response {
        return Incoming::Ignore;
    }
    match Request::from_bytes(message.to_vec(), src, protocol) {
        Ok(request) => Incoming::Query(request),
        Err(error) => {
            debug!(%error, client = %src, %protocol, "malformed query");
            Incoming::Malformed(header.metadata)
        }
    }
}

/// The FORMERR answer to a malformed query: a bare header with the query's id.
pub(crate) fn form_err(request: &Metadata) -> Result<(ResponseInfo, Vec<u8>), NetError> {
    let mut metadata = Metadata::response_from_request(request);
    metadata.response_code = ResponseCode::FormErr;
    bare(metadata)
}

fn bare(metadata: Metadata) -> Result<(ResponseInfo, Vec<u8>), NetError> {
    let header = Header { metadata, counts: HeaderCounts::default() };
    let mut bytes = Vec::with_capacity(12);
    header.emit(&mut BinEncoder::new(&mut bytes))?;
    Ok((ResponseInfo::from(header), bytes))
}

/// Encodes a response. Over UDP it must fit the client's limit, its EDNS payload size or 512
/// bytes without EDNS (RFC 1035 section 4.2.1), and hickory sets the TC bit when the answer does
/// not fit; over TCP the limit is 65535. An answer that can not be encoded becomes a bare
/// SERVFAIL, as in hickory's own server.
pub(crate) fn encode<'a>(
    response: MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    protocol: Protocol,
) -> Result<(ResponseInfo, Vec<u8>), NetError> {
    let id = response.metadata().id;
    let max = match protocol {
        Protocol::Udp => response.edns().map_or(512, |e| e.max_payload().max(512)),
        _ => u16::MAX,
    };
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(max);
    match response.destructive_emit(&mut encoder) {
        Ok(info) => Ok((info, bytes)),
        Err(error) => {
            warn!(%error, id, "could not encode a DNS response; sending SERVFAIL");
            let mut metadata = Metadata::new(id, MessageType::Response, OpCode::Query);
            metadata.response_code = ResponseCode::ServFail;
            bare(metadata)
        }
    }
}
