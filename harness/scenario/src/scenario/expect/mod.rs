//! `[[expect]]`: what must be observed, each checked and reported on its own, optionally only
//! in some profiles. Each kind of expectation is one file under `kinds/` (its model, name,
//! keys, decoder and sentence) and one line in `kind.rs`.

mod decode;
mod expectation;
mod kind;
mod kinds;
mod spec;

pub(crate) use decode::{decode_expectations, profile_of_scenario};
pub use expectation::Expectation;
pub use kind::{Check, Kind};
pub use kinds::address::AddressCheck;
pub use kinds::bind_error::BindErrorCheck;
pub use kinds::connect::{ConnectCheck, ConnectFamily, ConnectResult, DEFAULT_CONNECT_TIMEOUT};
pub use kinds::diagnosis::{Cause, DiagnosisCheck};
pub use kinds::dns_queries::{Asked, Asker, DnsQueriesCheck, WindowEnd};
pub use kinds::exit::ExitCheck;
pub use kinds::first_request::{Anchor, FirstRequestCheck};
pub use kinds::line_within::LineWithinCheck;
pub use kinds::listening::{ListenTarget, ListeningCheck};
pub use kinds::never_reaches::NeverReachesCheck;
pub use kinds::no_line::NoLineCheck;
pub use kinds::output::{OutputCheck, OutputStream};
pub use kinds::stale::{StaleCause, StaleCheck, StaleCounts};
pub use spec::ClientRef;
