//! The library's error type. Every variant is something a user can act on: the CLI maps them to
//! one-line messages and exit codes, and never needs to parse a string to tell them apart.

use std::io;
use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no snap repository at {0} (create one with `snap init`)")]
    RepositoryNotFound(String),

    #[error("{0} already holds a snap repository")]
    RepositoryExists(String),

    #[error("wrong password: no key of this repository opens with it")]
    WrongPassword,

    #[error(
        "wrong password, or the key slot it opens is damaged: no intact key of this repository opens with it ({0}; copy a damaged slot back from another copy of the repository)"
    )]
    WrongPasswordOrDamagedKey(String),

    #[error("the password is empty")]
    EmptyPassword,

    #[error("key {key} belongs to another repository ({found}), not to this one ({expected})")]
    ForeignKey { key: String, found: String, expected: String },

    #[error(
        "repository format version {found} is newer than this snap understands (it reads version {supported}): upgrade snap"
    )]
    UnsupportedVersion { found: u64, supported: u64 },

    #[error("{kind} {name} is damaged: {reason}")]
    Corrupt { kind: &'static str, name: String, reason: String },

    #[error(
        "{kind} {name} failed authentication: it was modified, swapped with another object, or written with another key"
    )]
    Tampered { kind: &'static str, name: String },

    #[error("{kind} {name} is missing from the repository")]
    Missing { kind: &'static str, name: String },

    #[error("no snapshot matches {0:?}")]
    SnapshotNotFound(String),

    #[error("snapshot id prefix {0:?} is ambiguous: give more characters")]
    AmbiguousSnapshot(String),

    #[error("{0}")]
    InvalidArgument(String),

    #[error("the repository is locked by {0}; wait for it to finish, or retry with --retry-lock SECONDS")]
    Locked(String),

    #[error(
        "{0} stopped before deleting anything: its repository lock lapsed while it ran (the machine slept, or the lock could not be refreshed), so another snap may have started meanwhile; run it again"
    )]
    LockLapsed(&'static str),

    #[error("the repository is append-only: {0} is refused")]
    AppendOnly(&'static str),

    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },

    #[error("storage: {op} {name}: {cause}")]
    Storage { op: &'static str, name: String, cause: io::Error },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { path: path.into(), cause: source }
    }

    pub fn corrupt(kind: &'static str, name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt { kind, name: name.into(), reason: reason.into() }
    }

    /// True for errors that mean stored data is damaged or tampered with (as opposed to a
    /// usage or environment problem).
    pub fn is_damage(&self) -> bool {
        matches!(self, Error::Corrupt { .. } | Error::Tampered { .. } | Error::Missing { .. })
    }
}

/// Attaches a path to an `io::Result`.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
