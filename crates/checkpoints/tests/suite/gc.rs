//! Housekeeping: garbage collection removes exactly the data nothing references; retention
//! drops old checkpoints but never pinned ones or the newest.

use std::fs;

use agentbox_checkpoints::{CheckpointError, Retention};
use chrono::TimeDelta;

use super::support::{
    assert_same_tree, fingerprint, noise, object_path, object_usage, plain_store, write,
};

#[test]
fn gc_removes_only_unreferenced_objects() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let store_dir = dir.path().join("store");
    let store = plain_store(&store_dir);
    let shared = noise(1, 300_000);
    let only_in_second = noise(2, 2_000_000);
    let only_in_third = noise(3, 400_000);

    write(&ws, "shared.bin", &shared);
    let first = store.checkpoint(&ws, &Default::default()).unwrap();
    let first_tree = fingerprint(&ws);
    write(&ws, "second.bin", &only_in_second);
    let second = store.checkpoint(&ws, &Default::default()).unwrap();
    fs::remove_file(ws.join("second.bin")).unwrap();
    write(&ws, "third.bin", &only_in_third);
    let third = store.checkpoint(&ws, &Default::default()).unwrap();
    let third_tree = fingerprint(&ws);
    assert!(object_path(&store_dir, &only_in_second).exists());

    // Leftovers of a crashed writer: a stray object and temporary files.
    let stray = noise(4, 1000);
    let stray_path = object_path(&store_dir, &stray);
    fs::create_dir_all(stray_path.parent().unwrap()).unwrap();
    fs::write(&stray_path, &stray).unwrap();
    fs::write(store_dir.join("tmp/object-1-1"), "partial").unwrap();

    store.delete(&second.id).unwrap();
    let (count_before, bytes_before) = object_usage(&store_dir);
    let stats = store.gc().unwrap();
    let (count_after, bytes_after) = object_usage(&store_dir);
    // The second checkpoint's content and its root tree, and the stray object.
    assert_eq!(stats.objects_removed, 3, "{stats:?}");
    assert_eq!(stats.temp_files_removed, 1);
    assert_eq!(count_before - count_after, 3);
    assert_eq!(bytes_before - bytes_after, stats.bytes_removed);
    assert!(stats.bytes_removed >= 2_001_000);
    assert!(!object_path(&store_dir, &only_in_second).exists());
    assert!(!stray_path.exists());
    assert!(object_path(&store_dir, &shared).exists());
    assert!(object_path(&store_dir, &only_in_third).exists());
    assert_eq!(fs::read_dir(store_dir.join("tmp")).unwrap().count(), 0);

    for (id, expected, name) in [(first.id, &first_tree, "first"), (third.id, &third_tree, "third")]
    {
        let fork = dir.path().join(name);
        store.restore_into(&id, &fork, None).unwrap();
        assert_same_tree(&fingerprint(&fork), expected, name);
    }
    let again = store.gc().unwrap();
    assert_eq!(again.objects_removed, 0);
    assert_eq!(again.objects_kept, stats.objects_kept);
}

#[test]
fn retention_keeps_pinned_and_newest_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let store = plain_store(&dir.path().join("store"));
    let mut ids = Vec::new();
    for n in 0..6 {
        write(&ws, "f", format!("{n}"));
        ids.push(store.checkpoint(&ws, &Default::default()).unwrap().id);
    }
    store.pin(&ids[1]).unwrap();
    let err = store.delete(&ids[1]).unwrap_err();
    assert!(matches!(err, CheckpointError::Pinned(id) if id == ids[1]), "{err}");

    let now = store.get(&ids[5]).unwrap().created_at;
    let dropped = store.prune(&Retention { keep_last: Some(2), max_age: None }, now).unwrap();
    let dropped: Vec<_> = dropped.iter().map(|c| c.id).collect();
    assert_eq!(dropped, vec![ids[0], ids[2], ids[3]]);
    let kept: Vec<_> = store.list().unwrap().iter().map(|c| (c.id, c.pinned)).collect();
    assert_eq!(kept, vec![(ids[1], true), (ids[4], false), (ids[5], false)]);

    // An hour later, with a 30-minute limit: only the newest and the pinned one remain.
    let later = now + TimeDelta::hours(1);
    let dropped = store
        .prune(&Retention { keep_last: None, max_age: Some(TimeDelta::minutes(30)) }, later)
        .unwrap();
    assert_eq!(dropped.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[4]]);
    store.unpin(&ids[1]).unwrap();
    let dropped = store.prune(&Retention { keep_last: Some(1), max_age: None }, later).unwrap();
    assert_eq!(dropped.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[1]]);
    assert_eq!(store.list().unwrap().iter().map(|c| c.id).collect::<Vec<_>>(), vec![ids[5]]);

    store.gc().unwrap();
    let fork = dir.path().join("fork");
    store.restore_into(&ids[5], &fork, None).unwrap();
    assert_eq!(fs::read_to_string(fork.join("f")).unwrap(), "5");
}
