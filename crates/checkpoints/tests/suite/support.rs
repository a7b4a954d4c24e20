//! Helpers: a fingerprint of a directory tree written independently of the crate, and
//! deterministic file contents.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use agentbox_checkpoints::{Store, StoreConfig};

/// One path of a tree as a test sees it: type, permission bits, content or link target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    File { mode: u32, len: u64, hash: String },
    Dir { mode: u32 },
    Symlink { target: Vec<u8> },
}

/// Every path under a root (relative, as bytes) with what it is. Symlinks are read with
/// `symlink_metadata` and `read_link`, never followed.
pub type Tree = BTreeMap<Vec<u8>, Node>;

pub fn fingerprint(root: &Path) -> Tree {
    let mut tree = Tree::new();
    walk(root, &mut Vec::new(), &mut tree);
    tree
}

fn walk(dir: &Path, rel: &mut Vec<u8>, tree: &mut Tree) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(entry.file_name().as_bytes());
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).unwrap().as_os_str().as_bytes().to_vec();
            tree.insert(rel.clone(), Node::Symlink { target });
        } else if meta.is_dir() {
            tree.insert(rel.clone(), Node::Dir { mode });
            walk(&path, rel, tree);
        } else {
            let content = fs::read(&path).unwrap();
            let hash = blake3::hash(&content).to_hex().to_string();
            tree.insert(rel.clone(), Node::File { mode, len: content.len() as u64, hash });
        }
        rel.truncate(len);
    }
}

/// The tree without the paths under any of `prefixes` (excluded caches).
pub fn without(mut tree: Tree, prefixes: &[&str]) -> Tree {
    tree.retain(|path, _| {
        !prefixes.iter().any(|p| {
            path.as_slice() == p.as_bytes() || path.starts_with(format!("{p}/").as_bytes())
        })
    });
    tree
}

/// A digest of the whole tree: paths, types, modes, contents and link targets.
pub fn tree_hash(tree: &Tree) -> String {
    let mut hasher = blake3::Hasher::new();
    for (path, node) in tree {
        hasher.update(&(path.len() as u64).to_le_bytes());
        hasher.update(path);
        match node {
            Node::File { mode, len, hash } => {
                hasher.update(format!("f {mode:o} {len} {hash}\n").as_bytes());
            }
            Node::Dir { mode } => {
                hasher.update(format!("d {mode:o}\n").as_bytes());
            }
            Node::Symlink { target } => {
                hasher.update(b"l ");
                hasher.update(&(target.len() as u64).to_le_bytes());
                hasher.update(target);
            }
        }
    }
    hasher.finalize().to_hex().to_string()
}

/// Asserts two trees are equal, naming the first paths that differ if they are not.
#[track_caller]
pub fn assert_same_tree(actual: &Tree, expected: &Tree, what: &str) {
    if tree_hash(actual) == tree_hash(expected) {
        return;
    }
    let mut report = Vec::new();
    for (path, node) in expected {
        match actual.get(path) {
            None => report.push(format!("missing {}: {node:?}", String::from_utf8_lossy(path))),
            Some(other) if other != node => report.push(format!(
                "differs {}: {other:?}, expected {node:?}",
                String::from_utf8_lossy(path)
            )),
            Some(_) => {}
        }
    }
    for path in actual.keys().filter(|p| !expected.contains_key(*p)) {
        report.push(format!("extra {}", String::from_utf8_lossy(path)));
    }
    report.truncate(20);
    panic!("{what}: trees differ:\n{}", report.join("\n"));
}

/// `len` pseudo-random bytes from `seed` (xorshift), the same on every run.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

pub fn chmod(root: &Path, rel: &str, mode: u32) {
    fs::set_permissions(root.join(rel), fs::Permissions::from_mode(mode)).unwrap();
}

pub fn symlink(root: &Path, rel: &str, target: impl AsRef<Path>) {
    std::os::unix::fs::symlink(target, root.join(rel)).unwrap();
}

/// A store with no excludes.
pub fn plain_store(path: &Path) -> Store {
    Store::open(path, StoreConfig::default()).unwrap()
}

/// The number of object files in a store and their total size.
pub fn object_usage(store: &Path) -> (u64, u64) {
    let mut count = 0;
    let mut bytes = 0;
    for prefix in fs::read_dir(store.join("objects")).unwrap() {
        for object in fs::read_dir(prefix.unwrap().path()).unwrap() {
            count += 1;
            bytes += object.unwrap().metadata().unwrap().len();
        }
    }
    (count, bytes)
}

/// Where the store keeps the object with this content (the documented layout).
pub fn object_path(store: &Path, content: &[u8]) -> std::path::PathBuf {
    let hex = blake3::hash(content).to_hex().to_string();
    store.join("objects").join(&hex[..2]).join(&hex[2..])
}
