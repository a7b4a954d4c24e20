//! Recovery: closing turns that no live node runs. At start-up a node closes its own turns
//! (a previous run of it died with them) and those of expired nodes; every heartbeat it
//! sweeps expired nodes' turns again ([`TurnRunner::sweep`]). A turn of another node is
//! touched only once that node's heartbeat is older than the expiry bound, and only by the
//! one node that adopts it in the store.

use agentbox_protocol::event::{EventPayload, MessageStatus, PermissionResolution};
use agentbox_protocol::permission::ResolvedBy;
use agentbox_store::{NewEvent, NodeRole, OrphanedTurn, StoreError, TurnResult};
use chrono::{DateTime, Utc};

use crate::runner::TurnRunner;

impl TurnRunner {
    /// Register this node and close what a previous run of it (or a node that has since
    /// expired) left open. Open permission requests of those turns are denied
    /// (`server_restarted`); each turn gets an error event saying why and ends
    /// `interrupted`; queues keep their prompts but wait for `send now`. Call before
    /// serving requests; returns how many turns were closed.
    pub async fn recover(&self) -> Result<usize, StoreError> {
        let now = Utc::now();
        self.register(now).await?;
        let closed = self.close_orphans(true, now).await?;
        // One process, so every queue was this node's: as after any interrupt, they wait.
        // In a cluster only the queues of the turns just closed do (in `close_orphan`).
        if self.config.node.role == NodeRole::All {
            self.paused.pause_waiting().await?;
        }
        Ok(closed)
    }

    /// Close the running turns of nodes whose heartbeat is older than the expiry bound at
    /// `now`; how many this node closed. Called with every heartbeat; `now` is a parameter
    /// so that tests can move the clock instead of waiting.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.close_orphans(false, now).await
    }

    async fn close_orphans(&self, own: bool, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let expiry =
            chrono::Duration::from_std(self.config.node.expiry).unwrap_or(chrono::Duration::MAX);
        let expired_before = now.checked_sub_signed(expiry).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let orphans = self.store.orphaned_turns(&self.config.node.id, own, expired_before).await?;
        let mut closed = 0;
        for orphan in orphans {
            if self.close_orphan(&orphan).await? {
                closed += 1;
            }
        }
        Ok(closed)
    }

    /// Adopt one orphaned turn and end it `interrupted`; `false` when another node adopted
    /// it first.
    async fn close_orphan(&self, orphan: &OrphanedTurn) -> Result<bool, StoreError> {
        let me = self.config.node.id.as_str();
        let OrphanedTurn { chat_id, message_id, node_id } = orphan;
        let (chat_id, message_id) = (*chat_id, *message_id);
        if !self.store.adopt_turn(message_id, node_id.as_deref(), me).await? {
            return Ok(false);
        }
        let (text, code) = match node_id.as_deref() {
            Some(node) if node == me => (
                "agentbox stopped while this turn was running, so it was cut off.".to_owned(),
                "server_restarted",
            ),
            Some(node) => (
                format!(
                    "The agentbox node running this turn ({node}) stopped responding, so the \
                     turn was cut off. Send the message again to run it on a live node."
                ),
                "node_lost",
            ),
            None => (
                "agentbox stopped before this turn could start, so it was cut off.".to_owned(),
                "server_restarted",
            ),
        };
        for (chat, message, request_id) in self.store.all_pending_permissions().await? {
            if message != message_id {
                continue;
            }
            let resolution =
                PermissionResolution::new(&request_id, false, ResolvedBy::ServerRestarted)
                    .with_message(
                        "agentbox restarted while this request was open, so it was denied.",
                    );
            let event = self
                .store
                .append_permission_event(
                    chat,
                    NewEvent::new(message, EventPayload::PermissionResolved(resolution)),
                )
                .await?;
            self.bus.publish(chat, event);
            tracing::info!(%chat_id, %request_id, "denied a permission request of a turn no node runs");
        }
        let event = self
            .store
            .append_event(chat_id, NewEvent::new(message_id, EventPayload::error(text, code)))
            .await?;
        self.bus.publish(chat_id, event);
        let event = self
            .store
            .finish_turn(chat_id, message_id, TurnResult::status(MessageStatus::Interrupted))
            .await?;
        self.bus.publish(chat_id, event);
        // As after any interrupt, the chat's queue waits for `send now`.
        self.paused.pause(chat_id).await;
        tracing::info!(%chat_id, %message_id, node = ?node_id, code, "closed a turn no live node runs");
        Ok(true)
    }
}
