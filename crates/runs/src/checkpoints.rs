//! Checkpoints of chats: one after every turn, restores that rewind the workspace and the
//! conversation together, and forks into a new chat.
//!
//! The files are kept by the checkpoint store (`crates/checkpoints`, one store per chat under
//! the configured root, outside every sandbox); the database says which turn each
//! checkpoint belongs to and which messages were visible then. A restore first stops the
//! chat's processes (the idle CLI process and the sandbox), takes a checkpoint of the
//! present so that the restore can be undone, rewrites the workspace, and rewinds the
//! conversation and the CLI session: the CLI's transcript lives in the workspace
//! (`~/.claude/projects/...`), so it is rewound with the files, and the chat resumes the
//! session it had at that turn.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentbox_checkpoints::{
    Checkpoint, CheckpointError, CheckpointId, CheckpointOptions, Owner, RestoreOptions, Retention,
    Store as CheckpointStore, StoreConfig, Undo,
};
use uuid::Uuid;

/// How checkpoints are taken and kept.
#[derive(Clone, Debug, Default)]
pub struct CheckpointSettings {
    /// Where the chats' checkpoint stores live; `None` turns checkpoints off.
    pub root: Option<PathBuf>,
    /// Globs of workspace paths never stored nor touched by a restore (caches).
    pub excludes: Vec<String>,
    /// Keep at most this many checkpoints per chat (the newest).
    pub keep_last: Option<usize>,
    /// Drop checkpoints older than this (the newest one always stays).
    pub max_age: Option<Duration>,
}

/// Why a checkpoint operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointFailure {
    #[error("checkpoints are turned off on this server")]
    Disabled,
    #[error("a turn is running in this chat")]
    Busy,
    #[error("the chat has no such checkpoint")]
    NotFound,
    #[error("that message has no checkpoint to start from")]
    NoCheckpoint,
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] agentbox_store::StoreError),
}

impl From<CheckpointError> for CheckpointFailure {
    fn from(err: CheckpointError) -> Self {
        match err {
            CheckpointError::NotFound(_) => Self::NotFound,
            other => Self::Failed(other.to_string()),
        }
    }
}

/// The checkpoint stores of all chats.
#[derive(Clone, Debug)]
pub(crate) struct Checkpoints {
    root: PathBuf,
    settings: CheckpointSettings,
}

impl Checkpoints {
    pub fn new(settings: &CheckpointSettings) -> Option<Self> {
        settings.root.clone().map(|root| Self { root, settings: settings.clone() })
    }

    fn open(&self, chat_id: Uuid) -> Result<CheckpointStore, CheckpointError> {
        CheckpointStore::open(
            self.root.join(chat_id.to_string()),
            StoreConfig {
                excludes: self.settings.excludes.clone(),
                // The CLI's own state in its home (the workspace) changes with every turn;
                // a checkpoint's numbers say what the agent changed in the user's files.
                uncounted: vec![".claude".to_owned(), ".claude.json".to_owned()],
                ..StoreConfig::default()
            },
        )
    }

    async fn blocking<T: Send + 'static>(
        &self,
        chat_id: Uuid,
        work: impl FnOnce(CheckpointStore) -> Result<T, CheckpointError> + Send + 'static,
    ) -> Result<T, CheckpointFailure> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || work(this.open(chat_id)?))
            .await
            .map_err(|err| CheckpointFailure::Failed(err.to_string()))?
            .map_err(CheckpointFailure::from)
    }

    /// Snapshot the chat's workspace.
    pub async fn take(
        &self,
        chat_id: Uuid,
        workspace: &Path,
        label: String,
    ) -> Result<Checkpoint, CheckpointFailure> {
        let workspace = workspace.to_owned();
        self.blocking(chat_id, move |store| {
            store.checkpoint(&workspace, &CheckpointOptions { label: Some(label) })
        })
        .await
    }

    /// Apply the retention policy and collect the garbage; returns what was dropped.
    pub async fn prune(&self, chat_id: Uuid) -> Result<Vec<Uuid>, CheckpointFailure> {
        let retention = Retention {
            keep_last: self.settings.keep_last,
            max_age: self.settings.max_age.and_then(|age| chrono::TimeDelta::from_std(age).ok()),
        };
        if retention.keep_last.is_none() && retention.max_age.is_none() {
            return Ok(Vec::new());
        }
        self.blocking(chat_id, move |store| {
            let dropped = store.prune(&retention, chrono::Utc::now())?;
            if !dropped.is_empty() {
                store.gc()?;
            }
            Ok(dropped.into_iter().map(|c| c.id.as_uuid()).collect())
        })
        .await
    }

    pub async fn list(&self, chat_id: Uuid) -> Result<Vec<Checkpoint>, CheckpointFailure> {
        self.blocking(chat_id, |store| store.list()).await
    }

    /// Make the workspace exactly checkpoint `id`, after taking one of the present;
    /// returns that one (the undo). A workspace too deep or too large to checkpoint is
    /// restored all the same, without an undo checkpoint: then the reason comes back instead.
    pub async fn restore(
        &self,
        chat_id: Uuid,
        id: Uuid,
        workspace: &Path,
        owner: Option<(u32, u32)>,
    ) -> Result<Result<Checkpoint, Option<String>>, CheckpointFailure> {
        let workspace = workspace.to_owned();
        self.blocking(chat_id, move |store| {
            let options = RestoreOptions {
                checkpoint_first: true,
                label: Some(format!("before restoring {id}")),
                owner: owner.map(|(uid, gid)| Owner { uid, gid }),
            };
            let restored = store.restore(&CheckpointId::from(id), &workspace, &options)?;
            match restored.undo {
                Undo::Taken(undo) => Ok(Ok(undo)),
                Undo::Refused(reason) => {
                    tracing::warn!(%chat_id, %reason, "restored without an undo checkpoint");
                    Ok(Err(Some(reason.to_string())))
                }
                Undo::NotRequested => Ok(Err(None)),
            }
        })
        .await
    }

    /// Make the workspace exactly checkpoint `id`, with no undo: for a chat whose
    /// workspace was on a worker that is gone, where the copy here is stale or empty.
    pub async fn bring(
        &self,
        chat_id: Uuid,
        id: Uuid,
        workspace: &Path,
        owner: Option<(u32, u32)>,
    ) -> Result<(), CheckpointFailure> {
        let workspace = workspace.to_owned();
        self.blocking(chat_id, move |store| {
            let options = RestoreOptions {
                checkpoint_first: false,
                label: None,
                owner: owner.map(|(uid, gid)| Owner { uid, gid }),
            };
            store.restore(&CheckpointId::from(id), &workspace, &options).map(drop)
        })
        .await
    }

    /// Write checkpoint `id` of `from` into the empty workspace of the new chat `to`, and take
    /// the new chat's first checkpoint of it.
    pub async fn fork(
        &self,
        from: Uuid,
        id: Uuid,
        to: Uuid,
        workspace: &Path,
        owner: Option<(u32, u32)>,
    ) -> Result<Checkpoint, CheckpointFailure> {
        let target = workspace.to_owned();
        self.blocking(from, move |store| {
            store.restore_into(
                &CheckpointId::from(id),
                &target,
                owner.map(|(uid, gid)| Owner { uid, gid }),
            )
        })
        .await?;
        self.take(to, workspace, format!("forked from {from} at {id}")).await
    }

    /// Remove a deleted chat's checkpoints.
    pub async fn remove(&self, chat_id: Uuid) {
        let dir = self.root.join(chat_id.to_string());
        if let Err(err) = tokio::fs::remove_dir_all(&dir).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%chat_id, %err, "could not remove the chat's checkpoints");
        }
    }
}
