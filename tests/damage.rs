//! Damaged repositories: `check` names the damaged object and what depends on it, `restore`
//! restores every intact file and reports the rest, nothing panics.

mod common;

use common::{Env, backed_up, describe, files_in, phone};
use std::fs;
use std::path::PathBuf;

fn packs(env: &Env) -> Vec<PathBuf> {
    files_in(&env.repo.join("data"))
}

fn flip_byte(path: &std::path::Path, offset: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

#[test]
fn flipped_pack_byte_is_found_and_restore_saves_the_rest() {
    let (env, src) = backed_up();
    let pack = packs(&env).into_iter().max_by_key(|p| fs::metadata(p).unwrap().len()).unwrap();
    flip_byte(&pack, 1000);

    // Structure alone cannot see it; reading the data must.
    env.ok(&["check"]);
    let out = env.run(&["check", "--read-data"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("damaged: pack") || report.contains("damaged: blob"), "{report}");
    assert!(report.contains("needed by "), "the report names dependent files: {report}");

    let target = env.path("out");
    let out = env.run(&["restore", "latest", "-t", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failed authentication") || err.contains("damaged"), "{err}");
    // Every file is either restored exactly or reported; never restored wrong.
    let mut restored = 0;
    let mut reported = 0;
    for f in files_in(&src) {
        let rel = f.strip_prefix(&src).unwrap();
        match fs::read(target.join(rel)) {
            Ok(bytes) => {
                assert_eq!(bytes, fs::read(&f).unwrap(), "{} restored with wrong content", rel.display());
                restored += 1;
            }
            Err(_) => {
                assert!(
                    err.contains(&*rel.to_string_lossy()),
                    "{} neither restored nor reported: {err}",
                    rel.display()
                );
                reported += 1;
            }
        }
    }
    assert!(restored > 0 && reported > 0, "restored {restored}, reported {reported}");
    let leftovers: Vec<_> =
        files_in(&target).into_iter().filter(|p| p.to_string_lossy().contains(".snap-restore-")).collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}

#[test]
fn deleted_pack_is_named_with_the_files_that_need_it() {
    let (env, _src) = backed_up();
    let pack = packs(&env).into_iter().max_by_key(|p| fs::metadata(p).unwrap().len()).unwrap();
    let name = pack.file_name().unwrap().to_string_lossy().into_owned();
    fs::remove_file(&pack).unwrap();
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains(&format!("damaged: pack {name}: missing")), "{report}");
    assert!(report.contains("needed by ") && report.contains("DCIM/Camera/"), "{report}");
}

#[test]
fn truncated_pack_is_reported() {
    let (env, _src) = backed_up();
    let pack = packs(&env).into_iter().max_by_key(|p| fs::metadata(p).unwrap().len()).unwrap();
    let bytes = fs::read(&pack).unwrap();
    fs::write(&pack, &bytes[..bytes.len() / 2]).unwrap();
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("truncated"), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn damaged_index_file_is_named() {
    let (env, _src) = backed_up();
    let index = files_in(&env.repo.join("index")).remove(0);
    flip_byte(&index, 40);
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    let name = index.file_name().unwrap().to_string_lossy().into_owned();
    assert!(report.contains(&format!("damaged: index file {name}")), "{report}");
}

#[test]
fn damaged_snapshot_is_named_and_others_still_list() {
    let (env, src) = backed_up();
    fs::write(src.join("extra.txt"), b"more").unwrap();
    env.ok(&["create", src.to_str().unwrap()]);
    let snaps = files_in(&env.repo.join("snapshots"));
    let victim = &snaps[0];
    flip_byte(victim, 30);
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("damaged: snapshot {name}")));
    let list = env.run(&["snapshots"]);
    assert!(list.status.success());
    assert!(String::from_utf8_lossy(&list.stdout).contains("1 snapshots"));
}

#[test]
fn swapped_pack_contents_are_detected_as_tampering() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    phone::generate(&src, &phone::PhoneSpec::small()).unwrap();
    env.ok(&["create", src.to_str().unwrap()]);
    fs::write(src.join("more.bin"), vec![7u8; 100_000]).unwrap();
    env.ok(&["create", src.to_str().unwrap()]);
    let mut all = packs(&env);
    all.sort_by_key(|p| fs::metadata(p).unwrap().len());
    assert!(all.len() >= 2);
    // Put the small pack's bytes under the large pack's name.
    let small = fs::read(&all[0]).unwrap();
    fs::write(&all[all.len() - 1], small).unwrap();
    let out = env.run(&["check", "--read-data"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("does not match its name"));
}

#[test]
fn swapped_snapshot_and_index_files_are_detected_as_tampering() {
    let (env, src) = backed_up();
    fs::write(src.join("more.bin"), vec![7u8; 100_000]).unwrap();
    env.ok(&["create", src.to_str().unwrap()]);
    for kind in ["snapshots", "index"] {
        let files = files_in(&env.repo.join(kind));
        assert_eq!(files.len(), 2, "{kind}");
        let (a, b) = (fs::read(&files[0]).unwrap(), fs::read(&files[1]).unwrap());
        fs::write(&files[0], &b).unwrap();
        fs::write(&files[1], &a).unwrap();
        let out = env.run(&["check"]);
        assert_eq!(out.status.code(), Some(1), "{kind}: {}", describe(&out));
        let report = String::from_utf8_lossy(&out.stdout);
        for f in &files {
            let name = f.file_name().unwrap().to_string_lossy();
            assert!(report.contains(&*name), "{kind} {name} is named: {report}");
        }
        assert!(report.contains("does not match its name"), "{kind}: {report}");
        // Swapped back, everything is whole again: the check changed nothing.
        fs::write(&files[0], &a).unwrap();
        fs::write(&files[1], &b).unwrap();
        env.ok(&["check"]);
    }
    // An object moved to another kind's folder under its own name fails authentication there.
    let snapshot = files_in(&env.repo.join("snapshots")).remove(0);
    let index_dir = env.repo.join("index");
    fs::copy(&snapshot, index_dir.join(snapshot.file_name().unwrap())).unwrap();
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains(&*snapshot.file_name().unwrap().to_string_lossy()), "{report}");
}

#[test]
fn repair_index_rebuilds_a_lost_index_from_the_packs() {
    let (env, src) = backed_up();
    let index_files = files_in(&env.repo.join("index"));
    for f in &index_files {
        fs::remove_file(f).unwrap();
    }
    let out = env.run(&["check"]);
    assert_ne!(out.status.code(), Some(0), "a repository without its index does not check clean: {}", describe(&out));

    let plan = env.json(&["repair", "index", "--dry-run"]);
    assert_eq!(plan["packs"].as_u64().unwrap() as usize, packs(&env).len(), "{plan}");
    assert_eq!(plan["packs_added"], plan["packs"], "{plan}");
    assert!(files_in(&env.repo.join("index")).is_empty(), "the dry run wrote nothing");

    let report = env.json(&["repair", "index"]);
    assert!(report["index_files_written"].as_u64().unwrap() >= 1, "{report}");
    env.ok(&["check", "--read-data"]);
    let out = env.path("out");
    env.ok(&["restore", "latest", "-t", out.to_str().unwrap()]);
    common::assert_same_tree(&src, &out);
}

#[test]
fn repair_index_names_packs_whose_header_is_damaged_and_keeps_the_rest() {
    let (env, src) = backed_up();
    for f in files_in(&env.repo.join("index")) {
        fs::remove_file(f).unwrap();
    }
    // The largest pack holds media; damage the end of it, where its sealed header lies.
    let pack = packs(&env).into_iter().max_by_key(|p| fs::metadata(p).unwrap().len()).unwrap();
    let len = fs::metadata(&pack).unwrap().len() as usize;
    flip_byte(&pack, len - 40);
    let out = env.run(&["repair", "index"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let name = pack.file_name().unwrap().to_string_lossy().into_owned();
    assert!(stdout.contains(&format!("unreadable pack {name}")), "{stdout}");
    // Files whose data lay elsewhere restore; the others are reported, not invented.
    let target = env.path("out");
    let out = env.run(&["restore", "latest", "-t", target.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let restored = files_in(&target);
    assert!(!restored.is_empty(), "intact files restore");
    for file in restored {
        let rel = file.strip_prefix(&target).unwrap();
        assert_eq!(fs::read(&file).unwrap(), fs::read(src.join(rel)).unwrap(), "{rel:?}");
    }
}

#[test]
fn repair_snapshots_drops_only_what_is_lost_after_a_dry_run() {
    let (env, src) = backed_up();
    let before = env.json(&["snapshots"]);
    let pack = packs(&env).into_iter().max_by_key(|p| fs::metadata(p).unwrap().len()).unwrap();
    fs::remove_file(&pack).unwrap();
    env.ok(&["repair", "index"]);

    let plan = env.json(&["repair", "snapshots", "--dry-run"]);
    let dropped: Vec<String> = plan["snapshots"][0]["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d[0].as_str().unwrap().to_string())
        .collect();
    assert!(!dropped.is_empty(), "{plan}");
    assert_eq!(env.json(&["snapshots"]), before, "the dry run changed nothing");

    let done = env.json(&["repair", "snapshots"]);
    let new_id = done["snapshots"][0]["new_id"].as_str().unwrap().to_string();
    let after = env.json(&["snapshots"]);
    assert_eq!(after.as_array().unwrap().len(), 1, "the damaged snapshot was replaced: {after}");
    assert_eq!(after[0]["id"].as_str().unwrap(), new_id);
    assert!(after[0]["tags"].as_array().unwrap().iter().any(|t| t == "repaired"));
    env.ok(&["check", "--read-data"]);

    let out = env.path("out");
    env.ok(&["restore", "latest", "-t", out.to_str().unwrap()]);
    let mut restored = 0;
    for file in files_in(&src) {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        if dropped.contains(&rel) {
            assert!(!out.join(&rel).exists(), "{rel} was dropped");
        } else {
            assert_eq!(fs::read(out.join(&rel)).unwrap(), fs::read(&file).unwrap(), "{rel} is kept intact");
            restored += 1;
        }
    }
    assert!(restored > 0);
    assert_eq!(env.json(&["repair", "snapshots"])["snapshots"].as_array().unwrap().len(), 0, "nothing left to repair");
}

#[test]
fn repair_snapshots_with_read_data_drops_files_whose_bytes_rotted() {
    let (env, src) = backed_up();
    let pack = packs(&env).into_iter().max_by_key(|p| fs::metadata(p).unwrap().len()).unwrap();
    flip_byte(&pack, 1000);
    let plain = env.json(&["repair", "snapshots", "--dry-run"]);
    assert!(plain["snapshots"].as_array().unwrap().is_empty(), "without reading, rot is invisible: {plain}");
    let report = env.json(&["repair", "snapshots", "--read-data"]);
    let dropped = report["snapshots"][0]["dropped"].as_array().unwrap();
    assert!(!dropped.is_empty(), "{report}");
    // One flipped byte rots one chunk; every file that holds it (duplicates included) goes.
    let reasons: std::collections::BTreeSet<&str> = dropped.iter().map(|d| d[1].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 1, "all dropped files share the rotten chunk: {report}");
    let dropped: Vec<&str> = dropped.iter().map(|d| d[0].as_str().unwrap()).collect();
    let out = env.path("out");
    env.ok(&["restore", "latest", "-t", out.to_str().unwrap()]);
    for file in files_in(&src) {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        if dropped.contains(&rel.as_str()) {
            assert!(!out.join(&rel).exists(), "{rel} was dropped");
        } else {
            assert_eq!(fs::read(out.join(&rel)).unwrap(), fs::read(&file).unwrap(), "{rel} is kept intact");
        }
    }
}

#[test]
fn a_replayed_old_index_file_is_reported_and_harms_no_restore() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("old.bin"), vec![1u8; 3_000_000]).unwrap();
    fs::write(src.join("kept.bin"), (0..2_000_000u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>()).unwrap();
    env.ok(&["create", src.to_str().unwrap()]);
    let old_index: Vec<(PathBuf, Vec<u8>)> =
        files_in(&env.repo.join("index")).into_iter().map(|p| (p.clone(), fs::read(&p).unwrap())).collect();
    fs::remove_file(src.join("old.bin")).unwrap();
    env.ok(&["create", src.to_str().unwrap()]);
    env.ok(&["forget", "--keep-last", "1", "--prune"]);
    // An attacker (or a stale sync) puts the index files prune removed back.
    for (path, bytes) in &old_index {
        fs::write(path, bytes).unwrap();
    }
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("missing"), "the packs the old index names are reported missing: {report}");
    let target = env.path("out");
    env.ok(&["restore", "latest", "-t", target.to_str().unwrap()]);
    assert_eq!(fs::read(target.join("kept.bin")).unwrap(), fs::read(src.join("kept.bin")).unwrap());
    // The index is derived data: rebuilding it from the packs drops the replayed entries.
    env.ok(&["repair", "index"]);
    env.ok(&["check", "--read-data"]);
}

#[test]
fn a_damaged_or_deleted_key_slot_is_named_and_other_slots_still_open() {
    let (env, _src) = backed_up();
    env.add_password_key("a second password");
    let slots = files_in(&env.repo.join("keys"));
    assert_eq!(slots.len(), 2);
    // Damage every slot but one: the intact one still opens the repository.
    let (first, second) = (&slots[0], &slots[1]);
    let mut bytes = fs::read(first).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    fs::write(first, &bytes).unwrap();
    let with_second = || env.snap().env("SNAP_PASSWORD", "a second password").args(["snapshots"]).output().unwrap();
    let with_first = || env.run(&["snapshots"]);
    let opened = [with_first(), with_second()].iter().filter(|o| o.status.success()).count();
    assert_eq!(opened, 1, "exactly the intact slot's password opens the repository");
    // With no intact slot left, the message is one clear line, not a panic.
    fs::remove_file(second).unwrap();
    for out in [with_first(), with_second()] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(matches!(out.status.code(), Some(1 | 12)), "{}", describe(&out));
        assert!(!err.contains("panicked") && err.trim_end().lines().count() == 1, "{err}");
    }
}

#[test]
fn damaged_lock_files_do_not_block_or_crash_anything() {
    let (env, src) = backed_up();
    let locks = env.repo.join("locks");
    fs::create_dir_all(&locks).unwrap();
    fs::write(locks.join("ab".repeat(32)), b"not a sealed lock").unwrap();
    fs::write(locks.join("cd".repeat(32)), b"").unwrap();
    env.ok(&["create", src.to_str().unwrap()]);
    let out = env.path("out");
    env.ok(&["restore", "latest", "-t", out.to_str().unwrap()]);
    env.ok(&["check"]);
    // An exclusive command cannot prove such a lock is dead, so it refuses and says what to do.
    let out = env.run(&["prune"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("snap unlock"), "{}", describe(&out));
    let removed = env.json(&["unlock"]);
    assert_eq!(removed.as_array().unwrap().len(), 2, "{removed}");
    env.ok(&["forget", "--keep-last", "1", "--prune"]);
}
