//! Pure encoders and decoders for every object snap stores (format-spec/ is normative).
//!
//! Nothing here touches files, clocks or randomness: callers pass bytes in and get bytes out,
//! which is what makes byte-exact test vectors and fuzzing possible. Every decoder bounds each
//! length it reads before allocating.

pub mod config;
pub mod index;
pub mod pack;
pub mod snapshot;
pub mod tree;
pub mod wire;

use crate::compress;
use crate::error::{Error, Result};

/// Largest plaintext blob (a chunk or a tree) a reader accepts: 256 MiB.
pub const MAX_BLOB_LEN: u64 = 256 << 20;
/// Largest decoded index file or snapshot a reader accepts: 512 MiB.
pub const MAX_FILE_PAYLOAD: usize = 512 << 20;

/// Envelope of index files and snapshots, before sealing:
/// `version (u8) || compression (u8: 0 none, 1 zstd) || payload`.
pub fn wrap_payload(version: u8, payload: &[u8], compress_it: bool) -> Vec<u8> {
    let mut out = vec![version, u8::from(compress_it)];
    if compress_it {
        out.extend_from_slice(&compress::compress(payload, compress::DEFAULT_LEVEL));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Opens the envelope, refusing versions other than `version` and oversized payloads.
pub fn unwrap_payload(bytes: &[u8], version: u8, kind: &'static str, name: &dyn Fn() -> String) -> Result<Vec<u8>> {
    let [found, compression, payload @ ..] = bytes else {
        return Err(Error::corrupt(kind, name(), "shorter than its 2-byte envelope"));
    };
    if *found != version {
        return Err(if *found > version {
            Error::UnsupportedVersion { found: u64::from(*found), supported: u64::from(version) }
        } else {
            Error::corrupt(kind, name(), format!("unknown version {found}"))
        });
    }
    match compression {
        0 if payload.len() <= MAX_FILE_PAYLOAD => Ok(payload.to_vec()),
        0 => Err(Error::corrupt(kind, name(), "payload too large")),
        1 => compress::decompress(payload, MAX_FILE_PAYLOAD, kind, name),
        other => Err(Error::corrupt(kind, name(), format!("unknown compression {other}"))),
    }
}
