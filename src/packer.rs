//! Writes new blobs into pack files and records them in index files.
//!
//! Write order, which every reader may rely on: a pack is published complete before any index
//! file lists it, and an index file is published before any snapshot that needs it. Tree blobs
//! and data blobs go to separate packs, so damage to data never hides the folder structure
//! (and tree packs stay small enough to cache). Blobs are compressed and sealed by the calling
//! thread, and every worker thread fills packs of its own, so appends never wait for another
//! thread's write; a full pack is finished (header, fsync, publish) by the thread that filled it.

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::crypto::aad;
use crate::error::{Error, Result};
use crate::format::index::PackContents;
use crate::format::pack::{self, BlobEntry, BlobKind};
use crate::id::Id;
use crate::repo::Repository;
use crate::store::{FileKind, SpoolFile};

/// Packs listed per index file before it is written out, so an interrupted backup loses at
/// most this many packs' worth of index (and those packs stay recoverable from their headers).
const PACKS_PER_INDEX_FILE: usize = 16;

struct OpenPack {
    writer: BufWriter<SpoolFile>,
    hasher: blake3::Hasher,
    entries: Vec<BlobEntry>,
    len: u64,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct PackerStats {
    pub blobs: u64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub packs: u64,
}

pub struct Packer<'r> {
    repo: &'r Repository,
    level: i32,
    /// The packs being filled: one slot per worker thread (plus one for other threads), and in
    /// each one pack per blob kind (data, tree). A thread only locks its own slot.
    open: Vec<[Mutex<Option<OpenPack>>; 2]>,
    unindexed: Mutex<Vec<PackContents>>,
    /// Whether this packer writes index files for its packs (prune writes its own index).
    write_index: bool,
    /// Every pack this packer published.
    written: Mutex<Vec<PackContents>>,
    /// Blobs stored (or being stored) by this packer: with the repository index, the dedup set.
    seen: Mutex<HashSet<Id>>,
    blobs: AtomicU64,
    raw_bytes: AtomicU64,
    stored_bytes: AtomicU64,
    packs: AtomicU64,
}

impl<'r> Packer<'r> {
    pub fn new(repo: &'r Repository, level: i32) -> Self {
        Packer {
            repo,
            level,
            open: (0..=rayon::current_num_threads()).map(|_| [Mutex::new(None), Mutex::new(None)]).collect(),
            unindexed: Mutex::new(Vec::new()),
            write_index: true,
            written: Mutex::new(Vec::new()),
            seen: Mutex::new(HashSet::new()),
            blobs: AtomicU64::new(0),
            raw_bytes: AtomicU64::new(0),
            stored_bytes: AtomicU64::new(0),
            packs: AtomicU64::new(0),
        }
    }

    /// A packer that writes packs but no index files: the caller indexes [`Packer::written`].
    pub fn without_index(repo: &'r Repository, level: i32) -> Self {
        Packer { write_index: false, ..Packer::new(repo, level) }
    }

    /// The packs published so far.
    pub fn written(&self) -> Vec<PackContents> {
        self.written.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Copies an already sealed blob into a new pack as it is (its seal binds its kind and id,
    /// not its position, so repacking needs no re-encryption).
    pub fn add_stored(&self, entry: &BlobEntry, stored: &[u8]) -> Result<bool> {
        if !self.seen.lock().map_err(|_| poisoned())?.insert(entry.id) {
            return Ok(false);
        }
        self.append(entry.kind, entry.id, entry.compressed, entry.raw_len, stored)?;
        Ok(true)
    }

    /// True if the repository or this packer already has the blob.
    pub fn has(&self, id: &Id) -> bool {
        self.repo.index().contains(id) || self.seen.lock().map(|s| s.contains(id)).unwrap_or(false)
    }

    /// Stores a blob unless it is already stored. Returns true if it was new.
    pub fn add(&self, kind: BlobKind, id: Id, raw: &[u8]) -> Result<bool> {
        if self.repo.index().contains(&id) {
            return Ok(false);
        }
        if !self.seen.lock().map_err(|_| poisoned())?.insert(id) {
            return Ok(false);
        }
        let result = self.store(kind, id, raw);
        if result.is_err() {
            // Let a later attempt store it again.
            if let Ok(mut seen) = self.seen.lock() {
                seen.remove(&id);
            }
        }
        result.map(|()| true)
    }

    fn store(&self, kind: BlobKind, id: Id, raw: &[u8]) -> Result<()> {
        let (stored, compressed) = self.repo.encode_blob(kind, &id, raw, self.level)?;
        let raw_len = u32::try_from(raw.len()).map_err(|_| Error::InvalidArgument("blob larger than 4 GiB".into()))?;
        self.append(kind, id, compressed, raw_len, &stored)
    }

    fn append(&self, kind: BlobKind, id: Id, compressed: bool, raw_len: u32, stored: &[u8]) -> Result<()> {
        let stored_len = stored.len() as u32;
        let full = {
            let slot = rayon::current_thread_index().unwrap_or(self.open.len() - 1).min(self.open.len() - 1);
            let mut guard = self.open[slot][kind as usize].lock().map_err(|_| poisoned())?;
            if guard.is_none() {
                *guard = Some(OpenPack {
                    writer: BufWriter::with_capacity(256 << 10, self.repo.backend().spool()?),
                    hasher: blake3::Hasher::new(),
                    entries: Vec::new(),
                    len: 0,
                });
            }
            let Some(open) = guard.as_mut() else { return Err(poisoned()) };
            open.writer.write_all(stored).map_err(|e| spool_error("write", e))?;
            open.hasher.update(stored);
            open.entries.push(BlobEntry { kind, compressed, id, offset: open.len as u32, stored_len, raw_len });
            open.len += u64::from(stored_len);
            if open.len >= self.repo.config().pack_size { guard.take() } else { None }
        };
        self.blobs.fetch_add(1, Ordering::Relaxed);
        self.raw_bytes.fetch_add(u64::from(raw_len), Ordering::Relaxed);
        self.stored_bytes.fetch_add(u64::from(stored_len), Ordering::Relaxed);
        if let Some(open) = full {
            self.finish_pack(open)?;
        }
        Ok(())
    }

    fn finish_pack(&self, mut open: OpenPack) -> Result<()> {
        let header = self.repo.keys().seal(aad::PACK_HEADER, &pack::encode_header(&open.entries))?;
        let trailer = pack::encode_trailer(header.len() as u32);
        open.writer.write_all(&header).map_err(|e| spool_error("write", e))?;
        open.writer.write_all(&trailer).map_err(|e| spool_error("write", e))?;
        open.hasher.update(&header);
        open.hasher.update(&trailer);
        let file = open.writer.into_inner().map_err(|e| spool_error("write", e.into_error()))?;
        let pack_id = Id(*open.hasher.finalize().as_bytes());
        self.repo.backend().publish(FileKind::Pack, &pack_id.to_hex(), file)?;
        self.packs.fetch_add(1, Ordering::Relaxed);
        self.stored_bytes.fetch_add((header.len() + trailer.len()) as u64, Ordering::Relaxed);
        let contents = PackContents { pack: pack_id, blobs: open.entries };
        self.written.lock().map_err(|_| poisoned())?.push(contents.clone());
        if !self.write_index {
            return Ok(());
        }
        let batch = {
            let mut unindexed = self.unindexed.lock().map_err(|_| poisoned())?;
            unindexed.push(contents);
            if unindexed.len() >= PACKS_PER_INDEX_FILE { std::mem::take(&mut *unindexed) } else { Vec::new() }
        };
        if !batch.is_empty() {
            // The index may only name packs that are stored (uploads can still be running).
            self.repo.backend().flush()?;
            self.repo.save_index(&batch)?;
        }
        Ok(())
    }

    /// Finishes the open packs, waits for their uploads, and writes the index for every pack not
    /// yet indexed. After this returns, everything added is durable and findable.
    pub fn finish(&self) -> Result<PackerStats> {
        for slot in self.open.iter().flatten() {
            let open = slot.lock().map_err(|_| poisoned())?.take();
            if let Some(open) = open {
                self.finish_pack(open)?;
            }
        }
        self.repo.backend().flush()?;
        let rest = std::mem::take(&mut *self.unindexed.lock().map_err(|_| poisoned())?);
        if !rest.is_empty() {
            self.repo.save_index(&rest)?;
        }
        Ok(self.stats())
    }

    pub fn stats(&self) -> PackerStats {
        PackerStats {
            blobs: self.blobs.load(Ordering::Relaxed),
            raw_bytes: self.raw_bytes.load(Ordering::Relaxed),
            stored_bytes: self.stored_bytes.load(Ordering::Relaxed),
            packs: self.packs.load(Ordering::Relaxed),
        }
    }
}

fn poisoned() -> Error {
    Error::Storage { op: "write", name: "pack".into(), cause: std::io::Error::other("a writer thread panicked") }
}

fn spool_error(op: &'static str, e: std::io::Error) -> Error {
    Error::Storage { op, name: "new pack (scratch file)".into(), cause: e }
}
