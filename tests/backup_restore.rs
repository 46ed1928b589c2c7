//! Backup and restore round trips on generated phone folders, driving the real binary.

mod common;

use common::{Env, assert_same_tree, phone};
use std::fs;

fn summary(v: &serde_json::Value) -> &serde_json::Value {
    &v["snapshot"]["summary"]
}

fn encrypted_backup_restores_byte_exact_with_mtimes(env: Env) {
    env.init();
    let src = env.phone();
    std::os::unix::fs::symlink("DCIM/Camera", src.join("camera-link")).unwrap();
    fs::set_permissions(src.join("Backups"), std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
    let plain = env.run(&["create", src.to_str().unwrap()]);
    assert!(plain.status.success());
    assert!(
        plain.stderr.is_empty(),
        "no progress output without a terminal: {}",
        String::from_utf8_lossy(&plain.stderr)
    );
    assert!(String::from_utf8_lossy(&plain.stdout).contains("files: "), "the summary is printed");
    let created = env.json(&["create", "--host", "other", src.to_str().unwrap()]);
    assert_eq!(summary(&created)["files_changed"], 0);
    assert!(summary(&created)["files_new"].as_u64().unwrap() > 20);
    let out = env.path("out");
    env.ok(&["restore", "latest", "--target", out.to_str().unwrap()]);
    assert_same_tree(&src, &out);
}

fn unencrypted_repository_round_trips(env: Env) {
    env.init_unencrypted();
    let src = env.phone();
    env.ok(&["create", src.to_str().unwrap()]);
    let out = env.path("out");
    env.ok(&["restore", "latest", "-t", out.to_str().unwrap()]);
    assert_same_tree(&src, &out);
    env.ok(&["check", "--read-data"]);
}

fn second_backup_of_unchanged_folder_reads_and_adds_nothing(env: Env) {
    env.init();
    let src = env.phone();
    env.ok(&["create", src.to_str().unwrap()]);
    let second = env.json(&["create", src.to_str().unwrap()]);
    let s = summary(&second);
    assert_eq!(s["bytes_read"], 0, "{s}");
    assert_eq!(s["data_added"], 0, "{s}");
    assert_eq!(s["files_new"], 0);
    assert_eq!(s["files_changed"], 0);
    assert!(second["snapshot"]["parent"].is_string(), "the first snapshot is the parent");
}

fn recopied_folder_with_new_inodes_is_not_read_again(env: Env) {
    env.init();
    let src = env.phone();
    env.ok(&["create", src.to_str().unwrap()]);
    // Re-pull: same files and mtimes, new inodes and ctimes.
    let copy = env.path("copy");
    assert!(std::process::Command::new("cp").arg("-a").arg(&src).arg(&copy).status().unwrap().success());
    fs::remove_dir_all(&src).unwrap();
    fs::rename(&copy, &src).unwrap();
    let second = env.json(&["create", src.to_str().unwrap()]);
    let s = summary(&second);
    assert_eq!(s["bytes_read"], 0, "fingerprints should confirm every file: {s}");
    // Trees record inodes and ctimes, so each folder's tree is new; no data blob is.
    assert_eq!(s["blobs_added"].as_u64(), s["dirs"].as_u64().map(|d| d + 1), "only trees are new: {s}");
    assert!(s["data_added"].as_u64().unwrap() < 64 * 1024, "{s}");
    assert_eq!(s["files_unchanged"], s["total_files"]);
}

fn a_days_growth_costs_about_the_new_data(env: Env) {
    env.init();
    let src = env.phone();
    let spec = phone::PhoneSpec::small();
    env.ok(&["create", src.to_str().unwrap()]);
    let change = phone::grow(&src, &spec, 1).unwrap();
    let second = env.json(&["create", src.to_str().unwrap()]);
    let s = summary(&second);
    let added = s["data_added"].as_u64().unwrap();
    let stored = s["data_added_stored"].as_u64().unwrap();
    let new_bytes = change.new_photo_bytes + change.new_db_bytes;
    // New photos and the new database are incompressible and new; each EXIF edit may cost one
    // header chunk (~10 KiB); each export's changed tail chunks are small.
    let slack = 2 * 16 * 1024 + 2 * 300 * 1024;
    assert!(added >= new_bytes, "added {added} < new {new_bytes}");
    assert!(added <= new_bytes + slack, "added {added} for {new_bytes} new bytes: {s}");
    assert!(stored <= new_bytes + slack, "stored {stored}");
    // The moved album was recognised, not re-read.
    assert!(second["files_moved"].as_u64().unwrap() >= 2, "{second}");
    let out = env.path("out");
    env.ok(&["restore", "latest", "-t", out.to_str().unwrap()]);
    assert_same_tree(&src, &out);
}

fn selective_restore_by_glob_and_folder(env: Env) {
    env.init();
    let src = env.phone();
    env.ok(&["create", src.to_str().unwrap()]);
    let out = env.path("out");
    env.ok(&["restore", "latest", "-t", out.to_str().unwrap(), "--include", "DCIM/Camera/PXL_2024*.jpg"]);
    let restored = common::snapshot_of(&out);
    let files: Vec<_> =
        restored.iter().filter(|(_, e)| matches!(e, common::Entry::File { .. })).map(|(p, _)| p.clone()).collect();
    assert!(!files.is_empty());
    assert!(
        files.iter().all(|p| p.starts_with("DCIM/Camera/PXL_2024") && p.ends_with(".jpg") && !p.contains("Trip")),
        "{files:?}"
    );
    assert!(!out.join("Backups").exists());

    let out2 = env.path("out2");
    env.ok(&["restore", "latest", "-t", out2.to_str().unwrap(), "--include", "Backups", "--exclude", "sms-*"]);
    let names: Vec<_> =
        fs::read_dir(out2.join("Backups")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, vec!["calls-20240401.xml".to_string()]);
    assert_eq!(
        fs::read(out2.join("Backups/calls-20240401.xml")).unwrap(),
        fs::read(src.join("Backups/calls-20240401.xml")).unwrap()
    );
}

#[test]
fn several_folders_appear_under_their_own_names() {
    let env = Env::new();
    env.init();
    let src = env.phone();
    env.ok(&["create", src.join("DCIM").to_str().unwrap(), src.join("Backups").to_str().unwrap()]);
    let listing = env.ok(&["ls", "latest"]);
    assert!(listing.contains(" DCIM/Camera/"), "{listing}");
    assert!(listing.contains(" Backups/calls-20240401.xml"), "{listing}");
    let out = env.path("out");
    env.ok(&["restore", "latest", "-t", out.to_str().unwrap()]);
    assert_same_tree(&src.join("DCIM"), &out.join("DCIM"));
    assert_same_tree(&src.join("Backups"), &out.join("Backups"));
}

fn restore_continues_and_skips_identical_files(env: Env) {
    env.init();
    let src = env.phone();
    env.ok(&["create", src.to_str().unwrap()]);
    let out = env.path("out");
    env.ok(&["restore", "latest", "-t", out.to_str().unwrap()]);
    // Simulate an interrupted restore: one file missing, one truncated.
    fs::remove_file(out.join("Backups/sms-20240401.xml")).unwrap();
    fs::write(out.join("Backups/calls-20240401.xml"), b"partial").unwrap();
    let again = env.json(&["restore", "latest", "-t", out.to_str().unwrap()]);
    assert_eq!(again["files_restored"], 2, "{again}");
    assert!(again["files_already_present"].as_u64().unwrap() > 20);
    assert_same_tree(&src, &out);
}

fn snapshots_json_ids_prefixes_and_latest(env: Env) {
    env.init();
    let src = env.phone();
    env.ok(&["create", "--tag", "weekly", "--host", "pixel", src.to_str().unwrap()]);
    fs::write(src.join("new.txt"), b"hello").unwrap();
    env.ok(&["create", src.to_str().unwrap()]);
    let list = env.json(&["snapshots"]);
    let arr = list.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    for key in ["id", "time", "host", "paths", "tags", "summary"] {
        assert!(arr[0].get(key).is_some(), "missing {key}: {}", arr[0]);
    }
    assert_eq!(arr[0]["host"], "pixel");
    assert_eq!(arr[0]["tags"][0], "weekly");
    let first = arr[0]["id"].as_str().unwrap();
    let ls = env.ok(&["ls", &first[..6], "Backups"]);
    assert!(ls.contains("calls-20240401.xml") && !ls.contains("new.txt"));
    let diff = env.ok(&["diff", &first[..8], "latest"]);
    assert!(diff.contains("+ new.txt"), "{diff}");
    let out = env.run(&["ls", "ffffffffffff"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no snapshot matches"));
}

#[test]
fn stats_report_dedup_and_compression() {
    let env = Env::new();
    env.init();
    let src = env.phone();
    env.ok(&["create", src.to_str().unwrap()]);
    env.ok(&["create", src.to_str().unwrap()]);
    let s = env.json(&["stats"]);
    assert!(s["dedup_ratio"].as_f64().unwrap() > 2.0, "two identical snapshots and Sent/ duplicates: {s}");
    assert!(s["compression_ratio"].as_f64().unwrap() > 1.05, "the XML exports compress: {s}");
}

#[test]
fn create_excludes_patterns_and_honours_explicit_parent() {
    let env = Env::new();
    env.init();
    let src = env.phone();
    let first =
        env.json(&["create", "--exclude", "*.crypt14", "--exclude", "Pictures/Screenshots", src.to_str().unwrap()]);
    let listing = env.ok(&["ls", "latest"]);
    assert!(!listing.contains(".crypt14") && !listing.contains("Screenshots"), "{listing}");
    assert!(listing.contains("DCIM/Camera/"));
    // A different host has no parent by default; --parent makes the first snapshot its parent.
    let second = env.json(&["create", "--host", "elsewhere", src.to_str().unwrap()]);
    assert!(second["snapshot"]["parent"].is_null());
    let id = first["id"].as_str().unwrap();
    let third = env.json(&["create", "--host", "elsewhere2", "--parent", &id[..10], src.to_str().unwrap()]);
    assert_eq!(third["snapshot"]["parent"].as_str(), Some(id));
}

fn check_reads_a_subset_and_reports_json(env: Env) {
    env.init();
    let src = env.phone();
    env.ok(&["create", src.to_str().unwrap()]);
    let all = env.json(&["check", "--read-data"]);
    assert_eq!(all["clean"], true);
    let packs = all["packs"].as_u64().unwrap();
    assert!(packs >= 2, "{all}");
    assert_eq!(all["packs_read"].as_u64(), Some(packs));
    let subset = env.json(&["check", "--read-data-subset", "1%"]);
    assert_eq!(subset["packs_read"], 1, "1% of a few packs rounds up to one: {subset}");
    let out = env.run(&["check", "--read-data-subset", "150%"]);
    assert!(!out.status.success());
}

#[test]
fn repository_inside_the_source_is_not_backed_up_and_trailing_slash_finds_parent() {
    let env = Env::new();
    let src = env.phone();
    let inner_repo = src.join("backup-repo");
    let run = |args: &[&str]| {
        let out = env.snap().env("SNAP_REPOSITORY", &inner_repo).args(args).output().unwrap();
        assert!(out.status.success(), "{}", common::describe(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or(serde_json::Value::Null)
    };
    run(&["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]);
    run(&["create", src.to_str().unwrap()]);
    let with_slash = format!("{}/", src.display());
    let second = run(&["--json", "create", &with_slash]);
    assert!(second["snapshot"]["parent"].is_string(), "`{with_slash}` is the same source: {second}");
    assert_eq!(second["snapshot"]["summary"]["bytes_read"], 0, "{second}");
    let listing = env.snap().env("SNAP_REPOSITORY", &inner_repo).args(["ls", "latest"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&listing.stdout).contains("backup-repo"));
}

crate::on_every_backend!(
    encrypted_backup_restores_byte_exact_with_mtimes,
    unencrypted_repository_round_trips,
    second_backup_of_unchanged_folder_reads_and_adds_nothing,
    recopied_folder_with_new_inodes_is_not_read_again,
    a_days_growth_costs_about_the_new_data,
    selective_restore_by_glob_and_folder,
    restore_continues_and_skips_identical_files,
    snapshots_json_ids_prefixes_and_latest,
    check_reads_a_subset_and_reports_json,
);
