//! A local cache in front of a remote backend: index files, snapshots and the packs that hold
//! directory trees, which every command reads again.
//!
//! Invariants:
//! - The cache is only ever a copy. Every name is the BLAKE3 hash of the file's bytes, so a
//!   cached file is checked against its name before it is trusted, and a file that fails the
//!   check is dropped and fetched again. Losing or damaging the cache never loses data.
//! - Any failure of the cache itself (no space, no permission) falls back to the remote.
//! - Cached files whose remote file is gone (after prune) are dropped at the next listing.
//! - `snap check` does not use the cache: it audits the repository itself.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Backend, FileKind, SpoolFile};
use crate::error::Result;

pub struct CachedBackend {
    inner: Box<dyn Backend>,
    dir: PathBuf,
    /// Cached packs whose hash was checked by this process (packs are read range by range).
    verified: Mutex<HashSet<String>>,
}

fn cacheable(kind: FileKind) -> bool {
    matches!(kind, FileKind::Index | FileKind::Snapshot | FileKind::Pack)
}

fn matches_name(bytes: &[u8], name: &str) -> bool {
    blake3::hash(bytes).to_hex().as_str() == name
}

impl CachedBackend {
    /// A cache for `inner` in a folder of `root` named after the repository's location.
    pub fn new(inner: Box<dyn Backend>, root: &Path) -> CachedBackend {
        let tag = blake3::hash(inner.location().as_bytes()).to_hex();
        let dir = root.join(&tag.as_str()[..16]);
        CachedBackend { inner, dir, verified: Mutex::new(HashSet::new()) }
    }

    fn path(&self, kind: FileKind, name: &str) -> Option<PathBuf> {
        let rel = super::object_path(kind, name).ok()?;
        cacheable(kind).then(|| self.dir.join(rel))
    }

    /// The cached copy, if there is one and it is intact.
    fn load(&self, kind: FileKind, name: &str) -> Option<Vec<u8>> {
        let path = self.path(kind, name)?;
        let bytes = fs::read(&path).ok()?;
        if matches_name(&bytes, name) {
            return Some(bytes);
        }
        let _ = fs::remove_file(&path);
        None
    }

    /// Keeps a copy of a file just read from the remote. Best effort: a failure is not an error.
    fn store(&self, kind: FileKind, name: &str, bytes: &[u8]) {
        let Some(path) = self.path(kind, name) else { return };
        let Some(parent) = path.parent() else { return };
        if !matches_name(bytes, name) || fs::create_dir_all(parent).is_err() {
            return;
        }
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(parent)
            && tmp.write_all(bytes).is_ok()
        {
            let _ = tmp.persist(&path);
        }
    }

    fn fetch(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        if let Some(bytes) = self.load(kind, name) {
            return Ok(bytes);
        }
        let bytes = self.inner.read(kind, name)?;
        self.store(kind, name, &bytes);
        Ok(bytes)
    }

    /// Drops cached files of `kind` that the remote no longer has.
    fn forget_missing(&self, kind: FileKind, listed: &[(String, u64)]) {
        let live: HashSet<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
        let folder = self.dir.join(super::folder(kind));
        let mut dirs = vec![folder.clone()];
        if kind == FileKind::Pack {
            dirs = fs::read_dir(&folder).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        }
        for dir in dirs {
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !live.contains(name.as_str()) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }
}

impl Backend for CachedBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create_layout(&self) -> Result<()> {
        self.inner.create_layout()
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        self.inner.exists(kind, name)
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        // Whole packs are large and read once (check, prune): only index files and snapshots.
        if matches!(kind, FileKind::Index | FileKind::Snapshot) {
            self.fetch(kind, name)
        } else {
            self.inner.read(kind, name)
        }
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.inner.read_range(kind, name, offset, len)
    }

    fn read_range_hot(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let first_use = self.verified.lock().map(|mut v| v.insert(name.to_string())).unwrap_or(true);
        let cached =
            if first_use { self.fetch(kind, name).ok() } else { self.path(kind, name).and_then(|p| fs::read(p).ok()) };
        let slice = cached.as_deref().and_then(|bytes| {
            let start = usize::try_from(offset).ok()?;
            bytes.get(start..start.checked_add(usize::try_from(len).ok()?)?)
        });
        match slice {
            Some(s) => Ok(s.to_vec()),
            None => self.inner.read_range(kind, name, offset, len),
        }
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.inner.write(kind, name, data)?;
        if matches!(kind, FileKind::Index | FileKind::Snapshot) {
            self.store(kind, name, data);
        }
        Ok(())
    }

    fn spool(&self) -> Result<SpoolFile> {
        self.inner.spool()
    }

    fn publish(&self, kind: FileKind, name: &str, file: SpoolFile) -> Result<()> {
        self.inner.publish(kind, name, file)
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        let listed = self.inner.list(kind)?;
        if cacheable(kind) {
            self.forget_missing(kind, &listed);
        }
        Ok(listed)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        if let Some(path) = self.path(kind, name) {
            let _ = fs::remove_file(path);
        }
        self.inner.remove(kind, name)
    }

    fn replace(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.inner.replace(kind, name, data)
    }

    fn clean_scratch(&self) -> Result<usize> {
        self.inner.clean_scratch()
    }

    fn read_parallelism(&self) -> usize {
        self.inner.read_parallelism()
    }

    fn local_root(&self) -> Option<PathBuf> {
        self.inner.local_root()
    }
}
