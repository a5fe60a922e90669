//! Error types of the library: one enum for building and running labs, one for teardown.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a lab operation failed. Messages read after "failed to ..." style context and name the
/// object involved; the underlying cause is in `source()`.
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
    #[error("failed to {op} for {what}")]
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
    #[error("failed to {op} in {what}")]
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
    #[error("failed to set sysctl {name}={value} in host {host}")]
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
    #[error("failed to {op} {path}")]
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
    #[error("failed to spawn {program:?} in host {host}")]
    Spawn {
        /// Host it was to run in.
        host: String,
        /// The program.
        program: String,
        /// The system error (exec failure of the program, namespace or mount failure).
        #[source]
        source: io::Error,
    },
    /// A socket operation inside a host failed.
    #[error("failed to {op} in host {host}")]
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
    #[error("failed to start the DNS server of lab {lab}")]
    Dns {
        /// The lab's name.
        lab: String,
        /// What the server reported.
        #[source]
        source: crate::dns::ServerError,
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

/// Renders an error with its whole cause chain on one line.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
