//! Snapshot objects: JSON that names a root tree and says when, where and what was backed up.
//!
//! Invariant: a snapshot is written only after every pack and index file it depends on.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Id;

pub const SNAPSHOT_VERSION: u8 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unchanged: u64,
    pub dirs: u64,
    pub total_files: u64,
    pub total_bytes: u64,
    pub bytes_read: u64,
    /// Bytes of new blobs before compression and sealing.
    pub data_added: u64,
    /// Bytes the repository grew by (packs, index files and this snapshot excluded).
    pub data_added_stored: u64,
    pub blobs_added: u64,
    pub started: String,
    pub finished: String,
    pub duration_secs: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub path: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub time: String,
    pub hostname: String,
    pub username: String,
    /// Absolute source paths, in the order given.
    pub paths: Vec<String>,
    pub tags: Vec<String>,
    pub tree: Id,
    pub parent: Option<Id>,
    pub program: String,
    pub summary: Summary,
    pub skipped: Vec<Skipped>,
}

impl Snapshot {
    pub fn encode_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode_json(bytes: &[u8], name: &str) -> Result<Snapshot> {
        serde_json::from_slice(bytes).map_err(|e| Error::corrupt("snapshot", name, e.to_string()))
    }

    pub fn timestamp(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::parse_from_rfc3339(&self.time).ok().map(|t| t.with_timezone(&chrono::Utc))
    }
}
