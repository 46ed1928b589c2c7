//! Pack files: many sealed blobs followed by a sealed header that lists them.
//!
//! Layout: `blob_0 || ... || blob_{n-1} || sealed_header || header_len (u32 LE) || "SNPK"`.
//! The header sits at the end so a pack can be streamed out in one pass; a reader finds it with
//! one ranged read of the tail. Packs are self-describing, so the index can always be rebuilt
//! from them. Invariant: blob offsets are implied by the order and stored lengths in the header.

use super::MAX_BLOB_LEN;
use super::wire::{Reader, WireError, WireResult, put_varint};
use crate::id::Id;

pub const PACK_MAGIC: &[u8; 4] = b"SNPK";
pub const PACK_HEADER_VERSION: u8 = 1;
pub const TRAILER_LEN: usize = 8;
/// Largest pack a reader accepts (offsets are u32 in the index).
pub const MAX_PACK_LEN: u64 = u32::MAX as u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlobKind {
    Data = 0,
    Tree = 1,
}

impl BlobKind {
    pub fn from_u8(b: u8) -> Option<BlobKind> {
        match b {
            0 => Some(BlobKind::Data),
            1 => Some(BlobKind::Tree),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BlobKind::Data => "data blob",
            BlobKind::Tree => "tree",
        }
    }
}

/// One blob inside a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobEntry {
    pub kind: BlobKind,
    pub compressed: bool,
    pub id: Id,
    pub offset: u32,
    /// Bytes in the pack (sealed, possibly compressed).
    pub stored_len: u32,
    /// Bytes of the plaintext blob.
    pub raw_len: u32,
}

/// Encodes one entry without its offset (shared by pack headers and index files).
pub(crate) fn put_entry(out: &mut Vec<u8>, e: &BlobEntry, with_offset: bool) {
    out.push(e.kind as u8);
    out.push(u8::from(e.compressed));
    out.extend_from_slice(&e.id.0);
    if with_offset {
        put_varint(out, u64::from(e.offset));
    }
    put_varint(out, u64::from(e.stored_len));
    put_varint(out, u64::from(e.raw_len));
}

/// Decodes one entry; `offset` is used when the encoding carries none.
pub(crate) fn read_entry(r: &mut Reader, offset: Option<u32>) -> WireResult<BlobEntry> {
    let kind_byte = r.u8("blob kind")?;
    let kind = BlobKind::from_u8(kind_byte).ok_or_else(|| WireError(format!("unknown blob kind {kind_byte}")))?;
    let compressed = match r.u8("compression")? {
        0 => false,
        1 => true,
        other => return Err(WireError(format!("unknown compression {other}"))),
    };
    let id = r.id("blob id")?;
    let offset = match offset {
        Some(o) => o,
        None => r.bounded(MAX_PACK_LEN, "blob offset")? as u32,
    };
    let stored_len = r.bounded(MAX_BLOB_LEN + 1024, "stored length")? as u32;
    let raw_len = r.bounded(MAX_BLOB_LEN, "raw length")? as u32;
    Ok(BlobEntry { kind, compressed, id, offset, stored_len, raw_len })
}

/// Minimum encoded size of an entry, used to bound counts.
pub(crate) const MIN_ENTRY_LEN: usize = 2 + 32 + 1 + 1;

/// Plaintext pack header: `version (u8) || count (varint) || entries`.
pub fn encode_header(entries: &[BlobEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + entries.len() * 40);
    out.push(PACK_HEADER_VERSION);
    put_varint(&mut out, entries.len() as u64);
    for e in entries {
        put_entry(&mut out, e, false);
    }
    out
}

pub fn decode_header(plain: &[u8]) -> WireResult<Vec<BlobEntry>> {
    let mut r = Reader::new(plain);
    let version = r.u8("pack header version")?;
    if version != PACK_HEADER_VERSION {
        return Err(WireError(format!("unknown pack header version {version}")));
    }
    let count = r.count(MIN_ENTRY_LEN, "entry count")?;
    let mut entries = Vec::with_capacity(count);
    let mut offset: u64 = 0;
    for _ in 0..count {
        let o = u32::try_from(offset).map_err(|_| WireError("pack longer than 4 GiB".into()))?;
        let e = read_entry(&mut r, Some(o))?;
        offset += u64::from(e.stored_len);
        entries.push(e);
    }
    r.finish("pack header")?;
    Ok(entries)
}

/// The 8-byte trailer for a sealed header of `sealed_header_len` bytes.
pub fn encode_trailer(sealed_header_len: u32) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[..4].copy_from_slice(&sealed_header_len.to_le_bytes());
    t[4..].copy_from_slice(PACK_MAGIC);
    t
}

/// Reads the trailer of a pack of `pack_len` bytes: returns the sealed header's length, checked
/// to fit inside the pack.
pub fn decode_trailer(trailer: &[u8], pack_len: u64) -> WireResult<u32> {
    if trailer.len() != TRAILER_LEN || &trailer[4..] != PACK_MAGIC {
        return Err(WireError("no pack trailer (bad magic)".into()));
    }
    let len = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if u64::from(len) + TRAILER_LEN as u64 > pack_len {
        return Err(WireError(format!("header length {len} exceeds the pack")));
    }
    Ok(len)
}

/// Checks that every entry lies inside the blob area of a pack of `pack_len` bytes.
pub fn check_bounds(entries: &[BlobEntry], blob_area_len: u64) -> WireResult<()> {
    match entries.iter().find(|e| u64::from(e.offset) + u64::from(e.stored_len) > blob_area_len) {
        Some(e) => Err(WireError(format!("blob {} extends past the blob area", e.id.short()))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(i: u8, off: u32, len: u32) -> BlobEntry {
        BlobEntry {
            kind: BlobKind::Data,
            compressed: i.is_multiple_of(2),
            id: Id([i; 32]),
            offset: off,
            stored_len: len,
            raw_len: len + 1,
        }
    }

    #[test]
    fn header_round_trip_derives_offsets() {
        let entries = vec![entry(1, 0, 100), entry(2, 100, 50), entry(3, 150, 7)];
        assert_eq!(decode_header(&encode_header(&entries)).unwrap(), entries);
        assert!(check_bounds(&entries, 157).is_ok());
        assert!(check_bounds(&entries, 156).is_err());
    }

    #[test]
    fn trailer_rejects_bad_magic_and_oversized_length() {
        let t = encode_trailer(100);
        assert_eq!(decode_trailer(&t, 200).unwrap(), 100);
        assert!(decode_trailer(&t, 50).is_err());
        assert!(decode_trailer(b"\x01\0\0\0SNPX", 200).is_err());
    }

    proptest! {
        #[test]
        fn decode_header_never_panics(data: Vec<u8>) {
            let _ = decode_header(&data);
        }
    }
}
