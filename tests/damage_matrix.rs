//! Every file of a repository, damaged every way (a flipped byte at its start, middle and end,
//! truncated, emptied, deleted): no command panics or hangs, `check --read-data` fails and
//! names what is damaged, `restore` never writes a byte that differs from the source and
//! reports what it could not restore, and neither command changes the repository.

mod common;

use common::{Env, backed_up, describe, files_in, snapshot_of};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest)
        } else {
            fs::copy(e.path(), dest).map(drop).unwrap()
        }
    }
}

/// The repository's files (locks excluded: a command may take and drop one) and their bytes.
fn contents(repo: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_in(repo)
        .into_iter()
        .filter(|p| !p.strip_prefix(repo).unwrap().starts_with("locks"))
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    FlipFirst,
    FlipMiddle,
    FlipLast,
    Truncate,
    Empty,
    Delete,
}

impl Damage {
    const ALL: [Damage; 6] =
        [Damage::FlipFirst, Damage::FlipMiddle, Damage::FlipLast, Damage::Truncate, Damage::Empty, Damage::Delete];

    fn apply(self, path: &Path) {
        let mut bytes = fs::read(path).unwrap();
        let len = bytes.len();
        match self {
            Damage::FlipFirst => bytes[0] ^= 0x01,
            Damage::FlipMiddle => bytes[len / 2] ^= 0x80,
            Damage::FlipLast => bytes[len - 1] ^= 0x10,
            Damage::Truncate => bytes.truncate(len / 2),
            Damage::Empty => bytes.clear(),
            Damage::Delete => return fs::remove_file(path).unwrap(),
        }
        fs::write(path, bytes).unwrap();
    }
}

/// `a/b/c`, `a/b`, `a`.
fn path_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(path), |p| p.rfind('/').map(|i| &p[..i]))
}

fn no_panic(out: &Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code().is_some(), "{what}: killed by a signal: {}", describe(out));
    assert_ne!(out.status.code(), Some(101), "{what}: panicked: {err}");
    assert!(!err.contains("panicked"), "{what}: panicked: {err}");
}

/// What the report should mention to name the damaged file: its name or, for a file that
/// names nothing (the config), its kind.
fn name_in_report(rel: &Path) -> String {
    match rel.to_str().unwrap() {
        "config" => "config".into(),
        _ => rel.file_name().unwrap().to_string_lossy().into_owned(),
    }
}

#[test]
fn every_file_damaged_every_way_is_caught_and_never_restored_wrong() {
    let (template, src) = backed_up();
    let source = snapshot_of(&src);
    let victims: Vec<PathBuf> = files_in(&template.repo)
        .into_iter()
        .filter(|p| !p.strip_prefix(&template.repo).unwrap().starts_with("locks"))
        .collect();
    let kinds: std::collections::BTreeSet<String> = victims
        .iter()
        .map(|p| {
            p.strip_prefix(&template.repo).unwrap().components().next().unwrap().as_os_str().to_string_lossy().into()
        })
        .collect();
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), ["config", "data", "index", "keys", "snapshots"]);

    let mut cases = 0;
    for victim in &victims {
        let rel = victim.strip_prefix(&template.repo).unwrap();
        for damage in Damage::ALL {
            let case = format!("{damage:?} {}", rel.display());
            let env = Env::new();
            copy_tree(&template.repo, &env.repo);
            damage.apply(&env.repo.join(rel));
            let before = contents(&env.repo);

            let check = env.run(&["check", "--read-data"]);
            no_panic(&check, &case);
            let report =
                format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
            // Removing a snapshot file is what `forget` does: nothing can tell it from damage.
            let undetectable = rel.starts_with("snapshots") && matches!(damage, Damage::Delete);
            assert!(check.status.code() != Some(0) || undetectable, "{case}: check passed: {report}");
            let name = name_in_report(rel);
            // Damage inside a pack's data is named by the blob it hit, with the pack beside it.
            let named = undetectable
                || match (rel.starts_with("index"), damage) {
                    // Nothing names a lost index file; the report points at the way back instead.
                    (true, Damage::Delete) => report.contains("snap repair index"),
                    _ if rel.starts_with("keys") && matches!(damage, Damage::Delete) => report.contains("no key slot"),
                    _ => report.contains(&name) || report.contains("damaged: blob"),
                };
            assert!(named, "{case}: {name} not named: {report}");

            let target = env.path("out");
            let restore = env.run(&["restore", "latest", "-t", target.to_str().unwrap()]);
            no_panic(&restore, &case);
            let restored = if target.exists() { snapshot_of(&target) } else { BTreeMap::new() };
            for (path, entry) in &restored {
                if let common::Entry::File { .. } = entry {
                    assert_eq!(source.get(path), Some(entry), "{case}: {path} restored wrong");
                }
            }
            let all_files = source.values().filter(|e| matches!(e, common::Entry::File { .. })).count();
            let restored_files = restored.values().filter(|e| matches!(e, common::Entry::File { .. })).count();
            if restore.status.success() {
                assert_eq!(restored_files, all_files, "{case}: restore claimed success with files missing");
            } else {
                let err = String::from_utf8_lossy(&restore.stderr);
                assert!(!err.trim().is_empty(), "{case}: restore failed silently");
                if restored_files > 0 {
                    // The snapshot was readable: each file left out is named, or its folder is.
                    for (path, entry) in &source {
                        let reported = path_and_ancestors(path).any(|p| err.contains(p));
                        if matches!(entry, common::Entry::File { .. }) && !restored.contains_key(path) {
                            assert!(reported, "{case}: {path} neither restored nor reported: {err}");
                        }
                    }
                }
            }
            assert!(before == contents(&env.repo), "{case}: check or restore changed the repository");
            cases += 1;
        }
    }
    assert!(cases >= 30, "only {cases} cases");
}
