//! Where a chat's sandbox lives on a cluster: a worker binds the chat to itself when it
//! starts the chat's turn, and a chat that comes from a worker that is gone gets its
//! workspace back from its newest checkpoint before the turn runs.
//!
//! A `local` sandbox is on one worker's disk, so the durable queue gives a bound chat's
//! turns to its worker alone while that worker beats (see `claim_turn_job`). Only once its
//! heartbeat has expired (and the sweeper has interrupted its turns with `node_lost`) may
//! another worker claim the chat's next turn; that worker then lands here with a binding
//! that names another node. A chat never bound that already has a checkpoint (a fork,
//! which an API node makes in the shared checkpoint store) gets its workspace the same way
//! on its first worker.

use agentbox_protocol::api::{Message, Role};
use agentbox_protocol::event::EventPayload;
use agentbox_store::{CheckpointKind, CheckpointRecord};
use uuid::Uuid;

use crate::notices::{Failure, notice};
use crate::runner::TurnRunner;
use crate::sink::LogSink;

/// The longest piece of a turn's prompt a notice quotes.
const PROMPT_QUOTE_CHARS: usize = 60;

impl TurnRunner {
    /// Bind the chat to this worker before its turn runs, and make sure its workspace here
    /// is the chat's: when it was bound to another worker (which is gone, or the queue
    /// would not have given the turn here), or when it was never bound but already has a
    /// checkpoint (a fork, made on an API node), this worker's copy becomes exactly the
    /// chat's newest checkpoint, and the turn says so.
    pub(crate) async fn bind_here(&self, chat_id: Uuid, sink: &LogSink) -> Result<(), Failure> {
        let me = self.config.node.id.as_str();
        let before = self.store.bind_chat(chat_id, me).await.map_err(storage)?;
        if before.as_deref() == Some(me) {
            return Ok(());
        }
        if let Some(text) = self.bring_workspace(chat_id, before.as_deref()).await? {
            sink.record(notice("moved_worker", &text))
                .await
                .map_err(|err| Failure::from_agent(err.into()))?;
        }
        Ok(())
    }

    /// Make this worker's copy of the chat's workspace what the chat's newest checkpoint
    /// holds; the notice that tells the user what happened, `None` for a chat that has
    /// never run anywhere and has no checkpoint (a new chat: nothing to bring).
    async fn bring_workspace(
        &self,
        chat_id: Uuid,
        previous: Option<&str>,
    ) -> Result<Option<String>, Failure> {
        let id = chat_id.to_string();
        let me = self.config.node.id.as_str();
        let messages = self.store.messages(chat_id).await.map_err(storage)?;
        let newest = match &self.checkpoints {
            Some(_) => newest_checkpoint(
                self.store.checkpoints(chat_id).await.map_err(storage)?,
                &messages,
            ),
            None => None,
        };
        let Some(previous) = previous else {
            let Some(newest) = newest else { return Ok(None) };
            tracing::info!(%chat_id, checkpoint = %newest.id, "setting up a chat's workspace from its checkpoint");
            let session = self.restore_here(chat_id, &newest).await?;
            return Ok(Some(format!(
                "This chat's workspace was set up on worker {me} from the checkpoint of {}.                  {session}",
                describe(&newest, &messages)
            )));
        };
        tracing::info!(%chat_id, from = %previous, to = %me, "moving a chat to this worker");
        let moved = format!(
            "This chat moved to another worker: the one that held its sandbox ({previous})              stopped responding."
        );
        let Some(newest) = newest else {
            // Nothing to restore from: an empty workspace, and a CLI session that cannot be
            // resumed because its transcript was in the lost workspace.
            self.idle.remove(chat_id);
            self.sandboxes.delete(&id).await.map_err(|err| Failure::from_sandbox(&err, None))?;
            self.store.clear_session_id(chat_id).await.map_err(storage)?;
            let why = if self.checkpoints.is_some() {
                "It has no checkpoint"
            } else {
                "Checkpoints are off on this server"
            };
            return Ok(Some(format!(
                "{moved} {why}, so it starts with an empty workspace and a new CLI session:                  the model does not see the earlier turns."
            )));
        };
        let session = self.restore_here(chat_id, &newest).await.map_err(|err| Failure {
            code: err.code,
            message: format!("{moved} {}", err.message),
        })?;
        tracing::info!(%chat_id, checkpoint = %newest.id, "restored a moved chat's workspace");
        Ok(Some(format!(
            "{moved} Files restored from the checkpoint of {}. {session}",
            describe(&newest, &messages)
        )))
    }

    /// Make this worker's copy of the workspace exactly `checkpoint`; the sentence that
    /// says what becomes of the CLI session.
    async fn restore_here(
        &self,
        chat_id: Uuid,
        checkpoint: &CheckpointRecord,
    ) -> Result<&'static str, Failure> {
        let Some(checkpoints) = &self.checkpoints else {
            return Err(Failure {
                code: "checkpoint_restore_failed",
                message: "Checkpoints are off on this server.".into(),
            });
        };
        let id = chat_id.to_string();
        // A copy this worker kept from an earlier binding is stale: nothing of it may run
        // on, nor may an idle CLI process that remembers the conversation as it was then.
        self.idle.remove(chat_id);
        self.sandboxes.stop(&id).await.map_err(|err| Failure::from_sandbox(&err, None))?;
        let workspace =
            self.sandboxes.workspace(&id).await.map_err(|err| Failure::from_sandbox(&err, None))?;
        checkpoints
            .bring(chat_id, checkpoint.id, workspace.root(), workspace.owner())
            .await
            .map_err(|err| Failure {
                code: "checkpoint_restore_failed",
                message: format!(
                    "Its files could not be restored from checkpoint {}: {err}",
                    checkpoint.id
                ),
            })?;
        Ok(match &checkpoint.session_id {
            // The CLI's transcript is in the workspace, so it came back with the files; if
            // the CLI cannot find it after all, the turn says so (`session_reset`).
            Some(_) => "The CLI session resumes as it was at that checkpoint.",
            None => {
                self.store.clear_session_id(chat_id).await.map_err(storage)?;
                "That checkpoint has no CLI session, so a new one starts: the model does not                  see the earlier turns."
            }
        })
    }
}

/// The checkpoint that holds the workspace as the chat's visible conversation left it: the
/// newest one of a visible turn, or the one a fork started from. `before_restore`
/// checkpoints hold what a restore replaced, never the present.
pub(crate) fn newest_checkpoint(
    newest_first: Vec<CheckpointRecord>,
    visible: &[Message],
) -> Option<CheckpointRecord> {
    newest_first.into_iter().find(|checkpoint| match (checkpoint.kind, checkpoint.message_id) {
        (CheckpointKind::Turn, Some(message)) => visible.iter().any(|m| m.id == message),
        (CheckpointKind::Fork, _) => true,
        _ => false,
    })
}

/// The turn a checkpoint belongs to, as a person recognises it: its prompt, which is the
/// text of the user message just before the turn's (assistant) message.
fn describe(checkpoint: &CheckpointRecord, messages: &[Message]) -> String {
    let prompt = checkpoint.message_id.and_then(|id| {
        let at = messages.iter().position(|m| m.id == id)?;
        let asked = messages[..at].iter().rev().find(|m| m.role == Role::User)?;
        asked.content.iter().find_map(|event| match &event.payload {
            EventPayload::UserText { text } => Some(text.clone()),
            _ => None,
        })
    });
    match prompt {
        Some(prompt) => {
            let mut quoted: String = prompt.chars().take(PROMPT_QUOTE_CHARS).collect();
            if prompt.chars().count() > PROMPT_QUOTE_CHARS {
                quoted.push('…');
            }
            format!("the turn \"{quoted}\"")
        }
        None if checkpoint.kind == CheckpointKind::Fork => "the fork it started from".to_owned(),
        None => format!("checkpoint {}", checkpoint.id),
    }
}

fn storage(err: agentbox_store::StoreError) -> Failure {
    Failure { code: "storage_error", message: err.to_string() }
}

#[cfg(test)]
mod tests {
    use agentbox_protocol::event::{ChatEvent, MessageStatus};
    use chrono::Utc;

    use super::*;

    fn message(role: Role, prompt: Option<&str>) -> Message {
        let id = Uuid::now_v7();
        let content = prompt
            .map(|text| ChatEvent {
                seq: 1,
                message_id: id,
                parent_tool_use_id: None,
                created_at: Utc::now(),
                payload: EventPayload::UserText { text: text.to_owned() },
            })
            .into_iter()
            .collect();
        Message {
            id,
            chat_id: Uuid::nil(),
            role,
            status: MessageStatus::Completed,
            content,
            model: None,
            permission_mode: None,
            session_id: None,
            total_cost_usd: None,
            usage: None,
            checkpoint_id: None,
            created_at: Utc::now(),
            completed_at: None,
        }
    }

    fn checkpoint(kind: CheckpointKind, message_id: Option<Uuid>) -> CheckpointRecord {
        CheckpointRecord {
            id: Uuid::now_v7(),
            chat_id: Uuid::nil(),
            message_id,
            kind,
            session_id: None,
            visible_messages: Vec::new(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn the_newest_checkpoint_is_of_a_visible_turn_never_one_a_restore_replaced() {
        let asked = message(Role::User, Some("write the report"));
        let answered = message(Role::Assistant, None);
        let visible = [asked, answered.clone()];
        let hidden_turn = checkpoint(CheckpointKind::Turn, Some(Uuid::now_v7()));
        let undo = checkpoint(CheckpointKind::BeforeRestore, Some(answered.id));
        let turn = checkpoint(CheckpointKind::Turn, Some(answered.id));
        let fork = checkpoint(CheckpointKind::Fork, None);
        let newest_first = vec![hidden_turn, undo, turn.clone(), fork.clone()];
        assert_eq!(newest_checkpoint(newest_first, &visible), Some(turn));
        assert_eq!(newest_checkpoint(vec![fork.clone()], &visible), Some(fork));
        assert_eq!(newest_checkpoint(Vec::new(), &visible), None);
    }

    #[test]
    fn a_checkpoint_is_described_by_its_turns_prompt() {
        let long = "x".repeat(PROMPT_QUOTE_CHARS + 5);
        let asked = message(Role::User, Some(&long));
        let answered = message(Role::Assistant, None);
        let messages = [message(Role::User, Some("earlier")), asked, answered.clone()];
        let described = describe(&checkpoint(CheckpointKind::Turn, Some(answered.id)), &messages);
        assert_eq!(described, format!("the turn \"{}…\"", "x".repeat(PROMPT_QUOTE_CHARS)));
        let fork = describe(&checkpoint(CheckpointKind::Fork, None), &messages);
        assert_eq!(fork, "the fork it started from");
    }
}
