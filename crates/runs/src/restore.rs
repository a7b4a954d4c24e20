//! Checkpoints as the runner uses them: listing, restoring a chat to one, forking from one.

use std::collections::HashMap;

use agentbox_checkpoints::Checkpoint;
use agentbox_store::{ChatRecord, CheckpointKind, CheckpointRecord, NewChat, NodeRole, Rewind};
use uuid::Uuid;

use crate::checkpoints::CheckpointFailure;
use crate::runner::TurnRunner;

/// What a restore did: the checkpoint that undoes it, or why none could be taken, and the
/// messages it hid and showed.
#[derive(Debug)]
pub struct Restoration {
    pub undo_id: Option<Uuid>,
    pub undo_refused: Option<String>,
    pub rewind: Rewind,
}

impl TurnRunner {
    /// The chat's checkpoints, newest first, with what the store knows of each (absent for
    /// one the store no longer has).
    pub async fn checkpoints(
        &self,
        chat_id: Uuid,
    ) -> Result<Vec<(CheckpointRecord, Option<Checkpoint>)>, CheckpointFailure> {
        let checkpoints = self.checkpoints.as_ref().ok_or(CheckpointFailure::Disabled)?;
        let records = self.store.checkpoints(chat_id).await?;
        let mut stored: HashMap<Uuid, Checkpoint> =
            checkpoints.list(chat_id).await?.into_iter().map(|c| (c.id.as_uuid(), c)).collect();
        Ok(records
            .into_iter()
            .map(|record| {
                let details = stored.remove(&record.id);
                (record, details)
            })
            .collect())
    }

    /// Make the chat's workspace, conversation and CLI session what they were at checkpoint
    /// `id`. The chat's processes are stopped first (the next use starts them again), and
    /// a checkpoint of the present is taken, whose id comes back: restoring it undoes this.
    /// A present that cannot be checkpointed (too deep, too many entries) is restored over
    /// all the same; then the reason why there is no undo comes back instead.
    pub async fn restore(
        &self,
        chat: &ChatRecord,
        id: Uuid,
    ) -> Result<Restoration, CheckpointFailure> {
        let checkpoints = self.checkpoints.as_ref().ok_or(CheckpointFailure::Disabled)?;
        let gate = self.gates.gate(chat.id);
        let _gate = gate.lock().await;
        if self.is_running(chat.id) || self.store.running_turn(chat.id).await?.is_some() {
            return Err(CheckpointFailure::Busy);
        }
        let target =
            self.store.checkpoint(chat.id, id).await?.ok_or(CheckpointFailure::NotFound)?;
        if self.config.node.role == NodeRole::Api {
            return self.restore_for_workers(chat, &target).await;
        }
        // Nothing may write into the workspace while it is rewritten, and the CLI must not
        // keep the conversation in memory: its next turn reads the restored transcript.
        self.idle.remove(chat.id);
        self.sandboxes
            .stop(&chat.id.to_string())
            .await
            .map_err(|e| CheckpointFailure::Failed(e.to_string()))?;
        let workspace = self
            .sandboxes
            .workspace(&chat.id.to_string())
            .await
            .map_err(|e| CheckpointFailure::Failed(e.to_string()))?;
        let current =
            self.store.chat_unscoped(chat.id).await?.ok_or(CheckpointFailure::NotFound)?;
        let last_visible = self.store.messages(chat.id).await?.last().map(|m| m.id);
        let undo = checkpoints.restore(chat.id, id, workspace.root(), workspace.owner()).await?;
        let (undo_id, undo_refused) = match undo {
            Ok(undo) => {
                let record = self
                    .store
                    .record_checkpoint(
                        chat.id,
                        undo.id.as_uuid(),
                        CheckpointKind::BeforeRestore,
                        last_visible,
                        current.session_id.as_deref(),
                    )
                    .await?;
                (Some(record.id), None)
            }
            Err(reason) => (None, reason),
        };
        let rewind = self.store.rewind(chat.id, &target).await?;
        self.bus.publish(chat.id, rewind.event.clone());
        tracing::info!(chat_id = %chat.id, checkpoint = %id, hidden = rewind.hidden.len(), shown = rewind.shown.len(), "restored a checkpoint");
        Ok(Restoration { undo_id, undo_refused, rewind })
    }

    /// A restore on an API node, which holds no sandbox: the chat's files are on a worker
    /// (or on none yet). The conversation and the CLI session are rewound here; the chat is
    /// unbound, so that the worker running its next turn makes its copy of the workspace
    /// exactly the chat's newest checkpoint, which after the rewind is `target` (see
    /// `rebind.rs`). The undo is the checkpoint that held the workspace before, the newest
    /// of a visible turn: every turn ends with one, so no new checkpoint is taken.
    async fn restore_for_workers(
        &self,
        chat: &ChatRecord,
        target: &CheckpointRecord,
    ) -> Result<Restoration, CheckpointFailure> {
        let visible = self.store.messages(chat.id).await?;
        let undo =
            crate::rebind::newest_checkpoint(self.store.checkpoints(chat.id).await?, &visible);
        self.store.unbind_chat(chat.id).await?;
        let rewind = self.store.rewind(chat.id, target).await?;
        self.bus.publish(chat.id, rewind.event.clone());
        tracing::info!(chat_id = %chat.id, checkpoint = %target.id, "restored a checkpoint for the chat's next worker");
        let undo_refused =
            undo.is_none().then(|| "no checkpoint holds the workspace as it was".to_owned());
        Ok(Restoration { undo_id: undo.map(|c| c.id), undo_refused, rewind })
    }

    /// A new chat of the same user holding the workspace and the conversation as they were
    /// after `message_id`. Parent and fork are independent from then on.
    pub async fn fork(
        &self,
        chat: &ChatRecord,
        message_id: Uuid,
        title: String,
    ) -> Result<ChatRecord, CheckpointFailure> {
        let checkpoints = self.checkpoints.as_ref().ok_or(CheckpointFailure::Disabled)?;
        let gate = self.gates.gate(chat.id);
        let _gate = gate.lock().await;
        let source = self
            .store
            .checkpoints(chat.id)
            .await?
            .into_iter()
            .find(|c| c.kind == CheckpointKind::Turn && c.message_id == Some(message_id))
            .ok_or(CheckpointFailure::NoCheckpoint)?;
        let fork = self
            .store
            .create_chat(NewChat {
                user_id: chat.user_id,
                title,
                model: chat.model.clone(),
                permission_mode: chat.permission_mode,
                sandbox_provider: self.sandboxes.name().to_owned(),
                custom_instructions: chat.custom_instructions.clone(),
                max_thinking_tokens: chat.max_thinking_tokens,
            })
            .await?;
        let made = async {
            self.store
                .copy_conversation(chat, fork.id, message_id, source.session_id.as_deref())
                .await?;
            // The fork's workspace holds the clone: its git routes need the repository too.
            if let Some(repository) = self.store.chat_repository(chat.id).await? {
                let record = agentbox_store::ChatRepositoryRecord {
                    chat_id: fork.id,
                    created_at: chrono::Utc::now(),
                    ..repository
                };
                self.store.set_chat_repository(&record).await?;
            }
            let workspace = self
                .sandboxes
                .workspace(&fork.id.to_string())
                .await
                .map_err(|e| CheckpointFailure::Failed(e.to_string()))?;
            let first = checkpoints
                .fork(chat.id, source.id, fork.id, workspace.root(), workspace.owner())
                .await?;
            self.store
                .record_checkpoint(
                    fork.id,
                    first.id.as_uuid(),
                    CheckpointKind::Fork,
                    None,
                    source.session_id.as_deref(),
                )
                .await?;
            Ok::<_, CheckpointFailure>(())
        }
        .await;
        if let Err(err) = made {
            // No half-made fork is left behind.
            let _ = self.store.delete_chat(chat.user_id, fork.id).await;
            let _ = self.sandboxes.delete(&fork.id.to_string()).await;
            checkpoints.remove(fork.id).await;
            return Err(err);
        }
        tracing::info!(from = %chat.id, fork = %fork.id, %message_id, "forked a chat");
        Ok(self.store.chat_unscoped(fork.id).await?.unwrap_or(fork))
    }
}
