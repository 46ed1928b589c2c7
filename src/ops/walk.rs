//! Depth-first traversal of a snapshot's trees, shared by `ls`, `diff`, `stats` and `check`.

use std::collections::HashMap;

use crate::error::Error;
use crate::format::tree::{Node, NodeContent};
use crate::id::Id;
use crate::repo::Repository;

/// Display form of a name (invalid UTF-8 is replaced, for messages and matching only).
pub fn display_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") }
}

/// Visits every node below `tree` in name order; `visit` returns false to skip a folder's
/// contents. A tree that cannot be loaded is passed to `on_error` with the folder's path, and
/// the walk goes on.
pub fn walk(
    repo: &Repository,
    tree: &Id,
    prefix: &str,
    visit: &mut dyn FnMut(&str, &Node) -> bool,
    on_error: &mut dyn FnMut(&str, &Id, Error),
) {
    let nodes = match repo.read_tree(tree) {
        Ok(n) => n,
        Err(e) => return on_error(prefix, tree, e),
    };
    for node in &nodes {
        let path = join(prefix, &display_name(&node.name));
        let descend = visit(&path, node);
        if let (true, NodeContent::Dir { subtree }) = (descend, &node.content) {
            walk(repo, subtree, &path, visit, on_error);
        }
    }
}

/// Every file of a snapshot by path (for `diff`).
pub fn files_by_path(repo: &Repository, tree: &Id) -> (HashMap<String, Node>, Vec<(String, Error)>) {
    let mut files = HashMap::new();
    let mut errors = Vec::new();
    walk(
        repo,
        tree,
        "",
        &mut |path, node| {
            files.insert(path.to_string(), node.clone());
            true
        },
        &mut |path, _, e| errors.push((path.to_string(), e)),
    );
    (files, errors)
}
