//! Lifecycle and crash safety: forget, prune, locks, concurrent writers, SIGKILL at random
//! moments, a full disk, append-only mode.

mod common;

use common::{Env, assert_same_tree, describe, phone};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use snap::crypto::keyfile::Credential;
use snap::repo::Repository;

fn open(env: &Env) -> Repository {
    let backend = snap::store::open_backend(env.repo.to_str().unwrap(), &Default::default()).unwrap();
    Repository::open(backend, &mut || Ok(Credential::password(common::PASSWORD))).unwrap()
}

fn ids(env: &Env) -> Vec<String> {
    env.json(&["snapshots"]).as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
}

fn random_file(path: &Path, bytes: usize, seed: u64) {
    let mut data = Vec::new();
    phone::Rng::new(seed).fill(&mut data, bytes);
    fs::write(path, data).unwrap();
}

fn forget_keeps_by_policy_newest_and_tags_and_dry_run_changes_nothing(env: Env) {
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..4 {
        fs::write(src.join("f.txt"), format!("version {i}")).unwrap();
        let tag = if i == 0 { "keep-me" } else { "daily" };
        env.ok(&["create", "--tag", tag, src.to_str().unwrap()]);
    }
    env.ok(&["create", "--host", "other-phone", src.to_str().unwrap()]);
    let before = ids(&env);
    let plan = env.json(&["forget", "--keep-last", "1", "--keep-tag", "keep-me", "--dry-run"]);
    assert_eq!(ids(&env), before, "a dry run removes nothing");
    let groups = plan["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "grouped by host and paths: {plan}");
    let out = env.ok(&["forget", "--keep-last", "1", "--keep-tag", "keep-me"]);
    assert!(out.contains("removed 2 snapshots"), "{out}");
    let left = ids(&env);
    assert_eq!(left.len(), 3, "the tagged one, the newest of the first group, the other host's only one");
    let out = env.run(&["forget"]);
    assert!(!out.status.success(), "no policy: refuse");
}

fn prune_frees_unreferenced_data_and_everything_left_restores(env: Env) {
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("old.bin"), 5_000_000, 1);
    random_file(&src.join("kept.bin"), 3_000_000, 2);
    env.ok(&["create", src.to_str().unwrap()]);
    fs::remove_file(src.join("old.bin")).unwrap();
    random_file(&src.join("new.bin"), 2_000_000, 3);
    env.ok(&["create", src.to_str().unwrap()]);
    let before = env.pack_bytes();

    env.ok(&["forget", "--keep-last", "1"]);
    let plan = env.json(&["prune", "--dry-run"]);
    assert!(plan["bytes_freed"].as_u64().unwrap() >= 4_900_000, "{plan}");
    assert_eq!(env.pack_bytes(), before, "dry run changes nothing");
    let stats = env.json(&["stats"]);
    let freed = stats["snapshots_detail"][0]["freed_if_removed"].as_u64().unwrap();
    assert!(freed >= 4_900_000, "the only snapshot alone holds everything: {stats}");

    let report = env.json(&["prune"]);
    let after = env.pack_bytes();
    assert!(before - after >= 4_900_000, "freed {} bytes: {report}", before - after);
    assert!(report["packs_repacked"].as_u64().unwrap() + report["packs_deleted"].as_u64().unwrap() >= 1);
    env.ok(&["check", "--read-data"]);
    let out = env.path("out");
    env.ok(&["restore", "latest", "-t", out.to_str().unwrap()]);
    assert_same_tree(&src, &out);
}

fn two_creates_at_once_both_succeed_and_restore(env: Env) {
    env.init();
    let a = env.path("a");
    let b = env.path("b");
    phone::generate(&a, &phone::PhoneSpec::small()).unwrap();
    fs::create_dir_all(&b).unwrap();
    random_file(&b.join("video.mp4"), 20_000_000, 9);
    fs::copy(a.join("Backups/calls-20240401.xml"), b.join("shared.xml")).unwrap();
    let first = env.snap().args(["create", a.to_str().unwrap()]).spawn().unwrap();
    let second = env.snap().args(["create", b.to_str().unwrap()]).spawn().unwrap();
    let (r1, r2) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
    assert!(r1.status.success() && r2.status.success(), "{} / {}", describe(&r1), describe(&r2));
    env.ok(&["check", "--read-data"]);
    for (src, name) in [(&a, "a"), (&b, "b")] {
        let snaps = env.json(&["snapshots"]);
        let id =
            snaps.as_array().unwrap().iter().find(|s| s["paths"][0].as_str().unwrap().ends_with(name)).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string();
        let out = env.path(&format!("out-{name}"));
        env.ok(&["restore", &id, "-t", out.to_str().unwrap()]);
        assert_same_tree(src, &out);
    }
}

#[test]
fn an_exclusive_lock_holds_create_off_and_retry_waits_for_it() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"a").unwrap();
    let repo = open(&env);
    let lock = snap::lock::acquire(&repo, true, "prune", Duration::ZERO).unwrap();
    let out = env.run(&["create", src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("locked by `snap prune`"), "{}", describe(&out));
    assert!(ids(&env).is_empty(), "nothing was written");
    // A prune cannot start while a backup runs either.
    let shared = snap::lock::acquire(&repo, false, "create", Duration::ZERO);
    assert!(shared.is_err());
    let waiting = env.snap().args(["--retry-lock", "20", "create", src.to_str().unwrap()]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    drop(lock);
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(ids(&env).len(), 1);
}

/// Random kill delays whose range follows the command's duration: it narrows when a command
/// finished before its kill and widens after a kill, so kills keep landing inside commands
/// whatever the machine's speed.
struct KillClock {
    rng: phone::Rng,
    window_ms: f64,
}

impl KillClock {
    fn new(seed: u64, window_ms: f64) -> KillClock {
        KillClock { rng: phone::Rng::new(seed), window_ms }
    }

    fn run(&mut self, cmd: Command) -> bool {
        let delay = Duration::from_millis(self.rng.next() % (self.window_ms as u64 + 1));
        let killed = kill_after(cmd, delay);
        self.window_ms = if killed { self.window_ms * 1.3 } else { (self.window_ms * 0.5).max(1.0) };
        killed
    }
}

/// Runs `cmd` and SIGKILLs it after `delay`. Returns true if it was killed; a command that
/// finished first must have succeeded (so a harness never passes on a command that failed).
fn kill_after(mut cmd: Command, delay: Duration) -> bool {
    let mut child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while start.elapsed() < delay {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
            assert!(status.success(), "the command failed on its own: {err}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    true
}

fn sigkill_during_create_loses_nothing_and_nothing_is_stored_twice(env: Env) {
    env.init();
    let src = env.phone();
    env.ok(&["create", src.to_str().unwrap()]);
    let first = ids(&env)[0].clone();
    let original = env.path("original");
    assert!(Command::new("cp").arg("-a").arg(&src).arg(&original).status().unwrap().success());
    let base = env.pack_bytes();
    let mut new_bytes = 0;
    let mut clock = KillClock::new(2024, 120.0);
    let mut killed = 0;
    for round in 0..10 {
        // Every round brings new data, so every backup has work to be interrupted in.
        let size = 30_000_000;
        random_file(&src.join(format!("DCIM/Camera/video-{round}.mp4")), size, 77 + round);
        new_bytes += size;
        let mut cmd = env.snap();
        cmd.args(["create", src.to_str().unwrap()]);
        if clock.run(cmd) {
            killed += 1;
        }
        // After every kill: the repository checks clean (leftovers are notes, not damage) and
        // the earlier snapshot restores byte for byte.
        env.ok(&["check"]);
        let out = env.path("out");
        let _ = fs::remove_dir_all(&out);
        env.ok(&["restore", &first, "-t", out.to_str().unwrap()]);
        assert_same_tree(&original, &out);
    }
    assert!(killed >= 3, "the harness must actually interrupt backups ({killed} kills)");
    env.ok(&["create", src.to_str().unwrap()]);
    env.ok(&["check", "--read-data"]);
    let grown = env.pack_bytes() - base;
    assert!(
        grown <= new_bytes as u64 + 3_000_000,
        "the repository grew by {grown} bytes for {new_bytes} new bytes: data was stored twice"
    );
    let out = env.path("final");
    env.ok(&["restore", "latest", "-t", out.to_str().unwrap()]);
    assert_same_tree(&src, &out);
}

#[test]
fn sigkill_during_forget_and_prune_keeps_every_remaining_snapshot() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..6u64 {
        random_file(&src.join(format!("day{i}.bin")), 4_000_000, i);
        if i >= 2 {
            fs::remove_file(src.join(format!("day{}.bin", i - 2))).unwrap();
        }
        env.ok(&["create", src.to_str().unwrap()]);
    }
    let mut clock = KillClock::new(7, 30.0);
    let mut killed = 0;
    for round in 0..16u64 {
        // New garbage every round: a new file in, an old one out, then forget + prune.
        random_file(&src.join(format!("day{}.bin", 6 + round)), 4_000_000, 100 + round);
        let _ = fs::remove_file(src.join(format!("day{}.bin", 4 + round)));
        env.ok(&["create", src.to_str().unwrap()]);
        let latest_copy = env.path("latest-copy");
        let _ = fs::remove_dir_all(&latest_copy);
        assert!(Command::new("cp").arg("-a").arg(&src).arg(&latest_copy).status().unwrap().success());
        let mut cmd = env.snap();
        cmd.args(["forget", "--keep-last", "2", "--prune"]);
        if clock.run(cmd) {
            killed += 1;
        }
        env.ok(&["check", "--read-data"]);
        let out = env.path("out");
        let _ = fs::remove_dir_all(&out);
        env.ok(&["restore", "latest", "-t", out.to_str().unwrap()]);
        assert_same_tree(&latest_copy, &out);
    }
    assert!(killed >= 4, "the harness must actually interrupt forget and prune ({killed} kills)");
    env.ok(&["prune"]);
    env.ok(&["check", "--read-data"]);
    assert!(
        fs::read_dir(env.repo.join("locks")).unwrap().next().is_none(),
        "no lock is left behind by a finished command"
    );
}

#[test]
fn full_disk_during_create_is_a_clear_error_and_the_repository_stays_clean() {
    let root = std::env::var("USER").map(|u| u == "root").unwrap_or(false) || running_as_root();
    let env = Env::new();
    let mount = env.path("small-disk");
    fs::create_dir_all(&mount).unwrap();
    let mounted = root
        && Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs", mount.to_str().unwrap()])
            .status()
            .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mount.clone());
    let repo = mount.join("repo");
    let snap = |args: &[&str]| env.snap().env("SNAP_REPOSITORY", &repo).args(args).output().unwrap();
    assert!(snap(&["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]).status.success());
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    random_file(&src.join("small.bin"), 2_000_000, 1);
    assert!(snap(&["create", src.to_str().unwrap()]).status.success());
    random_file(&src.join("too-big.bin"), 40_000_000, 2);
    let out = snap(&["create", src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No space left on device"), "{}", describe(&out));
    let leftovers: Vec<_> = fs::read_dir(repo.join("tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "no scratch file is left: {leftovers:?}");
    let check = snap(&["check", "--read-data"]);
    assert!(check.status.success(), "{}", describe(&check));
    let snaps = snap(&["--json", "snapshots"]);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&snaps.stdout).unwrap().as_array().unwrap().len(), 1);
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn append_only_refuses_every_deletion_until_turned_off(env: Env) {
    env.ok(&["init", "--append-only", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]);
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"a").unwrap();
    env.ok(&["create", src.to_str().unwrap()]);
    env.ok(&["create", src.to_str().unwrap()]);
    for args in [vec!["forget", "--keep-last", "1"], vec!["prune"]] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("append-only"), "{}", describe(&out));
    }
    let pw = env.add_password_key("another password");
    let keys = env.json(&["key", "list"]);
    let other =
        keys.as_array().unwrap().iter().find(|k| k["current"] == false).unwrap()["id"].as_str().unwrap().to_string();
    for args in
        [vec!["key", "remove", &other[..12]], vec!["key", "passwd", "--new-password-file", pw.to_str().unwrap()]]
    {
        let out = env.run(&args);
        assert!(String::from_utf8_lossy(&out.stderr).contains("append-only"), "{args:?}: {}", describe(&out));
    }
    assert_eq!(env.json(&["key", "list"]).as_array().unwrap().len(), 2, "no key was removed");
    assert_eq!(ids(&env).len(), 2);
    env.ok(&["prune", "--dry-run"]);
    env.ok(&["append-only", "off"]);
    env.ok(&["forget", "--keep-last", "1"]);
    assert_eq!(ids(&env).len(), 1);
    env.ok(&["append-only", "on"]);
    assert!(!env.run(&["prune"]).status.success());
}

crate::on_every_backend!(
    forget_keeps_by_policy_newest_and_tags_and_dry_run_changes_nothing,
    prune_frees_unreferenced_data_and_everything_left_restores,
    two_creates_at_once_both_succeed_and_restore,
    sigkill_during_create_loses_nothing_and_nothing_is_stored_twice,
    append_only_refuses_every_deletion_until_turned_off,
);
