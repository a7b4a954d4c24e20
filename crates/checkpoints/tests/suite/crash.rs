//! Crash safety and the store lock: a process killed in the middle of a checkpoint leaves
//! every earlier checkpoint restorable byte for byte, and nothing else runs on the store
//! while a checkpoint holds it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use agentbox_checkpoints::{RestoreOptions, Store};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use super::support::{assert_same_tree, fingerprint, noise, object_path, plain_store, write};

const CHILD_STORE: &str = "AGENTBOX_CHECKPOINTS_CRASH_STORE";
const CHILD_WORKSPACE: &str = "AGENTBOX_CHECKPOINTS_CRASH_WORKSPACE";
const HUGE: u64 = 256 * 1024 * 1024;
const PATIENCE: Duration = Duration::from_secs(120);

/// Not a test: the child process of `killed_mid_checkpoint...`, which runs it by name.
#[test]
#[ignore = "run by killed_mid_checkpoint_leaves_earlier_checkpoints_restorable"]
fn crash_child() {
    let (Ok(store), Ok(workspace)) = (std::env::var(CHILD_STORE), std::env::var(CHILD_WORKSPACE))
    else {
        return;
    };
    plain_store(Path::new(&store)).checkpoint(Path::new(&workspace), &Default::default()).unwrap();
}

/// The partially written object of the huge file in the store's `tmp/`, once there is one
/// (more than 16 MiB, which only that file reaches; other large files pass through `tmp/` too).
fn partial_object(store: &Path) -> Option<PathBuf> {
    fs::read_dir(store.join("tmp")).ok()?.filter_map(Result::ok).find_map(|entry| {
        let name = entry.file_name();
        let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
        (name.to_string_lossy().starts_with("object-") && len > 16 << 20).then(|| entry.path())
    })
}

#[test]
fn killed_mid_checkpoint_leaves_earlier_checkpoints_restorable() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let store_dir = dir.path().join("store");
    for i in 0..100 {
        write(&ws, &format!("src/f{i}.txt"), noise(i, 3_000));
    }
    write(&ws, "big-old.bin", noise(7, 3_000_000));
    let store = plain_store(&store_dir);
    let first = store.checkpoint(&ws, &Default::default()).unwrap();
    let first_tree = fingerprint(&ws);
    write(&ws, "src/f1.txt", "edited");
    let second = store.checkpoint(&ws, &Default::default()).unwrap();
    let second_tree = fingerprint(&ws);

    // New small files (sorted first, so stored first) and a large one the child is still
    // copying into the store when it is killed.
    let new_small: Vec<Vec<u8>> = (0..300).map(|i| noise(10_000 + i, 500)).collect();
    for (i, content) in new_small.iter().enumerate() {
        write(&ws, &format!("aaa-new/{i}"), content);
    }
    // Data, not holes: a checkpoint neither reads nor writes a sparse file's holes, and this
    // one must take the child a while to copy.
    let mut huge = std::io::BufWriter::new(fs::File::create(ws.join("zzz-huge.bin")).unwrap());
    for seed in 0..HUGE >> 20 {
        std::io::Write::write_all(&mut huge, &noise(1_000_000 + seed, 1 << 20)).unwrap();
    }
    drop(huge);

    #[allow(clippy::disallowed_methods)] // The test binary itself, as the process to kill.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "suite::crash::crash_child", "--ignored", "--nocapture"])
        .env(CHILD_STORE, &store_dir)
        .env(CHILD_WORKSPACE, &ws)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while partial_object(&store_dir).is_none() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child finished before it could be killed"
        );
        assert!(started.elapsed() < PATIENCE, "the child never started writing the large file");
        std::thread::sleep(Duration::from_millis(2));
    }

    // Frozen in the middle of the checkpoint, the child holds the store: a reader in this
    // process waits for it.
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    signal::kill(pid, Signal::SIGSTOP).unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let reader_store = plain_store(&store_dir);
    let reader = std::thread::spawn(move || {
        let listed = reader_store.list().unwrap();
        done_tx.send(()).unwrap();
        listed
    });
    assert!(
        done_rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "list ran while another process was taking a checkpoint"
    );
    assert!(child.try_wait().unwrap().is_none(), "the child finished before it was stopped");
    child.kill().unwrap();
    child.wait().unwrap();

    // The reader ran once the lock was released, and the crashed checkpoint does not exist.
    let listed = reader.join().unwrap();
    assert_eq!(listed.iter().map(|c| c.id).collect::<Vec<_>>(), vec![first.id, second.id]);
    assert!(partial_object(&store_dir).is_some(), "the crash left a partial object");
    assert!(object_path(&store_dir, &new_small[0]).exists(), "the child had stored new objects");

    // Both earlier checkpoints restore exactly, in place and into new directories.
    for (id, expected, name) in
        [(first.id, &first_tree, "first"), (second.id, &second_tree, "second")]
    {
        let fork = dir.path().join(name);
        store.restore_into(&id, &fork, None).unwrap();
        assert_same_tree(&fingerprint(&fork), expected, name);
    }
    let restored = store.restore(&first.id, &ws, &RestoreOptions::default()).unwrap();
    assert_same_tree(&fingerprint(&ws), &first_tree, "in place");
    assert!(!ws.join("zzz-huge.bin").exists());

    // The undo checkpoint holds everything the crashed one would have; garbage collection
    // then keeps what it references and removes nothing a checkpoint needs.
    let undo = restored.undo.into_checkpoint().unwrap();
    store.gc().unwrap();
    assert!(partial_object(&store_dir).is_none());
    store
        .restore(&undo.id, &ws, &RestoreOptions { checkpoint_first: false, ..Default::default() })
        .unwrap();
    assert_eq!(fs::read(ws.join("aaa-new/0")).unwrap(), new_small[0]);
    assert_eq!(fs::metadata(ws.join("zzz-huge.bin")).unwrap().len(), HUGE);
}

#[test]
fn leftovers_of_a_crash_are_ignored_and_a_truncated_object_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let store_dir = dir.path().join("store");
    let store = plain_store(&store_dir);
    write(&ws, "a.txt", "first");
    let first = store.checkpoint(&ws, &Default::default()).unwrap();
    let first_tree = fingerprint(&ws);

    // What a crash (or a power loss before the sync) can leave: a half-written manifest in
    // tmp/, a partial object there, and an object of the right name but cut short.
    let content = noise(1, 50_000);
    fs::write(
        store_dir.join("tmp/manifest-0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.json"),
        "{\"format\":1,\"id\"",
    )
    .unwrap();
    fs::write(store_dir.join("tmp/object-99-0"), &content[..100]).unwrap();
    let truncated = object_path(&store_dir, &content);
    fs::create_dir_all(truncated.parent().unwrap()).unwrap();
    fs::write(&truncated, &content[..1000]).unwrap();

    let reopened = Store::open(&store_dir, Default::default()).unwrap();
    assert_eq!(reopened.list().unwrap().len(), 1);
    write(&ws, "b.bin", &content);
    let second = reopened.checkpoint(&ws, &Default::default()).unwrap();
    let second_tree = fingerprint(&ws);
    assert_eq!(fs::read(&truncated).unwrap(), content, "the cut-short object was written again");
    assert_eq!(
        fs::read_dir(store_dir.join("tmp"))
            .unwrap()
            .filter(|e| {
                e.as_ref().unwrap().file_name().to_string_lossy().starts_with("manifest-")
            })
            .count(),
        0
    );

    for (id, expected, name) in
        [(first.id, &first_tree, "first"), (second.id, &second_tree, "second")]
    {
        let fork = dir.path().join(name);
        reopened.restore_into(&id, &fork, None).unwrap();
        assert_same_tree(&fingerprint(&fork), expected, name);
    }
}
