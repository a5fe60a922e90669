//! The authoritative answer algorithm: CNAME chains, NXDOMAIN versus NODATA, negative SOA TTL and DNS64, on one snapshot of a zone.

use std::sync::Arc;

use hickory_proto::{
    op::ResponseCode,
    rr::{rdata::AAAA, LowerName, Name, RData, Record, RecordSet, RecordType, RrKey},
};

use super::{
    dns64::Dns64,
    edit::{self, RecordMap},
};

/// Longest CNAME chain followed inside a zone before giving up (BIND and Knot use similar bounds).
const MAX_CHAIN: usize = 16;

/// The outcome of a lookup: what goes into the response.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    /// Response code.
    pub(crate) rcode: ResponseCode,
    /// Answer record sets in order (CNAME chain first, then the final data).
    pub(crate) sets: Vec<Arc<RecordSet>>,
    /// Records made for this answer only (DNS64 synthesis), after `sets`.
    pub(crate) synthesized: Vec<Record>,
    /// Authority section (the SOA of a negative answer, with its negative TTL).
    pub(crate) authority: Vec<Record>,
}

impl Answer {
    /// All answer-section records in order.
    pub(crate) fn answers(&self) -> impl Iterator<Item = &Record> + Send {
        self.sets.iter().flat_map(|s| s.records_without_rrsigs()).chain(self.synthesized.iter())
    }
}

/// The SOA record to put in the authority section of a negative answer: the live SOA with
/// TTL = min(SOA TTL, SOA MINIMUM) as RFC 2308 section 3 requires (hickory itself uses the SOA TTL).
pub(crate) fn negative_soa(map: &RecordMap, origin: &Name) -> Option<Record> {
    let (soa, ttl) = edit::soa_of(map, &LowerName::new(origin))?;
    let negative = ttl.min(soa.minimum);
    Some(Record::from_rdata(origin.clone(), negative, RData::SOA(soa)))
}

/// Answers `qname`/`qtype` from one zone snapshot. `qname` must lie inside the zone.
pub(crate) fn resolve(map: &RecordMap, origin: &Name, qname: &LowerName, qtype: RecordType, dns64: Option<&Dns64>) -> Answer {
    let zone = LowerName::new(origin);
    let mut answer = Answer::default();
    let mut name = qname.clone();
    let mut seen: Vec<LowerName> = Vec::new();

    loop {
        if !zone.zone_of(&name) {
            // The chain left the zone: return what we have, the resolver continues elsewhere.
            return answer;
        }
        if qtype == RecordType::ANY {
            let keys = edit::keys_at(map, &name);
            if keys.is_empty() {
                break;
            }
            answer.sets.extend(keys.iter().filter_map(|k| map.get(k).cloned()));
            return answer;
        }
        if let Some(set) = map.get(&RrKey::new(name.clone(), qtype)) {
            answer.sets.push(set.clone());
            return answer;
        }
        let Some(cname_set) = map.get(&RrKey::new(name.clone(), RecordType::CNAME)) else {
            break;
        };
        let target = cname_set.records_without_rrsigs().find_map(|r| match &r.data {
            RData::CNAME(c) => Some(LowerName::new(&c.0)),
            _ => None,
        });
        answer.sets.push(cname_set.clone());
        seen.push(name);
        let Some(target) = target else {
            return answer;
        };
        if seen.contains(&target) || seen.len() >= MAX_CHAIN {
            // A loop or an over-long chain: stop with what was collected, like Knot.
            return answer;
        }
        name = target;
    }

    // `name` (the query name or the end of the chain) has no data of the asked type.
    if edit::name_exists(map, &name) {
        if qtype == RecordType::AAAA {
            if let Some(dns64) = dns64 {
                if synthesize(map, &zone, &name, dns64, &mut answer) {
                    return answer;
                }
            }
        }
        answer.rcode = ResponseCode::NoError;
    } else {
        // RFC 6604: the rcode describes the last name of the chain, so a CNAME to a missing
        // in-zone name is NXDOMAIN (as Knot and BIND answer; hickory says NOERROR).
        answer.rcode = ResponseCode::NXDomain;
    }
    answer.authority.extend(negative_soa(map, origin));
    answer
}

/// Adds AAAA records synthesized from the A records at `name`; returns whether there were any.
fn synthesize(map: &RecordMap, zone: &LowerName, name: &LowerName, dns64: &Dns64, answer: &mut Answer) -> bool {
    let Some(a_set) = map.get(&RrKey::new(name.clone(), RecordType::A)) else {
        return false;
    };
    // RFC 6147 section 5.1.7: the TTL is the A record's, capped by the SOA MINIMUM.
    let minimum = edit::soa_of(map, zone).map_or(u32::MAX, |(soa, _)| soa.minimum);
    let before = answer.synthesized.len();
    for record in a_set.records_without_rrsigs() {
        if let RData::A(a) = &record.data {
            answer.synthesized.push(Record::from_rdata(record.name.clone(), record.ttl.min(minimum), RData::AAAA(AAAA(dns64.synthesize(a.0)))));
        }
    }
    answer.synthesized.len() > before
}
