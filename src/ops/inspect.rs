//! Read-only views: `ls`, `diff` and `stats`.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::walk::{display_name, files_by_path, walk};
use crate::error::{Error, Result};
use crate::format::pack::BlobKind;
use crate::format::tree::{Node, NodeContent};
use crate::id::Id;
use crate::repo::Repository;

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub mode: u32,
    pub size: u64,
    pub mtime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl Entry {
    pub fn of(path: &str, node: &Node) -> Entry {
        let mtime = chrono::DateTime::from_timestamp(node.mtime.secs, node.mtime.nanos)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let (kind, target) = match &node.content {
            NodeContent::File(_) => ("file", None),
            NodeContent::Dir { .. } => ("dir", None),
            NodeContent::Symlink { target } => ("symlink", Some(display_name(target))),
        };
        Entry { path: path.to_string(), kind, mode: node.mode, size: node.size(), mtime, target }
    }
}

/// Finds the tree of folder `path` (relative to the snapshot root; empty for the root).
fn subtree(repo: &Repository, root: &Id, path: &str) -> Result<(Id, Option<Node>)> {
    let mut tree = *root;
    let mut last = None;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        let nodes = repo.read_tree(&tree)?;
        let node = nodes
            .into_iter()
            .find(|n| n.name == part.as_bytes())
            .ok_or_else(|| Error::InvalidArgument(format!("{path}: not in the snapshot")))?;
        match node.content {
            NodeContent::Dir { subtree } => tree = subtree,
            _ => {
                last = Some(node);
                break;
            }
        }
    }
    Ok((tree, last))
}

/// Everything at and below `path` in a snapshot.
pub fn ls(repo: &Repository, root: &Id, path: &str) -> Result<Vec<Entry>> {
    let prefix = path.trim_matches('/');
    let (tree, file) = subtree(repo, root, prefix)?;
    if let Some(node) = file {
        return Ok(vec![Entry::of(prefix, &node)]);
    }
    let mut out = Vec::new();
    let mut failure = None;
    walk(
        repo,
        &tree,
        prefix,
        &mut |p, n| {
            out.push(Entry::of(p, n));
            true
        },
        &mut |p, _, e| {
            failure.get_or_insert(Error::corrupt("tree", p.to_string(), e.to_string()));
        },
    );
    match failure {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Diff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Content (or type, or link target) changed.
    pub modified: Vec<String>,
    /// Only metadata (mode, mtime, owner) changed.
    pub metadata: Vec<String>,
}

pub fn diff(repo: &Repository, a: &Id, b: &Id) -> Result<Diff> {
    let (old, e1) = files_by_path(repo, a);
    let (new, e2) = files_by_path(repo, b);
    if let Some((path, e)) = e1.into_iter().chain(e2).next() {
        return Err(Error::corrupt("tree", path, e.to_string()));
    }
    let old: BTreeMap<_, _> = old.into_iter().collect();
    let new: BTreeMap<_, _> = new.into_iter().collect();
    let mut d = Diff::default();
    for (path, n) in &new {
        match old.get(path) {
            None => d.added.push(path.clone()),
            Some(o) => {
                let same_content = match (&o.content, &n.content) {
                    (NodeContent::File(x), NodeContent::File(y)) => x.chunks == y.chunks && x.size == y.size,
                    (NodeContent::Dir { .. }, NodeContent::Dir { .. }) => true,
                    (NodeContent::Symlink { target: x }, NodeContent::Symlink { target: y }) => x == y,
                    _ => false,
                };
                if !same_content {
                    d.modified.push(path.clone());
                } else if (o.mode, o.mtime, o.uid, o.gid) != (n.mode, n.mtime, n.uid, n.gid)
                    && !matches!(n.content, NodeContent::Dir { .. })
                {
                    d.metadata.push(path.clone());
                }
            }
        }
    }
    d.removed = old.keys().filter(|p| !new.contains_key(*p)).cloned().collect();
    Ok(d)
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub snapshots: usize,
    /// Sum of the sizes of all files in all snapshots: what restoring every snapshot would write.
    pub logical_bytes: u64,
    /// Distinct data chunks and their plaintext size.
    pub unique_chunks: u64,
    pub unique_bytes: u64,
    /// Bytes those chunks take in packs (compressed and sealed).
    pub unique_stored_bytes: u64,
    pub tree_blobs: u64,
    pub packs: u64,
    /// All pack files on disk (includes headers and unreferenced blobs).
    pub pack_bytes: u64,
    pub dedup_ratio: f64,
    pub compression_ratio: f64,
}

pub fn stats(repo: &Repository, snapshots: &[(Id, crate::format::snapshot::Snapshot)]) -> Result<Stats> {
    let mut s = Stats { snapshots: snapshots.len(), ..Default::default() };
    let mut counted = HashSet::new();
    for (_, snap) in snapshots {
        s.logical_bytes = s.logical_bytes.saturating_add(snap.summary.total_bytes);
    }
    for pc in repo.index().by_pack() {
        for b in pc.blobs {
            if !counted.insert(b.id) {
                continue;
            }
            match b.kind {
                BlobKind::Data => {
                    s.unique_chunks += 1;
                    s.unique_bytes += u64::from(b.raw_len);
                    s.unique_stored_bytes += u64::from(b.stored_len);
                }
                BlobKind::Tree => s.tree_blobs += 1,
            }
        }
    }
    let sizes = repo.pack_sizes()?;
    s.packs = sizes.len() as u64;
    s.pack_bytes = sizes.values().sum();
    s.dedup_ratio = if s.unique_bytes > 0 { s.logical_bytes as f64 / s.unique_bytes as f64 } else { 1.0 };
    s.compression_ratio =
        if s.unique_stored_bytes > 0 { s.unique_bytes as f64 / s.unique_stored_bytes as f64 } else { 1.0 };
    Ok(s)
}
