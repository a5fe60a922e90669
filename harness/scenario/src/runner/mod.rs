//! Running scenarios: one trial per scenario and profile, its checks, and reports.

pub mod admission;
pub mod attempt;
pub mod attribution;
pub mod build;
pub mod checks;
pub mod client;
pub mod clock;
pub mod context;
pub mod diagnose;
pub mod error;
pub mod evidence;
pub mod fidelity;
pub mod matrix;
pub mod observe;
pub mod planned;
pub mod report;
pub mod requirements;
pub mod resolved;
pub mod stale;
pub mod suite;
pub mod target;
pub mod trial;

pub use admission::Admission;
pub use error::Error;
pub use planned::PlannedTrial;
pub use report::{write_json, write_json_run, write_junit, ExpectationResult, MeasuredWindow, Outcome, PreviousAttempt, RunInfo, TrialResult, SCHEMA};
pub use suite::{collect, run_admitted, run_admitted_until, run_all, run_all_until};
pub use trial::{run_trial, RunOptions, Session};
