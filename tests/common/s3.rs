//! An S3-compatible server for tests on 127.0.0.1.
//!
//! By default each test starts its own `s3s-fs` (installed with
//! `cargo install --locked s3s-fs@0.14.1 --features binary`) on a free port, with a bucket in a
//! temporary folder, and stops it when done. To run the tests against another server (Garage,
//! MinIO), set `SNAP_TEST_S3_ENDPOINT` (e.g. `http://127.0.0.1:3900`), `SNAP_TEST_S3_BUCKET`
//! (an existing bucket), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, if needed,
//! `SNAP_TEST_S3_REGION`; every test then works below a prefix of its own.
//!
//! Without either, S3 tests are skipped with a message, unless `SNAP_REQUIRE_S3` is set
//! (as `.ci/run` does), in which case they fail.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "SNAPTESTACCESSKEY";
pub const SECRET_KEY: &str = "snap-test-secret-key-0123456789";

pub struct S3Server {
    child: Option<Child>,
    _data: Option<tempfile::TempDir>,
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// Folder holding the bucket's objects, when the server is a local s3s-fs.
    pub bucket_dir: Option<PathBuf>,
}

impl S3Server {
    /// A server for one test, or `None` (after saying why) when none is available.
    pub fn start() -> Option<S3Server> {
        if let Ok(endpoint) = std::env::var("SNAP_TEST_S3_ENDPOINT") {
            let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("SNAP_TEST_S3_ENDPOINT needs {k}"));
            return Some(S3Server {
                child: None,
                _data: None,
                endpoint,
                bucket: var("SNAP_TEST_S3_BUCKET"),
                access_key: var("AWS_ACCESS_KEY_ID"),
                secret_key: var("AWS_SECRET_ACCESS_KEY"),
                region: std::env::var("SNAP_TEST_S3_REGION").unwrap_or_else(|_| "garage".into()),
                bucket_dir: None,
            });
        }
        let Some(binary) = find_s3s_fs() else {
            assert!(
                std::env::var_os("SNAP_REQUIRE_S3").is_none(),
                "SNAP_REQUIRE_S3 is set but s3s-fs is not installed \
                 (cargo install --locked s3s-fs@0.14.1 --features binary)"
            );
            eprintln!("skipped: no S3 server (install s3s-fs or set SNAP_TEST_S3_ENDPOINT)");
            return None;
        };
        let data = tempfile::tempdir().expect("server folder");
        let bucket = "snap-test".to_string();
        std::fs::create_dir(data.path().join(&bucket)).expect("bucket folder");
        for _attempt in 0..5 {
            let port = free_port();
            let child = Command::new(&binary)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(data.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start s3s-fs");
            let mut server = S3Server {
                child: Some(child),
                endpoint: format!("http://127.0.0.1:{port}"),
                bucket: bucket.clone(),
                access_key: ACCESS_KEY.into(),
                secret_key: SECRET_KEY.into(),
                region: "us-east-1".into(),
                bucket_dir: Some(data.path().join(&bucket)),
                _data: None,
            };
            if server.wait_until_listening(port) {
                server._data = Some(data);
                return Some(server);
            }
        }
        panic!("s3s-fs did not start");
    }

    fn wait_until_listening(&mut self, port: u16) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return true;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                return false; // the port was taken meanwhile
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// A repository location no other test uses.
    pub fn new_location(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("s3:{}/{}/t{}-{n}/repo", self.endpoint, self.bucket, std::process::id())
    }

    /// Environment for `snap` to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("SNAP_S3_REGION", self.region.clone()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn find_s3s_fs() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join("s3s-fs")).find(|p| p.is_file())
}
