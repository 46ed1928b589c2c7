//! The repository config: the one plaintext JSON file that tells a reader how to read the rest.
//!
//! Invariant: written once by `init`; a reader refuses a `version` it does not know before it
//! looks at anything else.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const REPOSITORY_VERSION: u64 = 1;
pub const FORMAT_NAME: &str = "snap-repository";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encryption {
    None,
    #[serde(rename = "xchacha20poly1305-blake3")]
    XChaCha20Poly1305Blake3,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub format: String,
    pub version: u64,
    /// 32 random bytes, hex: binds key files to this repository.
    pub id: String,
    pub encryption: Encryption,
    /// Named chunker parameter set (format-spec/chunking.md).
    pub chunker: String,
    /// Packs are closed once they reach this many bytes.
    pub pack_size: u64,
    pub created: String,
    /// When true, snap refuses every command that deletes (format-spec/README.md).
    #[serde(default)]
    pub append_only: bool,
}

pub const CHUNKER_V1: &str = "fastcdc2020-snap-v1";
pub const DEFAULT_PACK_SIZE: u64 = 32 << 20;

impl Config {
    pub fn decode(bytes: &[u8]) -> Result<Config> {
        // Read the version first, with a lenient parse, so that a newer config whose other
        // fields changed still yields "unsupported version" rather than a parse error.
        #[derive(Deserialize)]
        struct Probe {
            format: Option<String>,
            version: Option<u64>,
        }
        let probe: Probe =
            serde_json::from_slice(bytes).map_err(|e| Error::corrupt("config", "config", e.to_string()))?;
        if probe.format.as_deref() != Some(FORMAT_NAME) {
            return Err(Error::corrupt("config", "config", "not a snap repository config"));
        }
        match probe.version {
            Some(REPOSITORY_VERSION) => {}
            Some(found) => return Err(Error::UnsupportedVersion { found, supported: REPOSITORY_VERSION }),
            None => return Err(Error::corrupt("config", "config", "no version")),
        }
        let config: Config =
            serde_json::from_slice(bytes).map_err(|e| Error::corrupt("config", "config", e.to_string()))?;
        if config.chunker != CHUNKER_V1 {
            return Err(Error::corrupt("config", "config", format!("unknown chunker {:?}", config.chunker)));
        }
        if !(1 << 20..=1 << 30).contains(&config.pack_size) {
            return Err(Error::corrupt("config", "config", format!("pack_size {} out of range", config.pack_size)));
        }
        Ok(config)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    pub fn repository_id(&self) -> Result<crate::id::Id> {
        crate::id::Id::from_hex(&self.id).ok_or_else(|| Error::corrupt("config", "config", "id is not 32 hex bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        Config {
            format: FORMAT_NAME.into(),
            version: 1,
            id: "00".repeat(32),
            encryption: Encryption::None,
            chunker: CHUNKER_V1.into(),
            pack_size: DEFAULT_PACK_SIZE,
            created: "2026-01-01T00:00:00Z".into(),
            append_only: false,
        }
    }

    #[test]
    fn round_trip_and_version_gate() {
        let c = sample();
        assert_eq!(Config::decode(&c.encode()).unwrap(), c);
        let newer = String::from_utf8(c.encode()).unwrap().replace("\"version\": 1", "\"version\": 2");
        assert!(matches!(Config::decode(newer.as_bytes()), Err(Error::UnsupportedVersion { found: 2, .. })));
        assert!(Config::decode(b"{}").is_err());
        assert!(Config::decode(b"\xff").is_err());
    }
}
