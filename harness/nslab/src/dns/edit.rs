//! Every change to a zone's record map happens here, as pure functions on the map held under the write lock.
//!
//! Invariants kept by these functions: a record set has one TTL; a CNAME is the only set at its
//! name and holds one record; the zone has exactly one SOA record, at its apex (a change that
//! would break that is refused with [`ZoneError::SoaRequired`]; [`check_soa`] checks it).

use std::{collections::BTreeMap, sync::Arc};

use hickory_proto::rr::{rdata::SOA, LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use tracing::warn;

use super::error::ZoneError;

/// The record map of one zone, as stored by hickory's `InMemoryZoneHandler`.
pub(crate) type RecordMap = BTreeMap<RrKey, Arc<RecordSet>>;

/// The smallest record type in canonical order, to start range scans at a name.
const FIRST_TYPE: RecordType = RecordType::ZERO;

/// Keys of all record sets owned by exactly `name`.
pub(crate) fn keys_at(map: &RecordMap, name: &LowerName) -> Vec<RrKey> {
    map.range(RrKey::new(name.clone(), FIRST_TYPE)..).take_while(|(key, _)| key.name() == name).map(|(key, _)| key.clone()).collect()
}

/// True when `name` owns data or is an empty non-terminal (some name below it owns data).
pub(crate) fn name_exists(map: &RecordMap, name: &LowerName) -> bool {
    // Canonical order puts a name's descendants right after the name itself.
    map.range(RrKey::new(name.clone(), FIRST_TYPE)..).next().is_some_and(|(key, _)| name.zone_of(key.name()))
}

fn check_in_zone(name: &Name, origin: &Name) -> Result<(), ZoneError> {
    if origin.zone_of(name) {
        Ok(())
    } else {
        Err(ZoneError::OutOfZone { name: name.to_string(), origin: origin.to_string() })
    }
}

fn new_set(name: &Name, rtype: RecordType, ttl: u32, records: Vec<Record>) -> Arc<RecordSet> {
    let mut set = RecordSet::with_ttl(name.clone(), rtype, ttl);
    set.set_records(records);
    // Normalises every record to the set TTL: no set is ever left with mixed TTLs.
    set.set_ttl(ttl);
    Arc::new(set)
}

/// Adds records to their sets (creating sets as needed). When a record's TTL differs from its
/// set's, the whole set takes the new TTL. A CNAME replaces an existing CNAME at its name.
///
/// # Errors
///
/// [`ZoneError::OutOfZone`], [`ZoneError::CnameConflict`] or [`ZoneError::MultipleCnames`];
/// the map is left unchanged on error.
pub(crate) fn add_records(map: &mut RecordMap, records: Vec<Record>, origin: &Name) -> Result<(), ZoneError> {
    // Validate everything first so that an error leaves the map untouched.
    let mut groups: Vec<(Name, RecordType, Vec<Record>)> = Vec::new();
    for record in records {
        check_in_zone(&record.name, origin)?;
        let rtype = record.record_type();
        match groups.iter_mut().find(|(name, t, _)| *t == rtype && *name == record.name) {
            Some((_, _, group)) => group.push(record),
            None => groups.push((record.name.clone(), rtype, vec![record])),
        }
    }
    for (name, rtype, group) in &groups {
        let lower = LowerName::new(name);
        let at_name = keys_at(map, &lower);
        if *rtype == RecordType::CNAME {
            if group.len() > 1 {
                return Err(ZoneError::MultipleCnames { name: name.to_string(), count: group.len() });
            }
            if let Some(other) = at_name.iter().find(|k| k.record_type != RecordType::CNAME) {
                return Err(ZoneError::CnameConflict { name: name.to_string(), kind: other.record_type.to_string() });
            }
            if groups.iter().any(|(n, t, _)| n == name && *t != RecordType::CNAME) {
                return Err(ZoneError::CnameConflict { name: name.to_string(), kind: "other data".to_owned() });
            }
        } else if at_name.iter().any(|k| k.record_type == RecordType::CNAME) {
            return Err(ZoneError::CnameConflict { name: name.to_string(), kind: rtype.to_string() });
        }
    }
    for (name, rtype, group) in groups {
        let key = RrKey::new(LowerName::new(&name), rtype);
        let ttl = group.last().map_or(0, |r| r.ttl);
        let mut merged: Vec<Record> = match map.get(&key) {
            Some(existing) if rtype != RecordType::CNAME && rtype != RecordType::SOA => {
                if existing.ttl() != ttl {
                    warn!(%name, %rtype, old = existing.ttl(), new = ttl, "record set takes the TTL of the added record");
                }
                existing.records_without_rrsigs().cloned().collect()
            }
            _ => Vec::new(),
        };
        for record in group {
            if !merged.iter().any(|r| r.data == record.data) {
                merged.push(record);
            }
        }
        map.insert(key, new_set(&name, rtype, ttl, merged));
    }
    Ok(())
}

/// Replaces the whole `rtype` set at `name` with `records` (all get `ttl`); an empty list deletes
/// the set. Replacing with a CNAME removes every other set at the name; replacing with another
/// type removes a CNAME at the name, so the result is always valid and the swap is atomic.
///
/// # Errors
///
/// [`ZoneError::OutOfZone`], [`ZoneError::MultipleCnames`], [`ZoneError::CnameConflict`] for a
/// CNAME at the zone apex, or [`ZoneError::SoaRequired`] for an SOA set that is not exactly one
/// record at the apex (emptying the SOA set would delete it). The map is unchanged on error.
pub(crate) fn replace_set(map: &mut RecordMap, name: &Name, rtype: RecordType, ttl: u32, records: Vec<Record>, origin: &Name) -> Result<(), ZoneError> {
    check_in_zone(name, origin)?;
    if rtype == RecordType::SOA && (records.len() != 1 || name != origin) {
        let op = if records.is_empty() { format!("delete SOA at {name}") } else { format!("set {} SOA records at {name}", records.len()) };
        return Err(ZoneError::SoaRequired { op, origin: origin.to_string() });
    }
    let lower = LowerName::new(name);
    if rtype == RecordType::CNAME {
        if records.len() > 1 {
            return Err(ZoneError::MultipleCnames { name: name.to_string(), count: records.len() });
        }
        if name == origin {
            return Err(ZoneError::CnameConflict { name: name.to_string(), kind: "SOA".to_owned() });
        }
        for key in keys_at(map, &lower) {
            map.remove(&key);
        }
    } else {
        map.remove(&RrKey::new(lower.clone(), RecordType::CNAME));
    }
    let key = RrKey::new(lower, rtype);
    if records.is_empty() {
        map.remove(&key);
    } else {
        map.insert(key, new_set(name, rtype, ttl, records));
    }
    Ok(())
}

/// Removes the `rtype` set at `name`; returns whether it existed.
///
/// # Errors
///
/// [`ZoneError::SoaRequired`] for the SOA set: it is never removed (the map is unchanged).
pub(crate) fn delete_set(map: &mut RecordMap, name: &Name, rtype: RecordType, origin: &Name) -> Result<bool, ZoneError> {
    if rtype == RecordType::SOA {
        return Err(ZoneError::SoaRequired { op: format!("delete SOA at {name}"), origin: origin.to_string() });
    }
    Ok(map.remove(&RrKey::new(LowerName::new(name), rtype)).is_some())
}

/// Checks the SOA invariant of a whole map: exactly one SOA record, at the apex, none elsewhere.
///
/// # Errors
///
/// [`ZoneError::SoaRequired`] naming `op`, the change that was attempted.
pub(crate) fn check_soa(map: &RecordMap, origin: &Name, op: &str) -> Result<(), ZoneError> {
    let apex = LowerName::new(origin);
    let mut apex_records = 0;
    for (key, set) in map.iter().filter(|(k, _)| k.record_type == RecordType::SOA) {
        if *key.name() != apex {
            return Err(ZoneError::SoaRequired { op: format!("{op} (SOA at {})", key.name()), origin: origin.to_string() });
        }
        apex_records = set.records_without_rrsigs().count();
    }
    if apex_records == 1 {
        Ok(())
    } else {
        Err(ZoneError::SoaRequired { op: op.to_owned(), origin: origin.to_string() })
    }
}

/// Removes every set at `name` except the SOA; returns how many sets were removed.
pub(crate) fn delete_name(map: &mut RecordMap, name: &Name) -> usize {
    let keys = keys_at(map, &LowerName::new(name));
    let mut removed = 0;
    for key in keys {
        if key.record_type != RecordType::SOA && map.remove(&key).is_some() {
            removed += 1;
        }
    }
    removed
}

/// Sets the TTL of the whole `rtype` set at `name`; returns whether the set exists.
pub(crate) fn set_ttl(map: &mut RecordMap, name: &Name, rtype: RecordType, ttl: u32) -> bool {
    let key = RrKey::new(LowerName::new(name), rtype);
    let Some(set) = map.get_mut(&key) else {
        return false;
    };
    Arc::make_mut(set).set_ttl(ttl);
    true
}

/// The SOA data and SOA record TTL of the zone.
pub(crate) fn soa_of(map: &RecordMap, origin: &LowerName) -> Option<(SOA, u32)> {
    let set = map.get(&RrKey::new(origin.clone(), RecordType::SOA))?;
    let record = set.records_without_rrsigs().next()?;
    match &record.data {
        RData::SOA(soa) => Some((soa.clone(), record.ttl)),
        _ => None,
    }
}

/// Increments the SOA serial (RFC 1982 arithmetic, wrapping); returns the new serial.
pub(crate) fn bump_serial(map: &mut RecordMap, origin: &Name) -> Option<u32> {
    let lower = LowerName::new(origin);
    let (mut soa, ttl) = soa_of(map, &lower)?;
    soa.serial = soa.serial.wrapping_add(1);
    let serial = soa.serial;
    let record = Record::from_rdata(origin.clone(), ttl, RData::SOA(soa));
    map.insert(RrKey::new(lower, RecordType::SOA), new_set(origin, RecordType::SOA, ttl, vec![record]));
    Some(serial)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::rr::rdata::{A, CNAME};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn a(owner: &str, ttl: u32, last: u8) -> Record {
        Record::from_rdata(name(owner), ttl, RData::A(A(Ipv4Addr::new(10, 0, 0, last))))
    }

    fn cname(owner: &str, target: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::CNAME(CNAME(name(target))))
    }

    #[test]
    fn adding_with_a_new_ttl_moves_the_whole_set_to_it() {
        let origin = name("example.test.");
        let mut map = RecordMap::new();
        add_records(&mut map, vec![a("w.example.test.", 300, 1)], &origin).unwrap();
        add_records(&mut map, vec![a("w.example.test.", 5, 2)], &origin).unwrap();
        let set = &map[&RrKey::new(LowerName::new(&name("w.example.test.")), RecordType::A)];
        let ttls: Vec<u32> = set.records_without_rrsigs().map(|r| r.ttl).collect();
        assert_eq!(ttls, vec![5, 5]);
        assert_eq!(set.ttl(), 5);
    }

    #[test]
    fn cname_cannot_join_other_data_and_other_data_cannot_join_a_cname() {
        let origin = name("example.test.");
        let mut map = RecordMap::new();
        add_records(&mut map, vec![a("w.example.test.", 300, 1)], &origin).unwrap();
        let err = add_records(&mut map, vec![cname("w.example.test.", "x.example.test.")], &origin).unwrap_err();
        assert_eq!(err.to_string(), "add A at w.example.test.: a CNAME must be the only record set at its name");
        add_records(&mut map, vec![cname("c.example.test.", "x.example.test.")], &origin).unwrap();
        let err = add_records(&mut map, vec![a("c.example.test.", 300, 1)], &origin).unwrap_err();
        assert!(matches!(err, ZoneError::CnameConflict { ref kind, .. } if kind == "A"));
    }

    #[test]
    fn replacing_with_a_cname_removes_other_sets_and_back() {
        let origin = name("example.test.");
        let mut map = RecordMap::new();
        add_records(&mut map, vec![a("w.example.test.", 300, 1)], &origin).unwrap();
        let owner = name("w.example.test.");
        replace_set(&mut map, &owner, RecordType::CNAME, 60, vec![cname("w.example.test.", "x.example.test.")], &origin).unwrap();
        let types: Vec<RecordType> = keys_at(&map, &LowerName::new(&owner)).into_iter().map(|k| k.record_type).collect();
        assert_eq!(types, vec![RecordType::CNAME]);
        replace_set(&mut map, &owner, RecordType::A, 9, vec![a("w.example.test.", 1, 7)], &origin).unwrap();
        let keys = keys_at(&map, &LowerName::new(&owner));
        assert_eq!(keys.len(), 1);
        assert_eq!(map[&keys[0]].ttl(), 9);
    }

    #[test]
    fn empty_non_terminals_exist_and_siblings_do_not_leak() {
        let origin = name("example.test.");
        let mut map = RecordMap::new();
        add_records(&mut map, vec![a("x.b.example.test.", 300, 1)], &origin).unwrap();
        assert!(name_exists(&map, &LowerName::new(&name("b.example.test."))));
        assert!(name_exists(&map, &LowerName::new(&name("x.b.example.test."))));
        assert!(!name_exists(&map, &LowerName::new(&name("a.example.test."))));
        assert!(!name_exists(&map, &LowerName::new(&name("y.b.example.test."))));
        assert!(!name_exists(&map, &LowerName::new(&name("c.example.test."))));
    }
}
