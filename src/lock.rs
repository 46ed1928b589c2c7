//! Repository locks: who is writing or deleting right now.
//!
//! `create` and `restore` hold shared locks; `forget` and `prune` hold an exclusive one, so
//! nothing is deleted while a backup may still reference it. A lock is a sealed JSON file in
//! `locks/`, written once; "refreshing" writes a new one and removes the old. Locks cannot go
//! stale silently:
//! - a holder refreshes every 5 minutes; a lock older than 30 minutes is stale and ignored,
//!   and one whose process is gone (same host, no such pid) is stale at once, so a crashed
//!   holder never needs a user to delete files;
//! - a holder whose own lock went stale (the laptop slept, the refresh failed) learns it from
//!   [`LockGuard::was_ever_stale`] before it commits, and must re-validate what it relies on.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::crypto::{Keys, aad};
use crate::error::{Error, Result};
use crate::format;
use crate::id::Id;
use crate::repo::Repository;
use crate::store::{Backend, FileKind};

pub const LOCK_VERSION: u8 = 1;
/// A lock not refreshed for this long is stale.
pub const STALE_AFTER_SECS: i64 = 30 * 60;
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub exclusive: bool,
    pub operation: String,
    pub hostname: String,
    pub pid: u32,
    /// Unix seconds when this lock file was written.
    pub time: i64,
}

impl LockInfo {
    fn describe(&self) -> String {
        let at = chrono::DateTime::from_timestamp(self.time, 0).map(|t| t.to_rfc3339()).unwrap_or_default();
        format!("`snap {}` on {} (pid {}), lock written {at}", self.operation, self.hostname, self.pid)
    }

    /// Stale: too old, or its process is gone (checked only for this host).
    pub fn is_stale(&self, now: i64, this_host: &str) -> bool {
        if now - self.time > STALE_AFTER_SECS {
            return true;
        }
        self.hostname == this_host && !process_alive(self.pid)
    }
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Writes and removes lock files; owns what it needs, so the refresher thread can use it.
struct LockWriter {
    backend: Arc<dyn Backend>,
    keys: Arc<Keys>,
}

impl LockWriter {
    fn write(&self, info: &LockInfo) -> Result<String> {
        let body = serde_json::to_vec(info).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let sealed = self.keys.seal(aad::LOCK, &format::wrap_payload(LOCK_VERSION, &body, false))?;
        let name = Id::of_bytes(&sealed).to_hex();
        self.backend.write(FileKind::Lock, &name, &sealed)?;
        Ok(name)
    }

    fn remove(&self, name: &str) {
        let _ = self.backend.remove(FileKind::Lock, name);
    }
}

/// Every readable lock with its file name. Unreadable ones (damaged, or written with another
/// key) are returned as `None`, so an exclusive acquirer can treat them as held.
pub fn list_locks(repo: &Repository) -> Result<Vec<(String, Option<LockInfo>)>> {
    let mut out = Vec::new();
    for (name, _) in repo.backend().list(FileKind::Lock)? {
        let info = repo.backend().read(FileKind::Lock, &name).ok().and_then(|sealed| {
            let plain = repo.keys().open(aad::LOCK, &sealed, "lock", &|| name.clone()).ok()?;
            let body = format::unwrap_payload(&plain, LOCK_VERSION, "lock", &|| name.clone()).ok()?;
            serde_json::from_slice(&body).ok()
        });
        out.push((name, info));
    }
    Ok(out)
}

/// Removes lock files that cannot belong to a running snap: stale ones, unreadable ones, or
/// (with `all`) every one. Returns each removed file with the reason.
pub fn remove_unusable(repo: &Repository, all: bool) -> Result<Vec<(String, String)>> {
    let this_host = crate::clock::hostname();
    let mut removed = Vec::new();
    for (name, info) in list_locks(repo)? {
        let reason = match &info {
            _ if all => "removed on request".to_string(),
            None => "unreadable (damaged, or written with another key)".to_string(),
            Some(lock) if lock.is_stale(now(), &this_host) => format!("stale: {}", lock.describe()),
            Some(_) => continue,
        };
        repo.backend().remove(FileKind::Lock, &name)?;
        removed.push((name, reason));
    }
    Ok(removed)
}

struct Shared {
    current: Mutex<String>,
    last_refresh: AtomicI64,
    went_stale: AtomicBool,
}

/// A held lock; dropping it removes the lock file.
pub struct LockGuard {
    writer: Arc<LockWriter>,
    shared: Arc<Shared>,
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl LockGuard {
    /// True if the lock was, at some moment, older than the stale limit: another process may
    /// then have taken an exclusive lock and deleted data meanwhile.
    pub fn was_ever_stale(&self) -> bool {
        self.shared.went_stale.load(Ordering::SeqCst)
            || now() - self.shared.last_refresh.load(Ordering::SeqCst) > STALE_AFTER_SECS - 60
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(handle) = self.refresher.take() {
            let _ = handle.join();
        }
        if let Ok(name) = self.shared.current.lock() {
            self.writer.remove(&name);
        }
    }
}

/// Takes a lock. Conflicts: an exclusive lock conflicts with every other live lock, a shared
/// one with live exclusive locks. Waits up to `retry` for conflicting holders to finish.
pub fn acquire(repo: &Repository, exclusive: bool, operation: &str, retry: Duration) -> Result<LockGuard> {
    let writer = Arc::new(LockWriter { backend: repo.shared_backend(), keys: repo.shared_keys() });
    let hostname = crate::clock::hostname();
    let this_host = hostname.clone();
    let operation = operation.to_string();
    let info = move |time| LockInfo {
        exclusive,
        operation: operation.clone(),
        hostname: hostname.clone(),
        pid: std::process::id(),
        time,
    };
    let deadline = std::time::Instant::now() + retry;
    loop {
        let time = now();
        let mine = writer.write(&info(time))?;
        let mut conflict = None;
        for (name, other) in list_locks(repo)? {
            if name == mine {
                continue;
            }
            match other {
                // A stale lock is ignored; an exclusive acquirer also clears it away.
                Some(o) if o.is_stale(now(), &this_host) && exclusive => writer.remove(&name),
                Some(o) if o.is_stale(now(), &this_host) => {}
                Some(o) if exclusive || o.exclusive => conflict = Some(o.describe()),
                None if exclusive => {
                    conflict = Some(format!(
                        "an unreadable lock file locks/{name} (if no snap is running, `snap unlock` removes it)"
                    ))
                }
                _ => {}
            }
        }
        let Some(holder) = conflict else {
            return Ok(start_refresher(writer, mine, time, info));
        };
        writer.remove(&mine);
        if std::time::Instant::now() >= deadline {
            return Err(Error::Locked(holder));
        }
        std::thread::sleep(Duration::from_secs(2).min(retry));
    }
}

/// A shared lock for an operation that only reads: taken when the storage lets us write one;
/// on read-only storage the operation goes on unlocked (a conflicting lock still stops it).
pub fn acquire_for_reading(repo: &Repository, operation: &str, retry: Duration) -> Result<Option<LockGuard>> {
    match acquire(repo, false, operation, retry) {
        Ok(guard) => Ok(Some(guard)),
        Err(Error::Storage { .. }) => {
            let hostname = crate::clock::hostname();
            let exclusive = list_locks(repo)?
                .into_iter()
                .filter_map(|(_, l)| l)
                .find(|l| l.exclusive && !l.is_stale(now(), &hostname));
            match exclusive {
                Some(l) => Err(Error::Locked(l.describe())),
                None => Ok(None),
            }
        }
        Err(e) => Err(e),
    }
}

fn start_refresher(
    writer: Arc<LockWriter>,
    name: String,
    time: i64,
    info: impl Fn(i64) -> LockInfo + Send + 'static,
) -> LockGuard {
    let shared = Arc::new(Shared {
        current: Mutex::new(name),
        last_refresh: AtomicI64::new(time),
        went_stale: AtomicBool::new(false),
    });
    let (stop, stopped) = mpsc::channel::<()>();
    let (thread_shared, thread_writer) = (Arc::clone(&shared), Arc::clone(&writer));
    let refresher = std::thread::spawn(move || {
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(REFRESH_EVERY) {
            let t = now();
            if t - thread_shared.last_refresh.load(Ordering::SeqCst) > STALE_AFTER_SECS {
                thread_shared.went_stale.store(true, Ordering::SeqCst);
            }
            if let Ok(new_name) = thread_writer.write(&info(t)) {
                if let Ok(mut current) = thread_shared.current.lock() {
                    let old = std::mem::replace(&mut *current, new_name);
                    thread_writer.remove(&old);
                }
                thread_shared.last_refresh.store(t, Ordering::SeqCst);
            }
        }
    });
    LockGuard { writer, shared, stop: Some(stop), refresher: Some(refresher) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::{InitOptions, Repository};

    fn repository(dir: &std::path::Path) -> Repository {
        let options = InitOptions { encryption: false, kdf: Default::default(), append_only: false };
        let location = dir.join("repo");
        let backend = crate::store::open_backend(&location.display().to_string(), &Default::default()).unwrap();
        Repository::init(backend, None, &options).unwrap()
    }

    #[test]
    fn a_lock_left_unrefreshed_near_the_stale_limit_counts_as_lapsed() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repository(dir.path());
        let guard = acquire(&repo, true, "prune", Duration::ZERO).unwrap();
        assert!(!guard.was_ever_stale());
        // The machine slept 29½ minutes: others do not yet see the lock as stale, but the holder
        // already must not start deleting.
        guard.shared.last_refresh.store(now() - STALE_AFTER_SECS + 30, Ordering::SeqCst);
        assert!(guard.was_ever_stale());
    }

    #[test]
    fn an_exclusive_lock_blocks_a_second_one_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repository(dir.path());
        let held = acquire(&repo, true, "prune", Duration::ZERO).unwrap();
        assert!(matches!(acquire(&repo, false, "create", Duration::ZERO), Err(Error::Locked(_))));
        drop(held);
        assert!(acquire(&repo, false, "create", Duration::ZERO).is_ok());
    }
}
