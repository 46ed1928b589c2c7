//! Entry points for fuzzing every decoder on arbitrary bytes. The cargo-fuzz targets in
//! `fuzz/` call these, and `tests/fuzz_corpus.rs` replays the committed corpus through them as
//! ordinary tests. Each must return (never panic, hang or allocate without bound) on any input.

use crate::chunker::Chunker;
use crate::crypto::keyfile::{Credential, KeyFile};
use crate::crypto::{Keys, MasterKey, aad, blob_aad};
use crate::format::{self, config::Config, index, pack, snapshot::Snapshot, tree};
use crate::id::Id;

fn keys() -> Keys {
    Keys::encrypted(&MasterKey::from_bytes([7; 32]))
}

pub fn config(data: &[u8]) {
    let _ = Config::decode(data);
}

/// Key files: decoding, then unwrapping with capped (and here tiny) Argon2 costs.
pub fn key_file(data: &[u8]) {
    if let Ok(mut kf) = KeyFile::decode(data, "fuzz") {
        kf.kdf_params.memory_kib = kf.kdf_params.memory_kib.min(64);
        kf.kdf_params.iterations = kf.kdf_params.iterations.min(1);
        let repo = Id::from_hex(&kf.repository).unwrap_or_default();
        let _ = kf.unwrap_master(&Credential::password("password"), &repo, "fuzz");
    }
}

/// A whole pack: trailer, sealed header (unencrypted keys so the header parser is reached),
/// bounds check.
pub fn pack(data: &[u8]) {
    if data.len() < pack::TRAILER_LEN {
        return;
    }
    let (body, trailer) = data.split_at(data.len() - pack::TRAILER_LEN);
    if let Ok(len) = pack::decode_trailer(trailer, data.len() as u64) {
        let header = &body[body.len() - len as usize..];
        if let Ok(entries) = pack::decode_header(header) {
            let _ = pack::check_bounds(&entries, (body.len() - len as usize) as u64);
        }
    }
}

pub fn pack_header(data: &[u8]) {
    let _ = pack::decode_header(data);
}

pub fn index(data: &[u8]) {
    let _ = index::decode(data);
}

pub fn tree(data: &[u8]) {
    let _ = tree::decode(data);
}

pub fn snapshot(data: &[u8]) {
    let _ = Snapshot::decode_json(data, "fuzz");
}

/// The file envelope, including bounded zstd decompression.
pub fn envelope(data: &[u8]) {
    let _ = format::unwrap_payload(data, 1, "fuzz", &|| "fuzz".into());
}

/// Opening sealed objects and blobs, then decompressing them with the declared bound. Opening
/// in place must agree with opening a copy.
pub fn sealed(data: &[u8]) {
    let k = keys();
    let _ = k.open(aad::INDEX, data, "fuzz", &|| "fuzz".into());
    let blob = blob_aad(0, &Id::default());
    let copied = k.open(&blob, data, "fuzz", &|| "fuzz".into());
    let mut buf = data.to_vec();
    let in_place = k.open_in_place(&blob, &mut buf, "fuzz", &|| "fuzz".into());
    assert_eq!(copied.ok().as_deref(), in_place.ok(), "opening in place disagrees with opening a copy");
    let _ = crate::compress::decompress(data, 1 << 20, "fuzz", &|| "fuzz".into());
}

/// The chunker on arbitrary content: chunks must concatenate to the input.
pub fn chunker(data: &[u8]) {
    let c = Chunker::new(keys().gear());
    let total: usize = c.chunk_lengths(data).iter().sum();
    assert_eq!(total, data.len(), "chunks must cover the input exactly");
    let _ = crate::chunker::region_starts(data);
}

/// A decoder entry point.
pub type Target = fn(&[u8]);

/// Every target by name, for the corpus replay test.
pub const TARGETS: &[(&str, Target)] = &[
    ("config", config),
    ("key_file", key_file),
    ("pack", pack),
    ("pack_header", pack_header),
    ("index", index),
    ("tree", tree),
    ("snapshot", snapshot),
    ("envelope", envelope),
    ("sealed", sealed),
    ("chunker", chunker),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_target_opens_a_valid_blob_both_ways() {
        let sealed_blob = keys().seal(&blob_aad(0, &Id::default()), b"a chunk of a photo").unwrap();
        sealed(&sealed_blob);
    }
}
