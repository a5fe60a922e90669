//! Repro bundles: one file (`x.nslab`, a gzip-compressed tar archive) holding a trial's
//! scenario and every file beside it, the trial's artifacts and the facts of the machine that
//! ran it ([`mod@write`]); and the careful reading of such a file, which may come from anyone
//! ([`mod@read`]): every member checked before anything is written, then extracted into a fresh
//! directory only.
//!
//! Layout of a bundle, in this order:
//! - `manifest.json` ([`Manifest`]): format version, nslab's version, the trial, its profile,
//!   its outcome, where its scenario is in the bundle, the machine's facts;
//! - `scenarios/<name>.toml` (the trial's scenario, at the path that gives its trial the same
//!   name) and every other file of its folder except other scenarios, with their sub-folders;
//! - `artifacts/...`: every regular file of the trial's artifact directory, as it was.

pub mod error;
pub mod machine;
pub mod manifest;
pub mod read;
pub mod write;

pub use error::{BundleError, Refusal};
pub use machine::{Difference, Machine};
pub use manifest::{Manifest, FORMAT};
pub use read::{extract, validate, Extracted, Limits};
pub use write::{create, find_trial, Written};
