//! Error types of the DNS server module, one enum per area (zone data, runtime control, log, server).

use std::{io, path::PathBuf};

/// An error in zone data: building a zone from its description or expanding a record value.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    /// A domain name could not be parsed.
    #[error("parse name {name:?} (origin {origin})")]
    InvalidName {
        /// The name as written.
        name: String,
        /// The origin it was resolved against.
        origin: String,
        /// Why the parser rejected it.
        #[source]
        source: hickory_proto::ProtoError,
    },
    /// A record names a host that is not in the host-address map.
    #[error("expand host {host:?} for {name} (not in the host-address map)")]
    UnknownHost {
        /// The host name used in the record value.
        host: String,
        /// The owner name of the record.
        name: String,
    },
    /// A host has no address of the family a record set needs.
    #[error("expand host {host:?} for {name} {kind}: host has no address of that family")]
    NoAddressForHost {
        /// The host name used in the record value.
        host: String,
        /// The owner name of the record.
        name: String,
        /// The record type that was requested (A or AAAA).
        kind: String,
    },
    /// A record's owner name lies outside the zone it was added to.
    #[error("add {name} to zone {origin}: name is outside the zone")]
    OutOfZone {
        /// The owner name.
        name: String,
        /// The zone origin.
        origin: String,
    },
    /// A record value does not match the record type it was given for.
    #[error("use a {value} value in a {kind} record set at {name}")]
    KindMismatch {
        /// The owner name.
        name: String,
        /// The record type of the set.
        kind: String,
        /// A short description of the offending value.
        value: String,
    },
    /// A CNAME would coexist with other data at the same name (RFC 1034 section 3.6.2).
    #[error("add {kind} at {name}: a CNAME must be the only record set at its name")]
    CnameConflict {
        /// The owner name.
        name: String,
        /// The record type that conflicts.
        kind: String,
    },
    /// A CNAME record set was given more than one target.
    #[error("set CNAME at {name} with {count} targets: a CNAME set holds exactly one record")]
    MultipleCnames {
        /// The owner name.
        name: String,
        /// How many targets were given.
        count: usize,
    },
    /// A change would delete the zone's SOA, leave it with several, or put one below the apex:
    /// a zone has exactly one SOA record, at its origin.
    #[error("{op}: zone {origin} must keep exactly one SOA record, at its apex (change the SOA with set_ttl or bump_serial instead)")]
    SoaRequired {
        /// What was attempted (`delete SOA at example.test.`).
        op: String,
        /// The zone origin.
        origin: String,
    },
    /// The same zone origin was given twice.
    #[error("load zone {origin}: zone given twice")]
    DuplicateZone {
        /// The zone origin.
        origin: String,
    },
    /// hickory rejected the record map (for instance a missing SOA).
    #[error("build zone {origin}: {reason}")]
    Build {
        /// The zone origin.
        origin: String,
        /// hickory's reason (it reports errors as strings).
        reason: String,
    },
}

/// An error from a runtime change to a served zone.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No served zone has this origin.
    #[error("find zone {origin}: the server does not serve it")]
    NoSuchZone {
        /// The requested origin.
        origin: String,
    },
    /// The record set to change does not exist.
    #[error("change {kind} set at {name}: no such record set")]
    NoSuchSet {
        /// The owner name.
        name: String,
        /// The record type.
        kind: String,
    },
    /// A name given to the fault table is not a valid domain name.
    #[error("parse fault target name {name:?}")]
    FaultName {
        /// The name as given.
        name: String,
        /// The parser's error.
        #[source]
        source: ZoneError,
    },
    /// The name has no records to delete.
    #[error("delete {name}: no such name")]
    NoSuchName {
        /// The owner name.
        name: String,
    },
    /// The change was rejected because the resulting data would be invalid.
    #[error("apply change to zone {origin}")]
    Zone {
        /// The zone origin.
        origin: String,
        /// What is wrong with the data.
        #[source]
        source: ZoneError,
    },
}

/// An error while writing the query log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log file could not be created or written.
    #[error("write query log to {path}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A log entry could not be serialised.
    #[error("serialise query log entry for {path}")]
    Serialize {
        /// The file being written.
        path: PathBuf,
        /// The serialiser error.
        #[source]
        source: serde_json::Error,
    },
}

/// An error starting or stopping the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The zone data given at start is invalid.
    #[error("load zones")]
    Zone {
        /// What is wrong.
        #[source]
        source: ZoneError,
    },
    /// No socket was handed in, so the server could never answer.
    #[error("start DNS server: no UDP socket and no TCP listener given")]
    NoSockets,
    /// A socket's local address could not be read.
    #[error("read local address of a {transport} socket")]
    LocalAddr {
        /// "udp" or "tcp".
        transport: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The DNS64 prefix is not usable.
    #[error("use DNS64 prefix {prefix}/{len}: only a /96 prefix is supported")]
    Dns64Prefix {
        /// The prefix given.
        prefix: std::net::Ipv6Addr,
        /// Its length.
        len: u8,
    },
    /// A serving task had panicked; it was found while shutting down.
    #[error("shut down DNS server: {panicked} serving task(s) had panicked")]
    Shutdown {
        /// How many tasks had panicked.
        panicked: usize,
    },
}
