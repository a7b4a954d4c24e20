//! The one error type of this crate.

use std::path::PathBuf;

use crate::CheckpointId;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file system operation failed; `path` is the file it failed on.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint {0} does not exist")]
    NotFound(CheckpointId),
    #[error("checkpoint {0} is pinned; unpin it before deleting it")]
    Pinned(CheckpointId),
    #[error("invalid exclude pattern {pattern:?}: {reason}")]
    InvalidExclude { pattern: String, reason: String },
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    /// The store would snapshot itself, growing with every checkpoint.
    #[error("the checkpoint store {store} is inside the workspace {workspace}")]
    StoreInWorkspace { store: PathBuf, workspace: PathBuf },
    #[error("{0} exists and is not an empty directory")]
    TargetNotEmpty(PathBuf),
    /// Something in the store is not what this crate wrote: a manifest that does not parse,
    /// a tree object that is missing or malformed.
    #[error("the checkpoint store is damaged: {0}")]
    Corrupt(String),
}

pub type Result<T, E = CheckpointError> = std::result::Result<T, E>;

/// Attaches the operation and path to an I/O error, for `map_err`.
pub(crate) fn io<E: Into<std::io::Error>>(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(E) -> CheckpointError {
    let path = path.into();
    move |source| CheckpointError::Io { op, path, source: source.into() }
}

impl CheckpointError {
    /// An I/O error on `path`; for hot paths, where building the path eagerly would cost.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
        source: impl Into<std::io::Error>,
    ) -> Self {
        CheckpointError::Io { op, path: path.into(), source: source.into() }
    }
}
