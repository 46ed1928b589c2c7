//! Key slots: several passwords open one repository; removing and changing them.

mod common;

use common::{Env, describe};
use std::fs;

#[test]
fn add_list_remove_and_change_passwords() {
    let env = Env::new();
    env.init();
    let second = env.path("second");
    fs::write(&second, "second password\n").unwrap();
    env.ok(&[
        "key",
        "add",
        "--new-password-file",
        second.to_str().unwrap(),
        "--kdf-memory-kib",
        "1024",
        "--kdf-iterations",
        "1",
    ]);
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
