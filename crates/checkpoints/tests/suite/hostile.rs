//! Workspaces built to break a checkpoint: directories nested thousands of levels deep, more
//! entries than the limit, a hundred thousand files in one directory, FIFOs, sockets and
//! devices, symlink loops, odd names, hard links and huge sparse files. A checkpoint of one
//! fails with a clear error or succeeds, never overflows a stack, blocks or runs out of
//! descriptors, and a restore over one still makes the workspace exactly the checkpoint.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use agentbox_checkpoints::{CheckpointError, MAX_DEPTH, RestoreOptions, Store, StoreConfig, Undo};

use super::support::{
    TEST_STACK, assert_same_tree, chain, fingerprint, noise, object_path, on_thread, plain_store,
    symlink, write, write_at,
};

const CHILD_DIR: &str = "AGENTBOX_CHECKPOINTS_DESCRIPTOR_DIR";

fn no_undo() -> RestoreOptions {
    RestoreOptions { checkpoint_first: false, ..Default::default() }
}

/// `d/d/…/d`, `levels` components.
fn chain_path(name: &str, levels: usize) -> PathBuf {
    PathBuf::from(vec![name; levels].join("/"))
}

#[test]
fn a_workspace_nested_deeper_than_the_limit_is_refused_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    write(&ws, "a.txt", "a");
    let deepest = chain(&ws, "d", 10_000);
    write_at(&deepest, "bottom.txt", b"10,000 levels down");
    drop(deepest);
    let store_dir = dir.path().join("store");

    let (ws2, store2) = (ws.clone(), store_dir.clone());
    let err = on_thread(TEST_STACK, move || {
        plain_store(&store2).checkpoint(&ws2, &Default::default()).unwrap_err()
    });
    let CheckpointError::TooDeep { path, limit } = &err else { panic!("{err:?}") };
    assert_eq!(*limit, MAX_DEPTH);
    assert_eq!(*path, chain_path("d", MAX_DEPTH + 1), "the first directory past the limit");
    let message = err.to_string();
    assert!(
        message.starts_with(
            "the workspace has directories nested more than 1024 levels deep (at d/d/d/"
        ) && message.ends_with("…); delete them to get checkpoints back"),
        "{message}"
    );
    assert!(message.len() < 200, "the path is abbreviated: {message}");
    assert!(plain_store(&store_dir).list().unwrap().is_empty(), "no checkpoint was taken");

    // Excluded, the same tree is not walked at all.
    let config = StoreConfig { excludes: vec!["d".into()], ..Default::default() };
    let store = Store::open(dir.path().join("excluding"), config).unwrap();
    let checkpoint = store.checkpoint(&ws, &Default::default()).unwrap();
    assert_eq!((checkpoint.stats.files, checkpoint.stats.directories), (1, 0));
}

#[test]
fn a_chain_of_exactly_the_limit_checkpoints_and_restores_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    write(&ws, "top.txt", "top");
    let deepest = chain(&ws, "d", MAX_DEPTH);
    write_at(&deepest, "bottom.txt", b"1024 levels down");
    drop(deepest);
    let expected = fingerprint(&ws);
    assert_eq!(expected.len(), MAX_DEPTH + 2);
    let store = plain_store(&dir.path().join("store"));
    let checkpoint = store.checkpoint(&ws, &Default::default()).unwrap();
    assert_eq!(checkpoint.stats.directories, MAX_DEPTH as u64);

    let fork = dir.path().join("fork");
    store.restore_into(&checkpoint.id, &fork, None).unwrap();
    assert_same_tree(&fingerprint(&fork), &expected, "fork");

    fs::remove_dir_all(ws.join("d")).unwrap();
    let restored = store.restore(&checkpoint.id, &ws, &RestoreOptions::default()).unwrap();
    assert_same_tree(&fingerprint(&ws), &expected, "in place");
    assert_eq!(restored.stats.directories_created, MAX_DEPTH as u64);
    assert!(matches!(restored.undo, Undo::Taken(_)), "{:?}", restored.undo);
}

/// A directory tree `levels` deep with a file at every level.
fn deep_tree(ws: &Path, levels: usize) -> OwnedFd {
    fs::create_dir_all(ws).unwrap();
    let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY;
    let mut dir = rustix::fs::open(ws, flags, rustix::fs::Mode::empty()).unwrap();
    for level in 0..levels {
        write_at(&dir, "f", format!("level {level}").as_bytes());
        rustix::fs::mkdirat(&dir, "d", rustix::fs::Mode::from_raw_mode(0o755)).unwrap();
        dir = rustix::fs::openat(&dir, "d", flags, rustix::fs::Mode::empty()).unwrap();
    }
    dir
}

/// A recursive walk needs some hundreds of bytes of stack per level, so 1000 levels overflow
/// a 256 KiB stack; a loop over an explicit stack needs the same stack at any depth.
#[test]
fn scan_restore_diff_and_gc_of_a_deep_tree_run_on_a_small_stack() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let store_dir = dir.path().join("store");
    fs::create_dir_all(&ws).unwrap();
    let empty = plain_store(&store_dir).checkpoint(&ws, &Default::default()).unwrap();
    let deepest = deep_tree(&ws, 1000);
    let first_tree = fingerprint(&ws);

    let (ws2, store2, dir2) = (ws.clone(), store_dir.clone(), dir.path().to_path_buf());
    let (first, second_tree, stats) = on_thread(256 * 1024, move || {
        let store = plain_store(&store2);
        let first = store.checkpoint(&ws2, &Default::default()).unwrap();
        write_at(&deepest, "added", b"at the bottom");
        let second_tree = fingerprint(&ws2);
        let second = store.checkpoint(&ws2, &Default::default()).unwrap();
        let changes = store.diff(Some(&first.id), &second.id).unwrap();
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(store.paths(&second.id).unwrap().len(), 2001);

        store.restore(&first.id, &ws2, &no_undo()).unwrap();
        store.restore(&empty.id, &ws2, &no_undo()).unwrap();
        assert_eq!(fs::read_dir(&ws2).unwrap().count(), 0, "the deep tree was removed");
        store.restore(&second.id, &ws2, &no_undo()).unwrap();
        store.restore_into(&first.id, &dir2.join("fork"), None).unwrap();
        store.delete(&second.id).unwrap();
        let stats = store.gc().unwrap();
        (first, second_tree, stats)
    });
    assert_same_tree(&fingerprint(&ws), &second_tree, "restored in place");
    assert_same_tree(&fingerprint(&dir.path().join("fork")), &first_tree, "fork");
    // The second checkpoint's bottom file, and its 1001 trees on the way down.
    assert_eq!(stats.objects_removed, 1002, "{stats:?}");
    let fork = dir.path().join("fork2");
    plain_store(&store_dir).restore_into(&first.id, &fork, None).unwrap();
    assert_same_tree(&fingerprint(&fork), &first_tree, "after gc");
}

/// Adds to `ws` everything a checkpoint must survive (a device node only when run as root,
/// who alone may make one), and changes to what `ordinary` made.
fn make_hostile(ws: &Path) {
    let deepest = chain(ws, "d", 10_000);
    write_at(&deepest, "bottom.txt", b"bottom");
    nix::unistd::mkfifo(ws.join("pipe").as_path(), nix::sys::stat::Mode::from_bits_truncate(0o644))
        .unwrap();
    nix::unistd::mkfifo(
        ws.join("src/pipe").as_path(),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    nix::unistd::mkfifoat(&deepest, "pipe", nix::sys::stat::Mode::from_bits_truncate(0o644))
        .unwrap();
    drop(deepest);
    drop(std::os::unix::net::UnixListener::bind(ws.join("sock")).unwrap());
    symlink(ws, "loop-a", "loop-b");
    symlink(ws, "loop-b", "loop-a");
    symlink(ws, "self", "self");
    let long = "x".repeat(255);
    write(ws, &long, "a 255-byte name");
    write(ws, &format!("{}/{}", "y".repeat(255), "z".repeat(255)), "two of them");
    let odd = ws.join(std::ffi::OsStr::from_bytes(b"bad\xff\xfe"));
    fs::create_dir(&odd).unwrap();
    fs::write(odd.join(std::ffi::OsStr::from_bytes(b"\xc3\x28")), "invalid UTF-8").unwrap();
    fs::hard_link(ws.join("keep.txt"), ws.join("hard-link")).unwrap();
    let sparse = fs::File::create(ws.join("sparse")).unwrap();
    sparse.set_len(16 << 30).unwrap();
    sparse.write_all_at(b"data in the middle", 8 << 30).unwrap();
    write(ws, "ro/inner/file", "in a directory nobody may enter");
    super::support::chmod(ws, "ro/inner", 0o000);
    super::support::chmod(ws, "ro", 0o555);
    if nix::unistd::geteuid().is_root() {
        nix::sys::stat::mknod(
            ws.join("null").as_path(),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap();
    }
    // And ordinary changes the restore must undo.
    write(ws, "src/main.rs", "changed");
    fs::remove_file(ws.join("docs/readme.md")).unwrap();
    fs::remove_dir(ws.join("empty")).unwrap();
    write(ws, "empty", "a directory became a file");
}

fn ordinary(ws: &Path) {
    write(ws, "src/main.rs", "fn main() {}\n");
    write(ws, "docs/readme.md", "# docs\n");
    write(ws, "keep.txt", "kept");
    symlink(ws, "link", "src/main.rs");
    fs::create_dir_all(ws.join("empty")).unwrap();
}

#[test]
fn a_restore_over_a_hostile_workspace_makes_it_exactly_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    ordinary(&ws);
    let store_dir = dir.path().join("store");
    let first = plain_store(&store_dir).checkpoint(&ws, &Default::default()).unwrap();
    let expected = fingerprint(&ws);
    make_hostile(&ws);

    let (ws2, store2) = (ws.clone(), store_dir.clone());
    let restored = on_thread(TEST_STACK, move || {
        plain_store(&store2).restore(&first.id, &ws2, &RestoreOptions::default()).unwrap()
    });
    let Undo::Refused(CheckpointError::TooDeep { path, limit }) = &restored.undo else {
        panic!("{:?}", restored.undo)
    };
    assert_eq!((path.clone(), *limit), (chain_path("d", MAX_DEPTH + 1), MAX_DEPTH));
    assert_same_tree(&fingerprint(&ws), &expected, "restored over the hostile workspace");
    assert!(restored.stats.removed > 10_000, "{:?}", restored.stats);
    let store = plain_store(&store_dir);
    assert_eq!(store.list().unwrap().len(), 1, "no undo checkpoint was taken");

    // The next checkpoint works again, and finds the checkpoint restored.
    let again = store.checkpoint(&ws, &Default::default()).unwrap();
    assert_eq!(again.root, first.root);
}

/// Not a test: the child process of `walks_hold_one_descriptor_per_level`, run by name.
#[test]
#[ignore = "run by walks_hold_one_descriptor_per_level"]
fn descriptor_child() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok(dir) = std::env::var(CHILD_DIR) else { return };
    let dir = PathBuf::from(dir);
    let ws = dir.join("ws");
    ordinary(&ws);
    let deepest = chain(&ws, "d", MAX_DEPTH);
    write_at(&deepest, "bottom.txt", b"bottom");
    drop(deepest);
    let expected = fingerprint(&ws);
    let store = plain_store(&dir.join("store"));

    // From here on, a walk may open one descriptor per level and a few more.
    let highest = fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap();
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, highest + 1 + MAX_DEPTH as u64 + 16, hard).unwrap();

    let checkpoint = store.checkpoint(&ws, &Default::default()).unwrap();
    store.restore_into(&checkpoint.id, &dir.join("fork"), None).unwrap();
    assert_same_tree(&fingerprint(&dir.join("fork")), &expected, "fork");
    drop(chain(&ws, "e", 10_000));
    let restored = store.restore(&checkpoint.id, &ws, &RestoreOptions::default()).unwrap();
    assert!(matches!(restored.undo, Undo::Refused(_)), "{:?}", restored.undo);
    assert_same_tree(&fingerprint(&ws), &expected, "in place");
}

#[test]
fn walks_hold_one_descriptor_per_level() {
    let dir = tempfile::tempdir().unwrap();
    #[allow(clippy::disallowed_methods)] // The test binary itself, with a lower descriptor limit.
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "suite::hostile::descriptor_child", "--ignored", "--nocapture"])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the walks ran out of descriptors or failed: {status}");
    assert!(dir.path().join("fork/d").exists(), "the child ran");
}

#[test]
fn a_hundred_thousand_files_in_one_directory_checkpoint_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let big = ws.join("big");
    fs::create_dir_all(&big).unwrap();
    for i in 0..100_000 {
        fs::write(big.join(format!("file-{i:06}")), format!("{}", i % 1000)).unwrap();
    }
    let expected = fingerprint(&ws);
    let store = plain_store(&dir.path().join("store"));
    let checkpoint = store.checkpoint(&ws, &Default::default()).unwrap();
    assert_eq!((checkpoint.stats.files, checkpoint.changes.added), (100_000, 100_001));

    let fork = dir.path().join("fork");
    store.restore_into(&checkpoint.id, &fork, None).unwrap();
    assert_same_tree(&fingerprint(&fork), &expected, "fork");

    for i in (0..100_000).step_by(10) {
        fs::remove_file(big.join(format!("file-{i:06}"))).unwrap();
    }
    for i in (1..100_000).step_by(1000) {
        fs::write(big.join(format!("file-{i:06}")), "changed").unwrap();
    }
    let restored = store.restore(&checkpoint.id, &ws, &RestoreOptions::default()).unwrap();
    assert_eq!(restored.stats.files_written, 10_100);
    assert_same_tree(&fingerprint(&ws), &expected, "in place");
}

#[test]
fn more_entries_than_the_limit_are_refused_and_restored_over() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    // Ten entries: a, its three files, and six more.
    for name in ["a/1", "a/2", "a/3", "b", "c", "d", "e", "f", "g"] {
        write(&ws, name, name);
    }
    let config = StoreConfig { max_entries: 10, ..Default::default() };
    let store = Store::open(dir.path().join("store"), config).unwrap();
    // Older than the stat cache's window, so the checkpoint's cache vouches for them.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let checkpoint = store.checkpoint(&ws, &Default::default()).unwrap();
    let expected = fingerprint(&ws);

    // A FIFO counts too: what a scan has to look at is what the limit bounds.
    nix::unistd::mkfifo(
        ws.join("a/fifo").as_path(),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let err = store.checkpoint(&ws, &Default::default()).unwrap_err();
    assert!(matches!(err, CheckpointError::TooManyEntries { limit: 10 }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the workspace holds more than 10 files and directories; \
         delete some to get checkpoints back"
    );
    assert_eq!(store.list().unwrap().len(), 1);

    write(&ws, "b", "changed");
    let restored = store.restore(&checkpoint.id, &ws, &RestoreOptions::default()).unwrap();
    assert!(
        matches!(restored.undo, Undo::Refused(CheckpointError::TooManyEntries { limit: 10 })),
        "{:?}",
        restored.undo
    );
    assert_same_tree(&fingerprint(&ws), &expected, "restored");
    // Looked at one by one, the files the stat cache knows unchanged were left alone.
    assert_eq!((restored.stats.files_written, restored.stats.removed), (1, 1));
    // Without an undo asked for, the same restore goes the same way.
    nix::unistd::mkfifo(ws.join("fifo").as_path(), nix::sys::stat::Mode::from_bits_truncate(0o644))
        .unwrap();
    let restored = store.restore(&checkpoint.id, &ws, &no_undo()).unwrap();
    assert!(matches!(restored.undo, Undo::NotRequested));
    assert_same_tree(&fingerprint(&ws), &expected, "restored without an undo");
}

#[test]
fn fifos_sockets_and_devices_never_block_a_checkpoint_or_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    write(&ws, "file.txt", "a file");
    write(&ws, "sub/other.txt", "another");
    let fifo = |path: PathBuf| {
        nix::unistd::mkfifo(path.as_path(), nix::sys::stat::Mode::from_bits_truncate(0o644))
            .unwrap()
    };
    fifo(ws.join("pipe"));
    fifo(ws.join("sub/pipe"));
    drop(std::os::unix::net::UnixListener::bind(ws.join("sock")).unwrap());
    let mut specials = 3;
    if nix::unistd::geteuid().is_root() {
        nix::sys::stat::mknod(
            ws.join("null").as_path(),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap();
        specials += 1;
    }
    let store_dir = dir.path().join("store");
    let (ws2, store2, dir2) = (ws.clone(), store_dir.clone(), dir.path().to_path_buf());
    on_thread(TEST_STACK, move || {
        let store = plain_store(&store2);
        let checkpoint = store.checkpoint(&ws2, &Default::default()).unwrap();
        assert_eq!(checkpoint.stats.special_skipped, specials);
        assert_eq!(checkpoint.stats.files, 2);

        // A FIFO where the checkpoint has a file is replaced by the file.
        fs::remove_file(ws2.join("file.txt")).unwrap();
        fifo(ws2.join("file.txt"));
        store.restore(&checkpoint.id, &ws2, &RestoreOptions::default()).unwrap();
        assert_eq!(fs::read_to_string(ws2.join("file.txt")).unwrap(), "a file");

        // Objects are opened the same way: one that became a FIFO is damage, not a wait.
        let object = object_path(&store2, b"a file");
        fs::remove_file(&object).unwrap();
        fifo(object);
        let err = store.restore_into(&checkpoint.id, &dir2.join("fork"), None).unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt(_)), "{err:?}");
        let hex = checkpoint.root.to_hex();
        let root = store2.join("objects").join(&hex[..2]).join(&hex[2..]);
        fs::remove_file(&root).unwrap();
        fifo(root);
        let err = store.diff(None, &checkpoint.id).unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt(_)), "{err:?}");
    });
}

/// Allocated bytes of a file.
fn allocated(path: &Path) -> u64 {
    fs::symlink_metadata(path).unwrap().blocks() * 512
}

#[test]
fn sparse_files_stay_sparse_in_the_store_and_when_restored() {
    const SIZE: u64 = 4 << 30;
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    fs::create_dir_all(&ws).unwrap();
    let data = noise(9, 1 << 20);
    let file = fs::File::create(ws.join("sparse")).unwrap();
    file.set_len(SIZE).unwrap();
    file.write_all_at(&data, 2 << 30).unwrap();
    file.write_all_at(b"end", SIZE - 3).unwrap();
    drop(file);
    let store_dir = dir.path().join("store");
    let store = plain_store(&store_dir);
    let checkpoint = store.checkpoint(&ws, &Default::default()).unwrap();
    assert_eq!(checkpoint.stats.bytes, SIZE);

    let mut stored = 0;
    for prefix in fs::read_dir(store_dir.join("objects")).unwrap() {
        for object in fs::read_dir(prefix.unwrap().path()).unwrap() {
            stored += allocated(&object.unwrap().path());
        }
    }
    assert!(stored < 64 << 20, "the store allocated {stored} bytes for a 4 GiB sparse file");

    let fork = dir.path().join("fork");
    store.restore_into(&checkpoint.id, &fork, None).unwrap();
    let restored = fork.join("sparse");
    assert_eq!(fs::metadata(&restored).unwrap().len(), SIZE);
    assert!(allocated(&restored) < 64 << 20, "restored dense: {}", allocated(&restored));
    let file = fs::File::open(&restored).unwrap();
    let mut buf = vec![0; data.len()];
    file.read_exact_at(&mut buf, 2 << 30).unwrap();
    assert_eq!(buf, data);
    file.read_exact_at(&mut buf, 1 << 30).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    let mut end = [0; 3];
    file.read_exact_at(&mut end, SIZE - 3).unwrap();
    assert_eq!(&end, b"end");
    // Byte for byte the same: a checkpoint of the fork hashes to the same tree.
    let other = plain_store(&dir.path().join("other"));
    assert_eq!(other.checkpoint(&fork, &Default::default()).unwrap().root, checkpoint.root);
}
