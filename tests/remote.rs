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
    assert!(err.contains("refused these credentials"), "{err}");
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
fn credentials_come_from_the_named_aws_profile() {
    let Some(env) = Env::s3() else { return };
    env.init();
    let Some(server) = &env.server else { return };
    let home = env.path("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    let credentials = format!(
        "[default]\naws_access_key_id = nobody\naws_secret_access_key = wrong\n\n\
         [family]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        server.access_key, server.secret_key
    );
    std::fs::write(home.join(".aws/credentials"), credentials).unwrap();
    let with_profile = |profile: Option<&str>| {
        let mut cmd = env.snap();
        cmd.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY").env_remove("AWS_SESSION_TOKEN");
        cmd.env_remove("AWS_SHARED_CREDENTIALS_FILE").env_remove("AWS_CONFIG_FILE").env("HOME", &home);
        match profile {
            Some(p) => cmd.env("AWS_PROFILE", p),
            None => cmd.env_remove("AWS_PROFILE"),
        };
        cmd.args(["snapshots"]).output().unwrap()
    };
    let out = with_profile(Some("family"));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = with_profile(None);
    assert_eq!(out.status.code(), Some(1), "the default profile's key is wrong: {}", describe(&out));
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

/// The S3 backend of a test server, opened through the library with explicit credentials.
fn backend(env: &Env) -> Box<dyn snap::store::Backend> {
    let server = env.server.as_ref().unwrap();
    let options = snap::store::StoreOptions {
        s3: snap::store::s3::S3Options {
            region: Some(server.region.clone()),
            virtual_host: false,
            credentials: Some((server.access_key.clone(), server.secret_key.clone())),
        },
        cache_dir: None,
    };
    snap::store::open_backend(&env.location, &options).unwrap()
}

#[test]
fn listings_follow_every_page() {
    use snap::store::FileKind;
    let Some(env) = Env::s3() else { return };
    let store = backend(&env);
    // S3 returns at most 1,000 keys per page.
    let names: Vec<String> = (0..1_234u32).map(|i| blake3::hash(&i.to_le_bytes()).to_hex().to_string()).collect();
    std::thread::scope(|scope| {
        for part in names.chunks(80) {
            let store = &store;
            scope.spawn(move || {
                for name in part {
                    store.write(FileKind::Lock, name, name.as_bytes()).unwrap();
                }
            });
        }
    });
    let mut listed: Vec<(String, u64)> = store.list(FileKind::Lock).unwrap();
    listed.sort();
    let mut expected: Vec<(String, u64)> = names.iter().map(|n| (n.clone(), 64)).collect();
    expected.sort();
    assert_eq!(listed.len(), 1_234);
    assert_eq!(listed, expected, "every name, with its size");
}

/// A proxy in front of the server that answers some connections with `503 Slow Down` and
/// closes them (the first three, then every fifth), and forwards the others. Returns its
/// endpoint and how many connections it refused.
fn flaky_proxy(upstream: &str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::Ordering;
    let upstream = upstream.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = refused.clone();
    std::thread::spawn(move || {
        for (n, client) in listener.incoming().enumerate() {
            let Ok(mut client) = client else { continue };
            if n < 3 || n % 5 == 0 {
                let mut head = [0u8; 1024];
                let _ = client.read(&mut head);
                let _ = client.write_all(
                    b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\nContent-Length: 65\r\n\r\n<Error><Code>SlowDown</Code><Message>Slow down</Message></Error>",
                );
                counter.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Ok(server) = TcpStream::connect(&upstream) else { continue };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut client, mut server) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client, &mut server);
                let _ = server.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (endpoint, refused)
}

#[test]
fn throttling_and_server_errors_are_retried() {
    let Some(mut env) = Env::s3() else { return };
    let server = env.server.as_ref().unwrap();
    let (proxy, refused) = flaky_proxy(&server.endpoint);
    env.location = env.location.replacen(&server.endpoint, &proxy, 1);
    env.init();
    let src = env.phone();
    env.ok(&["create", src.to_str().unwrap()]);
    let out = env.path("out");
    env.ok(&["--no-cache", "restore", "latest", "-t", out.to_str().unwrap()]);
    assert_same_tree(&src, &out);
    env.ok(&["check", "--read-data"]);
    assert!(refused.load(std::sync::atomic::Ordering::Relaxed) >= 3, "the proxy refused requests");
}
