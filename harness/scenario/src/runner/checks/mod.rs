//! Checking a scenario's expectations against what the lab observed: one file per kind of
//! expectation (its evaluator), and `dispatch.rs`, which decides when each is checked.

mod address;
mod bind_error;
mod connect;
mod diagnosis;
mod dispatch;
mod dns_queries;
mod exit;
mod first_request;
mod line_within;
mod listening;
mod never_reaches;
mod no_line;
mod observed;
mod output;
mod stale;

pub use dispatch::{evaluate, evaluate_late, from_reports, undecided, Indexed};
