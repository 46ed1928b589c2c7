//! Keys and the object-sealing construction.
//!
//! A repository has one random 32-byte master secret. Every other key is derived from it with
//! BLAKE3's `derive_key` and a fixed context string, so the derivations are independent:
//! the data key (XChaCha20-Poly1305), the blob-id key (keyed BLAKE3), the chunker gear table and
//! the file-fingerprint key. Unencrypted repositories use the all-zero master secret for the gear
//! table and fingerprints, plain BLAKE3 for ids, and store objects unsealed.
//!
//! Invariant: every sealed object is `nonce (24) || ciphertext || tag (16)` with a fresh random
//! nonce and associated data naming the object's kind (and, for blobs, its id), so an object can
//! be neither altered nor passed off as another.

pub mod keyfile;

use chacha20poly1305::aead::{Aead, AeadInOut, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};
use crate::id::Id;

pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
/// Bytes a sealed object has beyond its plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

const CONTEXT_DATA_KEY: &str = "snap v1 data encryption key";
const CONTEXT_ID_KEY: &str = "snap v1 blob id key";
const CONTEXT_GEAR: &str = "snap v1 chunker gear table";
const CONTEXT_FINGERPRINT: &str = "snap v1 file fingerprint key";

/// Associated-data labels: one per object kind, so a sealed index can never be opened as a
/// snapshot and so on.
pub mod aad {
    pub const BLOB: &[u8] = b"snap1/blob";
    pub const PACK_HEADER: &[u8] = b"snap1/pack-header";
    pub const INDEX: &[u8] = b"snap1/index";
    pub const SNAPSHOT: &[u8] = b"snap1/snapshot";
    pub const KEY: &[u8] = b"snap1/key";
    pub const LOCK: &[u8] = b"snap1/lock";
}

/// The repository's master secret.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey(pub(crate) [u8; 32]);

impl MasterKey {
    pub fn generate() -> Result<MasterKey> {
        Ok(MasterKey(random_bytes()?))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        MasterKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Fills an array from the operating system's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| Error::io("random source", std::io::Error::other(e.to_string())))?;
    Ok(out)
}

/// Everything derived from the master secret that reading and writing a repository needs.
pub struct Keys {
    cipher: Option<XChaCha20Poly1305>,
    id_key: Option<[u8; 32]>,
    fingerprint_key: [u8; 32],
    gear: Box<[u64; 256]>,
}

impl Drop for Keys {
    fn drop(&mut self) {
        if let Some(k) = self.id_key.as_mut() {
            k.zeroize();
        }
        self.fingerprint_key.zeroize();
    }
}

impl Keys {
    pub fn encrypted(master: &MasterKey) -> Keys {
        let mut data_key = blake3::derive_key(CONTEXT_DATA_KEY, &master.0);
        let cipher = XChaCha20Poly1305::new(&data_key.into());
        data_key.zeroize();
        Keys {
            cipher: Some(cipher),
            id_key: Some(blake3::derive_key(CONTEXT_ID_KEY, &master.0)),
            fingerprint_key: blake3::derive_key(CONTEXT_FINGERPRINT, &master.0),
            gear: gear_table(master),
        }
    }

    pub fn unencrypted() -> Keys {
        let zero = MasterKey([0; 32]);
        Keys {
            cipher: None,
            id_key: None,
            fingerprint_key: blake3::derive_key(CONTEXT_FINGERPRINT, &zero.0),
            gear: gear_table(&zero),
        }
    }

    pub fn is_encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// The id of a blob (chunk or tree) with this plaintext.
    pub fn blob_id(&self, plaintext: &[u8]) -> Id {
        match &self.id_key {
            Some(key) => Id(*blake3::keyed_hash(key, plaintext).as_bytes()),
            None => Id(*blake3::hash(plaintext).as_bytes()),
        }
    }

    pub fn gear(&self) -> &[u64; 256] {
        &self.gear
    }

    /// A hasher for file fingerprints (see `ops::create::fingerprint`).
    pub fn fingerprint_hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&self.fingerprint_key)
    }

    /// Seals `plaintext` with a fresh random nonce (or returns it as is when unencrypted).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        match self.cipher {
            Some(_) => Ok(self.seal_with_nonce(aad, &random_bytes()?, plaintext)),
            None => Ok(plaintext.to_vec()),
        }
    }

    /// Deterministic sealing, for test vectors. Callers must never reuse a nonce.
    pub fn seal_with_nonce(&self, aad: &[u8], nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
        let Some(cipher) = &self.cipher else { return plaintext.to_vec() };
        let nonce = XNonce::from(*nonce);
        // Built in place: nonce, then the plaintext encrypted where it lies, then the tag.
        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        // Encryption with a valid key cannot fail for messages below 256 GiB; a missing tag
        // here would be rejected by `open` rather than silently accepted.
        if let Ok(tag) = cipher.encrypt_inout_detached(&nonce, aad, (&mut out[NONCE_LEN..]).into()) {
            out.extend_from_slice(&tag);
        }
        out
    }

    /// Opens a sealed object. `kind`/`name` only label the error.
    pub fn open(&self, aad: &[u8], sealed: &[u8], kind: &'static str, name: &dyn Fn() -> String) -> Result<Vec<u8>> {
        let Some(cipher) = &self.cipher else { return Ok(sealed.to_vec()) };
        let (nonce, ct) = split_sealed(sealed, kind, name)?;
        cipher.decrypt(&nonce, Payload { msg: ct, aad }).map_err(|_| Error::Tampered { kind, name: name() })
    }

    /// Opens a sealed object where it lies (no copy): the plaintext is the returned part of
    /// `sealed`. On failure `sealed` holds no plaintext but is no longer the sealed object.
    pub fn open_in_place<'a>(
        &self,
        aad: &[u8],
        sealed: &'a mut [u8],
        kind: &'static str,
        name: &dyn Fn() -> String,
    ) -> Result<&'a [u8]> {
        let Some(cipher) = &self.cipher else { return Ok(sealed) };
        let (nonce, _) = split_sealed(sealed, kind, name)?;
        let body_len = sealed.len() - SEAL_OVERHEAD;
        let (body, tag) = sealed[NONCE_LEN..].split_at_mut(body_len);
        let tag = chacha20poly1305::Tag::try_from(&*tag).map_err(|_| Error::corrupt(kind, name(), "bad tag"))?;
        cipher
            .decrypt_inout_detached(&nonce, aad, (&mut *body).into(), &tag)
            .map_err(|_| Error::Tampered { kind, name: name() })?;
        Ok(body)
    }

    /// Bytes a sealed object of `plaintext_len` bytes occupies.
    pub fn sealed_len(&self, plaintext_len: usize) -> usize {
        plaintext_len + if self.is_encrypted() { SEAL_OVERHEAD } else { 0 }
    }
}

/// A sealed object's nonce and the rest (ciphertext and tag), once its length is plausible.
fn split_sealed<'a>(sealed: &'a [u8], kind: &'static str, name: &dyn Fn() -> String) -> Result<(XNonce, &'a [u8])> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(Error::corrupt(kind, name(), format!("{} bytes is too short for a sealed object", sealed.len())));
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let nonce = XNonce::try_from(nonce).map_err(|_| Error::corrupt(kind, name(), "bad nonce"))?;
    Ok((nonce, rest))
}

/// Associated data for a blob: its kind byte and id, so a blob cannot be swapped for another.
pub fn blob_aad(kind: u8, id: &Id) -> Vec<u8> {
    let mut aad = Vec::with_capacity(aad::BLOB.len() + 33);
    aad.extend_from_slice(aad::BLOB);
    aad.push(kind);
    aad.extend_from_slice(&id.0);
    aad
}

/// The FastCDC gear table: 256 little-endian u64 words from BLAKE3's extendable output keyed
/// with the gear key, so cut points depend on the secret and reveal nothing without it.
fn gear_table(master: &MasterKey) -> Box<[u64; 256]> {
    let key = blake3::derive_key(CONTEXT_GEAR, &master.0);
    let mut bytes = [0u8; 256 * 8];
    blake3::Hasher::new_keyed(&key).finalize_xof().fill(&mut bytes);
    let mut table = Box::new([0u64; 256]);
    for (word, chunk) in table.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *word = u64::from_le_bytes(b);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::encrypted(&MasterKey([7; 32]))
    }

    #[test]
    fn seal_open_round_trip_and_binds_aad() {
        let k = keys();
        let sealed = k.seal(aad::INDEX, b"hello").unwrap();
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(k.open(aad::INDEX, &sealed, "index", &|| "x".into()).unwrap(), b"hello");
        let wrong_kind = k.open(aad::SNAPSHOT, &sealed, "index", &|| "x".into());
        assert!(matches!(wrong_kind, Err(Error::Tampered { .. })));
        let mut flipped = sealed.clone();
        flipped[30] ^= 1;
        assert!(matches!(k.open(aad::INDEX, &flipped, "index", &|| "x".into()), Err(Error::Tampered { .. })));
        assert!(matches!(k.open(aad::INDEX, &sealed[..10], "index", &|| "x".into()), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn opening_in_place_agrees_with_opening_a_copy() {
        let k = keys();
        let sealed = k.seal(aad::BLOB, b"hello in place").unwrap();
        let mut buf = sealed.clone();
        assert_eq!(k.open_in_place(aad::BLOB, &mut buf, "blob", &|| "x".into()).unwrap(), b"hello in place");
        for at in [0, NONCE_LEN, sealed.len() - 1] {
            let mut flipped = sealed.clone();
            flipped[at] ^= 1;
            let opened = k.open_in_place(aad::BLOB, &mut flipped, "blob", &|| "x".into());
            assert!(matches!(opened, Err(Error::Tampered { .. })), "byte {at}");
        }
        let mut copy = sealed.clone();
        let opened = k.open_in_place(aad::INDEX, &mut copy, "blob", &|| "x".into());
        assert!(matches!(opened, Err(Error::Tampered { .. })));
        let mut short = sealed[..SEAL_OVERHEAD - 1].to_vec();
        let opened = k.open_in_place(aad::BLOB, &mut short, "blob", &|| "x".into());
        assert!(matches!(opened, Err(Error::Corrupt { .. })));
        let mut unsealed = b"as is".to_vec();
        let opened = Keys::unencrypted().open_in_place(aad::BLOB, &mut unsealed, "blob", &|| "x".into());
        assert_eq!(opened.unwrap(), b"as is");
    }

    #[test]
    fn other_master_key_cannot_open() {
        let sealed = keys().seal(aad::INDEX, b"hello").unwrap();
        let other = Keys::encrypted(&MasterKey([8; 32]));
        assert!(other.open(aad::INDEX, &sealed, "index", &|| "x".into()).is_err());
    }

    #[test]
    fn ids_are_keyed_only_when_encrypted() {
        assert_eq!(Keys::unencrypted().blob_id(b"abc"), Id::of_bytes(b"abc"));
        assert_ne!(keys().blob_id(b"abc"), Id::of_bytes(b"abc"));
        assert_ne!(keys().gear()[..], Keys::unencrypted().gear()[..]);
    }
}
