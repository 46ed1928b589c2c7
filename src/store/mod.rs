//! The storage contract: a flat namespace of write-once files grouped by kind.
//!
//! Invariants every backend keeps (and that the object-store backend can keep too):
//! - A file appears completely or not at all; a reader never sees a partial file.
//! - Files are never modified. Writing a name that exists is harmless, because every name but
//!   `config` is the BLAKE3 hash of the content.
//! - Only explicit `remove` deletes.

pub mod cache;
pub mod local;
pub mod s3;

use std::path::PathBuf;

use crate::error::{Error, Result};

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
    /// `index file 3fa2...`, or just `config`: how messages name one file.
    pub fn describe(self, name: &str) -> String {
        if self == FileKind::Config { "config".to_string() } else { format!("{} {name}", self.label()) }
    }

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
    /// Like `read_range`, for files read again and again (packs of directory trees): a caching
    /// backend may keep a local copy of the whole file.
    fn read_range_hot(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.read_range(kind, name, offset, len)
    }
    /// Publishes `data` under `name`, atomically and durably.
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()>;
    /// A new scratch file for building a large object (a pack) before its name is known.
    fn spool(&self) -> Result<SpoolFile>;
    /// Publishes a finished spool file under `name`, atomically and durably, now or (on object
    /// storage) in the background: it is certain only after [`Backend::flush`] returns.
    fn publish(&self, kind: FileKind, name: &str, file: SpoolFile) -> Result<()>;
    /// Waits until every file published so far is stored; reports the first that failed.
    fn flush(&self) -> Result<()> {
        Ok(())
    }
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
    /// Threads worth running to keep this backend busy with reads (0: one per core). Remote
    /// stores answer each request after a round trip, so more requests in flight pay off.
    fn read_parallelism(&self) -> usize {
        0
    }
    /// Local folder behind the repository, if any (used only for messages and tests).
    fn local_root(&self) -> Option<PathBuf> {
        None
    }
}

/// The folder (or key prefix) that holds files of a kind, relative to the repository root.
pub fn folder(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Config => "",
        FileKind::Key => "keys",
        FileKind::Pack => "data",
        FileKind::Index => "index",
        FileKind::Snapshot => "snapshots",
        FileKind::Lock => "locks",
    }
}

/// True for names a file of this kind can have: `config`, or 64 hex digits.
pub fn valid_name(kind: FileKind, name: &str) -> bool {
    match kind {
        FileKind::Config => name == "config",
        _ => name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
    }
}

/// A file's path relative to the repository root; packs are spread over 256 subfolders.
pub fn object_path(kind: FileKind, name: &str) -> Result<String> {
    if !valid_name(kind, name) {
        return Err(Error::InvalidArgument(format!("invalid {} name {name:?}", kind.label())));
    }
    Ok(match kind {
        FileKind::Config => name.to_string(),
        FileKind::Pack => format!("data/{}/{name}", &name[..2]),
        _ => format!("{}/{name}", folder(kind)),
    })
}

/// How to reach a repository, beyond its location string.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    pub s3: s3::S3Options,
    /// Folder for the local cache of remote repositories; `None` turns caching off.
    pub cache_dir: Option<PathBuf>,
}

/// Opens the backend a user's `--repo` string names: `s3:URL` or a folder (`local:PATH` too).
pub fn open_backend(location: &str, options: &StoreOptions) -> Result<Box<dyn Backend>> {
    if let Some(rest) = location.strip_prefix("s3:") {
        let remote = s3::S3Backend::new(&s3::S3Location::parse(rest)?, &options.s3)?;
        return Ok(match &options.cache_dir {
            Some(dir) => Box::new(cache::CachedBackend::new(Box::new(remote), dir)),
            None => Box::new(remote),
        });
    }
    let path = location.strip_prefix("local:").unwrap_or(location);
    if path.is_empty() {
        return Err(Error::InvalidArgument("empty repository location".into()));
    }
    Ok(Box::new(local::LocalBackend::new(PathBuf::from(path))))
}
