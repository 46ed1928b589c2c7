//! What only a remote repository has: the local cache, credentials, a server that is not there.
//! (Every repository scenario also runs on S3 through `on_every_backend!` in the other files.)

mod common;

use common::{Env, assert_same_tree, describe, du};
use std::fs;
use std::path::Path;

fn files_below(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(files_below(&path)) } else { out.push(path) }
    }
    out
}

#[test]
fn the_cache_is_only_a_copy_damaged_or_lost_it_changes_nothing() {
    let Some(env) = Env::s3() else { return };
    env.init();
    let src = env.phone();
    env.ok(&["create", src.to_str().unwrap()]);
    let out = env.path("out1");
    env.ok(&["restore", "latest", "-t", out.to_str().unwrap()]);
    let cached = files_below(&env.cache_dir());
    assert!(cached.len() >= 3, "index, snapshot and tree pack are cached: {cached:?}");
    // Rot every cached file: each is checked against its name, dropped and fetched again.
    for path in &cached {
        let mut bytes = fs::read(path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        fs::write(path, bytes).unwrap();
    }
    let out = env.path("out2");
    env.ok(&["restore", "latest", "-t", out.to_str().unwrap()]);
    assert_same_tree(&src, &out);
    fs::remove_dir_all(env.cache_dir()).unwrap();
    let out = env.path("out3");
    env.ok(&["restore", "latest", "-t", out.to_str().unwrap()]);
    assert_same_tree(&src, &out);
    // --no-cache leaves no trace.
    fs::remove_dir_all(env.cache_dir()).unwrap();
    env.ok(&["--no-cache", "ls", "latest"]);
    assert_eq!(du(&env.cache_dir()), 0);
}

#[test]
fn check_audits_the_bucket_even_when_the_cache_still_has_the_file() {
    let Some(env) = Env::s3() else { return };
    let Some(data) = env.data_dir() else { return }; // needs to reach into the bucket
    env.init();
    let src = env.phone();
    env.ok(&["create", src.to_str().unwrap()]);
    env.ok(&["snapshots"]); // fills the cache
    let index_dir = data.parent().unwrap().join("index");
    for file in files_below(&index_dir) {
        fs::remove_file(file).unwrap();
    }
    let out = env.run(&["check"]);
    assert_ne!(out.status.code(), Some(0), "a bucket without its index must not check clean: {}", describe(&out));
}

#[test]
fn wrong_credentials_and_an_absent_server_are_one_clear_line() {
    let Some(env) = Env::s3() else { return };
    env.init();
    let out = env.snap().env("AWS_SECRET_ACCESS_KEY", "not-the-secret").args(["snapshots"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(err.contains("config") && err.to_lowercase().contains("permission"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    // A port nothing listens on: refused at once, retried, then named.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let out = env
        .snap()
        .env("SNAP_REPOSITORY", format!("s3:http://127.0.0.1:{port}/bucket/x"))
        .args(["snapshots"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(err.contains("read config") && err.contains("refused"), "{err}");
}

#[test]
fn malformed_s3_locations_are_refused_before_any_request() {
    let env = Env::new();
    for bad in ["s3:", "s3:https://host", "s3:ftp://host/bucket", "s3:https://host/b/../x"] {
        let out = env.snap().env("SNAP_REPOSITORY", bad).args(["snapshots"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad}: {}", describe(&out));
        assert!(err.contains("invalid S3 location"), "{bad}: {err}");
    }
}
