//! Whether a queued prompt may start when the runner takes it after a turn: the server's
//! per-user limits, which this crate does not know, behind a trait the server installs
//! ([`TurnRunner::set_admission`]). Refused: the queue pauses (its prompts stay) and the chat
//! gets a `system/queue_paused` notice saying which limit; `send now` or the next prompt
//! sent by hand resumes it.

use std::sync::Arc;

use agentbox_store::{ChatRecord, NewEvent};
use async_trait::async_trait;
use uuid::Uuid;

use crate::notices::notice;
use crate::runner::TurnRunner;

#[async_trait]
pub trait Admission: Send + Sync {
    /// `Err(why)` when the chat's owner may not start a turn in it now; `why` is shown in
    /// the chat as it is.
    async fn admit(&self, chat: &ChatRecord) -> Result<(), String>;
}

impl TurnRunner {
    /// Check queued prompts with `admission` before the runner starts one after a turn.
    /// Without one, they start unchecked.
    pub fn set_admission(&self, admission: Arc<dyn Admission>) {
        if self.admission.set(admission).is_err() {
            tracing::warn!("the runner's admission was set twice; the first one stays");
        }
    }

    /// `false` when the next queued prompt of `chat_id` must wait: the queue is paused and
    /// the notice is added to the turn `after` (the one that just ended).
    pub(crate) async fn admits_queued(&self, chat_id: Uuid, after: Uuid) -> bool {
        let Some(admission) = self.admission.get() else { return true };
        // Nothing queued, nothing to refuse (and no notice).
        match self.store.queue(chat_id).await {
            Ok(queue) if queue.is_empty() => return true,
            Ok(_) => {}
            Err(err) => {
                tracing::error!(%chat_id, %err, "could not read the queue");
                return true;
            }
        }
        let chat = match self.store.chat_unscoped(chat_id).await {
            Ok(Some(chat)) => chat,
            Ok(None) => return true,
            Err(err) => {
                tracing::error!(%chat_id, %err, "could not read the chat");
                return true;
            }
        };
        let Err(why) = admission.admit(&chat).await else { return true };
        self.paused.pause(chat_id).await;
        let text = format!("The queue is paused: {why}");
        tracing::info!(%chat_id, "{text}");
        match self
            .store
            .append_event(chat_id, NewEvent::new(after, notice("queue_paused", &text)))
            .await
        {
            Ok(event) => self.bus.publish(chat_id, event),
            Err(err) => tracing::warn!(%chat_id, %err, "could not record the queue notice"),
        }
        false
    }
}
