//! What stops the daemon: before the lab is up (its log says it, and `nslab up` prints that
//! log), or as it comes down.

use std::io;
use std::path::PathBuf;

use nslab::os::fsafe::FsError;
use nslab_scenario::scenario::ScenarioError;

/// Errors of the daemon, each naming what it was doing; the cause is the source.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The scenario file could not be read.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The lab or its services did not come up, or the lab came down with an error.
    #[error("{0}")]
    Lab(String),
    /// A host's anchor could not be started (boxed: the library's error is large).
    #[error(transparent)]
    Anchor(Box<nslab::Error>),
    /// A host's anchor exited as soon as it started.
    #[error("the anchor of host {host} exited at once")]
    AnchorGone {
        /// The host.
        host: String,
    },
    /// The name of a host's network namespace is another lab's.
    #[error(
        "the network namespace name {} is taken, by a lab of the same name under another state directory (NSLAB_STATE_DIR) or by one whose state was removed by hand; choose another --name, or `ip netns delete {name}` if it is a leftover",
        path.display()
    )]
    NameTaken {
        /// Where the name would be bound.
        path: PathBuf,
        /// The name.
        name: String,
    },
    /// A file or system call failed.
    #[error("{what}")]
    Io {
        /// What was being done, on what.
        what: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The state directory, or a file in it, could not be used.
    #[error(transparent)]
    Files(#[from] FsError),
    /// The lab's state could not be written as JSON.
    #[error("write the lab's state as JSON")]
    Json(#[from] serde_json::Error),
    /// Setting the lab up failed after it was built; it was torn down again.
    #[error("lab artifacts: {kept}")]
    Setup {
        /// What its teardown said of the artifacts.
        kept: String,
        /// What failed.
        #[source]
        source: Box<DaemonError>,
    },
}

impl From<nslab::Error> for DaemonError {
    fn from(e: nslab::Error) -> DaemonError {
        DaemonError::Anchor(Box::new(e))
    }
}

impl DaemonError {
    pub(super) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> DaemonError {
        let what = what.into();
        move |source| DaemonError::Io { what, source }
    }
}
