//! Error types of the library: one enum for building and running labs, one for teardown.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a lab operation failed. Messages name the object involved and end with the cause (the
/// OS error: `failed to spawn "nginx" in host web: No such file or directory (os error 2)`), so
/// `to_string()` alone, as a test failure prints it, says what happened; the cause is also in
/// `source()` (and [`Error::os_error`] reads its errno), and [`chain`] does not repeat it.
///
/// Every error type of the library converts into it, so `?` works in a test returning
/// [`nslab::Result`](Result).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The process lacks a capability needed to build labs.
    #[error("nslab needs {missing} to build a lab; {hint}")]
    Privileges {
        /// The missing capabilities, by name.
        missing: String,
        /// What to do about it.
        hint: String,
    },
    /// The lab definition is inconsistent (bad name, duplicate host, bad sysctl ...).
    #[error("invalid lab definition: {what}")]
    Invalid {
        /// What is wrong, naming the offending item and what was expected.
        what: String,
    },
    /// No host of that name exists in the lab.
    #[error("lab {lab} has no host named {host:?} (hosts: {known})")]
    UnknownHost {
        /// The lab's name.
        lab: String,
        /// The name asked for.
        host: String,
        /// The hosts the lab has.
        known: String,
    },
    /// Creating or entering a namespace failed.
    #[error("failed to {op} for {what}: {source}")]
    Namespace {
        /// The operation (create network namespace, enter ...).
        op: &'static str,
        /// The host or switch concerned.
        what: String,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// A netlink request failed.
    #[error("failed to {op} in {what}: {source}")]
    Netlink {
        /// The request, in words (create veth p3, add address 192.0.2.10/24 to eth0 ...).
        op: String,
        /// The host or switch namespace it was sent to.
        what: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// Writing a sysctl inside a host failed.
    #[error("failed to set sysctl {name}={value} in host {host}: {source}")]
    Sysctl {
        /// Host whose namespace was concerned.
        host: String,
        /// Sysctl name as given.
        name: String,
        /// Value written.
        value: String,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// A file of the lab (artifacts, per-host /etc files) could not be written or read.
    #[error("failed to {op} {path}: {source}")]
    File {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// A program could not be started inside a host.
    #[error("failed to spawn {program:?} in host {host}: {source}")]
    Spawn {
        /// Host it was to run in.
        host: String,
        /// The program.
        program: String,
        /// The system error (exec failure of the program, namespace or mount failure).
        #[source]
        source: io::Error,
    },
    /// A signal could not be sent to a program (it is gone).
    #[error("failed to send {signal} to {process}: {source}")]
    Signal {
        /// The process, as `host/name`.
        process: String,
        /// The signal.
        signal: nix::sys::signal::Signal,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// A socket operation inside a host failed.
    #[error("failed to {op} in host {host}: {source}")]
    Socket {
        /// Host concerned.
        host: String,
        /// The operation, with its address.
        op: String,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// The lab's DNS server could not start.
    #[error("failed to start the DNS server of lab {lab}: {}", chain(.source))]
    Dns {
        /// The lab's name.
        lab: String,
        /// What the server reported.
        #[source]
        source: crate::dns::ServerError,
    },
    /// The lab has no DNS server, but one was asked for.
    #[error("lab {lab} has no DNS server; build it with LabBuilder::dns(LabDns::new()) to get one")]
    NoDns {
        /// The lab's name.
        lab: String,
    },
    /// A pattern given to a wait (e.g. [`crate::Process::wait_for_line`]) is not a valid regular
    /// expression.
    #[error("invalid pattern /{pattern}/ (regex syntax: https://docs.rs/regex/1/regex/#syntax)")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// What the regex parser found wrong, with its position.
        #[source]
        source: regex::Error,
    },
    /// Tearing down a lab failed (every failed step, see [`TeardownError`]).
    #[error(transparent)]
    Teardown(#[from] TeardownError),
    /// The embedded DNS server (used on its own through [`crate::dns::DnsServer`]) failed to
    /// start, to stop, or refused its options.
    #[error("failed to {}", chain(.0))]
    DnsServer(#[source] Box<crate::dns::ServerError>),
    /// A runtime change to the lab's DNS data ([`crate::dns::ZoneControl`], faults) was refused.
    #[error("failed to {}", chain(.0))]
    DnsControl(#[source] Box<crate::dns::ControlError>),
    /// Zone data is invalid.
    #[error("failed to {}", chain(.0))]
    DnsZone(#[source] Box<crate::dns::ZoneError>),
    /// The DNS query log could not be written.
    #[error("failed to {}", chain(.0))]
    DnsLog(#[from] crate::dns::LogError),
    /// A profile name is not one of [`crate::Profile::ALL`].
    #[error(transparent)]
    UnknownProfile(#[from] crate::addr::profile::UnknownProfile),
    /// A file operation was refused (a directory another user could tamper with) or failed.
    #[error(transparent)]
    Fs(#[from] crate::os::fsafe::FsError),
    /// Rootless mode could not start ([`crate::testing::enter`]).
    #[error(transparent)]
    Rootless(#[from] crate::os::rootless::Blocked),
    /// A wait did not complete in time.
    #[error("timed out after {timeout:?} waiting for {what}{tail}")]
    Timeout {
        /// What was awaited, in words.
        what: String,
        /// The timeout.
        timeout: Duration,
        /// The last lines of the process's output, pre-formatted (may be empty).
        tail: String,
    },
    /// A time scale outside what a warp can do (not finite, below 1, above 1000).
    #[error("invalid time scale {scale}: expected a finite number from 1 to 1000 (1 = real time, 10 = ten times faster)")]
    TimeScale {
        /// The scale asked for.
        scale: f64,
    },
    /// A program cannot run in warped time: the preload library is missing, or the program is
    /// of a class the warp cannot reach (see [`crate::TimeWarp::check_program`]).
    #[error("cannot run {program:?} in warped time: {reason}")]
    TimeWarp {
        /// The program.
        program: String,
        /// Why, with what to do about it.
        reason: String,
    },
    /// The process ended while something else was awaited.
    #[error("{process} exited ({status}) while waiting for {what}{tail}")]
    Exited {
        /// The process, as `host/name`.
        process: String,
        /// How it ended.
        status: String,
        /// What was awaited.
        what: String,
        /// The last lines of its output, pre-formatted.
        tail: String,
    },
}

impl Error {
    /// The operating-system error number behind this error, if there is one (EADDRNOTAVAIL,
    /// ECONNREFUSED, EINVAL ...): what a test of bind or connect behaviour asserts on.
    pub fn os_error(&self) -> Option<i32> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cur {
            if let Some(code) = e.downcast_ref::<io::Error>().and_then(io::Error::raw_os_error) {
                return Some(code);
            }
            cur = e.source();
        }
        None
    }
}

// The DNS errors are boxed: inline, they would make every `Result` of the library large.
impl From<crate::dns::ServerError> for Error {
    fn from(e: crate::dns::ServerError) -> Self {
        Error::DnsServer(Box::new(e))
    }
}

impl From<crate::dns::ControlError> for Error {
    fn from(e: crate::dns::ControlError) -> Self {
        Error::DnsControl(Box::new(e))
    }
}

impl From<crate::dns::ZoneError> for Error {
    fn from(e: crate::dns::ZoneError) -> Self {
        Error::DnsZone(Box::new(e))
    }
}

/// Convenience alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure of one teardown, collected: teardown never stops at the first.
#[derive(Debug, thiserror::Error)]
#[error("failed to tear down lab {lab}: {}", .failures.iter().map(|e| crate::error::chain(e)).collect::<Vec<_>>().join("; "))]
pub struct TeardownError {
    /// The lab's name.
    pub lab: String,
    /// Each step that failed.
    pub failures: Vec<Error>,
}

pub use crate::chain::chain;

#[cfg(test)]
mod tests {
    use super::*;

    fn enoent() -> io::Error {
        io::Error::from_raw_os_error(libc::ENOENT)
    }

    #[test]
    fn spawn_message_carries_the_os_error_once() {
        let e = Error::Spawn { host: "web".into(), program: "nginx".into(), source: enoent() };
        assert_eq!(e.to_string(), "failed to spawn \"nginx\" in host web: No such file or directory (os error 2)");
        // The cause is still the source (errno readable), and the chain does not repeat it.
        assert_eq!(e.os_error(), Some(libc::ENOENT));
        assert_eq!(chain(&e), e.to_string());
    }

    #[test]
    fn every_io_variant_shows_its_cause() {
        let errs = [
            Error::Namespace { op: "enter the network namespace", what: "a".into(), source: enoent() },
            Error::Sysctl { host: "a".into(), name: "net.x".into(), value: "1".into(), source: enoent() },
            Error::File { op: "write", path: "/x".into(), source: enoent() },
            Error::Socket { host: "a".into(), op: "bind 192.0.2.1:80".into(), source: enoent() },
        ];
        for e in errs {
            assert!(e.to_string().ends_with(": No such file or directory (os error 2)"), "{e}");
        }
    }

    #[test]
    fn library_errors_convert_and_keep_their_whole_story() {
        use crate::dns::{ControlError, ZoneError};
        fn control() -> Result<()> {
            Err(ControlError::Zone {
                origin: "example.test.".into(),
                source: ZoneError::CnameConflict { name: "app.example.test.".into(), kind: "A".into() },
            })?;
            Ok(())
        }
        let e = control().unwrap_err();
        assert!(matches!(&e, Error::DnsControl(c) if matches!(**c, ControlError::Zone { .. })), "{e:?}");
        assert_eq!(e.to_string(), "failed to apply change to zone example.test.: add A at app.example.test.: a CNAME must be the only record set at its name");
        assert_eq!(chain(&e), e.to_string());

        fn teardown() -> Result<()> {
            Err(TeardownError { lab: "l1".into(), failures: vec![Error::File { op: "remove artifact directory", path: "/a".into(), source: enoent() }] })?;
            Ok(())
        }
        assert_eq!(
            teardown().unwrap_err().to_string(),
            "failed to tear down lab l1: failed to remove artifact directory /a: No such file or directory (os error 2)"
        );

        fn server() -> Result<()> {
            Err(crate::dns::ServerError::NoSockets)?;
            Ok(())
        }
        assert_eq!(server().unwrap_err().to_string(), "failed to start DNS server: no UDP socket and no TCP listener given");

        fn profile() -> Result<crate::addr::profile::Profile> {
            Ok("ipv6".parse::<crate::addr::profile::Profile>()?)
        }
        assert!(profile().unwrap_err().to_string().starts_with("unknown profile \"ipv6\"; expected one of"));
    }
}
