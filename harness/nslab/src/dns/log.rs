//! The query log: one bounded, in-memory record of every query the server answered (or dropped), queryable from tests and written as JSON lines.

use std::{
    borrow::Cow,
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
use tracing::warn;

use super::{
    error::LogError,
    fault::Fault,
    zone::{RecordKind, RecordValue},
};

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

/// The standard mnemonic of a response code, as dig prints it (`NOERROR`, `NXDOMAIN`, ...).
pub fn rcode_name(code: ResponseCode) -> Cow<'static, str> {
    Cow::Borrowed(match code {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::BADVERS => "BADVERS",
        other => return Cow::Owned(format!("RCODE{}", u16::from(other))),
    })
}

/// One record of an answer section as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerRecord {
    /// Owner name, absolute (trailing dot).
    pub name: String,
    /// Time to live the record was served with, seconds.
    pub ttl: u32,
    /// The record data; names in it are absolute (trailing dot). Never [`RecordValue::Host`].
    pub data: RecordValue,
}

impl AnswerRecord {
    /// A record with the given owner, TTL and data.
    pub fn new(name: impl Into<String>, ttl: u32, data: RecordValue) -> Self {
        Self { name: name.into(), ttl, data }
    }

    /// The record type (`None` only for a [`RecordValue::Host`], which the server never sends).
    pub fn kind(&self) -> Option<RecordKind> {
        self.data.kind()
    }

    /// Whether the owner or the target name in the data is `name` (case-insensitive, trailing dot
    /// optional): a CNAME chain through `green.example.test.` names `green.example.test`.
    pub fn names(&self, name: &str) -> bool {
        let same = |n: &str| n.trim_end_matches('.').eq_ignore_ascii_case(name.trim_end_matches('.'));
        same(&self.name) || self.data.target().is_some_and(same)
    }

    fn from_record(record: &Record) -> Option<Self> {
        let data = RecordValue::from_rdata(&record.data, record.ttl);
        if data.is_none() {
            warn!(record = %record, "query log: answer record of a type the lab server does not manage left out");
        }
        Some(Self { name: record.name.to_string(), ttl: record.ttl, data: data? })
    }

    /// The data in presentation format, as hickory (and the JSON log) writes it.
    pub fn data_text(&self) -> String {
        match &self.data {
            RecordValue::A(ip) => ip.to_string(),
            RecordValue::Aaaa(ip) => ip.to_string(),
            RecordValue::Ns(n) | RecordValue::Cname(n) | RecordValue::Ptr(n) => n.clone(),
            RecordValue::Txt(strings) => strings.concat(),
            RecordValue::Srv { priority, weight, port, target } => format!("{priority} {weight} {port} {target}"),
            RecordValue::Mx { preference, exchange } => format!("{preference} {exchange}"),
            RecordValue::Soa(s) => format!("{} {} {} {} {} {} {}", s.mname, s.rname, s.serial, s.refresh, s.retry, s.expire, s.minimum),
            RecordValue::Host(h) => format!("host {h}"),
        }
    }
}

/// Presentation format: `name ttl IN type data`, as hickory and dig write a record.
impl fmt::Display for AnswerRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind().map_or_else(|| "HOST".to_owned(), |k| k.to_string());
        write!(f, "{} {} IN {kind} {}", self.name, self.ttl, self.data_text())
    }
}

impl Serialize for AnswerRecord {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn qtype_text<S: Serializer>(qtype: &Option<RecordType>, s: S) -> Result<S::Ok, S::Error> {
    match qtype {
        Some(t) => s.collect_str(t),
        None => s.serialize_str(""),
    }
}

fn rcode_text<S: Serializer>(rcode: &Option<ResponseCode>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rcode.map_or(Cow::Borrowed("-"), rcode_name))
}

fn fault_text<S: Serializer>(fault: &Option<Fault>, s: S) -> Result<S::Ok, S::Error> {
    match fault {
        Some(f) => s.collect_str(f),
        None => s.serialize_none(),
    }
}

/// One query as the server saw and answered it.
///
/// Serialised (the JSON lines of [`QueryLog::write_jsonl`]) with `qtype`, `rcode`, `answers` and
/// `fault` as text: `"AAAA"`, `"NXDOMAIN"` (`"-"` when nothing was sent), `["name ttl IN type
/// data", ...]`, `"delay 500ms"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryLogEntry {
    /// When the query arrived, since the shared lab epoch (JSON: `at_us`, microseconds).
    #[serde(rename = "at_us", serialize_with = "micros")]
    pub at: Duration,
    /// Client address and port.
    pub client: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// Query name, lower case, absolute (trailing dot); empty when the request had no question.
    pub name: String,
    /// Query type; `None` when the request had no question.
    #[serde(serialize_with = "qtype_text")]
    pub qtype: Option<RecordType>,
    /// Response code sent; `None` when no answer was sent.
    #[serde(serialize_with = "rcode_text")]
    pub rcode: Option<ResponseCode>,
    /// Whether the answer had the TC bit.
    pub truncated: bool,
    /// Answer-section records, in order.
    pub answers: Vec<AnswerRecord>,
    /// The fault applied to this query, if any.
    #[serde(serialize_with = "fault_text")]
    pub fault: Option<Fault>,
}

impl QueryLogEntry {
    /// The response code's mnemonic (`NOERROR`, ...), `-` when no answer was sent.
    pub fn rcode_name(&self) -> Cow<'static, str> {
        self.rcode.map_or(Cow::Borrowed("-"), rcode_name)
    }
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

    fn qtype(&self) -> Option<RecordType> {
        self.question.as_ref().map(|(_, t)| *t)
    }

    fn to_entry(&self) -> QueryLogEntry {
        QueryLogEntry {
            at: self.at,
            client: self.client,
            transport: self.transport,
            name: self.name(),
            qtype: self.qtype(),
            rcode: self.rcode,
            truncated: self.truncated,
            answers: self.sets.iter().flat_map(|s| s.records_without_rrsigs()).chain(self.synthesized.iter()).filter_map(AnswerRecord::from_record).collect(),
            fault: self.fault,
        }
    }
}

/// Selects log entries; every criterion that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    name: Option<String>,
    qtype: Option<RecordType>,
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

    /// Only queries of this type.
    pub fn qtype(mut self, qtype: RecordType) -> Self {
        self.qtype = Some(qtype);
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
            && self.qtype.is_none_or(|t| Some(t) == entry.qtype)
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
            && self.qtype.is_none_or(|t| Some(t) == entry.qtype())
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
        write_jsonl(path, &self.entries())
    }
}

/// Writes `entries` to `path` as JSON lines, owner-only and never through a planted link;
/// returns how many. The DNS query log's and the traffic log's artifact writer.
///
/// # Errors
///
/// [`LogError::Write`] when the file can not be created or written,
/// [`LogError::Serialize`] when an entry can not be serialised.
pub(crate) fn write_jsonl<T: serde::Serialize>(path: &Path, entries: &[T]) -> Result<usize, LogError> {
    let write_err = |source| LogError::Write { path: path.to_owned(), source };
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)
    };
    let mut out = BufWriter::new(file.map_err(write_err)?);
    for entry in entries {
        serde_json::to_writer(&mut out, entry).map_err(|source| LogError::Serialize { path: path.to_owned(), source })?;
        out.write_all(b"\n").map_err(write_err)?;
    }
    out.flush().map_err(write_err)?;
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::{
        rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT},
        Name, RData,
    };

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
        let f = LogFilter::new().name("App.test").qtype(RecordType::A).client_ips(ips(&["192.0.2.5", "2001:db8::5"]));
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

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    /// One record of every kind the server serves, as hickory builds it.
    fn served() -> Vec<Record> {
        let owner = name("Web.example.test.");
        let soa = SOA::new(name("ns.example.test."), name("hostmaster.example.test."), 7, 3600, 600, 86400, 30);
        [
            RData::A(A("192.0.2.10".parse().unwrap())),
            RData::AAAA(AAAA("2001:db8::10".parse().unwrap())),
            RData::NS(NS(name("ns.example.test."))),
            RData::CNAME(CNAME(name("blue.example.test."))),
            RData::PTR(PTR(name("web.example.test."))),
            RData::TXT(TXT::new(vec!["v=1".into(), " two words".into()])),
            RData::SRV(SRV::new(0, 5, 8080, name("web.example.test."))),
            RData::MX(MX::new(10, name("mail.example.test."))),
            RData::SOA(soa),
        ]
        .into_iter()
        .map(|data| Record::from_rdata(owner.clone(), 30, data))
        .collect()
    }

    #[test]
    fn answer_records_are_typed_and_print_as_hickory_prints_them() {
        for record in served() {
            let answer = AnswerRecord::from_record(&record).expect("a served kind");
            assert_eq!(answer.to_string(), record.to_string());
            assert_eq!(answer.kind().map(RecordKind::record_type), Some(record.record_type()));
            assert_eq!(answer.ttl, 30);
            assert_eq!(answer.name, "Web.example.test.");
        }
        let cname = AnswerRecord::from_record(&served()[3]).unwrap();
        assert_eq!(cname.data, RecordValue::Cname("blue.example.test.".into()));
        assert!(cname.names("blue.example.test") && cname.names("web.example.test.") && !cname.names("green.example.test"));
        let mx = AnswerRecord::from_record(&served()[7]).unwrap();
        assert_eq!(mx.data, RecordValue::Mx { preference: 10, exchange: "mail.example.test.".into() });
        let RecordValue::Soa(soa) = AnswerRecord::from_record(&served()[8]).unwrap().data else { panic!("not a SOA") };
        assert_eq!((soa.serial, soa.minimum, soa.ttl), (7, 30, 30));
    }

    #[test]
    fn json_line_writes_answers_rcode_and_fault_as_text() {
        let mut raw = entry(3, "app.example.test.");
        raw.synthesized = served()[..2].to_vec();
        raw.fault = Some(Fault::Delay(Duration::from_millis(500)));
        let line = serde_json::to_string(&raw.to_entry()).unwrap();
        assert_eq!(
            line,
            r#"{"at_us":3000,"client":"192.0.2.5:4000","transport":"udp","name":"app.example.test.","qtype":"A","rcode":"NOERROR","truncated":false,"answers":["Web.example.test. 30 IN A 192.0.2.10","Web.example.test. 30 IN AAAA 2001:db8::10"],"fault":"delay 500ms"}"#
        );
        raw.rcode = None;
        raw.question = None;
        let entry = raw.to_entry();
        assert_eq!((entry.qtype, entry.rcode_name()), (None, Cow::Borrowed("-")));
        let line = serde_json::to_string(&entry).unwrap();
        assert!(line.contains(r#""name":"","qtype":"","rcode":"-","#), "{line}");
    }

    #[test]
    fn rcode_names_are_dig_mnemonics() {
        assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_name(ResponseCode::ServFail), "SERVFAIL");
        assert_eq!(rcode_name(ResponseCode::NotAuth), "RCODE9");
    }

    #[test]
    fn filters_match_the_query_type() {
        let log = QueryLog::new(Instant::now(), 10);
        log.push(entry(1, "app.test."));
        assert_eq!(log.query(&LogFilter::new().qtype(RecordType::A)).len(), 1);
        assert!(log.query(&LogFilter::new().qtype(RecordType::AAAA)).is_empty());
        assert!(LogFilter::new().qtype(RecordType::A).matches(&log.entries()[0]));
    }
}
