//! `snap prune`: remove data that no snapshot references.
//!
//! Under an exclusive lock (no backup can be running): find every blob the snapshots use;
//! delete packs none of whose blobs is used; repack packs whose unused share is above the
//! threshold (their used blobs are copied, still sealed, into new packs); write one new index
//! for everything kept; then remove the old index files, and only then the packs. At every
//! instant each snapshot's data is in a pack that some index file lists, so a kill at any
//! moment loses nothing: what it leaves (duplicate index entries, unindexed packs) the next
//! prune removes. A repository whose snapshots or trees cannot all be read is not pruned.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::Progress;
use super::walk::walk;
use crate::error::{Error, Result};
use crate::format::index::PackContents;
use crate::format::tree::NodeContent;
use crate::id::Id;
use crate::packer::Packer;
use crate::repo::Repository;
use crate::store::FileKind;

#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Repack a pack when at least this share of its bytes is unused (0.0 to 1.0).
    pub repack_threshold: f64,
    pub dry_run: bool,
    pub retry_lock: std::time::Duration,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions { repack_threshold: 0.2, dry_run: false, retry_lock: std::time::Duration::ZERO }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct PruneReport {
    pub snapshots: usize,
    pub blobs_used: usize,
    pub packs_kept: usize,
    pub packs_deleted: usize,
    pub packs_repacked: usize,
    pub unindexed_packs_deleted: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Bytes freed (for a dry run: that would be freed).
    pub bytes_freed: u64,
    pub dry_run: bool,
}

/// Every blob (trees and chunks) the snapshots reference. Fails if anything cannot be read:
/// pruning on a partial view could delete live data.
pub fn used_blobs(repo: &Repository) -> Result<(HashSet<Id>, usize)> {
    let (snapshots, unreadable) = repo.snapshots()?;
    if let Some((name, e)) = unreadable.into_iter().next() {
        return Err(Error::InvalidArgument(format!(
            "snapshot {name} cannot be read ({e}): run `snap check` before pruning"
        )));
    }
    let mut used = HashSet::new();
    let mut failure = None;
    for (_, s) in &snapshots {
        collect_blobs(repo, &s.tree, &mut used, &mut |path, id, e| {
            failure.get_or_insert(format!("tree {id} at {path:?} cannot be read ({e})"));
        });
    }
    if let Some(f) = failure {
        return Err(Error::InvalidArgument(format!("{f}: run `snap check` before pruning")));
    }
    Ok((used, snapshots.len()))
}

/// Adds every blob `tree` needs (its trees and its files' chunks) to `into`. A folder already in
/// `into` is not walked again; unreadable trees go to `on_error`.
fn collect_blobs(repo: &Repository, tree: &Id, into: &mut HashSet<Id>, on_error: &mut dyn FnMut(&str, &Id, Error)) {
    into.insert(*tree);
    walk(
        repo,
        tree,
        "",
        &mut |_, node| match &node.content {
            NodeContent::File(f) => {
                into.extend(f.chunks.iter().copied());
                true
            }
            NodeContent::Dir { subtree } => into.insert(*subtree),
            NodeContent::Symlink { .. } => true,
        },
        on_error,
    );
}

pub fn run(repo: &mut Repository, options: &PruneOptions, progress: &dyn Progress) -> Result<PruneReport> {
    if repo.config().append_only && !options.dry_run {
        return Err(Error::AppendOnly("prune"));
    }
    let lock = crate::lock::acquire(repo, true, "prune", options.retry_lock)?;
    let load = repo.load_index()?;
    if let Some((name, e)) = load.damaged.into_iter().next() {
        return Err(Error::InvalidArgument(format!(
            "index file {name} cannot be read ({e}): run `snap check` before pruning"
        )));
    }
    let repo = &*repo;
    let (used, snapshots) = used_blobs(repo)?;
    let sizes = repo.pack_sizes()?;
    let packs = repo.index().by_pack();
    let indexed: HashSet<Id> = packs.iter().map(|p| p.pack).collect();
    let unindexed: Vec<Id> = sizes.keys().filter(|p| !indexed.contains(p)).copied().collect();

    let mut report = PruneReport { snapshots, blobs_used: used.len(), dry_run: options.dry_run, ..Default::default() };
    report.bytes_before = sizes.values().sum();
    // A blob counts as used only in the pack the index resolves it to; other copies are waste.
    let live = |pack: &Id, id: &Id| used.contains(id) && repo.index().lookup(id).is_some_and(|l| l.pack == *pack);
    let mut keep = Vec::new();
    let mut repack = Vec::new();
    let mut delete = Vec::new();
    for pc in packs {
        let total: u64 = pc.blobs.iter().map(|b| u64::from(b.stored_len)).sum();
        let live_bytes: u64 = pc.blobs.iter().filter(|b| live(&pc.pack, &b.id)).map(|b| u64::from(b.stored_len)).sum();
        if live_bytes == 0 {
            delete.push(pc);
        } else if total > 0
            && (total - live_bytes) as f64 >= options.repack_threshold * total as f64
            && live_bytes < total
        {
            repack.push(pc);
        } else {
            keep.push(pc);
        }
    }
    report.packs_kept = keep.len();
    report.packs_deleted = delete.len();
    report.packs_repacked = repack.len();
    report.unindexed_packs_deleted = unindexed.len();
    let size_of = |p: &Id| sizes.get(p).copied().unwrap_or(0);
    let removed: u64 = delete.iter().chain(&repack).map(|p| size_of(&p.pack)).sum::<u64>()
        + unindexed.iter().map(size_of).sum::<u64>();
    let rewritten: u64 = repack
        .iter()
        .flat_map(|p| p.blobs.iter().filter(|b| live(&p.pack, &b.id)))
        .map(|b| u64::from(b.stored_len))
        .sum();
    if options.dry_run {
        report.bytes_freed = removed.saturating_sub(rewritten);
        report.bytes_after = report.bytes_before - report.bytes_freed;
        return Ok(report);
    }

    // 1. Copy the live blobs of packs being repacked into new packs.
    let packer = Packer::without_index(repo, crate::compress::DEFAULT_LEVEL);
    progress.start(repack.len() as u64, repack.iter().map(|p| size_of(&p.pack)).sum());
    for pc in &repack {
        for b in pc.blobs.iter().filter(|b| live(&pc.pack, &b.id)) {
            let stored = repo.backend().read_range(
                FileKind::Pack,
                &pc.pack.to_hex(),
                u64::from(b.offset),
                u64::from(b.stored_len),
            )?;
            repo.decode_blob(b, &stored)?; // never copy damage forward
            packer.add_stored(b, &stored)?;
        }
        progress.advance(size_of(&pc.pack));
        progress.item_done();
    }
    packer.finish()?;

    // A backup that started while our lock had lapsed may rely on data we are about to remove
    // or on an index file it just wrote: then delete nothing (the copies above are harmless).
    if lock.was_ever_stale() {
        return Err(Error::LockLapsed("prune"));
    }

    // 2. One new index for everything that stays.
    let old_index_files: Vec<String> = repo.backend().list(FileKind::Index)?.into_iter().map(|(n, _)| n).collect();
    let mut all: Vec<PackContents> = keep;
    all.extend(packer.written());
    // 3. Then the old index files go, 4. then the packs nothing lists any more.
    repo.replace_index(all, &old_index_files)?;
    for pack in delete.iter().chain(&repack).map(|p| p.pack).chain(unindexed) {
        repo.backend().remove(FileKind::Pack, &pack.to_hex())?;
    }
    // No writer runs (we hold the exclusive lock): scratch files are leftovers.
    repo.backend().clean_scratch()?;
    report.bytes_after = repo.pack_sizes()?.values().sum();
    report.bytes_freed = report.bytes_before.saturating_sub(report.bytes_after);
    Ok(report)
}

/// For each snapshot, the stored bytes that only it references: what removing it (and
/// pruning) would free.
pub fn exclusive_bytes(repo: &Repository, snapshots: &[(Id, crate::format::snapshot::Snapshot)]) -> HashMap<Id, u64> {
    let mut owners: HashMap<Id, (Id, u32)> = HashMap::new();
    for (sid, s) in snapshots {
        let mut mine = HashSet::new();
        collect_blobs(repo, &s.tree, &mut mine, &mut |_, _, _| {});
        for blob in mine {
            let entry = owners.entry(blob).or_insert((*sid, 0));
            entry.1 += 1;
        }
    }
    let mut freed: HashMap<Id, u64> = snapshots.iter().map(|(id, _)| (*id, 0)).collect();
    for (blob, (owner, count)) in owners {
        if count == 1
            && let Some(loc) = repo.index().lookup(&blob)
        {
            *freed.entry(owner).or_default() += u64::from(loc.entry.stored_len);
        }
    }
    freed
}
