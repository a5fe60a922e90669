//! What can go wrong with a long-lived lab, each error saying what to do.

use std::io;
use std::path::PathBuf;

/// Errors of the long-lived lab commands, each saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// No lab of that name.
    #[error("no lab named {name:?} is up (state directory {dir} does not exist); `nslab status` lists the labs that are")]
    NoSuchLab {
        /// The name asked for.
        name: String,
        /// Where its state would be.
        dir: PathBuf,
    },
    /// The lab's daemon is gone.
    #[error("lab {name:?} is not running any more (its daemon, pid {pid}, is gone); `nslab gc` removes what is left of it")]
    Dead {
        /// The lab.
        name: String,
        /// The daemon's pid.
        pid: u32,
    },
    /// No host of that name in the lab.
    #[error("lab {lab:?} has no host {host:?}; its hosts are: {hosts}")]
    NoSuchHost {
        /// The lab.
        lab: String,
        /// The host asked for.
        host: String,
        /// The hosts it has.
        hosts: String,
    },
    /// A bad lab name.
    #[error("{0:?} is not a usable lab name; expected 1 to 24 characters of a-z, 0-9 and '-', starting with a letter")]
    BadName(String),
    /// A file or system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: io::Error,
    },
    /// The daemon refused or failed a request.
    #[error("{0}")]
    Refused(String),
    /// Another lab of that name is up or coming up.
    #[error("a lab named {name} is already up (pid {pid}); `nslab down {name}`, or choose another --name")]
    AlreadyUp {
        /// The name.
        name: String,
        /// Its daemon, or the `nslab up` bringing it up.
        pid: u32,
    },
    /// The state root or a file in it is not safe to use.
    #[error(transparent)]
    Files(#[from] nslab::os::fsafe::FsError),
}

impl LiveError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> LiveError {
        let what = what.into();
        move |source| LiveError::Io { what, source }
    }
}
