//! Injected faults: what can go wrong per name or for the whole server, and which fault applies to a query.

use std::{
    collections::HashMap,
    fmt,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, PoisonError, RwLock,
    },
    time::Duration,
};

use hickory_proto::rr::LowerName;

use super::{error::ControlError, zone};

/// A misbehaviour the server shows for matching queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer SERVFAIL.
    ServFail,
    /// Answer NXDOMAIN (with the zone's SOA in the authority section when the name is in a zone).
    NxDomain,
    /// Answer REFUSED.
    Refused,
    /// Send no answer at all; the client times out.
    Drop,
    /// Wait this long, then answer normally. Other clients are not held up.
    Delay(Duration),
    /// Over UDP, answer with the TC bit and an empty answer section; over TCP, answer normally.
    Truncate,
    /// DNS only over TCP, as behind a firewall that drops DNS over UDP: UDP queries get no
    /// answer at all (a client that does not try TCP by itself times out), TCP queries are
    /// answered normally. Unlike [`Fault::Truncate`], nothing tells the client to retry over TCP.
    TcpOnly,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ServFail => f.write_str("servfail"),
            Self::NxDomain => f.write_str("nxdomain"),
            Self::Refused => f.write_str("refused"),
            Self::Drop => f.write_str("drop"),
            Self::Delay(d) => write!(f, "delay {}ms", d.as_millis()),
            Self::Truncate => f.write_str("truncate"),
            Self::TcpOnly => f.write_str("tcp-only"),
        }
    }
}

/// Which queries a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultTarget {
    /// Every query the server receives.
    Server,
    /// Queries for exactly this absolute name (trailing dot optional).
    Name(String),
    /// Queries for this name and every name below it.
    Suffix(String),
}

#[derive(Default)]
struct Table {
    server: Option<Fault>,
    exact: HashMap<LowerName, Fault>,
    suffix: Vec<(LowerName, Fault)>,
}

impl Table {
    fn is_empty(&self) -> bool {
        self.server.is_none() && self.exact.is_empty() && self.suffix.is_empty()
    }
}

/// The faults currently switched on; cheap to clone, shared with the request handler.
///
/// Precedence when several match: exact name, then the longest matching suffix, then the
/// server-wide fault. A query with no fault costs one atomic load.
#[derive(Clone, Default)]
pub struct Faults {
    table: Arc<RwLock<Table>>,
    any: Arc<AtomicBool>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults").field("active", &self.any.load(Ordering::Relaxed)).finish()
    }
}

fn parse(name: &str) -> Result<LowerName, ControlError> {
    zone::parse_origin(name).map(|n| LowerName::new(&n)).map_err(|source| ControlError::FaultName { name: name.to_owned(), source })
}

impl Faults {
    /// Switches `fault` on for `target`, replacing any fault that target had.
    ///
    /// # Errors
    ///
    /// [`ControlError::FaultName`] when the target name is not a valid domain name.
    pub fn set(&self, target: &FaultTarget, fault: Fault) -> Result<(), ControlError> {
        let key = match target {
            FaultTarget::Server => None,
            FaultTarget::Name(n) | FaultTarget::Suffix(n) => Some(parse(n)?),
        };
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        match (target, key) {
            (FaultTarget::Name(_), Some(key)) => {
                table.exact.insert(key, fault);
            }
            (FaultTarget::Suffix(_), Some(key)) => {
                table.suffix.retain(|(k, _)| *k != key);
                table.suffix.push((key, fault));
                // Longest suffix first, so the most specific one matches.
                table.suffix.sort_by_key(|(k, _)| std::cmp::Reverse(k.num_labels()));
            }
            _ => table.server = Some(fault),
        }
        self.any.store(true, Ordering::Release);
        Ok(())
    }

    /// Switches off the fault of `target`; returns whether there was one.
    ///
    /// # Errors
    ///
    /// [`ControlError::FaultName`] when the target name is not a valid domain name.
    pub fn clear(&self, target: &FaultTarget) -> Result<bool, ControlError> {
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let had = match target {
            FaultTarget::Server => table.server.take().is_some(),
            FaultTarget::Name(n) => table.exact.remove(&parse(n)?).is_some(),
            FaultTarget::Suffix(n) => {
                let key = parse(n)?;
                let before = table.suffix.len();
                table.suffix.retain(|(k, _)| *k != key);
                table.suffix.len() != before
            }
        };
        self.any.store(!table.is_empty(), Ordering::Release);
        Ok(had)
    }

    /// Switches off every fault.
    pub fn clear_all(&self) {
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        *table = Table::default();
        self.any.store(false, Ordering::Release);
    }

    /// Whether any fault is switched on (one atomic load).
    pub(crate) fn active(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// The fault that applies to a query for `name`, if any.
    pub(crate) fn find(&self, name: &LowerName) -> Option<Fault> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        table.exact.get(name).copied().or_else(|| table.suffix.iter().find(|(k, _)| k.zone_of(name)).map(|(_, f)| *f)).or(table.server)
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::Name;

    use super::*;

    fn lower(s: &str) -> LowerName {
        LowerName::new(&Name::from_ascii(s).unwrap())
    }

    #[test]
    fn exact_beats_longest_suffix_beats_server() {
        let faults = Faults::default();
        faults.set(&FaultTarget::Server, Fault::Refused).unwrap();
        faults.set(&FaultTarget::Suffix("example.test".into()), Fault::ServFail).unwrap();
        faults.set(&FaultTarget::Suffix("b.example.test".into()), Fault::Drop).unwrap();
        faults.set(&FaultTarget::Name("x.b.example.test.".into()), Fault::NxDomain).unwrap();
        assert_eq!(faults.find(&lower("x.b.example.test.")), Some(Fault::NxDomain));
        assert_eq!(faults.find(&lower("y.b.example.test.")), Some(Fault::Drop));
        assert_eq!(faults.find(&lower("B.example.TEST.")), Some(Fault::Drop));
        assert_eq!(faults.find(&lower("c.example.test.")), Some(Fault::ServFail));
        assert_eq!(faults.find(&lower("other.org.")), Some(Fault::Refused));
        assert!(faults.clear(&FaultTarget::Server).unwrap());
        assert_eq!(faults.find(&lower("other.org.")), None);
        faults.clear_all();
        assert_eq!(faults.find(&lower("x.b.example.test.")), None);
    }
}
