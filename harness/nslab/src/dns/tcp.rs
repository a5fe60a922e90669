//! The TCP serving loop: accepts connections, reads length-prefixed queries and answers each in turn through the request handler; malformed queries get FORMERR and a log entry; idle connections are closed.
//!
//! One task per connection, queries on a connection answered in order (as hickory's server does,
//! so one client can not take more than one task). A connection that sends nothing for the idle
//! timeout, or stops in the middle of a message for that long, is closed.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use hickory_proto::rr::Record;
use hickory_server::{
    net::{runtime::TokioTime, xfer::Protocol, NetError},
    server::{RequestHandler, ResponseHandler, ResponseInfo},
    zone_handler::MessageResponse,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        tcp::{OwnedReadHalf, OwnedWriteHalf},
        TcpListener, TcpStream,
    },
    sync::{watch, Mutex},
    task::JoinSet,
};
use tracing::debug;

use super::{
    handler::LabHandler,
    log::Transport,
    wire::{self, Incoming},
};

/// Serves `listener` until `stop` turns true (or its sender is dropped); open connections are
/// closed then.
pub(crate) async fn serve(listener: TcpListener, handler: LabHandler, idle: Duration, mut stop: watch::Receiver<bool>) {
    // Dropping the set at the end aborts the connections still open.
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let (stream, src) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, or a connection reset before it was accepted: go on, but
                // not in a busy loop.
                debug!(%error, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        connections.spawn(connection(stream, src, handler.clone(), idle, stop.clone()));
        while connections.try_join_next().is_some() {}
    }
}

async fn connection(stream: TcpStream, src: SocketAddr, handler: LabHandler, idle: Duration, mut stop: watch::Receiver<bool>) {
    let (mut reader, writer) = stream.into_split();
    let reply = TcpReply { writer: Arc::new(Mutex::new(writer)) };
    loop {
        let message = tokio::select! {
            message = tokio::time::timeout(idle, read_message(&mut reader)) => message,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let message = match message {
            Ok(Ok(Some(message))) => message,
            Ok(Ok(None)) => return, // the client closed the connection
            Ok(Err(error)) => {
                debug!(%error, client = %src, "TCP read failed; closing the connection");
                return;
            }
            Err(_) => {
                debug!(client = %src, ?idle, "TCP connection idle; closing it");
                return;
            }
        };
        match wire::parse(&message, src, Protocol::Tcp) {
            Incoming::Ignore => {}
            Incoming::Malformed(metadata) => {
                let sent = match wire::form_err(&metadata) {
                    Ok((info, bytes)) => reply.send(&bytes).await.map(|()| info).map_err(NetError::from),
                    Err(error) => Err(error),
                };
                handler.log_unparsed(src, Transport::Tcp, sent);
            }
            Incoming::Query(request) => {
                handler.handle_request::<_, TokioTime>(&request, reply.clone()).await;
            }
        }
    }
}

/// One message (RFC 1035 section 4.2.2: a two-byte length, then the message); `None` when the
/// client closed the connection before a new message began.
async fn read_message(reader: &mut OwnedReadHalf) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    reader.read_exact(&mut message).await?;
    Ok(Some(message))
}

/// Writes replies to one connection.
#[derive(Clone)]
struct TcpReply {
    writer: Arc<Mutex<OwnedWriteHalf>>,
}

impl TcpReply {
    async fn send(&self, message: &[u8]) -> io::Result<()> {
        let len = u16::try_from(message.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "DNS message longer than 65535 bytes"))?;
        let mut framed = Vec::with_capacity(message.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(message);
        self.writer.lock().await.write_all(&framed).await
    }
}

#[async_trait::async_trait]
impl ResponseHandler for TcpReply {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let (info, bytes) = wire::encode(response, Protocol::Tcp)?;
        self.send(&bytes).await?;
        Ok(info)
    }
}
