//! The lab's DNS packet tap: one AF_PACKET socket in every host's namespace (opened before any
//! program of the lab runs), one thread that reads them all into the lab's [`TrafficLog`], and
//! its stop, which reads what is still queued before it closes the sockets.
//!
//! Lab time of a packet: the kernel's receive time stamp (SO_TIMESTAMPNS, taken when the packet
//! was handed to the tap on its way out), converted to the lab's clock at each read as
//! `now_lab - (now_realtime - stamp)`. A busy machine delays the reader, not the stamp, so
//! cadence checks measure the programs; and the conversion uses the two clocks' difference at
//! the moment of each read, so a step of the wall clock between two reads cannot shift packets.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use nix::poll::PollTimeout;

use crate::dns::TrafficLog;
use crate::host::handle::Host;
use crate::os::packet;

/// One host's tap socket.
struct HostTap {
    host: String,
    fd: OwnedFd,
    /// The kernel's count of packets this socket's full queue dropped.
    dropped: u64,
}

/// Requests to the reader thread.
#[derive(Default)]
struct Requests {
    /// Callers of [`DnsTap::settle`], answered once every queue was read empty after they asked.
    settle: Vec<tokio::sync::oneshot::Sender<()>>,
    stop: bool,
}

/// The running tap of a lab; see the module docs. Stopped (its last packets read) by
/// `DnsTap::stop`, or by its drop.
pub struct DnsTap {
    log: TrafficLog,
    requests: Arc<Mutex<Requests>>,
    wake: super::wakeup::Wake,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for DnsTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsTap").field("log", &self.log).finish()
    }
}

impl DnsTap {
    /// Opens a tap socket in the calling thread's namespace (a thread that has entered a host's).
    ///
    /// # Errors
    /// The call that failed, with the kernel's error.
    pub(crate) fn open_here() -> io::Result<OwnedFd> {
        packet::open_dns_tap()
    }

    /// Starts the reader over the hosts' tap sockets (`fds[i]` opened in `hosts[i]` by
    /// [`DnsTap::open_here`]).
    ///
    /// # Errors
    /// When the wake-up pipe or the thread cannot be made.
    pub(crate) fn start(hosts: &[Host], fds: Vec<Option<OwnedFd>>, epoch: Instant) -> io::Result<DnsTap> {
        let own: Vec<(String, Vec<IpAddr>)> = hosts.iter().map(|h| (h.name().to_string(), own_addrs(h))).collect();
        let log = TrafficLog::new(own.iter().map(|(h, a)| (h.as_str(), a.clone())), crate::dns::TRAFFIC_CAPACITY);
        let taps: Vec<HostTap> = hosts.iter().zip(fds).filter_map(|(h, fd)| Some(HostTap { host: h.name().to_string(), fd: fd?, dropped: 0 })).collect();
        let (wake, wait) = super::wakeup::pair()?;
        let requests = Arc::new(Mutex::new(Requests::default()));
        let reader = Reader { taps, epoch, log: log.clone(), requests: requests.clone(), wake: wait, buf: vec![0; 1 << 18] };
        let thread = std::thread::Builder::new().name("nslab-dns-tap".into()).spawn(move || reader.run())?;
        Ok(DnsTap { log, requests, wake, thread: Some(thread) })
    }

    /// The log the tap fills.
    pub fn log(&self) -> &TrafficLog {
        &self.log
    }

    fn ask(&self, f: impl FnOnce(&mut Requests)) {
        f(&mut self.requests.lock().unwrap_or_else(PoisonError::into_inner));
        self.wake.wake();
    }

    /// Returns once every packet the hosts sent before the call is in the log.
    pub async fn settle(&self) {
        if self.thread.is_none() {
            return;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.ask(|r| r.settle.push(tx));
        let _ = rx.await;
    }

    /// Reads what is still queued, closes the sockets and ends the thread.
    pub(crate) async fn stop(mut self) {
        self.ask(|r| r.stop = true);
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for DnsTap {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.ask(|r| r.stop = true);
            // Quick: one last read of the queues. The sockets hold the namespaces.
            let _ = t.join();
        }
    }
}

/// A host's own addresses: global, link-local.
fn own_addrs(h: &Host) -> Vec<IpAddr> {
    h.addrs().into_iter().chain(h.link_local().map(IpAddr::V6)).collect()
}

struct Reader {
    taps: Vec<HostTap>,
    epoch: Instant,
    log: TrafficLog,
    requests: Arc<Mutex<Requests>>,
    wake: super::wakeup::WakeWait,
    buf: Vec<u8>,
}

impl Reader {
    fn run(mut self) {
        loop {
            let fds: Vec<_> = self.taps.iter().map(|t| t.fd.as_fd()).collect();
            // Requests made before this read are answered after it: their packets were queued.
            if let Err(e) = self.wake.wait(&fds, PollTimeout::NONE) {
                tracing::warn!(error = %e, "DNS tap: poll failed; the tap stops");
                return;
            }
            let (settle, stop) = {
                let mut r = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
                (std::mem::take(&mut r.settle), r.stop)
            };
            self.read_all();
            for tx in settle {
                let _ = tx.send(());
            }
            if stop {
                // close(2) of a packet socket waits for an RCU grace period (packet_release calls
                // synchronize_net), 10-40 ms each: closed in parallel, off the teardown's path.
                // The namespaces they hold go when they are closed, moments later.
                for t in self.taps.drain(..) {
                    let fd = t.fd;
                    if std::thread::Builder::new().name("nslab-tap-close".into()).spawn(move || drop(fd)).is_err() {
                        tracing::debug!("DNS tap: no thread to close a socket; closed here");
                    }
                }
                return;
            }
        }
    }

    /// Reads every socket until its queue is empty.
    fn read_all(&mut self) {
        let mut got = Vec::new();
        for i in 0..self.taps.len() {
            got.clear();
            loop {
                match packet::read_packet(&self.taps[i].fd, &mut self.buf) {
                    Ok(Some(p)) => got.push(p),
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(host = %self.taps[i].host, error = %e, "DNS tap: read failed");
                        break;
                    }
                }
            }
            // The two clocks read together, after the packets were stamped.
            let (now_lab, now_real) = (self.epoch.elapsed(), SystemTime::now());
            let t = &mut self.taps[i];
            for p in &got {
                t.dropped = t.dropped.max(u64::from(p.dropped.unwrap_or(0)));
            }
            self.log.push_all(got.drain(..).map(|p| {
                let age = p.stamp.and_then(|s| now_real.duration_since(s).ok()).unwrap_or(Duration::ZERO);
                (now_lab.saturating_sub(age), i, p.data)
            }));
        }
        let dropped: u64 = self.taps.iter().map(|t| t.dropped).sum();
        if dropped > 0 {
            self.log.set_dropped(dropped);
        }
    }
}
