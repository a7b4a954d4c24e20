//! The one error type of this crate.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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
    /// The workspace has directories nested more than `limit` levels below it; `path`
    /// (relative to the workspace) is the first directory past the limit. Nothing was stored.
    #[error(
        "the workspace has directories nested more than {limit} levels deep (at {}); \
         delete them to get checkpoints back",
        abbreviate(path)
    )]
    TooDeep { path: PathBuf, limit: usize },
    /// The workspace holds more than `limit` entries (files, directories, links and the
    /// sockets, FIFOs and devices that are skipped). Nothing was stored.
    #[error(
        "the workspace holds more than {limit} files and directories; \
         delete some to get checkpoints back"
    )]
    TooManyEntries { limit: usize },
    /// A checkpoint holds directories nested deeper than a restore writes (`limit` levels,
    /// [`crate::MAX_DEPTH`]): only a store written before there was a limit can hold one.
    #[error(
        "the checkpoint has directories nested more than {limit} levels deep (at {}), \
         deeper than a restore writes",
        abbreviate(path)
    )]
    CheckpointTooDeep { path: PathBuf, limit: usize },
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
    /// True for the errors that say the workspace is beyond what a checkpoint holds
    /// ([`CheckpointError::TooDeep`], [`CheckpointError::TooManyEntries`]).
    pub fn is_workspace_limit(&self) -> bool {
        matches!(self, CheckpointError::TooDeep { .. } | CheckpointError::TooManyEntries { .. })
    }

    /// An I/O error on `path`; for hot paths, where building the path eagerly would cost.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
        source: impl Into<std::io::Error>,
    ) -> Self {
        CheckpointError::Io { op, path: path.into(), source: source.into() }
    }
}

/// A path short enough for a message: its first components, then `…`. A path past the depth
/// limit can be hundreds of kilobytes long, and its start is where a user looks.
pub(crate) fn abbreviate(path: &Path) -> String {
    const KEEP: usize = 40;
    let text = String::from_utf8_lossy(path.as_os_str().as_bytes());
    if text.chars().count() <= KEEP + 8 {
        return text.into_owned();
    }
    let mut head: String = text.chars().take(KEEP).collect();
    if let Some(slash) = head.rfind('/') {
        head.truncate(slash + 1);
    }
    head.push('…');
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_cut_after_a_component() {
        assert_eq!(abbreviate(Path::new("src/main.rs")), "src/main.rs");
        let deep = vec!["d"; 2000].join("/");
        let short = abbreviate(Path::new(&deep));
        assert!(short.starts_with("d/d/d/") && short.ends_with("/…"), "{short}");
        assert!(short.chars().count() <= 41, "{short}");
        let message = CheckpointError::TooDeep { path: deep.into(), limit: 1024 }.to_string();
        assert!(message.contains("more than 1024 levels deep (at d/d/d/"), "{message}");
        assert!(message.len() < 200, "{message}");
        let name = "x".repeat(255);
        assert_eq!(abbreviate(Path::new(&name)).chars().count(), 41);
    }
}
