//! The storage contract: a flat namespace of write-once files grouped by kind.
//!
//! Invariants every backend keeps (and that the object-store backend can keep too):
//! - A file appears completely or not at all; a reader never sees a partial file.
//! - Files are never modified. Writing a name that exists is harmless, because every name but
//!   `config` is the BLAKE3 hash of the content.
//! - Only explicit `remove` deletes.

pub mod local;

use std::path::PathBuf;

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    Config,
    Key,
    Pack,
    Index,
    Snapshot,
    Lock,
}

impl FileKind {
    pub fn label(self) -> &'static str {
        match self {
            FileKind::Config => "config",
            FileKind::Key => "key",
            FileKind::Pack => "pack",
            FileKind::Index => "index file",
            FileKind::Snapshot => "snapshot",
            FileKind::Lock => "lock",
        }
    }
}

/// A finished file waiting in local scratch space to be published under its final name.
pub type SpoolFile = tempfile::NamedTempFile;

pub trait Backend: Send + Sync {
    /// Where the repository lives, for messages.
    fn location(&self) -> String;
    /// Creates the repository's empty layout; fails if a config already exists.
    fn create_layout(&self) -> Result<()>;
    fn exists(&self, kind: FileKind, name: &str) -> Result<bool>;
    /// The whole file; `Error::Missing` if there is none.
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>>;
    /// Exactly `len` bytes from `offset`; a shorter file is reported as damage.
    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    /// Publishes `data` under `name`, atomically and durably.
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()>;
    /// A new scratch file for building a large object (a pack) before its name is known.
    fn spool(&self) -> Result<SpoolFile>;
    /// Publishes a finished spool file under `name`, atomically and durably.
    fn publish(&self, kind: FileKind, name: &str, file: SpoolFile) -> Result<()>;
    /// Names and sizes of all files of a kind, in no particular order.
    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>>;
    fn remove(&self, kind: FileKind, name: &str) -> Result<()>;
    /// Replaces a file atomically. Only `config` is ever replaced (turning append-only mode
    /// on or off); every other file is write-once.
    fn replace(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()>;
    /// Removes scratch files that interrupted writers left (only while no writer runs).
    fn clean_scratch(&self) -> Result<usize> {
        Ok(0)
    }
    /// Local folder behind the repository, if any (used only for messages and tests).
    fn local_root(&self) -> Option<PathBuf> {
        None
    }
}

/// Opens the backend a user's `--repo` string names.
pub fn open_backend(location: &str) -> Result<Box<dyn Backend>> {
    let path = location.strip_prefix("local:").unwrap_or(location);
    if location.starts_with("s3:") {
        return Err(crate::error::Error::InvalidArgument(
            "s3: repositories are not supported by this build yet (only local folders)".into(),
        ));
    }
    Ok(Box::new(local::LocalBackend::new(PathBuf::from(path))))
}
