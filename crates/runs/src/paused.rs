//! Chats whose queue waits for `send now`: their last turn was interrupted, or a restart
//! cut it off. The flag is the chat's, in the store, so that every node moves a chat's
//! queue the same way.

use agentbox_store::{Store, StoreError};
use uuid::Uuid;

pub(crate) struct PausedQueues {
    store: Store,
}

impl PausedQueues {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn pause(&self, chat_id: Uuid) {
        if let Err(err) = self.store.set_queue_paused(chat_id, true).await {
            tracing::error!(%chat_id, %err, "could not pause the chat's queue");
        }
    }

    pub async fn resume(&self, chat_id: Uuid) {
        if let Err(err) = self.store.set_queue_paused(chat_id, false).await {
            tracing::error!(%chat_id, %err, "could not resume the chat's queue");
        }
    }

    /// Whether the chat's queue waits; when the store cannot say, it waits (a prompt that
    /// starts late is better than one that starts against the user's interrupt).
    pub async fn is_paused(&self, chat_id: Uuid) -> bool {
        self.store.queue_paused(chat_id).await.unwrap_or_else(|err| {
            tracing::error!(%chat_id, %err, "could not read whether the chat's queue waits");
            true
        })
    }

    /// Pause every queue that holds prompts (after a restart of the single-process node).
    pub async fn pause_waiting(&self) -> Result<u64, StoreError> {
        self.store.pause_waiting_queues().await
    }
}
