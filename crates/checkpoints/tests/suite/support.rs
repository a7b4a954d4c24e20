//! Helpers: a fingerprint of a directory tree written independently of the crate,
//! deterministic file contents, directory chains deeper than a path can name, and threads
//! with small stacks.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rustix::fs::{Mode, OFlags};

use agentbox_checkpoints::{Store, StoreConfig};

/// One path of a tree as a test sees it: type, permission bits, content or link target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    File {
        mode: u32,
        len: u64,
        hash: String,
    },
    Dir {
        mode: u32,
    },
    Symlink {
        target: Vec<u8>,
    },
    /// A socket, FIFO or device, which is looked at, never opened.
    Special,
}

/// Every path under a root (relative, as bytes) with what it is. Symlinks are read with
/// `symlink_metadata` and `read_link`, never followed. A loop over a stack, so deep trees
/// need no deep stack here either.
pub type Tree = BTreeMap<Vec<u8>, Node>;

pub fn fingerprint(root: &Path) -> Tree {
    let mut tree = Tree::new();
    let mut dirs = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, rel)) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let mut child = rel.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(entry.file_name().as_bytes());
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let kind = meta.file_type();
            let node = if kind.is_symlink() {
                Node::Symlink {
                    target: fs::read_link(&path).unwrap().as_os_str().as_bytes().to_vec(),
                }
            } else if kind.is_dir() {
                dirs.push((path, child.clone()));
                Node::Dir { mode }
            } else if kind.is_file() {
                let mut hasher = blake3::Hasher::new();
                let len = std::io::copy(&mut fs::File::open(&path).unwrap(), &mut hasher).unwrap();
                Node::File { mode, len, hash: hasher.finalize().to_hex().to_string() }
            } else {
                Node::Special
            };
            tree.insert(child, node);
        }
    }
    tree
}

/// Makes a chain of `levels` directories called `name` under `root`, one inside the other,
/// through descriptors (its path is far longer than a path may be); returns the deepest.
pub fn chain(root: &Path, name: &str, levels: usize) -> OwnedFd {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut dir = rustix::fs::open(root, flags, Mode::empty()).unwrap();
    for _ in 0..levels {
        rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)).unwrap();
        dir = rustix::fs::openat(&dir, name, flags, Mode::empty()).unwrap();
    }
    dir
}

/// Writes a file called `name` into the directory `dir`.
pub fn write_at(dir: &OwnedFd, name: &str, content: &[u8]) {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o644)).unwrap();
    std::io::Write::write_all(&mut fs::File::from(fd), content).unwrap();
}

/// Long enough for anything a test here does, short enough to fail rather than hang.
pub const PATIENCE: Duration = Duration::from_secs(300);

/// Runs `work` on a thread with a stack of `stack` bytes and returns what it returns; a
/// test fails, rather than hangs, if it has not finished within [`PATIENCE`].
pub fn on_thread<T: Send + 'static>(stack: usize, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            let _ = tx.send(work());
        })
        .unwrap();
    match rx.recv_timeout(PATIENCE) {
        Ok(out) => {
            thread.join().unwrap();
            out
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("still running after {PATIENCE:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(thread.join().unwrap_err())
        }
    }
}

/// The stack of an ordinary test thread (what `cargo test` gives one).
pub const TEST_STACK: usize = 2 << 20;

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
            Node::Special => {
                hasher.update(b"s\n");
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
