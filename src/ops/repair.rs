//! `snap repair index`: rebuild the index from the packs themselves; `snap repair snapshots`:
//! drop from snapshots what can no longer be restored, keeping the rest.
//!
//! Packs are self-describing (each ends with its sealed header), so the index is derived data:
//! when index files are lost or damaged, reading every pack's header gives it back. Under an
//! exclusive lock, the new index files are written first and the old ones removed after, so a
//! kill at any moment leaves every pack listed at least once. In an append-only repository the
//! old index files stay (nothing is deleted); readers skip damaged ones and merge the rest.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

use super::Progress;
use crate::error::Result;
use crate::format::index::PackContents;
use crate::format::tree::NodeContent;
use crate::id::Id;
use crate::repo::Repository;
use crate::store::FileKind;

#[derive(Debug, Default, Clone, Serialize)]
pub struct RepairIndexReport {
    pub packs: usize,
    pub blobs: usize,
    /// Packs whose header could not be read, with the reason: their data is lost to the index.
    pub unreadable_packs: Vec<(String, String)>,
    /// Packs the old index did not list (now listed).
    pub packs_added: usize,
    /// Packs the old index listed that no longer exist.
    pub packs_missing: usize,
    pub index_files_written: usize,
    pub index_files_removed: usize,
    pub dry_run: bool,
}

pub fn index(
    repo: &mut Repository,
    dry_run: bool,
    retry_lock: std::time::Duration,
    progress: &dyn Progress,
) -> Result<RepairIndexReport> {
    let _lock = if dry_run { None } else { Some(crate::lock::acquire(repo, true, "repair index", retry_lock)?) };
    // The old index may be partly unreadable: that is why we are here.
    let _ = repo.load_index();
    let listed: HashSet<Id> = repo.index().packs().iter().copied().collect();
    let sizes = repo.pack_sizes()?;
    progress.start(sizes.len() as u64, 0);
    let repo_ref = &*repo;
    let headers: Vec<(Id, std::result::Result<PackContents, String>)> = super::with_read_threads(repo_ref, || {
        sizes
            .par_iter()
            .map(|(&pack, &size)| {
                let result = repo_ref
                    .read_pack_header(&pack.to_hex(), size)
                    .map(|blobs| PackContents { pack, blobs })
                    .map_err(|e| e.to_string());
                progress.item_done();
                (pack, result)
            })
            .collect()
    });
    let mut report = RepairIndexReport { dry_run, ..Default::default() };
    let mut packs = Vec::new();
    for (pack, result) in headers {
        match result {
            Ok(contents) => {
                report.blobs += contents.blobs.len();
                report.packs_added += usize::from(!listed.contains(&pack));
                packs.push(contents);
            }
            Err(reason) => {
                progress.warn(&format!("pack {pack}: {reason}"));
                report.unreadable_packs.push((pack.to_hex(), reason));
            }
        }
    }
    report.packs = packs.len();
    report.packs_missing = listed.iter().filter(|p| !sizes.contains_key(p)).count();
    let old: Vec<String> = if repo.config().append_only {
        Vec::new()
    } else {
        repo.backend().list(FileKind::Index)?.into_iter().map(|(n, _)| n).collect()
    };
    report.index_files_removed = old.len();
    if dry_run {
        return Ok(report);
    }
    report.index_files_written = repo.replace_index(packs, &old)?;
    repo.load_index()?;
    Ok(report)
}

/// What `repair snapshots` did (or would do) to one snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct RepairedSnapshot {
    pub id: String,
    /// The replacement, when the snapshot needed one (and this was not a dry run).
    pub new_id: Option<String>,
    /// Paths dropped from the snapshot, each with the reason.
    pub dropped: Vec<(String, String)>,
}

/// Rewrites every snapshot that needs data the repository no longer has: files with a chunk
/// that is not indexed or whose pack is gone (or, with `read_data`, whose bytes do not verify)
/// and folders whose tree cannot be read are dropped; everything else is kept as it was. The
/// new snapshot is saved before the old one is removed (never, in an append-only repository).
pub fn snapshots(
    repo: &Repository,
    dry_run: bool,
    read_data: bool,
    retry_lock: std::time::Duration,
) -> Result<Vec<RepairedSnapshot>> {
    let _lock = if dry_run { None } else { Some(crate::lock::acquire(repo, true, "repair snapshots", retry_lock)?) };
    let packs = repo.pack_sizes()?;
    let packer = crate::packer::Packer::new(repo, crate::compress::DEFAULT_LEVEL);
    let mut out = Vec::new();
    let (listed, _unreadable) = repo.snapshots()?;
    for (id, snapshot) in listed {
        let mut fixer = Fixer {
            repo,
            packs: &packs,
            read_data,
            dry_run,
            packer: &packer,
            dropped: Vec::new(),
            memo: HashMap::new(),
        };
        let tree = fixer.tree(&snapshot.tree, "");
        let dropped = std::mem::take(&mut fixer.dropped);
        if dropped.is_empty() {
            continue;
        }
        let mut new_id = None;
        if !dry_run {
            // A root that cannot be read leaves an empty snapshot, which still records that it existed.
            let root = match tree {
                Some(root) => root,
                None => fixer.store_tree(Vec::new())?,
            };
            packer.finish()?;
            let mut tags = snapshot.tags.clone();
            tags.push("repaired".into());
            let repaired = crate::format::snapshot::Snapshot { tree: root, tags, ..snapshot };
            let saved = repo.save_snapshot(&repaired)?;
            if !repo.config().append_only {
                repo.backend().remove(FileKind::Snapshot, &id.to_hex())?;
            }
            new_id = Some(saved.to_hex());
        }
        out.push(RepairedSnapshot { id: id.to_hex(), new_id, dropped });
    }
    Ok(out)
}

struct Fixer<'a> {
    repo: &'a Repository,
    packs: &'a HashMap<Id, u64>,
    read_data: bool,
    dry_run: bool,
    packer: &'a crate::packer::Packer<'a>,
    dropped: Vec<(String, String)>,
    /// Trees already repaired in this snapshot: shared folders are checked once.
    memo: HashMap<Id, Option<Id>>,
}

impl Fixer<'_> {
    /// The repaired version of `tree` (the same id when nothing below it is damaged), or
    /// `None` when the tree itself cannot be read.
    fn tree(&mut self, tree: &Id, path: &str) -> Option<Id> {
        if let Some(done) = self.memo.get(tree) {
            return *done;
        }
        let nodes = match self.repo.read_tree(tree) {
            Ok(nodes) => nodes,
            Err(e) => {
                self.dropped
                    .push((if path.is_empty() { "/".into() } else { path.into() }, format!("folder unreadable: {e}")));
                self.memo.insert(*tree, None);
                return None;
            }
        };
        let mut changed = false;
        let mut kept = Vec::with_capacity(nodes.len());
        for mut node in nodes {
            let child = super::walk::join(path, &super::walk::display_name(&node.name));
            match &mut node.content {
                NodeContent::Dir { subtree } => match self.tree(subtree, &child) {
                    Some(new) => {
                        changed |= new != *subtree;
                        *subtree = new;
                    }
                    None => {
                        changed = true;
                        continue;
                    }
                },
                NodeContent::File(content) => {
                    if let Some(reason) = content.chunks.iter().find_map(|c| self.chunk_problem(c)) {
                        self.dropped.push((child, reason));
                        changed = true;
                        continue;
                    }
                }
                NodeContent::Symlink { .. } => {}
            }
            kept.push(node);
        }
        let result = if !changed || self.dry_run { Some(*tree) } else { self.store_tree(kept).ok() };
        self.memo.insert(*tree, result);
        result
    }

    fn chunk_problem(&self, chunk: &Id) -> Option<String> {
        let Some(loc) = self.repo.index().lookup(chunk) else {
            return Some(format!("chunk {} is not indexed", chunk.short()));
        };
        if !self.packs.contains_key(&loc.pack) {
            return Some(format!("pack {} is missing", loc.pack.short()));
        }
        if self.read_data
            && let Err(e) = self.repo.read_blob(chunk)
        {
            return Some(e.to_string());
        }
        None
    }

    fn store_tree(&self, nodes: Vec<crate::format::tree::Node>) -> Result<Id> {
        let bytes = crate::format::tree::encode(&nodes);
        let id = self.repo.keys().blob_id(&bytes);
        self.packer.add(crate::format::pack::BlobKind::Tree, id, &bytes)?;
        Ok(id)
    }
}
