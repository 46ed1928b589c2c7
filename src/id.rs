//! 32-byte object identifiers: BLAKE3 outputs, shown as lowercase hex.
//!
//! Blob ids (chunks and trees) are keyed BLAKE3 of the plaintext in encrypted repositories and
//! plain BLAKE3 otherwise; file ids (packs, index files, snapshots, keys) are plain BLAKE3 of the
//! stored bytes, so anyone can verify a file against its name without a key.

use std::fmt;

pub const ID_LEN: usize = 32;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub [u8; ID_LEN]);

impl Id {
    /// Plain (unkeyed) BLAKE3 of `data`: the name of a repository file.
    pub fn of_bytes(data: &[u8]) -> Id {
        Id(*blake3::hash(data).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex digits, as shown in listings.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    pub fn from_hex(s: &str) -> Option<Id> {
        let mut out = [0u8; ID_LEN];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Id(out))
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Id> {
        Some(Id(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.short())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Id::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects_bad_input() {
        let id = Id::of_bytes(b"abc");
        assert_eq!(Id::from_hex(&id.to_hex()), Some(id));
        assert_eq!(Id::from_hex("zz"), None);
        assert_eq!(Id::from_hex(&id.to_hex()[..62]), None);
        assert_eq!(id.short().len(), 8);
    }
}
