//! One checkpoint root shared by several processes, as workers sharing `--checkpoint-store`
//! are: two processes write checkpoints of different chats' stores while a third prunes
//! and collects garbage in both, all at once. Afterwards every object's name is the BLAKE3
//! hash of its bytes and every checkpoint that is left restores exactly what was written.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use agentbox_checkpoints::{CheckpointOptions, Retention};

use super::support::{noise, plain_store, write};

const CHILD_STORE: &str = "AGENTBOX_CHECKPOINTS_SHARED_STORE";
const CHILD_WORKSPACE: &str = "AGENTBOX_CHECKPOINTS_SHARED_WORKSPACE";
const CHILD_WRITER: &str = "AGENTBOX_CHECKPOINTS_SHARED_WRITER";
/// Checkpoints each writer takes.
const ROUNDS: u64 = 25;
/// Shared by every round of every writer, so that the GC and both writers meet on it.
const COMMON_SEED: u64 = 7;

/// What round `round` of writer `writer` puts in its workspace: a file of its own, a file
/// every round shares, and a counter saying which round it is.
fn fill(workspace: &Path, writer: u64, round: u64) {
    write(workspace, "round.txt", format!("{writer} {round}"));
    write(workspace, "data.bin", noise(writer * 1000 + round, 40_000 + round as usize));
    write(workspace, "common/shared.bin", noise(COMMON_SEED, 100_000));
    // Files that come and go, so that the GC has objects to remove.
    if round.is_multiple_of(2) {
        write(workspace, &format!("even/{round}.bin"), noise(writer * 1000 + 500 + round, 5_000));
    } else {
        let _ = fs::remove_dir_all(workspace.join("even"));
    }
}

/// Not a test: a writer process of `processes_sharing_a_checkpoint_root...`.
#[test]
#[ignore = "run by processes_sharing_a_checkpoint_root_never_corrupt_it"]
fn shared_writer_child() {
    let (Ok(store), Ok(workspace), Ok(writer)) =
        (std::env::var(CHILD_STORE), std::env::var(CHILD_WORKSPACE), std::env::var(CHILD_WRITER))
    else {
        return;
    };
    let writer: u64 = writer.parse().unwrap();
    let (store, workspace) = (plain_store(Path::new(&store)), Path::new(&workspace));
    for round in 0..ROUNDS {
        fill(workspace, writer, round);
        let label = Some(format!("{writer} {round}"));
        store.checkpoint(workspace, &CheckpointOptions { label }).unwrap();
    }
}

fn spawn_writer(store: &Path, workspace: &Path, writer: u64) -> Child {
    #[allow(clippy::disallowed_methods)] // The test binary itself, as another process.
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "suite::shared::shared_writer_child", "--ignored", "--nocapture"])
        .env(CHILD_STORE, store)
        .env(CHILD_WORKSPACE, workspace)
        .env(CHILD_WRITER, writer.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Every object file's name is the hash of its bytes; how many there are.
fn verify_objects(store: &Path) -> usize {
    let mut count = 0;
    for prefix in fs::read_dir(store.join("objects")).unwrap() {
        let prefix = prefix.unwrap();
        for object in fs::read_dir(prefix.path()).unwrap() {
            let object = object.unwrap();
            let name = format!(
                "{}{}",
                prefix.file_name().to_string_lossy(),
                object.file_name().to_string_lossy()
            );
            let bytes = fs::read(object.path()).unwrap();
            assert_eq!(blake3::hash(&bytes).to_hex().as_str(), name, "a corrupt object");
            count += 1;
        }
    }
    count
}

#[test]
fn processes_sharing_a_checkpoint_root_never_corrupt_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shared");
    let stores = [root.join("chat-a"), root.join("chat-b")];
    let workspaces = [dir.path().join("ws-a"), dir.path().join("ws-b")];
    // Both stores exist before anyone collects garbage in them.
    for store in &stores {
        plain_store(store);
    }
    let mut writers: Vec<Child> = (0..2)
        .map(|writer| spawn_writer(&stores[writer], &workspaces[writer], writer as u64))
        .collect();

    // Prune and collect garbage in both stores, from this process, until both writers are
    // done (and once more after).
    let retention = Retention { keep_last: Some(3), max_age: None };
    let (a, b) = (plain_store(&stores[0]), plain_store(&stores[1]));
    let mut passes = 0;
    loop {
        let running = writers.iter_mut().any(|child| child.try_wait().unwrap().is_none());
        for store in [&a, &b] {
            store.prune(&retention, chrono::Utc::now()).unwrap();
            store.gc().unwrap();
        }
        passes += 1;
        if !running {
            break;
        }
    }
    for mut child in writers {
        assert!(child.wait().unwrap().success(), "a writer failed");
    }
    assert!(passes > 1, "the collector never ran alongside the writers");

    for (writer, store_dir) in stores.iter().enumerate() {
        assert!(verify_objects(store_dir) > 0);
        let store = plain_store(store_dir);
        let left = store.list().unwrap();
        assert!(!left.is_empty() && left.len() <= 3, "{} checkpoints left", left.len());
        let newest = left.iter().max_by_key(|c| c.seq).unwrap();
        let last = format!("{writer} {}", ROUNDS - 1);
        assert_eq!(newest.label.as_deref(), Some(last.as_str()), "the newest always stays");
        for checkpoint in &left {
            let label = checkpoint.label.clone().unwrap();
            let round: u64 = label.split(' ').nth(1).unwrap().parse().unwrap();
            let target = dir.path().join(format!("restored-{writer}-{round}"));
            store.restore_into(&checkpoint.id, &target, None).unwrap();
            let expected = dir.path().join(format!("expected-{writer}-{round}"));
            for r in 0..=round {
                fill(&expected, writer as u64, r);
            }
            super::support::assert_same_tree(
                &super::support::fingerprint(&target),
                &super::support::fingerprint(&expected),
                &format!("checkpoint {label}"),
            );
        }
    }
}
