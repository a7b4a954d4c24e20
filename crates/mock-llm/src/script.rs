//! The scripted conversation model: what the mock model answers, step by step, to one prompt.
//!
//! A [`Script`] answers one user prompt. Each request the client sends for that prompt is
//! answered by one [`Step`]: the first request gets step 0, the request that carries the
//! `tool_result` of step 0 gets step 1, and so on. Scripts are plain serde data, so they can be
//! written by hand in a scenario file as well as compiled from prompt markers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The signature attached to scripted thinking blocks; the client sends it back unchanged.
/// It is the base64 encoding of `mock-signature`, so nobody mistakes it for a real one.
pub const MOCK_SIGNATURE: &str = "bW9jay1zaWduYXR1cmU=";

/// A scripted conversation for one user prompt: an ordered list of assistant steps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// One step per model request, in order.
    pub steps: Vec<Step>,
}

impl Script {
    /// A script with the given steps.
    pub fn new(steps: Vec<Step>) -> Self {
        Self { steps }
    }

    /// A script that answers with one text reply and ends the turn.
    pub fn text(text: impl Into<String>) -> Self {
        Self { steps: vec![Step::text(text)] }
    }

    /// The step that answers request number `index` for this prompt, if the script has one.
    pub fn step(&self, index: usize) -> Option<&Step> {
        self.steps.get(index)
    }
}

/// One assistant reply: its content blocks plus how the reply is delivered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The content blocks of the reply, in order.
    #[serde(default)]
    pub blocks: Vec<Block>,
    /// Pause between two server-sent events of a streamed reply (slow stream), in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Answer with this HTTP error instead of a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    /// Cut the connection in the middle of the reply, the first time this step is served
    /// (after any scripted errors); the retry that follows gets the whole reply.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disconnect: bool,
    /// Overrides the stop reason, which otherwise is `tool_use` when the step has a tool call
    /// and `end_turn` when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Step {
    /// A step made of the given blocks.
    pub fn new(blocks: Vec<Block>) -> Self {
        Self { blocks, ..Self::default() }
    }

    /// A step with one text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(vec![Block::text(text)])
    }

    /// A step with one tool call.
    pub fn tool_use(name: impl Into<String>, input: Value) -> Self {
        Self::new(vec![Block::tool_use(name, input)])
    }

    /// Whether the step asks the client to run a tool.
    pub fn has_tool_use(&self) -> bool {
        self.blocks.iter().any(|block| matches!(block, Block::ToolUse { .. }))
    }

    /// The stop reason this step's reply ends with.
    pub fn effective_stop_reason(&self) -> &str {
        match &self.stop_reason {
            Some(reason) => reason,
            None if self.has_tool_use() => "tool_use",
            None => "end_turn",
        }
    }
}

/// One content block of a scripted reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Block {
    /// Extended thinking; streamed as `thinking_delta` events followed by a `signature_delta`.
    Thinking {
        /// The thinking text.
        text: String,
        /// The signature sent with the block; [`MOCK_SIGNATURE`] when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// Visible reply text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call; its id is assigned by the server when the reply is sent.
    ToolUse {
        /// The tool's name, for example `Bash`.
        name: String,
        /// The tool's input object.
        #[serde(default = "empty_object")]
        input: Value,
    },
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

impl Block {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into() }
    }

    /// A thinking block with the mock signature.
    pub fn thinking(text: impl Into<String>) -> Self {
        Self::Thinking { text: text.into(), signature: None }
    }

    /// A tool call block.
    pub fn tool_use(name: impl Into<String>, input: Value) -> Self {
        Self::ToolUse { name: name.into(), input }
    }
}

/// An HTTP error the mock answers with instead of a reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepError {
    /// The HTTP status, for example 500.
    pub status: u16,
    /// The Anthropic error type (`api_error`, `rate_limit_error`, ...); derived from the
    /// status when empty.
    #[serde(rename = "type", default)]
    pub error_type: String,
    /// The error message; `scripted STATUS` when empty.
    #[serde(default)]
    pub message: String,
    /// Fail only the first `times` requests served by this step, then answer normally;
    /// fail every request when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

impl StepError {
    /// An error with the usual Anthropic type for `status` and the message `scripted STATUS`.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            error_type: error_type_for_status(status).to_owned(),
            message: format!("scripted {status}"),
            times: None,
        }
    }

    /// The same error, limited to the first `times` requests.
    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }

    /// The error type, falling back to the usual type for the status.
    pub fn effective_type(&self) -> &str {
        if self.error_type.is_empty() {
            error_type_for_status(self.status)
        } else {
            &self.error_type
        }
    }

    /// The message, falling back to `scripted STATUS`.
    pub fn effective_message(&self) -> String {
        if self.message.is_empty() {
            format!("scripted {}", self.status)
        } else {
            self.message.clone()
        }
    }
}

/// The Anthropic API's error type for an HTTP status.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stop_reason_follows_tool_use() {
        assert_eq!(Step::text("hi").effective_stop_reason(), "end_turn");
        assert_eq!(Step::tool_use("Bash", json!({})).effective_stop_reason(), "tool_use");
        let step = Step { stop_reason: Some("max_tokens".into()), ..Step::text("hi") };
        assert_eq!(step.effective_stop_reason(), "max_tokens");
    }

    #[test]
    fn script_round_trips_through_json() {
        let script = Script::new(vec![
            Step {
                delay_ms: Some(5),
                ..Step::new(vec![
                    Block::thinking("hmm"),
                    Block::text("hello"),
                    Block::tool_use("Bash", json!({"command": "ls"})),
                ])
            },
            Step { error: Some(StepError::new(529).times(2)), ..Step::text("done") },
        ]);
        let encoded = serde_json::to_value(&script).unwrap();
        assert_eq!(encoded["steps"][0]["blocks"][0]["type"], "thinking");
        assert_eq!(encoded["steps"][0]["blocks"][2]["input"]["command"], "ls");
        assert_eq!(encoded["steps"][1]["error"]["type"], "overloaded_error");
        let decoded: Script = serde_json::from_value(encoded).unwrap();
        assert_eq!(decoded, script);
    }

    #[test]
    fn error_fields_default_from_status() {
        let error: StepError = serde_json::from_value(json!({"status": 429})).unwrap();
        assert_eq!(error.effective_type(), "rate_limit_error");
        assert_eq!(error.effective_message(), "scripted 429");
        assert_eq!(error.times, None);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let typo = json!({"steps": [{"blocks": [], "dealy_ms": 5}]});
        assert!(serde_json::from_value::<Script>(typo).is_err());
        let bad_block = json!({"steps": [{"blocks": [{"type": "text", "txt": "x"}]}]});
        assert!(serde_json::from_value::<Script>(bad_block).is_err());
    }
}
