//! Checkpoints of a workspace directory: take one in time proportional to what changed,
//! list them, restore one exactly (or into a new directory, for a fork), prune and collect
//! garbage. Storage is content-addressed and deduplicated, so many checkpoints of a mostly
//! unchanged workspace cost about one copy of it.
//!
//! A checkpoint holds regular files (content and permission bits, but not set-user-ID or
//! set-group-ID, which a restore by root would make dangerous), directories (empty ones too,
//! with their modes), and symlinks as links (their targets are stored, never followed);
//! sockets, FIFOs and devices are skipped. Owners, times, hard links between files and extended attributes are
//! not kept: restored files belong to the user running the restore, or to the [`Owner`] it is
//! given (a sandbox's user), and get the current time (like `git checkout`, so build tools
//! see them as changed). The workspace directory's own mode and owner are left alone. Paths matching the store's
//! exclude globs are neither stored nor touched by a restore.
//!
//! Crash safety: objects are written before the manifest that names them, made durable with
//! one `syncfs`, and the manifest is written through a synced temporary file and a rename.
//! An interrupted checkpoint leaves only unreferenced objects and temporary files, which the
//! next writer or [`Store::gc`] removes; every earlier checkpoint stays restorable. A lock
//! file (`flock`) keeps writers of one store, in any process, one at a time.
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
