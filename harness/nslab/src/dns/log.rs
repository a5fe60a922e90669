//! The query log: one bounded, in-memory record of every query the server answered (or dropped), queryable from tests and written as JSON lines.

use std::{
    collections::VecDeque,
    fmt,
    io::{BufWriter, Write},
    net::{IpAddr, SocketAddr},
    path::Path,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    time::{Duration, Instant},
};

use hickory_proto::{
    op::ResponseCode,
    rr::{LowerName, Record, RecordSet, RecordType},
};
use serde::{Serialize, Serializer};
use tokio::sync::Notify;

use super::{error::LogError, fault::Fault, handler::rcode_name};

/// The transport a query arrived over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        })
    }
}

fn micros<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// One query as the server saw and answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryLogEntry {
    /// When the query arrived, since the shared lab epoch (JSON: `at_us`, microseconds).
    #[serde(rename = "at_us", serialize_with = "micros")]
    pub at: Duration,
    /// Client address and port.
    pub client: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// Query name, lower case, absolute (trailing dot).
    pub name: String,
    /// Query type mnemonic (`A`, `AAAA`, ...).
    pub qtype: String,
    /// Response code mnemonic (`NOERROR`, `NXDOMAIN`, ...); `-` when no answer was sent.
    pub rcode: String,
    /// Whether the answer had the TC bit.
    pub truncated: bool,
    /// Answer-section records in presentation format (`name ttl IN type data`).
    pub answers: Vec<String>,
    /// The fault applied to this query, if any (`drop`, `delay 500ms`, ...).
    pub fault: Option<String>,
}

/// One query as the handler records it: built without formatting or copying records (the
/// answer's record sets are shared), and turned into a [`QueryLogEntry`] only when read. This
/// keeps the per-query cost of the log to a move and a lock.
pub(crate) struct RawEntry {
    pub(crate) at: Duration,
    pub(crate) client: SocketAddr,
    pub(crate) transport: Transport,
    /// The question; `None` when the request had none.
    pub(crate) question: Option<(LowerName, RecordType)>,
    /// The response code sent; `None` when nothing was sent.
    pub(crate) rcode: Option<ResponseCode>,
    pub(crate) truncated: bool,
    /// Answer-section record sets as served (shared with the zone at the time of the query).
    pub(crate) sets: Vec<Arc<RecordSet>>,
    /// Answer-section records made for this query only (DNS64), after `sets`.
    pub(crate) synthesized: Vec<Record>,
    pub(crate) fault: Option<Fault>,
}

impl RawEntry {
    fn name(&self) -> String {
        self.question.as_ref().map(|(n, _)| n.to_string()).unwrap_or_default()
    }

    fn qtype(&self) -> String {
        self.question.as_ref().map(|(_, t)| t.to_string()).unwrap_or_default()
    }

    fn to_entry(&self) -> QueryLogEntry {
        QueryLogEntry {
            at: self.at,
            client: self.client,
            transport: self.transport,
            name: self.name(),
            qtype: self.qtype(),
            rcode: self.rcode.map_or_else(|| "-".to_owned(), |c| rcode_name(c).into_owned()),
            truncated: self.truncated,
            answers: self.sets.iter().flat_map(|s| s.records_without_rrsigs()).chain(self.synthesized.iter()).map(ToString::to_string).collect(),
            fault: self.fault.map(|f| f.to_string()),
        }
    }
}

/// Selects log entries; every criterion that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    name: Option<String>,
    qtype: Option<String>,
    client_ip: Option<IpAddr>,
    transport: Option<Transport>,
    since: Option<Duration>,
    until: Option<Duration>,
    /// Any of these client addresses (one host's, see `LogFilter::host` in the lab).
    clients: Option<Vec<IpAddr>>,
}

/// Lower-cases a name and makes it absolute, the form log entries use.
fn normalize(name: &str) -> String {
    let mut n = name.to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

impl LogFilter {
    /// A filter matching every entry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only queries for this name (case-insensitive, trailing dot optional).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(normalize(name));
        self
    }

    /// Only queries of this type mnemonic (`A`, `AAAA`, ...).
    pub fn qtype(mut self, qtype: &str) -> Self {
        self.qtype = Some(qtype.to_ascii_uppercase());
        self
    }

    /// Only queries from this client address.
    pub fn client_ip(mut self, ip: IpAddr) -> Self {
        self.client_ip = Some(ip);
        self
    }

    /// Only queries from one of these client addresses (a host's IPv4, global IPv6 and
    /// link-local addresses, say: [`LogFilter::host`] gives a lab host's). An empty list matches
    /// nothing.
    pub fn client_ips(mut self, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        self.clients = Some(ips.into_iter().collect());
        self
    }

    /// Only queries over this transport.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Only queries that arrived at or after this time since the epoch.
    pub fn since(mut self, at: Duration) -> Self {
        self.since = Some(at);
        self
    }

    /// Only queries that arrived before this time since the epoch.
    pub fn until(mut self, at: Duration) -> Self {
        self.until = Some(at);
        self
    }

    /// Whether `entry` matches every criterion set.
    pub fn matches(&self, entry: &QueryLogEntry) -> bool {
        self.name.as_ref().is_none_or(|n| *n == entry.name)
            && self.qtype.as_ref().is_none_or(|t| *t == entry.qtype)
            && self.client_ip.is_none_or(|ip| ip == entry.client.ip())
            && self.transport.is_none_or(|t| t == entry.transport)
            && self.since.is_none_or(|s| entry.at >= s)
            && self.until.is_none_or(|u| entry.at < u)
            && self.clients.as_ref().is_none_or(|c| c.contains(&entry.client.ip()))
    }

    /// Whether a raw entry matches, formatting only what a criterion needs.
    fn matches_raw(&self, entry: &RawEntry) -> bool {
        self.client_ip.is_none_or(|ip| ip == entry.client.ip())
            && self.transport.is_none_or(|t| t == entry.transport)
            && self.since.is_none_or(|s| entry.at >= s)
            && self.until.is_none_or(|u| entry.at < u)
            && self.qtype.as_ref().is_none_or(|t| *t == entry.qtype())
            && self.name.as_ref().is_none_or(|n| *n == entry.name())
            && self.clients.as_ref().is_none_or(|c| c.contains(&entry.client.ip()))
    }
}

/// The criteria set, in words: `name app.example.test., type A, from 192.0.2.3 or 2001:db8::3`
/// (`any query` when none is).
impl fmt::Display for LogFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join =
            |ips: &[IpAddr]| if ips.is_empty() { "no address".to_string() } else { ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(" or ") };
        let parts: Vec<String> = [
            self.name.as_ref().map(|n| format!("name {n}")),
            self.qtype.as_ref().map(|t| format!("type {t}")),
            self.client_ip.map(|ip| format!("from {ip}")),
            self.clients.as_deref().map(|c| format!("from {}", join(c))),
            self.transport.map(|t| format!("over {t}")),
            self.since.map(|s| format!("at or after {s:?}")),
            self.until.map(|u| format!("before {u:?}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            f.write_str("any query")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

struct Ring {
    entries: VecDeque<RawEntry>,
    capacity: usize,
    dropped: u64,
}

/// A bounded query log shared by the server and its users; cheap to clone.
///
/// When full, the oldest entry is discarded and counted in [`QueryLog::dropped`], so a flood
/// can not grow memory beyond `capacity` entries.
#[derive(Clone)]
pub struct QueryLog {
    ring: Arc<Mutex<Ring>>,
    epoch: Instant,
    /// Wakes [`QueryLog::wait`]ers after each entry.
    arrived: Arc<Notify>,
    /// How many [`QueryLog::wait`]s are pending: with none, a push does not touch `arrived`.
    waiting: Arc<AtomicUsize>,
}

impl fmt::Debug for QueryLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ring = self.lock();
        f.debug_struct("QueryLog").field("len", &ring.entries.len()).field("capacity", &ring.capacity).field("dropped", &ring.dropped).finish()
    }
}

impl QueryLog {
    /// An empty log holding at most `capacity` entries, timestamps relative to `epoch`.
    pub fn new(epoch: Instant, capacity: usize) -> Self {
        Self {
            ring: Arc::new(Mutex::new(Ring { entries: VecDeque::with_capacity(capacity.min(4096)), capacity, dropped: 0 })),
            epoch,
            arrived: Arc::new(Notify::new()),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // A panic elsewhere while holding the lock leaves the ring consistent (push/pop only).
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current time on the log's clock (since the epoch), to mark "after this point".
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// The epoch timestamps are relative to.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    pub(crate) fn push(&self, entry: RawEntry) {
        let evicted = {
            let mut ring = self.lock();
            if ring.capacity == 0 {
                ring.dropped += 1;
                return;
            }
            let evicted = if ring.entries.len() >= ring.capacity {
                ring.dropped += 1;
                ring.entries.pop_front()
            } else {
                None
            };
            ring.entries.push_back(entry);
            evicted
        };
        // The evicted entry is freed after the lock is released.
        drop(evicted);
        // A waiter counted itself before it read the ring; the ring's lock orders that read and
        // this push, so either it saw the entry or this sees it waiting.
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.arrived.notify_waiters();
        }
    }

    /// Every retained entry, oldest first.
    pub fn entries(&self) -> Vec<QueryLogEntry> {
        self.lock().entries.iter().map(RawEntry::to_entry).collect()
    }

    /// The retained entries matching `filter`, oldest first.
    pub fn query(&self, filter: &LogFilter) -> Vec<QueryLogEntry> {
        self.lock().entries.iter().filter(|e| filter.matches_raw(e)).map(RawEntry::to_entry).collect()
    }

    /// The oldest retained entry matching `filter`, if any.
    pub fn first(&self, filter: &LogFilter) -> Option<QueryLogEntry> {
        self.lock().entries.iter().find(|e| filter.matches_raw(e)).map(RawEntry::to_entry)
    }

    /// Waits until a retained entry matches `filter` and returns the oldest that does: at once
    /// if one already does. To wait for a query still to come, bound the filter with
    /// [`LogFilter::since`] (a [`QueryLog::now`] taken before the action that causes it). Wrap
    /// it in `tokio::time::timeout` (or use `Lab::wait_query`) as a guard against a hang.
    pub async fn wait(&self, filter: &LogFilter) -> QueryLogEntry {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        loop {
            // Registered before the log is read, so an entry pushed in between still wakes it.
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(e) = self.first(filter) {
                return e;
            }
            arrived.await;
        }
    }

    /// How many entries are retained.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no entry is retained.
    pub fn is_empty(&self) -> bool {
        self.lock().entries.is_empty()
    }

    /// How many entries were discarded because the log was full.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Discards every entry (the dropped count is kept).
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    /// Writes every retained entry to `path` as JSON lines; returns how many were written.
    /// The snapshot is taken first, so the server is not held up by file I/O.
    ///
    /// # Errors
    ///
    /// [`LogError::Write`] when the file can not be created or written,
    /// [`LogError::Serialize`] when an entry can not be serialised.
    pub fn write_jsonl(&self, path: &Path) -> Result<usize, LogError> {
        let entries = self.entries();
        let write_err = |source| LogError::Write { path: path.to_owned(), source };
        // Owner-only, never through a planted link.
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)
        };
        let mut out = BufWriter::new(file.map_err(write_err)?);
        for entry in &entries {
            serde_json::to_writer(&mut out, entry).map_err(|source| LogError::Serialize { path: path.to_owned(), source })?;
            out.write_all(b"\n").map_err(write_err)?;
        }
        out.flush().map_err(write_err)?;
        Ok(entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_ms: u64, name: &str) -> RawEntry {
        RawEntry {
            at: Duration::from_millis(at_ms),
            client: "192.0.2.5:4000".parse().unwrap(),
            transport: Transport::Udp,
            question: Some((LowerName::new(&hickory_proto::rr::Name::from_ascii(name).unwrap()), RecordType::A)),
            rcode: Some(ResponseCode::NoError),
            truncated: false,
            sets: vec![],
            synthesized: vec![],
            fault: None,
        }
    }

    #[test]
    fn a_full_log_keeps_the_newest_entries_and_counts_the_rest() {
        let log = QueryLog::new(Instant::now(), 3);
        for i in 0..5 {
            log.push(entry(i, "a.test."));
        }
        let ats: Vec<u128> = log.entries().iter().map(|e| e.at.as_millis()).collect();
        assert_eq!(ats, vec![2, 3, 4]);
        assert_eq!(log.dropped(), 2);
    }

    #[test]
    fn filters_combine_name_time_and_client() {
        let log = QueryLog::new(Instant::now(), 10);
        log.push(entry(1, "app.test."));
        log.push(entry(5, "app.test."));
        log.push(entry(6, "other.test."));
        let hits = log.query(&LogFilter::new().name("APP.test").since(Duration::from_millis(2)));
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].at, Duration::from_millis(5));
        let none = log.query(&LogFilter::new().client_ip("192.0.2.6".parse().unwrap()));
        assert!(none.is_empty());
    }

    #[test]
    fn client_ips_match_any_of_a_set_and_an_empty_set_matches_nothing() {
        let log = QueryLog::new(Instant::now(), 10);
        log.push(entry(1, "app.test."));
        let ips = |v: &[&str]| v.iter().map(|s| s.parse::<IpAddr>().unwrap()).collect::<Vec<_>>();
        assert_eq!(log.query(&LogFilter::new().client_ips(ips(&["2001:db8::5", "192.0.2.5"]))).len(), 1);
        assert!(log.first(&LogFilter::new().client_ips(ips(&["192.0.2.6"]))).is_none());
        assert!(log.first(&LogFilter::new().client_ips([])).is_none());
        let f = LogFilter::new().name("App.test").qtype("a").client_ips(ips(&["192.0.2.5", "2001:db8::5"]));
        assert_eq!(f.to_string(), "name app.test., type A, from 192.0.2.5 or 2001:db8::5");
        assert_eq!(LogFilter::new().to_string(), "any query");
    }

    #[tokio::test]
    async fn wait_returns_a_matching_entry_pushed_after_it_started() {
        let log = QueryLog::new(Instant::now(), 10);
        log.push(entry(1, "old.test."));
        let waiter = {
            let log = log.clone();
            tokio::spawn(async move { log.wait(&LogFilter::new().name("new.test")).await })
        };
        // The waiter runs and finds nothing; entries that do not match wake it in vain.
        tokio::task::yield_now().await;
        log.push(entry(2, "other.test."));
        tokio::task::yield_now().await;
        log.push(entry(3, "new.test."));
        // A hang guard only: without the wake-up the waiter would never return.
        let got = tokio::time::timeout(Duration::from_secs(60), waiter).await.expect("the waiter is woken by the matching entry").unwrap();
        assert_eq!((got.name.as_str(), got.at), ("new.test.", Duration::from_millis(3)));
        // One already there is returned at once.
        assert_eq!(log.wait(&LogFilter::new().name("old.test")).await.at, Duration::from_millis(1));
    }

    #[test]
    fn json_line_has_microsecond_timestamp_and_lowercase_transport() {
        let line = serde_json::to_string(&entry(2, "A.Test.").to_entry()).unwrap();
        assert_eq!(
            line,
            r#"{"at_us":2000,"client":"192.0.2.5:4000","transport":"udp","name":"a.test.","qtype":"A","rcode":"NOERROR","truncated":false,"answers":[],"fault":null}"#
        );
    }
}
