//! Scenario files: the TOML format of scenarios/README.md parsed into a validated data model.
//!
//! Loading is synchronous and runs nothing: it reads the file and checks the `source` files it
//! names. Every error is `FILE:LINE:COL: MESSAGE`. The runner builds labs from [`Scenario`],
//! renders [`Template`]s through its own [`TemplateContext`], and checks [`Expectation`]s.
//!
//! ```no_run
//! use std::path::Path;
//!
//! for file in nslab_scenario::scenario::discover(Path::new("scenarios")).unwrap() {
//!     match nslab_scenario::scenario::load(&file.path) {
//!         Ok(s) => for p in s.trials() {
//!             println!("{}: {}", file.trial_name(*p), s.description);
//!         },
//!         Err(e) => eprintln!("{e}"), // scenarios/x/y.toml:12:9: unknown key "comand" in service "web"; ...
//!     }
//! }
//! ```

mod build;
mod decode;
mod discover;
mod dns;
mod duration;
mod error;
mod expect;
mod hosts;
mod known;
mod link;
mod load;
mod provision;
mod requires;
mod resolver;
mod resolver_service;
mod segment;
mod service;
mod target;
mod template;
mod time_scale;
mod timeline;
mod values;

pub use build::{BuildDef, BuildInput, DEFAULT_BUILD_TIMEOUT};
pub use discover::{discover, DiscoverError, ScenarioFile};
pub use dns::{parse_record_value, DnsDef, OmittedRecord, TemplatedRecord, DEFAULT_TTL};
pub use duration::{format_duration, parse_duration};
pub use error::{line_col, Location, ScenarioError};
pub use expect::{AddressCheck, Asked, Asker, DnsQueriesCheck, WindowEnd};
pub use expect::{
    Anchor, BindErrorCheck, Cause, Check, ClientRef, ConnectCheck, ConnectFamily, ConnectResult, DiagnosisCheck, ExitCheck, Expectation, FirstRequestCheck,
    Kind, LineWithinCheck, ListenTarget, ListeningCheck, NeverReachesCheck, NoLineCheck, OutputCheck, OutputStream, StaleCause, StaleCheck, StaleCounts,
    DEFAULT_CONNECT_TIMEOUT,
};
pub use hosts::{HostDef, ResolverRef, ResolverTarget};
pub use load::{load, parse_str, ProgramDef, Scenario, DEFAULT_TIMEOUT, MAX_FILE_SIZE};
pub use provision::{ProvisionDef, LAN};
pub use requires::{extract_version, version_probe, Probe, ProbeStream, Requirement, Version, VersionConstraint};
pub use resolver::{ResolverDef, Upstream, DEFAULT_STALE};
pub use segment::SegmentDef;
pub use service::{Condition, ExpectStart, FileContent, FileDef, Run, ServiceDef, DEFAULT_READY_TIMEOUT};
pub use target::{TargetDef, TargetKind};
pub use template::{HostField, Part, RenderError, Template, TemplateContext, Var};
pub use time_scale::{check_time_scale, real_time_only, MAX_TIME_SCALE};
pub use timeline::{Action, DnsFault, FaultScope, LinkState, Step, When, DEFAULT_WAIT_TIMEOUT};
pub use values::{is_lab_address, parse_address, parse_lab_ip, AddressDef, ConnectTarget, Errno, ListenSpec, LAB_PREFIXES};
