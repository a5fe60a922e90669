//! What can go wrong making or reading a bundle, and the refusals of a bad or hostile one.

use std::io;
use std::path::PathBuf;

/// Why a bundle file was refused. Each message says what was found and what a bundle holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a gzip-compressed tar archive (or a damaged one).
    #[error("not an nslab bundle (a gzip-compressed tar archive): {0}")]
    NotABundle(String),
    /// A member whose path has a `..` component.
    #[error("member {0:?} leaves the bundle ('..' in its path); members are relative paths inside it")]
    Traversal(String),
    /// A member with an absolute path.
    #[error("member {0:?} is an absolute path; members are relative paths inside the bundle")]
    Absolute(String),
    /// A member whose name is not UTF-8 or is empty.
    #[error("member {0:?} has an unusable name (empty, or not UTF-8)")]
    BadName(String),
    /// A symbolic link.
    #[error("member {member:?} is a symbolic link (to {target:?}); a bundle holds regular files and directories only")]
    Symlink {
        /// The member.
        member: String,
        /// Where it points.
        target: String,
    },
    /// A hard link.
    #[error("member {member:?} is a hard link (to {target:?}); a bundle holds regular files and directories only")]
    HardLink {
        /// The member.
        member: String,
        /// The member it links to.
        target: String,
    },
    /// A device, fifo or any other kind of member.
    #[error("member {member:?} is a {kind}; a bundle holds regular files and directories only")]
    Special {
        /// The member.
        member: String,
        /// Its kind (`character device`, `fifo`, ...).
        kind: &'static str,
    },
    /// A member larger than [`super::Limits::member_bytes`].
    #[error("member {member:?} is larger than {limit} bytes, the limit per member")]
    MemberTooLarge {
        /// The member.
        member: String,
        /// The limit.
        limit: u64,
    },
    /// More bytes in all than [`super::Limits::total_bytes`] (counted as the stream is
    /// decompressed, headers included).
    #[error("its content exceeds {limit} bytes once decompressed, the limit per bundle")]
    TotalTooLarge {
        /// The limit.
        limit: u64,
    },
    /// More members than [`super::Limits::members`].
    #[error("it has more than {limit} members, the limit per bundle")]
    TooManyMembers {
        /// The limit.
        limit: usize,
    },
    /// The same path twice.
    #[error("member {0:?} appears twice")]
    Duplicate(String),
    /// A member below a path that is a file.
    #[error("member {member:?} is below {file:?}, which is a file")]
    UnderAFile {
        /// The member.
        member: String,
        /// The file above it.
        file: String,
    },
    /// The first member is not `manifest.json`.
    #[error("its first member is {found:?}, expected manifest.json")]
    NoManifest {
        /// What came first (`nothing` for an empty archive).
        found: String,
    },
    /// `manifest.json` is not a manifest.
    #[error("manifest.json is not a valid manifest: {0}")]
    BadManifest(String),
    /// A format version this nslab does not read.
    #[error("manifest.json has format version {found}; this nslab ({nslab}) reads format version {expected}")]
    Version {
        /// The bundle's.
        found: String,
        /// The one read here.
        expected: u32,
        /// This nslab's version.
        nslab: &'static str,
    },
    /// The manifest's scenario is not a scenario file of the bundle.
    #[error("the manifest's scenario {0:?} is not a file of the bundle below scenarios/ (expected scenarios/<name>.toml)")]
    ScenarioOutside(String),
}

/// A failure to make, read or replay a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bundle file was refused.
    #[error("refusing bundle {path}: {why}")]
    Refused {
        /// The bundle.
        path: PathBuf,
        /// Why.
        why: Refusal,
    },
    /// The directory given is not a trial's artifact directory.
    #[error("{path}: not a trial's artifact directory (it has no environment.json); give a trial's artifact directory, or a run's artifact directory and a trial name")]
    NotATrial {
        /// The directory.
        path: PathBuf,
    },
    /// No trial of that name below the directory.
    #[error("{path}: no artifact directory of trial {trial} below it; trials found: {found}")]
    NoSuchTrial {
        /// The run's directory.
        path: PathBuf,
        /// The trial asked for.
        trial: String,
        /// The trials there.
        found: String,
    },
    /// Several artifact directories of the trial (retries, runs kept side by side).
    #[error("{path}: {count} artifact directories of trial {trial}: {list}; give one of them")]
    Ambiguous {
        /// The run's directory.
        path: PathBuf,
        /// The trial.
        trial: String,
        /// How many.
        count: usize,
        /// Them.
        list: String,
    },
    /// A file of the trial says something unusable.
    #[error("{path}: {what}")]
    Source {
        /// The file.
        path: PathBuf,
        /// What was found and expected.
        what: String,
    },
    /// A file or directory could not be read.
    #[error("cannot read {path}")]
    Read {
        /// It.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file or directory could not be written.
    #[error("cannot write {path}")]
    Write {
        /// It.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}
