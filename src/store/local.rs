//! A repository in a local folder.
//!
//! Layout: `config`, `keys/<id>`, `snapshots/<id>`, `index/<id>`, `data/<first two hex>/<id>`,
//! and `tmp/` for scratch files (anything in `tmp/` may be deleted when no snap runs).
//! Every write goes to a file in `tmp/`, is fsynced, renamed into place without replacing an
//! existing file, and the folder is fsynced: after a crash a file is whole or absent.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{Backend, FileKind, SpoolFile};
use crate::error::{Error, Result};

pub struct LocalBackend {
    root: PathBuf,
}

const DIRS: [&str; 6] = ["keys", "snapshots", "index", "data", "locks", "tmp"];

impl LocalBackend {
    pub fn new(root: PathBuf) -> Self {
        LocalBackend { root }
    }

    fn dir(&self, kind: FileKind) -> PathBuf {
        self.root.join(super::folder(kind))
    }

    /// The file's path; fails on a name no repository file can have.
    fn path(&self, kind: FileKind, name: &str) -> Result<PathBuf> {
        Ok(self.root.join(super::object_path(kind, name)?))
    }

    fn storage_error(op: &'static str, kind: FileKind, name: &str, source: io::Error) -> Error {
        if source.kind() == io::ErrorKind::NotFound && op == "read" {
            return Error::Missing { kind: kind.label(), name: name.to_string() };
        }
        Error::Storage { op, name: kind.describe(name), cause: source }
    }

    /// Moves a finished scratch file to `final_path` unless a file is already there.
    fn place(&self, kind: FileKind, name: &str, file: SpoolFile) -> Result<()> {
        let final_path = self.path(kind, name)?;
        let parent = final_path.parent().unwrap_or(&self.root).to_path_buf();
        if kind != FileKind::Config && !parent.is_dir() {
            fs::create_dir_all(&parent).map_err(|e| Self::storage_error("create folder for", kind, name, e))?;
        }
        file.as_file().sync_all().map_err(|e| Self::storage_error("sync", kind, name, e))?;
        match file.persist_noclobber(&final_path) {
            Ok(_) => {}
            // Content-addressed: an existing file of that name already holds these bytes.
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Self::storage_error("publish", kind, name, e.error)),
        }
        sync_dir(&parent).map_err(|e| Self::storage_error("sync folder of", kind, name, e))
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create_layout(&self) -> Result<()> {
        if self.root.join("config").exists() {
            return Err(Error::RepositoryExists(self.location()));
        }
        if let Ok(mut entries) = fs::read_dir(&self.root)
            && entries.next().is_some()
        {
            {
                return Err(Error::InvalidArgument(format!(
                    "{} exists and is not empty: choose an empty or new folder",
                    self.location()
                )));
            }
        }
        for d in DIRS {
            fs::create_dir_all(self.root.join(d)).map_err(|e| Error::io(self.root.join(d), e))?;
        }
        sync_dir(&self.root).map_err(|e| Error::io(&self.root, e))
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        Ok(self.path(kind, name)?.exists())
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        fs::read(self.path(kind, name)?).map_err(|e| Self::storage_error("read", kind, name, e))
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let file = File::open(self.path(kind, name)?).map_err(|e| Self::storage_error("read", kind, name, e))?;
        let len = usize::try_from(len).map_err(|_| Error::InvalidArgument("range too large".into()))?;
        let mut buf = vec![0u8; len];
        match file.read_exact_at(&mut buf, offset) {
            Ok(()) => Ok(buf),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(Error::corrupt(
                kind.label(),
                name,
                format!("truncated: bytes {offset}..{} are not there", offset + len as u64),
            )),
            Err(e) => Err(Self::storage_error("read", kind, name, e)),
        }
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.path(kind, name)?;
        let mut file = self.spool()?;
        file.write_all(data).map_err(|e| Self::storage_error("write", kind, name, e))?;
        self.place(kind, name, file)
    }

    fn spool(&self) -> Result<SpoolFile> {
        let tmp = self.root.join("tmp");
        // `tmp/` may be missing (a repository copied without empty folders): recreate it.
        if !tmp.is_dir() {
            fs::create_dir_all(&tmp).map_err(|e| Error::Storage {
                op: "create scratch folder",
                name: tmp.display().to_string(),
                cause: e,
            })?;
        }
        tempfile::Builder::new().prefix("spool-").tempfile_in(&tmp).map_err(|e| Error::Storage {
            op: "create scratch file in",
            name: tmp.display().to_string(),
            cause: e,
        })
    }

    fn publish(&self, kind: FileKind, name: &str, file: SpoolFile) -> Result<()> {
        self.place(kind, name, file)
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        let dir = self.dir(kind);
        let mut out = Vec::new();
        if !dir.exists() {
            return Ok(out); // a folder git or a copy left out: nothing of this kind yet
        }
        let mut dirs = vec![dir.clone()];
        if kind == FileKind::Pack {
            dirs = match fs::read_dir(&dir) {
                Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect(),
                Err(e) => return Err(Self::storage_error("list", kind, "", e)),
            };
        }
        for d in dirs {
            let entries = fs::read_dir(&d).map_err(|e| Self::storage_error("list", kind, "", e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Self::storage_error("list", kind, "", e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !super::valid_name(kind, &name) {
                    continue;
                }
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                out.push((name, size));
            }
        }
        Ok(out)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        fs::remove_file(self.path(kind, name)?).map_err(|e| Self::storage_error("remove", kind, name, e))
    }

    fn replace(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        let path = self.path(kind, name)?;
        let mut file = self.spool()?;
        file.write_all(data).map_err(|e| Self::storage_error("write", kind, name, e))?;
        file.as_file().sync_all().map_err(|e| Self::storage_error("sync", kind, name, e))?;
        file.persist(&path).map_err(|e| Self::storage_error("replace", kind, name, e.error))?;
        sync_dir(path.parent().unwrap_or(&self.root)).map_err(|e| Self::storage_error("sync folder of", kind, name, e))
    }

    fn clean_scratch(&self) -> Result<usize> {
        let tmp = self.root.join("tmp");
        let Ok(entries) = fs::read_dir(&tmp) else { return Ok(0) };
        let mut removed = 0;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("spool-") && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn local_root(&self) -> Option<PathBuf> {
        Some(self.root.clone())
    }
}
