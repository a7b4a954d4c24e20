//! Chat events: what one turn of the agent looks like to clients, in the log and on the stream.
//!
//! The same JSON shape is stored in the per-chat event log, sent as the `data:` of each SSE
//! event and listed as a message's `content` (seed §4.2): `{"type": "...", ...fields}` plus
//! the envelope fields `seq` and `message_id`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::api::PermissionMode;
use crate::permission::{PermissionKind, PermissionRule, ResolvedBy};

/// Where a message stands. Only an assistant message is ever `in_progress`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    InProgress,
    Completed,
    Failed,
    Interrupted,
}

impl MessageStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "in_progress" => Self::InProgress,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "interrupted" => Self::Interrupted,
            _ => return None,
        })
    }

    pub const fn is_final(self) -> bool {
        !matches!(self, Self::InProgress)
    }
}

/// A tool call as the agent started it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub input: Value,
}

/// The text a finished tool call returned to the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolResult {
    pub id: String,
    pub result: String,
}

/// The error a failed (or refused) tool call returned to the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolError {
    pub id: String,
    pub error: String,
}

/// Something the agent waits for a person to decide: a tool call, questions or a plan
/// (`kind`). Answered with `POST /api/v1/chats/{chat_id}/permissions/{request_id}`; the
/// `permission_resolved` event with the same `request_id` says how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PermissionRequest {
    pub request_id: String,
    #[serde(default)]
    pub kind: PermissionKind,
    pub tool_name: String,
    /// The tool's input; for a question, `questions` lists each question with its options.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Why agentbox asks instead of deciding itself: the `auto` policy's reason for a risky
    /// call, or what the chat's mode requires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a plan: the plan the agent proposes, in Markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// A file outside what the agent may touch without asking, when the CLI named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_path: Option<String>,
    /// Rules the CLI suggests for allowing such calls from now on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub suggestions: Vec<Value>,
    /// When the request is denied if nobody answers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// How a permission request ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PermissionResolution {
    pub request_id: String,
    pub approved: bool,
    /// What the agent was told with a denial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who or what settled it; absent in events written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<ResolvedBy>,
    /// A question's answers, as the agent received them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub answers: Option<Map<String, Value>>,
    /// The "always allow" rule stored with the approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<PermissionRule>,
    /// The mode the chat continues in after an approved plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<PermissionMode>,
}

impl PermissionResolution {
    /// A resolution with only the essentials; add details with struct update syntax.
    pub fn new(request_id: impl Into<String>, approved: bool, resolved_by: ResolvedBy) -> Self {
        Self {
            request_id: request_id.into(),
            approved,
            message: None,
            resolved_by: Some(resolved_by),
            answers: None,
            rule: None,
            mode: None,
        }
    }

    #[must_use]
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

/// Token counts and cost of one finished turn: that turn's own, also when the CLI process
/// ran turns before it (the CLI reports the session's running cost).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_turns: Option<u32>,
    /// Tokens in the model's context after the turn: the last model call's input (cached
    /// or not) and output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_tokens: Option<u64>,
    /// The model's context window, as the CLI reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
}

/// Something about the session rather than the conversation: its start, a retry, a mode
/// change. `subtype` says which; the other fields depend on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemEvent {
    pub subtype: String,
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: Map<String, Value>,
}

impl SystemEvent {
    pub fn new(subtype: impl Into<String>) -> Self {
        Self { subtype: subtype.into(), details: Map::new() }
    }

    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// The body of a chat event; `type` names the variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventPayload {
    UserText {
        text: String,
    },
    AssistantThinking {
        thinking: String,
    },
    AssistantText {
        text: String,
    },
    ToolStarted {
        tool: ToolCall,
    },
    ToolCompleted {
        tool: ToolResult,
    },
    ToolFailed {
        tool: ToolError,
    },
    PermissionRequest(PermissionRequest),
    PermissionResolved(PermissionResolution),
    System(SystemEvent),
    Usage(Usage),
    MessageCompleted {
        status: MessageStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total_cost_usd: Option<f64>,
    },
    Error {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
    },
}

impl EventPayload {
    /// The `type` tag of this payload, which is also the SSE `event:` name.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::UserText { .. } => "user_text",
            Self::AssistantThinking { .. } => "assistant_thinking",
            Self::AssistantText { .. } => "assistant_text",
            Self::ToolStarted { .. } => "tool_started",
            Self::ToolCompleted { .. } => "tool_completed",
            Self::ToolFailed { .. } => "tool_failed",
            Self::PermissionRequest(_) => "permission_request",
            Self::PermissionResolved(_) => "permission_resolved",
            Self::System(_) => "system",
            Self::Usage(_) => "usage",
            Self::MessageCompleted { .. } => "message_completed",
            Self::Error { .. } => "error",
        }
    }

    pub fn error(message: impl Into<String>, code: &str) -> Self {
        Self::Error { message: message.into(), code: Some(code.to_owned()) }
    }
}

/// One event of a chat's log: a payload with its place in the chat (`seq`, strictly
/// increasing per chat) and the message it belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatEvent {
    pub seq: i64,
    pub message_id: Uuid,
    /// Set when the event comes from a sub-agent working for a `Task` tool call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_tool_use_id: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(flatten)]
    pub payload: EventPayload,
}

/// An event that is not part of the log: no `seq`, never stored, sent only to streams that
/// ask for it (`?deltas=true`), and made obsolete by the durable event that follows. Lost
/// ones cost nothing: the durable `assistant_text` or `assistant_thinking` carries the
/// whole block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransientEvent {
    /// A piece of the assistant's text as the model writes it; the `assistant_text` event of
    /// the block follows with the whole text.
    AssistantTextDelta { message_id: Uuid, text: String },
    /// A piece of the model's thinking as it comes; the `assistant_thinking` event of the
    /// block follows with the whole of it.
    AssistantThinkingDelta { message_id: Uuid, text: String },
}

impl TransientEvent {
    /// The SSE `event:` name.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::AssistantTextDelta { .. } => "assistant_text_delta",
            Self::AssistantThinkingDelta { .. } => "assistant_thinking_delta",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(payload: EventPayload) -> Value {
        let event = ChatEvent {
            seq: 7,
            message_id: Uuid::nil(),
            parent_tool_use_id: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            payload,
        };
        let json = serde_json::to_value(&event).unwrap();
        let back: ChatEvent = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, event);
        json
    }

    #[test]
    fn events_have_the_seed_shape() {
        let json = roundtrip(EventPayload::ToolStarted {
            tool: ToolCall {
                id: "t1".into(),
                name: "Bash".into(),
                input: json!({"command": "ls"}),
            },
        });
        assert_eq!(json["type"], "tool_started");
        assert_eq!(json["seq"], 7);
        assert_eq!(json["tool"]["name"], "Bash");
        assert_eq!(json["message_id"], Uuid::nil().to_string());
    }

    #[test]
    fn system_events_keep_their_details_without_the_tag() {
        let json = roundtrip(EventPayload::System(
            SystemEvent::new("init").with("session_id", "abc").with("model", "m"),
        ));
        assert_eq!(json["subtype"], "init");
        assert_eq!(json["session_id"], "abc");
        let back: ChatEvent = serde_json::from_value(json).unwrap();
        let EventPayload::System(system) = back.payload else { panic!("not a system event") };
        assert!(!system.details.contains_key("type"), "tag leaked into details");
    }

    #[test]
    fn completion_and_usage_roundtrip() {
        let json = roundtrip(EventPayload::MessageCompleted {
            status: MessageStatus::Interrupted,
            total_cost_usd: Some(0.5),
        });
        assert_eq!(json["status"], "interrupted");
        roundtrip(EventPayload::Usage(Usage { input_tokens: 3, ..Usage::default() }));
        roundtrip(EventPayload::PermissionRequest(PermissionRequest {
            request_id: "r".into(),
            kind: PermissionKind::Question,
            tool_name: "AskUserQuestion".into(),
            input: json!({"questions": []}),
            tool_use_id: None,
            description: None,
            reason: Some("questions always go to the user".into()),
            plan: None,
            blocked_path: None,
            suggestions: vec![],
            expires_at: Some(DateTime::<Utc>::UNIX_EPOCH),
        }));
        let json = roundtrip(EventPayload::PermissionResolved(PermissionResolution {
            rule: Some(PermissionRule { tool_name: "Bash".into(), rule_content: None }),
            ..PermissionResolution::new("r", true, ResolvedBy::User)
        }));
        assert_eq!(json["type"], "permission_resolved");
        assert_eq!(json["resolved_by"], "user");
        // Events recorded before `resolved_by` existed still parse.
        let old: EventPayload = serde_json::from_value(
            json!({"type": "permission_resolved", "request_id": "r", "approved": false}),
        )
        .unwrap();
        assert_eq!(old.kind(), "permission_resolved");
    }

    #[test]
    fn status_strings_roundtrip() {
        for status in [
            MessageStatus::InProgress,
            MessageStatus::Completed,
            MessageStatus::Failed,
            MessageStatus::Interrupted,
        ] {
            assert_eq!(MessageStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(MessageStatus::parse("done"), None);
    }
}
