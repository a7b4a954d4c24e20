//! Permission requests and their answers: what the agent asks a person (a tool call, a
//! question, a plan to approve), how the person answers over the API, and how each request
//! was settled.
//!
//! A request is born as a `permission_request` chat event and ends as a
//! `permission_resolved` event with the same `request_id`; while it is open it is listed by
//! `GET /api/v1/chats/{chat_id}/permissions`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::api::PermissionMode;

/// What a permission request asks the person.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PermissionKind {
    /// May this tool call run? Answered with `approved` (and `remember` to always allow it).
    #[default]
    Tool,
    /// The agent asks questions (`AskUserQuestion`); `input.questions` lists them with their
    /// options, and the answer carries `answers`.
    Question,
    /// The agent presents a plan (`ExitPlanMode`, `plan` holds it); approving it may choose
    /// the `mode` to continue in, denying it sends the `message` back as feedback.
    Plan,
}

impl PermissionKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tool => "tool",
            Self::Question => "question",
            Self::Plan => "plan",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Tool, Self::Question, Self::Plan].into_iter().find(|kind| kind.as_str() == s)
    }
}

/// Who or what settled a permission request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ResolvedBy {
    /// A person answered through the API.
    User,
    /// Nobody answered within the server's permission timeout; the call was denied.
    Timeout,
    /// The agent withdrew the request, for example because the turn was interrupted.
    Cancelled,
    /// The turn ended (the CLI exited) while the request was open.
    TurnEnded,
    /// The server restarted while the request was open; it was denied.
    ServerRestarted,
    /// The chat's mode changed to one that decides the call without asking
    /// (`bypassPermissions`).
    ModeChanged,
}

impl ResolvedBy {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
            Self::TurnEnded => "turn_ended",
            Self::ServerRestarted => "server_restarted",
            Self::ModeChanged => "mode_changed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::User,
            Self::Timeout,
            Self::Cancelled,
            Self::TurnEnded,
            Self::ServerRestarted,
            Self::ModeChanged,
        ]
        .into_iter()
        .find(|by| by.as_str() == s)
    }
}

/// An "always allow" rule of a chat: calls of `tool_name` pass without asking when
/// `rule_content` matches them (every call of the tool when it is `null`). For `Bash` the
/// content is a command, matched exactly, or as a prefix when it ends with ` *` or `:*`;
/// for `WebFetch` it is `domain:HOST`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PermissionRule {
    pub tool_name: String,
    #[serde(default)]
    pub rule_content: Option<String>,
}

/// A stored rule with its id, as `GET /api/v1/chats/{chat_id}/permissions/rules` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredPermissionRule {
    pub id: Uuid,
    #[serde(flatten)]
    pub rule: PermissionRule,
    pub created_at: DateTime<Utc>,
}

/// The body of `POST /api/v1/chats/{chat_id}/permissions/{request_id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PermissionAnswerRequest {
    /// Allow (`true`) or deny (`false`) the call; for a question, `true` answers it; for a
    /// plan, `true` approves it.
    pub approved: bool,
    /// When denying: what the agent is told (why, or what to do instead; for a plan, the
    /// feedback to revise it with).
    #[serde(default)]
    pub message: Option<String>,
    /// For a question, required when approving: each question's text mapped to the chosen
    /// option's label, or to a list of labels for a multi-select question. Free text is
    /// accepted as an answer too.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub answers: Option<BTreeMap<String, Value>>,
    /// For a tool call being approved: also store an "always allow" rule for this chat so that
    /// matching calls pass without asking.
    #[serde(default)]
    pub remember: bool,
    /// For a plan being approved: the mode to continue in (not `plan`); by default the
    /// chat's own mode, or `auto` when the chat itself is in plan mode.
    #[serde(default)]
    pub mode: Option<PermissionMode>,
}

/// An open permission request, as `GET /api/v1/chats/{chat_id}/permissions` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingPermission {
    pub request_id: String,
    /// The assistant message of the turn that asks.
    pub message_id: Uuid,
    pub kind: PermissionKind,
    pub tool_name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub input: Value,
    /// The `seq` of the `permission_request` event, which has every detail.
    pub seq: i64,
    pub created_at: DateTime<Utc>,
    /// When the request is denied if nobody answers it.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The body of `POST /api/v1/chats/{chat_id}/permissions/{request_id}`'s answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PermissionAnswerResponse {
    pub request_id: String,
    pub approved: bool,
    /// The rule stored by `remember`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<PermissionRule>,
    /// The mode the chat continues in after an approved plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<PermissionMode>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        for kind in [PermissionKind::Tool, PermissionKind::Question, PermissionKind::Plan] {
            assert_eq!(PermissionKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        for by in [ResolvedBy::User, ResolvedBy::Timeout, ResolvedBy::ServerRestarted] {
            assert_eq!(ResolvedBy::parse(by.as_str()), Some(by));
            assert_eq!(serde_json::to_value(by).unwrap(), by.as_str());
        }
    }

    #[test]
    fn answers_reject_unknown_fields() {
        let err =
            serde_json::from_str::<PermissionAnswerRequest>(r#"{"approved":true,"remembr":true}"#)
                .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let ok: PermissionAnswerRequest =
            serde_json::from_str(r#"{"approved":false,"message":"no"}"#).unwrap();
        assert!(!ok.remember && ok.answers.is_none() && ok.mode.is_none());
    }
}
