//! Restore's promises: it never writes through a symlink the agent planted, it can be undone,
//! a fork needs an empty directory, and bad ids change nothing.

use std::fs;

use agentbox_checkpoints::{CheckpointError, CheckpointId, RestoreOptions};

use super::support::{assert_same_tree, fingerprint, plain_store, symlink, write};

#[test]
fn restore_replaces_planted_symlinks_instead_of_writing_through_them() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let outside = dir.path().join("outside");
    write(&ws, "sub/file.txt", "inside");
    write(&ws, "config.txt", "inside too");
    write(&outside, "keep.txt", "outside");
    write(&outside, "victim.txt", "outside victim");
    let store = plain_store(&dir.path().join("store"));
    let checkpoint = store.checkpoint(&ws, &Default::default()).unwrap();
    let expected = fingerprint(&ws);
    let outside_before = fingerprint(&outside);

    // The agent swaps a directory and a file for links to places outside the workspace.
    fs::remove_dir_all(ws.join("sub")).unwrap();
    symlink(&ws, "sub", &outside);
    fs::remove_file(ws.join("config.txt")).unwrap();
    symlink(&ws, "config.txt", outside.join("victim.txt"));

    store.restore(&checkpoint.id, &ws, &RestoreOptions::default()).unwrap();
    assert_same_tree(&fingerprint(&ws), &expected, "restored workspace");
    assert!(fs::symlink_metadata(ws.join("sub")).unwrap().is_dir());
    assert_eq!(fingerprint(&outside), outside_before, "nothing was written outside");
}

#[test]
fn a_restore_can_be_undone_with_the_checkpoint_it_takes_first() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    write(&ws, "a.txt", "one");
    let store = plain_store(&dir.path().join("store"));
    let first = store.checkpoint(&ws, &Default::default()).unwrap();
    write(&ws, "a.txt", "two");
    write(&ws, "later/b.txt", "added after the checkpoint");
    fs::create_dir_all(ws.join("later/empty")).unwrap();
    let before_restore = fingerprint(&ws);

    let restored = store.restore(&first.id, &ws, &RestoreOptions::default()).unwrap();
    assert_eq!(fs::read_to_string(ws.join("a.txt")).unwrap(), "one");
    assert!(!ws.join("later").exists(), "files added after the checkpoint are removed");
    assert_eq!(restored.stats.files_written, 1);
    assert_eq!(restored.stats.removed, 3, "later/, later/b.txt and later/empty");

    let undo = restored.undo.into_checkpoint().expect("the restore took a checkpoint first");
    assert_eq!(undo.before_restore_of, Some(first.id));
    assert_eq!((undo.changes.added, undo.changes.modified), (3, 1));
    let listed: Vec<CheckpointId> = store.list().unwrap().iter().map(|c| c.id).collect();
    assert_eq!(listed, vec![first.id, undo.id]);

    let redo = store.restore(&undo.id, &ws, &RestoreOptions::default()).unwrap();
    assert_same_tree(&fingerprint(&ws), &before_restore, "undone restore");
    // Restoring the state the workspace is in would change nothing; it rewrote only the
    // paths that differed.
    assert_eq!(redo.stats.files_written, 2);
    assert_eq!(redo.stats.directories_created, 2);
    assert_eq!(redo.stats.removed, 0);
}

#[test]
fn restoring_the_current_state_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    for i in 0..50 {
        write(&ws, &format!("d{}/f{i}", i % 5), format!("{i}"));
    }
    let store = plain_store(&dir.path().join("store"));
    let checkpoint = store.checkpoint(&ws, &Default::default()).unwrap();
    let restored = store.restore(&checkpoint.id, &ws, &RestoreOptions::default()).unwrap();
    assert_eq!(restored.stats, Default::default());
    assert_eq!(
        restored.undo.into_checkpoint().unwrap().root,
        checkpoint.root,
        "same content, same root tree"
    );
}

#[test]
fn forks_need_an_empty_directory_and_stay_independent() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    write(&ws, "shared.txt", "v1");
    let store = plain_store(&dir.path().join("store"));
    let checkpoint = store.checkpoint(&ws, &Default::default()).unwrap();

    let occupied = dir.path().join("occupied");
    write(&occupied, "x", "already here");
    let err = store.restore_into(&checkpoint.id, &occupied, None).unwrap_err();
    assert!(matches!(err, CheckpointError::TargetNotEmpty(_)), "{err}");
    assert_eq!(fs::read_to_string(occupied.join("x")).unwrap(), "already here");

    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    store.restore_into(&checkpoint.id, &empty, None).unwrap();
    let fork = dir.path().join("fork");
    store.restore_into(&checkpoint.id, &fork, None).unwrap();

    // Copies, not links: writing in the fork changes neither the workspace nor the store.
    fs::write(fork.join("shared.txt"), "changed in the fork").unwrap();
    assert_eq!(fs::read_to_string(ws.join("shared.txt")).unwrap(), "v1");
    let again = dir.path().join("again");
    store.restore_into(&checkpoint.id, &again, None).unwrap();
    assert_eq!(fs::read_to_string(again.join("shared.txt")).unwrap(), "v1");
}

#[test]
fn unknown_checkpoints_and_missing_workspaces_are_errors_that_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    write(&ws, "a", "a");
    let store = plain_store(&dir.path().join("store"));
    let unknown: CheckpointId = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".parse().unwrap();
    let err = store.restore(&unknown, &ws, &RestoreOptions::default()).unwrap_err();
    assert!(matches!(err, CheckpointError::NotFound(id) if id == unknown), "{err}");
    assert!(store.list().unwrap().is_empty(), "no checkpoint was taken for a failed restore");
    assert!(matches!(
        store.restore_into(&unknown, &dir.path().join("f"), None),
        Err(CheckpointError::NotFound(_))
    ));
    assert!(!dir.path().join("f").exists());

    let err = store.checkpoint(&dir.path().join("missing"), &Default::default()).unwrap_err();
    assert!(matches!(err, CheckpointError::NotADirectory(_)), "{err}");
    assert!(store.list().unwrap().is_empty());

    let inner = plain_store(&ws.join(".checkpoints"));
    let err = inner.checkpoint(&ws, &Default::default()).unwrap_err();
    assert!(matches!(err, CheckpointError::StoreInWorkspace { .. }), "{err}");
    assert!(inner.list().unwrap().is_empty());

    let err = agentbox_checkpoints::Store::open(
        dir.path().join("store2"),
        agentbox_checkpoints::StoreConfig { excludes: vec!["[".into()], ..Default::default() },
    )
    .unwrap_err();
    assert!(matches!(err, CheckpointError::InvalidExclude { .. }), "{err}");
}

#[test]
fn restored_entries_can_be_given_to_the_sandbox_user() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    write(&ws, "src/a.txt", "a");
    write(&ws, "b.txt", "b");
    symlink(&ws, "link", "src/a.txt");
    fs::create_dir_all(ws.join("empty")).unwrap();
    let store = plain_store(&dir.path().join("store"));
    let checkpoint = store.checkpoint(&ws, &Default::default()).unwrap();
    let sandbox_user = agentbox_checkpoints::Owner { uid: 4242, gid: 4343 };
    let fork = dir.path().join("fork");
    let result = store.restore_into(&checkpoint.id, &fork, Some(sandbox_user));
    if !nix::unistd::geteuid().is_root() {
        // Only root may give files away; the error says so rather than half-restoring.
        assert!(matches!(result, Err(CheckpointError::Io { op: "chown", .. })), "{result:?}");
        return;
    }
    result.unwrap();
    for path in ["", "src", "src/a.txt", "b.txt", "link", "empty"] {
        let meta = fs::symlink_metadata(fork.join(path)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4242, 4343), "{path:?}");
    }

    // In place, only what the restore writes changes hands.
    fs::write(ws.join("b.txt"), "changed").unwrap();
    let options = RestoreOptions { owner: Some(sandbox_user), ..Default::default() };
    store.restore(&checkpoint.id, &ws, &options).unwrap();
    assert_eq!(fs::symlink_metadata(ws.join("b.txt")).unwrap().uid(), 4242);
    assert_eq!(
        fs::symlink_metadata(ws.join("src/a.txt")).unwrap().uid(),
        nix::unistd::geteuid().as_raw()
    );
}

#[test]
fn set_user_id_bits_are_not_restored() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    write(&ws, "tool", "#!/bin/sh\n");
    super::support::chmod(&ws, "tool", 0o6755);
    let store = plain_store(&dir.path().join("store"));
    let checkpoint = store.checkpoint(&ws, &Default::default()).unwrap();
    let fork = dir.path().join("fork");
    store.restore_into(&checkpoint.id, &fork, None).unwrap();
    assert_eq!(fs::metadata(fork.join("tool")).unwrap().permissions().mode() & 0o7777, 0o755);
}
