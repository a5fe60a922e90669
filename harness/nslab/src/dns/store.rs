//! Owns the served zones: builds each zone's record map into a hickory `InMemoryZoneHandler` and finds the zone for a name.

use std::{collections::BTreeMap, sync::Arc};

use hickory_proto::rr::{LowerName, Name, RecordSet, RecordType, RrKey};
use hickory_server::{
    store::in_memory::InMemoryZoneHandler,
    zone_handler::{AxfrPolicy, ZoneType},
};

use super::{
    edit::{self, RecordMap},
    error::ZoneError,
    zone::{self, HostAddrs, Zone},
};

/// One zone as served: its origin and hickory's in-memory store holding the records.
///
/// Reads take `records()` (a read lock) for the whole answer, so one answer always sees one
/// consistent version of the zone; writes take `records_mut()` (the write lock).
pub(crate) struct ServedZone {
    pub(crate) origin: Name,
    pub(crate) lower: LowerName,
    pub(crate) store: InMemoryZoneHandler,
}

impl ServedZone {
    /// Builds a zone from its description, expanding host references with `hosts`.
    ///
    /// # Errors
    ///
    /// Any [`ZoneError`] about the data (bad names, unknown hosts, CNAME conflicts, names
    /// outside the zone).
    pub(crate) fn build(zone: &Zone, hosts: &HostAddrs) -> Result<Self, ZoneError> {
        let origin = zone::parse_origin(&zone.origin)?;
        let soa = zone::soa_record(&origin, &zone.soa)?;
        let mut map = RecordMap::new();
        edit::add_records(&mut map, vec![soa], &origin)?;
        for spec in &zone.records {
            let owner = zone::resolve_name(&spec.name, &origin)?;
            let records = zone::expand(&owner, spec.ttl, &spec.value, &origin, hosts, None)?;
            edit::add_records(&mut map, records, &origin)?;
        }
        // hickory's constructor wants a map with the SOA; the rest is installed directly so that
        // our own invariants (one TTL per set, exclusive CNAMEs) are what the server holds.
        let mut initial = BTreeMap::new();
        let soa_key = RrKey::new(LowerName::new(&origin), RecordType::SOA);
        if let Some(set) = map.get(&soa_key) {
            initial.insert(soa_key, RecordSet::clone(set));
        }
        let mut store = InMemoryZoneHandler::new(origin.clone(), initial, ZoneType::Primary, AxfrPolicy::Deny)
            .map_err(|reason| ZoneError::Build { origin: origin.to_string(), reason })?;
        *store.records_get_mut() = map;
        Ok(Self { lower: LowerName::new(&origin), origin, store })
    }
}

/// All zones of one server, most specific first.
pub(crate) struct ZoneSet {
    zones: Vec<Arc<ServedZone>>,
}

impl ZoneSet {
    /// Builds every zone.
    ///
    /// # Errors
    ///
    /// The first zone's [`ZoneError`], or [`ZoneError::DuplicateZone`].
    pub(crate) fn build(zones: &[Zone], hosts: &HostAddrs) -> Result<Self, ZoneError> {
        let mut built: Vec<Arc<ServedZone>> = Vec::with_capacity(zones.len());
        for zone in zones {
            let served = ServedZone::build(zone, hosts)?;
            if built.iter().any(|z| z.lower == served.lower) {
                return Err(ZoneError::DuplicateZone { origin: served.origin.to_string() });
            }
            built.push(Arc::new(served));
        }
        // Longest origin first, so a child zone wins over its parent.
        built.sort_by_key(|z| std::cmp::Reverse(z.lower.num_labels()));
        Ok(Self { zones: built })
    }

    /// The most specific zone containing `name`.
    pub(crate) fn find(&self, name: &LowerName) -> Option<&Arc<ServedZone>> {
        self.zones.iter().find(|z| z.lower.zone_of(name))
    }

    /// The zone with exactly this origin.
    pub(crate) fn by_origin(&self, origin: &LowerName) -> Option<&Arc<ServedZone>> {
        self.zones.iter().find(|z| z.lower == *origin)
    }

    /// All zones.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<ServedZone>> {
        self.zones.iter()
    }
}
