//! The checkpoint store: one directory holding the checkpoints of one workspace.
//!
//! ```text
//! <store>/lock                 flock: one writer (checkpoint, restore, prune, gc) at a time
//! <store>/objects/ab/cdef…     file contents, symlink targets and trees, named by BLAKE3
//! <store>/checkpoints/<id>.json manifests; a checkpoint exists once its manifest does
//! <store>/pins/<id>            pinned checkpoints, which retention never drops
//! <store>/index                stat cache of the last scan (see index.rs)
//! <store>/tmp/                 files being written; emptied by the next writer
//! ```

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use rustix::fs::{Mode, OFlags};

use crate::MAX_ENTRIES;
use crate::diff::{self, Change, ChangeCounts};
use crate::error::{CheckpointError, Result, io};
use crate::exclude::Excludes;
use crate::hash::ObjectHash;
use crate::index::Index;
use crate::manifest::{self, CheckpointId, Manifest};
use crate::objects::Objects;
use crate::restore::{Owner, Present, RestoreStats, Restorer};
use crate::scan::{ScanStats, Scanner};
use crate::tree::{self, EntryKind};

/// How a store is used; the same for every operation on it.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Paths neither stored nor touched by restore, as globs (see the crate docs).
    pub excludes: Vec<String>,
    /// The most entries a checkpoint takes ([`MAX_ENTRIES`] by default): a workspace with
    /// more fails with [`CheckpointError::TooManyEntries`].
    pub max_entries: usize,
    /// Top-level names whose changes a checkpoint does not count in its [`ChangeCounts`]
    /// (a tool's own state beside the user's files): a path counts unless its first
    /// component is one of them or one of them followed by `.` and more (`name.backup`).
    /// They are stored and restored like every other path.
    pub uncounted: Vec<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { excludes: Vec::new(), max_entries: MAX_ENTRIES, uncounted: Vec::new() }
    }
}

impl StoreConfig {
    /// Whether a change of `path` (relative to the workspace) counts in a checkpoint's
    /// numbers.
    fn counts(&self, path: &[u8]) -> bool {
        let first = path.split(|b| *b == b'/').next().unwrap_or(path);
        !self.uncounted.iter().any(|name| {
            let name = name.as_bytes();
            first.strip_prefix(name).is_some_and(|rest| rest.is_empty() || rest[0] == b'.')
        })
    }
}

#[derive(Clone, Debug, Default)]
pub struct CheckpointOptions {
    /// Free text kept with the checkpoint (for example the message it belongs to).
    pub label: Option<String>,
}

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// Take a checkpoint of the workspace as it is before changing it, so that the restore
    /// can be undone by restoring that one. On by default.
    pub checkpoint_first: bool,
    /// The label of that checkpoint; `before restoring <id>` when `None`.
    pub label: Option<String>,
    /// Who the entries the restore writes belong to (see [`Owner`]).
    pub owner: Option<Owner>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions { checkpoint_first: true, label: None, owner: None }
    }
}

/// A checkpoint, as listed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Checkpoint {
    pub id: CheckpointId,
    /// Position in the store's history; later checkpoints have larger numbers.
    pub seq: u64,
    pub created_at: DateTime<Utc>,
    /// The newest checkpoint when this one was taken; `changes` are counted against it.
    pub parent: Option<CheckpointId>,
    pub label: Option<String>,
    /// Set when a restore took this checkpoint of the workspace before changing it.
    pub before_restore_of: Option<CheckpointId>,
    pub pinned: bool,
    /// The root tree: two checkpoints with the same root hold the same workspace.
    pub root: ObjectHash,
    /// Paths added, modified and deleted since `parent`.
    pub changes: ChangeCounts,
    /// What the checkpoint holds and cost; `stats.new_bytes` is the space it added.
    pub stats: ScanStats,
}

impl Checkpoint {
    fn from_manifest(manifest: Manifest, pinned: bool) -> Self {
        Checkpoint {
            id: manifest.id,
            seq: manifest.seq,
            created_at: manifest.created_at,
            parent: manifest.parent,
            label: manifest.label,
            before_restore_of: manifest.before_restore_of,
            pinned,
            root: manifest.root,
            changes: manifest.changes,
            stats: manifest.stats,
        }
    }
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// Whether the restore can be undone, and how.
    pub undo: Undo,
    pub stats: RestoreStats,
}

/// The checkpoint a restore took of the workspace before changing it, or why there is none.
#[derive(Debug)]
pub enum Undo {
    /// Restoring this checkpoint undoes the restore.
    Taken(Checkpoint),
    /// [`RestoreOptions::checkpoint_first`] was off.
    NotRequested,
    /// The workspace was beyond what a checkpoint takes (the error is
    /// [`CheckpointError::TooDeep`] or [`CheckpointError::TooManyEntries`]), so the restore
    /// went ahead without one: it cannot be undone. The workspace is still exactly the
    /// restored checkpoint; what it held instead was looked at entry by entry and removed.
    Refused(CheckpointError),
}

impl Undo {
    /// The undo checkpoint, if one was taken.
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        match self {
            Undo::Taken(checkpoint) => Some(checkpoint),
            Undo::NotRequested | Undo::Refused(_) => None,
        }
    }

    pub fn into_checkpoint(self) -> Option<Checkpoint> {
        match self {
            Undo::Taken(checkpoint) => Some(checkpoint),
            Undo::NotRequested | Undo::Refused(_) => None,
        }
    }
}

/// Which checkpoints `prune` keeps: the newest one, pinned ones, and those both among the
/// newest `keep_last` and younger than `max_age` (a limit that is `None` keeps everything).
#[derive(Clone, Debug, Default)]
pub struct Retention {
    pub keep_last: Option<usize>,
    pub max_age: Option<TimeDelta>,
}

/// What garbage collection did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GcStats {
    pub objects_kept: u64,
    pub objects_removed: u64,
    pub bytes_removed: u64,
    /// Leftovers of interrupted operations in `tmp/`.
    pub temp_files_removed: u64,
}

#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    checkpoints: PathBuf,
    pins: PathBuf,
    tmp: PathBuf,
    objects: Objects,
    config: StoreConfig,
    excludes: Excludes,
}

/// Holds the store's lock until dropped (closing the file releases the `flock`).
struct Locked(#[allow(dead_code)] File);

impl Store {
    /// Opens the store at `root`, creating it if needed.
    pub fn open(root: impl Into<PathBuf>, config: StoreConfig) -> Result<Store> {
        let root = root.into();
        let excludes = Excludes::new(&config.excludes)?;
        let store = Store {
            checkpoints: root.join("checkpoints"),
            pins: root.join("pins"),
            tmp: root.join("tmp"),
            objects: Objects::new(root.join("objects"), root.join("tmp")),
            root,
            config,
            excludes,
        };
        for dir in [
            &store.root,
            &store.checkpoints,
            &store.pins,
            &store.tmp,
            &store.objects.dir().to_path_buf(),
        ] {
            fs::create_dir_all(dir).map_err(io("create directory", dir.as_path()))?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Waits for the store's lock: exclusive for anything that writes, shared for reads.
    /// `flock` is per open file, so it also keeps two `Store`s in one process apart.
    fn lock(&self, exclusive: bool) -> Result<Locked> {
        let path = self.root.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io("open", &path))?;
        let locked = if exclusive { file.lock() } else { file.lock_shared() };
        locked.map_err(io("lock", &path))?;
        Ok(Locked(file))
    }

    /// Takes a checkpoint of `workspace`. Reads only files whose metadata changed since the
    /// last one and stores only contents the store does not have.
    pub fn checkpoint(&self, workspace: &Path, options: &CheckpointOptions) -> Result<Checkpoint> {
        let _lock = self.lock(true)?;
        self.take(workspace, options.label.clone(), None)
    }

    /// The checkpoint steps, with the exclusive lock held.
    fn take(
        &self,
        workspace: &Path,
        label: Option<String>,
        before_restore_of: Option<CheckpointId>,
    ) -> Result<Checkpoint> {
        let (root, stats) = self.scan(workspace)?;
        let manifests = manifest::read_all(&self.checkpoints)?;
        let parent = manifests.last();
        let mut changes = ChangeCounts::default();
        diff::walk(&self.objects, parent.map(|p| &p.root), Some(&root), &mut |path, kind, _| {
            if self.config.counts(path) {
                changes.add(kind)
            }
        })?;
        let manifest = Manifest::new(
            parent.map_or(1, |p| p.seq + 1),
            parent.map(|p| p.id),
            label,
            before_restore_of,
            root,
            self.config.excludes.clone(),
            changes,
            stats,
        );
        manifest::write(&self.checkpoints, &self.tmp, &manifest)?;
        Ok(Checkpoint::from_manifest(manifest, false))
    }

    /// Scans `workspace` into objects and makes them durable; returns the root tree. Updates
    /// the stat cache. With the exclusive lock held.
    fn scan(&self, workspace: &Path) -> Result<(ObjectHash, ScanStats)> {
        let workspace = fs::canonicalize(workspace).map_err(|e| match e.kind() {
            ErrorKind::NotFound => CheckpointError::NotADirectory(workspace.to_path_buf()),
            _ => CheckpointError::io("resolve", workspace, e),
        })?;
        let store = fs::canonicalize(&self.root).map_err(io("resolve", &self.root))?;
        if store.starts_with(&workspace) {
            return Err(CheckpointError::StoreInWorkspace { store, workspace });
        }
        self.clean_tmp()?;
        let index_path = self.root.join("index");
        let old = Index::load(&index_path, &workspace);
        let scan_start = self.clock()?;
        let (root, stats, new) = Scanner::new(
            &workspace,
            &self.objects,
            &self.excludes,
            &old,
            scan_start,
            self.config.max_entries,
        )
        .run()?;
        // One sync for all new objects, before any manifest can name them.
        let store_dir = rustix::fs::open(
            &self.root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io("open", &self.root))?;
        rustix::fs::syncfs(&store_dir).map_err(io("sync", &self.root))?;
        new.save(&index_path, &self.tmp.join("index")).map_err(io("write", &index_path))?;
        Ok((root, stats))
    }

    /// The current time by the file system's clock (which may lag the system clock by a
    /// tick): the modification time of a file written now.
    fn clock(&self) -> Result<(i64, u64)> {
        let path = self.tmp.join("clock");
        fs::write(&path, b"\n").map_err(io("write", &path))?;
        let stat = rustix::fs::stat(&path).map_err(io("stat", &path))?;
        fs::remove_file(&path).map_err(io("remove", &path))?;
        Ok(crate::index::mtime(&stat))
    }

    /// Removes what interrupted operations left in `tmp/`; with the exclusive lock held.
    fn clean_tmp(&self) -> Result<u64> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.tmp).map_err(io("list", &self.tmp))? {
            let path = entry.map_err(io("list", &self.tmp))?.path();
            fs::remove_file(&path).map_err(io("remove", &path))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// All checkpoints, oldest first.
    pub fn list(&self) -> Result<Vec<Checkpoint>> {
        let _lock = self.lock(false)?;
        self.list_locked()
    }

    fn list_locked(&self) -> Result<Vec<Checkpoint>> {
        let pinned = self.pinned()?;
        Ok(manifest::read_all(&self.checkpoints)?
            .into_iter()
            .map(|m| {
                let is_pinned = pinned.contains(&m.id);
                Checkpoint::from_manifest(m, is_pinned)
            })
            .collect())
    }

    pub fn get(&self, id: &CheckpointId) -> Result<Checkpoint> {
        let _lock = self.lock(false)?;
        self.get_locked(id)
    }

    fn get_locked(&self, id: &CheckpointId) -> Result<Checkpoint> {
        let manifest = manifest::read(&self.checkpoints, id)?;
        Ok(Checkpoint::from_manifest(manifest, self.pin_path(id).exists()))
    }

    fn pin_path(&self, id: &CheckpointId) -> PathBuf {
        self.pins.join(id.to_string())
    }

    fn pinned(&self) -> Result<HashSet<CheckpointId>> {
        let mut out = HashSet::new();
        for entry in fs::read_dir(&self.pins).map_err(io("list", &self.pins))? {
            let entry = entry.map_err(io("list", &self.pins))?;
            if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                out.insert(id);
            }
        }
        Ok(out)
    }

    /// Makes `workspace` exactly the checkpoint `id`: later files are removed, changed ones
    /// rewritten, modes, symlinks and empty directories restored; excluded paths are left as
    /// they are. Only what differs is written. The workspace's processes should be stopped
    /// first: a file written during the restore may be lost.
    ///
    /// A workspace too deep or too large to checkpoint is restored all the same, at any depth
    /// (that is how a user gets rid of such a tree), without an undo checkpoint
    /// ([`Undo::Refused`] says why); then every entry is looked at instead of only those a
    /// scan found changed, and sockets, FIFOs and devices the checkpoint lacks go too.
    pub fn restore(
        &self,
        id: &CheckpointId,
        workspace: &Path,
        options: &RestoreOptions,
    ) -> Result<Restored> {
        let _lock = self.lock(true)?;
        let target = manifest::read(&self.checkpoints, id)?;
        let (present, undo) = if options.checkpoint_first {
            let label = options.label.clone().or_else(|| Some(format!("before restoring {id}")));
            match self.take(workspace, label, Some(*id)) {
                Ok(undo) => (Present::Known(Some(undo.root)), Undo::Taken(undo)),
                Err(err) if err.is_workspace_limit() => (Present::Unknown, Undo::Refused(err)),
                Err(err) => return Err(err),
            }
        } else {
            match self.scan(workspace) {
                Ok((root, _)) => (Present::Known(Some(root)), Undo::NotRequested),
                Err(err) if err.is_workspace_limit() => (Present::Unknown, Undo::NotRequested),
                Err(err) => return Err(err),
            }
        };
        let workspace = fs::canonicalize(workspace).map_err(io("resolve", workspace))?;
        let dir = open_dir(&workspace)?;
        // Without a scan of the present, the stat cache of the last one still tells which
        // files are unchanged since (by inode, size, times), which spares rewriting them.
        let index = matches!(present, Present::Unknown)
            .then(|| Index::load(&self.root.join("index"), &workspace));
        let mut restorer =
            Restorer::new(&self.objects, &workspace, options.owner, &self.excludes, index.as_ref());
        restorer.apply(dir, present, &target.root)?;
        Ok(Restored { undo, stats: restorer.stats })
    }

    /// Writes the checkpoint `id` into `target`, which must be an empty directory or not
    /// exist (its parent must): the workspace of a fork. With an `owner`, `target` itself
    /// and everything in it are given to that user.
    pub fn restore_into(
        &self,
        id: &CheckpointId,
        target: &Path,
        owner: Option<Owner>,
    ) -> Result<RestoreStats> {
        let _lock = self.lock(false)?;
        let manifest = manifest::read(&self.checkpoints, id)?;
        match fs::read_dir(target) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(CheckpointError::TargetNotEmpty(target.to_path_buf()));
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                fs::create_dir(target).map_err(io("create directory", target))?;
            }
            Err(e) if e.kind() == ErrorKind::NotADirectory => {
                return Err(CheckpointError::TargetNotEmpty(target.to_path_buf()));
            }
            Err(e) => return Err(CheckpointError::io("list", target, e)),
        }
        let dir = open_dir(target)?;
        let mut restorer = Restorer::new(&self.objects, target, owner, &self.excludes, None);
        restorer.chown(&dir, b"")?;
        restorer.apply(dir, Present::Known(None), &manifest.root)?;
        Ok(restorer.stats)
    }

    /// The paths that differ between checkpoint `from` (`None`: an empty workspace) and `to`.
    pub fn diff(&self, from: Option<&CheckpointId>, to: &CheckpointId) -> Result<Vec<Change>> {
        let _lock = self.lock(false)?;
        let old = from.map(|id| manifest::read(&self.checkpoints, id)).transpose()?;
        let new = manifest::read(&self.checkpoints, to)?;
        diff::changes(&self.objects, old.as_ref().map(|m| &m.root), &new.root)
    }

    /// Every path in checkpoint `id` with its type, in path order (directories before what
    /// they contain).
    pub fn paths(&self, id: &CheckpointId) -> Result<Vec<(PathBuf, EntryKind)>> {
        Ok(self.diff(None, id)?.into_iter().map(|c| (c.path, c.entry)).collect())
    }

    /// Protects a checkpoint from `prune` and `delete`.
    pub fn pin(&self, id: &CheckpointId) -> Result<()> {
        let _lock = self.lock(true)?;
        manifest::read(&self.checkpoints, id)?;
        let path = self.pin_path(id);
        File::create(&path).map_err(io("create", &path))?;
        manifest::sync_dir(&self.pins)
    }

    pub fn unpin(&self, id: &CheckpointId) -> Result<()> {
        let _lock = self.lock(true)?;
        manifest::read(&self.checkpoints, id)?;
        let path = self.pin_path(id);
        match fs::remove_file(&path) {
            Ok(()) => manifest::sync_dir(&self.pins),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CheckpointError::io("remove", &path, e)),
        }
    }

    /// Deletes a checkpoint (not its data: `gc` frees what nothing references any more).
    pub fn delete(&self, id: &CheckpointId) -> Result<()> {
        let _lock = self.lock(true)?;
        if self.get_locked(id)?.pinned {
            return Err(CheckpointError::Pinned(*id));
        }
        self.delete_locked(id)
    }

    fn delete_locked(&self, id: &CheckpointId) -> Result<()> {
        let path = self.checkpoints.join(manifest::file_name(id));
        fs::remove_file(&path).map_err(io("remove", &path))?;
        manifest::sync_dir(&self.checkpoints)
    }

    /// Deletes the checkpoints `retention` does not keep, as of `now`; returns them.
    pub fn prune(&self, retention: &Retention, now: DateTime<Utc>) -> Result<Vec<Checkpoint>> {
        let _lock = self.lock(true)?;
        let all = self.list_locked()?;
        let mut dropped = Vec::new();
        for (age_rank, checkpoint) in all.iter().rev().enumerate() {
            let within_count = retention.keep_last.is_none_or(|n| age_rank < n);
            let within_age = retention.max_age.is_none_or(|age| now - checkpoint.created_at <= age);
            let keep = age_rank == 0 || checkpoint.pinned || (within_count && within_age);
            if !keep {
                self.delete_locked(&checkpoint.id)?;
                dropped.push(checkpoint.clone());
            }
        }
        dropped.reverse();
        Ok(dropped)
    }

    /// Removes every object no checkpoint references (nor the stat cache, whose hashes the
    /// next checkpoint reuses without reading the files), and leftovers in `tmp/`.
    pub fn gc(&self) -> Result<GcStats> {
        let _lock = self.lock(true)?;
        let mut stats = GcStats { temp_files_removed: self.clean_tmp()?, ..GcStats::default() };
        let mut live: HashSet<ObjectHash> = HashSet::new();
        let roots = manifest::read_all(&self.checkpoints)?.iter().map(|m| m.root).collect();
        self.mark(roots, &mut live)?;
        live.extend(Index::load_any(&self.root.join("index")).hashes().copied());
        for (hash, path, len) in self.objects.list()? {
            if hash.is_some_and(|h| live.contains(&h)) {
                stats.objects_kept += 1;
            } else {
                fs::remove_file(&path).map_err(io("remove", &path))?;
                stats.objects_removed += 1;
                stats.bytes_removed += len;
            }
        }
        Ok(stats)
    }

    /// Adds to `live` every object the trees `roots` reference. A worklist, not a recursion:
    /// each tree is decoded once however many checkpoints share it, and no depth limit
    /// applies, so that a checkpoint taken before there was one is still kept whole. Trees
    /// seen are tracked apart from `live`, where a file with the same bytes as a tree would
    /// otherwise stop the tree's contents from being marked.
    fn mark(&self, roots: Vec<ObjectHash>, live: &mut HashSet<ObjectHash>) -> Result<()> {
        let mut seen: HashSet<ObjectHash> = HashSet::new();
        let mut trees = roots;
        while let Some(tree_hash) = trees.pop() {
            if !seen.insert(tree_hash) {
                continue;
            }
            live.insert(tree_hash);
            for entry in tree::decode(&tree_hash, &self.objects.read(&tree_hash)?)? {
                match entry.kind {
                    EntryKind::Directory => {
                        if !seen.contains(&entry.hash) {
                            trees.push(entry.hash);
                        }
                    }
                    EntryKind::File | EntryKind::Symlink => {
                        live.insert(entry.hash);
                    }
                }
            }
        }
        Ok(())
    }
}

fn open_dir(path: &Path) -> Result<std::os::fd::OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    rustix::fs::open(path, flags, Mode::empty()).map_err(io("open", path))
}
