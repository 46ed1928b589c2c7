//! A repository written by snap 0.1 is committed under tests/golden/; every later snap must
//! still list, check and restore it exactly. Regenerate (only for a deliberate new format
//! version) with `cargo test --test golden -- --ignored regenerate`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const GOLDEN_PASSWORD: &str = "golden";

fn golden_repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/encrypted"))
}

fn set(path: &Path, mode: u32, secs: i64) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    filetime::set_symlink_file_times(
        path,
        filetime::FileTime::from_unix_time(secs, 0),
        filetime::FileTime::from_unix_time(secs, 987_654_321),
    )
    .unwrap();
}

/// The source of the golden snapshots; `second` adds the second day's changes.
fn golden_source(root: &Path, second: bool) {
    fs::create_dir_all(root.join("DCIM/Camera")).unwrap();
    fs::create_dir_all(root.join("Backups")).unwrap();
    fs::write(root.join("hello.txt"), "hello, snap\n").unwrap();
    fs::write(root.join("DCIM/Camera/PXL_20240301_100000.jpg"), common::phone::jpeg(1, 100 * 1024, None)).unwrap();
    fs::write(root.join("Backups/calls-20240301.xml"), common::phone::export("call", 400)).unwrap();
    std::os::unix::fs::symlink("DCIM/Camera", root.join("camera")).unwrap_or(());
    if second {
        fs::write(root.join("Backups/calls-20240302.xml"), common::phone::export("call", 420)).unwrap();
        fs::write(root.join("DCIM/Camera/PXL_20240301_100000.jpg"), common::phone::jpeg(1, 100 * 1024, Some(5)))
            .unwrap();
    }
    set(&root.join("hello.txt"), 0o640, 1_700_000_000);
    set(&root.join("DCIM/Camera/PXL_20240301_100000.jpg"), 0o644, 1_709_287_200);
    set(&root.join("Backups/calls-20240301.xml"), 0o600, 1_709_300_000);
    if second {
        set(&root.join("Backups/calls-20240302.xml"), 0o600, 1_709_386_400);
    }
    filetime::set_symlink_file_times(
        root.join("camera"),
        filetime::FileTime::from_unix_time(1_709_000_000, 0),
        filetime::FileTime::from_unix_time(1_709_000_000, 0),
    )
    .unwrap();
    for d in ["DCIM/Camera", "DCIM", "Backups"] {
        set(&root.join(d), 0o755, 1_709_251_200);
    }
}

fn snap(repo: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_snap"));
    c.env("SNAP_REPOSITORY", repo).env("SNAP_PASSWORD", GOLDEN_PASSWORD).env_remove("SNAP_PASSWORD_FILE");
    c
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", common::describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn golden_repository_still_reads() {
    let copy = tempfile::tempdir().unwrap();
    let repo = copy.path().join("repo");
    assert!(Command::new("cp").arg("-a").arg(golden_repo()).arg(&repo).status().unwrap().success());
    let listing = run_ok(snap(&repo).args(["--json", "snapshots"]));
    let snaps: serde_json::Value = serde_json::from_str(&listing).unwrap();
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    run_ok(snap(&repo).args(["check", "--read-data"]));

    let work = tempfile::tempdir().unwrap();
    for (i, second) in [(0, false), (1, true)] {
        let expected = work.path().join(format!("expected{i}"));
        golden_source(&expected, second);
        let out = work.path().join(format!("out{i}"));
        let id = snaps[i]["id"].as_str().unwrap();
        run_ok(snap(&repo).args(["restore", id, "-t", out.to_str().unwrap()]));
        common::assert_same_tree(&expected, &out);
    }
}

#[test]
#[ignore = "rewrites tests/golden; run only for a deliberate format change"]
fn regenerate() {
    let repo = golden_repo();
    let _ = fs::remove_dir_all(&repo);
    run_ok(snap(&repo).args(["init", "--kdf-memory-kib", "256", "--kdf-iterations", "1"]));
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("phone");
    golden_source(&src, false);
    run_ok(snap(&repo).args(["create", "--host", "golden", src.to_str().unwrap()]));
    golden_source(&src, true);
    run_ok(snap(&repo).args(["create", "--host", "golden", src.to_str().unwrap()]));
    let _ = fs::remove_dir_all(repo.join("tmp"));
}
