//! nslab's scenario engine: the TOML scenario format ([`scenario`]) and the runner that turns a
//! scenario into trials, one per profile ([`runner`]): it builds each lab with the `nslab`
//! library, starts targets and services, plays the timeline, checks the expectations and writes
//! the reports (JSON, JUnit, the matrix). Internal to nslab: the `nslab` command and the
//! scenario test binary use it; the library users depend on is the `nslab` crate.

pub mod bundle;
pub mod runner;
pub mod scenario;
