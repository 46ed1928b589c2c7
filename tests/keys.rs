//! Key slots: several passwords open one repository; removing and changing them.

mod common;

use common::{Env, describe};
use std::fs;

#[test]
fn add_list_remove_and_change_passwords() {
    let env = Env::new();
    env.init();
    env.add_password_key("second password\n");
    let list = env.json(&["key", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let current =
        list.as_array().unwrap().iter().find(|k| k["current"] == true).unwrap()["id"].as_str().unwrap().to_string();
    let other =
        list.as_array().unwrap().iter().find(|k| k["current"] == false).unwrap()["id"].as_str().unwrap().to_string();

    // The new password opens the repository too.
    let out = env.snap().env("SNAP_PASSWORD", "second password").args(["snapshots"]).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));

    // The key in use cannot be removed; the other can.
    let out = env.run(&["key", "remove", &current[..10]]);
    assert!(!out.status.success());
    env.ok(&["key", "remove", &other[..10]]);
    let out = env.snap().env("SNAP_PASSWORD", "second password").args(["snapshots"]).output().unwrap();
    assert_eq!(out.status.code(), Some(12));

    // passwd replaces the current key.
    let third = env.path("third");
    fs::write(&third, "third password").unwrap();
    env.ok(&[
        "key",
        "passwd",
        "--new-password-file",
        third.to_str().unwrap(),
        "--kdf-memory-kib",
        "1024",
        "--kdf-iterations",
        "1",
    ]);
    assert_eq!(env.run(&["snapshots"]).status.code(), Some(12), "the old password no longer opens it");
    let out = env.snap().env("SNAP_PASSWORD", "third password").args(["snapshots"]).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn unencrypted_repository_has_no_keys() {
    let env = Env::new();
    env.init_unencrypted();
    assert!(fs::read_dir(env.repo.join("keys")).unwrap().next().is_none());
    let out = env.run(&["key", "add"]);
    assert!(!out.status.success());
}

#[test]
fn key_file_repository_opens_with_the_file_and_nothing_else() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let key = env.path("snap.key");
    let out =
        env.snap().env_remove("SNAP_PASSWORD").args(["init", "--key-file", key.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600, "the key file is private");
    assert_eq!(fs::read_to_string(&key).unwrap().trim().len(), 64);
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.jpg"), b"photo").unwrap();
    let with_key =
        |args: &[&str]| env.snap().env_remove("SNAP_PASSWORD").env("SNAP_KEY_FILE", &key).args(args).output().unwrap();
    assert!(with_key(&["create", src.to_str().unwrap()]).status.success());
    // The file's text is not a password.
    let text = fs::read_to_string(&key).unwrap();
    let out = env.snap().env("SNAP_PASSWORD", text.trim()).args(["snapshots"]).output().unwrap();
    assert_eq!(out.status.code(), Some(12), "{}", describe(&out));
    // Another key file does not open it; a damaged one is a clear error.
    let other = env.path("other.key");
    fs::write(&other, "ab".repeat(32)).unwrap();
    let out = env.snap().env("SNAP_KEY_FILE", &other).args(["snapshots"]).output().unwrap();
    assert_eq!(out.status.code(), Some(12));
    fs::write(&other, "not a key").unwrap();
    let out = env.snap().env("SNAP_KEY_FILE", &other).args(["snapshots"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 hex digits"), "{}", describe(&out));
    // A password slot can be added next to it.
    let pw = env.path("pw");
    fs::write(&pw, "a password").unwrap();
    assert!(with_key(&["key", "add", "--new-password-file", pw.to_str().unwrap()]).status.success());
    let out = env.snap().env("SNAP_PASSWORD", "a password").args(["ls", "latest"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("a.jpg"), "{}", describe(&out));
    assert!(!with_key(&["key", "passwd"]).status.success(), "passwd refuses a key-file session");
}

#[test]
fn key_file_slot_can_be_added_to_a_password_repository() {
    let env = Env::new();
    env.init();
    let key = env.path("cron.key");
    env.ok(&["key", "add", "--new-key-file", key.to_str().unwrap()]);
    let out = env.snap().env_remove("SNAP_PASSWORD").env("SNAP_KEY_FILE", &key).args(["snapshots"]).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
}
