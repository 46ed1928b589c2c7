//! Every failure a user can cause gets a one-line message, the documented exit code, no panic,
//! and leaves the repository as it was.

mod common;

use common::{Env, describe};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_fails(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().filter(|l| l.starts_with("snap:")).count(), 1, "one error line: {err}");
}

#[test]
fn wrong_password_exits_12() {
    let env = Env::new();
    env.init();
    let out = env.snap().env("SNAP_PASSWORD", "wrong").args(["snapshots"]).output().unwrap();
    assert_fails(&out, 12, "wrong password");
}

#[test]
fn empty_password_is_refused() {
    let env = Env::new();
    let out = env.snap().env("SNAP_PASSWORD", "").args(["init"]).output().unwrap();
    assert_fails(&out, 1, "password is empty");
    assert!(!env.repo.join("config").exists());
}

#[test]
fn no_password_and_no_terminal_says_how_to_give_one() {
    let env = Env::new();
    env.init();
    let out =
        env.snap().env_remove("SNAP_PASSWORD").args(["snapshots"]).stdin(std::process::Stdio::null()).output().unwrap();
    assert_fails(&out, 1, "SNAP_PASSWORD");
}

#[test]
fn password_file_and_command_work() {
    let env = Env::new();
    env.init();
    let file = env.path("pw");
    fs::write(&file, format!("{}\n", common::PASSWORD)).unwrap();
    let out = env
        .snap()
        .env_remove("SNAP_PASSWORD")
        .args(["snapshots", "--password-file", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let cmd = format!("cat {}", file.display());
    let out = env.snap().env_remove("SNAP_PASSWORD").args(["snapshots", "--password-command", &cmd]).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn missing_repository_exits_10() {
    let env = Env::new();
    assert_fails(&env.run(&["snapshots"]), 10, "no snap repository at");
    let out = env.snap().env_remove("SNAP_REPOSITORY").args(["snapshots"]).output().unwrap();
    assert_fails(&out, 1, "no repository given");
}

#[test]
fn init_refuses_existing_repository_and_non_empty_folder() {
    let env = Env::new();
    env.init();
    let config = fs::read(env.repo.join("config")).unwrap();
    assert_fails(&env.run(&["init"]), 1, "already holds a snap repository");
    assert_eq!(fs::read(env.repo.join("config")).unwrap(), config, "the existing config is untouched");
    let other = env.path("notempty");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("photo.jpg"), b"x").unwrap();
    let out = env.snap().env("SNAP_REPOSITORY", &other).args(["init"]).output().unwrap();
    assert_fails(&out, 1, "not empty");
}

#[test]
fn newer_repository_version_is_refused_clearly() {
    let env = Env::new();
    env.init();
    let config = fs::read_to_string(env.repo.join("config")).unwrap();
    fs::write(env.repo.join("config"), config.replace("\"version\": 1", "\"version\": 7")).unwrap();
    assert_fails(&env.run(&["snapshots"]), 1, "version 7 is newer than this snap understands");
}

#[test]
fn damaged_config_is_named() {
    let env = Env::new();
    env.init();
    fs::write(env.repo.join("config"), b"{ not json").unwrap();
    assert_fails(&env.run(&["snapshots"]), 1, "config config is damaged");
}

#[test]
fn key_file_from_another_repository_is_recognised() {
    let a = Env::new();
    a.init();
    let b = Env::new();
    b.init();
    for e in fs::read_dir(a.repo.join("keys")).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    for e in fs::read_dir(b.repo.join("keys")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), a.repo.join("keys").join(e.file_name())).unwrap();
    }
    assert_fails(&a.run(&["snapshots"]), 1, "belongs to another repository");
}

#[test]
fn missing_source_folder_is_an_error_and_writes_no_snapshot() {
    let env = Env::new();
    env.init();
    let missing = env.path("no-such-folder");
    assert_fails(&env.run(&["create", missing.to_str().unwrap()]), 1, "no-such-folder");
    assert_eq!(fs::read_dir(env.repo.join("snapshots")).unwrap().count(), 0);
}

#[test]
fn restore_target_that_is_a_file_is_refused() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"a").unwrap();
    env.ok(&["create", src.to_str().unwrap()]);
    let file = env.path("file");
    fs::write(&file, b"x").unwrap();
    assert_fails(&env.run(&["restore", "latest", "-t", file.to_str().unwrap()]), 1, "file");
    assert_eq!(fs::read(&file).unwrap(), b"x");
}

/// `snap` as an unprivileged user when the tests run as root (root reads everything).
fn unprivileged(env: &Env) -> Command {
    let root = running_as_root();
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_snap")]);
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_snap"))
    };
    cmd.env("SNAP_REPOSITORY", &env.repo).env("SNAP_PASSWORD", common::PASSWORD).env_remove("SNAP_PASSWORD_FILE");
    cmd
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn open_up(path: &std::path::Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o777)).unwrap();
}

#[test]
fn unreadable_file_is_skipped_with_exit_3_and_recorded() {
    let env = Env::new();
    open_up(env.dir.path());
    let out = unprivileged(&env).args(["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let src = env.path("src");
    fs::create_dir_all(src.join("DCIM")).unwrap();
    fs::write(src.join("DCIM/ok.jpg"), b"fine").unwrap();
    fs::write(src.join("DCIM/secret.jpg"), b"no access").unwrap();
    fs::create_dir_all(src.join("locked")).unwrap();
    fs::write(src.join("locked/inner.txt"), b"x").unwrap();
    for p in [src.clone(), src.join("DCIM")] {
        open_up(&p);
    }
    fs::set_permissions(src.join("DCIM/ok.jpg"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(src.join("DCIM/secret.jpg"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(src.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let out = unprivileged(&env).args(["--json", "create", src.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let err = stderr(&out);
    assert!(err.contains("secret.jpg") && err.contains("ermission denied"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let skipped: Vec<String> =
        v["snapshot"]["skipped"].as_array().unwrap().iter().map(|s| s["path"].as_str().unwrap().to_string()).collect();
    assert!(skipped.iter().any(|p| p.ends_with("secret.jpg")), "{skipped:?}");
    assert!(skipped.iter().any(|p| p.ends_with("locked")), "{skipped:?}");
    let listing = String::from_utf8(unprivileged(&env).args(["ls", "latest"]).output().unwrap().stdout).unwrap();
    assert!(listing.contains("DCIM/ok.jpg") && !listing.contains("secret.jpg"), "{listing}");
}

#[test]
fn unwritable_restore_target_is_a_clear_error() {
    let env = Env::new();
    open_up(env.dir.path());
    let out = unprivileged(&env).args(["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"a").unwrap();
    open_up(&src);
    fs::set_permissions(src.join("a.txt"), fs::Permissions::from_mode(0o644)).unwrap();
    assert!(unprivileged(&env).args(["create", src.to_str().unwrap()]).output().unwrap().status.success());
    let target = env.path("readonly");
    fs::create_dir_all(&target).unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o555)).unwrap();
    let out = unprivileged(&env).args(["restore", "latest", "-t", target.to_str().unwrap()]).output().unwrap();
    assert_fails(&out, 1, "not writable");
}
