//! A checkpoint costs what changed: it reads only files whose metadata changed and stores
//! only new contents, so many checkpoints of a mostly unchanged workspace cost about one copy.

use std::fs;
use std::time::Duration;

use super::support::{assert_same_tree, fingerprint, noise, object_usage, plain_store, write};

/// Longer than the window in which a file's times cannot prove it unchanged (two seconds),
/// so that the files written before it are trusted from the stat cache.
const SETTLE: Duration = Duration::from_millis(2500);

#[test]
fn only_changed_files_are_read_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    for i in 0..300 {
        write(&ws, &format!("src/m{}/file{i}.rs", i % 10), noise(i, 2_000 + i as usize));
    }
    let store = plain_store(&dir.path().join("store"));
    std::thread::sleep(SETTLE);

    let first = store.checkpoint(&ws, &Default::default()).unwrap();
    assert_eq!(first.stats.files, 300);
    assert_eq!(first.stats.files_read, 300);
    assert_eq!(first.stats.directories, 11);
    assert_eq!(first.changes.added, 311);

    write(&ws, "src/m3/file3.rs", "edited");
    let second = store.checkpoint(&ws, &Default::default()).unwrap();
    assert_eq!(second.stats.files_read, 1, "only the edited file is read");
    // The new content and the trees of src/m3, src and the root.
    assert_eq!(second.stats.new_objects, 4);
    assert_eq!((second.changes.added, second.changes.modified, second.changes.deleted), (0, 1, 0));

    // New times, same content: read again, stored nothing, changed nothing.
    let content = fs::read(ws.join("src/m4/file4.rs")).unwrap();
    write(&ws, "src/m4/file4.rs", content);
    let third = store.checkpoint(&ws, &Default::default()).unwrap();
    assert!(third.stats.files_read >= 1 && third.stats.files_read <= 2, "{:?}", third.stats);
    assert_eq!(third.stats.new_objects, 0);
    assert_eq!(third.changes, Default::default());
    assert_eq!(third.root, second.root);
}

#[test]
fn the_stat_cache_keeps_its_contents_alive_through_gc() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    for i in 0..20 {
        write(&ws, &format!("f{i}"), noise(100 + i, 5_000));
    }
    let expected = fingerprint(&ws);
    let store = plain_store(&dir.path().join("store"));
    std::thread::sleep(SETTLE);
    let first = store.checkpoint(&ws, &Default::default()).unwrap();

    // With no checkpoint left, only the stat cache still names the contents; the next
    // checkpoint reuses its hashes without reading the files, so they must survive.
    store.delete(&first.id).unwrap();
    store.gc().unwrap();
    let again = store.checkpoint(&ws, &Default::default()).unwrap();
    assert_eq!(again.stats.files_read, 0, "the cache was used");
    let fork = dir.path().join("fork");
    store.restore_into(&again.id, &fork, None).unwrap();
    assert_same_tree(&fingerprint(&fork), &expected, "restored after gc");
}

#[test]
fn many_checkpoints_of_a_mostly_unchanged_workspace_cost_about_one_copy() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let mut workspace_bytes = 0u64;
    for i in 0..200 {
        let content = noise(1000 + i, 20_000);
        workspace_bytes += content.len() as u64;
        write(&ws, &format!("d{}/f{i}", i % 8), content);
    }
    let store_dir = dir.path().join("store");
    let store = plain_store(&store_dir);
    for n in 0..20 {
        write(&ws, &format!("d{}/f{n}", n % 8), format!("edit {n}"));
        store.checkpoint(&ws, &Default::default()).unwrap();
    }
    let (_, stored) = object_usage(&store_dir);
    assert!(
        stored < workspace_bytes + workspace_bytes / 10,
        "20 checkpoints take {stored} bytes for a {workspace_bytes}-byte workspace"
    );
    let list = store.list().unwrap();
    assert_eq!(list.len(), 20);
    let added: u64 = list[1..].iter().map(|c| c.stats.new_bytes).sum();
    assert!(added < 20 * 4_096, "later checkpoints added {added} bytes");
}

#[test]
fn a_tools_own_state_is_kept_but_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let config = agentbox_checkpoints::StoreConfig {
        uncounted: vec![".claude".into(), ".claude.json".into()],
        ..Default::default()
    };
    let store = agentbox_checkpoints::Store::open(dir.path().join("store"), config).unwrap();
    write(&ws, "app.py", "print(1)");
    write(&ws, ".claude/projects/x/session.jsonl", "{}");
    write(&ws, ".claude.json", "{}");
    write(&ws, ".claude.json.backup", "{}");
    write(&ws, ".clauderc", "not the tool's: counted");
    let first = store.checkpoint(&ws, &Default::default()).unwrap();
    assert_eq!(first.changes.added, 2, "app.py and .clauderc; {:?}", first.changes);

    write(&ws, ".claude/projects/x/session.jsonl", "{\"more\": 1}");
    write(&ws, ".claude.json", "{\"n\": 2}");
    write(&ws, "app.py", "print(2)");
    let second = store.checkpoint(&ws, &Default::default()).unwrap();
    assert_eq!((second.changes.added, second.changes.modified, second.changes.deleted), (0, 1, 0));

    // Not counted, still kept: a restore brings the tool's state back too.
    write(&ws, ".claude.json", "changed after");
    store
        .restore(
            &first.id,
            &ws,
            &agentbox_checkpoints::RestoreOptions { checkpoint_first: false, ..Default::default() },
        )
        .unwrap();
    assert_eq!(fs::read_to_string(ws.join(".claude.json")).unwrap(), "{}");
    assert_eq!(fs::read_to_string(ws.join(".claude/projects/x/session.jsonl")).unwrap(), "{}");
}
