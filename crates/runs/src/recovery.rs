//! Start-up recovery: closing what a previous run of the server left open.

use agentbox_protocol::event::{EventPayload, MessageStatus, PermissionResolution};
use agentbox_protocol::permission::ResolvedBy;
use agentbox_store::{NewEvent, StoreError, TurnResult};

use crate::runner::TurnRunner;

impl TurnRunner {
    /// Close what a previous run of the server left open. Open permission requests are
    /// denied (`server_restarted`); each unfinished turn gets an error event saying why and
    /// ends `interrupted`; queues keep their prompts but wait for `send now`. Call before
    /// serving requests.
    pub async fn recover(&self) -> Result<usize, StoreError> {
        for (chat_id, message_id, request_id) in self.store.all_pending_permissions().await? {
            let resolution =
                PermissionResolution::new(&request_id, false, ResolvedBy::ServerRestarted)
                    .with_message(
                        "agentbox restarted while this request was open, so it was denied.",
                    );
            self.store
                .append_permission_event(
                    chat_id,
                    NewEvent::new(message_id, EventPayload::PermissionResolved(resolution)),
                )
                .await?;
            tracing::info!(%chat_id, %request_id, "denied a permission request left open by a restart");
        }
        let unfinished = self.store.unfinished_turns().await?;
        for &(chat_id, message_id) in &unfinished {
            self.store
                .append_event(
                    chat_id,
                    NewEvent::new(
                        message_id,
                        EventPayload::error(
                            "agentbox stopped while this turn was running, so it was cut off.",
                            "server_restarted",
                        ),
                    ),
                )
                .await?;
            self.store
                .finish_turn(chat_id, message_id, TurnResult::status(MessageStatus::Interrupted))
                .await?;
            tracing::info!(%chat_id, %message_id, "closed a turn left open by a crash");
        }
        let queued = self.store.chats_with_queued_messages().await?;
        self.paused.pause_all(queued);
        Ok(unfinished.len())
    }
}
