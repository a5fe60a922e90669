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
        f.debug_struct("ZoneControl")
            .field("origin", &self.zone.origin.to_string())
            .finish()
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
        ControlError::Zone {
            origin: self.zone.origin.to_string(),
            source,
        }
    }

    fn owner(&self, name: &str) -> Result<Name, ControlError> {
        zone::resolve_name(name, &self.zone.origin).map_err(|e| self.zone_err(e))
    }

    fn expand(
        &self,
        owner: &Name,
        ttl: u32,
        value: &RecordValue,
        only: Option<RecordKind>,
    ) -> Result<Vec<Record>, ControlError> {
        let hosts = self.hosts.read().unwrap_or_else(PoisonError::into_inner);
        zone::expand(owner, ttl, value, &self.zone.origin, &hosts, only).map_err(|e| self.zone_err(e))
    }

    /// Runs `change` under the write lock and bumps the serial if it succeeded.
    async fn change<T>(
        &self,
        what: &str,
        change: impl FnOnce(&mut RecordMap) -> Result<T, ControlError>,
    ) -> Result<u32, ControlError> {
        let mut map = self.zone.store.records_mut().await;
        change(&mut map)?;
        let serial = edit::bump_serial(&mut map, &self.zone.origin).ok_or_else(|| {
            ControlError::NoSuchSet {
                name: self.zone.origin.to_string(),
                kind: "SOA".to_owned(),
            }
        })?;
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
        self.change(&desc, |map| {
            edit::add_records(map, records, &origin).map_err(|e| self.zone_err(e))
        })
        .await
    }

    /// Replaces the whole `kind` set at `name` with `values`, all with `ttl`, in one step. An empty
    /// list deletes the set. Setting a CNAME removes all other sets at the name; setting another
    /// type removes a CNAME there. [`RecordValue::Host`] is allowed for A and AAAA (addresses of
    /// that family). Returns the new serial.
    ///
    /// # Errors
    ///
    /// [`ControlError::Zone`] for a value of another type, an unknown host, a host without an
    /// address of the family, several CNAME targets, a CNAME at the apex, or a name outside the zone.
    pub async fn replace_set(
        &self,
        name: &str,
        kind: RecordKind,
        ttl: u32,
        values: Vec<RecordValue>,
    ) -> Result<u32, ControlError> {
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
        self.change(&desc, |map| {
            edit::replace_set(map, &owner, kind.record_type(), ttl, records, &origin)
                .map_err(|e| self.zone_err(e))
        })
        .await
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
            let ttl = map.get(&key).map(|set| set.ttl()).ok_or_else(|| ControlError::NoSuchSet {
                name: owner.to_string(),
                kind: "CNAME".to_owned(),
            })?;
            let record = Record::from_rdata(owner.clone(), ttl, RData::CNAME(CNAME(target)));
            edit::replace_set(map, &owner, RecordType::CNAME, ttl, vec![record], &origin)
                .map_err(|e| self.zone_err(e))
        })
        .await
    }

    /// Deletes the `kind` set at `name`. Returns the new serial.
    ///
    /// # Errors
    ///
    /// [`ControlError::NoSuchSet`] when there is no such set (the SOA set can not be deleted).
    pub async fn delete_set(&self, name: &str, kind: RecordKind) -> Result<u32, ControlError> {
        let owner = self.owner(name)?;
        let desc = format!("delete {owner} {kind}");
        self.change(&desc, |map| {
            if edit::delete_set(map, &owner, kind.record_type()) {
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
        self.change(&desc, |map| {
            if edit::delete_name(map, &owner) > 0 {
                Ok(())
            } else {
                Err(ControlError::NoSuchName {
                    name: owner.to_string(),
                })
            }
        })
        .await
    }

    /// Sets the TTL of every record of the `kind` set at `name`. Returns the new serial.
    ///
    /// # Errors
    ///
    /// [`ControlError::NoSuchSet`] when there is no such set.
    pub async fn set_ttl(&self, name: &str, kind: RecordKind, ttl: u32) -> Result<u32, ControlError> {
        let owner = self.owner(name)?;
        let desc = format!("ttl {owner} {kind} {ttl}");
        self.change(&desc, |map| {
            if edit::set_ttl(map, &owner, kind.record_type(), ttl) {
                Ok(())
            } else {
                Err(no_such_set(&owner, kind))
            }
        })
        .await
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
        map.values()
            .flat_map(|set| set.records_without_rrsigs())
            .map(ToString::to_string)
            .collect()
    }
}

fn no_such_set(owner: &impl std::fmt::Display, kind: RecordKind) -> ControlError {
    ControlError::NoSuchSet { name: owner.to_string(), kind: kind.to_string() }
}
