//! The in-memory blob index: which pack holds each blob, at what offset.
//!
//! One 48-byte entry per blob in a sorted array, plus a 2^16-bucket table of where each id
//! prefix starts, so a lookup is one table read and a short binary search. 10 million chunks
//! (10 TB at 1 MiB chunks) cost 480 MB. Duplicate entries (the same blob written by two
//! concurrent backups) are kept; any of them will do for reading.

use crate::format::index::PackContents;
use crate::format::pack::{BlobEntry, BlobKind};
use crate::id::Id;

const COMPRESSED_BIT: u32 = 1 << 31;
const TREE_BIT: u32 = 1 << 31;

/// 48 bytes: the id, the pack's number in `Index::packs`, and the entry's lengths with the
/// compression and kind flags folded into their top bits (both lengths are < 2^31).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Entry {
    id: Id,
    pack: u32,
    offset: u32,
    stored_len_and_compressed: u32,
    raw_len_and_kind: u32,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 48);

/// Where a blob lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub pack: Id,
    pub entry: BlobEntry,
}

#[derive(Default)]
pub struct Index {
    packs: Vec<Id>,
    entries: Vec<Entry>,
    buckets: Vec<u32>,
}

impl Index {
    /// Builds the index from decoded index files (or pack headers).
    pub fn build(contents: impl IntoIterator<Item = PackContents>) -> Index {
        let mut index = Index::default();
        let mut pack_numbers = std::collections::HashMap::new();
        for pc in contents {
            let number = *pack_numbers.entry(pc.pack).or_insert_with(|| {
                index.packs.push(pc.pack);
                (index.packs.len() - 1) as u32
            });
            index.entries.extend(pc.blobs.iter().map(|b| Entry {
                id: b.id,
                pack: number,
                offset: b.offset,
                stored_len_and_compressed: b.stored_len | if b.compressed { COMPRESSED_BIT } else { 0 },
                raw_len_and_kind: b.raw_len | if b.kind == BlobKind::Tree { TREE_BIT } else { 0 },
            }));
        }
        index.entries.sort_unstable_by(|a, b| a.id.cmp(&b.id).then(a.pack.cmp(&b.pack)));
        index.entries.dedup_by(|a, b| a.id == b.id && a.pack == b.pack);
        index.buckets = vec![0; (1 << 16) + 1];
        for e in &index.entries {
            index.buckets[prefix(&e.id) + 1] += 1;
        }
        for i in 1..index.buckets.len() {
            index.buckets[i] += index.buckets[i - 1];
        }
        index
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn packs(&self) -> &[Id] {
        &self.packs
    }

    /// Bytes of memory the index occupies.
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * 48 + self.packs.capacity() * 32 + self.buckets.capacity() * 4
    }

    fn find(&self, id: &Id) -> Option<&Entry> {
        let p = prefix(id);
        let (lo, hi) = (*self.buckets.get(p)? as usize, *self.buckets.get(p + 1)? as usize);
        let slice = &self.entries[lo..hi];
        slice.binary_search_by(|e| e.id.cmp(id)).ok().map(|i| &slice[i])
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.find(id).is_some()
    }

    pub fn lookup(&self, id: &Id) -> Option<Location> {
        self.find(id).map(|e| self.location(e))
    }

    fn location(&self, e: &Entry) -> Location {
        Location {
            pack: self.packs[e.pack as usize],
            entry: BlobEntry {
                kind: if e.raw_len_and_kind & TREE_BIT != 0 { BlobKind::Tree } else { BlobKind::Data },
                compressed: e.stored_len_and_compressed & COMPRESSED_BIT != 0,
                id: e.id,
                offset: e.offset,
                stored_len: e.stored_len_and_compressed & !COMPRESSED_BIT,
                raw_len: e.raw_len_and_kind & !TREE_BIT,
            },
        }
    }

    /// Every entry, grouped by pack (for `check` and `stats`).
    pub fn by_pack(&self) -> Vec<PackContents> {
        let mut groups: Vec<Vec<BlobEntry>> = vec![Vec::new(); self.packs.len()];
        for e in &self.entries {
            groups[e.pack as usize].push(self.location(e).entry);
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

fn prefix(id: &Id) -> usize {
    (usize::from(id.0[0]) << 8) | usize::from(id.0[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_find_every_entry_and_nothing_else() {
        let mut blobs = Vec::new();
        for i in 0..1000u32 {
            let id = Id::of_bytes(&i.to_le_bytes());
            blobs.push(BlobEntry {
                kind: if i.is_multiple_of(3) { BlobKind::Tree } else { BlobKind::Data },
                compressed: i.is_multiple_of(2),
                id,
                offset: i,
                stored_len: i + 1,
                raw_len: i + 2,
            });
        }
        let index = Index::build(vec![PackContents { pack: Id([1; 32]), blobs: blobs.clone() }]);
        assert_eq!(index.len(), 1000);
        for b in &blobs {
            assert_eq!(index.lookup(&b.id), Some(Location { pack: Id([1; 32]), entry: *b }));
        }
        assert!(!index.contains(&Id::of_bytes(b"absent")));
        assert_eq!(index.by_pack()[0].blobs.len(), 1000);
    }
}
