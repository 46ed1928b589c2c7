//! Blobs: sealing and compressing them for packs, and reading them back verified.
//!
//! Invariant: every blob handed to a caller has been opened (its AEAD tag checked against its
//! kind and id), decompressed within its declared length, and re-hashed against its id.

use std::borrow::Cow;

use super::Repository;
use crate::compress;
use crate::crypto::blob_aad;
use crate::error::{Error, Result};
use crate::format::pack::{BlobEntry, BlobKind};
use crate::format::tree;
use crate::id::Id;
use crate::store::FileKind;

impl Repository {
    /// Compresses (when it pays) and seals a blob. Returns the stored bytes and whether they
    /// are compressed.
    pub fn encode_blob(&self, kind: BlobKind, id: &Id, raw: &[u8], level: i32) -> Result<(Vec<u8>, bool)> {
        let compressed = compress::maybe_compress(raw, level);
        let is_compressed = compressed.is_some();
        let body = compressed.as_deref().unwrap_or(raw);
        Ok((self.keys.seal(&blob_aad(kind as u8, id), body)?, is_compressed))
    }

    /// Opens, decompresses and verifies a stored blob against its entry.
    pub fn decode_blob(&self, entry: &BlobEntry, stored: &[u8]) -> Result<Vec<u8>> {
        let opened =
            self.keys.open(&blob_aad(entry.kind as u8, &entry.id), stored, entry.kind.name(), &|| entry.id.to_hex())?;
        self.finish_blob(entry, Cow::Owned(opened)).map(Cow::into_owned)
    }

    /// As `decode_blob`, but opens the blob where it lies, so an uncompressed blob's plaintext
    /// is a part of `stored` and nothing is copied. `stored` is scratch afterwards.
    pub fn decode_blob_in_place<'a>(&self, entry: &BlobEntry, stored: &'a mut [u8]) -> Result<Cow<'a, [u8]>> {
        let aad = blob_aad(entry.kind as u8, &entry.id);
        let opened = self.keys.open_in_place(&aad, stored, entry.kind.name(), &|| entry.id.to_hex())?;
        self.finish_blob(entry, Cow::Borrowed(opened))
    }

    /// Decompresses an opened blob if it is stored compressed, and verifies length and id.
    fn finish_blob<'a>(&self, entry: &BlobEntry, opened: Cow<'a, [u8]>) -> Result<Cow<'a, [u8]>> {
        let kind = entry.kind.name();
        let name = || entry.id.to_hex();
        let raw = if entry.compressed {
            Cow::Owned(compress::decompress(&opened, entry.raw_len as usize, kind, &name)?)
        } else {
            opened
        };
        if raw.len() != entry.raw_len as usize {
            return Err(Error::corrupt(
                kind,
                name(),
                format!("{} bytes where the index says {}", raw.len(), entry.raw_len),
            ));
        }
        if self.keys.blob_id(&raw) != entry.id {
            return Err(Error::corrupt(kind, name(), "content does not match its id"));
        }
        Ok(raw)
    }

    pub fn read_blob(&self, id: &Id) -> Result<Vec<u8>> {
        let loc = self.index.lookup(id).ok_or_else(|| Error::Missing { kind: "blob", name: id.to_hex() })?;
        let stored =
            self.read_stored(loc.entry.kind, &loc.pack, loc.entry.offset.into(), loc.entry.stored_len.into())?;
        self.decode_blob(&loc.entry, &stored)
    }

    /// Reads the longest prefix of `ids` whose blobs lie back to back in one pack (at most
    /// `max_bytes` of them, at least one blob) with a single read. On object storage this turns
    /// a file's chunks into one request instead of one per chunk.
    pub fn read_blob_run(&self, ids: &[Id], max_bytes: u64) -> Result<BlobRun> {
        let Some(first) = ids.first() else {
            return Ok(BlobRun { stored: Vec::new(), start: 0, entries: Vec::new(), next: 0 });
        };
        let head = self.index.lookup(first).ok_or_else(|| Error::Missing { kind: "blob", name: first.to_hex() })?;
        let start = u64::from(head.entry.offset);
        let mut end = start + u64::from(head.entry.stored_len);
        let mut entries = vec![head.entry];
        for id in &ids[1..] {
            match self.index.lookup(id) {
                Some(loc)
                    if loc.pack == head.pack
                        && u64::from(loc.entry.offset) == end
                        && end - start + u64::from(loc.entry.stored_len) <= max_bytes =>
                {
                    end += u64::from(loc.entry.stored_len);
                    entries.push(loc.entry);
                }
                _ => break,
            }
        }
        let stored = self.read_stored(head.entry.kind, &head.pack, start, end - start)?;
        Ok(BlobRun { stored, start, entries, next: 0 })
    }

    /// Stored bytes of blobs of one kind; tree packs may come from the local cache.
    fn read_stored(&self, kind: BlobKind, pack: &Id, offset: u64, len: u64) -> Result<Vec<u8>> {
        match kind {
            BlobKind::Tree => self.backend.read_range_hot(FileKind::Pack, &pack.to_hex(), offset, len),
            BlobKind::Data => self.backend.read_range(FileKind::Pack, &pack.to_hex(), offset, len),
        }
    }

    pub fn read_tree(&self, id: &Id) -> Result<Vec<tree::Node>> {
        let loc = self.index.lookup(id).ok_or_else(|| Error::Missing { kind: "tree", name: id.to_hex() })?;
        if loc.entry.kind != BlobKind::Tree {
            return Err(Error::corrupt("tree", id.to_hex(), "indexed as a data blob"));
        }
        let raw = self.read_blob(id)?;
        tree::decode(&raw).map_err(|e| Error::corrupt("tree", id.to_hex(), e.0))
    }
}

/// Neighbouring blobs of one pack, read together by `Repository::read_blob_run` and decoded
/// one at a time where they lie. A run never holds a stored region twice, so each decodes once.
pub struct BlobRun {
    stored: Vec<u8>,
    start: u64,
    entries: Vec<BlobEntry>,
    next: usize,
}

impl BlobRun {
    /// How many blobs (a prefix of the ids asked for) the run holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The next blob's plaintext, decoded and verified; `None` after the last.
    pub fn next_blob(&mut self, repo: &Repository) -> Option<Result<Cow<'_, [u8]>>> {
        let entry = *self.entries.get(self.next)?;
        self.next += 1;
        let from = (u64::from(entry.offset) - self.start) as usize;
        let stored = &mut self.stored[from..from + entry.stored_len as usize];
        Some(repo.decode_blob_in_place(&entry, stored))
    }
}
