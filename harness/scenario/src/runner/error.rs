//! The runner's errors: why a trial (or a step of a live lab) could not go on, by cause, with the error that caused it.

use std::path::PathBuf;
use std::time::Duration;

use nslab::dns::ControlError;
use nslab::os::fsafe::FsError;

use crate::scenario::RenderError;

/// Why a trial could not run to its checks, or why a live lab's step failed.
///
/// The text users see (reports, the JSON `reason`, stderr) is [`Error::reason`]: the message and
/// every cause after it, as `nslab::error::chain` joins them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A scenario build (`[build.<name>]`) gave no output: it failed, timed out or could not run.
    #[error(transparent)]
    Build {
        /// Which build and why, with where its log is.
        source: crate::runner::build::BuildError,
    },
    /// The lab could not be built.
    #[error("building the lab")]
    LabBuild {
        /// Why.
        #[source]
        source: Box<nslab::Error>,
    },
    /// The lab, its targets and the services that start on their own took longer than their allowance.
    #[error(
        "the lab and its services did not start within the setup allowance of {allowance:?} (not part of the scenario's timeout of {timeout:?}: {lab:?} for the lab, and for each service that starts on its own its ready_timeout and {startup:?} of start-up)"
    )]
    SetupTimeout {
        /// The whole allowance.
        allowance: Duration,
        /// The scenario's timeout.
        timeout: Duration,
        /// The lab build's part of the allowance.
        lab: Duration,
        /// Each service's start-up allowance.
        startup: Duration,
    },
    /// The timeline and checks took longer than the scenario's timeout.
    #[error(
        "the scenario did not finish within its timeout of {timeout:?} ({during}; counted from the end of the setup, which took {setup_secs:.1}s, plus {startup_secs:.1}s of start-up of the services the timeline started)"
    )]
    Timeout {
        /// The scenario's timeout.
        timeout: Duration,
        /// What was running (`while the timeline played`).
        during: &'static str,
        /// How long the setup took, seconds.
        setup_secs: f64,
        /// Start-up time of services the timeline started, seconds.
        startup_secs: f64,
    },
    /// A lab operation failed: finding a host, a link or address change, a socket.
    #[error(transparent)]
    Lab(Box<nslab::Error>),
    /// A built-in HTTP target could not listen.
    #[error("target {target}: bind [::]:{port} in host {host}")]
    TargetBind {
        /// The target's name.
        target: String,
        /// Its port.
        port: u16,
        /// The host it serves in.
        host: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// A service's artifact directory could not be made.
    #[error("service {service}: {error}")]
    ServiceDir {
        /// The service.
        service: String,
        /// What the safe-file layer refused (its message already names the cause).
        error: Box<FsError>,
    },
    /// The way to a service's directory could not be opened to its (possibly other) user.
    #[error("service {service}: open the way to {}", dir.display())]
    ServiceTraverse {
        /// The service.
        service: String,
        /// Its directory.
        dir: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file the service declares could not be written into its directory.
    #[error("service {service}: file {}", file.display())]
    ServiceFile {
        /// The service.
        service: String,
        /// The file as declared (relative to the service's directory).
        file: PathBuf,
        /// Why.
        #[source]
        source: FileError,
    },
    /// A template of the service (command, env, cwd) has no value in this lab.
    #[error("service {service}")]
    Template {
        /// The service.
        service: String,
        /// The template error.
        #[source]
        source: Box<RenderError>,
    },
    /// A templated `[dns]` record's value is not data of its type once rendered.
    #[error("{what}")]
    DnsRecord {
        /// Which record, its template and what it became.
        what: String,
    },
    /// A service's command is empty once rendered.
    #[error("service {service}: empty command")]
    EmptyCommand {
        /// The service.
        service: String,
    },
    /// A service's program could not be started.
    #[error("service {service}")]
    Spawn {
        /// The service.
        service: String,
        /// The spawn error.
        #[source]
        source: Box<nslab::Error>,
    },
    /// A service did not start (or fail to start) as the scenario expects.
    #[error("service {service} did not start as expected: {observed}")]
    NotStarted {
        /// The service.
        service: String,
        /// What was seen instead.
        observed: String,
    },
    /// A step waited for a service's condition and it did not come.
    #[error("{observed}")]
    NotReady {
        /// What was seen instead.
        observed: String,
    },
    /// A step names a service the scenario does not declare.
    #[error("no service {service}")]
    NoService {
        /// The name.
        service: String,
    },
    /// A step needs a service that has not been started.
    #[error("service {service} has not been started")]
    NotRunning {
        /// The service.
        service: String,
    },
    /// A DNS step in a scenario without `[dns]`.
    #[error("the scenario has no [dns]")]
    NoDns,
    /// A provisioning step in a scenario without `[segments.lan.ipv6]`.
    #[error("the scenario has no [segments.lan.ipv6]")]
    NoProvision,
    /// The DNS server refused a change or a fault.
    #[error("{error}")]
    Dns {
        /// The server's error (shown by its own message, as the runner has always shown it).
        error: Box<ControlError>,
    },
    /// A host made no DNS query the step waited for.
    #[error("host {host} made no DNS query{}{what} within {timeout:?}", if what.is_empty() { "" } else { " for " })]
    NoDnsQuery {
        /// The asking host.
        host: String,
        /// The name and type waited for (`app.example.test AAAA`), empty for any.
        what: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// A timeline step failed.
    #[error("timeline step {number} ({kind})")]
    Step {
        /// Its 1-based position in the file.
        number: usize,
        /// Its action (`swap-cname`).
        kind: &'static str,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// A live lab was asked for a step the scenario does not have.
    #[error("the scenario has no timeline step {number}")]
    NoStep {
        /// The 1-based step asked for.
        number: usize,
    },
    /// The lab could not be torn down completely.
    #[error("teardown")]
    Teardown {
        /// Every step that failed.
        #[source]
        source: Box<nslab::TeardownError>,
    },
    /// The setup of a live lab failed; the lab is gone, its evidence kept.
    #[error("{}\n  evidence kept in {}", .error.reason(), .dir.display())]
    Kept {
        /// Why the setup failed.
        error: Box<Error>,
        /// Where the evidence is.
        dir: PathBuf,
    },
}

impl From<nslab::Error> for Error {
    fn from(e: nslab::Error) -> Self {
        Self::Lab(Box::new(e))
    }
}

impl Error {
    /// The message users see: this error and each of its causes, joined by `: `.
    pub fn reason(&self) -> String {
        nslab::error::chain(self)
    }
}

/// Why a service's file could not be put in place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Its template has no value in this lab.
    #[error(transparent)]
    Render(Box<RenderError>),
    /// The source file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The source file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error(transparent)]
    Write(Box<FsError>),
    /// A resolver's configuration could not be generated for this lab.
    #[error("cannot generate the resolver's configuration: {0}")]
    Resolver(String),
}

impl From<RenderError> for FileError {
    fn from(e: RenderError) -> Self {
        Self::Render(Box::new(e))
    }
}

impl From<FsError> for FileError {
    fn from(e: FsError) -> Self {
        Self::Write(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each reason reads exactly as the string the runner built by hand before it had this type.
    #[test]
    fn reasons_read_as_before() {
        let not_started = Error::NotStarted { service: "web".into(), observed: "exited (exit status: 1)".into() };
        let step = Error::Step { number: 2, kind: "start", source: Box::new(not_started) };
        assert_eq!(step.reason(), "timeline step 2 (start): service web did not start as expected: exited (exit status: 1)");

        let (allowance, timeout, lab, startup) = (Duration::from_secs(95), Duration::from_secs(12), Duration::from_secs(60), Duration::from_secs(30));
        assert_eq!(
            Error::SetupTimeout { allowance, timeout, lab, startup }.reason(),
            format!("the lab and its services did not start within the setup allowance of {allowance:?} (not part of the scenario's timeout of {timeout:?}: {lab:?} for the lab, and for each service that starts on its own its ready_timeout and {startup:?} of start-up)")
        );
        let late = Error::Timeout { timeout, during: "while the timeline played", setup_secs: 1.26, startup_secs: 0.0 };
        assert_eq!(
            late.reason(),
            "the scenario did not finish within its timeout of 12s (while the timeline played; counted from the end of the setup, which took 1.3s, plus 0.0s of start-up of the services the timeline started)"
        );

        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let file = Error::ServiceFile {
            service: "web".into(),
            file: "conf/a.txt".into(),
            source: FileError::Read { path: "/nonexistent/a.txt".into(), source: missing },
        };
        assert_eq!(file.reason(), "service web: file conf/a.txt: cannot read /nonexistent/a.txt: entity not found");

        let bind = Error::TargetBind { target: "blue".into(), port: 8000, host: "server".into(), source: std::io::Error::from(std::io::ErrorKind::AddrInUse) };
        assert_eq!(bind.reason(), "target blue: bind [::]:8000 in host server: address in use");

        let query = Error::NoDnsQuery { host: "client".into(), what: "app.example.test AAAA".into(), timeout: Duration::from_secs(5) };
        assert_eq!(query.reason(), "host client made no DNS query for app.example.test AAAA within 5s");
        let any = Error::NoDnsQuery { host: "client".into(), what: String::new(), timeout: Duration::from_secs(5) };
        assert_eq!(any.reason(), "host client made no DNS query within 5s");

        let kept = Error::Kept { error: Box::new(Error::Step { number: 1, kind: "start", source: Box::new(Error::NoDns) }), dir: "/tmp/lab".into() };
        assert_eq!(kept.reason(), "timeline step 1 (start): the scenario has no [dns]\n  evidence kept in /tmp/lab");
        assert_eq!(Error::NoStep { number: 4 }.reason(), "the scenario has no timeline step 4");
    }
}
