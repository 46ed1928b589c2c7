//! Tree objects: one per directory, stored as blobs, named by their content.
//!
//! A directory whose entries and their metadata are unchanged encodes to the same bytes and so
//! to the same id: an unchanged folder costs nothing in the next snapshot. The decoder accepts
//! any names (it must be able to read damaged or hostile trees); restore is the place that
//! refuses names with `/`, NUL, `.` or `..`.

use super::wire::{Reader, WireError, WireResult, put_bytes, put_signed, put_varint};
use crate::id::{ID_LEN, Id};

pub const TREE_VERSION: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    pub size: u64,
    /// Inode and ctime of the source file: change detection only, never restored.
    pub inode: u64,
    pub ctime: Timestamp,
    /// Keyed BLAKE3 over the size and the file's first and last 64 KiB (format-spec/trees.md):
    /// lets `create` recognise a moved or re-copied file without reading it whole.
    pub fingerprint: [u8; 32],
    pub chunks: Vec<Id>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeContent {
    File(FileContent),
    Dir { subtree: Id },
    Symlink { target: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: Vec<u8>,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub mtime: Timestamp,
    pub uid: u32,
    pub gid: u32,
    pub content: NodeContent,
}

impl Node {
    pub fn size(&self) -> u64 {
        match &self.content {
            NodeContent::File(f) => f.size,
            _ => 0,
        }
    }

    pub fn type_char(&self) -> char {
        match self.content {
            NodeContent::File(_) => '-',
            NodeContent::Dir { .. } => 'd',
            NodeContent::Symlink { .. } => 'l',
        }
    }
}

const TYPE_FILE: u8 = 1;
const TYPE_DIR: u8 = 2;
const TYPE_SYMLINK: u8 = 3;

fn put_time(out: &mut Vec<u8>, t: Timestamp) {
    put_signed(out, t.secs);
    put_varint(out, u64::from(t.nanos));
}

fn read_time(r: &mut Reader, what: &str) -> WireResult<Timestamp> {
    let secs = r.signed(what)?;
    let nanos = r.bounded(999_999_999, what)? as u32;
    Ok(Timestamp { secs, nanos })
}

/// Encodes nodes, which the caller has sorted by name.
pub fn encode(nodes: &[Node]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + nodes.len() * 128);
    out.push(TREE_VERSION);
    put_varint(&mut out, nodes.len() as u64);
    for n in nodes {
        put_bytes(&mut out, &n.name);
        out.push(match n.content {
            NodeContent::File(_) => TYPE_FILE,
            NodeContent::Dir { .. } => TYPE_DIR,
            NodeContent::Symlink { .. } => TYPE_SYMLINK,
        });
        put_varint(&mut out, u64::from(n.mode));
        put_time(&mut out, n.mtime);
        put_varint(&mut out, u64::from(n.uid));
        put_varint(&mut out, u64::from(n.gid));
        match &n.content {
            NodeContent::File(f) => {
                put_varint(&mut out, f.size);
                put_varint(&mut out, f.inode);
                put_time(&mut out, f.ctime);
                out.extend_from_slice(&f.fingerprint);
                put_varint(&mut out, f.chunks.len() as u64);
                for c in &f.chunks {
                    out.extend_from_slice(&c.0);
                }
            }
            NodeContent::Dir { subtree } => out.extend_from_slice(&subtree.0),
            NodeContent::Symlink { target } => put_bytes(&mut out, target),
        }
    }
    out
}

pub fn decode(data: &[u8]) -> WireResult<Vec<Node>> {
    let mut r = Reader::new(data);
    let version = r.u8("tree version")?;
    if version != TREE_VERSION {
        return Err(WireError(format!("unknown tree version {version}")));
    }
    // The smallest node is 9 bytes: empty name, type, mode, 2-byte mtime, uid, gid, empty target.
    let count = r.count(9, "node count")?;
    let mut nodes = Vec::with_capacity(count);
    for _ in 0..count {
        let name = r.bytes("name")?.to_vec();
        let node_type = r.u8("node type")?;
        let mode = r.bounded(0o7777, "mode")? as u32;
        let mtime = read_time(&mut r, "mtime")?;
        let uid = r.bounded(u64::from(u32::MAX), "uid")? as u32;
        let gid = r.bounded(u64::from(u32::MAX), "gid")? as u32;
        let content = match node_type {
            TYPE_FILE => {
                let size = r.varint("size")?;
                let inode = r.varint("inode")?;
                let ctime = read_time(&mut r, "ctime")?;
                let mut fingerprint = [0u8; 32];
                fingerprint.copy_from_slice(r.take(32, "fingerprint")?);
                let n = r.count(ID_LEN, "chunk count")?;
                let mut chunks = Vec::with_capacity(n);
                for _ in 0..n {
                    chunks.push(r.id("chunk id")?);
                }
                NodeContent::File(FileContent { size, inode, ctime, fingerprint, chunks })
            }
            TYPE_DIR => NodeContent::Dir { subtree: r.id("subtree id")? },
            TYPE_SYMLINK => NodeContent::Symlink { target: r.bytes("symlink target")?.to_vec() },
            other => return Err(WireError(format!("unknown node type {other}"))),
        };
        nodes.push(Node { name, mode, mtime, uid, gid, content });
    }
    r.finish("tree")?;
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_node() -> impl Strategy<Value = Node> {
        let content = prop_oneof![
            (
                any::<u64>(),
                any::<u64>(),
                any::<i64>(),
                0u32..1_000_000_000,
                any::<[u8; 32]>(),
                prop::collection::vec(any::<[u8; 32]>(), 0..4)
            )
                .prop_map(|(size, inode, s, n, fingerprint, chunks)| NodeContent::File(FileContent {
                    size,
                    inode,
                    ctime: Timestamp { secs: s, nanos: n },
                    fingerprint,
                    chunks: chunks.into_iter().map(Id).collect(),
                })),
            any::<[u8; 32]>().prop_map(|b| NodeContent::Dir { subtree: Id(b) }),
            prop::collection::vec(any::<u8>(), 0..40).prop_map(|target| NodeContent::Symlink { target }),
        ];
        (
            prop::collection::vec(any::<u8>(), 0..40),
            0u32..0o7777,
            any::<i64>(),
            0u32..1_000_000_000,
            any::<u32>(),
            any::<u32>(),
            content,
        )
            .prop_map(|(name, mode, secs, nanos, uid, gid, content)| Node {
                name,
                mode,
                mtime: Timestamp { secs, nanos },
                uid,
                gid,
                content,
            })
    }

    proptest! {
        #[test]
        fn round_trip(nodes in prop::collection::vec(arb_node(), 0..8)) {
            prop_assert_eq!(decode(&encode(&nodes)).unwrap(), nodes);
        }

        #[test]
        fn decode_never_panics(data: Vec<u8>) {
            let _ = decode(&data);
        }
    }

    #[test]
    fn rejects_truncation() {
        let node = Node {
            name: b"a".to_vec(),
            mode: 0o644,
            mtime: Timestamp::default(),
            uid: 0,
            gid: 0,
            content: NodeContent::Symlink { target: b"x".to_vec() },
        };
        let bytes = encode(&[node]);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
    }
}
