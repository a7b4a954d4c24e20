//! Checkpoints of a workspace directory: take one in time proportional to what changed,
//! list them, restore one exactly (or into a new directory, for a fork), prune and collect
//! garbage. Storage is content-addressed and deduplicated, so many checkpoints of a mostly
//! unchanged workspace cost about one copy of it.
//!
//! A checkpoint holds regular files (content and permission bits, but not set-user-ID or
//! set-group-ID, which a restore by root would make dangerous), directories (empty ones too,
//! with their modes), and symlinks as links (their targets are stored, never followed);
//! sockets, FIFOs and devices are skipped. Owners, times, hard links between files and
//! extended attributes are not kept: restored files belong to the user running the restore,
//! or to the [`Owner`] it is given (a sandbox's user), and get the current time (like `git
//! checkout`, so build tools see them as changed). The workspace directory's own mode and
//! owner are left alone. Paths matching the store's exclude globs are neither stored nor
//! touched by a restore. The holes of a sparse file are neither read nor stored, and a
//! restore leaves them holes.
//!
//! Nothing a workspace holds can take the server down with it. Every walk (the scan, a
//! restore, a diff, garbage collection) is a loop over an explicit stack, never a recursion,
//! so no tree can exhaust a thread's stack. A checkpoint takes at most [`MAX_DEPTH`]
//! directory levels and [`StoreConfig::max_entries`] entries ([`MAX_ENTRIES`] by default);
//! past either it fails with [`CheckpointError::TooDeep`] or
//! [`CheckpointError::TooManyEntries`] and no checkpoint is made. A scan or restore holds at
//! most one directory descriptor per level (and a few more); diffs and garbage collection
//! walk stored trees, which the scan bounded, and hold none. Every open in a workspace is
//! `O_NOFOLLOW` and `O_NONBLOCK`, sockets, FIFOs and devices are never opened, and a file is
//! read no further than its size when the read began, so no entry can make a checkpoint
//! wait. A restore over a workspace past the limits still makes it exactly the checkpoint,
//! removing what the checkpoint lacks at any depth (a directory is emptied by moving its
//! subdirectories up into it, with two descriptors), but it cannot be undone:
//! [`Restored::undo`] is [`Undo::Refused`] with the reason.
//!
//! Crash safety: objects are written before the manifest that names them, made durable with
//! one `syncfs`, and the manifest is written through a synced temporary file and a rename.
//! An interrupted checkpoint leaves only unreferenced objects and temporary files, which the
//! next writer or [`Store::gc`] removes; every earlier checkpoint stays restorable. A lock
//! file (`flock`) keeps writers of one store, in any process, one at a time.
//!
//! Shared stores: several machines may use one store on a network file system (workers
//! sharing `--checkpoint-store`) when its locks work across machines. On Linux, `flock` on
//! NFS is emulated with whole-file fcntl (POSIX) locks, which the server holds (NFSv4, or
//! NFSv3 with `lockd`; a mount with `nolock` or `local_lock=flock` keeps them on one
//! machine and is not safe). The layout needs nothing else: names are content hashes and
//! every write ends in a rename.
//!
//! All calls block on file I/O; async callers run them with `spawn_blocking`. This crate knows
//! nothing of chats, messages or sandboxes: callers map checkpoint ids to what they mean.

mod diff;
mod error;
mod exclude;
mod fd;
mod hash;
mod index;
mod manifest;
mod objects;
mod restore;
mod scan;
mod store;
mod tree;

pub use diff::{Change, ChangeCounts, ChangeKind};
pub use error::{CheckpointError, Result};
pub use hash::{ObjectHash, ParseHashError};
pub use manifest::CheckpointId;
pub use restore::{Owner, RestoreStats};
pub use scan::ScanStats;
pub use store::{
    Checkpoint, CheckpointOptions, GcStats, RestoreOptions, Restored, Retention, Store,
    StoreConfig, Undo,
};

/// The most directory levels below the workspace that a checkpoint takes and a restore
/// writes: a deeper workspace fails with [`CheckpointError::TooDeep`]. A walk holds one
/// descriptor per level, so this also bounds the descriptors a checkpoint holds open.
pub const MAX_DEPTH: usize = 1024;

/// The most entries (files, directories, symlinks, and the sockets, FIFOs and devices that
/// are skipped) that a checkpoint takes by default ([`StoreConfig::max_entries`]): a larger
/// workspace fails with [`CheckpointError::TooManyEntries`].
pub const MAX_ENTRIES: usize = 1_000_000;
pub use tree::EntryKind;
