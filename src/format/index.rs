//! Index files: which blobs each pack holds, so readers need not open pack headers.
//!
//! Payload (inside the file envelope, zstd-compressed, then sealed):
//! `pack_count (varint) || { pack_id (32) || blob_count (varint) || entries }*`,
//! each entry with an explicit offset. Index files are only ever added; an index file is a
//! cache of pack headers and may always be rebuilt from the packs.

use super::pack::{BlobEntry, MIN_ENTRY_LEN, put_entry, read_entry};
use super::wire::{Reader, WireResult, put_varint};
use crate::id::Id;

pub const INDEX_VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackContents {
    pub pack: Id,
    pub blobs: Vec<BlobEntry>,
}

pub fn encode(packs: &[PackContents]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, packs.len() as u64);
    for p in packs {
        out.extend_from_slice(&p.pack.0);
        put_varint(&mut out, p.blobs.len() as u64);
        for e in &p.blobs {
            put_entry(&mut out, e, true);
        }
    }
    out
}

pub fn decode(payload: &[u8]) -> WireResult<Vec<PackContents>> {
    let mut r = Reader::new(payload);
    let count = r.count(33, "pack count")?;
    let mut packs = Vec::with_capacity(count);
    for _ in 0..count {
        let pack = r.id("pack id")?;
        let n = r.count(MIN_ENTRY_LEN + 1, "blob count")?;
        let mut blobs = Vec::with_capacity(n);
        for _ in 0..n {
            blobs.push(read_entry(&mut r, None)?);
        }
        packs.push(PackContents { pack, blobs });
    }
    r.finish("index")?;
    Ok(packs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::pack::BlobKind;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let packs = vec![PackContents {
            pack: Id([9; 32]),
            blobs: vec![BlobEntry {
                kind: BlobKind::Tree,
                compressed: true,
                id: Id([1; 32]),
                offset: 77,
                stored_len: 5,
                raw_len: 9,
            }],
        }];
        assert_eq!(decode(&encode(&packs)).unwrap(), packs);
    }

    proptest! {
        #[test]
        fn decode_never_panics(data: Vec<u8>) {
            let _ = decode(&data);
        }
    }
}
