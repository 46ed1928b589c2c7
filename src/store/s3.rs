//! A repository on S3-compatible object storage (AWS S3, MinIO, Garage, Ceph, B2, Wasabi), through
//! `opendal`.
//!
//! The objects are the files of a local repository under the same names (`config`, `keys/<id>`,
//! `data/<xx>/<id>`, ...) below the location's prefix, so a repository can be copied between a
//! folder and a bucket with any sync tool. Invariants on top of the [`Backend`] contract:
//! - An object appears whole or not at all: a PUT and a completed multipart upload are atomic,
//!   and an abandoned multipart upload is invisible to listings and reads.
//! - Objects are created with `If-None-Match: *` where the store honours it. Correctness never
//!   depends on it (FACTS: several stores ignore it): every name but `config` is the hash of the
//!   content, so a second writer of a name writes the same bytes.
//! - `publish` uploads in the background, at most [`UPLOADS_IN_FLIGHT`] packs at once, each
//!   streamed from its scratch file in parts, so memory stays bounded whatever the backup size.
//!   [`Backend::flush`] waits for them; writers flush before anything that names a pack.
//! - Transient failures (timeouts, 5xx, throttling) are retried with exponential backoff by
//!   opendal's retry layer; an error that remains names the operation and the object.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opendal::layers::{ConcurrentLimitLayer, RetryLayer, TimeoutLayer};
use opendal::{ErrorKind, Operator};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::{Backend, FileKind, SpoolFile, object_path};
use crate::error::{Error, Result};

/// Packs uploading at the same time. Each holds one part buffer, so this bounds memory too.
pub const UPLOADS_IN_FLIGHT: usize = 2;
/// Reads a restore keeps in flight, each holding at most one batch (4 MiB) or one file's run
/// of chunks (8 MiB) in memory. Servers answer each request after a pause of their own (s3s-fs
/// ~40 ms), so twelve small reads beat six large ones: measured 5.2–5.3 s instead of 7.2–8.3 s
/// for a 1.1 GB restore from s3s-fs.
const READS_IN_FLIGHT: usize = 12;
/// Size of the parts a pack is uploaded in (multipart) and of the largest single PUT.
const PART_SIZE: usize = 5 << 20;
/// Scratch files for packs on their way to the bucket live in the temp folder under this prefix.
const SPOOL_PREFIX: &str = "snap-spool-";
/// A scratch file this old belongs to a snap that was killed: no pack takes this long to fill
/// and upload.
const STALE_SPOOL: Duration = Duration::from_secs(3600);
/// Requests open at once, over all threads: uploads, reads and listings.
const CONNECTIONS: usize = 16;

/// Where a repository lives in object storage, parsed from `s3:https://host[:port]/bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
}

impl S3Location {
    /// Parses the part after `s3:`. Without a scheme, `https://` is assumed.
    pub fn parse(rest: &str) -> Result<S3Location> {
        let bad = |why: &str| {
            Error::InvalidArgument(format!(
                "invalid S3 location `s3:{rest}`: {why} (expected s3:https://host[:port]/bucket[/prefix])"
            ))
        };
        let (scheme, tail) = match rest.split_once("://") {
            Some((scheme @ ("http" | "https"), tail)) => (scheme, tail),
            Some((other, _)) => return Err(bad(&format!("unsupported scheme `{other}`"))),
            None => ("https", rest),
        };
        let mut parts = tail.splitn(3, '/');
        let host = parts.next().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?;
        let bucket = parts.next().filter(|b| !b.is_empty()).ok_or_else(|| bad("no bucket"))?;
        let prefix = parts.next().unwrap_or("").trim_matches('/');
        if prefix.split('/').any(|seg| seg == "." || seg == "..") {
            return Err(bad("the prefix may not contain `.` or `..`"));
        }
        Ok(S3Location {
            endpoint: format!("{scheme}://{host}"),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

/// Connection settings that are not part of the location.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Signing region; defaults to `AWS_REGION`, `AWS_DEFAULT_REGION`, then `us-east-1`.
    pub region: Option<String>,
    /// Address the bucket as `bucket.host` instead of `host/bucket`.
    pub virtual_host: bool,
    /// Access key id and secret; `None` takes them from the environment or the AWS profile.
    pub credentials: Option<(String, String)>,
}

pub struct S3Backend {
    operator: Operator,
    runtime: Runtime,
    location: String,
    uploads: Arc<Semaphore>,
    pending: Mutex<Vec<JoinHandle<Result<()>>>>,
}

impl S3Backend {
    pub fn new(location: &S3Location, options: &S3Options) -> Result<S3Backend> {
        opendal::install_default();
        let display = format!("s3:{}/{}/{}", location.endpoint, location.bucket, location.prefix);
        let region = options
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".to_string());
        let mut builder = opendal::services::S3::default()
            .endpoint(&location.endpoint)
            .bucket(&location.bucket)
            .root(&format!("/{}", location.prefix))
            .region(&region);
        if options.virtual_host {
            builder = builder.enable_virtual_host_style();
        }
        if let Some((id, secret)) = &options.credentials {
            builder = builder.access_key_id(id).secret_access_key(secret);
        }
        let setup_error = |e: opendal::Error| Error::InvalidArgument(format!("cannot use {display}: {e}"));
        let operator = Operator::new(builder)
            .map_err(setup_error)?
            .layer(TimeoutLayer::new().with_timeout(Duration::from_secs(60)).with_io_timeout(Duration::from_secs(30)))
            .layer(RetryLayer::new().with_jitter().with_max_times(6).with_min_delay(Duration::from_millis(200)))
            .layer(ConcurrentLimitLayer::new(CONNECTIONS));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("snap-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::InvalidArgument(format!("cannot start the network runtime: {e}")))?;
        remove_stale_spool_files(&std::env::temp_dir());
        Ok(S3Backend {
            operator,
            runtime,
            location: display,
            uploads: Arc::new(Semaphore::new(UPLOADS_IN_FLIGHT)),
            pending: Mutex::new(Vec::new()),
        })
    }

    fn finish_uploads(&self, wait_for_all: bool) -> Result<()> {
        let handles = {
            let mut pending = self.pending.lock().map_err(|_| poisoned())?;
            if wait_for_all {
                std::mem::take(&mut *pending)
            } else {
                let (done, running) = std::mem::take(&mut *pending).into_iter().partition(|h| h.is_finished());
                *pending = running;
                done
            }
        };
        let mut first_error = None;
        for handle in handles {
            let outcome = self.runtime.block_on(handle).unwrap_or_else(|e| {
                Err(Error::Storage { op: "upload", name: "pack".into(), cause: io::Error::other(e.to_string()) })
            });
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The error for `op` on `kind name`; a missing object on read is [`Error::Missing`].
fn storage_error(op: &'static str, kind: FileKind, name: &str, e: opendal::Error) -> Error {
    if e.kind() == ErrorKind::NotFound && op == "read" {
        return Error::Missing { kind: kind.label(), name: name.to_string() };
    }
    Error::Storage { op, name: kind.describe(name), cause: io::Error::other(summary(&e)) }
}

/// One line: what kind of failure, and the server's own words (opendal's full report spans
/// request and response headers).
fn summary(e: &opendal::Error) -> String {
    let retried = if e.is_temporary() { ", still failing after retries" } else { "" };
    let mut line = format!("{}{retried}: {}", e.kind(), e.message());
    // The innermost cause says what went wrong on the wire (connection refused, timeout, DNS).
    let mut cause = std::error::Error::source(e);
    let mut innermost = None;
    while let Some(c) = cause {
        innermost = Some(c);
        cause = c.source();
    }
    if let Some(c) = innermost {
        line.push_str(&format!(" ({c})"));
    }
    if e.kind() == ErrorKind::PermissionDenied {
        line.push_str(
            " (the server refused these credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             or AWS_PROFILE, and that the key may use this bucket)",
        );
    }
    line
}

fn poisoned() -> Error {
    Error::Storage { op: "upload", name: "pack".into(), cause: io::Error::other("an upload thread panicked") }
}

/// Streams a finished scratch file to `path` in parts of [`PART_SIZE`].
async fn upload(operator: Operator, path: String, kind: FileKind, name: String, file: SpoolFile) -> Result<()> {
    let len =
        file.as_file().metadata().map_err(|e| Error::Storage { op: "upload", name: name.clone(), cause: e })?.len();
    let read_error = |e: io::Error| Error::Storage { op: "read scratch file of", name: kind.describe(&name), cause: e };
    let mut reader = file.reopen().map_err(read_error)?;
    if len <= PART_SIZE as u64 {
        let mut data = Vec::with_capacity(len as usize);
        reader.read_to_end(&mut data).map_err(read_error)?;
        return write_once(&operator, &path, kind, &name, data).await;
    }
    let mut writer = operator
        .writer_with(&path)
        .chunk(PART_SIZE)
        .concurrent(1)
        .await
        .map_err(|e| storage_error("upload", kind, &name, e))?;
    loop {
        let mut part = vec![0u8; PART_SIZE];
        let n = read_full(&mut reader, &mut part).map_err(read_error)?;
        if n == 0 {
            break;
        }
        part.truncate(n);
        if let Err(e) = writer.write(part).await {
            let _ = writer.abort().await;
            return Err(storage_error("upload", kind, &name, e));
        }
    }
    writer.close().await.map_err(|e| storage_error("upload", kind, &name, e))?;
    Ok(())
}

/// Creates an object; an existing object of a content-addressed name already holds these bytes.
async fn write_once(operator: &Operator, path: &str, kind: FileKind, name: &str, data: Vec<u8>) -> Result<()> {
    let conditional = operator.info().capability().write_with_if_not_exists;
    match operator.write_with(path, data).if_not_exists(conditional).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::ConditionNotMatch && kind != FileKind::Config => Ok(()),
        Err(e) if e.kind() == ErrorKind::ConditionNotMatch => Err(Error::RepositoryExists(path.to_string())),
        Err(e) => Err(storage_error("write", kind, name, e)),
    }
}

/// Removes scratch files that killed snap processes left in `dir` (best effort).
fn remove_stale_spool_files(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with(SPOOL_PREFIX)
            && entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_SPOOL);
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl Backend for S3Backend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn create_layout(&self) -> Result<()> {
        // Object stores have no folders to create; an existing config means an existing repository.
        if self.exists(FileKind::Config, "config")? {
            return Err(Error::RepositoryExists(self.location()));
        }
        Ok(())
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        let path = object_path(kind, name)?;
        self.runtime.block_on(self.operator.exists(&path)).map_err(|e| storage_error("look up", kind, name, e))
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let path = object_path(kind, name)?;
        let mut out = Vec::new();
        self.runtime
            .block_on(async { self.operator.reader(&path).await?.read_into(&mut out, ..).await })
            .map_err(|e| storage_error("read", kind, name, e))?;
        Ok(out)
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let path = object_path(kind, name)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let end = offset.checked_add(len).ok_or_else(|| Error::InvalidArgument("range too large".into()))?;
        let capacity = usize::try_from(len).map_err(|_| Error::InvalidArgument("range too large".into()))?;
        // Streamed into one buffer piece by piece, so a read never holds its bytes twice.
        let mut out = Vec::with_capacity(capacity);
        let read = self.runtime.block_on(async {
            let reader = self.operator.reader(&path).await?;
            reader.read_into(&mut out, offset..end).await
        });
        let truncated =
            |what: &str| Error::corrupt(kind.label(), name, format!("truncated: bytes {offset}..{end} {what}"));
        match read {
            Ok(n) if n as u64 == len => Ok(out),
            Ok(_) => Err(truncated("are not all there")),
            Err(e) if e.kind() == ErrorKind::RangeNotSatisfied => Err(truncated("are not there")),
            Err(e) => Err(storage_error("read", kind, name, e)),
        }
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        let path = object_path(kind, name)?;
        self.runtime.block_on(write_once(&self.operator, &path, kind, name, data.to_vec()))
    }

    fn spool(&self) -> Result<SpoolFile> {
        tempfile::Builder::new().prefix(SPOOL_PREFIX).tempfile().map_err(|e| Error::Storage {
            op: "create scratch file in",
            name: std::env::temp_dir().display().to_string(),
            cause: e,
        })
    }

    fn publish(&self, kind: FileKind, name: &str, file: SpoolFile) -> Result<()> {
        let path = object_path(kind, name)?;
        // Surface an earlier upload's failure now rather than after more work is done.
        self.finish_uploads(false)?;
        let permit = self.runtime.block_on(self.uploads.clone().acquire_owned()).map_err(|e| Error::Storage {
            op: "upload",
            name: name.to_string(),
            cause: io::Error::other(e),
        })?;
        let operator = self.operator.clone();
        let name = name.to_string();
        let handle = self.runtime.spawn(async move {
            let result = upload(operator, path, kind, name, file).await;
            drop(permit);
            result
        });
        self.pending.lock().map_err(|_| poisoned())?.push(handle);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.finish_uploads(true)
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        let dir = format!("{}/", super::folder(kind));
        let entries = self
            .runtime
            .block_on(async { self.operator.list_with(&dir).recursive(true).await })
            .map_err(|e| storage_error("list", kind, "", e))?;
        Ok(entries
            .into_iter()
            .filter(|e| e.metadata().is_file())
            .filter_map(|e| {
                let name = e.name().to_string();
                super::valid_name(kind, &name).then(|| (name, e.metadata().content_length()))
            })
            .collect())
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let path = object_path(kind, name)?;
        self.runtime.block_on(self.operator.delete(&path)).map_err(|e| storage_error("remove", kind, name, e))
    }

    fn replace(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        let path = object_path(kind, name)?;
        self.runtime
            .block_on(self.operator.write(&path, data.to_vec()))
            .map(|_| ())
            .map_err(|e| storage_error("replace", kind, name, e))
    }

    fn read_parallelism(&self) -> usize {
        READS_IN_FLIGHT
    }

    fn local_root(&self) -> Option<PathBuf> {
        None
    }
}

impl Drop for S3Backend {
    fn drop(&mut self) {
        // Uploads nobody flushed belong to a failed command: let them finish or fail quietly,
        // whatever they leave is an unreferenced pack for prune.
        let _ = self.finish_uploads(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_style_locations() {
        let l = S3Location::parse("http://127.0.0.1:9000/photos/phone/2024").unwrap();
        assert_eq!(l.endpoint, "http://127.0.0.1:9000");
        assert_eq!(l.bucket, "photos");
        assert_eq!(l.prefix, "phone/2024");
        let l = S3Location::parse("s3.example.com/bucket").unwrap();
        assert_eq!(
            (l.endpoint.as_str(), l.bucket.as_str(), l.prefix.as_str()),
            ("https://s3.example.com", "bucket", "")
        );
        let l = S3Location::parse("https://host/bucket/prefix/").unwrap();
        assert_eq!(l.prefix, "prefix");
    }

    #[test]
    fn stale_spool_files_go_and_fresh_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(format!("{SPOOL_PREFIX}old"));
        let fresh = dir.path().join(format!("{SPOOL_PREFIX}fresh"));
        let other = dir.path().join("unrelated");
        for p in [&old, &fresh, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        let two_hours_ago = filetime::FileTime::from_unix_time(chrono::Utc::now().timestamp() - 7200, 0);
        filetime::set_file_mtime(&old, two_hours_ago).unwrap();
        filetime::set_file_mtime(&other, two_hours_ago).unwrap();
        remove_stale_spool_files(dir.path());
        assert!(!old.exists() && fresh.exists() && other.exists());
    }

    #[test]
    fn refuses_incomplete_or_odd_locations() {
        for bad in ["", "https://", "https://host", "https://host/", "ftp://host/b", "https://host/b/../x"] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
    }
}
