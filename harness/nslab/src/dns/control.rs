//! Runtime changes to a served zone: every change runs under the zone's write lock, bumps the SOA serial, and is seen by the very next query.

use std::sync::{Arc, PoisonError, RwLock};

use hickory_proto::rr::{rdata::CNAME, LowerName, Name, RData, Record, RecordType, RrKey};
use tracing::info;

use super::{
    edit::{self, RecordMap},
    error::{ControlError, ZoneError},
    store::ServedZone,
    zone::{self, HostAddrs, RecordKind, RecordSpec, RecordValue},
};

/// A handle to change one served zone at runtime; cheap to clone.
///
/// Every successful change increments the SOA serial in the same critical section and returns
/// the new serial. The server keeps no answer cache, so the next query sees the change.
#[derive(Clone)]
pub struct ZoneControl {
    zone: Arc<ServedZone>,
    hosts: Arc<RwLock<HostAddrs>>,
}

impl std::fmt::Debug for ZoneControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneControl").field("origin", &self.zone.origin.to_string()).finish()
    }
}

impl ZoneControl {
    pub(crate) fn new(zone: Arc<ServedZone>, hosts: Arc<RwLock<HostAddrs>>) -> Self {
        Self { zone, hosts }
    }

    /// The zone origin, absolute (`example.test.`).
    pub fn origin(&self) -> String {
        self.zone.origin.to_string()
    }

    fn zone_err(&self, source: ZoneError) -> ControlError {
        ControlError::Zone { origin: self.zone.origin.to_string(), source }
    }

    fn owner(&self, name: &str) -> Result<Name, ControlError> {
        zone::resolve_name(name, &self.zone.origin).map_err(|e| self.zone_err(e))
    }

    fn expand(&self, owner: &Name, ttl: u32, value: &RecordValue, only: Option<RecordKind>) -> Result<Vec<Record>, ControlError> {
        let hosts = self.hosts.read().unwrap_or_else(PoisonError::into_inner);
        zone::expand(owner, ttl, value, &self.zone.origin, &hosts, only).map_err(|e| self.zone_err(e))
    }

    /// Runs `change` under the write lock on a copy of the zone's records, checks the zone still
    /// has its one SOA at the apex, bumps the serial, and only then installs the copy: a change
    /// that fails, at any step, leaves the zone exactly as it was (the copy shares every record
    /// set, so it costs one map of pointers; changes are rare, queries never wait on a copy).
    async fn change<T>(&self, what: &str, change: impl FnOnce(&mut RecordMap) -> Result<T, ControlError>) -> Result<u32, ControlError> {
        let mut map = self.zone.store.records_mut().await;
        let mut draft = RecordMap::clone(&map);
        change(&mut draft)?;
        edit::check_soa(&draft, &self.zone.origin, what).map_err(|e| self.zone_err(e))?;
        let serial = edit::bump_serial(&mut draft, &self.zone.origin)
            .ok_or_else(|| self.zone_err(ZoneError::SoaRequired { op: what.to_owned(), origin: self.zone.origin.to_string() }))?;
        *map = draft;
        drop(map);
        info!(zone = %self.zone.origin, serial, change = what, "zone changed");
        Ok(serial)
    }

    /// Adds one record to its set (a [`RecordValue::Host`] adds A and/or AAAA records). If the
    /// TTL differs from the set's, the whole set takes the new TTL. A CNAME replaces the CNAME
    /// at its name. Returns the new serial.
    ///
    /// # Errors
    ///
    /// [`ControlError::Zone`] for invalid names, unknown hosts, names outside the zone, or a
    /// CNAME conflict (a CNAME next to other data, or data next to a CNAME).
    pub async fn add_record(&self, record: RecordSpec) -> Result<u32, ControlError> {
        let owner = self.owner(&record.name)?;
        let records = self.expand(&owner, record.ttl, &record.value, None)?;
        let origin = self.zone.origin.clone();
        let desc = format!("add {owner}");
        self.change(&desc, |map| edit::add_records(map, records, &origin).map_err(|e| self.zone_err(e))).await
    }

    /// Replaces the whole `kind` set at `name` with `values`, all with `ttl`, in one step. An empty
    /// list deletes the set. Setting a CNAME removes all other sets at the name; setting another
    /// type removes a CNAME there. [`RecordValue::Host`] is allowed for A and AAAA (addresses of
    /// that family). Returns the new serial.
    ///
    /// # Errors
    ///
    /// [`ControlError::Zone`] for a value of another type, an unknown host, a host without an
    /// address of the family, several CNAME targets, a CNAME at the apex, an empty SOA set (the
    /// SOA can not be deleted), or a name outside the zone. The zone is unchanged on error.
    pub async fn replace_set(&self, name: &str, kind: RecordKind, ttl: u32, values: Vec<RecordValue>) -> Result<u32, ControlError> {
        let owner = self.owner(name)?;
        let mut records = Vec::with_capacity(values.len());
        for value in &values {
            for record in self.expand(&owner, ttl, value, Some(kind))? {
                if !records.iter().any(|r: &Record| r.data == record.data) {
                    records.push(record);
                }
            }
        }
        let origin = self.zone.origin.clone();
        let desc = format!("replace {owner} {kind}");
        self.change(&desc, |map| edit::replace_set(map, &owner, kind.record_type(), ttl, records, &origin).map_err(|e| self.zone_err(e))).await
    }

    /// Points the CNAME at `name` to `target`, keeping its TTL, atomically: no query sees both
    /// or neither. Returns the new serial.
    ///
    /// # Errors
    ///
    /// [`ControlError::NoSuchSet`] when `name` has no CNAME; [`ControlError::Zone`] for bad names.
    pub async fn swap_cname(&self, name: &str, target: &str) -> Result<u32, ControlError> {
        let owner = self.owner(name)?;
        let target = self.owner(target)?;
        let origin = self.zone.origin.clone();
        let desc = format!("swap {owner} CNAME {target}");
        self.change(&desc, |map| {
            let key = RrKey::new(LowerName::new(&owner), RecordType::CNAME);
            let ttl = map.get(&key).map(|set| set.ttl()).ok_or_else(|| ControlError::NoSuchSet { name: owner.to_string(), kind: "CNAME".to_owned() })?;
            let record = Record::from_rdata(owner.clone(), ttl, RData::CNAME(CNAME(target)));
            edit::replace_set(map, &owner, RecordType::CNAME, ttl, vec![record], &origin).map_err(|e| self.zone_err(e))
        })
        .await
    }

    /// Deletes the `kind` set at `name`. Returns the new serial.
    ///
    /// # Errors
    ///
    /// [`ControlError::NoSuchSet`] when there is no such set; [`ControlError::Zone`] with
    /// [`ZoneError::SoaRequired`] for the SOA set, which can not be deleted.
    pub async fn delete_set(&self, name: &str, kind: RecordKind) -> Result<u32, ControlError> {
        let owner = self.owner(name)?;
        let origin = self.zone.origin.clone();
        let desc = format!("delete {owner} {kind}");
        self.change(&desc, |map| {
            if edit::delete_set(map, &owner, kind.record_type(), &origin).map_err(|e| self.zone_err(e))? {
                Ok(())
            } else {
                Err(no_such_set(&owner, kind))
            }
        })
        .await
    }

    /// Deletes every record set at `name` (at the apex, all but the SOA). Returns the new serial.
    ///
    /// # Errors
    ///
    /// [`ControlError::NoSuchName`] when nothing was there to delete.
    pub async fn delete_name(&self, name: &str) -> Result<u32, ControlError> {
        let owner = self.owner(name)?;
        let desc = format!("delete {owner}");
        self.change(&desc, |map| if edit::delete_name(map, &owner) > 0 { Ok(()) } else { Err(ControlError::NoSuchName { name: owner.to_string() }) }).await
    }

    /// Sets the TTL of every record of the `kind` set at `name`. Returns the new serial.
    ///
    /// # Errors
    ///
    /// [`ControlError::NoSuchSet`] when there is no such set.
    pub async fn set_ttl(&self, name: &str, kind: RecordKind, ttl: u32) -> Result<u32, ControlError> {
        let owner = self.owner(name)?;
        let desc = format!("ttl {owner} {kind} {ttl}");
        self.change(&desc, |map| if edit::set_ttl(map, &owner, kind.record_type(), ttl) { Ok(()) } else { Err(no_such_set(&owner, kind)) }).await
    }

    /// Increments the SOA serial without other changes. Returns the new serial.
    ///
    /// # Errors
    ///
    /// Only if the zone lost its SOA, which the other methods never allow.
    pub async fn bump_serial(&self) -> Result<u32, ControlError> {
        self.change("bump serial", |_| Ok(())).await
    }

    /// The current SOA serial.
    pub async fn serial(&self) -> u32 {
        let map = self.zone.store.records().await;
        edit::soa_of(&map, &self.zone.lower).map_or(0, |(soa, _)| soa.serial)
    }

    /// Every record of the zone in presentation format, canonical order (for artifacts and asserts).
    pub async fn dump(&self) -> Vec<String> {
        let map = self.zone.store.records().await;
        map.values().flat_map(|set| set.records_without_rrsigs()).map(ToString::to_string).collect()
    }
}

fn no_such_set(owner: &impl std::fmt::Display, kind: RecordKind) -> ControlError {
    ControlError::NoSuchSet { name: owner.to_string(), kind: kind.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::zone::{Soa, Zone};

    fn control() -> ZoneControl {
        let zone = Zone::new("example.test", Soa::new("ns", "hostmaster"))
            .record("@", 3600, RecordValue::Ns("ns".into()))
            .record("ns", 60, RecordValue::A("192.0.2.53".parse().unwrap()))
            .record("app", 30, RecordValue::Cname("ns".into()));
        let served = ServedZone::build(&zone, &HostAddrs::new()).unwrap();
        ZoneControl::new(Arc::new(served), Arc::new(RwLock::new(HostAddrs::new())))
    }

    fn source_of(e: &ControlError) -> &ZoneError {
        match e {
            ControlError::Zone { source, .. } => source,
            other => panic!("expected a zone error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn deleting_or_emptying_the_apex_soa_is_refused_and_changes_nothing() {
        let zc = control();
        let before = zc.dump().await;
        let serial = zc.serial().await;

        let e = zc.delete_set("@", RecordKind::Soa).await.unwrap_err();
        assert!(matches!(source_of(&e), ZoneError::SoaRequired { .. }), "{e:?}");
        assert_eq!(
            source_of(&e).to_string(),
            "delete SOA at example.test.: zone example.test. must keep exactly one SOA record, at its apex \
             (change the SOA with set_ttl or bump_serial instead)"
        );

        let e = zc.replace_set("@", RecordKind::Soa, 60, vec![]).await.unwrap_err();
        assert!(matches!(source_of(&e), ZoneError::SoaRequired { .. }), "{e:?}");
        // An SOA set somewhere else is refused the same way.
        let e = zc.replace_set("app", RecordKind::Soa, 60, vec![]).await.unwrap_err();
        assert!(matches!(source_of(&e), ZoneError::SoaRequired { .. }), "{e:?}");

        assert_eq!(zc.dump().await, before, "a refused change must leave the zone unchanged");
        assert_eq!(zc.serial().await, serial, "a refused change must not bump the serial");
        // Deleting everything at the apex keeps the SOA; the zone still serves.
        zc.delete_name("@").await.unwrap();
        assert!(zc.dump().await.iter().any(|r| r.contains(" SOA ")));
        assert_eq!(zc.serial().await, serial + 1);
    }

    #[tokio::test]
    async fn a_change_that_fails_after_editing_rolls_back_entirely() {
        let zc = control();
        let before = zc.dump().await;
        let serial = zc.serial().await;
        // An edit that changes the map and then fails.
        let e = zc
            .change("test edit", |map| {
                map.clear();
                Err::<(), _>(ControlError::NoSuchName { name: "x.example.test.".into() })
            })
            .await
            .unwrap_err();
        assert!(matches!(e, ControlError::NoSuchName { .. }));
        assert_eq!(zc.dump().await, before);
        // An edit that "succeeds" but loses the SOA is caught by the invariant check.
        let e = zc
            .change("drop the SOA", |map| {
                map.retain(|k, _| k.record_type != RecordType::SOA);
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(matches!(source_of(&e), ZoneError::SoaRequired { op, .. } if op == "drop the SOA"), "{e:?}");
        assert_eq!(zc.dump().await, before);
        assert_eq!(zc.serial().await, serial);
        // A good change still goes through.
        assert_eq!(zc.swap_cname("app", "ns").await.unwrap(), serial + 1);
    }
}
