//! Helpers for tests that drive the real `snap` binary on temporary folders.

#![allow(dead_code)]

pub mod phone;
pub mod s3;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const PASSWORD: &str = "correct horse battery staple";

/// A scratch folder holding a repository (`repo`, unless it lives on an S3 server) and
/// whatever a test puts beside it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    /// What `snap` is given as the repository: `repo`, or an `s3:` location.
    pub location: String,
    pub server: Option<s3::S3Server>,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = dir.path().join("repo");
        Env { location: repo.display().to_string(), dir, repo, server: None }
    }

    /// An environment whose repository is on a test S3 server; `None` if there is no server.
    pub fn s3() -> Option<Env> {
        let server = s3::S3Server::start()?;
        let mut env = Env::new();
        env.location = server.new_location();
        env.server = Some(server);
        Some(env)
    }

    /// The local cache of a remote repository.
    pub fn cache_dir(&self) -> PathBuf {
        self.path("cache")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `snap` with this repository and password in its environment and nothing inherited.
    pub fn snap(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_snap"));
        for (k, _) in std::env::vars() {
            if k.starts_with("SNAP_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("SNAP_REPOSITORY", &self.location).env("SNAP_PASSWORD", PASSWORD);
        cmd.env("SNAP_CACHE_DIR", self.cache_dir());
        if let Some(server) = &self.server {
            cmd.envs(server.env());
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.snap().args(args).output().expect("run snap")
    }

    /// Runs and asserts exit code 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "snap {args:?} failed: {}\nstdout: {}",
            describe(&out),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(matches!(out.status.code(), Some(0 | 3)), "snap {args:?}: {}", describe(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("snap {args:?} printed no JSON ({e}): {}", describe(&out)))
    }

    /// An encrypted repository with a cheap KDF (the KDF's cost is not what tests exercise).
    pub fn init(&self) {
        self.ok(&["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]);
    }

    pub fn init_unencrypted(&self) {
        self.ok(&["init", "--encryption", "none"]);
    }

    /// A small generated phone folder at `phone`.
    pub fn phone(&self) -> PathBuf {
        let root = self.path("phone");
        phone::generate(&root, &phone::PhoneSpec::small()).expect("generate phone folder");
        root
    }
}

/// An encrypted repository holding one verified snapshot of the small phone folder.
pub fn backed_up() -> (Env, PathBuf) {
    let env = Env::new();
    env.init();
    let src = env.phone();
    env.ok(&["create", src.to_str().unwrap()]);
    env.ok(&["check", "--read-data"]);
    (env, src)
}

pub fn describe(out: &Output) -> String {
    format!("exit {:?}, stderr: {}", out.status.code(), String::from_utf8_lossy(&out.stderr))
}

/// What a test compares of each entry: kind, bytes or link target, mode and mtime.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    File { content_hash: String, size: u64, mode: u32, mtime: (i64, i64) },
    Dir { mode: u32 },
    Symlink { target: PathBuf },
}

/// Every entry below `root`, by relative path.
pub fn snapshot_of(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    collect(root, root, &mut out);
    out
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
    let mut entries: Vec<_> = fs::read_dir(dir).expect("read dir").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for path in entries {
        let rel = path.strip_prefix(root).expect("prefix").to_string_lossy().into_owned();
        let m = fs::symlink_metadata(&path).expect("lstat");
        if m.file_type().is_symlink() {
            out.insert(rel, Entry::Symlink { target: fs::read_link(&path).expect("readlink") });
        } else if m.is_dir() {
            out.insert(rel, Entry::Dir { mode: m.permissions().mode() & 0o7777 });
            collect(root, &path, out);
        } else {
            let bytes = fs::read(&path).expect("read");
            out.insert(
                rel,
                Entry::File {
                    content_hash: blake3::hash(&bytes).to_hex().to_string(),
                    size: bytes.len() as u64,
                    mode: m.permissions().mode() & 0o7777,
                    mtime: (m.mtime(), m.mtime_nsec()),
                },
            );
        }
    }
}

pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let a = snapshot_of(expected);
    let b = snapshot_of(actual);
    for (path, entry) in &a {
        assert_eq!(b.get(path), Some(entry), "{path} differs after restore");
    }
    let extra: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(extra.is_empty(), "restore wrote entries that are not in the source: {extra:?}");
}

/// Every file below `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).expect("read dir") {
        let p = e.expect("dir entry").path();
        if p.is_dir() { out.extend(files_in(&p)) } else { out.push(p) }
    }
    out.sort();
    out
}

/// Total size of all files below `dir`.
pub fn du(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let m = e.metadata().expect("metadata");
            total += if m.is_dir() { du(&e.path()) } else { m.len() };
        }
    }
    total
}

impl Env {
    /// The folder holding the repository's packs, where the test can see it: the local
    /// repository's, or a local S3 server's copy of the bucket. `None` on an external server.
    pub fn data_dir(&self) -> Option<PathBuf> {
        let Some(server) = &self.server else { return Some(self.repo.join("data")) };
        let prefix = self.location.splitn(5, '/').nth(4)?;
        Some(server.bucket_dir.as_ref()?.join(prefix).join("data"))
    }
}

/// Defines, for each scenario `fn name(env: Env)`, a test `name::local` on a repository folder
/// and a test `name::s3` on a test S3 server (skipped when there is none; see `s3.rs`).
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn local() {
                    super::$name($crate::common::Env::new())
                }
                #[test]
                fn s3() {
                    if let Some(env) = $crate::common::Env::s3() {
                        super::$name(env)
                    }
                }
            }
        )*
    };
}

impl Env {
    /// Bytes in the repository's pack files, as `snap stats` reports them (any backend).
    pub fn pack_bytes(&self) -> u64 {
        self.json(&["stats"])["pack_bytes"].as_u64().expect("stats reports pack_bytes")
    }
}

impl Env {
    /// Adds a key slot opened by `password` (cheap KDF); returns the password file it used.
    pub fn add_password_key(&self, password: &str) -> PathBuf {
        let file = self.path(&format!("password-{}", blake3::hash(password.as_bytes()).to_hex()));
        fs::write(&file, password).expect("write password file");
        let file_arg = file.to_str().expect("utf-8 temp path");
        self.ok(&["key", "add", "--new-password-file", file_arg, "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]);
        file
    }
}
