//! The in-memory blob index: which pack holds each blob, at what offset.
//!
//! Entries are 46-byte records in one sorted byte array: bytes 2..32 of the blob id (the first
//! two bytes are implied by the prefix table), the pack's number, the offset, and the two
//! lengths with the compression and kind flags in their top bits. A prefix table of 2^16 to
//! 2^24 buckets (about 16 entries per bucket) says where each id prefix starts, so a lookup is
//! one table read and a binary search over a few hundred bytes. With the pack table, 10 million
//! chunks (10 TB at 1 MiB chunks) cost under 48 bytes each. Duplicate entries (the same blob
//! written by two concurrent backups) are kept; any of them will do for reading.

use std::collections::HashMap;

use crate::format::index::PackContents;
use crate::format::pack::{BlobEntry, BlobKind};
use crate::id::Id;

const COMPRESSED_BIT: u32 = 1 << 31;
const TREE_BIT: u32 = 1 << 31;
/// A record while loading: the full id and 16 bytes of location.
const FULL: usize = 48;
/// A record once sorted: the id without its first two bytes.
const COMPACT: usize = 46;
const TAIL: usize = 30;

/// Where a blob lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub pack: Id,
    pub entry: BlobEntry,
}

#[derive(Default)]
pub struct Index {
    packs: Vec<Id>,
    /// Sorted `COMPACT`-byte records.
    records: Vec<u8>,
    /// Bits of the id prefix that pick a bucket (16 to 24).
    bucket_bits: u32,
    /// `buckets[b]..buckets[b + 1]` are the records whose prefix is `b`.
    buckets: Vec<u32>,
}

/// Collects entries one index file at a time, so loading never holds more than one decoded
/// index file beside the records.
#[derive(Default)]
pub struct IndexBuilder {
    packs: Vec<Id>,
    pack_numbers: HashMap<Id, u32>,
    full: Vec<u8>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn bucket_of(id: &Id, bits: u32) -> usize {
    (u32::from_be_bytes([id.0[0], id.0[1], id.0[2], id.0[3]]) >> (32 - bits)) as usize
}

impl IndexBuilder {
    pub fn add(&mut self, pc: &PackContents) {
        let packs = &mut self.packs;
        let number = *self.pack_numbers.entry(pc.pack).or_insert_with(|| {
            packs.push(pc.pack);
            (packs.len() - 1) as u32
        });
        self.full.reserve(pc.blobs.len() * FULL);
        for b in &pc.blobs {
            self.full.extend_from_slice(&b.id.0);
            self.full.extend_from_slice(&number.to_le_bytes());
            self.full.extend_from_slice(&b.offset.to_le_bytes());
            self.full.extend_from_slice(&(b.stored_len | if b.compressed { COMPRESSED_BIT } else { 0 }).to_le_bytes());
            self.full
                .extend_from_slice(&(b.raw_len | if b.kind == BlobKind::Tree { TREE_BIT } else { 0 }).to_le_bytes());
        }
    }

    /// Sorts the records, drops their first two id bytes and builds the prefix table.
    pub fn finish(self) -> Index {
        let mut full = self.full;
        let (records, _) = full.as_chunks_mut::<FULL>();
        records.sort_unstable_by(|a, b| a[..36].cmp(&b[..36]));
        let mut n = 0;
        for i in 0..records.len() {
            if i > 0 && records[i][..36] == records[n - 1][..36] {
                continue; // the same blob listed twice for the same pack
            }
            records[n] = records[i];
            n += 1;
        }
        let bucket_bits = (usize::BITS - (n / 16).leading_zeros()).clamp(16, 24);
        let mut buckets = vec![0u32; (1 << bucket_bits) + 1];
        for r in &records[..n] {
            buckets[bucket_of(&Id(r[..32].try_into().unwrap_or_default()), bucket_bits) + 1] += 1;
        }
        for i in 1..buckets.len() {
            buckets[i] += buckets[i - 1];
        }
        // Compact in place: record i moves from i * 48 + 2 to i * 46, never ahead of its source.
        for i in 0..n {
            full.copy_within(i * FULL + 2..(i + 1) * FULL, i * COMPACT);
        }
        full.truncate(n * COMPACT);
        full.shrink_to_fit();
        let mut packs = self.packs;
        packs.shrink_to_fit();
        Index { packs, records: full, bucket_bits, buckets }
    }
}

impl Index {
    /// Builds the index from decoded index files (or pack headers).
    pub fn build(contents: impl IntoIterator<Item = PackContents>) -> Index {
        let mut builder = IndexBuilder::default();
        for pc in contents {
            builder.add(&pc);
        }
        builder.finish()
    }

    fn records(&self) -> &[[u8; COMPACT]] {
        self.records.as_chunks::<COMPACT>().0
    }

    pub fn len(&self) -> usize {
        self.records.len() / COMPACT
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn packs(&self) -> &[Id] {
        &self.packs
    }

    /// Bytes of memory the index occupies.
    pub fn memory_bytes(&self) -> usize {
        self.records.capacity() + self.packs.capacity() * 32 + self.buckets.capacity() * 4
    }

    fn find(&self, id: &Id) -> Option<&[u8; COMPACT]> {
        if self.buckets.is_empty() {
            return None;
        }
        let b = bucket_of(id, self.bucket_bits);
        let (lo, hi) = (*self.buckets.get(b)? as usize, *self.buckets.get(b + 1)? as usize);
        let slice = self.records().get(lo..hi)?;
        let tail = &id.0[2..];
        slice.binary_search_by(|r| r[..TAIL].cmp(tail)).ok().map(|i| &slice[i])
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.find(id).is_some()
    }

    pub fn lookup(&self, id: &Id) -> Option<Location> {
        self.find(id).map(|r| self.location(id, r))
    }

    fn location(&self, id: &Id, r: &[u8; COMPACT]) -> Location {
        let stored = u32_at(r, TAIL + 8);
        let raw = u32_at(r, TAIL + 12);
        Location {
            pack: self.packs[u32_at(r, TAIL) as usize],
            entry: BlobEntry {
                kind: if raw & TREE_BIT != 0 { BlobKind::Tree } else { BlobKind::Data },
                compressed: stored & COMPRESSED_BIT != 0,
                id: *id,
                offset: u32_at(r, TAIL + 4),
                stored_len: stored & !COMPRESSED_BIT,
                raw_len: raw & !TREE_BIT,
            },
        }
    }

    /// Every entry, grouped by pack (for `check` and `stats`).
    pub fn by_pack(&self) -> Vec<PackContents> {
        let mut groups: Vec<Vec<BlobEntry>> = vec![Vec::new(); self.packs.len()];
        let records = self.records();
        for b in 0..self.buckets.len().saturating_sub(1) {
            let prefix = ((b as u32) << (32 - self.bucket_bits)).to_be_bytes();
            for r in &records[self.buckets[b] as usize..self.buckets[b + 1] as usize] {
                let mut id = Id::default();
                id.0[..2].copy_from_slice(&prefix[..2]);
                id.0[2..].copy_from_slice(&r[..TAIL]);
                let loc = self.location(&id, r);
                groups[u32_at(r, TAIL) as usize].push(loc.entry);
            }
        }
        self.packs
            .iter()
            .zip(groups)
            .map(|(&pack, mut blobs)| {
                blobs.sort_by_key(|b| b.offset);
                PackContents { pack, blobs }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: u32) -> Vec<BlobEntry> {
        (0..n)
            .map(|i| BlobEntry {
                kind: if i.is_multiple_of(3) { BlobKind::Tree } else { BlobKind::Data },
                compressed: i.is_multiple_of(2),
                id: Id::of_bytes(&i.to_le_bytes()),
                offset: i,
                stored_len: i + 1,
                raw_len: i + 2,
            })
            .collect()
    }

    #[test]
    fn lookups_find_every_entry_and_nothing_else() {
        for n in [0, 1, 1000, 300_000] {
            let blobs = entries(n);
            let index = Index::build(vec![PackContents { pack: Id([1; 32]), blobs: blobs.clone() }]);
            assert_eq!(index.len(), n as usize);
            for b in &blobs {
                assert_eq!(index.lookup(&b.id), Some(Location { pack: Id([1; 32]), entry: *b }));
            }
            assert!(!index.contains(&Id::of_bytes(b"absent")));
            let grouped = index.by_pack();
            let mut sorted = blobs.clone();
            sorted.sort_by_key(|b| b.offset);
            assert_eq!(grouped.first().map(|p| p.blobs.clone()).unwrap_or_default(), sorted);
        }
    }

    #[test]
    fn duplicates_across_packs_are_kept_and_within_a_pack_dropped() {
        let blobs = entries(10);
        let index = Index::build(vec![
            PackContents { pack: Id([1; 32]), blobs: blobs.clone() },
            PackContents { pack: Id([1; 32]), blobs: blobs.clone() },
            PackContents { pack: Id([2; 32]), blobs: blobs[..3].to_vec() },
        ]);
        assert_eq!(index.len(), 13);
        assert_eq!(index.by_pack()[1].blobs.len(), 3);
    }
}
