//! Rounds of the changes an agent makes (add, edit, delete, rename, chmod, symlinks in and out
//! of the workspace, binary and large files, empty and read-only directories, type changes);
//! after each round every earlier checkpoint restores to exactly the tree recorded for it,
//! in place and into a new directory.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use agentbox_checkpoints::{CheckpointId, EntryKind, RestoreOptions, Store, StoreConfig};

use super::support::{Tree, assert_same_tree, chmod, fingerprint, noise, symlink, without, write};

const EXCLUDED: &[&str] = &["node_modules/.cache", "build/x.pyc"];
const BIG: usize = 50 * 1024 * 1024;

fn round(n: usize, ws: &Path, outside: &Path) {
    match n {
        0 => {
            write(ws, "README.md", "# project\n");
            write(ws, "src/main.rs", "fn main() {}\n");
            write(ws, "src/lib/util.rs", "pub fn util() {}\n");
            write(ws, "a/b/c/d/deep.txt", "deep\n");
            write(ws, "bin/run.sh", "#!/bin/sh\necho hi\n");
            chmod(ws, "bin/run.sh", 0o755);
            write(ws, "secret.key", "k");
            chmod(ws, "secret.key", 0o600);
            write(ws, "readonly.txt", "do not edit");
            chmod(ws, "readonly.txt", 0o444);
            fs::create_dir_all(ws.join("empty")).unwrap();
            fs::create_dir_all(ws.join("empty-ro")).unwrap();
            chmod(ws, "empty-ro", 0o555);
            let mut binary = noise(1, 100_000);
            binary[..64].fill(0);
            write(ws, "data.bin", binary);
            write(ws, "big.bin", noise(2, BIG));
            write(ws, "zero", "");
            symlink(ws, "link-to-main", "src/main.rs");
            symlink(ws, "abs-outside", outside.join("secret.txt"));
            symlink(ws, "rel-outside", "../outside");
            symlink(ws, "dangling", "does/not/exist");
            symlink(ws, "srclink", "src");
            write(ws, "name with spaces.txt", "spaces");
            write(ws, "new\nline", "newline in the name");
            fs::write(ws.join(std::ffi::OsStr::from_bytes(b"caf\xe9")), "latin-1 name").unwrap();
            write(ws, ".git/HEAD", "ref: refs/heads/main\n");
            write(ws, ".gitignore", "ignored.log\n");
            write(ws, "ignored.log", "ignored by git, kept by checkpoints");
            write(ws, "node_modules/pkg/index.js", "module.exports = 1;\n");
            write(ws, "node_modules/.cache/blob", noise(3, 10_000));
            write(ws, "build/x.pyc", "excluded");
        }
        1 => {
            write(ws, "src/main.rs", "fn main() { println!(\"edited\"); }\n");
            fs::remove_file(ws.join("README.md")).unwrap();
            fs::rename(ws.join("src/lib/util.rs"), ws.join("src/lib/helpers.rs")).unwrap();
            chmod(ws, "bin/run.sh", 0o700);
            chmod(ws, "secret.key", 0o640);
            let mut big = fs::read(ws.join("big.bin")).unwrap();
            big[BIG / 2..BIG / 2 + 4096].copy_from_slice(&noise(4, 4096));
            write(ws, "big.bin", big);
            fs::remove_file(ws.join("link-to-main")).unwrap();
            symlink(ws, "link-to-main", "src/lib/helpers.rs");
            write(ws, "new/dir/file.txt", "new");
            // Same content, new times: not a change.
            let data = fs::read(ws.join("data.bin")).unwrap();
            write(ws, "data.bin", data);
            write(ws, "node_modules/.cache/blob", "changed cache, not a change");
        }
        2 => {
            fs::remove_dir_all(ws.join("src/lib")).unwrap();
            write(ws, "src/lib", "a directory became a file");
            fs::remove_dir(ws.join("empty")).unwrap();
            symlink(ws, "empty", "src");
            fs::remove_file(ws.join("srclink")).unwrap();
            write(ws, "srclink/inside.txt", "a symlink became a directory");
            fs::remove_file(ws.join("zero")).unwrap();
            fs::create_dir_all(ws.join("zero/still-empty")).unwrap();
            fs::remove_dir_all(ws.join("a")).unwrap();
            chmod(ws, "new", 0o750);
            fs::hard_link(ws.join("src/main.rs"), ws.join("hardlink.rs")).unwrap();
            fs::remove_file(ws.join("data.bin")).unwrap();
            symlink(ws, "data.bin", "big.bin");
        }
        3 => {
            let mut big = fs::read(ws.join("big.bin")).unwrap();
            big.truncate(10 * 1024 * 1024);
            big.extend_from_slice(&noise(5, 1_000_001));
            write(ws, "big.bin", big);
            chmod(ws, "empty-ro", 0o755);
            write(ws, "empty-ro/now-with-a-file", "x");
            chmod(ws, "empty-ro", 0o555);
            for name in ["abs-outside", "rel-outside", "dangling", "empty"] {
                fs::remove_file(ws.join(name)).unwrap();
            }
            for i in 0..200 {
                write(ws, &format!("many/{:02}/{i}.txt", i % 7), format!("file {i}\n"));
            }
        }
        4 => {
            // Nearly everything goes: restoring earlier checkpoints rebuilds it all.
            for entry in fs::read_dir(ws).unwrap() {
                let entry = entry.unwrap();
                let name = entry.file_name();
                if name == "big.bin" || name == "node_modules" {
                    continue;
                }
                let path = entry.path();
                if fs::symlink_metadata(&path).unwrap().is_dir() {
                    make_writable(&path);
                    fs::remove_dir_all(&path).unwrap();
                } else {
                    fs::remove_file(&path).unwrap();
                }
            }
        }
        _ => unreachable!(),
    }
}

fn make_writable(dir: &Path) {
    chmod(dir, "", 0o755);
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            make_writable(&path);
        }
    }
}

fn managed(ws: &Path) -> Tree {
    without(fingerprint(ws), EXCLUDED)
}

#[test]
fn every_checkpoint_restores_exactly_after_every_round() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let outside = dir.path().join("outside");
    fs::create_dir_all(&ws).unwrap();
    write(&outside, "secret.txt", "outside the workspace");
    let outside_before = fingerprint(&outside);
    let config = StoreConfig {
        excludes: EXCLUDED.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let store = Store::open(dir.path().join("store"), config).unwrap();
    let no_undo = RestoreOptions { checkpoint_first: false, ..Default::default() };

    let mut recorded: Vec<(CheckpointId, Tree)> = Vec::new();
    for n in 0..5 {
        round(n, &ws, &outside);
        let checkpoint = store.checkpoint(&ws, &Default::default()).unwrap();
        let latest = managed(&ws);
        recorded.push((checkpoint.id, latest.clone()));

        // Newest first, then the oldest, so each restore goes a different distance.
        let mut order: Vec<usize> = (0..recorded.len()).rev().collect();
        order.rotate_left(1);
        for i in order {
            let (id, expected) = &recorded[i];
            store.restore(id, &ws, &no_undo).unwrap();
            assert_same_tree(
                &managed(&ws),
                expected,
                &format!("round {n}: in-place restore of checkpoint {i}"),
            );
        }
        store.restore(&checkpoint.id, &ws, &no_undo).unwrap();
        assert_same_tree(&managed(&ws), &latest, &format!("round {n}: back to the latest"));
        let fork = dir.path().join(format!("fork-{n}"));
        store.restore_into(&checkpoint.id, &fork, None).unwrap();
        assert_same_tree(&fingerprint(&fork), &latest, &format!("round {n}: fork"));
    }

    // Every checkpoint once more, each into a new directory.
    for (i, (id, expected)) in recorded.iter().enumerate() {
        let fork = dir.path().join(format!("final-fork-{i}"));
        store.restore_into(id, &fork, None).unwrap();
        assert_same_tree(&fingerprint(&fork), expected, &format!("final fork of checkpoint {i}"));
    }

    // The links out of the workspace were stored as links: nothing of what they point to.
    let first = &recorded[0].0;
    let paths = store.paths(first).unwrap();
    let kind_of = |p: &str| paths.iter().find(|(path, _)| path == Path::new(p)).map(|(_, k)| *k);
    assert_eq!(kind_of("rel-outside"), Some(EntryKind::Symlink));
    assert_eq!(kind_of("abs-outside"), Some(EntryKind::Symlink));
    assert_eq!(kind_of("srclink"), Some(EntryKind::Symlink));
    let under = |p: &Path, prefix: &str| p.as_os_str().as_bytes().starts_with(prefix.as_bytes());
    assert!(!paths.iter().any(|(p, _)| under(p, "rel-outside/") || under(p, "srclink/")));
    assert_eq!(fingerprint(&outside), outside_before, "nothing outside the workspace changed");

    // Excluded paths were not stored, and restores left the cache as the agent last wrote it.
    assert!(
        !paths.iter().any(|(p, _)| p.starts_with("node_modules/.cache") || p.ends_with("x.pyc"))
    );
    assert_eq!(kind_of("node_modules/pkg/index.js"), Some(EntryKind::File));
    assert_eq!(
        fs::read(ws.join("node_modules/.cache/blob")).unwrap(),
        b"changed cache, not a change"
    );

    // Each checkpoint counted its changes against the one before it.
    let list = store.list().unwrap();
    assert_eq!(list.len(), 5);
    let round1 = &list[1];
    assert_eq!(round1.parent, Some(list[0].id));
    // Round 1: README deleted, util.rs renamed (deleted + added), new/ new/dir new/dir/file.txt
    // added, main.rs, run.sh, secret.key, big.bin and link-to-main modified.
    assert_eq!((round1.changes.added, round1.changes.modified, round1.changes.deleted), (4, 5, 2));
}
