//! Checkpoints against `rsync -a --link-dest`, the seed's way of snapshotting a workspace.
//!
//! A workspace of 10,000 files (source-like sizes from 512 bytes to 512 KiB, about 250 MB, in
//! 500 directories three levels deep) is snapshotted once, then, in each run, one file is
//! rewritten and both take another snapshot: time, and the disk space the new snapshot adds
//! (allocated blocks of new inodes, hard links counted once). Then both restore the workspace
//! to the snapshot before the change (rsync: `rsync -a --delete SNAP/ WS/`). Ours is timed
//! with and without the checkpoint a restore takes first (the default, which makes it
//! undoable). Files are older than the stat cache's two-second window, as in a workspace
//! between turns. Page cache warm for both. Prints a Markdown table for docs/benchmarks.md.
//!
//! Run: `cargo bench -p agentbox-checkpoints --bench checkpoint_vs_rsync` (`BENCH_RUNS=N`,
//! default 7). Needs `rsync` (installed by scripts/setup).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use agentbox_checkpoints::{CheckpointOptions, RestoreOptions, Store, StoreConfig};

const FILES: usize = 10_000;

fn runs() -> usize {
    std::env::var("BENCH_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(7)
}

/// Deterministic pseudo-random numbers (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// The workspace's files: 10 × 10 × 5 directories of 20 files each. 70 % are 0.5–8 KiB,
/// 25 % 8–64 KiB and 5 % 64–512 KiB.
fn make_workspace(root: &Path, rng: &mut Rng) -> (Vec<PathBuf>, u64) {
    let mut paths = Vec::with_capacity(FILES);
    let mut total = 0;
    for i in 0..FILES {
        let leaf = i / 20;
        let dir = root.join(format!("pkg{}/mod{}/part{}", leaf / 50, (leaf / 5) % 10, leaf % 5));
        fs::create_dir_all(&dir).unwrap();
        let size = match rng.below(100) {
            0..70 => 512 + rng.below(7 * 1024 + 512),
            70..95 => 8 * 1024 + rng.below(56 * 1024),
            _ => 64 * 1024 + rng.below(448 * 1024),
        } as usize;
        let path = dir.join(format!("file{i}.src"));
        fs::write(&path, rng.bytes(size)).unwrap();
        total += size as u64;
        paths.push(path);
    }
    (paths, total)
}

/// Disk space allocated under `roots`, each inode counted once (like `du` over them all).
fn disk_usage(roots: &[&Path]) -> u64 {
    fn walk(path: &Path, seen: &mut HashSet<(u64, u64)>, total: &mut u64) {
        let meta = fs::symlink_metadata(path).unwrap();
        if seen.insert((meta.dev(), meta.ino())) {
            *total += meta.blocks() * 512;
        }
        if meta.is_dir() {
            for entry in fs::read_dir(path).unwrap() {
                walk(&entry.unwrap().path(), seen, total);
            }
        }
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for root in roots {
        walk(root, &mut seen, &mut total);
    }
    total
}

fn rsync(args: &[&Path]) {
    #[allow(clippy::disallowed_methods)] // The baseline under comparison, run on the host.
    let status = Command::new("rsync")
        .arg("-a")
        .args(args)
        .status()
        .expect("rsync is not installed: run scripts/setup");
    assert!(status.success(), "rsync failed");
}

fn rsync_delete(from: &Path, to: &Path) {
    #[allow(clippy::disallowed_methods)] // As above.
    let status = Command::new("rsync").args(["-a", "--delete"]).arg(from).arg(to).status().unwrap();
    assert!(status.success(), "rsync failed");
}

fn slash(path: &Path) -> PathBuf {
    let mut text = path.as_os_str().to_owned();
    text.push("/");
    PathBuf::from(text)
}

fn timed(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let runs = runs();
    let base = tempfile::tempdir().unwrap();
    let ws = base.path().join("ws");
    let mut rng = Rng(0x5eed);
    let (files, total) = make_workspace(&ws, &mut rng);
    println!("workspace: {FILES} files, {:.0} MB, {} runs", total as f64 / 1e6, runs);
    // Let the files age past the window in which the stat cache does not trust their times.
    std::thread::sleep(Duration::from_millis(2500));

    let store_dir = base.path().join("store");
    let store = Store::open(&store_dir, StoreConfig::default()).unwrap();
    let snaps = base.path().join("snaps");
    fs::create_dir_all(&snaps).unwrap();

    let mut first_ids = Vec::new();
    let ours_initial =
        timed(|| first_ids.push(store.checkpoint(&ws, &CheckpointOptions::default()).unwrap().id));
    let rsync_initial = timed(|| rsync(&[&slash(&ws), &snaps.join("0")]));
    let ours_initial_disk = disk_usage(&[&store_dir]);
    let rsync_initial_disk = disk_usage(&[&snaps]);

    let (mut ours_ckpt, mut ours_restore, mut ours_restore_plain) =
        (Vec::new(), Vec::new(), Vec::new());
    let (mut ours_disk, mut rsync_ckpt, mut rsync_restore, mut rsync_disk) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut previous = first_ids[0];
    let no_undo = RestoreOptions { checkpoint_first: false, ..Default::default() };
    for run in 1..=runs {
        // One source-sized file gets new content.
        let changed = &files[rng.below(FILES as u64) as usize];
        fs::write(changed, rng.bytes(4096)).unwrap();

        let before = disk_usage(&[&store_dir]);
        let mut id = None;
        ours_ckpt.push(ms(timed(|| {
            id = Some(store.checkpoint(&ws, &CheckpointOptions::default()).unwrap().id)
        })));
        ours_disk.push((disk_usage(&[&store_dir]) - before) as f64);
        let id = id.unwrap();

        let prev_snap = snaps.join((run - 1).to_string());
        let snap = snaps.join(run.to_string());
        let before = disk_usage(&[&snaps]);
        let link_dest = format!("--link-dest={}", prev_snap.display());
        rsync_ckpt.push(ms(timed(|| rsync(&[Path::new(&link_dest), &slash(&ws), &snap]))));
        rsync_disk.push((disk_usage(&[&snaps]) - before) as f64);

        // Back to the snapshot before the change, then forward again (not timed).
        ours_restore.push(ms(timed(|| {
            drop(store.restore(&previous, &ws, &RestoreOptions::default()).unwrap())
        })));
        store.restore(&id, &ws, &no_undo).unwrap();
        ours_restore_plain
            .push(ms(timed(|| drop(store.restore(&previous, &ws, &no_undo).unwrap()))));
        store.restore(&id, &ws, &no_undo).unwrap();
        rsync_restore.push(ms(timed(|| rsync_delete(&slash(&prev_snap), &ws))));
        rsync_delete(&slash(&snap), &ws);
        previous = id;
    }

    let row = |what: &str, ours: f64, theirs: f64, unit: &str| {
        println!("| {what} | {ours:.1} {unit} | {theirs:.1} {unit} | {:.2} |", ours / theirs);
    };
    println!();
    println!("| operation (median of {runs}) | agentbox checkpoints | rsync --link-dest | ratio |");
    println!("|---|---|---|---|");
    row("first snapshot of the workspace", ms(ours_initial), ms(rsync_initial), "ms");
    row(
        "disk used by the first snapshot",
        ours_initial_disk as f64 / 1e6,
        rsync_initial_disk as f64 / 1e6,
        "MB",
    );
    let rsync_ckpt_median = median(&mut rsync_ckpt);
    row("snapshot after one file changed", median(&mut ours_ckpt), rsync_ckpt_median, "ms");
    row(
        "disk added by that snapshot",
        median(&mut ours_disk) / 1e3,
        median(&mut rsync_disk) / 1e3,
        "kB",
    );
    let rsync_restore_median = median(&mut rsync_restore);
    row(
        "restore the snapshot before the change (ours: with its undo checkpoint)",
        median(&mut ours_restore),
        rsync_restore_median,
        "ms",
    );
    row(
        "restore the snapshot before the change (ours: without)",
        median(&mut ours_restore_plain),
        rsync_restore_median,
        "ms",
    );
}
