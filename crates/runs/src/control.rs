//! The control-channel seam: what reaches a running turn from outside it (interrupt,
//! permission answers, live changes, `send now`) when the turn runs on another node.
//! A turn in this node's memory is always reached directly; a channel carries the rest.
//! [`InProcessControls`] carries nothing (one process runs every turn it can reach);
//! [`StoreControls`] writes the control to the database's control table for the node that
//! runs the turn, which PostgreSQL wakes with `NOTIFY` and which polls the table too, so a
//! missed notification delays a control and never loses it.

use agentbox_protocol::permission::PermissionAnswerRequest;
use agentbox_store::{Store, StoreError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::request::LiveChange;

/// One control for a running turn, as the control table stores it (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Control {
    Interrupt,
    /// Interrupt the turn and run queued prompt `queued_id` right after it.
    SendNow {
        queued_id: Uuid,
    },
    Live {
        change: LiveChange,
    },
    Answer {
        request_id: String,
        answer: PermissionAnswerRequest,
    },
}

#[async_trait]
pub trait ControlChannel: Send + Sync {
    /// Deliver `control` to the node running the turn of `message_id`; `false` when no
    /// node this channel reaches runs it.
    async fn deliver(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
        control: &Control,
    ) -> Result<bool, StoreError>;
}

/// One process: a turn that is not in this node's memory runs nowhere.
pub struct InProcessControls;

#[async_trait]
impl ControlChannel for InProcessControls {
    async fn deliver(&self, _: Uuid, _: Uuid, _: &Control) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// Across processes, through the store's control table.
pub struct StoreControls {
    store: Store,
}

impl StoreControls {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[async_trait]
impl ControlChannel for StoreControls {
    async fn deliver(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
        control: &Control,
    ) -> Result<bool, StoreError> {
        let command = serde_json::to_string(control)
            .map_err(|err| StoreError::Corrupt(format!("a control is not JSON: {err}")))?;
        Ok(self.store.push_control(chat_id, message_id, &command).await?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_read_back_as_written() {
        let controls = [
            Control::Interrupt,
            Control::SendNow { queued_id: Uuid::now_v7() },
            Control::Live {
                change: LiveChange {
                    model: Some("claude-opus-4-1".into()),
                    permission_mode: None,
                    max_thinking_tokens: Some(None),
                },
            },
            Control::Answer {
                request_id: "toolu_1".into(),
                answer: PermissionAnswerRequest {
                    approved: false,
                    message: Some("not that one".into()),
                    ..PermissionAnswerRequest::default()
                },
            },
        ];
        let unchanged = Control::Live { change: LiveChange::default() };
        for control in controls.into_iter().chain([unchanged]) {
            let json = serde_json::to_string(&control).unwrap();
            assert_eq!(serde_json::from_str::<Control>(&json).unwrap(), control, "{json}");
        }
        assert_eq!(serde_json::to_string(&Control::Interrupt).unwrap(), r#"{"kind":"interrupt"}"#);
    }
}
