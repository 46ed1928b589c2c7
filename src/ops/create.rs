//! `snap create`: back folders up into a new snapshot.
//!
//! Three phases. Scan walks the sources (metadata only) and decides per file, against the
//! parent snapshot, whether its content can be reused without reading it. Store reads and
//! chunks the remaining files on all cores. Finish builds the trees bottom-up, flushes packs
//! and index, and only then writes the snapshot, so a snapshot never names missing data.
//!
//! A file is reused unread when its size, mtime, inode and ctime equal the parent's. When only
//! its inode or ctime changed (re-copied, `cp -a`) or it moved to another folder, a file with
//! the same size and mtime is looked up in the parent and confirmed by a fingerprint of its
//! first and last 64 KiB; only if that differs is the whole file read.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use super::Progress;
use super::filter::PathFilter;
use super::walk::{display_name, join};
use crate::chunker::{ChunkError, Chunker};
use crate::crypto::Keys;
use crate::error::{Error, IoContext, Result};
use crate::format::pack::BlobKind;
use crate::format::snapshot::{Skipped, Snapshot, Summary};
use crate::format::tree::{self, FileContent, Node, NodeContent, Timestamp};
use crate::id::Id;
use crate::packer::Packer;
use crate::repo::Repository;

pub struct CreateOptions {
    pub paths: Vec<PathBuf>,
    pub excludes: Vec<String>,
    pub tags: Vec<String>,
    pub hostname: Option<String>,
    /// A snapshot to compare against instead of the latest one of the same host and paths.
    pub parent: Option<String>,
    pub compression_level: i32,
    /// How long to wait for a conflicting lock (a running prune) to go away.
    pub retry_lock: std::time::Duration,
}

pub struct CreateOutcome {
    pub id: Id,
    pub snapshot: Snapshot,
    pub files_moved: u64,
    /// Packs an interrupted earlier backup left unindexed, now indexed and reused.
    pub recovered_packs: usize,
}

/// Bytes at each end of a file that its fingerprint covers.
pub const FINGERPRINT_SPAN: u64 = 64 << 10;

/// Keyed BLAKE3 of `size (u64 LE) || first min(size, 64 KiB) bytes || last min(size, 64 KiB)
/// bytes` (format-spec/trees.md).
pub fn fingerprint(keys: &Keys, file: &File, size: u64) -> std::io::Result<[u8; 32]> {
    let mut h = keys.fingerprint_hasher();
    h.update(&size.to_le_bytes());
    let span = size.min(FINGERPRINT_SPAN) as usize;
    let mut buf = vec![0u8; span];
    file.read_exact_at(&mut buf, 0)?;
    h.update(&buf);
    file.read_exact_at(&mut buf, size - span as u64)?;
    h.update(&buf);
    Ok(*h.finalize().as_bytes())
}

struct Meta {
    mode: u32,
    mtime: Timestamp,
    uid: u32,
    gid: u32,
    size: u64,
    inode: u64,
    ctime: Timestamp,
}

impl Meta {
    fn of(m: &fs::Metadata) -> Meta {
        Meta {
            mode: m.mode() & 0o7777,
            mtime: Timestamp { secs: m.mtime(), nanos: m.mtime_nsec().clamp(0, 999_999_999) as u32 },
            uid: m.uid(),
            gid: m.gid(),
            size: m.len(),
            inode: m.ino(),
            ctime: Timestamp { secs: m.ctime(), nanos: m.ctime_nsec().clamp(0, 999_999_999) as u32 },
        }
    }
}

enum ScanKind {
    File { job: usize },
    Dir(Vec<ScanEntry>),
    Symlink(Vec<u8>),
}

struct ScanEntry {
    name: Vec<u8>,
    meta: Meta,
    kind: ScanKind,
}

/// How a file's content will be obtained.
enum Plan {
    /// Unchanged since the parent: take its content unread.
    Reuse(FileContent),
    /// Same size and mtime as these parent files: compare fingerprints, read only on mismatch.
    Confirm {
        candidates: Vec<FileContent>,
        same_path: bool,
    },
    Read {
        existed: bool,
    },
}

struct Job {
    path: PathBuf,
    size: u64,
    plan: Plan,
}

enum Obtained {
    Unchanged(FileContent),
    Moved(FileContent),
    Read { content: FileContent, existed: bool },
}

/// The parent snapshot's files, for reuse decisions.
struct Parent<'r> {
    repo: &'r Repository,
    by_size_and_mtime: HashMap<(u64, Timestamp), Vec<FileContent>>,
}

impl Parent<'_> {
    fn children(&self, subtree: Option<&Id>) -> Vec<Node> {
        subtree.and_then(|id| self.repo.read_tree(id).ok()).unwrap_or_default()
    }

    /// The parent's content, if every chunk of it is still indexed.
    fn usable(&self, content: &FileContent) -> bool {
        content.chunks.iter().all(|c| self.repo.index().contains(c))
    }
}

struct Scanner<'a, 'r> {
    excludes: &'a PathFilter,
    /// (device, inode) of the repository's folder when it lies inside a source: never backed up.
    repository_dir: Option<(u64, u64)>,
    parent: &'a Parent<'r>,
    jobs: Vec<Job>,
    skipped: Vec<Skipped>,
    progress: &'a dyn Progress,
    total_bytes: u64,
}

impl Scanner<'_, '_> {
    fn skip(&mut self, path: &Path, error: impl std::fmt::Display) {
        let message = format!("{}: {error}", path.display());
        self.progress.warn(&message);
        self.skipped.push(Skipped { path: path.display().to_string(), error: error.to_string() });
    }

    /// Scans one source entry; `None` if it is skipped, excluded or not a file, folder or link.
    fn scan(&mut self, path: &Path, name: Vec<u8>, rel: &str, parent: Option<&Node>) -> Option<ScanEntry> {
        let metadata = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.skip(path, e);
                return None;
            }
        };
        let meta = Meta::of(&metadata);
        let ft = metadata.file_type();
        if ft.is_dir() && self.repository_dir == Some((metadata.dev(), metadata.ino())) {
            self.progress.warn(&format!("{}: skipped: it is the repository being written to", path.display()));
            return None;
        }
        let kind = if ft.is_dir() {
            let parent_children = match parent.map(|p| &p.content) {
                Some(NodeContent::Dir { subtree }) => self.parent.children(Some(subtree)),
                _ => Vec::new(),
            };
            ScanKind::Dir(self.scan_dir(path, rel, &parent_children))
        } else if ft.is_file() {
            self.total_bytes += meta.size;
            let plan = self.plan(&meta, parent);
            self.jobs.push(Job { path: path.to_path_buf(), size: meta.size, plan });
            ScanKind::File { job: self.jobs.len() - 1 }
        } else if ft.is_symlink() {
            match fs::read_link(path) {
                Ok(target) => ScanKind::Symlink(target.as_os_str().as_bytes().to_vec()),
                Err(e) => {
                    self.skip(path, e);
                    return None;
                }
            }
        } else {
            return None; // sockets, fifos and devices are not backed up
        };
        Some(ScanEntry { name, meta, kind })
    }

    fn scan_dir(&mut self, dir: &Path, rel: &str, parent_children: &[Node]) -> Vec<ScanEntry> {
        let mut names: Vec<std::ffi::OsString> = match fs::read_dir(dir) {
            Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect(),
            Err(e) => {
                self.skip(dir, e);
                return Vec::new();
            }
        };
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            let bytes = name.as_bytes().to_vec();
            let child_rel = join(rel, &display_name(&bytes));
            if self.excludes.matches(&child_rel) {
                continue;
            }
            let parent =
                parent_children.binary_search_by(|n| n.name.as_slice().cmp(&bytes)).ok().map(|i| &parent_children[i]);
            if let Some(entry) = self.scan(&dir.join(&name), bytes, &child_rel, parent) {
                entries.push(entry);
            }
        }
        entries
    }

    fn plan(&self, meta: &Meta, parent: Option<&Node>) -> Plan {
        let previous = match parent.map(|p| (&p.content, p.mtime)) {
            Some((NodeContent::File(f), mtime)) => Some((f, mtime)),
            _ => None,
        };
        if let Some((f, mtime)) = previous
            && f.size == meta.size
            && mtime == meta.mtime
            && f.inode == meta.inode
            && f.ctime == meta.ctime
            && self.parent.usable(f)
        {
            return Plan::Reuse(f.clone());
        }
        let candidates: Vec<FileContent> = self
            .parent
            .by_size_and_mtime
            .get(&(meta.size, meta.mtime))
            .map(|c| c.iter().filter(|f| self.parent.usable(f)).cloned().collect())
            .unwrap_or_default();
        if !candidates.is_empty() {
            let same_path = previous.is_some_and(|(f, mtime)| f.size == meta.size && mtime == meta.mtime);
            return Plan::Confirm { candidates, same_path };
        }
        Plan::Read { existed: previous.is_some() }
    }
}

/// Everything the worker threads share.
struct Store<'a, 'r> {
    repo: &'r Repository,
    packer: &'a Packer<'r>,
    chunker: Chunker,
    progress: &'a dyn Progress,
}

impl Store<'_, '_> {
    fn obtain(&self, job: &Job, buf: &mut Vec<u8>) -> std::result::Result<Obtained, String> {
        if let Plan::Reuse(content) = &job.plan {
            self.progress.advance(job.size);
            return Ok(Obtained::Unchanged(content.clone()));
        }
        let file = File::open(&job.path).map_err(|e| e.to_string())?;
        let metadata = file.metadata().map_err(|e| e.to_string())?;
        let meta = Meta::of(&metadata);
        if let Plan::Confirm { candidates, same_path } = &job.plan
            && let Ok(fp) = fingerprint(self.repo.keys(), &file, meta.size)
            && let Some(found) = candidates.iter().find(|c| c.fingerprint == fp && c.size == meta.size)
        {
            let content = FileContent { inode: meta.inode, ctime: meta.ctime, ..found.clone() };
            self.progress.advance(job.size);
            return Ok(if *same_path { Obtained::Unchanged(content) } else { Obtained::Moved(content) });
        }
        let existed = match job.plan {
            Plan::Read { existed } => existed,
            Plan::Confirm { same_path, .. } => same_path,
            Plan::Reuse(_) => true,
        };
        let content = self.read(&file, &meta, buf).map_err(|e| e.to_string())?;
        Ok(Obtained::Read { content, existed })
    }

    fn read(&self, file: &File, meta: &Meta, buf: &mut Vec<u8>) -> Result<FileContent> {
        let mut chunks = Vec::new();
        let keys = self.repo.keys();
        let read = self.chunker.chunk_reader(file, buf, &mut |chunk: &[u8]| -> Result<()> {
            let id = keys.blob_id(chunk);
            self.packer.add(BlobKind::Data, id, chunk)?;
            chunks.push(id);
            self.progress.advance(chunk.len() as u64);
            Ok(())
        });
        let size = match read {
            Ok(n) => n,
            Err(ChunkError::Read(e)) => return Err(Error::io("", e)),
            Err(ChunkError::Emit(e)) => return Err(e),
        };
        let fingerprint = fingerprint(keys, file, size).map_err(|e| Error::io("", e))?;
        Ok(FileContent { size, inode: meta.inode, ctime: meta.ctime, fingerprint, chunks })
    }
}

pub fn run(repo: &mut Repository, options: &CreateOptions, progress: &dyn Progress) -> Result<CreateOutcome> {
    let lock = crate::lock::acquire(repo, false, "create", options.retry_lock)?;
    let recovered_packs = repo.recover_unindexed_packs()?;
    let repo = &*repo;
    let started_at = crate::clock::now_rfc3339();
    let clock = Instant::now();
    let hostname = options.hostname.clone().unwrap_or_else(crate::clock::hostname);
    let excludes = PathFilter::new(&options.excludes)?;
    let sources = resolve_sources(&options.paths)?;
    let source_strings: Vec<String> = sources.iter().map(|(p, _)| p.display().to_string()).collect();

    let parent_snapshot = find_parent(repo, options.parent.as_deref(), &hostname, &source_strings)?;
    let parent = load_parent(repo, parent_snapshot.as_ref().map(|(_, s)| &s.tree));
    let root_nodes = parent.children(parent_snapshot.as_ref().map(|(_, s)| &s.tree));

    let repository_dir =
        repo.backend().local_root().and_then(|root| fs::metadata(root).ok()).map(|m| (m.dev(), m.ino()));
    let mut scanner = Scanner {
        repository_dir,
        excludes: &excludes,
        parent: &parent,
        jobs: Vec::new(),
        skipped: Vec::new(),
        progress,
        total_bytes: 0,
    };
    let roots: Vec<ScanEntry> = if let [(folder, _)] = sources.as_slice()
        && folder.is_dir()
    {
        // One folder: its contents form the snapshot root.
        scanner.scan_dir(folder, "", &root_nodes)
    } else {
        let mut roots = Vec::new();
        for (path, name) in &sources {
            let parent_node = root_nodes.iter().find(|n| &n.name == name);
            if let Some(entry) = scanner.scan(path, name.clone(), &display_name(name), parent_node) {
                roots.push(entry);
            }
        }
        roots
    };
    let Scanner { jobs, mut skipped, total_bytes, .. } = scanner;
    progress.start(jobs.len() as u64, total_bytes);

    let packer = Packer::new(repo, options.compression_level);
    let store = Store { repo, packer: &packer, chunker: Chunker::new(repo.keys().gear()), progress };
    let results: Vec<std::result::Result<Obtained, String>> = jobs
        .par_iter()
        .map_init(Vec::new, |buf, job| {
            let r = store.obtain(job, buf);
            progress.item_done();
            r
        })
        .collect();

    let mut summary = Summary { started: started_at, total_bytes: 0, ..Default::default() };
    let mut files_moved = 0;
    let mut contents: Vec<Option<FileContent>> = Vec::with_capacity(results.len());
    for (job, result) in jobs.iter().zip(results) {
        match result {
            Ok(obtained) => {
                let content = match obtained {
                    Obtained::Unchanged(c) => {
                        summary.files_unchanged += 1;
                        c
                    }
                    Obtained::Moved(c) => {
                        files_moved += 1;
                        summary.files_new += 1;
                        c
                    }
                    Obtained::Read { content, existed } => {
                        summary.bytes_read += content.size;
                        if existed {
                            summary.files_changed += 1
                        } else {
                            summary.files_new += 1
                        }
                        content
                    }
                };
                summary.total_files += 1;
                summary.total_bytes = summary.total_bytes.saturating_add(content.size);
                contents.push(Some(content));
            }
            Err(e) => {
                // The data stays deduplicated; only the file is left out of the snapshot.
                let message = format!("{}: {e}", job.path.display());
                progress.warn(&message);
                skipped.push(Skipped { path: job.path.display().to_string(), error: e });
                contents.push(None);
            }
        }
    }

    let mut trees = Vec::new();
    let root = build_tree(&packer, repo.keys(), &roots, &contents, &mut summary.dirs, &mut trees)?;
    let stats = packer.finish()?;
    if lock.was_ever_stale() {
        // Our lock lapsed (the machine slept?): a prune may have run. Commit only if every
        // blob this snapshot names still exists.
        let chunks = contents.iter().flatten().flat_map(|c| c.chunks.iter());
        verify_still_present(repo, chunks.chain(trees.iter()), &packer.written())?;
    }
    summary.data_added = stats.raw_bytes;
    summary.data_added_stored = stats.stored_bytes;
    summary.blobs_added = stats.blobs;
    summary.finished = crate::clock::now_rfc3339();
    summary.duration_secs = clock.elapsed().as_secs_f64();

    let snapshot = Snapshot {
        time: summary.started.clone(),
        hostname,
        username: crate::clock::username(),
        paths: source_strings,
        tags: options.tags.clone(),
        tree: root,
        parent: parent_snapshot.map(|(id, _)| id),
        program: format!("snap {}", env!("CARGO_PKG_VERSION")),
        summary,
        skipped,
    };
    let id = repo.save_snapshot(&snapshot)?;
    drop(lock);
    Ok(CreateOutcome { id, snapshot, files_moved, recovered_packs })
}

/// Absolute source paths with the name each gets in the snapshot; names must be unique.
fn resolve_sources(paths: &[PathBuf]) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    if paths.is_empty() {
        return Err(Error::InvalidArgument("no folder to back up was given".into()));
    }
    let mut out: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for p in paths {
        // Normalised (no trailing `/`, no `.`), so `phone` and `phone/` name the same source
        // and find the same parent snapshot.
        let abs: PathBuf = std::path::absolute(p).at(p)?.components().collect();
        fs::symlink_metadata(&abs).at(&abs)?;
        let name = abs.file_name().map(|n| n.as_bytes().to_vec()).unwrap_or_else(|| b"root".to_vec());
        if out.iter().any(|(_, n)| n == &name) {
            return Err(Error::InvalidArgument(format!(
                "two sources are both named {:?}: back them up in separate snapshots",
                display_name(&name)
            )));
        }
        out.push((abs, name));
    }
    Ok(out)
}

fn find_parent(
    repo: &Repository,
    explicit: Option<&str>,
    hostname: &str,
    paths: &[String],
) -> Result<Option<(Id, Snapshot)>> {
    if let Some(spec) = explicit {
        return repo.find_snapshot(spec).map(Some);
    }
    let mut wanted = paths.to_vec();
    wanted.sort();
    let (all, _) = repo.snapshots()?;
    Ok(all.into_iter().rev().find(|(_, s)| {
        let mut p = s.paths.clone();
        p.sort();
        s.hostname == hostname && p == wanted
    }))
}

/// Indexes every file of the parent snapshot by (size, mtime). Unreadable trees are ignored:
/// the files under them are simply read again.
fn load_parent<'r>(repo: &'r Repository, tree: Option<&Id>) -> Parent<'r> {
    let mut parent = Parent { repo, by_size_and_mtime: HashMap::new() };
    if let Some(tree) = tree {
        let mut map: HashMap<(u64, Timestamp), Vec<FileContent>> = HashMap::new();
        super::walk::walk(
            repo,
            tree,
            "",
            &mut |_, node| {
                if let NodeContent::File(f) = &node.content {
                    let list = map.entry((f.size, node.mtime)).or_default();
                    if !list.iter().any(|c| c.fingerprint == f.fingerprint) {
                        list.push(f.clone());
                    }
                }
                true
            },
            &mut |_, _, _| {},
        );
        parent.by_size_and_mtime = map;
    }
    parent
}

fn verify_still_present<'a>(
    repo: &Repository,
    ids: impl Iterator<Item = &'a Id>,
    written: &[crate::format::index::PackContents],
) -> Result<()> {
    let packs = repo.pack_sizes()?;
    let new: std::collections::HashSet<Id> = written.iter().flat_map(|p| p.blobs.iter().map(|b| b.id)).collect();
    for id in ids {
        let present = new.contains(id) || repo.index().lookup(id).is_some_and(|l| packs.contains_key(&l.pack));
        if !present {
            return Err(Error::InvalidArgument(
                "this backup was paused longer than its lock lasts and data it relied on was pruned meanwhile; no snapshot was written: run it again".into(),
            ));
        }
    }
    Ok(())
}

/// Builds and stores the tree of `entries`, bottom-up; returns its id.
fn build_tree(
    packer: &Packer,
    keys: &Keys,
    entries: &[ScanEntry],
    contents: &[Option<FileContent>],
    dirs: &mut u64,
    trees: &mut Vec<Id>,
) -> Result<Id> {
    let mut nodes = Vec::with_capacity(entries.len());
    for e in entries {
        let content = match &e.kind {
            ScanKind::File { job } => match contents.get(*job).cloned().flatten() {
                Some(c) => NodeContent::File(c),
                None => continue,
            },
            ScanKind::Dir(children) => {
                NodeContent::Dir { subtree: build_tree(packer, keys, children, contents, dirs, trees)? }
            }
            ScanKind::Symlink(target) => NodeContent::Symlink { target: target.clone() },
        };
        if matches!(content, NodeContent::Dir { .. }) {
            *dirs += 1;
        }
        nodes.push(Node {
            name: e.name.clone(),
            mode: e.meta.mode,
            mtime: e.meta.mtime,
            uid: e.meta.uid,
            gid: e.meta.gid,
            content,
        });
    }
    let bytes = tree::encode(&nodes);
    let id = keys.blob_id(&bytes);
    packer.add(BlobKind::Tree, id, &bytes)?;
    trees.push(id);
    Ok(id)
}
