//! `snap repair index`: rebuild the index from the packs themselves.
//!
//! Packs are self-describing (each ends with its sealed header), so the index is derived data:
//! when index files are lost or damaged, reading every pack's header gives it back. Under an
//! exclusive lock, the new index files are written first and the old ones removed after, so a
//! kill at any moment leaves every pack listed at least once. In an append-only repository the
//! old index files stay (nothing is deleted); readers skip damaged ones and merge the rest.

use std::collections::HashSet;

use rayon::prelude::*;
use serde::Serialize;

use super::Progress;
use crate::error::Result;
use crate::format::index::PackContents;
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
