//! What callers hand the runner and what it answers besides errors.

use agentbox_protocol::api::{PermissionMode, QueuedMessage};

/// A prompt to run, with optional per-message overrides of the chat's settings.
#[derive(Clone, Debug)]
pub struct TurnRequest {
    pub prompt: String,
    pub model: Option<String>,
    pub permission_mode: Option<PermissionMode>,
}

/// Changes to a chat's settings that reach its running turn at once.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LiveChange {
    pub model: Option<String>,
    pub permission_mode: Option<PermissionMode>,
    /// `Some(None)` goes back to the CLI's default budget. In JSON (a control sent to
    /// another node) that is `null`, and no change is an absent field.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub max_thinking_tokens: Option<Option<u32>>,
}

/// A field that is present (`null` included) is `Some`; an absent one is `None` through
/// `#[serde(default)]`. (`protocol::api` reads `PATCH` bodies the same way.)
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// What `send now` did with a queued prompt.
#[derive(Clone, Debug, PartialEq)]
pub enum SendNow {
    /// The chat was idle: the prompt's turn has started.
    Started(QueuedMessage),
    /// The running turn is being interrupted; the prompt runs as soon as it has stopped.
    AfterInterrupt,
}
