//! `snap check`: audit a repository's structure and, optionally, every stored byte.
//!
//! Structure: every index file decodes; every pack an index names exists and is large enough;
//! every snapshot decodes and all its trees load; every chunk a file needs is indexed.
//! `read_data`: every pack (or a random share) is read whole, hashed against its name, its
//! header compared with the index, and every blob opened, decompressed and re-hashed.
//! Each damaged object is reported with the snapshots and paths that depend on it.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use super::Progress;
use super::walk::walk;
use crate::error::Error;
use crate::format::index::PackContents;
use crate::format::pack::TRAILER_LEN;
use crate::format::tree::NodeContent;
use crate::id::Id;
use crate::repo::Repository;
use crate::store::FileKind;

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub retry_lock: std::time::Duration,
    pub read_data: bool,
    /// Share of packs to read (0 < share <= 1); `None` reads all when `read_data`.
    pub subset: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The damaged object, e.g. "pack 3f2a…" or "index file 91be…".
    pub object: String,
    pub problem: String,
    /// "snapshot-short-id:path" of files and folders that depend on it.
    pub affected: Vec<String>,
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
    /// Things that are not damage (for example unindexed packs an interrupted backup left).
    pub notes: Vec<String>,
    /// Packs no index file names: an interrupted backup's, or a lost index file's.
    pub unindexed_packs: usize,
    pub snapshots: usize,
    pub trees: usize,
    pub packs: usize,
    pub packs_read: usize,
    pub blobs_read: usize,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

fn problem(object: String, problem: impl ToString) -> Problem {
    Problem { object, problem: problem.to_string(), affected: Vec::new() }
}

pub fn run(
    repo: &mut Repository,
    options: &CheckOptions,
    progress: &dyn Progress,
) -> crate::error::Result<CheckReport> {
    let _lock = crate::lock::acquire_for_reading(repo, "check", options.retry_lock)?;
    let mut report = CheckReport::default();
    let load = repo.load_index()?;
    for (name, e) in load.damaged {
        report.problems.push(problem(format!("index file {name}"), e));
    }
    let repo = &*repo;

    // Blobs that are damaged or unreachable, with the problem each belongs to.
    let mut bad_blobs: HashMap<Id, usize> = HashMap::new();
    let pack_sizes = repo.pack_sizes()?;
    let indexed = repo.index().by_pack();
    report.packs = pack_sizes.len();
    let indexed_ids: HashSet<Id> = indexed.iter().map(|p| p.pack).collect();
    for pc in &indexed {
        let end = pc.blobs.iter().map(|b| u64::from(b.offset) + u64::from(b.stored_len)).max().unwrap_or(0);
        let issue = match pack_sizes.get(&pc.pack) {
            None => Some("missing: the index lists it but it is not in the repository".to_string()),
            Some(&size) if size < end + TRAILER_LEN as u64 => {
                Some(format!("truncated: {size} bytes, the index needs at least {}", end + 8))
            }
            _ => None,
        };
        if let Some(issue) = issue {
            report.problems.push(problem(format!("pack {}", pc.pack), issue));
            for b in &pc.blobs {
                bad_blobs.insert(b.id, report.problems.len() - 1);
            }
        }
    }
    for id in pack_sizes.keys().filter(|id| !indexed_ids.contains(id)) {
        report
            .notes
            .push(format!("pack {id} is not in any index (left by an interrupted backup, or its index file was lost)"));
        report.unindexed_packs += 1;
    }

    if options.read_data {
        let chosen = choose_packs(&indexed, options.subset);
        let total: u64 = chosen.iter().filter_map(|p| pack_sizes.get(&p.pack)).sum();
        progress.start(chosen.len() as u64, total);
        let results: Vec<PackReading> = chosen
            .par_iter()
            .filter(|pc| pack_sizes.contains_key(&pc.pack))
            .map(|pc| {
                let size = pack_sizes.get(&pc.pack).copied().unwrap_or(0);
                let (issues, blobs) = read_pack(repo, pc, size);
                progress.advance(pack_sizes.get(&pc.pack).copied().unwrap_or(0));
                progress.item_done();
                (pc.pack, issues, blobs)
            })
            .collect();
        report.packs_read = results.len();
        for (pack, issues, blobs) in results {
            report.blobs_read += blobs;
            for (blob, issue) in issues {
                let object = match blob {
                    Some(id) => format!("blob {id} in pack {}", pack.short()),
                    None => format!("pack {pack}"),
                };
                report.problems.push(problem(object, issue));
                let at = report.problems.len() - 1;
                match blob {
                    Some(id) => {
                        bad_blobs.insert(id, at);
                    }
                    None => {
                        for b in indexed.iter().filter(|p| p.pack == pack).flat_map(|p| &p.blobs) {
                            bad_blobs.entry(b.id).or_insert(at);
                        }
                    }
                }
            }
        }
    }

    // Snapshots and trees; and who depends on what is damaged.
    let (snapshots, unreadable) = repo.snapshots()?;
    for (name, e) in unreadable {
        report.problems.push(problem(format!("snapshot {name}"), e));
    }
    report.snapshots = snapshots.len();
    let mut trees_seen = HashSet::new();
    for (sid, snapshot) in &snapshots {
        let mut missing: Vec<(String, Id)> = Vec::new();
        let mut broken_trees: Vec<(String, Id, Error)> = Vec::new();
        let mut affected: Vec<(usize, String)> = Vec::new();
        if let Some(&p) = bad_blobs.get(&snapshot.tree) {
            affected.push((p, "/".into()));
        }
        walk(
            repo,
            &snapshot.tree,
            "",
            &mut |path, node| match &node.content {
                NodeContent::File(f) => {
                    for c in &f.chunks {
                        if let Some(&p) = bad_blobs.get(c) {
                            affected.push((p, path.to_string()));
                        } else if !repo.index().contains(c) {
                            missing.push((path.to_string(), *c));
                        }
                    }
                    true
                }
                NodeContent::Dir { subtree } => {
                    if let Some(&p) = bad_blobs.get(subtree) {
                        affected.push((p, format!("{path}/")));
                    }
                    trees_seen.insert(*subtree)
                }
                NodeContent::Symlink { .. } => true,
            },
            &mut |path, id, e| broken_trees.push((path.to_string(), *id, e)),
        );
        trees_seen.insert(snapshot.tree);
        let short = sid.short();
        for (p, path) in affected {
            let entry = format!("{short}:{path}");
            if !report.problems[p].affected.contains(&entry) {
                report.problems[p].affected.push(entry);
            }
        }
        for (path, id, e) in broken_trees {
            if bad_blobs.contains_key(&id) {
                continue; // already reported with its pack
            }
            let mut pr = problem(format!("tree {id}"), e);
            pr.affected.push(format!("{short}:{}/", if path.is_empty() { "" } else { &path }));
            report.problems.push(pr);
        }
        for (path, id) in missing {
            let mut pr = problem(format!("blob {id}"), "not in any index (its data is lost)");
            pr.affected.push(format!("{short}:{path}"));
            report.problems.push(pr);
        }
    }
    report.trees = trees_seen.len();
    Ok(report)
}

/// A pack read in full: its id, its problems (per blob, or `None` for the whole pack), and
/// how many blobs verified.
type PackReading = (Id, Vec<(Option<Id>, String)>, usize);

/// All packs, or a random share of them (at least one).
fn choose_packs(packs: &[PackContents], subset: Option<f64>) -> Vec<PackContents> {
    let Some(share) = subset else { return packs.to_vec() };
    let want = ((packs.len() as f64 * share).ceil() as usize).clamp(1.min(packs.len()), packs.len());
    let mut keyed: Vec<(u64, &PackContents)> = packs
        .iter()
        .map(|p| {
            let r = crate::crypto::random_bytes::<8>().map(u64::from_le_bytes).unwrap_or(0);
            (r, p)
        })
        .collect();
    keyed.sort_by_key(|(r, _)| *r);
    keyed.into_iter().take(want).map(|(_, p)| p.clone()).collect()
}

/// Bytes read from a pack at a time while verifying it.
const WINDOW: u64 = 1 << 20;

/// Streams one pack from start to end in windows: hashes it against its name, compares its
/// header with the index, and opens every blob. Memory: one window plus one blob.
/// Returns the problems (per blob, or `None` for the whole pack) and the blobs verified.
fn read_pack(repo: &Repository, pc: &PackContents, size: u64) -> (Vec<(Option<Id>, String)>, usize) {
    let name = pc.pack.to_hex();
    let mut issues = Vec::new();
    match repo.read_pack_header(&name, size) {
        Ok(mut header) => {
            header.sort_by_key(|b| b.offset);
            if header != pc.blobs {
                issues.push((None, "its header disagrees with the index (run `snap repair index`)".to_string()));
            }
        }
        Err(e) => issues.push((None, e.to_string())),
    }
    let mut hasher = blake3::Hasher::new();
    let mut read_to = 0u64; // bytes read and hashed so far
    let mut buf: Vec<u8> = Vec::new(); // pack bytes from `buf_start` to `read_to`
    let mut buf_start = 0u64;
    // Reads (and hashes) windows until `end`; keeps the bytes only when `keep`.
    let mut advance = |end: u64, keep: bool, buf: &mut Vec<u8>| -> crate::error::Result<()> {
        while read_to < end.min(size) {
            let n = WINDOW.min(size - read_to);
            let window = repo.backend().read_range(FileKind::Pack, &name, read_to, n)?;
            hasher.update(&window);
            if keep && buf.is_empty() {
                *buf = window;
            } else if keep {
                buf.extend_from_slice(&window);
            }
            read_to += n;
        }
        Ok(())
    };
    let mut verified = 0;
    for b in &pc.blobs {
        let (start, end) = (u64::from(b.offset), u64::from(b.offset) + u64::from(b.stored_len));
        if end > size || start < buf_start {
            issues.push((Some(b.id), "lies outside the pack".into()));
            continue;
        }
        buf.drain(..((start - buf_start) as usize).min(buf.len()));
        buf_start = start;
        if let Err(e) = advance(end, true, &mut buf) {
            return ([issues, vec![(None, e.to_string())]].concat(), verified);
        }
        // The pack's hash already covers these bytes, so they may be opened where they lie.
        match repo.decode_blob_in_place(b, &mut buf[..b.stored_len as usize]) {
            Ok(_) => verified += 1,
            Err(e) => issues.push((Some(b.id), e.to_string())),
        }
    }
    buf = Vec::new();
    if let Err(e) = advance(size, false, &mut buf) {
        issues.push((None, e.to_string()));
    } else if Id(*hasher.finalize().as_bytes()) != pc.pack {
        issues.push((None, "content does not match its name".into()));
    }
    (issues, verified)
}
