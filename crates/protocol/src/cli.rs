//! The Claude Code CLI's stream-json protocol: one JSON object per line on stdin and stdout.
//!
//! Shapes follow recorded sessions of CLI 2.1.332 (`fixtures/claude-code-cli/`) and the public
//! Claude Agent SDK. Output types are lenient on purpose: every field the driver does not need
//! is optional, so a CLI that adds or drops a field does not break parsing; an unknown message
//! `type` becomes [`CliOutput::Unknown`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A line we write to the CLI's stdin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CliInput {
    User { message: UserInputMessage, parent_tool_use_id: Option<String>, session_id: String },
    ControlRequest { request_id: String, request: ControlRequest },
    ControlResponse { response: ControlResponse },
}

impl CliInput {
    /// A user turn with a plain-text prompt.
    pub fn user_text(prompt: impl Into<String>) -> Self {
        Self::User {
            message: UserInputMessage { role: "user".into(), content: prompt.into() },
            parent_tool_use_id: None,
            session_id: "default".into(),
        }
    }

    /// The answer to a control request the CLI sent us.
    pub fn success(request_id: impl Into<String>, response: Value) -> Self {
        Self::ControlResponse {
            response: ControlResponse::Success { request_id: request_id.into(), response },
        }
    }

    /// An error answer to a control request the CLI sent us (for subtypes we do not handle).
    pub fn failure(request_id: impl Into<String>, error: impl Into<String>) -> Self {
        Self::ControlResponse {
            response: ControlResponse::Error { request_id: request_id.into(), error: error.into() },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserInputMessage {
    pub role: String,
    pub content: String,
}

/// A control request we send to the CLI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "subtype", rename_all = "snake_case")]
pub enum ControlRequest {
    Initialize {
        hooks: Option<Value>,
    },
    Interrupt,
    SetPermissionMode {
        mode: String,
    },
    SetModel {
        model: Option<String>,
    },
    /// `0` turns thinking off; `None` goes back to the budget the CLI was started with.
    SetMaxThinkingTokens {
        max_thinking_tokens: Option<u32>,
    },
}

/// The answer to a control request, in either direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "subtype", rename_all = "snake_case")]
pub enum ControlResponse {
    Success {
        request_id: String,
        #[serde(default)]
        response: Value,
    },
    Error {
        request_id: String,
        #[serde(default)]
        error: String,
    },
}

impl ControlResponse {
    pub fn request_id(&self) -> &str {
        match self {
            Self::Success { request_id, .. } | Self::Error { request_id, .. } => request_id,
        }
    }
}

/// A line the CLI prints on stdout.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CliOutput {
    System(SystemMessage),
    Assistant(AssistantMessage),
    User(UserMessage),
    Result(ResultMessage),
    ControlRequest(IncomingControlRequest),
    ControlResponse(IncomingControlResponse),
    ControlCancelRequest(ControlCancelRequest),
    StreamEvent(StreamEvent),
    #[serde(other)]
    Unknown,
}

/// `{"type":"system","subtype":...}`: session start (`init`), retries (`api_retry`), mode
/// changes (`status`) and more.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SystemMessage {
    pub subtype: String,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct AssistantMessage {
    pub message: ApiMessage,
    #[serde(default)]
    pub parent_tool_use_id: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    /// Set on the synthetic message the CLI prints when the model API failed
    /// (`server_error`, `authentication_failed`, `rate_limit`, ...).
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ApiMessage {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub content: Vec<ContentBlock>,
    /// The token counts of the model call that produced this message.
    #[serde(default)]
    pub usage: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: Value,
        #[serde(default)]
        is_error: Option<bool>,
    },
    #[serde(other)]
    Other,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct UserMessage {
    pub message: UserMessageBody,
    #[serde(default)]
    pub parent_tool_use_id: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct UserMessageBody {
    #[serde(default)]
    pub content: UserContent,
}

/// A user message's content: a plain string (a prompt echoed back) or content blocks
/// (tool results, interruption notices).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum UserContent {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

impl Default for UserContent {
    fn default() -> Self {
        Self::Blocks(Vec::new())
    }
}

/// The end of a turn: `subtype` is `success` or an `error_*`; `is_error` is also set when the
/// model API failed (then `api_error_status` says how).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ResultMessage {
    #[serde(default)]
    pub subtype: String,
    #[serde(default)]
    pub is_error: bool,
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub total_cost_usd: Option<f64>,
    #[serde(default)]
    pub usage: Option<Value>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub num_turns: Option<u32>,
    #[serde(default)]
    pub terminal_reason: Option<String>,
    #[serde(default)]
    pub api_error_status: Option<u16>,
    #[serde(default)]
    pub errors: Vec<String>,
    /// Per model, the session's running totals (`costUSD`) and the model's `contextWindow`.
    #[serde(default, rename = "modelUsage")]
    pub model_usage: Option<Box<serde_json::Map<String, Value>>>,
    /// Per model, what was used since the previous `result` of the process: this turn's own
    /// figures (`total_cost_usd` and `modelUsage` add up over the whole session).
    #[serde(default)]
    pub model_usage_since_last_result: Option<Box<serde_json::Map<String, Value>>>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct IncomingControlRequest {
    pub request_id: String,
    pub request: Value,
}

impl IncomingControlRequest {
    pub fn subtype(&self) -> Option<&str> {
        self.request.get("subtype").and_then(Value::as_str)
    }

    /// The request as a `can_use_tool` permission question, if it is one.
    pub fn can_use_tool(&self) -> Option<CanUseTool> {
        if self.subtype() != Some("can_use_tool") {
            return None;
        }
        serde_json::from_value(self.request.clone()).ok()
    }
}

/// The CLI asks whether a tool call may run (`--permission-prompt-tool stdio`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CanUseTool {
    pub tool_name: String,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub tool_use_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub permission_suggestions: Vec<Value>,
    #[serde(default)]
    pub blocked_path: Option<String>,
    #[serde(default)]
    pub requires_user_interaction: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct IncomingControlResponse {
    pub response: ControlResponse,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ControlCancelRequest {
    pub request_id: String,
}

/// A raw model API stream event (only with `--include-partial-messages`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct StreamEvent {
    #[serde(default)]
    pub event: Value,
    #[serde(default)]
    pub parent_tool_use_id: Option<String>,
}

/// The text of a tool result's `content`, which is a string or a list of content blocks.
pub fn tool_result_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => {
            let parts: Vec<String> = blocks
                .iter()
                .map(|block| match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        block.get("text").and_then(Value::as_str).unwrap_or_default().to_owned()
                    }
                    Some(other) => format!("[{other}]"),
                    None => block.to_string(),
                })
                .collect();
            parts.join("\n")
        }
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inputs_have_the_recorded_shape() {
        let line = serde_json::to_value(CliInput::user_text("hi")).unwrap();
        assert_eq!(
            line,
            json!({"type":"user","message":{"role":"user","content":"hi"},
                   "parent_tool_use_id":null,"session_id":"default"})
        );
        let init = serde_json::to_value(CliInput::ControlRequest {
            request_id: "req_init".into(),
            request: ControlRequest::Initialize { hooks: None },
        })
        .unwrap();
        assert_eq!(
            init,
            json!({"type":"control_request","request_id":"req_init",
                   "request":{"subtype":"initialize","hooks":null}})
        );
        let allow =
            serde_json::to_value(CliInput::success("r1", json!({"behavior":"allow"}))).unwrap();
        assert_eq!(
            allow,
            json!({"type":"control_response","response":{"subtype":"success","request_id":"r1",
                   "response":{"behavior":"allow"}}})
        );
    }

    #[test]
    fn unknown_types_and_blocks_do_not_fail() {
        let out: CliOutput = serde_json::from_str(r#"{"type":"brand_new","x":1}"#).unwrap();
        assert_eq!(out, CliOutput::Unknown);
        let out: CliOutput = serde_json::from_str(
            r#"{"type":"assistant","message":{"content":[{"type":"server_tool_use","id":"x"}]}}"#,
        )
        .unwrap();
        let CliOutput::Assistant(a) = out else { panic!("not assistant") };
        assert_eq!(a.message.content, vec![ContentBlock::Other]);
    }

    #[test]
    fn tool_result_text_joins_blocks() {
        assert_eq!(tool_result_text(&json!("plain")), "plain");
        assert_eq!(
            tool_result_text(&json!([{"type":"text","text":"a"},{"type":"image"}])),
            "a\n[image]"
        );
    }
}
