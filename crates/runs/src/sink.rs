//! Where a turn's events go: the durable log first, then the bus.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use agentbox_agent::{AgentEvent, EventSink, SinkError};
use agentbox_bus::EventBus;
use agentbox_protocol::event::ChatEvent;
use agentbox_protocol::{EventPayload, TransientEvent};
use agentbox_store::{NewEvent, Store};
use async_trait::async_trait;
use uuid::Uuid;

/// Appends each event to the chat's log and publishes it once committed, so a subscriber
/// never sees an event the log does not have.
#[derive(Clone)]
pub(crate) struct LogSink {
    pub store: Store,
    pub bus: Arc<EventBus>,
    pub chat_id: Uuid,
    pub message_id: Uuid,
    /// When the turn's task started, for the time to the agent's first event.
    pub started: Instant,
    /// Whether the agent has produced an event yet (shared by the sink's clones).
    pub first_seen: Arc<AtomicBool>,
}

impl LogSink {
    pub async fn record(&self, payload: EventPayload) -> Result<ChatEvent, SinkError> {
        self.append(NewEvent::new(self.message_id, payload)).await
    }

    async fn append(&self, event: NewEvent) -> Result<ChatEvent, SinkError> {
        // Permission events also keep the index of open requests, in the same transaction.
        let appended = match event.payload {
            EventPayload::PermissionRequest(_) | EventPayload::PermissionResolved(_) => {
                self.store.append_permission_event(self.chat_id, event).await
            }
            _ => self.store.append_event(self.chat_id, event).await,
        };
        let event = appended.map_err(|err| SinkError(err.to_string()))?;
        self.bus.publish(self.chat_id, event.clone());
        Ok(event)
    }
}

#[async_trait]
impl EventSink for LogSink {
    async fn emit(&mut self, event: AgentEvent) -> Result<(), SinkError> {
        if !self.first_seen.swap(true, Ordering::Relaxed) {
            crate::metrics::first_event(self.started.elapsed());
        }
        self.append(NewEvent {
            message_id: self.message_id,
            payload: event.payload,
            parent_tool_use_id: event.parent_tool_use_id,
        })
        .await
        .map(drop)
    }

    fn text_delta(&mut self, text: &str) {
        let event = TransientEvent::AssistantTextDelta {
            message_id: self.message_id,
            text: text.to_owned(),
        };
        self.bus.publish_transient(self.chat_id, event);
    }

    fn thinking_delta(&mut self, text: &str) {
        let event = TransientEvent::AssistantThinkingDelta {
            message_id: self.message_id,
            text: text.to_owned(),
        };
        self.bus.publish_transient(self.chat_id, event);
    }
}
