//! `snap restore`: bring a snapshot, or the files a user picks, back into a target folder.
//!
//! Safety invariants:
//! - Nothing is written outside `target`: names with `/`, NUL, `.` or `..` are refused, folders
//!   are created without following symlinks (an existing symlink where a folder belongs is
//!   refused), files are written to a fresh temporary name and renamed into place (a rename
//!   replaces a symlink, never follows it), and symlinks are created last.
//! - Every chunk is checked against its id before it is written.
//! - A file already present with identical content is not written again, so an interrupted
//!   restore re-run with the same arguments continues where it stopped.
//! - One damaged file does not stop the others; each failure is reported by path.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use filetime::FileTime;
use rayon::prelude::*;

use super::Progress;
use super::batch::{self, Prefetched, Span, span_of};
use super::filter::PathFilter;
use super::walk::{display_name, join};
use crate::error::{Error, IoContext, Result};
use crate::format::tree::{FileContent, Node, NodeContent, Timestamp};
use crate::id::Id;
use crate::repo::Repository;

pub struct RestoreOptions {
    pub target: PathBuf,
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
    /// How long to wait for a conflicting lock (a running prune) to go away.
    pub retry_lock: std::time::Duration,
}

#[derive(Debug, Default)]
pub struct RestoreSummary {
    pub files_restored: u64,
    pub files_already_present: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes_written: u64,
    /// Paths that could not be restored, with the reason.
    pub failures: Vec<(String, String)>,
}

struct Planned {
    rel: String,
    path: PathBuf,
    node: Node,
}

#[derive(Default)]
struct Plan {
    dirs: Vec<Planned>,
    files: Vec<Planned>,
    symlinks: Vec<Planned>,
    failures: Vec<(String, String)>,
}

/// A name that can be created inside a folder without escaping it.
fn safe_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

struct Planner<'a> {
    repo: &'a Repository,
    includes: PathFilter,
    excludes: PathFilter,
    plan: Plan,
}

impl Planner<'_> {
    /// Plans the entries of `tree`; returns whether anything below was selected.
    fn plan_tree(&mut self, tree: &Id, rel: &str, dir: &Path, depth: usize) -> bool {
        if depth > 1024 {
            self.plan.failures.push((rel.to_string(), "folders nested deeper than 1024 levels".into()));
            return false;
        }
        let nodes = match self.repo.read_tree(tree) {
            Ok(n) => n,
            Err(e) => {
                self.plan.failures.push((
                    if rel.is_empty() { "/".into() } else { rel.to_string() },
                    format!("folder not restorable: {e}"),
                ));
                return false;
            }
        };
        let mut seen = HashSet::new();
        let mut any = false;
        for node in nodes {
            let child_rel = join(rel, &display_name(&node.name));
            if !safe_name(&node.name) {
                self.plan.failures.push((child_rel, format!("refused: unsafe name {:?}", display_name(&node.name))));
                continue;
            }
            if !seen.insert(node.name.clone()) {
                self.plan.failures.push((child_rel, "refused: the name occurs twice in its folder".into()));
                continue;
            }
            if self.excludes.matches(&child_rel) {
                continue;
            }
            let selected = self.includes.is_empty() || self.includes.matches(&child_rel);
            let path = dir.join(OsStr::from_bytes(&node.name));
            match &node.content {
                NodeContent::Dir { subtree } => {
                    let subtree = *subtree;
                    let position = self.plan.dirs.len();
                    let below = self.plan_tree(&subtree, &child_rel, &path, depth + 1);
                    if selected || below {
                        self.plan.dirs.insert(position, Planned { rel: child_rel, path, node });
                        any = true;
                    }
                }
                NodeContent::File(_) if selected => {
                    self.plan.files.push(Planned { rel: child_rel, path, node });
                    any = true;
                }
                NodeContent::Symlink { .. } if selected => {
                    self.plan.symlinks.push(Planned { rel: child_rel, path, node });
                    any = true;
                }
                _ => {}
            }
        }
        any
    }
}

pub fn run(repo: &Repository, tree: &Id, options: &RestoreOptions, progress: &dyn Progress) -> Result<RestoreSummary> {
    let _lock = crate::lock::acquire_for_reading(repo, "restore", options.retry_lock)?;
    let mut planner = Planner {
        repo,
        includes: PathFilter::new(&options.includes)?,
        excludes: PathFilter::new(&options.excludes)?,
        plan: Plan::default(),
    };
    planner.plan_tree(tree, "", &options.target, 0);
    let plan = planner.plan;
    let mut summary = RestoreSummary { failures: plan.failures, ..Default::default() };
    for (path, reason) in &summary.failures {
        progress.warn(&format!("{path}: {reason}"));
    }

    fs::create_dir_all(&options.target).at(&options.target)?;
    if !fs::symlink_metadata(&options.target).at(&options.target)?.is_dir() {
        return Err(Error::InvalidArgument(format!("restore target {} is not a folder", options.target.display())));
    }
    probe_writable(&options.target)?;

    // Folders first, parents before children; a folder that cannot be made blocks its contents.
    let mut blocked: Vec<String> = Vec::new();
    let is_blocked = |blocked: &[String], rel: &str| {
        blocked.iter().any(|b| rel.starts_with(b.as_str()) && rel.as_bytes().get(b.len()) == Some(&b'/'))
    };
    for d in &plan.dirs {
        if is_blocked(&blocked, &d.rel) {
            continue;
        }
        if let Err(reason) = make_dir(&d.path) {
            progress.warn(&format!("{}: {reason}", d.rel));
            summary.failures.push((d.rel.clone(), reason));
            blocked.push(d.rel.clone());
        } else {
            summary.dirs += 1;
        }
    }

    let files: Vec<&Planned> = plan.files.iter().filter(|f| !is_blocked(&blocked, &f.rel)).collect();
    // Saturating: a hostile tree may claim any size; only the progress bar sees this sum.
    let total: u64 = files.iter().fold(0u64, |sum, f| sum.saturating_add(f.node.size()));
    progress.start(files.len() as u64, total);
    // Remote: neighbouring files come in one request; local: each file reads its own runs.
    let spans: Vec<Option<Span>> = if repo.backend().read_parallelism() > 0 {
        files
            .iter()
            .map(|f| if let NodeContent::File(c) = &f.node.content { span_of(repo, &c.chunks) } else { None })
            .collect()
    } else {
        vec![None; files.len()]
    };
    let batches = batch::plan(&spans, BATCH_BYTES);
    let outcomes: Vec<(usize, std::result::Result<Option<u64>, String>)> = super::with_read_threads(repo, || {
        batches
            .par_iter()
            .map_init(Vec::new, |buf, b| {
                let cell = std::cell::OnceCell::new();
                let fetch = || -> std::result::Result<&Prefetched, String> {
                    let span = b.span.ok_or("no batch to fetch")?;
                    cell.get_or_init(|| Prefetched::read(repo, span).map_err(|e| e.to_string()))
                        .as_ref()
                        .map_err(Clone::clone)
                };
                let shared = (b.count > 1).then_some(&fetch as FetchBatch);
                (b.first..b.first + b.count)
                    .map(|i| {
                        let r = restore_file(repo, files[i], buf, shared, progress);
                        progress.item_done();
                        (i, r)
                    })
                    .collect::<Vec<_>>()
            })
            .flatten()
            .collect()
    });
    for (i, outcome) in outcomes {
        match outcome {
            Ok(Some(written)) => {
                summary.files_restored += 1;
                summary.bytes_written += written;
            }
            Ok(None) => summary.files_already_present += 1,
            Err(reason) => {
                progress.warn(&format!("{}: {reason}", files[i].rel));
                summary.failures.push((files[i].rel.clone(), reason));
            }
        }
    }

    for s in plan.symlinks.iter().filter(|s| !is_blocked(&blocked, &s.rel)) {
        match restore_symlink(s) {
            Ok(()) => summary.symlinks += 1,
            Err(reason) => {
                progress.warn(&format!("{}: {reason}", s.rel));
                summary.failures.push((s.rel.clone(), reason));
            }
        }
    }

    // Folder modes and times last, deepest first, so writing their contents does not undo them.
    for d in plan.dirs.iter().rev().filter(|d| !is_blocked(&blocked, &d.rel)) {
        let _ = fs::set_permissions(&d.path, fs::Permissions::from_mode(d.node.mode));
        let _ = filetime::set_file_times(&d.path, file_time(d.node.mtime), file_time(d.node.mtime));
    }
    Ok(summary)
}

fn probe_writable(target: &Path) -> Result<()> {
    tempfile::Builder::new()
        .prefix(".snap-probe-")
        .tempfile_in(target)
        .map(drop)
        .map_err(|e| Error::io(target, std::io::Error::new(e.kind(), format!("restore target is not writable: {e}"))))
}

fn file_time(t: Timestamp) -> FileTime {
    FileTime::from_unix_time(t.secs, t.nanos)
}

fn make_dir(path: &Path) -> std::result::Result<(), String> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(m) if m.file_type().is_symlink() => Err("refused: a symlink stands where a folder belongs".into()),
            _ => Err("refused: a file stands where a folder belongs".into()),
        },
        Err(e) => Err(format!("cannot create folder: {e}")),
    }
}

fn restore_symlink(s: &Planned) -> std::result::Result<(), String> {
    let NodeContent::Symlink { target } = &s.node.content else { return Ok(()) };
    if let Ok(m) = fs::symlink_metadata(&s.path) {
        if m.is_dir() {
            return Err("refused: a folder stands where a symlink belongs".into());
        }
        fs::remove_file(&s.path).map_err(|e| format!("cannot replace existing entry: {e}"))?;
    }
    std::os::unix::fs::symlink(OsStr::from_bytes(target), &s.path)
        .map_err(|e| format!("cannot create symlink: {e}"))?;
    let _ = filetime::set_symlink_file_times(&s.path, file_time(s.node.mtime), file_time(s.node.mtime));
    Ok(())
}

/// The most a file's restore reads from a pack at once: neighbouring chunks come in one read.
const READ_RUN_BYTES: u64 = 8 << 20;
/// The most a remote restore fetches for a batch of neighbouring files with one request.
const BATCH_BYTES: u64 = 4 << 20;

/// Fetches a batch's bytes on first use (never, if every file in it is already present).
type FetchBatch<'a> = &'a dyn Fn() -> std::result::Result<&'a Prefetched, String>;

/// Restores one file. `Ok(None)`: it was already there with identical content.
fn restore_file(
    repo: &Repository,
    f: &Planned,
    buf: &mut Vec<u8>,
    batch: Option<FetchBatch>,
    progress: &dyn Progress,
) -> std::result::Result<Option<u64>, String> {
    let NodeContent::File(content) = &f.node.content else { return Ok(None) };
    let times = (file_time(f.node.mtime), file_time(f.node.mtime));
    if already_present(repo, &f.path, content, buf) {
        let _ = fs::set_permissions(&f.path, fs::Permissions::from_mode(f.node.mode));
        let _ = filetime::set_file_times(&f.path, times.0, times.1);
        progress.advance(content.size);
        return Ok(None);
    }
    let dir = f.path.parent().ok_or("no parent folder")?;
    let tmp_name =
        format!(".snap-restore-{}", hex::encode(crate::crypto::random_bytes::<8>().map_err(|e| e.to_string())?));
    let tmp_path = dir.join(tmp_name);
    let result = (|| -> std::result::Result<u64, String> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp_path)
            .map_err(|e| format!("cannot create: {e}"))?;
        let mut written = 0u64;
        let mut write = |data: &[u8]| -> std::result::Result<(), String> {
            file.write_all(data).map_err(|e| format!("cannot write: {e}"))?;
            written += data.len() as u64;
            progress.advance(data.len() as u64);
            Ok(())
        };
        if let Some(fetch) = batch {
            let prefetched = fetch()?;
            for chunk in &content.chunks {
                write(&prefetched.chunk(repo, chunk).map_err(|e| e.to_string())?)?;
            }
        } else {
            let mut next = 0;
            while next < content.chunks.len() {
                let mut run = repo.read_blob_run(&content.chunks[next..], READ_RUN_BYTES).map_err(|e| e.to_string())?;
                next += run.len();
                while let Some(blob) = run.next_blob(repo) {
                    write(&blob.map_err(|e| e.to_string())?)?;
                }
            }
        }
        if written != content.size {
            return Err(format!(
                "damaged snapshot: chunks hold {written} bytes, the file should have {}",
                content.size
            ));
        }
        file.set_permissions(fs::Permissions::from_mode(f.node.mode)).map_err(|e| format!("cannot set mode: {e}"))?;
        filetime::set_file_handle_times(&file, Some(times.0), Some(times.1))
            .map_err(|e| format!("cannot set times: {e}"))?;
        drop(file);
        fs::rename(&tmp_path, &f.path).map_err(|e| format!("cannot move into place: {e}"))?;
        Ok(written)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result.map(Some)
}

/// True if `path` is a regular file whose bytes are exactly `content`'s chunks.
fn already_present(repo: &Repository, path: &Path, content: &FileContent, buf: &mut Vec<u8>) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else { return false };
    if !meta.is_file() || meta.len() != content.size {
        return false;
    }
    let Ok(mut file) = File::open(path) else { return false };
    for chunk in &content.chunks {
        let Some(loc) = repo.index().lookup(chunk) else { return false };
        buf.resize(loc.entry.raw_len as usize, 0);
        if file.read_exact(buf).is_err() || repo.keys().blob_id(buf) != *chunk {
            return false;
        }
    }
    true
}
