//! An open repository: the backend, the config, the keys, and the index once loaded.
//!
//! Every read is verified: files against their names (BLAKE3 of the stored bytes), sealed
//! objects by their AEAD tag, blobs by re-hashing the plaintext against their id. A caller
//! either gets the exact bytes that were stored or an error naming the damaged object.

use std::collections::HashMap;
use std::sync::Arc;

use crate::crypto::keyfile::{Credential, KdfParams, KeyFile};
use crate::crypto::{Keys, MasterKey, aad};
use crate::error::{Error, Result};
use crate::format;
use crate::format::config::{CHUNKER_V1, Config, DEFAULT_PACK_SIZE, Encryption, FORMAT_NAME, REPOSITORY_VERSION};
use crate::format::index::{INDEX_VERSION, PackContents};
use crate::format::pack::BlobEntry;
use crate::format::snapshot::{SNAPSHOT_VERSION, Snapshot};
use crate::id::Id;
use crate::index::Index;
use crate::store::{Backend, FileKind};

mod blobs;
pub use blobs::BlobRun;

/// How `init` sets a repository up.
pub struct InitOptions {
    pub encryption: bool,
    pub kdf: KdfParams,
    pub append_only: bool,
}

/// Index files written in bulk (prune, repair) hold at most this many blobs each.
pub const BLOBS_PER_INDEX_FILE: usize = 200_000;

pub struct Repository {
    backend: Arc<dyn Backend>,
    config: Config,
    keys: Arc<Keys>,
    /// The key file that opened the repository (none when unencrypted).
    key_name: Option<String>,
    master: Option<MasterKey>,
    index: Index,
}

/// A snapshot and its id.
pub type Listed = (Id, Snapshot);

/// A file that could not be read, with the reason.
pub type Unreadable = (String, Error);

/// Index files that could not be read while loading the index.
#[derive(Debug, Default)]
pub struct IndexLoadReport {
    pub files: usize,
    pub damaged: Vec<Unreadable>,
}

impl Repository {
    pub fn init(
        backend: Box<dyn Backend>,
        credential: Option<&Credential>,
        options: &InitOptions,
    ) -> Result<Repository> {
        if backend.exists(FileKind::Config, "config")? {
            return Err(Error::RepositoryExists(backend.location()));
        }
        let repo_id = Id(crate::crypto::random_bytes()?);
        let (keys, master, key_file) = if options.encryption {
            let credential = credential.ok_or(Error::EmptyPassword)?;
            let master = MasterKey::generate()?;
            let key_file = KeyFile::create(credential, &master, &repo_id, options.kdf)?;
            (Keys::encrypted(&master), Some(master), Some(key_file))
        } else {
            (Keys::unencrypted(), None, None)
        };
        let config = Config {
            format: FORMAT_NAME.into(),
            version: REPOSITORY_VERSION,
            id: repo_id.to_hex(),
            encryption: if options.encryption { Encryption::XChaCha20Poly1305Blake3 } else { Encryption::None },
            chunker: CHUNKER_V1.into(),
            pack_size: DEFAULT_PACK_SIZE,
            created: crate::clock::now_rfc3339(),
            append_only: options.append_only,
        };
        backend.create_layout()?;
        let mut key_name = None;
        if let Some(kf) = key_file {
            let bytes = kf.encode();
            let name = Id::of_bytes(&bytes).to_hex();
            backend.write(FileKind::Key, &name, &bytes)?;
            key_name = Some(name);
        }
        // The config goes last: a folder without it is not a repository yet.
        backend.write(FileKind::Config, "config", &config.encode())?;
        Ok(Repository {
            backend: backend.into(),
            config,
            keys: Arc::new(keys),
            key_name,
            master,
            index: Index::default(),
        })
    }

    /// Opens a repository; `credential` (a password or a key file's secret) is asked for only
    /// if the repository is encrypted.
    pub fn open(backend: Box<dyn Backend>, credential: &mut dyn FnMut() -> Result<Credential>) -> Result<Repository> {
        let config_bytes = match backend.read(FileKind::Config, "config") {
            Ok(b) => b,
            Err(Error::Missing { .. }) if holds_repository_files(backend.as_ref())? => {
                return Err(Error::corrupt(
                    "repository",
                    backend.location(),
                    "its config file is missing though its other files are there: \
                     copy `config` back from another copy of this repository",
                ));
            }
            Err(Error::Missing { .. }) => return Err(Error::RepositoryNotFound(backend.location())),
            Err(e) => return Err(e),
        };
        let config = Config::decode(&config_bytes)?;
        let repo_id = config.repository_id()?;
        let key_files = backend.list(FileKind::Key)?;
        match config.encryption {
            Encryption::None => {
                if !key_files.is_empty() {
                    return Err(Error::corrupt(
                        "config",
                        "config",
                        "says unencrypted but the repository has keys: it was tampered with",
                    ));
                }
                Ok(Repository {
                    backend: backend.into(),
                    config,
                    keys: Arc::new(Keys::unencrypted()),
                    key_name: None,
                    master: None,
                    index: Index::default(),
                })
            }
            Encryption::XChaCha20Poly1305Blake3 => {
                if key_files.is_empty() {
                    return Err(Error::corrupt(
                        "repository",
                        backend.location(),
                        "it is encrypted but has no key slot in keys/: copy them back from another copy of this repository",
                    ));
                }
                let credential = credential()?;
                if matches!(&credential, Credential::Password(p) if p.is_empty()) {
                    return Err(Error::EmptyPassword);
                }
                let mut first_error = None;
                for (name, _) in &key_files {
                    let attempt = backend
                        .read(FileKind::Key, name)
                        .and_then(|bytes| KeyFile::decode_slot(&bytes, name))
                        .and_then(|kf| kf.unwrap_master(&credential, &repo_id, name));
                    match attempt {
                        Ok(Some(master)) => {
                            return Ok(Repository {
                                backend: backend.into(),
                                config,
                                keys: Arc::new(Keys::encrypted(&master)),
                                key_name: Some(name.clone()),
                                master: Some(master),
                                index: Index::default(),
                            });
                        }
                        Ok(None) => {}
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                // A damaged or foreign key only matters if no other key fit the password.
                Err(match first_error {
                    Some(e @ (Error::ForeignKey { .. } | Error::UnsupportedVersion { .. })) if key_files.len() == 1 => {
                        e
                    }
                    Some(e) if e.is_damage() && key_files.len() == 1 => e,
                    Some(e) if e.is_damage() => Error::WrongPasswordOrDamagedKey(e.to_string()),
                    _ => Error::WrongPassword,
                })
            }
        }
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The backend, shared (for threads that outlive a borrow, such as a lock's refresher).
    pub fn shared_backend(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.backend)
    }

    pub fn shared_keys(&self) -> Arc<Keys> {
        Arc::clone(&self.keys)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn key_name(&self) -> Option<&str> {
        self.key_name.as_deref()
    }

    pub fn master(&self) -> Option<&MasterKey> {
        self.master.as_ref()
    }

    // ----- files -----

    /// Reads a file and checks that its bytes hash to its name.
    pub fn read_verified(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let bytes = self.backend.read(kind, name)?;
        if Id::of_bytes(&bytes).to_hex() != name {
            return Err(Error::corrupt(kind.label(), name, "content does not match its name"));
        }
        Ok(bytes)
    }

    /// Seals an envelope and stores it under the hash of the sealed bytes.
    fn write_sealed(&self, kind: FileKind, aad: &[u8], version: u8, payload: &[u8]) -> Result<Id> {
        let sealed = self.keys.seal(aad, &format::wrap_payload(version, payload, true))?;
        let id = Id::of_bytes(&sealed);
        self.backend.write(kind, &id.to_hex(), &sealed)?;
        Ok(id)
    }

    fn read_sealed(&self, kind: FileKind, aad: &[u8], version: u8, name: &str) -> Result<Vec<u8>> {
        let sealed = self.read_verified(kind, name)?;
        let label = kind.label();
        let plain = self.keys.open(aad, &sealed, label, &|| name.to_string())?;
        format::unwrap_payload(&plain, version, label, &|| name.to_string())
    }

    // ----- index -----

    pub fn save_index(&self, packs: &[PackContents]) -> Result<Id> {
        self.write_sealed(FileKind::Index, aad::INDEX, INDEX_VERSION, &format::index::encode(packs))
    }

    pub fn read_index_file(&self, name: &str) -> Result<Vec<PackContents>> {
        let payload = self.read_sealed(FileKind::Index, aad::INDEX, INDEX_VERSION, name)?;
        format::index::decode(&payload).map_err(|e| Error::corrupt("index file", name, e.0))
    }

    /// Loads every index file. Damaged ones are reported, not fatal: the rest still serve.
    pub fn load_index(&mut self) -> Result<IndexLoadReport> {
        let names = self.backend.list(FileKind::Index)?;
        let mut report = IndexLoadReport { files: names.len(), ..Default::default() };
        let mut builder = crate::index::IndexBuilder::default();
        for (name, _) in names {
            match self.read_index_file(&name) {
                Ok(packs) => packs.iter().for_each(|pc| builder.add(pc)),
                Err(e) => report.damaged.push((name, e)),
            }
        }
        self.index = builder.finish();
        Ok(report)
    }

    // ----- snapshots -----

    pub fn save_snapshot(&self, snapshot: &Snapshot) -> Result<Id> {
        self.write_sealed(FileKind::Snapshot, aad::SNAPSHOT, SNAPSHOT_VERSION, &snapshot.encode_json())
    }

    pub fn read_snapshot(&self, name: &str) -> Result<Snapshot> {
        let payload = self.read_sealed(FileKind::Snapshot, aad::SNAPSHOT, SNAPSHOT_VERSION, name)?;
        Snapshot::decode_json(&payload, name)
    }

    /// All readable snapshots, oldest first, and the ones that could not be read.
    pub fn snapshots(&self) -> Result<(Vec<Listed>, Vec<Unreadable>)> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (name, _) in self.backend.list(FileKind::Snapshot)? {
            match self.read_snapshot(&name) {
                Ok(s) => good.push((Id::from_hex(&name).unwrap_or_default(), s)),
                Err(e) => bad.push((name, e)),
            }
        }
        good.sort_by(|a, b| (a.1.timestamp(), &a.1.time).cmp(&(b.1.timestamp(), &b.1.time)));
        Ok((good, bad))
    }

    /// Resolves `latest` or a unique hex prefix of a snapshot id.
    pub fn find_snapshot(&self, spec: &str) -> Result<(Id, Snapshot)> {
        if spec == "latest" {
            let (all, _) = self.snapshots()?;
            return all.into_iter().last().ok_or_else(|| Error::SnapshotNotFound(spec.into()));
        }
        if spec.is_empty() || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::SnapshotNotFound(spec.into()));
        }
        let spec_lower = spec.to_ascii_lowercase();
        let matches: Vec<String> = self
            .backend
            .list(FileKind::Snapshot)?
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| n.starts_with(&spec_lower))
            .collect();
        match matches.as_slice() {
            [] => Err(Error::SnapshotNotFound(spec.into())),
            [one] => Ok((Id::from_hex(one).unwrap_or_default(), self.read_snapshot(one)?)),
            _ => Err(Error::AmbiguousSnapshot(spec.into())),
        }
    }

    // ----- keys -----

    pub fn list_keys(&self) -> Result<Vec<(String, std::result::Result<KeyFile, Error>)>> {
        let mut out = Vec::new();
        for (name, _) in self.backend.list(FileKind::Key)? {
            let kf = self.backend.read(FileKind::Key, &name).and_then(|b| KeyFile::decode_slot(&b, &name));
            out.push((name, kf));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub fn add_key(&self, credential: &Credential, kdf: KdfParams) -> Result<String> {
        let master = self
            .master
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("the repository is not encrypted: it has no keys".into()))?;
        let kf = KeyFile::create(credential, master, &self.config.repository_id()?, kdf)?;
        let bytes = kf.encode();
        let name = Id::of_bytes(&bytes).to_hex();
        self.backend.write(FileKind::Key, &name, &bytes)?;
        Ok(name)
    }

    /// Removes a key slot; refuses the one in use and the last one.
    pub fn remove_key(&self, prefix: &str) -> Result<String> {
        if self.config.append_only {
            return Err(Error::AppendOnly("removing a key"));
        }
        let names: Vec<String> = self.backend.list(FileKind::Key)?.into_iter().map(|(n, _)| n).collect();
        let matching: Vec<&String> = names.iter().filter(|n| !prefix.is_empty() && n.starts_with(prefix)).collect();
        let name = match matching.as_slice() {
            [one] => (*one).clone(),
            [] => return Err(Error::InvalidArgument(format!("no key matches {prefix:?}"))),
            _ => return Err(Error::InvalidArgument(format!("key prefix {prefix:?} is ambiguous"))),
        };
        if Some(name.as_str()) == self.key_name.as_deref() {
            return Err(Error::InvalidArgument(
                "refusing to remove the key this command opened the repository with".into(),
            ));
        }
        if names.len() <= 1 {
            return Err(Error::InvalidArgument("refusing to remove the last key".into()));
        }
        self.backend.remove(FileKind::Key, &name)?;
        Ok(name)
    }

    /// Turns append-only mode on or off (rewrites `config`, the one file that is ever replaced).
    pub fn set_append_only(&mut self, on: bool) -> Result<()> {
        self.config.append_only = on;
        self.backend.replace(FileKind::Config, "config", &self.config.encode())
    }

    /// Reads and decodes a pack's header with two ranged reads (trailer, then header).
    pub fn read_pack_header(&self, name: &str, size: u64) -> Result<Vec<BlobEntry>> {
        use crate::format::pack::{self, TRAILER_LEN};
        let corrupt = |reason: String| Error::corrupt("pack", name, reason);
        if size < TRAILER_LEN as u64 {
            return Err(corrupt("shorter than its trailer".into()));
        }
        let trailer = self.backend.read_range(FileKind::Pack, name, size - TRAILER_LEN as u64, TRAILER_LEN as u64)?;
        let header_len = u64::from(pack::decode_trailer(&trailer, size).map_err(|e| corrupt(e.0))?);
        let blob_area = size - TRAILER_LEN as u64 - header_len;
        let sealed = self.backend.read_range(FileKind::Pack, name, blob_area, header_len)?;
        let plain = self.keys.open(aad::PACK_HEADER, &sealed, "pack", &|| name.to_string())?;
        let mut entries = pack::decode_header(&plain).map_err(|e| corrupt(e.0))?;
        pack::check_bounds(&entries, blob_area).map_err(|e| corrupt(e.0))?;
        entries.sort_by_key(|e| e.offset);
        Ok(entries)
    }

    /// Writes index files listing `packs` (in batches of [`BLOBS_PER_INDEX_FILE`] blobs), and
    /// only then removes the index files named in `old`: at every instant every pack in
    /// `packs` is listed by some index file. Returns how many index files were written.
    pub fn replace_index(&self, packs: Vec<PackContents>, old: &[String]) -> Result<usize> {
        let mut written = 0;
        let mut batch = Vec::new();
        let mut blobs_in_batch = 0;
        for pc in packs {
            blobs_in_batch += pc.blobs.len();
            batch.push(pc);
            if blobs_in_batch >= BLOBS_PER_INDEX_FILE {
                self.save_index(&std::mem::take(&mut batch))?;
                written += 1;
                blobs_in_batch = 0;
            }
        }
        if !batch.is_empty() {
            self.save_index(&batch)?;
            written += 1;
        }
        for name in old {
            self.backend.remove(FileKind::Index, name)?;
        }
        Ok(written)
    }

    /// Indexes packs that no index file lists (left by a backup that was killed before it
    /// wrote its index), from their own headers, so their data is not stored again. Returns how
    /// many packs were recovered. Unreadable ones are left for `check` to report.
    pub fn recover_unindexed_packs(&mut self) -> Result<usize> {
        let indexed: std::collections::HashSet<Id> = self.index.packs().iter().copied().collect();
        let mut found = Vec::new();
        for (pack, size) in self.pack_sizes()? {
            if indexed.contains(&pack) {
                continue;
            }
            if let Ok(blobs) = self.read_pack_header(&pack.to_hex(), size) {
                found.push(PackContents { pack, blobs });
            }
        }
        if !found.is_empty() {
            self.save_index(&found)?;
            self.load_index()?;
        }
        Ok(found.len())
    }

    /// Pack ids with their sizes, as listed by the backend.
    pub fn pack_sizes(&self) -> Result<HashMap<Id, u64>> {
        Ok(self.backend.list(FileKind::Pack)?.into_iter().filter_map(|(n, s)| Some((Id::from_hex(&n)?, s))).collect())
    }
}

/// Whether a location without a config still holds files only a complete repository has
/// (snapshots, index files; an interrupted `init` leaves at most a key): then the config was
/// lost, and "no repository here" would mislead.
fn holds_repository_files(backend: &dyn Backend) -> Result<bool> {
    for kind in [FileKind::Snapshot, FileKind::Index] {
        if !backend.list(kind)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}
