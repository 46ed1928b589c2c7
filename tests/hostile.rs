//! Hostile trees: a repository written by someone else (or tampered with by someone holding the
//! key) must not make `snap restore` write outside `--target`.

mod common;

use common::{Env, describe};
use std::fs;
use std::path::Path;

use snap::crypto::keyfile::Credential;
use snap::format::pack::BlobKind;
use snap::format::snapshot::Snapshot;
use snap::format::tree::{self, FileContent, Node, NodeContent, Timestamp};
use snap::id::Id;
use snap::packer::Packer;
use snap::repo::Repository;

fn open(env: &Env) -> Repository {
    let backend = snap::store::open_backend(&env.location, &Default::default()).unwrap();
    let mut repo = Repository::open(backend, &mut || Ok(Credential::password(common::PASSWORD))).unwrap();
    repo.load_index().unwrap();
    repo
}

fn node(name: &[u8], content: NodeContent) -> Node {
    Node {
        name: name.to_vec(),
        mode: 0o644,
        mtime: Timestamp { secs: 1_700_000_000, nanos: 0 },
        uid: 0,
        gid: 0,
        content,
    }
}

fn file(chunks: Vec<Id>, size: u64) -> NodeContent {
    NodeContent::File(FileContent {
        size,
        inode: 0,
        ctime: Timestamp { secs: 0, nanos: 0 },
        fingerprint: [0; 32],
        chunks,
    })
}

fn add_tree(repo: &Repository, packer: &Packer, nodes: &mut [Node]) -> Id {
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let bytes = tree::encode(nodes);
    let id = repo.keys().blob_id(&bytes);
    packer.add(BlobKind::Tree, id, &bytes).unwrap();
    id
}

/// Every entry below `dir` (not following symlinks).
fn entries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.file_name().to_string_lossy().into_owned());
        if e.file_type().unwrap().is_dir() {
            out.extend(entries(&e.path()).into_iter().map(|c| format!("{}/{c}", e.file_name().to_string_lossy())));
        }
    }
    out.sort();
    out
}

#[test]
fn restore_stays_inside_the_target_whatever_the_tree_says() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("seed.txt"), b"a real snapshot to copy the metadata of").unwrap();
    env.ok(&["create", src.to_str().unwrap()]);
    let honest = env.json(&["snapshots"])[0]["id"].as_str().unwrap().to_string();

    let repo = open(&env);
    let (_, template) = repo.find_snapshot(&honest).unwrap();
    let packer = Packer::new(&repo, 3);
    let evil = b"written by an attacker".to_vec();
    let evil_id = repo.keys().blob_id(&evil);
    packer.add(BlobKind::Data, evil_id, &evil).unwrap();
    let evil_file = || file(vec![evil_id], evil.len() as u64);
    // `d` twice: a symlink to the outside, and a folder whose file would be written through it.
    let mut inner = [node(b"through-link.txt", evil_file())];
    let inner_id = add_tree(&repo, &packer, &mut inner);
    let outside = env.path("outside");
    fs::create_dir_all(&outside).unwrap();
    let mut root = vec![
        node(b"..", evil_file()),
        node(b".", evil_file()),
        node(b"", evil_file()),
        node(b"a/../../escaped.txt", evil_file()),
        node(b"/absolute.txt", evil_file()),
        node(b"nul\0name", evil_file()),
        node(b"d", NodeContent::Symlink { target: outside.as_os_str().as_encoded_bytes().to_vec() }),
        node(b"d", NodeContent::Dir { subtree: inner_id }),
        node(b"points-out", NodeContent::Symlink { target: b"../../../../etc/passwd".to_vec() }),
        node(b"fine.txt", evil_file()),
        // A size that does not match the chunks: refused, not trusted.
        node(b"huge.bin", file(vec![evil_id], u64::MAX)),
    ];
    let root_id = add_tree(&repo, &packer, &mut root);
    packer.finish().unwrap();
    let hostile = Snapshot { tree: root_id, parent: None, ..template };
    let hostile_id = repo.save_snapshot(&hostile).unwrap().to_hex();
    drop(repo);

    let target = env.path("target");
    let out = env.run(&["restore", &hostile_id[..12], "-t", target.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "restore reports what it refused: {}", describe(&out));
    assert!(!err.contains("panicked"), "{err}");
    for refused in ["unsafe name", "occurs twice"] {
        assert!(err.contains(refused), "says so ({refused}): {err}");
    }
    assert!(err.contains("huge.bin"), "the impossible size is reported: {err}");
    // Nothing outside the target changed.
    assert!(entries(&outside).is_empty(), "written through a symlink: {:?}", entries(&outside));
    assert!(!env.path("escaped.txt").exists() && !Path::new("/absolute.txt").exists());
    let restored = entries(&target);
    assert!(restored.contains(&"fine.txt".to_string()), "{restored:?}");
    assert_eq!(fs::read(target.join("fine.txt")).unwrap(), evil);
    assert!(!restored.iter().any(|e| e.contains("escaped") || e.contains("absolute")), "{restored:?}");
    assert!(!target.join("huge.bin").exists());
    // The symlink that points out is created as a link (never followed), inside the target.
    let link = fs::symlink_metadata(target.join("points-out")).unwrap();
    assert!(link.file_type().is_symlink());
}
