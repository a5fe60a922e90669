//! Running one trial: a scenario in one profile, from lab build to teardown.

mod artifacts;
mod lifecycle;
mod services;
mod session;
mod state;
mod timeline;

pub use lifecycle::{run_trial, RunOptions};
pub use session::Session;
pub use state::{setup_allowance, LAB_BUILD_ALLOWANCE, STARTUP_ALLOWANCE};
