//! Key slots: the master secret wrapped under a key derived from a password with Argon2id, or
//! from a 32-byte random secret kept in a file (which needs no stretching).
//!
//! A key file is JSON (see format-spec/keys.md). Its Argon2 parameters are read from disk, so
//! they are capped before use: a hostile key file cannot make snap allocate gigabytes or spin
//! for hours. The wrapping binds the repository id as associated data, so a key file copied from
//! another repository is recognised as such rather than taken for a wrong password.

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{MasterKey, NONCE_LEN, aad, random_bytes};
use crate::error::{Error, Result};
use crate::id::Id;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

pub const KEY_FILE_VERSION: u64 = 1;
/// Largest Argon2 memory cost accepted from a key file: 2 GiB.
pub const MAX_MEMORY_KIB: u32 = 2 * 1024 * 1024;
pub const MAX_ITERATIONS: u32 = 64;
pub const MAX_PARALLELISM: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// OWASP's recommended Argon2id configuration (19 MiB, 2 passes, 1 lane): ~14 ms and
    /// 19 MiB per attempt here. 64 MiB/t=3 costs ~110 ms and 64 MiB, which dominated the time
    /// and memory of every quick command; users who want more raise it per key
    /// (`--kdf-memory-kib`, `--kdf-iterations`).
    fn default() -> Self {
        KdfParams { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    pub version: u64,
    pub repository: String,
    pub created: String,
    pub hostname: String,
    pub username: String,
    pub kdf: String,
    pub kdf_params: KdfParams,
    pub salt: String,
    pub cipher: String,
    pub nonce: String,
    pub wrapped_key: String,
}

const KDF_NAME: &str = "argon2id-v19";
const KDF_SECRET: &str = "blake3-secret-v1";
const CIPHER_NAME: &str = "xchacha20poly1305";
const CONTEXT_SECRET_KEK: &str = "snap v1 key-file secret";

/// What opens a key slot.
pub enum Credential {
    /// A password, stretched with Argon2id.
    Password(Zeroizing<String>),
    /// 32 random bytes from a key file.
    Secret(Zeroizing<[u8; 32]>),
}

impl Credential {
    pub fn password(p: &str) -> Credential {
        Credential::Password(Zeroizing::new(p.to_string()))
    }

    /// Parses a key file: 64 hex digits (surrounding white space ignored).
    pub fn from_key_file_text(text: &str) -> Result<Credential> {
        let mut secret = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), secret.as_mut())
            .map_err(|_| Error::InvalidArgument("a key file holds 64 hex digits".into()))?;
        Ok(Credential::Secret(secret))
    }

    /// A new random secret, in the text form a key file holds.
    pub fn generate_key_file_text() -> Result<Zeroizing<String>> {
        let secret = Zeroizing::new(random_bytes::<32>()?);
        Ok(Zeroizing::new(format!("{}\n", hex::encode(secret.as_ref()))))
    }

    fn kdf_name(&self) -> &'static str {
        match self {
            Credential::Password(_) => KDF_NAME,
            Credential::Secret(_) => KDF_SECRET,
        }
    }
}

fn derive_kek(credential: &Credential, salt: &[u8], params: &KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    match credential {
        Credential::Password(p) => derive_password_kek(p.as_bytes(), salt, params),
        Credential::Secret(secret) => {
            let mut material = Zeroizing::new(secret.to_vec());
            material.extend_from_slice(salt);
            Ok(Zeroizing::new(blake3::derive_key(CONTEXT_SECRET_KEK, &material)))
        }
    }
}

fn derive_password_kek(password: &[u8], salt: &[u8], params: &KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    if params.memory_kib > MAX_MEMORY_KIB || params.iterations > MAX_ITERATIONS || params.parallelism > MAX_PARALLELISM
    {
        return Err(Error::corrupt("key", "", format!("Argon2 parameters {params:?} exceed the accepted maximum")));
    }
    let p = Params::new(params.memory_kib, params.iterations, params.parallelism, Some(32))
        .map_err(|e| Error::corrupt("key", "", format!("invalid Argon2 parameters: {e}")))?;
    let mut kek = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(password, salt, kek.as_mut())
        .map_err(|e| Error::corrupt("key", "", format!("Argon2 failed: {e}")))?;
    Ok(kek)
}

fn wrap_aad(repository: &Id) -> Vec<u8> {
    [aad::KEY, &repository.0[..]].concat()
}

impl KeyFile {
    /// Wraps `master` under `password`. `salt` and `nonce` are explicit for test vectors; use
    /// [`KeyFile::create`] otherwise.
    #[allow(clippy::too_many_arguments)]
    pub fn create_with(
        credential: &Credential,
        master: &MasterKey,
        repository: &Id,
        params: KdfParams,
        salt: [u8; 16],
        nonce: [u8; NONCE_LEN],
        created: String,
        hostname: String,
        username: String,
    ) -> Result<KeyFile> {
        if matches!(credential, Credential::Password(p) if p.is_empty()) {
            return Err(Error::EmptyPassword);
        }
        let params = match credential {
            Credential::Password(_) => params,
            Credential::Secret(_) => KdfParams { memory_kib: 0, iterations: 0, parallelism: 0 },
        };
        let kek = derive_kek(credential, &salt, &params)?;
        let cipher = XChaCha20Poly1305::new(&(*kek).into());
        let wrapped = cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: &master.0, aad: &wrap_aad(repository) })
            .map_err(|_| Error::corrupt("key", "", "key wrapping failed"))?;
        Ok(KeyFile {
            version: KEY_FILE_VERSION,
            repository: repository.to_hex(),
            created,
            hostname,
            username,
            kdf: credential.kdf_name().into(),
            kdf_params: params,
            salt: hex::encode(salt),
            cipher: CIPHER_NAME.into(),
            nonce: hex::encode(nonce),
            wrapped_key: hex::encode(wrapped),
        })
    }

    pub fn create(credential: &Credential, master: &MasterKey, repository: &Id, params: KdfParams) -> Result<KeyFile> {
        Self::create_with(
            credential,
            master,
            repository,
            params,
            random_bytes()?,
            random_bytes()?,
            crate::clock::now_rfc3339(),
            crate::clock::hostname(),
            crate::clock::username(),
        )
    }

    /// Decodes a stored key slot, whose name is the BLAKE3 hash of its bytes: a slot that
    /// does not match its name is damaged, which a wrong password alone could not tell.
    pub fn decode_slot(bytes: &[u8], name: &str) -> Result<KeyFile> {
        if crate::id::Id::of_bytes(bytes).to_hex() != name {
            return Err(Error::corrupt("key", name, "its bytes do not match its name"));
        }
        KeyFile::decode(bytes, name)
    }

    pub fn decode(bytes: &[u8], name: &str) -> Result<KeyFile> {
        let key: KeyFile = serde_json::from_slice(bytes).map_err(|e| Error::corrupt("key", name, e.to_string()))?;
        if key.version != KEY_FILE_VERSION {
            return Err(Error::UnsupportedVersion { found: key.version, supported: KEY_FILE_VERSION });
        }
        if (key.kdf != KDF_NAME && key.kdf != KDF_SECRET) || key.cipher != CIPHER_NAME {
            return Err(Error::corrupt("key", name, format!("unknown kdf {:?} or cipher {:?}", key.kdf, key.cipher)));
        }
        Ok(key)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// True if this slot is opened by a key file rather than a password.
    pub fn is_key_file_slot(&self) -> bool {
        self.kdf == KDF_SECRET
    }

    /// Unwraps the master secret. `Ok(None)` means the credential does not fit this slot
    /// (including a password offered to a key-file slot, or the other way round).
    pub fn unwrap_master(&self, credential: &Credential, repository: &Id, name: &str) -> Result<Option<MasterKey>> {
        let corrupt = |what: &str| Error::corrupt("key", name, what.to_string());
        if self.repository != repository.to_hex() {
            return Err(Error::ForeignKey {
                key: name.into(),
                found: self.repository.clone(),
                expected: repository.to_hex(),
            });
        }
        let salt = hex::decode(&self.salt).map_err(|_| corrupt("salt is not hex"))?;
        let nonce: [u8; NONCE_LEN] = hex::decode(&self.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| corrupt("nonce is not 24 hex bytes"))?;
        let wrapped = hex::decode(&self.wrapped_key).map_err(|_| corrupt("wrapped key is not hex"))?;
        if salt.len() < 8 || salt.len() > 64 || wrapped.len() != 48 {
            return Err(corrupt("salt or wrapped key has the wrong length"));
        }
        if credential.kdf_name() != self.kdf {
            return Ok(None);
        }
        let kek = derive_kek(credential, &salt, &self.kdf_params).map_err(|e| match e {
            Error::Corrupt { reason, .. } => corrupt(&reason),
            other => other,
        })?;
        let cipher = XChaCha20Poly1305::new(&(*kek).into());
        match cipher.decrypt(&XNonce::from(nonce), Payload { msg: &wrapped, aad: &wrap_aad(repository) }) {
            Ok(plain) => {
                let plain = Zeroizing::new(plain);
                let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| corrupt("master key length"))?;
                Ok(Some(MasterKey(bytes)))
            }
            Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 };

    #[test]
    fn wraps_and_unwraps() {
        let master = MasterKey([3; 32]);
        let repo = Id([1; 32]);
        let kf = KeyFile::create(&Credential::password("pw"), &master, &repo, FAST).unwrap();
        let decoded = KeyFile::decode(&kf.encode(), "k").unwrap();
        assert_eq!(decoded.unwrap_master(&Credential::password("pw"), &repo, "k").unwrap().unwrap().0, master.0);
        assert!(decoded.unwrap_master(&Credential::password("nope"), &repo, "k").unwrap().is_none());
        assert!(matches!(
            decoded.unwrap_master(&Credential::password("pw"), &Id([2; 32]), "k"),
            Err(Error::ForeignKey { .. })
        ));
    }

    #[test]
    fn key_file_secrets_open_only_their_own_slots() {
        let master = MasterKey([3; 32]);
        let repo = Id([1; 32]);
        let text = Credential::generate_key_file_text().unwrap();
        let secret = Credential::from_key_file_text(&text).unwrap();
        let slot = KeyFile::decode(&KeyFile::create(&secret, &master, &repo, FAST).unwrap().encode(), "k").unwrap();
        assert!(slot.is_key_file_slot());
        assert_eq!(slot.unwrap_master(&secret, &repo, "k").unwrap().unwrap().0, master.0);
        let other = Credential::from_key_file_text(&Credential::generate_key_file_text().unwrap()).unwrap();
        assert!(slot.unwrap_master(&other, &repo, "k").unwrap().is_none());
        assert!(slot.unwrap_master(&Credential::password(text.trim()), &repo, "k").unwrap().is_none());
        assert!(Credential::from_key_file_text("not hex").is_err());
    }

    #[test]
    fn refuses_empty_password_and_absurd_params() {
        let master = MasterKey([3; 32]);
        assert!(matches!(
            KeyFile::create(&Credential::password(""), &master, &Id([1; 32]), FAST),
            Err(Error::EmptyPassword)
        ));
        let mut kf = KeyFile::create(&Credential::password("pw"), &master, &Id([1; 32]), FAST).unwrap();
        kf.kdf_params.memory_kib = u32::MAX;
        assert!(matches!(kf.unwrap_master(&Credential::password("pw"), &Id([1; 32]), "k"), Err(Error::Corrupt { .. })));
    }
}
