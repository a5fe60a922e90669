//! `manifest.json`, the first member of a bundle: what the bundle is of, and its format.

use serde::{Deserialize, Serialize};

use super::error::Refusal;
use super::machine::Machine;
use crate::runner::report::Outcome;

/// The format version this nslab writes and reads; bumped on any incompatible change.
pub const FORMAT: u32 = 1;

/// The manifest's largest size (it is read into memory before anything else).
pub const MAX_BYTES: u64 = 1 << 20;

/// What a bundle is of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The nslab that wrote it.
    pub nslab: String,
    /// The trial's name (`stale-dns/jvm-default/dual-stack`).
    pub trial: String,
    /// The scenario file in the bundle (`scenarios/stale-dns/jvm-default.toml`).
    pub scenario: String,
    /// Where the scenario file was on the machine that ran it.
    pub scenario_origin: String,
    /// The trial's profile.
    pub profile: String,
    /// How the trial ended.
    pub outcome: Outcome,
    /// Why it did not pass, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The machine that ran it.
    pub machine: Machine,
}

impl Manifest {
    /// Reads a manifest: its format version first (a bundle of another version is refused as
    /// such, whatever its other fields), then the rest.
    ///
    /// # Errors
    /// [`Refusal::Version`] or [`Refusal::BadManifest`].
    pub fn parse(bytes: &[u8]) -> Result<Manifest, Refusal> {
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| Refusal::BadManifest(e.to_string()))?;
        let format = v.get("format").ok_or_else(|| Refusal::BadManifest("it has no \"format\" field".into()))?;
        if format.as_u64() != Some(u64::from(FORMAT)) {
            return Err(Refusal::Version { found: format.to_string(), expected: FORMAT, nslab: env!("CARGO_PKG_VERSION") });
        }
        let m: Manifest = serde_json::from_value(v).map_err(|e| Refusal::BadManifest(e.to_string()))?;
        if m.trial.rsplit_once('/').map(|(_, p)| p) != Some(m.profile.as_str()) {
            return Err(Refusal::BadManifest(format!("trial {:?} does not end with its profile {:?}", m.trial, m.profile)));
        }
        if m.profile.parse::<nslab::addr::profile::Profile>().is_err() {
            return Err(Refusal::BadManifest(format!("profile {:?} is not a profile", m.profile)));
        }
        Ok(m)
    }
}
