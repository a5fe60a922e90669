//! The UDP serving loop: reads datagrams in batches, answers each through the request handler, sends the replies in batches; malformed queries get FORMERR and a log entry.
//!
//! hickory's own UDP loop (`Server::register_socket`) spawns a task per datagram, copies it byte
//! by byte, sends every reply through a channel back to the socket task, and makes two system
//! calls per query; it also answers malformed queries before any handler sees them, so they could
//! not be logged. This loop takes up to [`BATCH`] queued datagrams with one `recvmmsg(2)`, answers
//! them inline, and sends their replies with one `sendmmsg(2)`: the same work per packet in the
//! kernel, far fewer system calls and wake-ups of the clients. Queries that may wait (a delay
//! fault is on) are answered from a task of their own, so they never hold up the others.

use std::{
    io::{self, IoSlice, IoSliceMut},
    net::{SocketAddr, SocketAddrV4, SocketAddrV6},
    os::fd::AsRawFd,
    sync::{Arc, Mutex, PoisonError},
};

use hickory_proto::rr::Record;
use hickory_server::{
    net::{runtime::TokioTime, xfer::Protocol, NetError},
    server::{RequestHandler, ResponseHandler, ResponseInfo},
    zone_handler::MessageResponse,
};
use nix::sys::socket::{recvmmsg, sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use tokio::{io::Interest, net::UdpSocket, sync::watch, task::JoinSet};
use tracing::{debug, warn};

use super::{
    handler::LabHandler,
    log::Transport,
    wire::{self, Incoming},
};

/// Largest datagram read; longer ones are cut and then fail to parse (FORMERR), as with hickory.
const MAX_DATAGRAM: usize = 4096;

/// Most datagrams taken (and replies sent) per system call.
const BATCH: usize = 32;

/// A reply waiting to be sent: destination and encoded message.
type Outbox = Arc<Mutex<Vec<(SocketAddr, Vec<u8>)>>>;

/// Serves `socket` until `stop` turns true (or its sender is dropped). When it returns, the
/// socket is closed: the tasks of delayed queries, which share it, have been aborted and waited
/// for, so the port is free and nothing more is sent from it.
pub(crate) async fn serve(socket: UdpSocket, handler: LabHandler, stop: watch::Receiver<bool>) {
    let mut delayed = JoinSet::new();
    serve_until_stopped(Arc::new(socket), &handler, stop, &mut delayed).await;
    delayed.shutdown().await;
}

/// The loop of [`serve`]; `delayed` receives the tasks of queries answered after a delay.
async fn serve_until_stopped(socket: Arc<UdpSocket>, handler: &LabHandler, mut stop: watch::Receiver<bool>, delayed: &mut JoinSet<()>) {
    // One receive buffer to start with, doubled (up to BATCH) each time a batch fills them all:
    // a lab that sends a few queries costs 4 KiB per socket, a flooded server 128 KiB.
    let mut bufs = vec![[0u8; MAX_DATAGRAM]; 1];
    let outbox: Outbox = Arc::default();
    loop {
        tokio::select! {
            ready = socket.readable() => {
                if let Err(error) = ready {
                    warn!(%error, "UDP socket failed; no longer serving it");
                    return;
                }
            }
            _ = stop.wait_for(|stop| *stop) => return,
        }
        loop {
            let got = match socket.try_io(Interest::READABLE, || receive(&socket, &mut bufs)) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) => {
                    // An ICMP error queued on the socket, for instance: the next read goes on.
                    debug!(%error, "UDP receive failed");
                    continue;
                }
            };
            for (i, (len, src)) in got.iter().enumerate() {
                let datagram = &bufs[i][..*len];
                let reply = Reply { dst: *src, to: Out::Batch(outbox.clone()) };
                handle(handler, datagram, reply, || Reply { dst: *src, to: Out::Direct(socket.clone()) }, delayed).await;
            }
            flush(&socket, &outbox).await;
            while delayed.try_join_next().is_some() {}
            if got.len() < bufs.len() {
                break; // drained: wait for readiness again
            }
            if bufs.len() < BATCH {
                bufs.resize((bufs.len() * 2).min(BATCH), [0u8; MAX_DATAGRAM]);
            }
            // A full batch: let other tasks run before the next one, and stop if asked to even
            // while a flood keeps the socket busy.
            tokio::task::yield_now().await;
            if *stop.borrow() {
                return;
            }
        }
    }
}

/// Takes up to `bufs.len()` datagrams without blocking: their lengths and senders, in `bufs` order.
fn receive(socket: &UdpSocket, bufs: &mut [[u8; MAX_DATAGRAM]]) -> io::Result<Vec<(usize, SocketAddr)>> {
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(bufs.len(), None);
    let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
    let msgs = recvmmsg(socket.as_raw_fd(), &mut headers, iovs.iter_mut(), MsgFlags::MSG_DONTWAIT, None).map_err(io::Error::from)?;
    Ok(msgs
        .map(|m| {
            let src = m.address.as_ref().and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v4| SocketAddr::V4(SocketAddrV4::from(*v4)))
                    .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6))))
            });
            // A datagram without a usable sender gets port 0: never answered below.
            (m.bytes, src.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))))
        })
        .collect())
}

/// Sends every reply in the outbox, [`BATCH`] per system call; a reply the socket refuses is
/// logged and dropped (the client retries, as after any lost datagram).
async fn flush(socket: &UdpSocket, outbox: &Outbox) {
    let replies = std::mem::take(&mut *outbox.lock().unwrap_or_else(PoisonError::into_inner));
    let mut rest = &replies[..];
    while !rest.is_empty() {
        let chunk = &rest[..rest.len().min(BATCH)];
        match socket.try_io(Interest::WRITABLE, || send_batch(socket, chunk)) {
            Ok(sent) => rest = &rest[sent.max(1).min(rest.len())..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // The send buffer is full (rare): wait for room for the next one.
                let (dst, bytes) = &rest[0];
                if let Err(error) = socket.send_to(bytes, *dst).await {
                    warn!(%error, client = %dst, "failed to send DNS response");
                }
                rest = &rest[1..];
            }
            Err(error) => {
                // The first of the chunk failed (sendmmsg reports an error only then): skip it.
                warn!(%error, client = %rest[0].0, "failed to send DNS response");
                rest = &rest[1..];
            }
        }
    }
}

/// One `sendmmsg(2)`: how many of `replies` (from the first) were sent.
fn send_batch(socket: &UdpSocket, replies: &[(SocketAddr, Vec<u8>)]) -> io::Result<usize> {
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(replies.len(), None);
    let iovs: Vec<[IoSlice<'_>; 1]> = replies.iter().map(|(_, b)| [IoSlice::new(b)]).collect();
    let addrs: Vec<Option<SockaddrStorage>> = replies.iter().map(|(a, _)| Some(SockaddrStorage::from(*a))).collect();
    let sent = sendmmsg(socket.as_raw_fd(), &mut headers, &iovs, addrs, [], MsgFlags::MSG_DONTWAIT).map_err(io::Error::from)?;
    Ok(sent.count())
}

/// Answers one datagram: through `reply` (batched), or from a task of its own with the reply
/// `direct` makes when a fault is on (a delay must not hold up the batch). A query that does not
/// parse gets FORMERR and a log entry; what is not a query is dropped.
async fn handle(handler: &LabHandler, datagram: &[u8], reply: Reply, direct: impl FnOnce() -> Reply, delayed: &mut JoinSet<()>) {
    match wire::parse(datagram, reply.dst, Protocol::Udp) {
        Incoming::Ignore => {}
        Incoming::Malformed(metadata) => {
            let sent = match wire::form_err(&metadata) {
                Ok((info, bytes)) => reply.send(bytes).await.map(|()| info).map_err(NetError::from),
                Err(error) => Err(error),
            };
            handler.log_unparsed(reply.dst, Transport::Udp, sent);
        }
        Incoming::Query(request) if handler.faults.active() => {
            let handler = handler.clone();
            let reply = direct();
            delayed.spawn(async move {
                handler.handle_request::<_, TokioTime>(&request, reply).await;
            });
        }
        Incoming::Query(request) => {
            handler.handle_request::<_, TokioTime>(&request, reply).await;
        }
    }
}

/// Where a reply goes: into the batch being answered, or straight out of the socket.
#[derive(Clone)]
enum Out {
    Batch(Outbox),
    Direct(Arc<UdpSocket>),
}

/// Sends one reply to one client.
#[derive(Clone)]
struct Reply {
    dst: SocketAddr,
    to: Out,
}

impl Reply {
    async fn send(&self, bytes: Vec<u8>) -> io::Result<()> {
        match &self.to {
            Out::Batch(outbox) => {
                outbox.lock().unwrap_or_else(PoisonError::into_inner).push((self.dst, bytes));
                Ok(())
            }
            Out::Direct(socket) => match socket.try_send_to(&bytes, self.dst) {
                Ok(_) => Ok(()),
                // The socket's send buffer is full: wait for room (rare; the kernel queues a lot).
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.send_to(&bytes, self.dst).await.map(drop),
                Err(e) => Err(e),
            },
        }
    }
}

#[async_trait::async_trait]
impl ResponseHandler for Reply {
    /// Encodes the response and sends it (or queues it for the batch's `sendmmsg`: a failure
    /// there is logged as a warning, the query log already counts the reply as sent).
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
        let (info, bytes) = wire::encode(response, Protocol::Udp)?;
        self.send(bytes).await?;
        Ok(info)
    }
}
